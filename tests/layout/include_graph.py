#!/usr/bin/python3
"""include_graph: the folder-level include graph of the product, checked.

Every project header is included by its path from the one include root
("pilot/model/snapshot.h"). This test reads each product .c/.h file's quoted includes,
prints the folder graph (one line per folder: what it includes), and fails on
  - an include that is not a path from the root (a bare "x.h" naming a project header),
  - a cycle between folders,
  - an edge against the layer order below (dependencies point one way), or
  - one of the named forbidden edges (k8s -> pilot internals, certs -> xds, ...).
Usage: include_graph.py [SRC_ROOT]
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
PRODUCT = ["pilot", "xds", "k8s", "certs"]
# Layers: a folder may include only folders of a lower rank (or itself).
RANK = {
    "pilot/base": 0,
    "pilot/obs": 1, "pilot/config": 1,
    "pilot/model": 2, "pilot/cfgdir": 2, "k8s": 2,
    "certs": 3, "xds/gen": 3, "pilot/webhook": 3, "pilot/jwks": 3,
    "xds/ads": 4,
    "pilot": 5,
}
# Edges named by the layout issue, checked on their own so the message says why.
FORBIDDEN = [
    ("k8s", "pilot/config", "k8s/ never includes pilot internals"),
    ("k8s", "pilot/model", "k8s/ never includes pilot internals"),
    ("k8s", "pilot/cfgdir", "k8s/ never includes pilot internals"),
    ("certs", "xds/ads", "certs/ never includes the xDS server"),
    ("certs", "xds/gen", "certs/ never includes xDS headers"),
]
# Header-level rules: (including folder prefix, header, reason).
FORBIDDEN_HEADERS = [
    ("xds/", "pilot/model/model.h", "the xDS server knows snapshots (a provider), not the model"),
]
# certs/ knows Kubernetes only in its Kubernetes file.
CERTS_K8S_FILES = {"certs/ca_kube.c", "certs/ca_kube.h"}
GENERATED = {"pilot_version.h", "ca.pb-c.h"}
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    d = os.path.dirname(path)
    return d


def main():
    files = []
    for top in PRODUCT:
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in names:
                if n.endswith((".c", ".h")):
                    files.append(os.path.relpath(os.path.join(dirpath, n), ROOT))
    headers = {f for f in files if f.endswith(".h")}
    basenames = {os.path.basename(h) for h in headers}
    problems = []
    edges = {}
    for f in sorted(files):
        src = folder_of(f)
        if src.startswith("xds/proto") or src.startswith("certs/proto"):
            continue
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            text = fh.read()
        for inc in INC.findall(text):
            if inc in GENERATED or inc.startswith(("envoy/", "google/", "udpa/", "xds/core",
                                                   "validate/")):
                continue
            if inc not in headers:
                if inc in basenames or "/" not in inc:
                    problems.append("%s: #include \"%s\" is not a path from the include root"
                                    % (f, inc))
                else:
                    problems.append("%s: #include \"%s\": no such project header" % (f, inc))
                continue
            dst = folder_of(inc)
            if inc.endswith("_internal.h") and dst != src:
                problems.append("%s: includes %s, internal to %s/" % (f, inc, dst))
            for pre, hdr, why in FORBIDDEN_HEADERS:
                if src.startswith(pre) and inc == hdr:
                    problems.append("%s: includes %s: %s" % (f, inc, why))
            if src == "certs" and dst == "k8s" and f not in CERTS_K8S_FILES:
                problems.append("%s: includes %s: certs/ knows Kubernetes only in ca_kube"
                                % (f, inc))
            if dst != src:
                edges.setdefault(src, {}).setdefault(dst, set()).add(f)

    print("folder include graph (folder -> what it includes):")
    for src in sorted(set(RANK) | set(edges)):
        outs = sorted(edges.get(src, {}))
        print("  %-13s -> %s" % (src, ", ".join(outs) if outs else "(nothing of ours)"))

    for src, outs in edges.items():
        for dst, via in outs.items():
            if src not in RANK or dst not in RANK:
                problems.append("folder %s or %s has no layer: add it to RANK" % (src, dst))
                continue
            for a, b, why in FORBIDDEN:
                if src == a and dst == b:
                    problems.append("forbidden edge %s -> %s (%s): %s"
                                    % (src, dst, why, ", ".join(sorted(via))))
            if RANK[dst] >= RANK[src]:
                problems.append("edge %s -> %s points against the layers (rank %d -> %d): %s"
                                % (src, dst, RANK[src], RANK[dst], ", ".join(sorted(via))))

    # Cycles (the rank rule already excludes them; this names one if the ranks change).
    state = {}

    def visit(n, stack):
        state[n] = 1
        for m in edges.get(n, {}):
            if state.get(m) == 1:
                problems.append("cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            elif m not in state:
                visit(m, stack + [m])
        state[n] = 2
    for n in sorted(edges):
        if n not in state:
            visit(n, [n])

    # docs/ARCHITECTURE.md's layout table must name exactly the folders that hold code,
    # with the layers used here.
    doc = os.path.join(ROOT, "docs", "ARCHITECTURE.md")
    if os.path.exists(doc):
        with open(doc, encoding="utf-8") as fh:
            rows = re.findall(r"^\| (\d) \| ([a-z0-9/]+)/ \|", fh.read(), re.M)
        documented = {folder: int(rank) for rank, folder in rows}
        code = {folder_of(f) for f in files} - {"xds/proto", "certs/proto"}
        for f in sorted(code - set(documented)):
            problems.append("docs/ARCHITECTURE.md's layout table does not name %s/" % f)
        for f in sorted(set(documented) - code):
            problems.append("docs/ARCHITECTURE.md's layout table names %s/, which has no code" % f)
        for f, r in sorted(documented.items()):
            if f in RANK and RANK[f] != r:
                problems.append("docs/ARCHITECTURE.md puts %s/ in layer %d, the check in %d"
                                % (f, r, RANK[f]))

    for p in problems:
        print("FAIL " + p)
    print("include graph: %d files, %d folder edges, %d problems"
          % (len(files), sum(len(v) for v in edges.values()), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
