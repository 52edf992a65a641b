package main

import (
	"bytes"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// Istio's agent bootstrap provides this cluster; it is never in CDS.
	sdsClusterName = "sds-grpc"
	// The filter_metadata key Envoy's transport_socket_matches read from endpoints.
	tsmMetadataKey = "envoy.transport_socket_match"
	// gRPC server listener names (Istio's server_listener_resource_name_template).
	grpcInboundPrefix = "xds.istio.io/grpc/lds/inbound/"
)

// Istio's workload secrets: served by the agent on sds-grpc, never by istiod over ADS.
var istioWorkloadSecrets = map[string]bool{"default": true, "ROOTCA": true}

// istioSdsConfig is exactly the sds_config Istio emits for secrets from its agent
// (pkg/model/authentication.go); initial_fetch_timeout (Istio sets 0s) may be present or not.
func istioSdsConfig() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{
			ApiConfigSource: &corev3.ApiConfigSource{
				ApiType:                   corev3.ApiConfigSource_GRPC,
				TransportApiVersion:       corev3.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
						EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: sdsClusterName},
					},
				}},
			},
		},
	}
}

// The HTTP filters gRPC implements (by typed_config type); others must be is_optional.
var grpcClientFilters = map[string]bool{
	"envoy.extensions.filters.http.router.v3.Router":   true,
	"envoy.extensions.filters.http.fault.v3.HTTPFault": true,
	"envoy.extensions.filters.http.rbac.v3.RBAC":       true,
}
var grpcServerFilters = map[string]bool{
	"envoy.extensions.filters.http.router.v3.Router": true,
	"envoy.extensions.filters.http.rbac.v3.RBAC":     true,
}

const routerType = "envoy.extensions.filters.http.router.v3.Router"

type ref struct {
	res  *Resource
	path string
	name string
}

type tsmRef struct {
	res  *Resource
	path string
	key  string
}

// Options that a client's bootstrap decides (gRPC certificate-provider instance names).
type Options struct {
	CertProviders []string // gRPC bootstrap certificate_providers keys; default ["default"]
}

type checker struct {
	s    *Snapshot
	opts Options
	out  []Finding
	cur  *Resource

	served map[string]map[string]bool

	cdsRefs, rdsRefs, edsRefs, sdsAdsRefs []ref
	// route configurations used by gRPC server listeners (their routes must be
	// non-forwarding)
	serverRoutes map[string]bool
	tsm          []tsmRef
	epKeys       map[string]bool
	epWithMeta   int
}

// Check runs every rule on one snapshot.
func Check(s *Snapshot, opts Options) []Finding {
	if len(opts.CertProviders) == 0 {
		opts.CertProviders = []string{"default"}
	}
	c := &checker{s: s, opts: opts, served: map[string]map[string]bool{},
		serverRoutes: map[string]bool{}, epKeys: map[string]bool{}}
	c.out = append(c.out, s.Pre...)
	res := dedupe(s.Resources)
	order := map[string]int{typeLDS: 0, typeRDS: 1, typeCDS: 2, typeEDS: 3, typeSDS: 4}
	sort.SliceStable(res, func(i, j int) bool { return order[res[i].TypeURL] < order[res[j].TypeURL] })

	for _, r := range res {
		if c.served[r.TypeURL] == nil {
			c.served[r.TypeURL] = map[string]bool{}
		}
		c.served[r.TypeURL][r.Name] = true
	}
	for _, r := range res {
		c.cur = r
		c.checkName(r)
		w := &walker{finding: c.violation, visit: c.visit}
		w.root(r.Msg)
	}
	c.cur = nil
	c.resolve()
	return c.out
}

func dedupe(in []*Resource) []*Resource {
	var out []*Resource
	seen := map[string][][]byte{}
	for _, r := range in {
		k := r.TypeURL + "\x00" + r.Name
		dup := false
		if r.Raw != nil {
			for _, b := range seen[k] {
				if bytes.Equal(b, r.Raw) {
					dup = true
					break
				}
			}
			seen[k] = append(seen[k], r.Raw)
		}
		if !dup {
			out = append(out, r)
		}
	}
	return out
}

func (c *checker) add(r *Resource, warn bool, path, reason string) {
	f := Finding{Warn: warn, Flavour: c.s.Flavour, Path: path, Reason: reason}
	if r != nil {
		f.Type = typeLabel(r.TypeURL)
		f.Name = r.Name
	}
	c.out = append(c.out, f)
}

func (c *checker) violation(path, reason string) { c.add(c.cur, false, path, reason) }
func (c *checker) warning(path, reason string)   { c.add(c.cur, true, path, reason) }
func (c *checker) grpc() bool                    { return isGRPCFlavour(c.s.Flavour) }

func (c *checker) checkName(r *Resource) {
	var own string
	switch m := r.Msg.(type) {
	case *listenerv3.Listener:
		own = m.GetName()
	case *routev3.RouteConfiguration:
		own = m.GetName()
	case *clusterv3.Cluster:
		own = m.GetName()
	case *endpointv3.ClusterLoadAssignment:
		own = m.GetClusterName()
	case *tlsv3.Secret:
		own = m.GetName()
	default:
		return
	}
	if own != r.Name {
		field := "name"
		if r.TypeURL == typeEDS {
			field = "cluster_name"
		}
		c.violation(field, fmt.Sprintf("resource served as %q names itself %q", r.Name, own))
	}
}

// visit is called for every message of the current resource, unpacked Anys included.
func (c *checker) visit(path string, m proto.Message) {
	switch v := m.(type) {
	case *listenerv3.Listener:
		if path == "" {
			c.listener(v)
		}
	case *listenerv3.FilterChain:
		c.filterChain(path, v)
	case *hcmv3.HttpConnectionManager:
		c.hcm(path, v)
	case *routev3.RouteConfiguration:
		c.routeConfig(path, v)
	case *routev3.Route:
		c.route(path, v)
	case *routev3.RouteAction:
		c.routeAction(path, v)
	case *routev3.HeaderMatcher:
		if c.grpc() && v.GetStringMatch() != nil {
			c.violation(path+".string_match",
				"gRPC C core 1.51 NACKs HeaderMatcher.string_match (use exact/prefix/suffix/safe_regex/present/range)")
		}
	case *routev3.RetryPolicy:
		if c.grpc() && v.GetNumRetries() != nil && v.GetNumRetries().GetValue() == 0 {
			c.violation(path+".num_retries", "gRPC NACKs num_retries 0")
		}
	case *tcpv3.TcpProxy:
		c.tcpProxy(path, v)
	case *clusterv3.Cluster:
		if path == "" {
			c.cluster(v)
		}
	case *endpointv3.ClusterLoadAssignment:
		c.cla(path, v)
	case *tlsv3.SdsSecretConfig:
		c.sds(path, v)
	case *tlsv3.CommonTlsContext:
		c.commonTLS(path, v)
	case *tlsv3.DownstreamTlsContext:
		c.downstreamTLS(path, v)
	case *corev3.TransportSocket:
		if c.grpc() {
			if t := anyName(v.GetTypedConfig().GetTypeUrl()); t != "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" &&
				t != "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext" {
				c.violation(path+".typed_config", fmt.Sprintf("gRPC supports only TLS transport sockets, not %q", t))
			}
		}
	}
}

func anyName(typeURL string) string {
	if i := strings.LastIndex(typeURL, "/"); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}

// ---- listeners ----------------------------------------------------------------------------

func (c *checker) grpcServerListener(l *listenerv3.Listener) bool {
	return grpcServerFlavour(c.s.Flavour) ||
		(c.grpc() && strings.HasPrefix(l.GetName(), grpcInboundPrefix))
}

func (c *checker) listener(l *listenerv3.Listener) {
	switch {
	case c.grpc() && !c.grpcServerListener(l):
		if l.GetApiListener() == nil {
			c.violation("api_listener", "gRPC client listener without api_listener (gRPC NACKs it)")
			return
		}
		if t := anyName(l.GetApiListener().GetApiListener().GetTypeUrl()); t != "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" {
			c.violation("api_listener.api_listener", fmt.Sprintf("gRPC needs an HttpConnectionManager here, not %q", t))
		}
		if len(l.GetFilterChains()) > 0 {
			c.warning("filter_chains", "gRPC client listener: filter_chains are ignored")
		}
	case c.grpc():
		if l.GetApiListener() != nil {
			c.violation("api_listener", "gRPC server listener must not be an API listener")
		}
		want := strings.TrimPrefix(l.GetName(), grpcInboundPrefix)
		sa := l.GetAddress().GetSocketAddress()
		if sa == nil {
			c.violation("address", "gRPC server listener without socket_address")
		} else {
			got := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
			if strings.HasPrefix(l.GetName(), grpcInboundPrefix) && got != want {
				c.violation("address.socket_address",
					fmt.Sprintf("listener address %s does not match the requested %s (gRPC refuses to serve)", got, want))
			}
		}
		if len(l.GetFilterChains()) == 0 && l.GetDefaultFilterChain() == nil {
			c.violation("filter_chains", "gRPC server listener without filter chains")
		}
		chains := append([]*listenerv3.FilterChain{}, l.GetFilterChains()...)
		paths := []string{}
		for i := range l.GetFilterChains() {
			paths = append(paths, fmt.Sprintf("filter_chains[%d]", i))
		}
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains, l.GetDefaultFilterChain())
			paths = append(paths, "default_filter_chain")
		}
		for i, fc := range chains {
			if len(fc.GetFilters()) != 1 {
				c.violation(paths[i]+".filters", fmt.Sprintf("gRPC server filter chain needs exactly one filter (HttpConnectionManager), has %d", len(fc.GetFilters())))
				continue
			}
			if t := anyName(fc.GetFilters()[0].GetTypedConfig().GetTypeUrl()); t != "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" {
				c.violation(paths[i]+".filters[0].typed_config", fmt.Sprintf("gRPC server filter must be an HttpConnectionManager, not %q", t))
				continue
			}
			h := &hcmv3.HttpConnectionManager{}
			if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(h); err == nil && h.GetRds() != nil {
				c.serverRoutes[h.GetRds().GetRouteConfigName()] = true
			}
		}
	default:
		if l.GetAddress() == nil && l.GetInternalListener() == nil && l.GetApiListener() == nil {
			c.violation("address", "listener without address (Envoy rejects it)")
		}
		c.duplicateChains("filter_chains", l.GetFilterChains())
	}
}

func (c *checker) duplicateChains(path string, fcs []*listenerv3.FilterChain) {
	for i := range fcs {
		for j := 0; j < i; j++ {
			a, b := fcs[j].GetFilterChainMatch(), fcs[i].GetFilterChainMatch()
			if proto.Equal(a, b) {
				c.violation(fmt.Sprintf("%s[%d].filter_chain_match", path, i),
					fmt.Sprintf("same match as %s[%d] (Envoy: multiple filter chains with the same matching rules)", path, j))
			}
		}
	}
}

var terminalNetworkFilters = map[string]bool{
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager": true,
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy":                            true,
	"envoy.extensions.filters.network.direct_response.v3.Config":                        true,
	"envoy.extensions.filters.network.redis_proxy.v3.RedisProxy":                        true,
	"envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy":                      true,
	"envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy":                        true,
	"envoy.extensions.filters.network.echo.v3.Echo":                                     true,
	"envoy.extensions.filters.network.sni_dynamic_forward_proxy.v3.FilterConfig":        false,
}

func (c *checker) filterChain(path string, fc *listenerv3.FilterChain) {
	if c.grpc() {
		return
	}
	fs := fc.GetFilters()
	if len(fs) == 0 {
		c.violation(joinPath(path, "filters"), "filter chain without network filters")
		return
	}
	for i, f := range fs {
		t := anyName(f.GetTypedConfig().GetTypeUrl())
		if f.GetTypedConfig() == nil {
			continue
		}
		last := i == len(fs)-1
		if terminalNetworkFilters[t] && !last {
			c.violation(fmt.Sprintf("%s.filters[%d]", path, i), fmt.Sprintf("terminal filter %s is not the last filter", t))
		}
		if last && !terminalNetworkFilters[t] {
			c.violation(fmt.Sprintf("%s.filters[%d]", path, i), fmt.Sprintf("last network filter %s is not a terminal filter", t))
		}
	}
}

// ---- HttpConnectionManager ------------------------------------------------------------------

func (c *checker) hcm(path string, h *hcmv3.HttpConnectionManager) {
	serverSide := c.cur.TypeURL == typeLDS && c.grpc() && !strings.HasPrefix(path, "api_listener")
	switch {
	case h.GetRds() != nil:
		cs := h.GetRds().GetConfigSource()
		if cs.GetAds() == nil && !(c.grpc() && cs.GetSelf() != nil) {
			c.violation(joinPath(path, "rds.config_source"), "RDS must come over ADS (config_source { ads {} })")
		}
		c.rdsRefs = append(c.rdsRefs, ref{c.cur, joinPath(path, "rds.route_config_name"), h.GetRds().GetRouteConfigName()})
	case h.GetRouteConfig() != nil:
	case h.GetScopedRoutes() != nil:
		if c.grpc() {
			c.violation(joinPath(path, "scoped_routes"), "gRPC supports only rds or route_config")
		}
	default:
		c.violation(path, "HttpConnectionManager without rds or route_config")
	}
	fs := h.GetHttpFilters()
	if len(fs) == 0 {
		if c.grpc() {
			c.violation(joinPath(path, "http_filters"), "gRPC NACKs an HttpConnectionManager without http_filters")
		}
		return
	}
	for i, f := range fs {
		p := fmt.Sprintf("%s[%d]", joinPath(path, "http_filters"), i)
		t := anyName(f.GetTypedConfig().GetTypeUrl())
		if f.GetTypedConfig() == nil && f.GetConfigDiscovery() == nil && !f.GetDisabled() {
			c.violation(p, fmt.Sprintf("filter %q without typed_config", f.GetName()))
			continue
		}
		if t == routerType && i != len(fs)-1 {
			c.violation(p, "router filter is not the last HTTP filter")
		}
		if c.grpc() && f.GetTypedConfig() != nil && !f.GetIsOptional() {
			known := grpcClientFilters
			if serverSide {
				known = grpcServerFilters
			}
			if !known[t] {
				c.violation(p+".typed_config", fmt.Sprintf("gRPC does not implement %s and the filter is not is_optional", t))
			}
		}
	}
	if t := anyName(fs[len(fs)-1].GetTypedConfig().GetTypeUrl()); t != routerType {
		c.violation(fmt.Sprintf("%s[%d]", joinPath(path, "http_filters"), len(fs)-1),
			fmt.Sprintf("last HTTP filter must be the router, is %q", t))
	}
}

// ---- routes -------------------------------------------------------------------------------

func (c *checker) routeConfig(path string, rc *routev3.RouteConfiguration) {
	domains := map[string]string{}
	names := map[string]int{}
	for i, vh := range rc.GetVirtualHosts() {
		p := fmt.Sprintf("%s[%d]", joinPath(path, "virtual_hosts"), i)
		if j, ok := names[vh.GetName()]; ok {
			c.violation(p+".name", fmt.Sprintf("virtual host name %q repeats virtual_hosts[%d]", vh.GetName(), j))
		}
		names[vh.GetName()] = i
		for k, d := range vh.GetDomains() {
			if prev, ok := domains[strings.ToLower(d)]; ok {
				c.violation(fmt.Sprintf("%s.domains[%d]", p, k),
					fmt.Sprintf("domain %q already in %s (Envoy: only unique values for domains are permitted)", d, prev))
			} else {
				domains[strings.ToLower(d)] = p
			}
		}
		if c.grpc() {
			if len(vh.GetDomains()) == 0 {
				c.violation(p+".domains", "gRPC NACKs a virtual host without domains")
			}
			if len(vh.GetRoutes()) == 0 {
				c.violation(p+".routes", "gRPC NACKs a virtual host without routes")
			}
		}
	}
}

// serverRoute: inside a gRPC server listener (inline) or an RDS resource one names.
func (c *checker) serverRoute(path string) bool {
	if !c.grpc() {
		return false
	}
	if c.cur.TypeURL == typeLDS {
		return !strings.HasPrefix(path, "api_listener")
	}
	return c.cur.TypeURL == typeRDS && (grpcServerFlavour(c.s.Flavour) || c.serverRoutes[c.cur.Name])
}

func (c *checker) route(path string, r *routev3.Route) {
	if !c.grpc() {
		return
	}
	if r.GetMatch().GetPathSpecifier() == nil {
		c.violation(path+".match", "gRPC NACKs a route without a path specifier")
	}
	if c.serverRoute(path) {
		if r.GetNonForwardingAction() == nil {
			c.violation(path, "gRPC server routes need non_forwarding_action (RPCs fail otherwise)")
		}
		return
	}
	if r.GetRoute() == nil {
		c.violation(path, "gRPC client routes need a route action (RPCs matching it fail)")
	}
}

func (c *checker) routeAction(path string, a *routev3.RouteAction) {
	switch {
	case a.GetCluster() != "":
		c.cdsRefs = append(c.cdsRefs, ref{c.cur, path + ".cluster", a.GetCluster()})
	case a.GetWeightedClusters() != nil:
		wc := a.GetWeightedClusters()
		var sum uint64
		for i, cw := range wc.GetClusters() {
			sum += uint64(cw.GetWeight().GetValue())
			if cw.GetName() != "" {
				c.cdsRefs = append(c.cdsRefs, ref{c.cur, fmt.Sprintf("%s.weighted_clusters.clusters[%d].name", path, i), cw.GetName()})
			}
		}
		if c.grpc() {
			total := uint64(100)
			if wc.GetTotalWeight() != nil {
				total = uint64(wc.GetTotalWeight().GetValue())
			}
			if sum != total {
				c.violation(path+".weighted_clusters", fmt.Sprintf("weights sum to %d, total_weight is %d (gRPC C core NACKs it)", sum, total))
			}
		} else if sum == 0 {
			c.violation(path+".weighted_clusters", "weights sum to 0")
		} else if wc.GetTotalWeight() != nil && uint64(wc.GetTotalWeight().GetValue()) != sum {
			c.violation(path+".weighted_clusters", fmt.Sprintf("weights sum to %d, total_weight is %d", sum, wc.GetTotalWeight().GetValue()))
		}
	case a.GetClusterHeader() != "":
		if c.grpc() {
			c.violation(path+".cluster_header", "gRPC does not support cluster_header")
		}
	}
	for i, m := range a.GetRequestMirrorPolicies() {
		if m.GetCluster() != "" {
			c.cdsRefs = append(c.cdsRefs, ref{c.cur, fmt.Sprintf("%s.request_mirror_policies[%d].cluster", path, i), m.GetCluster()})
		}
	}
}

func (c *checker) tcpProxy(path string, t *tcpv3.TcpProxy) {
	if t.GetCluster() != "" {
		c.cdsRefs = append(c.cdsRefs, ref{c.cur, path + ".cluster", t.GetCluster()})
	}
	for i, w := range t.GetWeightedClusters().GetClusters() {
		c.cdsRefs = append(c.cdsRefs, ref{c.cur, fmt.Sprintf("%s.weighted_clusters.clusters[%d].name", path, i), w.GetName()})
	}
}

// ---- clusters and endpoints -----------------------------------------------------------------

func (c *checker) cluster(cl *clusterv3.Cluster) {
	custom := cl.GetClusterType()
	typ := cl.GetType()
	if custom == nil {
		switch typ {
		case clusterv3.Cluster_EDS:
			eds := cl.GetEdsClusterConfig()
			name := cl.GetName()
			if eds.GetServiceName() != "" {
				name = eds.GetServiceName()
			}
			cs := eds.GetEdsConfig()
			switch {
			case cs == nil:
				c.violation("eds_cluster_config.eds_config", "EDS cluster without eds_config")
			case cs.GetAds() == nil && !(c.grpc() && cs.GetSelf() != nil):
				c.violation("eds_cluster_config.eds_config", "EDS must come over ADS (eds_config { ads {} })")
			}
			c.edsRefs = append(c.edsRefs, ref{c.cur, "eds_cluster_config.service_name", name})
		case clusterv3.Cluster_LOGICAL_DNS:
			la := cl.GetLoadAssignment()
			n := 0
			for _, le := range la.GetEndpoints() {
				n += len(le.GetLbEndpoints())
			}
			if len(la.GetEndpoints()) != 1 || n != 1 {
				c.violation("load_assignment", fmt.Sprintf("LOGICAL_DNS cluster needs exactly one locality with one endpoint, has %d localities, %d endpoints", len(la.GetEndpoints()), n))
			}
		}
		if !c.grpc() {
			od := typ == clusterv3.Cluster_ORIGINAL_DST
			cp := cl.GetLbPolicy() == clusterv3.Cluster_CLUSTER_PROVIDED
			if od && !cp {
				c.violation("lb_policy", fmt.Sprintf("ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED, has %s", cl.GetLbPolicy()))
			}
			if cp && !od {
				c.violation("lb_policy", fmt.Sprintf("lb_policy CLUSTER_PROVIDED is not valid for cluster type %s", typ))
			}
		}
	}
	if c.grpc() {
		switch {
		case custom != nil:
			if custom.GetName() != "envoy.clusters.aggregate" {
				c.violation("cluster_type", fmt.Sprintf("gRPC supports only the aggregate custom cluster, not %q", custom.GetName()))
			}
		case typ != clusterv3.Cluster_EDS && typ != clusterv3.Cluster_LOGICAL_DNS:
			c.violation("type", fmt.Sprintf("gRPC supports only EDS, LOGICAL_DNS or aggregate clusters, not %s", typ))
		}
		if cl.GetLoadBalancingPolicy() == nil {
			switch cl.GetLbPolicy() {
			case clusterv3.Cluster_ROUND_ROBIN:
			case clusterv3.Cluster_RING_HASH:
				c.warning("lb_policy", "RING_HASH crashes gRPC C core 1.51 on the first pick")
			default:
				c.violation("lb_policy", fmt.Sprintf("gRPC supports lb_policy ROUND_ROBIN or RING_HASH, not %s", cl.GetLbPolicy()))
			}
		}
		if len(cl.GetTransportSocketMatches()) > 0 {
			c.violation("transport_socket_matches", "gRPC does not support transport_socket_matches")
		}
		return
	}
	for i, m := range cl.GetTransportSocketMatches() {
		keys := make([]string, 0, len(m.GetMatch().GetFields()))
		for k := range m.GetMatch().GetFields() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c.tsm = append(c.tsm, tsmRef{c.cur, fmt.Sprintf("transport_socket_matches[%d].match.%s", i, k), k})
		}
	}
}

func endpointAddr(ep *endpointv3.LbEndpoint) (*corev3.SocketAddress, string) {
	sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, ""
	}
	return sa, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
}

func (c *checker) cla(path string, la *endpointv3.ClusterLoadAssignment) {
	logicalDNS := false
	if cl, ok := c.cur.Msg.(*clusterv3.Cluster); ok && cl.GetType() == clusterv3.Cluster_LOGICAL_DNS && cl.GetClusterType() == nil {
		logicalDNS = true
	}
	prios := map[uint32]bool{}
	seen := map[string]string{}
	for i, le := range la.GetEndpoints() {
		lp := fmt.Sprintf("%s[%d]", joinPath(path, "endpoints"), i)
		prios[le.GetPriority()] = true
		c.epMeta(le.GetMetadata())
		if c.grpc() && !logicalDNS {
			if le.GetLocality() == nil {
				c.violation(lp+".locality", "gRPC NACKs an endpoint group without locality")
			}
			if le.GetLoadBalancingWeight().GetValue() == 0 {
				c.violation(lp+".load_balancing_weight", "gRPC silently drops a locality without load_balancing_weight")
			}
		}
		for j, ep := range le.GetLbEndpoints() {
			ep := ep
			p := fmt.Sprintf("%s.lb_endpoints[%d]", lp, j)
			c.epMeta(ep.GetMetadata())
			sa, key := endpointAddr(ep)
			if ep.GetEndpoint() != nil && sa == nil && !(ep.GetEndpoint().GetAddress().GetPipe() != nil && !c.grpc()) {
				c.violation(p+".endpoint.address", "endpoint without socket_address")
				continue
			}
			if sa == nil {
				continue
			}
			if c.grpc() && !logicalDNS {
				if net.ParseIP(sa.GetAddress()) == nil {
					c.violation(p+".endpoint.address.socket_address.address",
						fmt.Sprintf("gRPC takes only IP addresses in EDS, not %q", sa.GetAddress()))
				}
				if w := ep.GetLoadBalancingWeight(); w != nil && w.GetValue() == 0 {
					c.violation(p+".load_balancing_weight", "gRPC NACKs an endpoint weight of 0")
				}
				if prev, ok := seen[key]; ok {
					c.violation(p, fmt.Sprintf("duplicate endpoint address %s (also %s): gRPC NACKs it", key, prev))
				}
			}
			if _, ok := seen[key]; !ok {
				seen[key] = p
			}
		}
	}
	if c.grpc() && !logicalDNS {
		for p := uint32(0); p < uint32(len(prios)); p++ {
			if !prios[p] {
				c.violation(joinPath(path, "endpoints"), fmt.Sprintf("priorities are not contiguous from 0 (missing %d): gRPC NACKs it", p))
				break
			}
		}
	}
}

func (c *checker) epMeta(md *corev3.Metadata) {
	st := md.GetFilterMetadata()[tsmMetadataKey]
	if st == nil {
		return
	}
	c.epWithMeta++
	for k := range st.GetFields() {
		c.epKeys[k] = true
	}
}

// ---- TLS and SDS ----------------------------------------------------------------------------

func (c *checker) sds(path string, s *tlsv3.SdsSecretConfig) {
	if c.grpc() {
		c.violation(path, "gRPC does not support SDS (use certificate provider instances)")
		return
	}
	cs := s.GetSdsConfig()
	name := s.GetName()
	switch {
	case cs == nil:
		c.violation(path+".sds_config", fmt.Sprintf("secret %q without sds_config needs a static secret in the bootstrap", name))
	case cs.GetAds() != nil:
		if istioWorkloadSecrets[name] {
			c.violation(path+".sds_config", fmt.Sprintf("secret %q requested over ADS: Istio's workload secrets come from the agent on cluster %q (api_config_source), istiod never serves them", name, sdsClusterName))
			return
		}
		c.sdsAdsRefs = append(c.sdsAdsRefs, ref{c.cur, path + ".name", name})
	case cs.GetApiConfigSource() != nil:
		got := proto.Clone(cs).(*corev3.ConfigSource)
		if d := got.GetInitialFetchTimeout(); d != nil && proto.Equal(d, durationpb.New(0)) {
			got.InitialFetchTimeout = nil
		}
		if !proto.Equal(got, istioSdsConfig()) {
			clusters := []string{}
			for _, g := range cs.GetApiConfigSource().GetGrpcServices() {
				clusters = append(clusters, g.GetEnvoyGrpc().GetClusterName())
			}
			if len(clusters) != 1 || clusters[0] != sdsClusterName {
				c.violation(path+".sds_config.api_config_source.grpc_services",
					fmt.Sprintf("SDS source names cluster(s) %q; the only one Istio's agent bootstrap provides is %q", clusters, sdsClusterName))
			} else {
				c.violation(path+".sds_config",
					"not Istio's sds-grpc shape: api_config_source { api_type: GRPC, grpc_services { envoy_grpc { cluster_name: \"sds-grpc\" } }, set_node_on_first_message_only: true, transport_api_version: V3 }, resource_api_version: V3")
			}
		}
	default:
		c.violation(path+".sds_config", fmt.Sprintf("secret %q from an SDS source other than ADS or %s", name, sdsClusterName))
	}
}

type providerInstance interface {
	GetInstanceName() string
	GetCertificateName() string
}

func (c *checker) provider(path string, p providerInstance) {
	for _, n := range c.opts.CertProviders {
		if p.GetInstanceName() == n {
			return
		}
	}
	c.violation(path+".instance_name", fmt.Sprintf("certificate provider instance %q is not in the bootstrap (%q): gRPC NACKs it", p.GetInstanceName(), c.opts.CertProviders))
}

func (c *checker) commonTLS(path string, t *tlsv3.CommonTlsContext) {
	if !c.grpc() {
		return
	}
	if len(t.GetTlsCertificates()) > 0 {
		c.violation(path+".tls_certificates", "gRPC supports only certificate provider instances")
	}
	if p := t.GetTlsCertificateProviderInstance(); p != nil {
		c.provider(path+".tls_certificate_provider_instance", p)
	} else if p := t.GetTlsCertificateCertificateProviderInstance(); p != nil {
		c.provider(path+".tls_certificate_certificate_provider_instance", p)
	}
	root := false
	switch {
	case t.GetCombinedValidationContext() != nil:
		cv := t.GetCombinedValidationContext()
		if p := cv.GetValidationContextCertificateProviderInstance(); p != nil {
			root = true
			c.provider(path+".combined_validation_context.validation_context_certificate_provider_instance", p)
		}
		if p := cv.GetDefaultValidationContext().GetCaCertificateProviderInstance(); p != nil {
			root = true
			c.provider(path+".combined_validation_context.default_validation_context.ca_certificate_provider_instance", p)
		}
	case t.GetValidationContext() != nil:
		if p := t.GetValidationContext().GetCaCertificateProviderInstance(); p != nil {
			root = true
			c.provider(path+".validation_context.ca_certificate_provider_instance", p)
		}
	case t.GetValidationContextCertificateProviderInstance() != nil:
		root = true
		c.provider(path+".validation_context_certificate_provider_instance", t.GetValidationContextCertificateProviderInstance())
	}
	server := strings.Contains(path, "filter_chain")
	if !server && !root {
		c.violation(path, "gRPC client TLS needs a root certificate provider instance")
	}
	if server && t.GetTlsCertificateProviderInstance() == nil && t.GetTlsCertificateCertificateProviderInstance() == nil {
		c.violation(path, "gRPC server TLS needs an identity certificate provider instance")
	}
	if !root || (t.GetTlsCertificateProviderInstance() == nil && t.GetTlsCertificateCertificateProviderInstance() == nil) {
		return
	}
	// grpc-go reads the A29 fields (tls_certificate_provider_instance plus a validation
	// context with ca_certificate_provider_instance) or, when those do not parse, only the
	// deprecated ones (tls_certificate_certificate_provider_instance plus
	// validation_context_certificate_provider_instance): a mix loses the identity.
	newRoot := t.GetValidationContext().GetCaCertificateProviderInstance() != nil ||
		t.GetCombinedValidationContext().GetDefaultValidationContext().GetCaCertificateProviderInstance() != nil
	identity := t.GetTlsCertificateCertificateProviderInstance() != nil
	if newRoot {
		identity = t.GetTlsCertificateProviderInstance() != nil
	}
	if !identity {
		what := "a gRPC-Go client presents no certificate (mTLS handshakes fail)"
		if server {
			what = "gRPC-Go servers NACK the listener (no identity certificate provider)"
		}
		c.violation(path, "mixes tls_certificate_provider_instance with the deprecated validation_context_certificate_provider_instance: gRPC-Go reads either the new fields (validation context with ca_certificate_provider_instance) or only the deprecated ones, so "+what)
	}
}

func (c *checker) downstreamTLS(path string, t *tlsv3.DownstreamTlsContext) {
	if !c.grpc() {
		return
	}
	if t.GetRequireSni().GetValue() {
		c.violation(path+".require_sni", "gRPC NACKs require_sni")
	}
	if t.GetOcspStaplePolicy() != tlsv3.DownstreamTlsContext_LENIENT_STAPLING {
		c.violation(path+".ocsp_staple_policy", "gRPC NACKs an ocsp_staple_policy other than LENIENT_STAPLING")
	}
	ct := t.GetCommonTlsContext()
	hasRoot := ct.GetCombinedValidationContext() != nil || ct.GetValidationContext() != nil ||
		ct.GetValidationContextCertificateProviderInstance() != nil
	if t.GetRequireClientCertificate().GetValue() && !hasRoot {
		c.violation(path+".require_client_certificate", "require_client_certificate without a validation context: gRPC NACKs it")
	}
}

// ---- references ---------------------------------------------------------------------------

func (c *checker) resolve() {
	type set struct {
		refs    []ref
		typeURL string
		what    string
	}
	for _, s := range []set{
		{c.rdsRefs, typeRDS, "route configuration %q is not served over RDS"},
		{c.cdsRefs, typeCDS, "cluster %q is not in CDS"},
		{c.edsRefs, typeEDS, "ClusterLoadAssignment %q is not served over EDS"},
		{c.sdsAdsRefs, typeSDS, "secret %q is requested over ADS but not served over SDS"},
	} {
		if !c.s.Have[s.typeURL] {
			if len(s.refs) > 0 {
				c.out = append(c.out, Finding{Warn: true, Flavour: c.s.Flavour, Type: typeLabel(s.typeURL), Name: "*",
					Reason: fmt.Sprintf("no %s in this snapshot: %d references into it not checked", typeLabel(s.typeURL), len(s.refs))})
			}
			continue
		}
		for _, r := range s.refs {
			if !c.served[s.typeURL][r.name] {
				c.add(r.res, false, r.path, fmt.Sprintf(s.what, r.name))
			}
		}
	}
	for _, t := range c.tsm {
		switch {
		case c.epWithMeta == 0:
			c.add(t.res, true, t.path, fmt.Sprintf("no endpoint carries %s metadata: a match on %q never selects", tsmMetadataKey, t.key))
		case !c.epKeys[t.key]:
			c.add(t.res, false, t.path, fmt.Sprintf("match key %q is not a key endpoints carry in %s metadata (they carry %q)", t.key, tsmMetadataKey, sortedKeys(c.epKeys)))
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
