#!/usr/bin/python3
"""ingress_golden: our Kubernetes Ingress conversion against Istio's own golden files.

A reference comparison, run when $ISTIO_GIT_DIR names a git directory of Istio's public
repository (skipped with 77 otherwise: nothing of Istio's is committed here). Each case of
Istio's TestGoldenConversion (pilot/pkg/config/kube/ingress/testdata/<case>.yaml, domain
"mydomain", every Ingress converted) goes through ingress_dump; the Gateways and
VirtualServices we list in /debug/configz are compared, as data, with <case>.yaml.golden
(creationTimestamp: null dropped). Prints one line per case and "N/M match".
Usage: ingress_golden.py INGRESS_DUMP
"""
import json
import os
import subprocess
import sys
import tempfile

import yaml

REV = os.environ.get("ISTIO_REV", "HEAD")
BASE = "pilot/pkg/config/kube/ingress/testdata/"
CASES = ["simple", "tls", "overlay", "tls-no-secret"]


def show(git_dir, path):
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"{REV}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def clean(o):
    o = json.loads(json.dumps(o))
    o.get("metadata", {}).pop("creationTimestamp", None)
    return o


def main():
    git_dir = os.environ.get("ISTIO_GIT_DIR")
    if not git_dir:
        print("SKIP: a reference comparison with Istio's ingress conversion golden files: "
              "set ISTIO_GIT_DIR to a git directory of istio/istio")
        return 77
    dump = sys.argv[1]
    ok = 0
    for case in CASES:
        want = [clean(d) for d in yaml.safe_load_all(show(git_dir, BASE + case + ".yaml.golden"))
                if d]
        want.sort(key=lambda d: d["metadata"]["name"])
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(show(git_dir, BASE + case + ".yaml"))
            f.flush()
            got = json.loads(subprocess.run([dump, "mydomain", f.name], check=True,
                                            capture_output=True, text=True).stdout)
        got = [clean(d) for d in got]
        if got == want:
            ok += 1
            print(f"{case}: match ({len(got)} objects)")
        else:
            print(f"{case}: DIFFER")
            print("  want:", json.dumps(want, sort_keys=True))
            print("  got: ", json.dumps(got, sort_keys=True))
    print(f"{ok}/{len(CASES)} match")
    return 0 if ok == len(CASES) else 1


if __name__ == "__main__":
    sys.exit(main())
