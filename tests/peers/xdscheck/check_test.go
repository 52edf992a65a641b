package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ---- builders of a small consistent Envoy snapshot -----------------------------------------

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
}

func hcm(t testing.TB, routeName string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "outbound_0.0.0.0_80",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: ads(), RouteConfigName: routeName}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
}

func listener(t testing.TB, name, routeName string) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm(t, routeName))}}}}},
	}
}

func routeTo(name string, clusters ...string) *routev3.RouteConfiguration {
	var routes []*routev3.Route
	for _, c := range clusters {
		routes = append(routes, &routev3.Route{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: c}}},
		})
	}
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{
		Name: "greeter:80", Domains: []string{"greeter", "greeter:80"}, Routes: routes}}}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(10 * time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads(), ServiceName: name},
	}
}

func cla(name string, port uint32, md *corev3.Metadata) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		Locality:            &corev3.Locality{Region: "r1"},
		LoadBalancingWeight: wrapperspb.UInt32(1),
		LbEndpoints: []*endpointv3.LbEndpoint{{
			Metadata: md,
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "10.1.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}}},
		}},
	}}}
}

func sdsRef(name string, src *corev3.ConfigSource) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: src}
}

func withTLS(t testing.TB, c *clusterv3.Cluster, cert, root *tlsv3.SdsSecretConfig) *clusterv3.Cluster {
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{cert},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: root},
	}}
	c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, ctx)}}
	return c
}

func snap(flavour string, msgs ...proto.Message) *Snapshot {
	s := &Snapshot{Flavour: flavour, Have: map[string]bool{}}
	for _, t := range allTypes {
		s.Have[t] = true
	}
	for _, m := range msgs {
		var typeURL string
		switch m.(type) {
		case *listenerv3.Listener:
			typeURL = typeLDS
		case *routev3.RouteConfiguration:
			typeURL = typeRDS
		case *clusterv3.Cluster:
			typeURL = typeCDS
		case *endpointv3.ClusterLoadAssignment:
			typeURL = typeEDS
		case *tlsv3.Secret:
			typeURL = typeSDS
		}
		b, _ := proto.Marshal(m)
		s.add(&Resource{TypeURL: typeURL, Name: ownName(m), Msg: m, Raw: b})
	}
	return s
}

const cGreeter = "outbound|80||greeter.default.svc.cluster.local"

func goodEnvoy(t testing.TB) []proto.Message {
	return []proto.Message{
		listener(t, "0.0.0.0_80", "80"),
		routeTo("80", cGreeter),
		edsCluster(cGreeter),
		cla(cGreeter, 8080, nil),
	}
}

func violations(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if !f.Warn {
			out = append(out, f)
		}
	}
	return out
}

// expect: exactly one violation whose line contains every part.
func expectOne(t *testing.T, fs []Finding, parts ...string) {
	t.Helper()
	vs := violations(fs)
	var hit []string
	for _, f := range vs {
		line := f.String()
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
			}
		}
		if ok {
			hit = append(hit, line)
		}
	}
	if len(hit) != 1 || len(vs) != 1 {
		var all []string
		for _, f := range fs {
			all = append(all, f.String())
		}
		t.Fatalf("want exactly one violation with %q, got:\n%s", parts, strings.Join(all, "\n"))
	}
}

func TestConsistentSnapshotIsClean(t *testing.T) {
	fs := Check(snap("sidecar", goodEnvoy(t)...), Options{})
	if len(fs) != 0 {
		t.Fatalf("clean snapshot reported %v", fs)
	}
}

func TestRouteToMissingCluster(t *testing.T) {
	ms := goodEnvoy(t)
	ms[1] = routeTo("80", cGreeter, "outbound|80||missing.default.svc.cluster.local")
	fs := Check(snap("sidecar", ms...), Options{})
	expectOne(t, fs, "VIOLATION sidecar RDS 80: virtual_hosts[0].routes[1].route.cluster:",
		`cluster "outbound|80||missing.default.svc.cluster.local" is not in CDS`)
}

func TestWeightedClusterMissing(t *testing.T) {
	ms := goodEnvoy(t)
	rc := routeTo("80", cGreeter)
	rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{
		WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
			{Name: cGreeter, Weight: wrapperspb.UInt32(80)},
			{Name: "outbound|80|v9|greeter.default.svc.cluster.local", Weight: wrapperspb.UInt32(20)},
		}}}
	ms[1] = rc
	fs := Check(snap("sidecar", ms...), Options{})
	expectOne(t, fs, "weighted_clusters.clusters[1].name", "v9", "is not in CDS")
}

func TestClusterHeaderIsNotAReference(t *testing.T) {
	ms := goodEnvoy(t)
	rc := routeTo("80", cGreeter)
	rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_ClusterHeader{ClusterHeader: "x-cluster"}
	ms[1] = rc
	if vs := violations(Check(snap("sidecar", ms...), Options{})); len(vs) != 0 {
		t.Fatalf("cluster_header reported: %v", vs)
	}
}

func TestEDSClusterWithoutAssignment(t *testing.T) {
	ms := goodEnvoy(t)
	ms = ms[:3] // no ClusterLoadAssignment
	fs := Check(snap("sidecar", ms...), Options{})
	expectOne(t, fs, "VIOLATION sidecar CDS "+cGreeter+": eds_cluster_config.service_name:",
		"is not served over EDS")
}

func TestEDSByClusterNameWhenNoServiceName(t *testing.T) {
	ms := goodEnvoy(t)
	c := edsCluster(cGreeter)
	c.EdsClusterConfig.ServiceName = ""
	ms[2] = c
	if vs := violations(Check(snap("sidecar", ms...), Options{})); len(vs) != 0 {
		t.Fatalf("reported: %v", vs)
	}
	ms[3] = cla("other", 8080, nil)
	expectOne(t, Check(snap("sidecar", ms...), Options{}), cGreeter, "is not served over EDS")
}

func TestRDSNameNotServed(t *testing.T) {
	ms := goodEnvoy(t)
	ms[0] = listener(t, "0.0.0.0_80", "8080")
	fs := Check(snap("sidecar", ms...), Options{})
	// the route config "80" is then unused (fine), "8080" is missing
	expectOne(t, fs, "LDS 0.0.0.0_80: filter_chains[0].filters[0].typed_config.rds.route_config_name:",
		`route configuration "8080" is not served over RDS`)
}

func TestSDSDefaultOverADS(t *testing.T) {
	ms := goodEnvoy(t)
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("default", ads()), sdsRef("ROOTCA", istioSdsConfig()))
	fs := Check(snap("sidecar", ms...), Options{})
	expectOne(t, fs, "CDS "+cGreeter+": transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config:",
		`secret "default" requested over ADS`, "sds-grpc")
}

func TestSDSIstioShapeIsClean(t *testing.T) {
	ms := goodEnvoy(t)
	src := istioSdsConfig()
	src.InitialFetchTimeout = durationpb.New(0) // Istio sets 0s
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("default", src), sdsRef("ROOTCA", istioSdsConfig()))
	if vs := violations(Check(snap("sidecar", ms...), Options{})); len(vs) != 0 {
		t.Fatalf("Istio's own shape reported: %v", vs)
	}
}

func TestSDSOtherCluster(t *testing.T) {
	ms := goodEnvoy(t)
	src := istioSdsConfig()
	src.GetApiConfigSource().GrpcServices[0].GetEnvoyGrpc().ClusterName = "sds"
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("default", istioSdsConfig()), sdsRef("ROOTCA", src))
	expectOne(t, Check(snap("sidecar", ms...), Options{}), "validation_context_sds_secret_config.sds_config.api_config_source.grpc_services",
		`["sds"]`, "sds-grpc")
	src = istioSdsConfig()
	src.GetApiConfigSource().SetNodeOnFirstMessageOnly = false
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("default", istioSdsConfig()), sdsRef("ROOTCA", src))
	expectOne(t, Check(snap("sidecar", ms...), Options{}), "validation_context_sds_secret_config.sds_config:", "not Istio's sds-grpc shape")
}

func TestSDSCredentialOverADSMustBeServed(t *testing.T) {
	ms := goodEnvoy(t)
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("kubernetes://cred", ads()), sdsRef("kubernetes://cred-cacert", ads()))
	fs := Check(snap("sidecar", append(ms, &tlsv3.Secret{Name: "kubernetes://cred"})...), Options{})
	expectOne(t, fs, `secret "kubernetes://cred-cacert" is requested over ADS but not served`)
}

func TestValidateAllRejectsInvalidField(t *testing.T) {
	ms := goodEnvoy(t)
	ms[3] = cla(cGreeter, 70000, nil) // port_value must be <= 65535
	fs := Check(snap("sidecar", ms...), Options{})
	expectOne(t, fs, "EDS "+cGreeter+": endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value:",
		"65535")
}

func TestValidateAllInsideAny(t *testing.T) {
	ms := goodEnvoy(t)
	l := listener(t, "0.0.0.0_80", "80")
	h := hcm(t, "80")
	h.StatPrefix = "" // min_len 1, only visible once the typed_config is unpacked
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}
	ms[0] = l
	expectOne(t, Check(snap("sidecar", ms...), Options{}), "filter_chains[0].filters[0].typed_config.stat_prefix:")
}

func TestUnknownTypedConfig(t *testing.T) {
	ms := goodEnvoy(t)
	l := listener(t, "0.0.0.0_80", "80")
	l.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "x",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: &anypb.Any{
			TypeUrl: "type.googleapis.com/istio.envoy.config.filter.nope.v1.Nope"}}}}
	ms[0] = l
	expectOne(t, Check(snap("sidecar", ms...), Options{}), "listener_filters[0].typed_config:", "unknown @type")
}

func TestUnknownFieldReported(t *testing.T) {
	ms := goodEnvoy(t)
	c := edsCluster(cGreeter)
	c.ProtoReflect().SetUnknown([]byte{0xf8, 0xff, 0x3f, 0x01}) // field 131071 varint 1
	ms[2] = c
	expectOne(t, Check(snap("sidecar", ms...), Options{}), "unknown field(s) 131071")
}

func TestRouterMustBeLast(t *testing.T) {
	ms := goodEnvoy(t)
	l := listener(t, "0.0.0.0_80", "80")
	h := hcm(t, "80")
	h.HttpFilters = append(h.HttpFilters, &hcmv3.HttpFilter{Name: "envoy.filters.http.cors",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}}})
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}
	ms[0] = l
	fs := violations(Check(snap("sidecar", ms...), Options{}))
	if len(fs) != 2 {
		t.Fatalf("want router-not-last and last-not-router, got %v", fs)
	}
}

func TestDuplicateDomains(t *testing.T) {
	ms := goodEnvoy(t)
	rc := routeTo("80", cGreeter)
	vh2 := proto.Clone(rc.VirtualHosts[0]).(*routev3.VirtualHost)
	vh2.Name = "other"
	vh2.Domains = []string{"GREETER"}
	rc.VirtualHosts = append(rc.VirtualHosts, vh2)
	ms[1] = rc
	expectOne(t, Check(snap("sidecar", ms...), Options{}), "virtual_hosts[1].domains[0]", "unique")
}

func tsmCluster(t testing.TB, key string) *clusterv3.Cluster {
	c := edsCluster(cGreeter)
	m, _ := structpb.NewStruct(map[string]any{key: "istio"})
	c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "tlsMode-istio", Match: m,
		TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer"}}}
	return c
}

func TestTransportSocketMatchKeys(t *testing.T) {
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	md.FilterMetadata[tsmMetadataKey], _ = structpb.NewStruct(map[string]any{"tlsMode": "istio"})
	ms := goodEnvoy(t)
	ms[3] = cla(cGreeter, 8080, md)
	ms[2] = tsmCluster(t, "tlsMode")
	if vs := violations(Check(snap("sidecar", ms...), Options{})); len(vs) != 0 {
		t.Fatalf("matching key reported: %v", vs)
	}
	ms[2] = tsmCluster(t, "tlsmode")
	expectOne(t, Check(snap("sidecar", ms...), Options{}), "transport_socket_matches[0].match.tlsmode", `"tlsMode"`)
	// no endpoint metadata at all: only a warning
	ms[3] = cla(cGreeter, 8080, nil)
	fs := Check(snap("sidecar", ms...), Options{})
	if len(violations(fs)) != 0 || len(fs) != 1 || !fs[0].Warn {
		t.Fatalf("want one warning, got %v", fs)
	}
}

// ---- gRPC rules ----------------------------------------------------------------------------

func grpcListener(t testing.TB, name, route string) *listenerv3.Listener {
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, hcm(t, route))}}
}

func goodGRPC(t testing.TB) []proto.Message {
	rc := routeTo(cGreeter, cGreeter)
	return []proto.Message{grpcListener(t, "greeter:80", cGreeter), rc, edsCluster(cGreeter), cla(cGreeter, 8080, nil)}
}

func TestGRPCClean(t *testing.T) {
	if fs := Check(snap("grpc-client", goodGRPC(t)...), Options{}); len(fs) != 0 {
		t.Fatalf("clean gRPC snapshot reported %v", fs)
	}
}

func TestGRPCListenerWithoutAPIListener(t *testing.T) {
	ms := goodGRPC(t)
	ms[0] = listener(t, "greeter:80", cGreeter)
	expectOne(t, Check(snap("grpc-client", ms...), Options{}), "LDS greeter:80: api_listener:", "without api_listener")
}

func TestGRPCLocalityWithoutWeight(t *testing.T) {
	ms := goodGRPC(t)
	a := cla(cGreeter, 8080, nil)
	a.Endpoints[0].LoadBalancingWeight = nil
	ms[3] = a
	expectOne(t, Check(snap("grpc-client", ms...), Options{}), "endpoints[0].load_balancing_weight", "drops")
}

func TestGRPCDuplicateEndpoint(t *testing.T) {
	ms := goodGRPC(t)
	a := cla(cGreeter, 8080, nil)
	a.Endpoints[0].LbEndpoints = append(a.Endpoints[0].LbEndpoints, a.Endpoints[0].LbEndpoints[0])
	ms[3] = a
	expectOne(t, Check(snap("grpc-client", ms...), Options{}), "lb_endpoints[1]", "duplicate endpoint address 10.1.0.7:8080")
}

func TestGRPCLeastRequestAndSDS(t *testing.T) {
	ms := goodGRPC(t)
	c := edsCluster(cGreeter)
	c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	ms[2] = c
	expectOne(t, Check(snap("grpc-client", ms...), Options{}), "CDS "+cGreeter+": lb_policy:", "LEAST_REQUEST")
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("default", ads()), sdsRef("ROOTCA", ads()))
	fs := violations(Check(snap("grpc-client", ms...), Options{}))
	n := 0
	for _, f := range fs {
		if strings.Contains(f.Reason, "gRPC does not support SDS") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("want the two SDS references reported, got %v", fs)
	}
}

func TestGRPCServerListenerAddress(t *testing.T) {
	h := hcm(t, "")
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
		Name: "inbound", VirtualHosts: []*routev3.VirtualHost{{Name: "inbound", Domains: []string{"*"},
			Routes: []*routev3.Route{{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}}}}}}}}
	l := &listenerv3.Listener{Name: grpcInboundPrefix + "10.1.0.7:8080",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "10.1.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "hcm",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}}}}}}
	if fs := Check(snap("grpc-server", l), Options{}); len(fs) != 0 {
		t.Fatalf("clean server listener reported %v", fs)
	}
	l2 := proto.Clone(l).(*listenerv3.Listener)
	l2.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: 9090}
	expectOne(t, Check(snap("grpc-server", l2), Options{}), "address.socket_address", "does not match")
	h.GetRouteConfig().VirtualHosts[0].Routes[0].Action = &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "x"}}}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}
	fs := violations(Check(snap("grpc-server", l), Options{}))
	found := false
	for _, f := range fs {
		found = found || strings.Contains(f.Reason, "non_forwarding_action")
	}
	if !found {
		t.Fatalf("forwarding route on a server listener not reported: %v", fs)
	}
}

// ---- the three sources ---------------------------------------------------------------------

func TestDirMode(t *testing.T) {
	dir := t.TempDir()
	var idx bytes.Buffer
	ms := goodEnvoy(t)
	ms[1] = routeTo("80", cGreeter, "outbound|80||missing.default.svc.cluster.local")
	for i, m := range ms {
		b, _ := proto.Marshal(m)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.bin", i)), b, 0o644)
		tu := map[int]string{0: typeLDS, 1: typeRDS, 2: typeCDS, 3: typeEDS}[i]
		fmt.Fprintf(&idx, "sidecar %s %d.bin %s\n", tu, i, ownName(m))
	}
	os.WriteFile(filepath.Join(dir, "index"), idx.Bytes(), 0o644)
	var out, errb bytes.Buffer
	rc := run([]string{"dir", dir}, &out, &errb)
	if rc != 1 || !strings.Contains(out.String(), "VIOLATION sidecar RDS 80: virtual_hosts[0].routes[1].route.cluster: cluster \"outbound|80||missing.default.svc.cluster.local\" is not in CDS") ||
		!strings.Contains(out.String(), "xdscheck: 4 resources, 1 violations") {
		t.Fatalf("rc %d\n%s%s", rc, out.String(), errb.String())
	}
	if rc := run([]string{"dir"}, &out, &errb); rc != 2 {
		t.Fatalf("usage error: rc %d", rc)
	}
}

func TestDumpMode(t *testing.T) {
	mo := protojson.MarshalOptions{UseProtoNames: true}
	js := func(m proto.Message) string {
		a := mustAny(t, m)
		b, err := mo.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ms := goodEnvoy(t)
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("default", ads()), sdsRef("ROOTCA", istioSdsConfig()))
	secret := `{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"kubernetes://x",
	  "tls_certificate":{"certificate_chain":{"inline_bytes":"QUJD"},"private_key":{"inline_bytes":"[redacted]"}}}`
	dump := fmt.Sprintf(`{"configs":[
	 {"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump","version_info":"1","dynamic_active_clusters":[{"version_info":"1","cluster":%s,"last_updated":"2026-01-01T00:00:00Z"}]},
	 {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","dynamic_listeners":[{"name":"0.0.0.0_80","active_state":{"listener":%s}}]},
	 {"@type":"type.googleapis.com/envoy.admin.v3.RoutesConfigDump","dynamic_route_configs":[{"route_config":%s},
	   {"route_config":{"@type":"type.googleapis.com/envoy.config.route.v3.RouteConfiguration","name":"bad","no_such_field":1}}]},
	 {"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump","dynamic_active_secrets":[{"name":"kubernetes://x","secret":%s}]},
	 {"@type":"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump","dynamic_endpoint_configs":[{"endpoint_config":%s}]}]}`,
		js(ms[2]), js(ms[0]), js(ms[1]), secret, js(ms[3]))
	f := filepath.Join(t.TempDir(), "dump.json")
	os.WriteFile(f, []byte(dump), 0o644)
	var out, errb bytes.Buffer
	rc := run([]string{"dump", f}, &out, &errb)
	o := out.String()
	if rc != 1 || !strings.Contains(o, `VIOLATION envoy CDS `+cGreeter+`: transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config: secret "default" requested over ADS`) ||
		!strings.Contains(o, "VIOLATION envoy RDS bad:") || !strings.Contains(o, "no_such_field") ||
		!strings.Contains(o, "xdscheck: 5 resources, 2 violations") {
		t.Fatalf("rc %d\n%s%s", rc, o, errb.String())
	}
}

// a tiny ADS server: answers each request with the resources of its type (by name when
// named), so the client's subscription sequence is exercised end to end.
type fakeADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	res map[string][]proto.Message
	t   testing.TB
}

func (f *fakeADS) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	answered := map[string]string{} // type -> the name set last answered
	n := 0
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		key := strings.Join(req.GetResourceNames(), ",")
		if last, ok := answered[req.GetTypeUrl()]; ok && last == key {
			continue // an ACK
		}
		answered[req.GetTypeUrl()] = key
		want := map[string]bool{}
		for _, n := range req.GetResourceNames() {
			want[n] = true
		}
		n++
		resp := &discoveryv3.DiscoveryResponse{TypeUrl: req.GetTypeUrl(), VersionInfo: "v1", Nonce: fmt.Sprint(n)}
		for _, m := range f.res[req.GetTypeUrl()] {
			if len(want) == 0 || want[ownName(m)] {
				resp.Resources = append(resp.Resources, mustAny(f.t, m))
			}
		}
		if err := s.Send(resp); err != nil {
			return nil
		}
	}
}

func TestADSMode(t *testing.T) {
	ms := goodEnvoy(t)
	ms[2] = withTLS(t, edsCluster(cGreeter), sdsRef("kubernetes://cred", ads()), sdsRef("ROOTCA", ads()))
	f := &fakeADS{t: t, res: map[string][]proto.Message{}}
	for _, m := range append(ms, &tlsv3.Secret{Name: "kubernetes://cred"}) {
		tu := map[string]string{"Listener": typeLDS, "RouteConfiguration": typeRDS, "Cluster": typeCDS,
			"ClusterLoadAssignment": typeEDS, "Secret": typeSDS}[string(m.ProtoReflect().Descriptor().Name())]
		f.res[tu] = append(f.res[tu], m)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, f)
	go srv.Serve(lis)
	defer srv.Stop()
	var out, errb bytes.Buffer
	rc := run([]string{"ads", "--addr", lis.Addr().String(), "--node", "sidecar~10.1.0.5~reviews-v1.default~default.svc.cluster.local",
		"--timeout", "5s"}, &out, &errb)
	o := out.String()
	if rc != 1 || !strings.Contains(o, `VIOLATION sidecar CDS `+cGreeter+`: transport_socket.typed_config.common_tls_context.validation_context_sds_secret_config.sds_config: secret "ROOTCA" requested over ADS`) ||
		!strings.Contains(o, "xdscheck: 5 resources, 1 violations") {
		t.Fatalf("rc %d\n%s%s", rc, o, errb.String())
	}
	if rc := run([]string{"ads", "--addr", "127.0.0.1:1", "--node", "sidecar~1.2.3.4~a.b~b.svc.cluster.local", "--timeout", "1s"}, &out, &errb); rc != 2 {
		t.Fatalf("connect error: rc %d", rc)
	}
}

func TestSnakeField(t *testing.T) {
	for in, want := range map[string]string{
		"FilterChains[0]": "filter_chains[0]", "PortValue": "port_value", "Ipv4Compat": "ipv4_compat",
		"FilterMetadata[envoy.lb]": "filter_metadata[envoy.lb]", "HTTPFilters": "http_filters",
	} {
		if got := snakeField(in); got != want {
			t.Errorf("snakeField(%q) = %q, want %q", in, got, want)
		}
	}
}

func grpcTLSCluster(t testing.TB, ct *tlsv3.CommonTlsContext) *clusterv3.Cluster {
	c := edsCluster(cGreeter)
	c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlsv3.UpstreamTlsContext{CommonTlsContext: ct})}}
	return c
}

func TestGRPCCertificateProviderFields(t *testing.T) {
	ms := goodGRPC(t)
	// A29 fields only: clean
	ms[2] = grpcTLSCluster(t, &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: &tlsv3.CertificateProviderPluginInstance{InstanceName: "default", CertificateName: "default"},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			CaCertificateProviderInstance: &tlsv3.CertificateProviderPluginInstance{InstanceName: "default", CertificateName: "ROOTCA"}}},
	})
	if fs := Check(snap("grpc-client", ms...), Options{}); len(fs) != 0 {
		t.Fatalf("A29 shape reported %v", fs)
	}
	// an instance the bootstrap lacks
	ms[2] = grpcTLSCluster(t, &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: &tlsv3.CertificateProviderPluginInstance{InstanceName: "default"},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			CaCertificateProviderInstance: &tlsv3.CertificateProviderPluginInstance{InstanceName: "other"}}},
	})
	expectOne(t, Check(snap("grpc-client", ms...), Options{}), "validation_context.ca_certificate_provider_instance.instance_name", `"other"`)
	// new identity field with the deprecated root field: gRPC-Go loses the identity
	ms[2] = grpcTLSCluster(t, &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: &tlsv3.CertificateProviderPluginInstance{InstanceName: "default", CertificateName: "default"},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextCertificateProviderInstance{
			ValidationContextCertificateProviderInstance: &tlsv3.CommonTlsContext_CertificateProviderInstance{InstanceName: "default", CertificateName: "ROOTCA"}},
	})
	expectOne(t, Check(snap("grpc-client", ms...), Options{}), "common_tls_context:", "mixes tls_certificate_provider_instance")
}
