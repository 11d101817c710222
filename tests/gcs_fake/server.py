#!/usr/bin/python3
"""A fake of the Google Cloud Storage JSON API calls assetfs makes, checking
what the real service checks (Python stdlib + the openssl command).

  POST /token                      OAuth2 jwt-bearer grant: the JWT must be
                                   RS256, signed by --pubkey's key, iss =
                                   --client-email (if given), aud = this
                                   token URI, scope devstorage, iat/exp
                                   sane and unexpired; answers an access
                                   token valid --token-ttl seconds
  GET  /storage/v1/b/B/o           list: prefix, delimiter, pageToken,
                                   maxResults (capped by --page-size)
  GET  /storage/v1/b/B/o/NAME      metadata, or bytes with alt=media
                                   (Range, ifGenerationMatch -> 412)
  POST /upload/storage/v1/b/B/o    uploadType=media&name=NAME
  DELETE /storage/v1/b/B/o/NAME
  GET  /__fake/stats               counters (tokens, rejections)
  POST /__fake/revoke              revoke every token issued so far

Every storage call needs "Authorization: Bearer <unexpired token>" unless
--public (anonymous reads of a public bucket; writes still need a token).
Objects are kept in memory. Prints nothing until asked; listens on
127.0.0.1:--port.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCOPE = "https://www.googleapis.com/auth/devstorage"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.objects = {}  # name -> (bytes, generation, updated)
        self.tokens = {}   # token -> expiry (time.time())
        self.gen = int(time.time() * 1000)
        self.stats = {"tokens_issued": 0, "jwt_rejected": 0,
                      "token_rejected": 0, "requests": 0,
                      "anonymous": 0}

    def bump(self, k):
        with self.lock:
            self.stats[k] += 1


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(pubkey, signed, sig):
    with tempfile.NamedTemporaryFile() as sf, \
            tempfile.NamedTemporaryFile() as df:
        sf.write(sig)
        sf.flush()
        df.write(signed)
        df.flush()
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pubkey,
                            "-signature", sf.name, df.name],
                           capture_output=True, timeout=20)
        return p.returncode == 0


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        ".%03dZ" % int((t % 1) * 1000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcs-fake"

    def log_message(self, fmt, *a):  # quiet
        pass

    @property
    def st(self):
        return self.server.state

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, msg):
        self.send_json(code, {"error": {"code": code, "message": msg}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 256 << 20:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def authorized(self, write):
        auth = self.headers.get("Authorization", "")
        if not auth:
            if self.st.args.public and not write:
                self.st.bump("anonymous")
                return True
            self.error(401, "Anonymous caller does not have access")
            return False
        m = re.fullmatch(r"Bearer (\S+)", auth)
        with self.st.lock:
            exp = self.st.tokens.get(m.group(1)) if m else None
        if exp is None or exp <= time.time():
            self.st.bump("token_rejected")
            self.error(401, "Invalid or expired access token")
            return False
        return True

    # ---- OAuth2 ----
    def token(self):
        form = urllib.parse.parse_qs(self.body().decode())
        why = self.check_jwt(form)
        if why:
            self.st.bump("jwt_rejected")
            self.send_json(400, {"error": "invalid_grant",
                                 "error_description": why})
            return
        tok = "ya29.fake-" + secrets.token_urlsafe(24)
        ttl = self.st.args.token_ttl
        with self.st.lock:
            self.st.tokens[tok] = time.time() + ttl
            self.st.stats["tokens_issued"] += 1
        self.send_json(200, {"access_token": tok, "expires_in": ttl,
                             "token_type": "Bearer"})

    def check_jwt(self, form):
        if form.get("grant_type") != \
                ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return "bad grant_type"
        jwt = (form.get("assertion") or [""])[0]
        parts = jwt.split(".")
        if len(parts) != 3:
            return "malformed JWT"
        try:
            hdr = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return "malformed JWT"
        if hdr.get("alg") != "RS256":
            return "alg must be RS256"
        if not verify_rs256(self.st.args.pubkey,
                            (parts[0] + "." + parts[1]).encode(), sig):
            return "Invalid JWT Signature."
        now = time.time()
        host = self.headers.get("Host", "")
        if claims.get("aud") != f"http://{host}/token":
            return "bad aud"
        if self.st.args.client_email and \
                claims.get("iss") != self.st.args.client_email:
            return "bad iss"
        if not str(claims.get("scope", "")).startswith(SCOPE):
            return "bad scope"
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 60 <= now < exp) or exp - iat > 3600:
            return "JWT expired or not yet valid"
        return None

    # ---- storage ----
    def route(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        q = {k: v[0] for k, v in q.items()}
        m = re.fullmatch(r"/(upload/)?storage/v1/b/([^/]+)/o(?:/(.+))?",
                         u.path)
        if not m:
            return None
        bucket = urllib.parse.unquote(m.group(2))
        name = urllib.parse.unquote(m.group(3)) if m.group(3) else None
        return bool(m.group(1)), bucket, name, q

    def resource(self, name, obj):
        data, gen, upd = obj
        return {"kind": "storage#object", "bucket": self.st.args.bucket,
                "name": name, "size": str(len(data)),
                "generation": str(gen), "etag": f"E{gen}",
                "md5Hash": base64.b64encode(
                    hashlib.md5(data).digest()).decode(),
                "updated": rfc3339(upd)}

    def do_GET(self):
        self.st.bump("requests")
        if self.path == "/__fake/stats":
            with self.st.lock:
                self.send_json(200, dict(self.st.stats))
            return
        r = self.route()
        if not r:
            return self.error(404, "Not Found")
        upload, bucket, name, q = r
        if upload or bucket != self.st.args.bucket:
            return self.error(404, "The specified bucket does not exist.")
        if not self.authorized(write=False):
            return
        if name is None:
            return self.list(q)
        with self.st.lock:
            obj = self.st.objects.get(name)
        if obj is None:
            return self.error(404, f"No such object: {bucket}/{name}")
        if "ifGenerationMatch" in q and q["ifGenerationMatch"] != str(obj[1]):
            return self.error(412, "Precondition Failed")
        if q.get("alt") != "media":
            return self.send_json(200, self.resource(name, obj))
        self.media(obj)

    def media(self, obj):
        data, gen = obj[0], obj[1]
        rng = self.headers.get("Range")
        start, end, code = 0, len(data) - 1, 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
            if not m:
                return self.error(400, "bad Range")
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            end = min(end, len(data) - 1)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            code = 206
        chunk = data[start:end + 1]
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("x-goog-generation", str(gen))
        self.send_header("ETag", f'"E{gen}"')
        if code == 206:
            self.send_header("Content-Range",
                             f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        self.wfile.write(chunk)

    def list(self, q):
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        page = self.st.args.page_size
        if q.get("maxResults"):
            page = min(page, int(q["maxResults"]))
        after = ""
        if q.get("pageToken"):
            try:
                after = b64url_decode(q["pageToken"]).decode()
            except ValueError:
                return self.error(400, "Invalid pageToken")
        with self.st.lock:
            names = sorted(self.st.objects)
            objs = dict(self.st.objects)
        # entries in name order; a folded prefix is one entry
        entries = []
        seen = set()
        for n in names:
            if not n.startswith(prefix):
                continue
            rest = n[len(prefix):]
            if delim and delim in rest:
                p = prefix + rest.split(delim, 1)[0] + delim
                if p not in seen:
                    seen.add(p)
                    entries.append(("p", p))
            else:
                entries.append(("o", n))
        entries = [e for e in entries if e[1] > after]
        chunk, more = entries[:page], len(entries) > page
        out = {"kind": "storage#objects"}
        items = [self.resource(n, objs[n]) for k, n in chunk if k == "o"]
        prefixes = [n for k, n in chunk if k == "p"]
        if items:
            out["items"] = items
        if prefixes:
            out["prefixes"] = prefixes
        if more:
            last = chunk[-1][1]
            out["nextPageToken"] = base64.urlsafe_b64encode(
                last.encode()).decode().rstrip("=")
        self.send_json(200, out)

    def do_POST(self):
        self.st.bump("requests")
        if self.path == "/token":
            return self.token()
        if self.path == "/__fake/revoke":  # every token becomes invalid
            with self.st.lock:
                self.st.tokens.clear()
            return self.send_json(200, {})
        r = self.route()
        if not r or not r[0]:
            return self.error(404, "Not Found")
        _, bucket, _, q = r
        if bucket != self.st.args.bucket:
            return self.error(404, "The specified bucket does not exist.")
        if not self.authorized(write=True):
            return
        if q.get("uploadType") != "media" or not q.get("name"):
            return self.error(400, "uploadType=media&name= required")
        data = self.body()
        with self.st.lock:
            self.st.gen += 1
            obj = (data, self.st.gen, time.time())
            self.st.objects[q["name"]] = obj
        self.send_json(200, self.resource(q["name"], obj))

    def do_DELETE(self):
        self.st.bump("requests")
        r = self.route()
        if not r or r[0] or r[2] is None:
            return self.error(404, "Not Found")
        if not self.authorized(write=True):
            return
        with self.st.lock:
            obj = self.st.objects.pop(r[2], None)
        if obj is None:
            return self.error(404, "No such object")
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pubkey", required=True)
    ap.add_argument("--bucket", default="assets")
    ap.add_argument("--client-email")
    ap.add_argument("--page-size", type=int, default=3)
    ap.add_argument("--token-ttl", type=int,
                    default=int(os.environ.get("GCS_FAKE_TOKEN_TTL", 3600)))
    ap.add_argument("--public", action="store_true",
                    default=bool(os.environ.get("GCS_FAKE_PUBLIC")))
    ap.add_argument("--data")  # accepted for symmetry; state is in memory
    args = ap.parse_args()
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    srv.serve_forever()


if __name__ == "__main__":
    main()
