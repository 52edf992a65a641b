#!/usr/bin/python3
"""stuck_reader: a proxy that stops reading must hold nothing the others need.

A raw HTTP/2 client on a plain socket (no gRPC library: it must be able to misbehave)
opens STUCK SotW ADS streams on one connection, subscribes each to CDS, LDS and RDS,
reads the first answers and then shrinks every stream's flow-control window to nothing
(SETTINGS_INITIAL_WINDOW_SIZE 0, no WINDOW_UPDATE ever again): the server's next SEND on
those streams never completes. More stuck streams than the server's push slots
(min(15 + 5 * cores, 100)) would, without the limits, hold every slot forever after the
next push, so no other proxy would get config again. Meanwhile NORMAL grpcio clients read
and ACK as Envoy does.
  1. a Delta stream on the stuck connection toggles its CDS subscription without reading:
     its outbox passes PILOT_XDS_OUTBOX_MAX_BYTES and it is closed (reason "outbox");
  2. the VirtualService file is edited: the normal clients get the new route within a few
     seconds (the stuck streams' push slots are given back after 2 s), while the stuck
     streams are closed by PILOT_XDS_SEND_TIMEOUT (reason "send_timeout");
  3. pilot_xds_limit_closes{reason} on /metrics counts both; the normal clients' streams
     are still up; SIGTERM exits 0.
"""
import os
import socket
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "load"))
import e2e_common as ec  # noqa: E402
import run_load  # noqa: E402  (write_config, VS: the load run's services)

try:
    import grpc
except ImportError:
    ec.skip("Debian's python3-grpcio is missing")

T_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
T_RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SERVICES = 40
STUCK = 40      # > the 25 push slots of a 2-core machine (and most others' too)
NORMAL = 4
SEND_TIMEOUT = 8  # seconds: well past the 2 s slot hold, so that is what CONVERGE_S tests
OUTBOX_MAX = 256 * 1024  # above what a normal client ever has queued (about 60 KB here)
CONVERGE_S = 6.0

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def node_id(name, i):
    return "sidecar~10.3.0.%d~%s-%d.load~load.svc.cluster.local" % (i + 1, name, i)


# ---- a minimal HTTP/2 client --------------------------------------------------------------

F_DATA, F_HEADERS, F_RST, F_SETTINGS, F_PING, F_GOAWAY, F_WINDOW = 0, 1, 3, 4, 6, 7, 8


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


class RawH2:
    """One HTTP/2 connection whose reader ACKs SETTINGS and PINGs (so the connection stays
    up) and records, per stream, DATA bytes and whether the server ended it."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.wlock = threading.Lock()
        self.lock = threading.Lock()
        self.data = {}      # stream id -> DATA bytes received
        self.ended = set()  # stream ids ended by the server (trailers or RST_STREAM)
        self.goaway = False
        self.next_id = 1
        self.authority = "127.0.0.1:%d" % port
        # a stream window of 1 MB for the first answers, the connection's at its maximum
        self.send_frame(F_SETTINGS, 0, 0, struct.pack(">HI", 2, 0) + struct.pack(">HI", 4, 1 << 20),
                        preface=True)
        self.send_frame(F_WINDOW, 0, 0, struct.pack(">I", (1 << 31) - 1 - 65535))
        threading.Thread(target=self._reader, daemon=True).start()

    def send_frame(self, ftype, flags, sid, payload, preface=False):
        hdr = struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid)
        with self.wlock:
            if preface:
                self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            self.sock.sendall(hdr + payload)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _reader(self):
        try:
            while True:
                h = self._recv_exact(9)
                length = struct.unpack(">I", b"\x00" + h[:3])[0]
                ftype, flags = h[3], h[4]
                sid = struct.unpack(">I", h[5:9])[0] & 0x7FFFFFFF
                payload = self._recv_exact(length) if length else b""
                if ftype == F_SETTINGS and not flags & 1:
                    self.send_frame(F_SETTINGS, 1, 0, b"")
                elif ftype == F_PING and not flags & 1:
                    self.send_frame(F_PING, 1, 0, payload)
                elif ftype == F_DATA:
                    with self.lock:
                        self.data[sid] = self.data.get(sid, 0) + length
                    if flags & 1:
                        with self.lock:
                            self.ended.add(sid)
                elif ftype == F_HEADERS and flags & 1:
                    with self.lock:
                        self.ended.add(sid)
                elif ftype == F_RST:
                    with self.lock:
                        self.ended.add(sid)
                elif ftype == F_GOAWAY:
                    self.goaway = True
        except (EOFError, OSError):
            pass

    def open_stream(self, method):
        sid = self.next_id
        self.next_id += 2
        block = b"".join(hpack_literal(k, v) for k, v in [
            (":method", "POST"), (":scheme", "http"), (":path", method),
            (":authority", self.authority), ("content-type", "application/grpc"),
            ("te", "trailers")])
        self.send_frame(F_HEADERS, 0x4, sid, block)  # END_HEADERS
        return sid

    def send_msg(self, sid, msg):
        body = msg.SerializeToString()
        self.send_frame(F_DATA, 0, sid, b"\x00" + struct.pack(">I", len(body)) + body)

    def stop_reading(self):
        """Every stream's window to nothing (RFC 7540 6.9.2: the change applies to open
        streams too); no WINDOW_UPDATE is ever sent."""
        self.send_frame(F_SETTINGS, 0, 0, struct.pack(">HI", 4, 0))

    def received(self, sid):
        with self.lock:
            return self.data.get(sid, 0)

    def is_ended(self, sid):
        with self.lock:
            return sid in self.ended

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- normal clients ------------------------------------------------------------------------

class Normal:
    """A grpcio SotW stream that reads and ACKs everything and notes when its route
    configuration carries the edited header match."""

    def __init__(self, ch, protos, i):
        self.protos = protos
        Node = protos.cls("envoy.config.core.v3.Node")
        self.Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
        Resp = protos.cls("envoy.service.discovery.v3.DiscoveryResponse")
        self.s = ec.AdsStream(ch, ec.ADS_SOTW, self.Req, Resp)
        n = Node(id=node_id("normal", i))
        n.metadata.fields["NAMESPACE"].string_value = "load"
        self.s.send(self.Req(node=n, type_url=T_CDS))
        self.s.send(self.Req(type_url=T_LDS))
        self.s.send(self.Req(type_url=T_RDS, resource_names=["80"]))
        self.types = set()
        self.clusters = []
        self.route_value = None
        self.ended = False
        self.lock = threading.Lock()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            r = self.s.recv(timeout=60)
            if r is None:
                self.ended = True
                return
            with self.lock:
                self.types.add(r.type_url)
                if r.type_url == T_CDS:
                    self.clusters = [self.protos.unpack_any(a).name for a in r.resources]
                if r.type_url == T_RDS:
                    for a in r.resources:
                        text = str(self.protos.unpack_any(a))
                        for v in ("a", "b"):
                            if 'exact: "%s"' % v in text:
                                self.route_value = v
            self.s.send(self.Req(type_url=r.type_url, version_info=r.version_info,
                                 response_nonce=r.nonce,
                                 resource_names=["80"] if r.type_url == T_RDS else []))

    def value(self):
        with self.lock:
            return self.route_value


def wait_for(cond, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def main():
    if not os.environ.get("PILOT_SRC"):
        ec.skip("PILOT_SRC not set")
    work = tempfile.mkdtemp(prefix="stuck-reader-")
    protos = ec.Protos(work)
    Node = protos.cls("envoy.config.core.v3.Node")
    Req = protos.cls("envoy.service.discovery.v3.DiscoveryRequest")
    DReq = protos.cls("envoy.service.discovery.v3.DeltaDiscoveryRequest")

    os.environ["PILOT_XDS_SEND_TIMEOUT"] = str(SEND_TIMEOUT)
    os.environ["PILOT_XDS_OUTBOX_MAX_BYTES"] = str(OUTBOX_MAX)
    pilot = ec.Pilot(workdir=work)
    run_load.write_config(pilot.config_dir, SERVICES)
    pilot.start()
    h2 = None
    try:
        ch = grpc.insecure_channel(pilot.target())
        normals = [Normal(ch, protos, i) for i in range(NORMAL)]
        check(wait_for(lambda: all(n.value() == "a" and len(n.types) == 3 for n in normals), 30),
              "%d normal clients get CDS, LDS and the route (x-load: a)" % NORMAL)
        names = normals[0].clusters
        check(len(names) >= SERVICES, "CDS lists the %d services (%d clusters)" %
              (SERVICES, len(names)))

        # the stuck connection: first answers read, then no window at all
        h2 = RawH2(pilot.grpc_port)
        stuck = []
        for i in range(STUCK):
            sid = h2.open_stream(ec.ADS_SOTW)
            n = Node(id=node_id("stuck", i))
            n.metadata.fields["NAMESPACE"].string_value = "load"
            h2.send_msg(sid, Req(node=n, type_url=T_CDS))
            h2.send_msg(sid, Req(type_url=T_LDS))
            h2.send_msg(sid, Req(type_url=T_RDS, resource_names=["80"]))
            stuck.append(sid)
        # the first answers: all three types, so the sizes stop growing
        last = [-1]

        def settled():
            total = sum(h2.received(s) for s in stuck)
            same = total == last[0] and all(h2.received(s) > 0 for s in stuck)
            last[0] = total
            return same
        check(wait_for(settled, 30, step=1.0), "the %d raw streams got their first answers"
              % STUCK)
        h2.stop_reading()
        time.sleep(0.5)

        # 1. a Delta stream that asks without reading: toggling its explicit CDS names
        # makes every request answer all of them again
        dsid = h2.open_stream(ec.ADS_DELTA)
        n = Node(id=node_id("delta-stuck", 0))
        n.metadata.fields["NAMESPACE"].string_value = "load"
        h2.send_msg(dsid, DReq(node=n, type_url=T_CDS, resource_names_subscribe=names))
        for _ in range(60):
            if h2.is_ended(dsid):
                break
            h2.send_msg(dsid, DReq(type_url=T_CDS, resource_names_unsubscribe=names))
            h2.send_msg(dsid, DReq(type_url=T_CDS, resource_names_subscribe=names))
            time.sleep(0.02)
        check(wait_for(lambda: h2.is_ended(dsid), 5),
              "the Delta stream that does not read is ended by the server")
        check(wait_for(lambda: pilot.metric("pilot_xds_limit_closes", {"reason": "outbox"}) >= 1,
                       5), "pilot_xds_limit_closes{reason=outbox} counts it (%s)" %
              pilot.metric("pilot_xds_limit_closes", {"reason": "outbox"}))
        check(not any(h2.is_ended(s) for s in stuck), "the stuck SotW streams are still open")

        # 2. an edit: the normal clients converge, the stuck streams run into the timeout
        with open(os.path.join(pilot.config_dir, "vs.yaml"), "w") as f:
            f.write(run_load.VS % "b")
        t0 = time.time()
        ok = wait_for(lambda: all(n.value() == "b" for n in normals), 30)
        took = time.time() - t0
        check(ok and took <= CONVERGE_S,
              "the edit reaches the %d normal clients in %.1f s (at most %.0f s) despite %d "
              "stuck streams" % (NORMAL, took, CONVERGE_S, STUCK))
        check(wait_for(lambda: all(h2.is_ended(s) for s in stuck), SEND_TIMEOUT + 10),
              "the stuck streams are ended (%d of %d) after the send timeout" %
              (sum(h2.is_ended(s) for s in stuck), STUCK))
        took = time.time() - t0
        check(took >= SEND_TIMEOUT - 1, "not before the send timeout (%.1f s)" % took)
        closes = pilot.metric("pilot_xds_limit_closes", {"reason": "send_timeout"})
        check(closes >= STUCK, "pilot_xds_limit_closes{reason=send_timeout} = %d (>= %d)" %
              (closes, STUCK))
        check(not h2.goaway, "the stuck connection itself is not closed (streams only)")
        check(not any(n.ended for n in normals), "the normal clients' streams are still up")
        check("not reading" in pilot.read_log(), "the log says why the streams were closed")
        ch.close()
    finally:
        if h2 is not None:
            h2.close()
        rc = pilot.stop()
        check(rc == 0, "pilot-discovery exits 0 on SIGTERM (%s)" % rc)
    if failures:
        print(pilot.read_log()[-3000:])
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
