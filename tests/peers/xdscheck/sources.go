package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

var allTypes = []string{typeLDS, typeRDS, typeCDS, typeEDS, typeSDS}

// decodeResource: one serialized resource of type typeURL.
func decodeResource(typeURL string, b []byte) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(typeURL)
	if err != nil {
		return nil, fmt.Errorf("unknown type %q", typeURL)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("cannot decode: %v", err)
	}
	return m, nil
}

// loadDir reads what tests/xds/gen_dump writes: OUTDIR/index lines
// "<flavour> <type_url> <file> <name>", each file one serialized resource. Each flavour's
// resources are one snapshot.
func loadDir(dir string) ([]*Snapshot, error) {
	f, err := os.Open(filepath.Join(dir, "index"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	byFlavour := map[string]*Snapshot{}
	var snaps []*Snapshot
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		txt := strings.TrimRight(sc.Text(), "\r")
		if txt == "" {
			continue
		}
		parts := strings.SplitN(txt, " ", 4)
		if len(parts) != 4 {
			return nil, fmt.Errorf("%s/index:%d: want \"<flavour> <type_url> <file> <name>\"", dir, line)
		}
		flav, typeURL, file, name := parts[0], parts[1], parts[2], parts[3]
		s := byFlavour[flav]
		if s == nil {
			s = &Snapshot{Flavour: flav, Have: map[string]bool{}}
			// gen_dump asks Envoy nodes for every type (wildcard) and gRPC nodes for
			// every name referenced: an absent name is one the server did not serve.
			for _, t := range allTypes {
				s.Have[t] = true
			}
			byFlavour[flav] = s
			snaps = append(snaps, s)
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		m, err := decodeResource(typeURL, b)
		if err != nil {
			s.Pre = append(s.Pre, Finding{Flavour: flav, Type: typeLabel(typeURL), Name: name, Reason: err.Error()})
			continue
		}
		s.add(&Resource{TypeURL: typeURL, Name: name, Msg: m, Raw: b})
	}
	return snaps, sc.Err()
}

// readSource: a file, "-" for stdin, or an http(s) URL.
func readSource(src string, timeout time.Duration) ([]byte, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		cl := &http.Client{Timeout: timeout}
		resp, err := cl.Get(src)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: HTTP %d: %s", src, resp.StatusCode, strings.TrimSpace(string(b)))
		}
		return b, nil
	}
	if src == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(src)
}

// redactKeys: the server writes private keys as "[redacted]" (not valid base64 for
// inline_bytes); make them a valid inline_string so the rest of the Secret decodes.
func redactKeys(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if k == "private_key" {
				if _, ok := c.(map[string]any); ok {
					t[k] = map[string]any{"inline_string": "[redacted]"}
					continue
				}
			}
			redactKeys(c)
		}
	case []any:
		for _, c := range t {
			redactKeys(c)
		}
	}
}

// dumpSections: for each admin ConfigDump type, the list that holds entries and the key
// of the resource in an entry.
var dumpSections = map[string][]struct{ list, key, typeURL string }{
	"envoy.admin.v3.ClustersConfigDump": {
		{"dynamic_active_clusters", "cluster", typeCDS},
		{"dynamic_warming_clusters", "cluster", typeCDS},
	},
	"envoy.admin.v3.ListenersConfigDump": {
		{"dynamic_listeners", "active_state.listener", typeLDS},
	},
	"envoy.admin.v3.RoutesConfigDump": {
		{"dynamic_route_configs", "route_config", typeRDS},
	},
	"envoy.admin.v3.SecretsConfigDump": {
		{"dynamic_active_secrets", "secret", typeSDS},
		{"dynamic_warming_secrets", "secret", typeSDS},
	},
	"envoy.admin.v3.EndpointsConfigDump": {
		{"dynamic_endpoint_configs", "endpoint_config", typeEDS},
	},
}

func dig(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func ownName(m proto.Message) string {
	switch v := m.(type) {
	case interface{ GetClusterName() string }:
		return v.GetClusterName()
	case interface{ GetName() string }:
		return v.GetName()
	}
	return ""
}

// loadDump decodes a /debug/config_dump (Envoy admin ConfigDump JSON, proto field names)
// into one snapshot. Each resource is decoded on its own, so one that protojson rejects
// (unknown field, unknown @type, bad value) is a finding and the rest is still checked.
func loadDump(data []byte, flavour string) (*Snapshot, error) {
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	configs, ok := top["configs"].([]any)
	if !ok {
		return nil, fmt.Errorf("no \"configs\" array: not a config_dump")
	}
	s := &Snapshot{Flavour: flavour, Have: map[string]bool{}}
	uo := protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}
	for i, c := range configs {
		cm, ok := c.(map[string]any)
		if !ok {
			continue
		}
		t, _ := cm["@type"].(string)
		secs, ok := dumpSections[anyName(t)]
		if !ok {
			s.Pre = append(s.Pre, Finding{Flavour: flavour, Type: "ConfigDump", Name: fmt.Sprintf("configs[%d]", i),
				Path: "@type", Reason: fmt.Sprintf("unexpected config dump type %q", t)})
			continue
		}
		for _, sec := range secs {
			list, ok := cm[sec.list].([]any)
			if !ok {
				continue
			}
			s.Have[sec.typeURL] = true
			for j, e := range list {
				em, _ := e.(map[string]any)
				rv, _ := dig(em, sec.key).(map[string]any)
				where := fmt.Sprintf("configs[%d].%s[%d].%s", i, sec.list, j, sec.key)
				if rv == nil {
					s.Pre = append(s.Pre, Finding{Flavour: flavour, Type: typeLabel(sec.typeURL), Name: where, Reason: "entry without resource"})
					continue
				}
				redactKeys(rv)
				name, _ := rv["name"].(string)
				if n, ok := rv["cluster_name"].(string); ok && sec.typeURL == typeEDS {
					name = n
				}
				if rt, _ := rv["@type"].(string); rt != sec.typeURL {
					s.Pre = append(s.Pre, Finding{Flavour: flavour, Type: typeLabel(sec.typeURL), Name: name, Path: where + ".@type",
						Reason: fmt.Sprintf("@type %q in a %s", rt, anyName(t))})
					continue
				}
				raw, _ := json.Marshal(rv)
				a := &anypb.Any{}
				if err := uo.Unmarshal(raw, a); err != nil {
					s.Pre = append(s.Pre, Finding{Flavour: flavour, Type: typeLabel(sec.typeURL), Name: name, Path: where,
						Reason: fmt.Sprintf("protojson: %v", err)})
					continue
				}
				m, err := anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
				if err != nil {
					s.Pre = append(s.Pre, Finding{Flavour: flavour, Type: typeLabel(sec.typeURL), Name: name, Path: where, Reason: err.Error()})
					continue
				}
				rn := ownName(m)
				if sec.typeURL == typeSDS {
					if en, ok := em["name"].(string); ok && en != "" {
						rn = en
					}
				}
				s.add(&Resource{TypeURL: sec.typeURL, Name: rn, Msg: m, Raw: a.GetValue()})
			}
		}
	}
	return s, nil
}

// guessFlavour for a dump taken without --flavour: gRPC when a listener is an API
// listener or a gRPC server listener, Envoy's rules otherwise.
func guessFlavour(s *Snapshot) string {
	for _, r := range s.Resources {
		if r.TypeURL != typeLDS {
			continue
		}
		if strings.HasPrefix(r.Name, grpcInboundPrefix) {
			return "grpc"
		}
		if l, ok := r.Msg.(*listenerv3.Listener); ok && l.GetApiListener() != nil {
			return "grpc"
		}
	}
	return "envoy"
}
