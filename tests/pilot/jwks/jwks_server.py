#!/usr/bin/python3
"""jwks_server: the JWKS server test_jwks talks to. Serves DIR/<name> for GET /<name>
(404 when missing); /slow/<name> answers after 3 s. Binds 127.0.0.1 on a free port and
prints the port on the first line of stdout. Usage: jwks_server.py DIR"""
import http.server
import os
import sys
import time

DIR = sys.argv[1]


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.lstrip("/")
        if path.startswith("slow/"):
            time.sleep(3)
            path = path[len("slow/"):]
        f = os.path.join(DIR, os.path.basename(path))
        if not os.path.isfile(f):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"no such key set")
            return
        with open(f, "rb") as fh:
            body = fh.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
