// kialicheck reads our control plane's debug endpoints the way Kiali does and fails when
// Kiali would fail or would see nothing. The answers are decoded into Kiali's own types
// (module github.com/kiali/kiali v1.89.8, package kubernetes) and go through Kiali's own
// functions where they are in a package that builds beside our pinned modules.
//
//	kialicheck --url http://HOST:MONITORING_PORT [--ready-url http://HOST:HTTP_PORT]
//	           [--proxy ID]... [--service HOST:PORT]... [--namespace NS --selector k=v]
//	           [--version X.Y.Z]
//
// What Kiali reads from istiod (business/controlplane_monitor.go, istio/version.go,
// istio/discovery.go of that release):
//   - /debug/syncz on the monitoring port: the body as one JSON array of
//     kubernetes.ProxyStatus (encoding/json, unknown fields ignored), then per type
//     "Synced" when the sent nonce equals the acked one (business castProxyStatus);
//   - /debug/registryz on the monitoring port: one JSON array of kubernetes.RegistryService,
//     used by the validations (kubernetes.HasMatchingRegistryService) and the service list
//     (namespace + labels.Set(LabelSelectors) matching a selector);
//   - /version on the monitoring port: the whole body through istio.parseRawIstioVersion;
//   - /ready on the HTTP port: only "no error" counts (ForwardGetRequest: code >= 400).
//
// Kiali's package business does not build against our gateway-api (v1.6 dropped types its
// checkers use), so its few lines of glue (fetch with a 30 s timeout and HTTP 200 required,
// json.Unmarshal into the slice, the sent/acked comparison, the selector filter) are
// restated here; parseRawIstioVersion is bound with go:linkname (its package builds; Go
// restricts such references only into the standard library).
//
// Prints "ok ..." per check and "FAIL ..." per failure, then "kialicheck: N checks, M
// failures"; exits 1 on failures, 2 on usage errors.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	_ "unsafe" // go:linkname

	"k8s.io/apimachinery/pkg/labels"

	_ "github.com/kiali/kiali/istio" // linked for parseRawIstioVersion
	"github.com/kiali/kiali/kubernetes"
	"github.com/kiali/kiali/models"
	"github.com/kiali/kiali/util/httputil"
)

// fetch is what Kiali does with an external istiod URL: GET with a 30 s deadline, the
// body read whole, anything but 200 an error.
func fetch(base, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(path, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s: %s", resp.Status, body)
	}
	return body, nil
}

// xdsStatus is Kiali's column for one type: never sent, synced, or stale (2.x says IGNORED
// instead of NOT_SENT for a type the proxy does not watch; the rest is the same).
func xdsStatus(sent, acked string) string {
	switch {
	case sent == "":
		return "NOT_SENT"
	case sent == acked:
		return "Synced"
	case acked == "":
		return "Stale (Never Acknowledged)"
	}
	return "Stale"
}

//go:linkname kialiParseRawIstioVersion github.com/kiali/kiali/istio.parseRawIstioVersion
func kialiParseRawIstioVersion(rawVersion string) *models.ExternalServiceInfo

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type checker struct {
	out      io.Writer
	checks   int
	failures int
}

func (c *checker) check(ok bool, format string, args ...any) bool {
	c.checks++
	word := "ok  "
	if !ok {
		c.failures++
		word = "FAIL"
	}
	fmt.Fprintf(c.out, "%s %s\n", word, fmt.Sprintf(format, args...))
	return ok
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kialicheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "istiod's monitoring address (Kiali's port 15014), http://HOST:PORT")
	readyURL := fs.String("ready-url", "", "istiod's HTTP address (Kiali's port 8080) for /ready")
	version := fs.String("version", "", "the Istio version Kiali must detect")
	namespace := fs.String("namespace", "", "with --selector: a namespace for Kiali's service filter")
	selector := fs.String("selector", "", "a workload selector (k=v) some service of --namespace must have")
	var proxies, services multiFlag
	fs.Var(&proxies, "proxy", "a proxy ID syncz must list (repeatable)")
	fs.Var(&services, "service", "HOSTNAME:PORT registryz must list (repeatable)")
	if err := fs.Parse(args); err != nil || *url == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: kialicheck --url URL [--ready-url URL] [--proxy ID]... "+
			"[--service HOST:PORT]... [--namespace NS --selector k=v] [--version X.Y.Z]")
		return 2
	}
	c := &checker{out: stdout}
	if *readyURL != "" {
		checkReady(c, *readyURL)
	}
	checkVersion(c, *url, *version)
	checkSyncz(c, *url, proxies)
	checkRegistryz(c, *url, services, *namespace, *selector)
	fmt.Fprintf(stdout, "kialicheck: %d checks, %d failures\n", c.checks, c.failures)
	if c.failures > 0 {
		return 1
	}
	return 0
}

// checkReady asks as ForwardGetRequest does (httputil.HttpGet, 10 s, an error from 400 up).
func checkReady(c *checker, base string) {
	_, code, _, err := httputil.HttpGet(strings.TrimSuffix(base, "/")+"/ready", nil, 10*time.Second, nil, nil)
	c.check(err == nil && code < 400, "/ready: Kiali marks istiod healthy (code %d, err %v)", code, err)
}

func checkVersion(c *checker, base, want string) {
	body, code, _, err := httputil.HttpGet(strings.TrimSuffix(base, "/")+"/version", nil, 10*time.Second, nil, nil)
	if !c.check(err == nil && code == 200, "/version: HTTP 200 (code %d, err %v)", code, err) {
		return
	}
	info := kialiParseRawIstioVersion(string(body))
	c.check(info.Name == "Istio", "/version %q: Kiali sees upstream Istio (%q)", body, info.Name)
	if want != "" {
		c.check(info.Version == want, "/version: Kiali reads version %q (want %q)", info.Version, want)
	}
}

func checkSyncz(c *checker, base string, want []string) {
	raw, err := fetch(base, "/debug/syncz")
	if !c.check(err == nil, "/debug/syncz: fetched as Kiali does (%v)", err) {
		return
	}
	var statuses []*kubernetes.ProxyStatus
	err = json.Unmarshal(raw, &statuses)
	if !c.check(err == nil, "/debug/syncz: decodes into []*kubernetes.ProxyStatus (%v)", err) {
		return
	}
	byID := map[string]*kubernetes.ProxyStatus{}
	for _, s := range statuses {
		c.check(s.ProxyID != "" && s.ClusterID != "" && s.IstioVersion != "",
			"syncz entry %q: proxy, cluster_id and istio_version set (%q, %q)",
			s.ProxyID, s.ClusterID, s.IstioVersion)
		byID[s.ProxyID] = s
	}
	c.check(len(statuses) >= len(want) && len(statuses) > 0,
		"/debug/syncz: %d proxies listed (want at least %d, and one)", len(statuses), len(want))
	for _, id := range want {
		s, ok := byID[id]
		if !c.check(ok, "syncz lists proxy %q", id) {
			continue
		}
		// Kiali's column: "Synced" once what was sent is acked; NOT_SENT for a type never sent.
		cds, lds := xdsStatus(s.ClusterSent, s.ClusterAcked), xdsStatus(s.ListenerSent, s.ListenerAcked)
		c.check(cds == "Synced" && lds == "Synced",
			"proxy %q: Kiali shows CDS %q, LDS %q (want Synced)", id, cds, lds)
		c.check(s.ClusterSent != "" && s.ListenerSent != "",
			"proxy %q: cluster_sent and listener_sent carry nonces (%q, %q)", id,
			s.ClusterSent, s.ListenerSent)
	}
}

func checkRegistryz(c *checker, base string, want []string, namespace, selector string) {
	raw, err := fetch(base, "/debug/registryz")
	if !c.check(err == nil, "/debug/registryz: fetched as Kiali does (%v)", err) {
		return
	}
	var services []*kubernetes.RegistryService
	err = json.Unmarshal(raw, &services)
	if !c.check(err == nil, "/debug/registryz: decodes into []*kubernetes.RegistryService (%v)", err) {
		return
	}
	c.check(len(services) > 0, "/debug/registryz: %d services", len(services))
	byHost := map[string]*kubernetes.RegistryService{}
	for _, s := range services {
		a := s.Attributes
		c.check(s.Hostname != "" && a.Name != "" && a.Namespace != "" && a.ServiceRegistry != "",
			"registryz %q: hostname, Name, Namespace, ServiceRegistry set (%q, %q, %q)",
			s.Hostname, a.Name, a.Namespace, a.ServiceRegistry)
		for _, p := range s.Ports {
			c.check(p.Port > 0 && p.Port < 65536 && p.Protocol != "",
				"registryz %q: port %q %d has a protocol (%q)", s.Hostname, p.Name, p.Port, p.Protocol)
		}
		byHost[s.Hostname] = s
	}
	for _, hp := range want {
		i := strings.LastIndexByte(hp, ':')
		port, _ := strconv.Atoi(hp[i+1:])
		host := hp[:i]
		s, ok := byHost[host]
		if !c.check(ok, "registryz lists %q", host) {
			continue
		}
		found := false
		for _, p := range s.Ports {
			found = found || p.Port == port
		}
		c.check(found, "registryz %q has port %d (%v)", host, port, s.Ports)
		// what the validations ask: a DestinationRule/VirtualService host of the namespace
		c.check(kubernetes.HasMatchingRegistryService(s.Attributes.Namespace, host, services),
			"HasMatchingRegistryService(%q, %q) finds it", s.Attributes.Namespace, host)
		kube := s.Attributes.ServiceRegistry != "Kubernetes" ||
			len(s.ClusterVIPs12.Addresses) > 0
		c.check(kube, "registryz %q: a Kubernetes service carries clusterVIPs (%v)", host,
			s.ClusterVIPs12.Addresses)
	}
	if namespace != "" && selector != "" {
		// Kiali's service list: services of the namespace whose selector matches the
		// workload's labels (an empty selector never matches)
		want, err := labels.ConvertSelectorToLabelsMap(selector)
		names := []string{}
		for _, s := range services {
			sel := labels.Set(s.Attributes.LabelSelectors).AsSelector()
			if err == nil && s.Attributes.Namespace == namespace && !sel.Empty() && sel.Matches(want) {
				names = append(names, s.Hostname)
			}
		}
		c.check(len(names) > 0, "namespace %q, selector %q: Kiali's filter finds %v", namespace,
			selector, names)
	}
}
