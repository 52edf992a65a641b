// grpcxds is a proxyless gRPC client and server on grpc-go's xDS support, for the
// end-to-end tests: the service is /e2e.Greeter/Hello with raw bytes (no proto); the
// request is ignored and the answer is the server's version string.
//
//	grpcxds client --bootstrap FILE --target xds:///host:port [-n N] [--header k=v]...
//	               [--timeout 5s] [--wait-for-ready]
//	    makes N calls, prints {"counts": {"v1": 80, ...}, "errors": {"Unavailable": 3}}
//	grpcxds server --bootstrap FILE --addr IP:PORT --version v1 [--xds-creds]
//	    serves until killed (SIGTERM/SIGINT: graceful stop); prints "ready" once listening
//
// The bootstrap is gRPC's (GRPC_XDS_BOOTSTRAP) JSON. grpc-go reads GRPC_XDS_BOOTSTRAP
// when its packages initialise, so --bootstrap re-executes this program with the variable
// set. Channel and server credentials are gRPC's `xds` credentials with insecure fallback:
// TLS exactly when the xDS resources ask for it, with certificates from the bootstrap's
// certificate_providers (file_watcher).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds" // registers the xds:/// resolver and balancers
)

const (
	service = "e2e.Greeter"
	method  = "/e2e.Greeter/Hello"
)

// rawCodec passes message bytes through untouched. It is named "proto" so the
// content-type stays application/grpc+proto, which every gRPC server accepts.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case []byte:
		return m, nil
	case *[]byte:
		return *m, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = append([]byte(nil), data...)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const usageText = `usage:
  grpcxds client --bootstrap FILE --target xds:///host:port [-n N] [--header k=v]... [--timeout 5s] [--wait-for-ready]
  grpcxds server --bootstrap FILE --addr IP:PORT --version v1 [--xds-creds]
`

func main() {
	os.Exit(run(os.Args[1:]))
}

// useBootstrap makes sure GRPC_XDS_BOOTSTRAP names file in this process's environment
// from its start (grpc-go reads it at package initialisation): if not, re-exec.
func useBootstrap(file string) error {
	if file == "" {
		if os.Getenv("GRPC_XDS_BOOTSTRAP") == "" && os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" {
			return errors.New("--bootstrap FILE (or GRPC_XDS_BOOTSTRAP) is required")
		}
		return nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return err
	}
	if os.Getenv("GRPC_XDS_BOOTSTRAP") == abs {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	os.Setenv("GRPC_XDS_BOOTSTRAP", abs)
	return syscall.Exec(exe, os.Args, os.Environ())
}

func run(args []string) int {
	if len(args) < 1 {
		fmt.Fprint(os.Stderr, usageText)
		return 2
	}
	fs := flag.NewFlagSet("grpcxds "+args[0], flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usageText) }
	bootstrap := fs.String("bootstrap", "", "gRPC xDS bootstrap JSON file")
	switch args[0] {
	case "client":
		target := fs.String("target", "", "xds:///host:port")
		n := fs.Int("n", 1, "number of calls")
		timeout := fs.Duration("timeout", 5*time.Second, "deadline of each call")
		wait := fs.Bool("wait-for-ready", false, "every call waits for the channel to be ready (the first always does)")
		var headers multiFlag
		fs.Var(&headers, "header", "request metadata k=v (repeatable)")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || *target == "" || *n < 0 {
			fs.Usage()
			return 2
		}
		if err := useBootstrap(*bootstrap); err != nil {
			fmt.Fprintf(os.Stderr, "grpcxds: %v\n", err)
			return 2
		}
		var md []string
		for _, h := range headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok || k == "" {
				fmt.Fprintf(os.Stderr, "grpcxds: --header %q: want k=v\n", h)
				return 2
			}
			md = append(md, strings.ToLower(k), v)
		}
		return client(os.Stdout, *target, *n, *timeout, *wait, md)
	case "server":
		addr := fs.String("addr", "", "IP:PORT to listen on (an endpoint address of the service)")
		version := fs.String("version", "", "what Hello answers")
		useXDSCreds := fs.Bool("xds-creds", false, "xds server credentials (mTLS when the listener asks), insecure fallback")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || *addr == "" || *version == "" {
			fs.Usage()
			return 2
		}
		if err := useBootstrap(*bootstrap); err != nil {
			fmt.Fprintf(os.Stderr, "grpcxds: %v\n", err)
			return 2
		}
		return server(*addr, *version, *useXDSCreds)
	default:
		fmt.Fprint(os.Stderr, usageText)
		return 2
	}
}

type result struct {
	Counts map[string]int `json:"counts"`
	Errors map[string]int `json:"errors"`
}

func client(out io.Writer, target string, n int, timeout time.Duration, waitAll bool, md []string) int {
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcxds: %v\n", err)
		return 2
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcxds: %s: %v\n", target, err)
		return 2
	}
	defer conn.Close()
	res := result{Counts: map[string]int{}, Errors: map[string]int{}}
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if len(md) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, md...)
		}
		var resp []byte
		err := conn.Invoke(ctx, method, []byte("hi"), &resp, grpc.WaitForReady(waitAll || i == 0))
		cancel()
		if err != nil {
			c := status.Code(err)
			res.Errors[c.String()]++
			if res.Errors[c.String()] == 1 {
				fmt.Fprintf(os.Stderr, "grpcxds: call %d: %v\n", i, err)
			}
			continue
		}
		res.Counts[string(resp)]++
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(out, string(b))
	return 0
}

// greeter: the handler type of the raw service (any value implements it).
type greeter interface{}

// greeterDesc: /e2e.Greeter/Hello answering version, request bytes ignored.
func greeterDesc(version string) *grpc.ServiceDesc {
	answer := []byte(version)
	return &grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*greeter)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Hello",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				if err := dec(&in); err != nil {
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				return answer, nil
			},
		}},
	}
}

func server(addr, version string, useXDSCreds bool) int {
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if useXDSCreds {
		c, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			fmt.Fprintf(os.Stderr, "grpcxds: %v\n", err)
			return 2
		}
		creds = c
	}
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), grpc.ForceServerCodec(rawCodec{}),
		xds.ServingModeCallback(func(a net.Addr, args xds.ServingModeChangeArgs) {
			fmt.Fprintf(os.Stderr, "grpcxds: %s serving mode %s (%v)\n", a, args.Mode, args.Err)
		}))
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcxds: %v\n", err)
		return 2
	}
	srv.RegisterService(greeterDesc(version), struct{}{})
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcxds: %v\n", err)
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			srv.Stop()
		}
	}()
	fmt.Println("ready")
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		fmt.Fprintf(os.Stderr, "grpcxds: %v\n", err)
		return 1
	}
	return 0
}
