package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// istiod's shapes (1.24), as a server of ours should answer them.
const (
	goodSyncz = `[{"cluster_id":"Kubernetes","proxy":"web-a.demo","istio_version":"1.24.6",
		"cluster_sent":"n1","cluster_acked":"n1","listener_sent":"n2","listener_acked":"n2"}]`
	goodRegistryz = `[{"Attributes":{"ServiceRegistry":"Kubernetes","Name":"web","Namespace":"demo",
		"LabelSelectors":{"app":"web"},"ExportTo":{"*":{}}},
		"ports":[{"name":"http","port":9080,"protocol":"HTTP"}],
		"hostname":"web.demo.svc.cluster.local",
		"clusterVIPs":{"Addresses":{"Kubernetes":["10.96.0.5"]}}}]`
)

func serve(t *testing.T, syncz, registryz, version string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/syncz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(syncz)) })
	mux.HandleFunc("/debug/registryz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(registryz)) })
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(version)) })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func check(t *testing.T, s *httptest.Server) (int, string) {
	var out, errb bytes.Buffer
	rc := run([]string{"--url", s.URL, "--ready-url", s.URL, "--proxy", "web-a.demo",
		"--service", "web.demo.svc.cluster.local:9080", "--namespace", "demo", "--selector",
		"app=web", "--version", "1.24.6"}, &out, &errb)
	return rc, out.String() + errb.String()
}

func TestGood(t *testing.T) {
	if rc, out := check(t, serve(t, goodSyncz, goodRegistryz, "1.24.6-abc-Clean")); rc != 0 {
		t.Fatalf("rc %d:\n%s", rc, out)
	}
}

// Each breaks one thing Kiali relies on; the checker must fail and say what.
func TestBad(t *testing.T) {
	cases := []struct{ name, syncz, registryz, version, want string }{
		{"port as a string", goodSyncz, strings.Replace(goodRegistryz, `"port":9080`, `"port":"9080"`, 1),
			"1.24.6", "decodes into []*kubernetes.RegistryService"},
		{"ExportTo as a list", goodSyncz, strings.Replace(goodRegistryz, `{"*":{}}`, `["*"]`, 1),
			"1.24.6", "decodes into []*kubernetes.RegistryService"},
		{"syncz an object", `{"proxies":[]}`, goodRegistryz, "1.24.6", "decodes into []*kubernetes.ProxyStatus"},
		{"no proxy listed", `[]`, goodRegistryz, "1.24.6", `syncz lists proxy "web-a.demo"`},
		{"listener not acked", strings.Replace(goodSyncz, `"listener_acked":"n2"`, `"listener_acked":"n1"`, 1),
			goodRegistryz, "1.24.6", `LDS "Stale"`},
		{"no selector", goodSyncz, strings.Replace(goodRegistryz, `"LabelSelectors":{"app":"web"},`, ``, 1),
			"1.24.6", "Kiali's filter finds []"},
		{"no hostname", goodSyncz, strings.Replace(goodRegistryz, `"hostname":"web.demo.svc.cluster.local",`, ``, 1),
			"1.24.6", `registryz lists "web.demo.svc.cluster.local"`},
		{"not Istio's version", goodSyncz, goodRegistryz, "dev", `Kiali sees upstream Istio`},
	}
	for _, c := range cases {
		rc, out := check(t, serve(t, c.syncz, c.registryz, c.version))
		if rc != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(out, c.want) {
			t.Errorf("%s: rc %d, want 1 with %q:\n%s", c.name, rc, c.want, out)
		}
	}
}
