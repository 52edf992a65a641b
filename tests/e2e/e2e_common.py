"""Shared helpers for the end-to-end tests: free ports, the real pilot-discovery binary on a
temporary config directory, Envoy message classes built at runtime from the .proto files
(protoc --descriptor_set_out, then message_factory), and small HTTP helpers.

Run with Debian's /usr/bin/python3 (grpcio and protobuf come from Debian packages).
"""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
ADS_SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
ADS_DELTA = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


def env_path(name):
    v = os.environ.get(name)
    if not v:
        skip("%s is not set (run through meson test)" % name)
    return v


def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=5):
    """Returns (status, body as str)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# ---- Envoy message classes from the protos --------------------------------------------------

ROOT_PROTOS = [
    "envoy/service/discovery/v3/ads.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/http/fault/v3/fault.proto",
    "envoy/extensions/transport_sockets/tls/v3/secret.proto",
]


class Protos:
    def __init__(self, workdir):
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        root = env_path("PILOT_PROTO_ROOT")
        out = os.path.join(workdir, "envoy.desc")
        subprocess.run(["protoc", "-I" + root, "-I/usr/include", "--include_imports",
                        "--descriptor_set_out=" + out] + ROOT_PROTOS, check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
        self.pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:
            self.pool.Add(fd)
        self._factory = message_factory.MessageFactory(self.pool)
        self._mf = message_factory

    def cls(self, full_name):
        d = self.pool.FindMessageTypeByName(full_name)
        if hasattr(self._mf, "GetMessageClass"):
            return self._mf.GetMessageClass(d)
        return self._factory.GetPrototype(d)

    def unpack_any(self, any_msg):
        name = any_msg.type_url.split("/", 1)[1]
        m = self.cls(name)()
        m.ParseFromString(any_msg.value)
        return m


# ---- the control plane ----------------------------------------------------------------------

class Pilot:
    """pilot-discovery on free loopback ports with a copy of a config directory."""

    def __init__(self, config_src=None, config_files=None, workdir=None, extra_args=None):
        build = env_path("PILOT_BUILD")
        self.exe = os.path.join(build, "pilot", "pilot-discovery")
        if not os.path.exists(self.exe):
            skip("%s not built" % self.exe)
        self.workdir = workdir or tempfile.mkdtemp(prefix="pilot-e2e-")
        self.config_dir = os.path.join(self.workdir, "config")
        if config_src:
            shutil.copytree(config_src, self.config_dir)
        else:
            os.makedirs(self.config_dir)
        for name, text in (config_files or {}).items():
            with open(os.path.join(self.config_dir, name), "w") as f:
                f.write(text)
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.mon_port = free_port()
        self.log_path = os.path.join(self.workdir, "pilot.log")
        self.proc = None
        self.extra_args = list(extra_args or [])

    def start(self, timeout=30, attempts=3):
        """Starts and waits for /ready. Ports are picked free long before (tests run in
        parallel), so one may be taken meanwhile: then new ports and another attempt."""
        for i in range(attempts):
            try:
                return self._start_once(timeout)
            except RuntimeError:
                if i + 1 == attempts or "Address already in use" not in self.read_log():
                    raise
                self.log.close()
                self.grpc_port, self.http_port, self.mon_port = (free_port() for _ in range(3))

    def _start_once(self, timeout):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.exe, "discovery", "--configDir", self.config_dir,
             "--grpcAddr", "127.0.0.1:%d" % self.grpc_port,
             "--httpAddr", "127.0.0.1:%d" % self.http_port,
             "--monitoringAddr", "127.0.0.1:%d" % self.mon_port] + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pilot-discovery exited with %d:\n%s" %
                                   (self.proc.returncode, self.read_log()))
            try:
                st, _ = http_get(self.url("/ready"), timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("pilot-discovery not ready after %ds:\n%s" % (timeout, self.read_log()))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def murl(self, path):
        return "http://127.0.0.1:%d%s" % (self.mon_port, path)

    def target(self):
        return "127.0.0.1:%d" % self.grpc_port

    def json(self, path):
        st, body = http_get(self.url(path))
        if st != 200:
            raise RuntimeError("%s: HTTP %d: %s" % (path, st, body))
        return json.loads(body)

    def metric(self, name, labels=None):
        """Sum of the samples of a metric whose labels include `labels` (a dict)."""
        _, text = http_get(self.murl("/metrics"))
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, val = line.rpartition(" ")
            mname = head.split("{", 1)[0]
            if mname != name:
                continue
            if labels:
                if not all('%s="%s"' % (k, v) in head for k, v in labels.items()):
                    continue
            total += float(val)
        return total

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM and wait; returns the exit code (a crash or a sanitizer report fails)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                print("pilot-discovery did not stop on SIGTERM")
                return -1
        self.log.close()
        return self.proc.returncode


class AdsStream:
    """One ADS stream (SotW or Delta, by method): send() requests, recv() responses with a
    timeout; a reader thread queues responses and None when the stream ends (the
    grpc.RpcError, if any, is kept in .error). grpc is imported by the caller's script."""

    def __init__(self, channel, method, req_cls, resp_cls, metadata=None, timeout=None,
                 recv_timeout=5.0):
        import grpc  # Debian's python3-grpcio; scripts skip before this when it is missing
        self._rpc_error = grpc.RpcError
        self.q = queue.Queue()
        self.out = queue.Queue()
        self.error = None
        self.recv_timeout = recv_timeout
        call = channel.stream_stream(method, request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=resp_cls.FromString)
        self.call = call(iter(self.q.get, None), metadata=metadata, timeout=timeout)
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        try:
            for r in self.call:
                self.out.put(r)
        except self._rpc_error as e:
            self.error = e
        self.out.put(None)

    def send(self, m):
        self.q.put(m)

    def recv(self, timeout=None):
        try:
            return self.out.get(timeout=self.recv_timeout if timeout is None else timeout)
        except queue.Empty:
            return None

    def close(self):
        self.q.put(None)
        self.call.cancel()
