"""Run the shell commands shown in README.md and docs/*.md, so the docs
cannot drift from the code.

The convention (docs/README.md says it to doc writers):

- A fenced block tagged ```sh is executed. The blocks of one file run in
  order in ONE bash process (`set -eo pipefail`), so a variable exported,
  a directory entered or a server started in one block is there for the
  next. Each block must exit 0.
- A ```text block that directly follows a ```sh block (only blank lines
  between them) is the output of that block (stdout and stderr together)
  and must match it: line by line after trailing blanks are stripped; a
  line that is exactly `...` matches any number of lines, and `...` inside
  a line matches any characters.
- ```sh-norun marks a command that cannot run here (systemctl on a machine
  whose PID 1 is not systemd, installing into /usr/local, a real cloud). Each
  one must be listed in NORUN in test_docs.py with the reason and with the
  test that checks it another way; an unlisted one fails the suite.
- Any other tag (ini, json, yaml, fstab, c, console output without a
  command before it) is shown, not run; test_docs.py checks some of them
  (the fstab line is mounted through mount(8), the C ABI compiles).

The sandbox each file runs in:

- HOME is a fresh temp dir and the working directory; the build dir's
  fs/ and server/ come first on PATH (so `assetfs` and `assetfs-server`
  are the binaries under test);
- ~/store/modelkit-assets is a local store holding what the README's tour
  leaves: demo/iris 0.0, 0.1 and 1.0 (an XGBoost iris classifier, folder
  assets with model.json); ASSETFS_STORE names it (the README itself starts
  from an empty store and makes its own); ~/iris/model.json is the model;
  ~/assetfs is the source checkout (a symlink to the repo); ASSETFS_BIN
  names the assetfs under test for the mount(8) helper (mount(8) gives
  helpers a PATH of its own);
- well-known ports in the docs stand for free ports picked at run time and
  are rewritten in the commands and in the expected output: 8080 (the
  server), 8081 (its gRPC port), 9090 (its metrics), 9100 (the mount's
  metrics), and, started
  only for a file that names them, 9000 (S3: s3rver behind the SigV4
  verifying proxy, bucket my-bucket, region eu-west-1, AWS's example
  key pair, whose key id is rewritten to the one s3rver takes), 10000
  (Azurite), 4443 (the GCS fake, with ~/sa.json a service-account key it
  accepts), 8000 (nginx serving ~/store), 6379 (redis);
- at the end every FUSE mount under HOME is unmounted, every process the
  file started is stopped, the test servers are stopped.
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("ASSETFS_BUILD", ROOT / "build"))
TESTSERVER = str(ROOT / "scripts" / "testserver")

DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")


class Block:
    def __init__(self, lang, text, line):
        self.lang = lang
        self.text = text
        self.line = line  # 1-based line of the opening fence
        self.expect = None  # the ```text block that follows, if any

    def __repr__(self):
        return f"<{self.lang} block at line {self.line}>"


def parse(path):
    """Fenced blocks of @path in order; a ```text block right after a
    ```sh block becomes that block's .expect."""
    blocks = []
    lines = pathlib.Path(path).read_text().split("\n")
    i = 0
    last_end = None  # index of the line after the last closing fence
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        body = []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"{path}:{start + 1}: unclosed fence"
        b = Block(m.group(1), "\n".join(body) + "\n", start + 1)
        adjacent = last_end is not None and all(
            not ln.strip() for ln in lines[last_end:start])
        if (b.lang == "text" and adjacent and blocks
                and blocks[-1].lang == "sh" and blocks[-1].expect is None):
            blocks[-1].expect = b
        else:
            blocks.append(b)
        i += 1
        last_end = i
    return blocks


def match_output(expected, actual):
    """True if @actual matches @expected (see the module comment)."""
    def norm(s):
        out = [ln.rstrip() for ln in s.split("\n")]
        while out and not out[-1]:
            out.pop()
        return out

    pat = []
    for ln in norm(expected):
        if ln == "...":
            pat.append(r"(?:[^\n]*\n)*?")
        else:
            parts = [re.escape(p) for p in ln.split("...")]
            pat.append("[^\n]*".join(parts) + r"\n")
    text = "\n".join(norm(actual)) + "\n"
    return re.fullmatch("".join(pat), text) is not None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rewrite_ports(text, ports, literals=None):
    for old, new in (literals or {}).items():
        text = text.replace(old, new)
    for doc_port, real in ports.items():
        text = re.sub(rf"(?<![0-9]){doc_port}(?![0-9])", str(real), text)
    return text


def testserver(action, kind, d, *args, timeout=60):
    p = subprocess.run([TESTSERVER, action, kind, "--dir", str(d), *args],
                       capture_output=True, text=True, timeout=timeout)
    if action == "start" and p.returncode != 0:
        raise AssertionError(f"testserver start {kind}: {p.stdout}"
                             f"{p.stderr}")
    info = {}
    for line in p.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            info[k] = v
    return info


def mounts_under(path):
    """Mount points under @path, and mounts of a store under @path
    wherever they are (a doc may mount outside its HOME)."""
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            src, mp = line.split()[:2]
            mp = mp.replace("\\040", " ")
            if mp == str(path) or mp.startswith(str(path) + "/") or \
                    str(path) + "/" in src:
                out.append(mp)
    return out


S3_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GCS_EMAIL = "assetfs-docs@example-project.iam.gserviceaccount.com"


class Sandbox:
    """The environment one doc file runs in (see the module comment)."""

    def __init__(self, tmp, model_dir, with_store=True):
        self.tmp = pathlib.Path(tmp)
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.state = self.tmp / "state"
        self.state.mkdir()
        self.servers = []  # (kind, dir) started with scripts/testserver
        self.ports = {}
        self.literals = {}
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AWS_", "AZURE_", "GOOGLE_",
                                         "MODELKIT_", "ASSETFS_",
                                         "STORAGE_EMULATOR", "S3_"))}
        self.env.update({
            "HOME": str(self.home),
            "PATH": f"{BUILD}/fs:{BUILD}/server:{os.environ['PATH']}",
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "LC_ALL": "C.UTF-8",
            "TERM": "dumb",
            # mount(8) runs helpers with a safe PATH: the helper finds the
            # binary under test through its documented ASSETFS_BIN
            "ASSETFS_BIN": str(BUILD / "fs" / "assetfs"),
        })
        self.env.pop("NOTIFY_SOCKET", None)
        (self.home / "assetfs").symlink_to(ROOT)  # the source checkout
        (self.home / "iris").mkdir()
        (self.home / "iris" / "model.json").write_bytes(
            (pathlib.Path(model_dir) / "model.json").read_bytes())
        if with_store:
            self._make_store()

    def _cli(self, *args):
        p = subprocess.run([str(BUILD / "fs" / "assetfs"), *args],
                           env=self.env, cwd=self.home, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, f"{args}: {p.stderr}"

    def _make_store(self):
        store = self.home / "store" / "modelkit-assets"
        store.mkdir(parents=True)
        self.env["ASSETFS_STORE"] = f"file://{store}"
        model = str(self.home / "iris")
        self._cli("push", model, "demo/iris")
        self._cli("push", model, "demo/iris")
        self._cli("push", "--bump-major", model, "demo/iris")

    def _server_dir(self, kind):
        d = self.tmp / "servers" / kind
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _start(self, kind, *args):
        d = self._server_dir(kind)
        info = testserver("start", kind, d, *args)
        self.servers.append((kind, d))
        return info

    def prepare_ports(self, text):
        """Pick free ports for the well-known ports @text uses; start the
        test servers they stand for."""
        def uses(port):
            return re.search(rf"(?<![0-9]){port}(?![0-9])", text)

        for port in ("8080", "8081", "9090", "9100"):
            if uses(port):
                self.ports[port] = free_port()
        if uses("9000"):
            s3 = self._start("s3rver", "--bucket", "my-bucket")
            # s3rver takes only its own key id: the docs' example id is
            # rewritten to it (the secret and the signature stay real)
            self.literals[S3_KEY_ID] = "S3RVER"
            proxy = self._start("sigv4proxy", "--upstream", s3["url"],
                                "--access-key", "S3RVER",
                                "--secret-key", S3_SECRET,
                                "--region", "eu-west-1")
            self.ports["9000"] = int(proxy["port"])
        if uses("10000"):
            az = self._start("azurite", "--container", "my-container")
            self.ports["10000"] = int(az["port"])
        if uses("4443"):
            self._gcs()
        if uses("8000"):
            ng = self._start("nginx", "--root", str(self.home / "store"))
            self.ports["8000"] = int(ng["port"])
        if uses("6379"):
            r = self._start("redis")
            self.ports["6379"] = int(r["port"])

    def _gcs(self):
        d = self._server_dir("gcskey")
        key, pub = d / "key.pem", d / "key.pub.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                        "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                        str(key)], check=True, capture_output=True,
                       timeout=60)
        subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout",
                        "-out", str(pub)], check=True, capture_output=True,
                       timeout=60)
        info = self._start("gcsfake", "--pubkey", str(pub), "--bucket",
                           "my-bucket", "--client-email", GCS_EMAIL)
        self.ports["4443"] = int(info["port"])
        (self.home / "sa.json").write_text(json.dumps({
            "type": "service_account", "project_id": "example-project",
            "client_email": GCS_EMAIL, "private_key": key.read_text(),
            "token_uri": info["token_uri"]}))

    def run(self, blocks, timeout=300):
        """Run the ```sh blocks in one bash (@timeout bounds the whole doc:
        a hang, not a speed goal); returns (rc, index of the
        block that was running, [outputs])."""
        sh = [b for b in blocks if b.lang == "sh"]
        driver = ["set -eo pipefail", f'cd "{self.home}"',
                  f'exec 3>"{self.state}/progress"']
        for i, b in enumerate(sh):
            f = self.state / f"b{i}.sh"
            f.write_text(rewrite_ports(b.text, self.ports, self.literals))
            driver.append(f"echo {i} >&3")
            driver.append(f'{{ source "{f}"; }} >"{self.state}/o{i}" 2>&1 '
                          "</dev/null")
        driver.append(f"echo {len(sh)} >&3")
        (self.state / "driver.sh").write_text("\n".join(driver) + "\n")
        proc = subprocess.Popen(["bash", str(self.state / "driver.sh")],
                                env=self.env, cwd=self.home,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.pgid = proc.pid
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        prog = (self.state / "progress").read_text().split()
        at = int(prog[-1]) if prog else 0
        outs = []
        for i in range(len(sh)):
            o = self.state / f"o{i}"
            outs.append(o.read_text(errors="replace") if o.exists() else "")
        return rc, at, sh, outs

    def close(self):
        # processes the doc's shell left behind (servers started with &)
        pg = getattr(self, "pgid", None)
        if pg:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pg, sig)
                except ProcessLookupError:
                    break
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    try:
                        os.killpg(pg, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.05)
                else:
                    continue
                break
        for mp in sorted(mounts_under(self.tmp), reverse=True):
            subprocess.run(["fusermount3", "-u", mp], capture_output=True,
                           timeout=30)
            if mp in mounts_under(self.tmp):
                subprocess.run(["fusermount3", "-u", "-z", mp],
                               capture_output=True, timeout=30)
        for kind, d in reversed(self.servers):
            testserver("stop", kind, d, timeout=30)
