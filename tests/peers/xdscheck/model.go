package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
)

// xDS type URLs (v3) and the short names findings use.
const (
	typeLDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
	typeRDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	typeCDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	typeEDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	typeSDS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

var shortType = map[string]string{
	typeLDS: "LDS", typeRDS: "RDS", typeCDS: "CDS", typeEDS: "EDS", typeSDS: "SDS",
}

// Flavours decide which rules apply: Envoy's (sidecar, router/gateway) or gRPC's
// (grpc, grpc-client, grpc-server).
func isGRPCFlavour(f string) bool { return strings.HasPrefix(f, "grpc") }

// grpcServerFlavour: listeners are gRPC server (inbound) listeners, not API listeners.
func grpcServerFlavour(f string) bool { return f == "grpc-server" }

// Resource is one decoded xDS resource of a snapshot.
type Resource struct {
	TypeURL string
	Name    string // the name it was served or indexed under
	Msg     proto.Message
	Raw     []byte // serialized form (dir and ADS modes), used to drop exact duplicates
}

// Snapshot is one consistent set of resources as one client sees it.
type Snapshot struct {
	Flavour   string
	Resources []*Resource
	// Types this snapshot holds a full answer for; a reference into a type that is absent
	// here is not checked (e.g. a config_dump taken without include_eds).
	Have map[string]bool
	// Findings made while loading (decode errors) belong to the snapshot too.
	Pre []Finding
}

func (s *Snapshot) add(r *Resource) {
	if s.Have == nil {
		s.Have = map[string]bool{}
	}
	s.Have[r.TypeURL] = true
	s.Resources = append(s.Resources, r)
}

// Finding is one VIOLATION (or WARNING) line.
type Finding struct {
	Warn    bool
	Flavour string
	Type    string // LDS, RDS, CDS, EDS, SDS (or the type URL's last element)
	Name    string
	Path    string
	Reason  string
}

func (f Finding) String() string {
	kind := "VIOLATION"
	if f.Warn {
		kind = "WARNING"
	}
	path := f.Path
	if path == "" {
		path = "."
	}
	name := f.Name
	if name == "" {
		name = `""`
	}
	return fmt.Sprintf("%s %s %s %s: %s: %s", kind, f.Flavour, f.Type, name, path, f.Reason)
}

func typeLabel(typeURL string) string {
	if s, ok := shortType[typeURL]; ok {
		return s
	}
	if i := strings.LastIndex(typeURL, "."); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}

// report prints findings sorted (stable across runs) and returns resources/violations.
func report(w io.Writer, snaps []*Snapshot, findings []Finding) (int, int) {
	n := 0
	for _, s := range snaps {
		n += len(s.Resources)
	}
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.Warn != b.Warn {
			return !a.Warn
		}
		return false
	})
	v := 0
	for _, f := range findings {
		fmt.Fprintln(w, f.String())
		if !f.Warn {
			v++
		}
	}
	fmt.Fprintf(w, "xdscheck: %d resources, %d violations\n", n, v)
	return n, v
}
