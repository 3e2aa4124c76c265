#!/usr/bin/env python3
"""A loopback HTTP file server for the `pgolf data fetch` tests.

Serves ROOT on 127.0.0.1 (port chosen by the OS, written to ROOT/../port),
honours "Range: bytes=N-" (206 / 416), sends X-Linked-Etag / X-Linked-Size
for the paths listed in ROOT/../etags.json (as Hugging Face does for LFS
files), and for each file named with --flaky cuts the first full response
off half-way (the Content-Length promises more), as a dropped connection.
Every request is appended to ROOT/../requests.log. It exits by itself after
--lifetime seconds.
"""
import argparse
import http.server
import json
import os
import threading

parser = argparse.ArgumentParser()
parser.add_argument("root")
parser.add_argument("--flaky", action="append", default=[])
parser.add_argument("--lifetime", type=float, default=120.0)
args = parser.parse_args()
root = os.path.abspath(args.root)
state_dir = os.path.dirname(root)
cut_already = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one response per connection: a cut is a cut

    def log_message(self, *unused):
        pass

    def do_GET(self):
        rng = self.headers.get("Range", "")
        with open(os.path.join(state_dir, "requests.log"), "a") as log:
            log.write(f"GET {self.path} {rng}\n")
        path = os.path.normpath(os.path.join(root, self.path.lstrip("/")))
        if not path.startswith(root) or not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        etags_file = os.path.join(state_dir, "etags.json")
        if os.path.exists(etags_file):
            etags = json.load(open(etags_file))
            if self.path in etags:
                self.send_header("X-Linked-Etag", '"' + etags[self.path] + '"')
                self.send_header("X-Linked-Size", str(len(data)))
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        name = os.path.basename(path)
        if start == 0 and name in args.flaky and name not in cut_already:
            cut_already.add(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Timer(args.lifetime, server.shutdown).start()
with open(os.path.join(state_dir, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.replace(os.path.join(state_dir, "port.tmp"), os.path.join(state_dir, "port"))
server.serve_forever()
