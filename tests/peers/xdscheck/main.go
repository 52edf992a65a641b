// xdscheck decodes the xDS resources our control plane emits into go-control-plane's
// Envoy types, runs their generated ValidateAll() (on every nested Any too) and checks the
// snapshot for consistency (routes name clusters in CDS, EDS clusters have assignments,
// listeners' RDS names are served, SDS sources are ones Envoy under Istio's agent can
// reach) and, for proxyless gRPC, the rules gRPC's xDS client enforces.
//
//	xdscheck dir [--cert-provider NAME]... OUTDIR
//	xdscheck ads --addr HOST:PORT --node NODE_ID [--flavour sidecar|router|grpc] [--timeout 10s]
//	             [--lds HOST:PORT]... [--label k=v]... [--meta k=v]...
//	xdscheck dump [--flavour F] FILE|URL|-
//
// Prints "VIOLATION <flavour> <type> <name>: <field path>: <reason>" per violation
// (WARNING lines are informational), then "xdscheck: N resources, M violations".
// Exit status: 0 clean, 1 violations, 2 usage, I/O or connection errors.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func kvMap(items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", it)
		}
		out[k] = v
	}
	return out, nil
}

const usageText = `usage:
  xdscheck dir [--cert-provider NAME]... OUTDIR
  xdscheck ads --addr HOST:PORT --node NODE_ID [--flavour sidecar|router|grpc] [--timeout 10s]
               [--lds HOST:PORT]... [--label k=v]... [--meta k=v]... [--cert-provider NAME]...
  xdscheck dump [--flavour sidecar|router|grpc] [--cert-provider NAME]... FILE|URL|-
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	fs := flag.NewFlagSet("xdscheck "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText) }
	var providers, lds, labels, meta multiFlag
	fs.Var(&providers, "cert-provider", "gRPC bootstrap certificate provider instance name (repeatable; default \"default\")")
	var opts Options
	switch args[0] {
	case "dir":
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
			fs.Usage()
			return 2
		}
		opts.CertProviders = providers
		snaps, err := loadDir(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "xdscheck: %v\n", err)
			return 2
		}
		return finish(stdout, snaps, opts)
	case "dump":
		flavour := fs.String("flavour", "", "rules to apply: sidecar, router or grpc (default: guessed from the listeners)")
		timeout := fs.Duration("timeout", 10*time.Second, "HTTP timeout")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
			fs.Usage()
			return 2
		}
		opts.CertProviders = providers
		data, err := readSource(fs.Arg(0), *timeout)
		if err != nil {
			fmt.Fprintf(stderr, "xdscheck: %v\n", err)
			return 2
		}
		s, err := loadDump(data, *flavour)
		if err != nil {
			fmt.Fprintf(stderr, "xdscheck: %s: %v\n", fs.Arg(0), err)
			return 2
		}
		if s.Flavour == "" {
			s.Flavour = guessFlavour(s)
			for i := range s.Pre {
				s.Pre[i].Flavour = s.Flavour
			}
		}
		return finish(stdout, []*Snapshot{s}, opts)
	case "ads":
		var o adsOptions
		fs.StringVar(&o.Addr, "addr", "", "ADS server HOST:PORT (plaintext)")
		fs.StringVar(&o.NodeID, "node", "", "node ID type~ip~pod.ns~ns.svc.cluster.local")
		fs.StringVar(&o.Flavour, "flavour", "", "sidecar, router or grpc (default: the node ID's type)")
		fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "give up after")
		fs.StringVar(&o.IstioVersion, "istio-version", "1.30.0", "metadata ISTIO_VERSION")
		fs.StringVar(&o.ClusterID, "cluster-id", "Kubernetes", "metadata CLUSTER_ID")
		fs.DurationVar(&o.Hold, "hold", 0, "keep the stream open this long after the report")
		fs.Var(&lds, "lds", "gRPC: listener to ask for, host:port (repeatable; default wildcard)")
		fs.Var(&labels, "label", "metadata LABELS entry k=v (repeatable)")
		fs.Var(&meta, "meta", "extra metadata string k=v (repeatable)")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || o.Addr == "" || o.NodeID == "" {
			fs.Usage()
			return 2
		}
		opts.CertProviders = providers
		if o.Flavour == "" {
			o.Flavour = strings.SplitN(o.NodeID, "~", 2)[0]
		}
		if o.Flavour != "sidecar" && o.Flavour != "router" && o.Flavour != "grpc" {
			fmt.Fprintf(stderr, "xdscheck: --flavour %q: want sidecar, router or grpc\n", o.Flavour)
			return 2
		}
		var err error
		if o.Labels, err = kvMap(labels); err != nil {
			fmt.Fprintf(stderr, "xdscheck: --label %v\n", err)
			return 2
		}
		if o.Meta, err = kvMap(meta); err != nil {
			fmt.Fprintf(stderr, "xdscheck: --meta %v\n", err)
			return 2
		}
		o.LDS = lds
		if o.Flavour == "grpc" && len(lds) == 0 {
			fmt.Fprintln(stderr, "xdscheck: no --lds: a wildcard LDS request (gRPC clients never send one)")
		}
		s, stop, err := runADS(o)
		if err != nil {
			fmt.Fprintf(stderr, "xdscheck: %s: %v\n", o.Addr, err)
			return 2
		}
		rc := finish(stdout, []*Snapshot{s}, opts)
		if o.Hold > 0 {
			if f, ok := stdout.(interface{ Sync() error }); ok {
				f.Sync()
			}
			time.Sleep(o.Hold)
		}
		stop()
		return rc
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		fmt.Fprint(stderr, usageText)
		return 2
	}
}

func finish(w io.Writer, snaps []*Snapshot, opts Options) int {
	var all []Finding
	for _, s := range snaps {
		all = append(all, Check(s, opts)...)
	}
	_, v := report(w, snaps, all)
	if v > 0 {
		return 1
	}
	return 0
}
