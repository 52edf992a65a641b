#!/usr/bin/python3
"""A stand-in Kubernetes API server for tests (Python standard library only).

It speaks enough of the real API for our reflectors and for kubectl (get, apply
--validate=false, delete): discovery (/api, /apis, /api/v1, /apis/<g>/<v>), list with
limit/continue paging, watch (chunked, one JSON event per line) with resourceVersion,
allowWatchBookmarks and timeoutSeconds, GET/POST/PUT/PATCH/DELETE with 409 AlreadyExists
and Conflict, TokenReview from a token table, and fault switches under /_admin/:

  POST /_admin/drop-watches[?abrupt=1]   end every open watch (clean chunked end, or reset)
  POST /_admin/compact                   forget the event log: older RVs get 410 Expired
                                         (open watches get an ERROR 410 event and end)
  POST /_admin/restart                   replace the whole state with the JSON list in the
                                         body (or empty), bump the RV, compact, drop watches
  POST /_admin/stall?seconds=N           open watches send nothing for N seconds
  POST /_admin/fail?count=N[&code=500]   the next N list/watch requests fail with code
                                         (not those with an X-Standin-Test header)
  POST /_admin/tokens                    body {token: {username, groups, audiences}}
  POST /_admin/slow-tokenreview?seconds=N  every TokenReview answers only after N seconds
                                         (a stalled authenticator, on cue)
  POST /_admin/auth                      body {"tokens": [..]}: bearer tokens the API accepts
                                         (401 otherwise); an empty list turns auth off
  POST /_admin/istio-versions?set=v1,..  serve networking.istio.io at these versions (empty:
                                         not at all), as if its CRDs were installed later
  POST /_admin/load                      body: JSON list of objects, created in bulk
  GET  /_admin/stats                     {rv, objects, watches, requests, ...}

One global resourceVersion counter orders every write; the event log keeps each change
so a watch from RV N replays what came after N. Objects of Istio's CRDs are stored once
and served under each version (v1, v1beta1, v1alpha3), like a CRD with conversion None.
fieldSelector takes metadata.name, metadata.namespace and, for Secrets, type (= and !=);
other fields are refused with 400 like the real server.

Usage: apiserver.py [--port 0] [--port-file F] [--tokens F] [--state F]
                    [--no-endpointslices] [--istio-versions v1,v1beta1,v1alpha3]
                    [--bookmark-interval S] [--empty]
                    [--tls-cert F --tls-key F [--client-ca F]]
"""

import argparse
import base64
import copy
import json
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# (group, version, kind, plural, namespaced, shortNames, verbs)
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
CORE = [
    ("", "v1", "Namespace", "namespaces", False, ["ns"], ALL_VERBS),
    ("", "v1", "Service", "services", True, ["svc"], ALL_VERBS),
    ("", "v1", "Pod", "pods", True, ["po"], ALL_VERBS),
    ("", "v1", "Endpoints", "endpoints", True, ["ep"], ALL_VERBS),
    ("", "v1", "ConfigMap", "configmaps", True, ["cm"], ALL_VERBS),
    ("", "v1", "Secret", "secrets", True, [], ALL_VERBS),
    ("", "v1", "ServiceAccount", "serviceaccounts", True, ["sa"], ALL_VERBS),
    ("apps", "v1", "Deployment", "deployments", True, ["deploy"], ALL_VERBS),
    ("coordination.k8s.io", "v1", "Lease", "leases", True, [], ALL_VERBS),
    ("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, [], ["create"]),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, [], ALL_VERBS),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, [],
     ALL_VERBS),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True, [], ALL_VERBS),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, [], ALL_VERBS),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
     False, ["crd", "crds"], ALL_VERBS),
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
     "mutatingwebhookconfigurations", False, [], ALL_VERBS),
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
     "validatingwebhookconfigurations", False, [], ALL_VERBS),
]
SLICES = ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, [], ALL_VERBS)
ISTIO_NET = [
    ("Gateway", "gateways", ["gw"]),
    ("VirtualService", "virtualservices", ["vs"]),
    ("DestinationRule", "destinationrules", ["dr"]),
    ("ServiceEntry", "serviceentries", ["se"]),
    ("Sidecar", "sidecars", []),
    ("WorkloadEntry", "workloadentries", ["we"]),
    ("WorkloadGroup", "workloadgroups", ["wg"]),
]
ISTIO_SEC = [
    ("PeerAuthentication", "peerauthentications", ["pa"]),
    ("AuthorizationPolicy", "authorizationpolicies", ["ap"]),
    ("RequestAuthentication", "requestauthentications", ["ra"]),
]


class Gone(Exception):
    pass


class ApiError(Exception):
    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure" if code >= 400 else "Success",
            "message": message, "reason": reason, "code": code}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (strategic merge patch is treated the same)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if k.startswith("$"):  # strategic-merge directives ($patch, $retainKeys...)
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc, ops):
    """RFC 6902 JSON patch: add, remove, replace (enough for kubectl's use)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1] if parts else None
        kind = op["op"]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, op["value"])
            elif kind == "remove":
                parent.pop(idx)
            elif kind == "replace":
                parent[idx] = op["value"]
        else:
            if kind in ("add", "replace"):
                parent[last] = op["value"]
            elif kind == "remove":
                parent.pop(last, None)
    return doc


def match_labels(labels, selector):
    if not selector:
        return True
    labels = labels or {}
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            k = k.strip().rstrip("=")
            v = v.strip().lstrip("=")
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


# Field selectors the real API server accepts: metadata.name and metadata.namespace on every
# resource, plus per-resource fields (only those our clients use). Anything else is a 400.
RESOURCE_FIELDS = {"secrets": ("type",)}


def check_fields(res, selector):
    """Raises ApiError 400 for a term the real API server would refuse."""
    for term in (selector or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "=" not in term:
            raise ApiError(400, "BadRequest", "invalid selector: '%s'" % selector)
        k = term.split("!=" if "!=" in term else "=", 1)[0].strip()
        if k not in ("metadata.name", "metadata.namespace") + RESOURCE_FIELDS.get(res[3], ()):
            raise ApiError(400, "BadRequest", 'field label not supported: %s' % k)


def match_fields(obj, selector):
    if not selector:
        return True
    md = obj.get("metadata", {})
    for term in selector.split(","):
        if "=" not in term:
            continue
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        k = k.strip().rstrip("=")
        v = v.strip().lstrip("=")
        if k == "metadata.name":
            have = md.get("name", "")
        elif k == "metadata.namespace":
            have = md.get("namespace", "")
        elif k == "type":
            have = obj.get("type") or "Opaque"  # the API server's default for a Secret
        else:
            continue
        if (have == v) == neg:
            return False
    return True


class Store:
    def __init__(self, args):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {}   # (group, plural, ns, name) -> obj (stored without apiVersion group)
        self.log = []       # (rv, type, group, plural, ns, obj)
        self.compacted = 0  # watches from RV < compacted get 410
        self.epoch = 0      # bumped to end every watch
        self.compact_epoch = 0
        self.abrupt = False
        self.stall_until = 0.0
        self.review_delay = 0.0
        self.fail_count = 0
        self.fail_code = 500
        self.tokens = {}
        self.auth_tokens = set()  # bearer tokens accepted by the API; empty = no auth
        self.watches = 0
        self.requests = {}
        self.bookmark_interval = args.bookmark_interval
        self.resources = list(CORE)
        if not args.no_endpointslices:
            self.resources.append(SLICES)
        for ver in args.istio_versions.split(","):
            ver = ver.strip()
            if ver:
                for kind, plural, short in ISTIO_NET:
                    self.resources.append(("networking.istio.io", ver, kind, plural, True, short,
                                           ALL_VERBS))
        for kind, plural, short in ISTIO_SEC:
            self.resources.append(("security.istio.io", "v1", kind, plural, True, short,
                                   ALL_VERBS))
        self.istio_pref = args.istio_versions.split(",")[0].strip()

    def find(self, group, version, plural):
        for r in self.resources:
            if r[0] == group and r[1] == version and r[3] == plural:
                return r
        return None

    def find_kind(self, api_version, kind):
        group, _, version = api_version.rpartition("/")
        for r in self.resources:
            if r[0] == group and r[1] == version and r[2] == kind:
                return r
        return None

    def next_rv(self):
        self.rv += 1
        return self.rv

    def record(self, etype, group, plural, ns, obj):
        self.log.append((int(obj["metadata"]["resourceVersion"]), etype, group, plural, ns,
                         copy.deepcopy(obj)))
        self.lock.notify_all()

    def prepare_new(self, obj, ns):
        md = obj.setdefault("metadata", {})
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        md["generation"] = 1
        md.pop("resourceVersion", None)
        if ns:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        md["resourceVersion"] = str(self.next_rv())

    def create(self, res, ns, obj):
        group, plural = res[0], res[3]
        name = obj.get("metadata", {}).get("name")
        if not name and obj.get("metadata", {}).get("generateName"):
            name = obj["metadata"]["generateName"] + uuid.uuid4().hex[:5]
            obj["metadata"]["name"] = name
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        key = (group, plural, ns or "", name)
        with self.lock:
            if key in self.objects:
                raise ApiError(409, "AlreadyExists",
                               '%s "%s" already exists' % (plural, name))
            self.prepare_new(obj, ns)
            self.objects[key] = obj
            self.record("ADDED", group, plural, ns or "", obj)
            return copy.deepcopy(obj)

    def get(self, res, ns, name):
        with self.lock:
            obj = self.objects.get((res[0], res[3], ns or "", name))
            if obj is None:
                raise ApiError(404, "NotFound", '%s "%s" not found' % (res[3], name))
            return copy.deepcopy(obj)

    def update(self, res, ns, name, obj, check_rv=True):
        key = (res[0], res[3], ns or "", name)
        with self.lock:
            old = self.objects.get(key)
            if old is None:
                raise ApiError(404, "NotFound", '%s "%s" not found' % (res[3], name))
            md = obj.setdefault("metadata", {})
            if md.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match")
            want = md.get("resourceVersion")
            if check_rv and want and want != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict",
                               'Operation cannot be fulfilled on %s "%s": the object has been '
                               'modified; please apply your changes to the latest version and '
                               'try again' % (res[3], name))
            om = old["metadata"]
            md["name"] = name
            for f in ("uid", "creationTimestamp"):
                md[f] = om[f]
            if ns:
                md["namespace"] = ns
            md["generation"] = om.get("generation", 1)
            if obj.get("spec") != old.get("spec"):
                md["generation"] += 1
            md["resourceVersion"] = str(self.next_rv())
            self.objects[key] = obj
            self.record("MODIFIED", res[0], res[3], ns or "", obj)
            return copy.deepcopy(obj)

    def delete(self, res, ns, name):
        key = (res[0], res[3], ns or "", name)
        with self.lock:
            obj = self.objects.pop(key, None)
            if obj is None:
                raise ApiError(404, "NotFound", '%s "%s" not found' % (res[3], name))
            obj["metadata"]["resourceVersion"] = str(self.next_rv())
            self.record("DELETED", res[0], res[3], ns or "", obj)
            if res[3] == "namespaces":  # cascade, so kubectl delete ns empties it
                for k in [k for k in self.objects if k[2] == name]:
                    o = self.objects.pop(k)
                    o["metadata"]["resourceVersion"] = str(self.next_rv())
                    self.record("DELETED", k[0], k[1], k[2], o)
            return copy.deepcopy(obj)

    def list(self, res, ns, limit, cont, lsel, fsel):
        with self.lock:
            start = None
            list_rv = self.rv
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()).decode())
                    list_rv, start = tok["rv"], tuple(tok["start"])
                except Exception:
                    raise ApiError(400, "BadRequest", "invalid continue token")
                if list_rv < self.compacted:
                    raise ApiError(410, "Expired",
                                   "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without "
                                   "the continue parameter.")
            keys = sorted(k for k in self.objects
                          if k[0] == res[0] and k[1] == res[3] and (not ns or k[2] == ns))
            items, more = [], None
            for k in keys:
                if start is not None and (k[2], k[3]) <= start:
                    continue
                obj = self.objects[k]
                if not match_labels(obj["metadata"].get("labels"), lsel):
                    continue
                if not match_fields(obj, fsel):
                    continue
                if limit and len(items) >= limit:
                    more = base64.urlsafe_b64encode(json.dumps(
                        {"rv": list_rv, "start": [items_last[2], items_last[3]]}).encode()).decode()
                    break
                items.append(copy.deepcopy(obj))
                items_last = k
            return list_rv, items, more


def typed(res, obj):
    """Sets apiVersion/kind of the served version on a copy already owned by the caller."""
    obj["apiVersion"] = res[1] if not res[0] else "%s/%s" % (res[0], res[1])
    obj["kind"] = res[2]
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apiserver.py"

    def log_message(self, fmt, *a):
        if self.server.verbose:
            sys.stderr.write("apiserver: " + (fmt % a) + "\n")

    # --- plumbing -----------------------------------------------------------------------
    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_status(self, code, reason, message):
        self.send_json(code, status_obj(code, reason, message))

    def read_body(self):
        # Read once, up front in dispatch, so an error reply never leaves a body unread
        # on a kept-alive connection.
        if self._body is None:
            n = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(n) if n else b""
        return self._body

    def read_json(self):
        raw = self.read_body()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if raw and "protobuf" in ctype:
            raise ApiError(415, "UnsupportedMediaType",
                           "this stand-in serves JSON only, not %s" % ctype)
        try:
            return json.loads(raw or b"{}")
        except ValueError as e:
            raise ApiError(400, "BadRequest", "invalid JSON body: %s" % e)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        st = self.server.store
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        parts = [p for p in u.path.split("/") if p]
        with st.lock:
            st.requests[method] = st.requests.get(method, 0) + 1
        self._body = None
        self.read_body()
        try:
            if parts[:1] == ["_admin"]:
                return self.admin(method, parts[1:], q)
            if st.auth_tokens:
                h = self.headers.get("Authorization") or ""
                if not h.startswith("Bearer ") or h[7:] not in st.auth_tokens:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            if u.path in ("/version", "/version/"):
                return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0",
                                            "platform": "linux/amd64"})
            if u.path in ("/healthz", "/readyz", "/livez"):
                return self.send_json(200, "ok")
            if parts[:1] == ["openapi"] or parts[:1] == ["swagger.json"]:
                return self.send_status(404, "NotFound", "openapi is not served")
            if parts == ["api"]:
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [
                                                {"clientCIDR": "0.0.0.0/0",
                                                 "serverAddress": "127.0.0.1"}]})
            if parts == ["apis"]:
                return self.send_json(200, self.group_list())
            if parts[:1] == ["api"] and len(parts) >= 2:
                return self.resource("", parts[1], parts[2:], method, q)
            if parts[:1] == ["apis"] and len(parts) == 2:
                g = [x for x in self.group_list()["groups"] if x["name"] == parts[1]]
                if not g:
                    return self.send_status(404, "NotFound", "group not found")
                return self.send_json(200, dict(g[0], kind="APIGroup", apiVersion="v1"))
            if parts[:1] == ["apis"] and len(parts) >= 3:
                return self.resource(parts[1], parts[2], parts[3:], method, q)
            self.send_status(404, "NotFound", "the server could not find the requested resource")
        except ApiError as e:
            self.send_status(e.code, e.reason, e.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- discovery ----------------------------------------------------------------------
    def group_list(self):
        st = self.server.store
        groups = {}
        order = []
        for r in st.resources:
            if not r[0]:
                continue
            if r[0] not in groups:
                groups[r[0]] = []
                order.append(r[0])
            if r[1] not in groups[r[0]]:
                groups[r[0]].append(r[1])
        out = []
        for g in order:
            vs = [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in groups[g]]
            out.append({"name": g, "versions": vs, "preferredVersion": vs[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}

    def resource_list(self, group, version):
        st = self.server.store
        rs = [r for r in st.resources if r[0] == group and r[1] == version]
        if not rs:
            return None
        out = []
        for r in rs:
            e = {"name": r[3], "singularName": r[2].lower(), "namespaced": r[4], "kind": r[2],
                 "verbs": r[6]}
            if r[5]:
                e["shortNames"] = r[5]
            if r[0] == "networking.istio.io":
                e["categories"] = ["istio-io", "networking-istio-io"]
            out.append(e)
            if r[3] in ("deployments",):
                out.append({"name": r[3] + "/status", "singularName": "", "namespaced": True,
                            "kind": r[2], "verbs": ["get", "patch", "update"]})
        gv = version if not group else "%s/%s" % (group, version)
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": out}

    # --- resources ----------------------------------------------------------------------
    def resource(self, group, version, rest, method, q):
        st = self.server.store
        if not rest:
            rl = self.resource_list(group, version)
            if rl is None:
                return self.send_status(404, "NotFound", "%s/%s is not served" % (group, version))
            return self.send_json(200, rl)
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns = rest[1]
            rest = rest[2:]
        res = st.find(group, version, rest[0])
        if res is None:
            return self.send_status(404, "NotFound",
                                    "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        if len(rest) > 2:  # subresources: only status, served as the object itself
            if rest[2] != "status":
                return self.send_status(404, "NotFound", "subresource not served")
        if res[3] == "namespaces" and ns is not None and name is None:
            # /api/v1/namespaces/<name>/... was consumed as ns: undo for namespace objects
            name, ns = ns, None
        if not res[4]:
            ns = None
        if res[3] == "tokenreviews":
            if method != "POST":
                return self.send_status(405, "MethodNotAllowed", "only create")
            return self.token_review(res, self.read_json())

        if method == "GET" and name is None:
            if q.get("watch") in ("1", "true"):
                return self.watch(res, ns, q)
            return self.do_list(res, ns, q)
        if method == "GET":
            return self.send_json(200, typed(res, st.get(res, ns, name)))
        if method == "POST" and name is None:
            obj = self.read_json()
            self.check_body(res, ns, obj)
            if q.get("dryRun"):
                return self.send_json(201, typed(res, obj))
            return self.send_json(201, typed(res, st.create(res, ns or "", obj)))
        if method == "PUT" and name:
            obj = self.read_json()
            self.check_body(res, ns, obj)
            return self.send_json(200, typed(res, st.update(res, ns, name, obj)))
        if method == "PATCH" and name:
            raw = self.read_body()
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            try:
                patch = json.loads(raw or b"{}")
            except ValueError as e:
                raise ApiError(400, "BadRequest", "invalid patch: %s" % e)
            for _ in range(5):  # optimistic retry, like the real server's patch loop
                cur = st.get(res, ns, name)
                if ctype == "application/json-patch+json":
                    new = json_patch(cur, patch)
                elif ctype in ("application/merge-patch+json",
                               "application/strategic-merge-patch+json"):
                    new = merge_patch(cur, patch)
                else:
                    raise ApiError(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format: %s" % ctype)
                want = patch.get("metadata", {}).get("resourceVersion") \
                    if isinstance(patch, dict) else None
                if not want:
                    new.setdefault("metadata", {})["resourceVersion"] = \
                        cur["metadata"]["resourceVersion"]
                try:
                    return self.send_json(200, typed(res, st.update(res, ns, name, new)))
                except ApiError as e:
                    if e.code != 409 or want:
                        raise
            raise ApiError(409, "Conflict", "too many concurrent patches")
        if method == "DELETE" and name:
            self.read_body()
            return self.send_json(200, typed(res, st.delete(res, ns, name)))
        return self.send_status(405, "MethodNotAllowed", "method not allowed")

    def check_body(self, res, ns, obj):
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "body must be an object")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != res[2]:
            raise ApiError(400, "BadRequest", "kind %s does not match %s" % (kind, res[2]))
        if av:
            want = res[1] if not res[0] else "%s/%s" % (res[0], res[1])
            if av != want:
                raise ApiError(400, "BadRequest", "apiVersion %s does not match %s" % (av, want))
        ons = obj.get("metadata", {}).get("namespace")
        if res[4] and ons and ns and ons != ns:
            raise ApiError(400, "BadRequest",
                           "the namespace of the provided object does not match the namespace "
                           "sent on the request")

    def maybe_fail(self):
        st = self.server.store
        if self.headers.get("X-Standin-Test"):  # the test's own checks never fail
            return
        with st.lock:
            if st.fail_count > 0:
                st.fail_count -= 1
                raise ApiError(st.fail_code, "InternalError", "injected failure")

    def do_list(self, res, ns, q):
        st = self.server.store
        self.maybe_fail()
        check_fields(res, q.get("fieldSelector"))
        limit = int(q.get("limit") or 0)
        rv, items, more = st.list(res, ns, limit, q.get("continue"), q.get("labelSelector"),
                                  q.get("fieldSelector"))
        md = {"resourceVersion": str(rv)}
        if more:
            md["continue"] = more
        # Items carry no apiVersion/kind in a real list: clients must set them.
        for it in items:
            it.pop("apiVersion", None)
            it.pop("kind", None)
        av = res[1] if not res[0] else "%s/%s" % (res[0], res[1])
        self.send_json(200, {"kind": res[2] + "List", "apiVersion": av, "metadata": md,
                             "items": items})

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, res, ns, q):
        st = self.server.store
        self.maybe_fail()
        rv_s = q.get("resourceVersion") or "0"
        try:
            since = int(rv_s)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid resourceVersion %r" % rv_s)
        timeout = float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        lsel, fsel = q.get("labelSelector"), q.get("fieldSelector")
        check_fields(res, fsel)
        with st.lock:
            if since and since < st.compacted:
                raise ApiError(410, "Expired", "too old resource version: %d (%d)" %
                               (since, st.compacted))
            initial = []
            if not since:
                # RV 0/unset: synthetic ADDED for the current state, then changes.
                since = st.rv
                for k in sorted(st.objects):
                    if k[0] == res[0] and k[1] == res[3] and (not ns or k[2] == ns):
                        initial.append(("ADDED", copy.deepcopy(st.objects[k])))
            epoch, cepoch = st.epoch, st.compact_epoch
            pos = len(st.log)
            # Find the first log entry after `since` (the log is in RV order).
            lo = 0
            while lo < len(st.log) and st.log[lo][0] <= since:
                lo += 1
            pos = lo
            st.watches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout
        last_bm = time.monotonic()
        av = res[1] if not res[0] else "%s/%s" % (res[0], res[1])
        clean = True
        try:
            def emit(etype, obj):
                ev = {"type": etype, "object": typed(res, obj)}
                self.write_chunk(json.dumps(ev).encode() + b"\n")

            for etype, obj in initial:
                if match_labels(obj["metadata"].get("labels"), lsel) and match_fields(obj, fsel):
                    emit(etype, obj)
            while True:
                out = []
                with st.lock:
                    now = time.monotonic()
                    if st.epoch != epoch:
                        clean = not st.abrupt
                        break
                    if st.compact_epoch != cepoch:
                        out = [("ERROR", status_obj(410, "Expired",
                                                    "too old resource version"))]
                        pos = None
                    elif now >= deadline:
                        break
                    elif now < st.stall_until:
                        st.lock.wait(min(0.2, st.stall_until - now))
                        continue
                    else:
                        while pos < len(st.log):
                            e = st.log[pos]
                            pos += 1
                            if e[2] != res[0] or e[3] != res[3] or (ns and e[4] != ns):
                                continue
                            out.append((e[1], copy.deepcopy(e[5])))
                            since = e[0]
                        if not out:
                            if bookmarks and now - last_bm >= st.bookmark_interval:
                                out = [("BOOKMARK", {"metadata": {"resourceVersion":
                                                                  str(st.rv)}})]
                                since = st.rv
                                last_bm = now
                            else:
                                st.lock.wait(min(0.5, deadline - now,
                                                 max(0.05, st.bookmark_interval -
                                                     (now - last_bm))))
                                continue
                for etype, obj in out:
                    if etype == "ERROR":
                        self.write_chunk(json.dumps({"type": "ERROR", "object": obj}).encode()
                                         + b"\n")
                    elif etype == "BOOKMARK":
                        bm = {"type": "BOOKMARK", "object": {"kind": res[2], "apiVersion": av,
                                                              "metadata": obj["metadata"]}}
                        self.write_chunk(json.dumps(bm).encode() + b"\n")
                    elif match_labels(obj["metadata"].get("labels"), lsel) and \
                            match_fields(obj, fsel):
                        emit(etype, obj)
                if pos is None:
                    break
            if clean:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            else:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with st.lock:
                st.watches -= 1

    def token_review(self, res, body):
        st = self.server.store
        if st.review_delay > 0:
            time.sleep(st.review_delay)
        spec = body.get("spec") or {}
        token = spec.get("token") or ""
        auds = spec.get("audiences") or []
        ent = st.tokens.get(token)
        status = {"authenticated": False}
        if not token:
            status["error"] = "token is empty"
        elif ent is None:
            status["error"] = "[invalid bearer token, token lookup failed]"
        else:
            tok_auds = ent.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
            ok = [a for a in auds if a in tok_auds] if auds else tok_auds
            if not ok:
                status["error"] = "[invalid bearer token, token audiences %s is invalid for the " \
                                  "target audiences %s]" % (json.dumps(tok_auds), json.dumps(auds))
            else:
                status = {"authenticated": True, "audiences": ok,
                          "user": {"username": ent.get("username", ""),
                                   "uid": ent.get("uid", str(uuid.uuid4())),
                                   "groups": ent.get("groups", [])}}
                if ent.get("error"):
                    status["error"] = ent["error"]
        out = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
        self.send_json(201, out)

    # --- admin --------------------------------------------------------------------------
    def admin(self, method, parts, q):
        st = self.server.store
        op = parts[0] if parts else ""
        if op == "stats" and method == "GET":
            with st.lock:
                return self.send_json(200, {"rv": st.rv, "objects": len(st.objects),
                                            "watches": st.watches, "compacted": st.compacted,
                                            "requests": st.requests, "events": len(st.log)})
        if method != "POST":
            return self.send_status(405, "MethodNotAllowed", "admin operations are POST")
        if op == "drop-watches":
            self.read_body()
            with st.lock:
                st.abrupt = q.get("abrupt") in ("1", "true")
                st.epoch += 1
                st.lock.notify_all()
            return self.send_json(200, {"ok": True})
        if op == "compact":
            self.read_body()
            with st.lock:
                st.compacted = st.next_rv()
                st.log = []
                st.compact_epoch += 1
                st.lock.notify_all()
            return self.send_json(200, {"ok": True, "compacted": st.compacted})
        if op == "restart":
            objs = self.read_json() if self.headers.get("Content-Length") else []
            with st.lock:
                st.rv += 1000
                st.objects = {}
                st.log = []
                st.compacted = st.rv
                st.abrupt = True
                st.epoch += 1
                st.lock.notify_all()
            n = self.load(objs if isinstance(objs, list) else [], record=False)
            return self.send_json(200, {"ok": True, "loaded": n})
        if op == "stall":
            self.read_body()
            with st.lock:
                st.stall_until = time.monotonic() + float(q.get("seconds") or 5)
                st.lock.notify_all()
            return self.send_json(200, {"ok": True})
        if op == "fail":
            self.read_body()
            with st.lock:
                st.fail_count = int(q.get("count") or 1)
                st.fail_code = int(q.get("code") or 500)
            return self.send_json(200, {"ok": True})
        if op == "slow-tokenreview":
            self.read_body()
            with st.lock:
                st.review_delay = float(q.get("seconds") or 0)
            return self.send_json(200, {"ok": True})
        if op == "tokens":
            body = self.read_json()
            with st.lock:
                st.tokens.update(body)
            return self.send_json(200, {"ok": True, "tokens": len(st.tokens)})
        if op == "auth":
            body = self.read_json()
            with st.lock:
                st.auth_tokens = set(body.get("tokens") or [])
            return self.send_json(200, {"ok": True})
        if op == "istio-versions":
            # Install (or remove) networking.istio.io as served versions, like applying or
            # deleting the CRDs; stored objects stay.
            self.read_body()
            vers = [v.strip() for v in (q.get("set") or "").split(",") if v.strip()]
            with st.lock:
                # A new list, swapped in whole: readers iterate without the lock.
                st.resources = [r for r in st.resources if r[0] != "networking.istio.io"] + [
                    ("networking.istio.io", ver, kind, plural, True, short, ALL_VERBS)
                    for ver in vers for kind, plural, short in ISTIO_NET]
                if vers:
                    st.istio_pref = vers[0]
            return self.send_json(200, {"ok": True, "versions": vers})
        if op == "load":
            objs = self.read_json()
            n = self.load(objs if isinstance(objs, list) else [], record=True)
            return self.send_json(200, {"ok": True, "loaded": n})
        return self.send_status(404, "NotFound", "unknown admin operation")

    def load(self, objs, record):
        st = self.server.store
        n = 0
        with st.lock:
            for obj in objs:
                res = st.find_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
                if res is None:
                    raise ApiError(400, "BadRequest", "unknown kind %s %s" %
                                   (obj.get("apiVersion"), obj.get("kind")))
                md = obj.setdefault("metadata", {})
                ns = (md.get("namespace") or "default") if res[4] else ""
                obj = dict(obj)
                obj.pop("apiVersion", None)
                obj.pop("kind", None)
                key = (res[0], res[3], ns, md["name"])
                existed = key in st.objects
                st.prepare_new(obj, ns)
                st.objects[key] = obj
                if record:
                    st.record("MODIFIED" if existed else "ADDED", res[0], res[3], ns, obj)
                n += 1
        return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tokens")
    ap.add_argument("--state")
    ap.add_argument("--no-endpointslices", action="store_true")
    ap.add_argument("--istio-versions", default="v1,v1beta1,v1alpha3")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--tls-cert", help="serve https with this certificate chain (PEM)")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA")
    ap.add_argument("--empty", action="store_true",
                    help="start without the default namespaces")
    args = ap.parse_args()

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.store = Store(args)
    srv.verbose = args.verbose
    if args.tokens:
        with open(args.tokens) as f:
            srv.store.tokens = json.load(f)
    if not args.empty:
        # What every cluster has before anyone applies anything.
        Handler.load(type("H", (), {"server": srv})(),
                     [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                      for n in ("default", "kube-system", "kube-public", "kube-node-lease")],
                     record=False)
    if args.state:
        with open(args.state) as f:
            Handler.load(type("H", (), {"server": srv})(), json.load(f), record=False)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        import os
        os.rename(tmp, args.port_file)
    else:
        print(port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
