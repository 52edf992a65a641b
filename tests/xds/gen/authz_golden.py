#!/usr/bin/python3
"""authz_golden: our AuthorizationPolicy translator against Istio's own golden files.

A reference comparison, run when $ISTIO_GIT_DIR names a git directory of Istio's public
repository (skipped with 77 otherwise: nothing of Istio's is committed here). For each case
of Istio's pilot/pkg/security/authz/builder tests (TestGenerator_GenerateHTTP/TCP), the
-in.yaml policies go through authz_dump (xds/gen/authz.c for Istio's test node: namespace
foo, app=httpbin,version=v1); each filter we write is decoded with the real Envoy protos
(protoc descriptor set + python protobuf) into proto3 JSON and compared with the -out.yaml
files as data. The mesh config and trust domain bundle of each case (builder_test.go's
meshConfig* values and tdBundle) are written out below as the YAML a --meshConfig file
holds, with the registry's one Service (my-custom-ext-authz.foo) added to the input.
Cases that need what we do not model are reported apart (none today). Prints one line per
case and "N/M match"; exits 1 when a modelled case differs.
Usage: authz_golden.py AUTHZ_DUMP
"""
import os
import subprocess
import sys
import tempfile

import yaml

REV = os.environ.get("ISTIO_REV", "HEAD")
BASE = "pilot/pkg/security/authz/builder/testdata/"
# (name, dir, input, wants, why not modelled or None)
PROVIDERS = ALIASES = SOURCE_FIELDS = None  # all modelled now

# builder_test.go's mesh configs, as --meshConfig YAML.
MC_GRPC_NO_NS = """
extensionProviders:
- name: default
  envoyExtAuthzGrpc:
    service: my-custom-ext-authz.foo.svc.cluster.local
    port: 9000
    failOpen: true
    statusOnError: "403"
"""
MC_GRPC = """
extensionProviders:
- name: default
  envoyExtAuthzGrpc:
    service: foo/my-custom-ext-authz.foo.svc.cluster.local
    port: 9000
    timeout: 0.002s
    failOpen: true
    statusOnError: "403"
    includeRequestBodyInCheck: {maxRequestBytes: 4096, allowPartialMessage: true}
"""
MC_HTTP = """
extensionProviders:
- name: default
  envoyExtAuthzHttp:
    service: foo/my-custom-ext-authz.foo.svc.cluster.local
    port: 9000
    timeout: 10s
    failOpen: true
    statusOnError: "403"
    pathPrefix: /check
    includeRequestHeadersInCheck: [x-custom-id, x-prefix-*, "*-suffix"]
    includeHeadersInCheck: [should-not-include-when-IncludeRequestHeadersInCheck-is-set]
    includeAdditionalHeadersInCheck: {x-header-1: value-1, x-header-2: value-2}
    includeRequestBodyInCheck: {maxRequestBytes: 2048, allowPartialMessage: true,
                                packAsBytes: true}
    headersToUpstreamOnAllow: [Authorization, x-prefix-*, "*-suffix"]
    headersToDownstreamOnDeny: [Set-cookie, x-prefix-*, "*-suffix"]
    headersToDownstreamOnAllow: [Set-cookie, x-prefix-*, "*-suffix"]
"""
MC_INVALID = """
extensionProviders:
- name: default
  envoyExtAuthzHttp:
    service: foo/my-custom-ext-authz
    port: 999999
    pathPrefix: check
    statusOnError: "999"
"""
# name -> (trust domain, mesh config YAML): tdBundle NewBundle(td, aliases) and meshConfig.
CONFIG = {
    "custom-grpc-provider-no-namespace": ("", MC_GRPC_NO_NS),
    "custom-grpc-provider": ("", MC_GRPC),
    "custom-http-provider": ("", MC_HTTP),
    "custom-bad-multiple-providers": ("", MC_HTTP),
    "custom-bad-invalid-config": ("", MC_INVALID),
    "trust-domain-one-alias": ("td1", "trustDomainAliases: [cluster.local]\n"),
    "trust-domain-multiple-aliases": ("td1", "trustDomainAliases: [cluster.local, some-td]\n"),
    "trust-domain-wildcard-in-principal": ("td1", "trustDomainAliases: [foobar]\n"),
    "trust-domain-aliases-in-source-principal": (
        "new-td", "trustDomainAliases: [old-td, some-trustdomain]\n"),
    "tcp/custom-both-http-tcp": ("", MC_GRPC),
    "tcp/custom-only-http": ("", MC_HTTP),
}
# the registry of builder_test.go's push(): the ext_authz service
EXT_AUTHZ_SERVICE = """
---
apiVersion: v1
kind: Service
metadata: {name: my-custom-ext-authz, namespace: foo}
spec:
  clusterIP: 10.96.0.90
  ports: [{name: grpc, port: 9000}]
"""
CASES = [
    ("allow-empty-rule", "http", "allow-empty-rule-in.yaml", ["allow-empty-rule-out.yaml"], None),
    ("allow-full-rule", "http", "allow-full-rule-in.yaml", ["allow-full-rule-out.yaml"],
     SOURCE_FIELDS),
    # the same without its rule[0] (serviceAccounts): every other field of the API
    ("allow-full-rule-without-rule0", "http", "allow-full-rule-in.yaml",
     ["allow-full-rule-out.yaml"], None),
    ("allow-nil-rule", "http", "allow-nil-rule-in.yaml", ["allow-nil-rule-out.yaml"], None),
    ("allow-path", "http", "allow-path-in.yaml", ["allow-path-out.yaml"], None),
    ("audit-full-rule", "http", "audit-full-rule-in.yaml", ["audit-full-rule-out.yaml"], None),
    ("custom-grpc-provider-no-namespace", "http", "custom-simple-http-in.yaml",
     ["custom-grpc-provider-no-namespace-out1.yaml", "custom-grpc-provider-no-namespace-out2.yaml"],
     PROVIDERS),
    ("custom-grpc-provider", "http", "custom-simple-http-in.yaml",
     ["custom-grpc-provider-out1.yaml", "custom-grpc-provider-out2.yaml"], PROVIDERS),
    ("custom-http-provider", "http", "custom-simple-http-in.yaml",
     ["custom-http-provider-out1.yaml", "custom-http-provider-out2.yaml"], PROVIDERS),
    ("custom-bad-multiple-providers", "http", "custom-bad-multiple-providers-in.yaml",
     ["custom-bad-multiple-providers-out1.yaml", "custom-bad-multiple-providers-out2.yaml"], None),
    ("custom-bad-invalid-config", "http", "custom-simple-http-in.yaml", ["custom-bad-out.yaml"], None),
    ("deny-and-allow", "http", "deny-and-allow-in.yaml",
     ["deny-and-allow-out1.yaml", "deny-and-allow-out2.yaml"], None),
    ("deny-empty-rule", "http", "deny-empty-rule-in.yaml", ["deny-empty-rule-out.yaml"], None),
    ("dry-run-allow-and-deny", "http", "dry-run-allow-and-deny-in.yaml",
     ["dry-run-allow-and-deny-out1.yaml", "dry-run-allow-and-deny-out2.yaml"], None),
    ("dry-run-allow", "http", "dry-run-allow-in.yaml", ["dry-run-allow-out.yaml"], None),
    ("dry-run-mix", "http", "dry-run-mix-in.yaml", ["dry-run-mix-out.yaml"], None),
    ("multiple-policies", "http", "multiple-policies-in.yaml", ["multiple-policies-out.yaml"], None),
    ("single-policy", "http", "single-policy-in.yaml", ["single-policy-out.yaml"], None),
    ("trust-domain-one-alias", "http", "simple-policy-td-aliases-in.yaml",
     ["simple-policy-td-aliases-out.yaml"], ALIASES),
    ("trust-domain-multiple-aliases", "http", "simple-policy-multiple-td-aliases-in.yaml",
     ["simple-policy-multiple-td-aliases-out.yaml"], ALIASES),
    ("trust-domain-wildcard-in-principal", "http", "simple-policy-principal-with-wildcard-in.yaml",
     ["simple-policy-principal-with-wildcard-out.yaml"], ALIASES),
    ("trust-domain-aliases-in-source-principal", "http", "td-aliases-source-principal-in.yaml",
     ["td-aliases-source-principal-out.yaml"], ALIASES),
    ("trust-domains-field", "http", "trust-domains-in.yaml", ["trust-domains-out.yaml"],
     SOURCE_FIELDS),
    ("tcp/allow-both-http-tcp", "tcp", "allow-both-http-tcp-in.yaml",
     ["allow-both-http-tcp-out.yaml"], None),
    ("tcp/allow-only-http", "tcp", "allow-only-http-in.yaml", ["allow-only-http-out.yaml"], None),
    ("tcp/audit-both-http-tcp", "tcp", "audit-both-http-tcp-in.yaml",
     ["audit-both-http-tcp-out.yaml"], None),
    ("tcp/custom-both-http-tcp", "tcp", "custom-both-http-tcp-in.yaml",
     ["custom-both-http-tcp-out1.yaml", "custom-both-http-tcp-out2.yaml"], PROVIDERS),
    ("tcp/custom-only-http", "tcp", "custom-only-http-in.yaml", [], PROVIDERS),
    ("tcp/deny-both-http-tcp", "tcp", "deny-both-http-tcp-in.yaml", ["deny-both-http-tcp-out.yaml"],
     None),
    ("tcp/dry-run-mix", "tcp", "dry-run-mix-in.yaml", ["dry-run-mix-out.yaml"], None),
]
PROTOS = [
    "envoy/extensions/filters/http/rbac/v3/rbac.proto",
    "envoy/extensions/filters/network/rbac/v3/rbac.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/extensions/path/match/uri_template/v3/uri_template_match.proto",
    "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
    "envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto",
]


def git_show(path):
    r = subprocess.run(["git", "--git-dir", os.environ["ISTIO_GIT_DIR"], "show",
                        "%s:%s" % (REV, path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("no %s in Istio %s: %s" % (path, REV, r.stderr.strip()))
    return r.stdout


def load_pool(tmp):
    from google.protobuf import descriptor_pb2, descriptor_pool
    out = os.path.join(tmp, "set.pb")
    root = os.environ["PILOT_PROTO_ROOT"]
    subprocess.run(["protoc", "--include_imports", "--descriptor_set_out=" + out, "-I" + root,
                    "-I/usr/include"] + PROTOS, check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return pool


def decode(pool, name, data):
    from google.protobuf import json_format, message_factory
    desc = pool.FindMessageTypeByName(name)
    cls = message_factory.MessageFactory(pool).GetPrototype(desc)
    m = cls()
    m.ParseFromString(data)
    return json_format.MessageToDict(m, descriptor_pool=pool)


def normalise(v):
    """Drops what only differs in spelling: RegexMatcher's deprecated google_re2 engine
    (we set it for old gRPC clients; it is empty) and proto3 defaults."""
    if isinstance(v, dict):
        return {k: normalise(x) for k, x in v.items() if k != "googleRe2"}
    if isinstance(v, list):
        return [normalise(x) for x in v]
    return v


def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append("%s/%s: missing in ours" % (path, k))
            elif k not in b:
                out.append("%s/%s: extra in ours" % (path, k))
            else:
                out += diff(a[k], b[k], "%s/%s" % (path, k))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return ["%s: %d items != %d items" % (path, len(a), len(b))]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, "%s[%d]" % (path, i))
        return out
    return [] if a == b else ["%s: %r != %r" % (path, a, b)]


def main():
    tool = sys.argv[1]
    if not os.environ.get("ISTIO_GIT_DIR"):
        print("SKIP: a reference comparison with Istio's authz builder golden files: set "
              "ISTIO_GIT_DIR to a git directory of istio/istio")
        return 77
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        print("SKIP: python3 protobuf (python3-protobuf) is needed to decode our filters")
        return 77
    ok_modelled = modelled = ok_other = other = 0
    with tempfile.TemporaryDirectory() as tmp:
        pool = load_pool(tmp)
        for name, kind, inp, wants, why in CASES:
            d = BASE + kind + "/"
            src = os.path.join(tmp, "in.yaml")
            text = git_show(d + inp)
            if name.endswith("-without-rule0"):
                doc = yaml.safe_load(text)
                del doc["spec"]["rules"][0]
                text = yaml.safe_dump(doc)
            with open(src, "w") as f:
                f.write(text + EXT_AUTHZ_SERVICE)
            td, mc = CONFIG.get(name, ("", ""))
            mcfile = os.path.join(tmp, "mesh.yaml")
            with open(mcfile, "w") as f:
                f.write(mc)
            outdir = tempfile.mkdtemp(dir=tmp)
            r = subprocess.run([tool, kind, src, outdir, td, mcfile], capture_output=True,
                               text=True)
            problems = []
            if r.returncode != 0:
                problems = ["authz_dump: " + r.stderr[-500:]]
            else:
                n = int(r.stdout.strip().splitlines()[-1])
                msg = ("envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"
                       if kind == "http" else "envoy.config.listener.v3.Filter")
                ours = []
                for i in range(n):
                    with open(os.path.join(outdir, "%d.bin" % i), "rb") as f:
                        ours.append(normalise(decode(pool, msg, f.read())))
                theirs = [normalise(yaml.safe_load(git_show(d + w))) for w in wants]
                if name.endswith("-without-rule0"):
                    pol = theirs[0]["typedConfig"]["rules"]["policies"]
                    pol.pop("ns[foo]-policy[httpbin-1]-rule[0]")
                    pol["ns[foo]-policy[httpbin-1]-rule[0]"] = pol.pop(
                        "ns[foo]-policy[httpbin-1]-rule[1]")
                problems = diff(ours, theirs)
            tag = "ok  " if not problems else ("FAIL" if why is None else "skip")
            print("%s %s%s" % (tag, name, "" if not why else " (%s)" % why))
            for p in problems[:8]:
                print("       " + p)
            if why is None:
                modelled += 1
                ok_modelled += not problems
            else:
                other += 1
                ok_other += not problems
    print("%d/%d Istio golden cases match: %d/%d of the modelled ones, %d/%d of those needing "
          "what we do not model" % (ok_modelled + ok_other, modelled + other, ok_modelled,
                                     modelled, ok_other, other))
    return 0 if ok_modelled == modelled else 1


if __name__ == "__main__":
    sys.exit(main())
