#!/usr/bin/python3
"""inject_golden: our injector against Istio 1.24's injection golden pods.

Usage: inject_golden.py TOOL

A reference comparison, run when $ISTIO_GIT_DIR names a git directory of Istio's public
repository holding tag 1.24.0 (the search tool's fetch brings one): `make test` does not
need it, and nothing of Istio's is committed here. For each case of CASES, Istio's input
pkg/kube/inject/testdata/inject/<case>, every workload is turned into the Pod the API server would send the
webhook (a Deployment's pod has a ReplicaSet owner and a pod-template-hash, a StatefulSet's
pod its StatefulSet...), injected by TOOL (wh_inject_tool), and compared structurally with
the expected pod:
  Istio's own <case>.injected file, or the file its inject_test.go names for a case run with
  other settings: values (Istio's testdata/inputs/<case>.<n>.values.gen.yaml, handed to TOOL
  as the istio-sidecar-injector ConfigMap's `values`), ENABLE_NATIVE_SIDECARS, or mesh
  config defaultConfig fields.
"Structurally": labels, annotations and spec, with Go's empty values (creationTimestamp:
null, resources: {}, status: {}) dropped, env values and annotations that hold JSON
compared as JSON, and quantities and ports compared as Kubernetes would read them.
Prints one line per case and "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile

import yaml

ISTIO_TAG = "1.24.0"
ISTIO_PATH = "pkg/kube/inject/testdata/inject/"
# Inputs whose injection fails in istiod: the reason must name the annotation.
EXPECT_ERROR = {
    "traffic-annotations-bad-includeipranges.yaml": "includeOutboundIPRanges",
    "traffic-annotations-bad-excludeinboundports.yaml": "excludeInboundPorts",
    "traffic-annotations-bad-excludeipranges.yaml": "excludeOutboundIPRanges",
    "traffic-annotations-bad-includeinboundports.yaml": "includeInboundPorts",
    "traffic-annotations-bad-excludeoutboundports.yaml": "excludeOutboundPorts",
}
JSON_VALUES = {"PROXY_CONFIG", "ISTIO_KUBE_APP_PROBERS", "ISTIO_PROMETHEUS_ANNOTATIONS",
               "ISTIO_META_POD_PORTS", "sidecar.istio.io/status", "proxy.istio.io/overrides"}
HASH = "5f7d6c9b8"


def workloads(docs):
    """(kind, name, namespace, pod template, owner) for each workload document."""
    out = []
    for d in docs:
        if not d:
            continue
        kind = d.get("kind")
        if kind == "List":
            out += workloads(d.get("items") or [])
            continue
        md = d.get("metadata") or {}
        if kind == "Pod":
            out.append((kind, md.get("name"), md.get("namespace"), d, None))
        elif kind == "CronJob":
            out.append((kind, md.get("name"), md.get("namespace"),
                        d["spec"]["jobTemplate"]["spec"]["template"], d))
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet",
                      "ReplicationController", "DeploymentConfig"):
            out.append((kind, md.get("name"), md.get("namespace"), d["spec"]["template"], d))
    return out


def to_pod(kind, name, ns, tmpl, owner):
    pod = json.loads(json.dumps(tmpl))
    pod.setdefault("apiVersion", "v1")
    pod["kind"] = "Pod"
    md = pod.setdefault("metadata", {})
    md.setdefault("namespace", ns or "default")
    if owner is None:
        return pod
    api = owner.get("apiVersion", "v1")
    ref_kind, ref_name = kind, name
    if kind == "Deployment":
        ref_kind, ref_name = "ReplicaSet", "%s-%s" % (name, HASH)
        md.setdefault("labels", {})["pod-template-hash"] = HASH
    elif kind == "DeploymentConfig":
        # the owner keeps the DeploymentConfig's apiVersion, which istiod's OWNER names
        ref_kind, ref_name = "ReplicationController", name + "-1"
        md.setdefault("labels", {})["deploymentconfig"] = name
    md["generateName"] = ref_name + "-"
    md["ownerReferences"] = [{"apiVersion": api, "kind": ref_kind, "name": ref_name,
                              "controller": True, "uid": "u"}]
    return pod


def parse_json_value(v):
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        return v


def quantity(v):
    """Kubernetes quantities as numbers, so "2000m" equals "2" and "1024Mi" "1Gi"."""
    if not isinstance(v, str):
        return v
    units = {"m": 1e-3, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "k": 1e3, "M": 1e6,
             "G": 1e9}
    for u in sorted(units, key=len, reverse=True):
        if v.endswith(u):
            try:
                return float(v[:-len(u)]) * units[u]
            except ValueError:
                return v
    try:
        return float(v)
    except ValueError:
        return v


def norm(x, key=None):
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if k in ("creationTimestamp",) and v is None:
                continue
            if k in ("limits", "requests") and isinstance(v, dict):
                v = {kk: quantity(vv) for kk, vv in v.items()}
            if k in JSON_VALUES and isinstance(v, str):
                v = parse_json_value(v)
            nv = norm(v, k)
            if nv in ({}, [], None):
                continue
            out[k] = nv
        if "name" in out and "value" in out and out["name"] in JSON_VALUES:
            out["value"] = parse_json_value(x["value"])
        return out
    if isinstance(x, list):
        return [norm(v) for v in x]
    if key == "divisor":
        return quantity(x)
    return x


def comparable(pod):
    md = pod.get("metadata") or {}
    labels = dict(md.get("labels") or {})
    labels.pop("pod-template-hash", None)
    labels.pop("deploymentconfig", None)
    return norm({"labels": labels, "annotations": md.get("annotations") or {},
                 "spec": pod.get("spec") or {}})


def diff(a, b, path=""):
    if type(a) is not type(b):
        return ["%s: %r != %r" % (path or "/", a, b)]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append("%s/%s: missing in ours (istio: %s)" % (path, k, json.dumps(b[k])[:200]))
            elif k not in b:
                out.append("%s/%s: extra in ours: %s" % (path, k, json.dumps(a[k])[:200]))
            else:
                out += diff(a[k], b[k], "%s/%s" % (path, k))
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            na = [i.get("name") if isinstance(i, dict) else i for i in a]
            nb = [i.get("name") if isinstance(i, dict) else i for i in b]
            return ["%s: %d items %s != %d items %s" % (path, len(a), na, len(b), nb)]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, "%s[%d]" % (path, i))
        return out
    return [] if a == b else ["%s: %r != %r" % (path, a, b)]


def istio_expected(want):
    git_dir = os.environ.get("ISTIO_GIT_DIR")
    if not git_dir:
        return None
    r = subprocess.run(["git", "--git-dir", git_dir, "show",
                        "%s:%s%s" % (ISTIO_TAG, ISTIO_PATH, want)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return [comparable(to_pod(*w)) for w in workloads(yaml.safe_load_all(r.stdout))]


def run_tool(tool, pod, args=()):
    r = subprocess.run([tool] + list(args), input=json.dumps(pod), capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("tool failed: " + r.stderr[-2000:])
    return json.loads(r.stdout)


CASES = ['auth.non-default-service-account.yaml', 'auth.yaml', 'daemonset.yaml',
         'deploymentconfig-multi.yaml', 'deploymentconfig-with-canonical-service-label.yaml',
         'deploymentconfig.yaml', 'enable-core-dump.yaml', 'explicit-security-context.yaml',
         'frontend.yaml', 'hello-host-network-with-ns.yaml', 'hello-host-network.yaml',
         'hello-ignore.yaml', 'hello-mtls-not-ready.yaml', 'hello-multi.yaml',
         'hello-namespace.yaml', 'hello-probes-proxyHoldApplication-ProxyConfig.yaml',
         'hello-probes-with-flag-set-in-annotation.yaml',
         'hello-probes-with-flag-unset-in-annotation.yaml', 'hello-probes.yaml',
         'hello-proxy-override.yaml', 'hello-readiness.yaml', 'hello-service.yaml',
         'hello.yaml', 'https-probes.yaml', 'job.yaml', 'kubevirtInterfaces_list.yaml',
         'list-frontend.yaml', 'list.yaml', 'multi-container.yaml', 'multi-init.yaml',
         'multiple-templates.yaml', 'named_port.yaml', 'one_container.yaml',
         'only-proxy-container.yaml', 'pod.yaml', 'prometheus-scrape.yaml',
         'prometheus-scrape2.yaml', 'proxy-override-args.yaml', 'proxy-override-runas.yaml',
         'proxy-override.yaml', 'ready_live.yaml', 'ready_only.yaml', 'replicaset.yaml',
         'replicationcontroller.yaml', 'resource_annotations.yaml', 'startup_live.yaml',
         'startup_only.yaml', 'startup_ready_live.yaml', 'statefulset.yaml',
         'status_annotations.yaml', 'status_annotations_zeroport.yaml', 'tcp-probes.yaml',
         'traffic-annotations-bad-excludeinboundports.yaml',
         'traffic-annotations-bad-excludeipranges.yaml',
         'traffic-annotations-bad-excludeoutboundports.yaml',
         'traffic-annotations-bad-includeinboundports.yaml',
         'traffic-annotations-bad-includeipranges.yaml',
         'traffic-annotations-empty-includes.yaml', 'traffic-annotations-wildcards.yaml',
         'traffic-annotations.yaml', 'traffic-params-empty-includes.yaml',
         'truncate-canonical-name-custom-controller-pod.yaml',
         'truncate-canonical-name-pod.yaml', 'two_container.yaml', 'user-volume.yaml']

# Cases inject_test.go runs with other settings: (input, expected file, options). "values":
# the generated values file of that case in testdata/inputs; "native": the
# ENABLE_NATIVE_SIDECARS environment; "proxy_config": mesh config defaultConfig fields.
SETTINGS_CASES = [
    ("hello.yaml", "hello.yaml.proxyImageName.injected", {"values": "hello.yaml.1"}),
    ("hello.yaml", "hello-tproxy.yaml.injected", {"proxy_config": {"interceptionMode": "TPROXY"}}),
    ("hello.yaml", "hello-always.yaml.injected", {"values": "hello.yaml.3"}),
    ("hello.yaml", "hello-never.yaml.injected", {"values": "hello.yaml.4"}),
    ("format-duration.yaml", "format-duration.yaml.injected",
     {"proxy_config": {"drainDuration": "23s"}}),
    ("traffic-params.yaml", "traffic-params.yaml.injected", {"values": "traffic-params.yaml.6"}),
    ("status_params.yaml", "status_params.yaml.injected", {"values": "status_params.yaml.7"}),
    ("kubevirtInterfaces.yaml", "kubevirtInterfaces.yaml.injected",
     {"values": "kubevirtInterfaces.yaml.8"}),
    ("hello.yaml", "hello-image-secrets-in-values.yaml.injected", {"values": "hello.yaml.9"}),
    ("hello-image-pull-secret.yaml", "hello-multiple-image-secrets.yaml.injected",
     {"values": "hello-image-pull-secret.yaml.10"}),
    ("hello.yaml", "hello-mount-mtls-certs.yaml.injected", {"values": "hello.yaml.12"}),
    ("hello.yaml", "hello.proxyHoldsApplication.yaml.injected", {"values": "hello.yaml.16"}),
    ("hello-probes.yaml", "hello-probes.proxyHoldsApplication.yaml.injected",
     {"values": "hello-probes.yaml.17"}),
    ("hello-probes-noProxyHoldApplication-ProxyConfig.yaml",
     "hello-probes-noProxyHoldApplication-ProxyConfig.yaml.injected",
     {"values": "hello-probes-noProxyHoldApplication-ProxyConfig.yaml.19"}),
    ("proxy-override-runas.yaml", "proxy-override-runas.yaml.tproxy.injected",
     {"proxy_config": {"interceptionMode": "TPROXY"}}),
    ("proxy-override-args.yaml", "proxy-override-args-native.yaml.injected", {"native": "true"}),
    ("native-sidecar.yaml", "native-sidecar.yaml.injected", {"native": "true"}),
    ("native-sidecar-opt-in.yaml", "native-sidecar-opt-in.yaml.injected", {"native": "true"}),
    ("native-sidecar-opt-in.yaml", "native-sidecar-opt-in.yaml.injected", {"native": "false"}),
    ("native-sidecar-opt-out.yaml", "native-sidecar-opt-out.yaml.injected", {"native": "true"}),
    ("native-sidecar-opt-out.yaml", "native-sidecar-opt-out.yaml.injected", {"native": "false"}),
    ("merge-probers.yaml", "merge-probers.yaml.injected", {"values": "merge-probers.yaml.46"}),
    ("hello-tracing-disabled.yaml", "hello-tracing-disabled.yaml.injected",
     {"proxy_config": {"tracing": {}}}),
]


def istio_file(path):
    r = subprocess.run(["git", "--git-dir", os.environ["ISTIO_GIT_DIR"], "show",
                        "%s:%s" % (ISTIO_TAG, path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("no %s in Istio %s: %s" % (path, ISTIO_TAG, r.stderr.strip()))
    return r.stdout


def tool_args(opts, tmpdir):
    args = []
    if "values" in opts:
        path = os.path.join(tmpdir, opts["values"] + ".values")
        with open(path, "w") as f:
            f.write(istio_file("pkg/kube/inject/testdata/inputs/%s.values.gen.yaml"
                               % opts["values"]))
        args += ["--values", path]
    if "native" in opts:
        args += ["--native", opts["native"]]
    if "proxy_config" in opts:
        args += ["--proxy-config", json.dumps(opts["proxy_config"])]
    return args


def istio_input(case):
    r = subprocess.run(["git", "--git-dir", os.environ["ISTIO_GIT_DIR"], "show",
                        "%s:%s%s" % (ISTIO_TAG, ISTIO_PATH, case)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("no %s in Istio %s: %s" % (case, ISTIO_TAG, r.stderr.strip()))
    return list(yaml.safe_load_all(r.stdout))


def main():
    tool = sys.argv[1]
    if not os.environ.get("ISTIO_GIT_DIR"):
        print("SKIP: a reference comparison with Istio's injection golden files: set "
              "ISTIO_GIT_DIR to a git directory of istio/istio with tag %s" % ISTIO_TAG)
        return 77
    passed = failed = 0
    tmpdir = tempfile.mkdtemp(prefix="inject_golden.")
    for entry in [(c, c + ".injected", {}) for c in CASES] + SETTINGS_CASES:
        case, want_file, opts = entry
        label = case if want_file == case + ".injected" and not opts else \
            "%s -> %s %s" % (case, want_file, json.dumps(opts, sort_keys=True))
        docs = istio_input(case)
        args = tool_args(opts, tmpdir)
        ours = []
        err = None
        for w in workloads(docs):
            res = run_tool(tool, to_pod(*w), args)
            if "error" in res:
                err = res["error"]
                break
            if "skipped" in res:
                res = to_pod(*w)  # left as it came
            ours.append(comparable(res))
        if case in EXPECT_ERROR:
            ok = err is not None and EXPECT_ERROR[case] in err
            print("%s %s: %s" % ("ok  " if ok else "FAIL", label, err))
            passed, failed = passed + ok, failed + (not ok)
            continue
        if err:
            print("FAIL %s: injection failed: %s" % (label, err))
            failed += 1
            continue
        want = istio_expected(want_file)
        src = "istio %s" % ISTIO_TAG
        if want is None:
            print("FAIL %s: no %s in Istio %s" % (label, want_file, ISTIO_TAG))
            failed += 1
            continue
        problems = diff(ours, want)
        if problems:
            print("FAIL %s (vs %s):" % (label, src))
            for p in problems[:12]:
                print("       " + p)
            failed += 1
            continue
        print("ok   %s (vs %s)" % (label, src))
        passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
