#!/usr/bin/python3
"""A fault-injecting HTTP reverse proxy for the remote-store tests.

    proxy.py --port P --upstream http://127.0.0.1:U --seed N
             --faults "500=0.05,503=0.05,reset=0.05,stall=0.01,..."
             [--methods GET,HEAD] [--stall-seconds 60]

Each request whose method is in --methods draws one fault (or none) from
a seeded RNG, with the given probabilities:

  500       answer 500 without asking upstream
  503       answer 503 with "Retry-After: 1" (--retry-after)
  429       answer 429 with "Retry-After: 0"
  reset     close the connection with a TCP RST before answering
  midreset  send the headers and part of the body, then RST
  stall     send the headers and part of the body, then nothing for
            --stall-seconds (a stalled transfer)
  truncate  send the headers (full Content-Length), part of the body, then
            close cleanly (a truncated body)
  short     a consistent but shorter answer: a 206 whose Content-Range
            and Content-Length cover only part of what was asked
  flip      flip one byte of the body (silent corruption)
  flip206   the same, only in 206 answers (block reads, not metadata)
  301region S3's answer for a bucket in another region (eu-west-3)
  delay     a ranged request (a block read) waits --delay-seconds, then is
            forwarded and answered normally (a slow store holding reads)

--script "503,none,stall" applies the listed faults to the first requests
in order (deterministic tests), then the random draw resumes.

Everything else is forwarded unchanged (Host included, so signatures still
verify). GET /__fault/stats returns the counts of each fault injected.
"""
import argparse
import http.client
import json
import random
import re
import socket
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
       "te", "trailer", "upgrade"}


class State:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.faults = []
        acc = 0.0
        for part in filter(None, args.faults.split(",")):
            name, p = part.split("=")
            acc += float(p)
            self.faults.append((acc, name.strip()))
        self.stats = {"requests": 0, "none": 0}
        self.up = urllib.parse.urlsplit(args.upstream)
        self.methods = set(args.methods.split(","))
        self.script = [f for f in args.script.split(",") if f]

    def draw(self):
        with self.lock:
            self.stats["requests"] += 1
            x = self.rng.random()
            part = self.rng.random()
            if self.script:
                name = self.script.pop(0)
                if name == "none":
                    self.stats["none"] += 1
                    return None, 0.5
                self.stats[name] = self.stats.get(name, 0) + 1
                return name, 0.5
            for acc, name in self.faults:
                if x < acc:
                    self.stats[name] = self.stats.get(name, 0) + 1
                    return name, part
            self.stats["none"] += 1
            return None, part


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def rst(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def simple(self, code, extra=None):
        body = f"injected {code}\n".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def forward(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        conn = http.client.HTTPConnection(st.up.hostname, st.up.port,
                                          timeout=60)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def handle_any(self):
        st = self.server.state
        if self.path == "/__fault/stats":
            with st.lock:
                b = json.dumps(st.stats).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)
            return
        fault, part = (None, 0.0)
        if self.command in st.methods:
            fault, part = st.draw()
        if fault in ("500", "503", "429"):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            extra = {"503": {"Retry-After": str(st.args.retry_after)},
                     "429": {"Retry-After": "0"}}.get(fault, {})
            return self.simple(int(fault), extra)
        if fault == "reset":
            return self.rst()
        if fault == "301region":  # S3: the bucket is in another region
            body = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
                    b"<Code>PermanentRedirect</Code></Error>")
            self.send_response(301)
            self.send_header("x-amz-bucket-region", "eu-west-3")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        if fault == "delay" and self.headers.get("Range"):
            time.sleep(st.args.delay_seconds)
        try:
            resp, data = self.forward()
        except OSError as e:
            return self.simple(502, {"X-Error": str(e)[:100]})
        headers = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in HOP and k.lower() != "content-length"]
        status = resp.status
        cut = int(len(data) * part * 0.9)
        if fault == "short" and status == 206 and len(data) > 1:
            m = re.match(r"bytes (\d+)-(\d+)/(\d+)",
                         resp.getheader("Content-Range", ""))
            if m:
                start, total = int(m.group(1)), m.group(3)
                data = data[:max(1, cut)]
                headers = [(k, v) for k, v in headers
                           if k.lower() != "content-range"]
                headers.append(("Content-Range",
                                f"bytes {start}-{start + len(data) - 1}/"
                                f"{total}"))
        if fault == "flip206" and status != 206:
            fault = None  # only ranged answers (block reads) get flipped
        if fault in ("flip", "flip206") and data and self.command == "GET":
            i = int(part * len(data)) % len(data)
            data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault in ("truncate", "midreset", "stall") and len(data) > 1:
            self.wfile.write(data[:cut])
            self.wfile.flush()
            if fault == "truncate":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "midreset":
                self.rst()
            else:
                end = time.monotonic() + st.args.stall_seconds
                while time.monotonic() < end:
                    time.sleep(0.2)
                self.rst()
            return
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default="")
    ap.add_argument("--methods", default="GET,HEAD")
    ap.add_argument("--stall-seconds", type=float, default=60)
    ap.add_argument("--delay-seconds", type=float, default=2)
    ap.add_argument("--retry-after", type=int, default=1,
                    help="the Retry-After of injected 503s (seconds)")
    ap.add_argument("--script", default="",
                    help="faults for the first requests, in order "
                    "(e.g. 503,none,stall), before the random ones")
    args = ap.parse_args()
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    srv.serve_forever()


if __name__ == "__main__":
    main()
