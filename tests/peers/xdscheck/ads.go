package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// adsOptions: what `xdscheck ads` connects with.
type adsOptions struct {
	Addr         string
	NodeID       string
	Flavour      string // sidecar, router or grpc
	Timeout      time.Duration
	LDS          []string // gRPC: the listeners to ask for (host:port); default wildcard
	Labels       map[string]string
	Meta         map[string]string
	IstioVersion string
	ClusterID    string
	// Hold keeps the stream open this long after the report (so /debug/config_dump of
	// this proxy can be taken meanwhile).
	Hold time.Duration
}

// buildNode makes a Node the way Istio's agent (pilot-agent) sends it: ID
// "type~ip~pod.ns~ns.svc.cluster.local", metadata ISTIO_VERSION, CLUSTER_ID, NAMESPACE,
// INSTANCE_IPS, LABELS (and GENERATOR=grpc for proxyless gRPC).
func buildNode(o adsOptions) (*corev3.Node, error) {
	parts := strings.Split(o.NodeID, "~")
	if len(parts) != 4 {
		return nil, fmt.Errorf("node ID %q: want type~ip~pod.namespace~namespace.svc.cluster.local", o.NodeID)
	}
	ns := ""
	if i := strings.Index(parts[2], "."); i >= 0 {
		ns = parts[2][i+1:]
	}
	if ns == "" {
		ns = strings.SplitN(parts[3], ".", 2)[0]
	}
	labels := map[string]any{}
	for k, v := range o.Labels {
		labels[k] = v
	}
	md := map[string]any{
		"ISTIO_VERSION": o.IstioVersion,
		"CLUSTER_ID":    o.ClusterID,
		"NAMESPACE":     ns,
		"INSTANCE_IPS":  parts[1],
		"LABELS":        labels,
	}
	pod := strings.SplitN(parts[2], ".", 2)[0]
	md["NAME"] = pod
	md["WORKLOAD_NAME"] = pod
	if o.Flavour == "grpc" {
		md["GENERATOR"] = "grpc"
	}
	for k, v := range o.Meta {
		md[k] = v
	}
	st, err := structpb.NewStruct(md)
	if err != nil {
		return nil, err
	}
	return &corev3.Node{Id: o.NodeID, Cluster: pod + "." + ns, Metadata: st,
		UserAgentName: "xdscheck"}, nil
}

type adsType struct {
	names    []string // nil: wildcard
	named    bool     // a named (non-wildcard) subscription
	pending  bool     // a request is unanswered
	got      bool
	active   bool
	version  string
	nonce    string
	res      []*Resource
	received time.Time
}

func sortedUnique(in []string) []string {
	m := map[string]bool{}
	for _, s := range in {
		if s != "" {
			m[s] = true
		}
	}
	out := make([]string, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// collectRefs: what a snapshot's resources name in other types.
func collectRefs(s *Snapshot) (rds, cds, eds, sds []string) {
	c := &checker{s: s, opts: Options{CertProviders: []string{"default"}}, served: map[string]map[string]bool{},
		serverRoutes: map[string]bool{}, epKeys: map[string]bool{}}
	for _, r := range s.Resources {
		c.cur = r
		w := &walker{finding: func(string, string) {}, visit: c.visit}
		w.walk("", r.Msg.ProtoReflect(), 0)
	}
	names := func(rs []ref) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.name)
		}
		return sortedUnique(out)
	}
	return names(c.rdsRefs), names(c.cdsRefs), names(c.edsRefs), names(c.sdsAdsRefs)
}

// runADS subscribes like the client would, ACKs everything and returns what was served.
// The returned function ends the stream (the caller may hold it open meanwhile).
func runADS(o adsOptions) (*Snapshot, func(), error) {
	snap, conn, cancel, err := runADSStream(o)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		if conn != nil {
			conn.Close()
		}
		return nil, nil, err
	}
	return snap, func() { cancel(); conn.Close() }, nil
}

func runADSStream(o adsOptions) (*Snapshot, *grpc.ClientConn, context.CancelFunc, error) {
	node, err := buildNode(o)
	if err != nil {
		return nil, nil, nil, err
	}
	// the stream lives until the caller cancels; o.Timeout bounds the exchange
	ctx, cancel := context.WithCancel(context.Background())
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	conn, err := grpc.NewClient(o.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, cancel, err
	}
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, conn, cancel, err
	}
	grpcFlavour := o.Flavour == "grpc"
	snap := &Snapshot{Flavour: o.Flavour, Have: map[string]bool{}}
	types := map[string]*adsType{}
	for _, t := range allTypes {
		types[t] = &adsType{}
	}
	first := true
	send := func(typeURL string, ack bool) error {
		st := types[typeURL]
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: st.names,
			VersionInfo: st.version, ResponseNonce: st.nonce}
		if first {
			req.Node = node
			first = false
		}
		if !ack {
			st.pending = true
		}
		st.active = true
		return stream.Send(req)
	}
	subscribe := func(typeURL string, names []string) error {
		st := types[typeURL]
		names = sortedUnique(names)
		if st.active && sameNames(st.names, names) {
			return nil
		}
		if len(names) == 0 {
			// nothing to ask for (an empty name list would read as a wildcard)
			return nil
		}
		st.names, st.named = names, true
		return send(typeURL, false)
	}

	// Envoy: wildcard CDS and LDS; gRPC: the named listeners (or wildcard).
	if grpcFlavour {
		if len(o.LDS) > 0 {
			types[typeLDS].names, types[typeLDS].named = sortedUnique(o.LDS), true
		}
		if err := send(typeLDS, false); err != nil {
			return nil, conn, cancel, err
		}
	} else {
		if err := send(typeCDS, false); err != nil {
			return nil, conn, cancel, err
		}
		if err := send(typeLDS, false); err != nil {
			return nil, conn, cancel, err
		}
	}

	type recv struct {
		r   *discoveryv3.DiscoveryResponse
		err error
	}
	ch := make(chan recv, 16)
	go func() {
		for {
			r, err := stream.Recv()
			ch <- recv{r, err}
			if err != nil {
				return
			}
		}
	}()

	settle := time.NewTimer(time.Hour)
	defer settle.Stop()
	for {
		select {
		case <-deadline.C:
			var waiting []string
			for _, t := range allTypes {
				if types[t].pending {
					waiting = append(waiting, typeLabel(t))
				}
			}
			return nil, conn, cancel, fmt.Errorf("timed out after %s waiting for %s", o.Timeout, strings.Join(waiting, ", "))
		case <-settle.C:
			for _, t := range allTypes {
				st := types[t]
				if st.got {
					snap.Have[t] = true
				}
				snap.Resources = append(snap.Resources, st.res...)
			}
			return snap, conn, cancel, nil
		case m := <-ch:
			if m.err != nil {
				return nil, conn, cancel, fmt.Errorf("stream ended: %v", m.err)
			}
			r := m.r
			st, ok := types[r.GetTypeUrl()]
			if !ok || !st.active {
				snap.Pre = append(snap.Pre, Finding{Flavour: o.Flavour, Type: typeLabel(r.GetTypeUrl()), Name: "*",
					Reason: "response for a type that was not requested"})
				continue
			}
			if r.GetNonce() == "" {
				snap.Pre = append(snap.Pre, Finding{Flavour: o.Flavour, Type: typeLabel(r.GetTypeUrl()), Name: "*", Path: "nonce", Reason: "response without nonce"})
			}
			if r.GetVersionInfo() == "" {
				snap.Pre = append(snap.Pre, Finding{Flavour: o.Flavour, Type: typeLabel(r.GetTypeUrl()), Name: "*", Path: "version_info", Reason: "response without version_info"})
			}
			st.res = nil
			seen := map[string]bool{}
			want := map[string]bool{}
			for _, n := range st.names {
				want[n] = true
			}
			for i, a := range r.GetResources() {
				res, f := decodeServed(o.Flavour, r.GetTypeUrl(), i, a)
				if f != nil {
					snap.Pre = append(snap.Pre, *f)
					continue
				}
				if seen[res.Name] {
					snap.Pre = append(snap.Pre, Finding{Flavour: o.Flavour, Type: typeLabel(res.TypeURL), Name: res.Name,
						Reason: "served twice in one response"})
					continue
				}
				seen[res.Name] = true
				if st.named && !want[res.Name] {
					snap.Pre = append(snap.Pre, Finding{Flavour: o.Flavour, Type: typeLabel(res.TypeURL), Name: res.Name,
						Reason: fmt.Sprintf("served but not requested (subscription %q)", st.names)})
				}
				st.res = append(st.res, res)
			}
			st.version, st.nonce, st.got, st.pending = r.GetVersionInfo(), r.GetNonce(), true, false
			if err := send(r.GetTypeUrl(), true); err != nil { // ACK
				return nil, conn, cancel, err
			}
			// follow what the served resources name
			cur := &Snapshot{Flavour: o.Flavour}
			for _, t := range allTypes {
				cur.Resources = append(cur.Resources, types[t].res...)
			}
			rds, cds, eds, sds := collectRefs(cur)
			if err := subscribe(typeRDS, rds); err != nil {
				return nil, conn, cancel, err
			}
			if grpcFlavour {
				if err := subscribe(typeCDS, cds); err != nil {
					return nil, conn, cancel, err
				}
			}
			if err := subscribe(typeEDS, eds); err != nil {
				return nil, conn, cancel, err
			}
			if !grpcFlavour {
				if err := subscribe(typeSDS, sds); err != nil {
					return nil, conn, cancel, err
				}
			}
			done := true
			for _, t := range allTypes {
				if types[t].pending {
					done = false
				}
			}
			if done {
				settle.Reset(300 * time.Millisecond)
			} else {
				settle.Reset(time.Hour)
			}
		}
	}
}

func decodeServed(flavour, typeURL string, i int, a *anypb.Any) (*Resource, *Finding) {
	if a.GetTypeUrl() == "type.googleapis.com/envoy.service.discovery.v3.Resource" {
		w := &discoveryv3.Resource{}
		if err := a.UnmarshalTo(w); err != nil {
			return nil, &Finding{Flavour: flavour, Type: typeLabel(typeURL), Name: fmt.Sprintf("resources[%d]", i), Reason: err.Error()}
		}
		a = w.GetResource()
	}
	if a.GetTypeUrl() != typeURL {
		return nil, &Finding{Flavour: flavour, Type: typeLabel(typeURL), Name: fmt.Sprintf("resources[%d]", i),
			Path: "@type", Reason: fmt.Sprintf("resource of type %q in a %s response", a.GetTypeUrl(), typeLabel(typeURL))}
	}
	m, err := decodeResource(typeURL, a.GetValue())
	if err != nil {
		return nil, &Finding{Flavour: flavour, Type: typeLabel(typeURL), Name: fmt.Sprintf("resources[%d]", i), Reason: err.Error()}
	}
	return &Resource{TypeURL: typeURL, Name: ownName(m), Msg: m, Raw: a.GetValue()}, nil
}
