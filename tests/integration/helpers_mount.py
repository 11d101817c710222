"""Mount fixtures for the assetfs integration tests.

`mounter` starts real `assetfs mount -f` daemons on temp dirs, waits until
each mount answers, and always unmounts (fusermount3 -u, then -u -z) and
reaps the daemon at teardown, failing the test if a daemon's log shows
sanitizer output. Stores are filled with `assetfs push`, or object by
object exactly per DESIGN §2 (`write_version`) for content `assetfs push`
would never write (hostile documents, versions without a manifest, huge
listings).
"""
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

from conftest import run

BLOCK = 4 << 20
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "UndefinedBehaviorSanitizer")


def wait_for(pred, timeout, what, interval=0.05):
    """Poll @pred until true; fail after @timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}")
        time.sleep(interval)


class Mount:
    def __init__(self, assetfs_bin, store_url, mnt, cache_dir, opts=None,
                 env=None, log=None):
        self.bin = assetfs_bin
        self.url = store_url
        self.mnt = pathlib.Path(mnt)
        self.cache_dir = pathlib.Path(cache_dir)
        self.opts = dict(opts or {})
        self.env = env
        self.log = pathlib.Path(log or f"{mnt}.log")
        self.proc = None

    def optstr(self):
        items = [f"cache_dir={self.cache_dir}"]
        for k, v in self.opts.items():
            items.append(k if v is True else f"{k}={v}")
        return ",".join(items)

    def start(self, timeout=15, wait=True):
        """Run the daemon; with @wait, until the mount answers a stat
        (else return at once: nothing of the test touches the mount)."""
        self.mnt.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env.setdefault("ASSETFS_LOG", "info")
        if self.env:
            full_env.update(self.env)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "mount", "-f", self.url, str(self.mnt), "-o",
             self.optstr()],
            stdout=logf, stderr=logf, env=full_env)
        logf.close()
        if not wait:
            return self

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"assetfs mount exited {self.proc.returncode}:\n"
                    f"{self.read_log()}")
            return os.path.ismount(self.mnt)
        wait_for(up, timeout, f"mount on {self.mnt}")
        os.stat(self.mnt)  # answers (without asking the store)
        return self

    def read_log(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stats(self):
        p = run([self.bin, "stats", str(self.mnt)], timeout=30)
        out = {}
        for line in p.stdout.decode().splitlines():
            k, _, v = line.partition(" ")
            out[k] = int(v) if v.isdigit() else v  # store_state: words
        return out

    def unmount(self, timeout=20):
        if self.proc is None:
            return
        if os.path.ismount(self.mnt):
            p = subprocess.run(["fusermount3", "-u", str(self.mnt)],
                               capture_output=True)
            if p.returncode != 0 and os.path.ismount(self.mnt):
                subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                               capture_output=True)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("assetfs did not exit after unmount")
        finally:
            if os.path.ismount(self.mnt):
                subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                               capture_output=True)
            rc = self.proc.returncode
            self.proc = None
        return rc

    def kill9(self):
        """Kill the daemon hard and detach the stale mount."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                       capture_output=True)

    def check_log(self):
        log = self.read_log()
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"sanitizer output in daemon log:\n{log}"


@pytest.fixture
def mounter(assetfs_bin, tmp_path):
    """Factory: mounter(store_url, name="mnt", cache_dir=None, **opts)."""
    mounts = []

    def make(store_url, name="mnt", cache_dir=None, env=None, start=True,
             **opts):
        cd = pathlib.Path(cache_dir or tmp_path / "cache")
        m = Mount(assetfs_bin, store_url, tmp_path / name, cd, opts, env)
        mounts.append(m)
        if start:
            m.start()
        return m
    yield make
    # unmount everything first, then report: one failure must not leave
    # the other mounts behind
    errors = []
    for m in mounts:
        try:
            rc = m.unmount()
            if rc not in (None, 0):
                errors.append(f"assetfs exited {rc} after fusermount3 -u")
        except AssertionError as e:
            errors.append(str(e))
        except Exception as e:  # noqa: BLE001 - keep unmounting the rest
            errors.append(repr(e))
    for m in mounts:
        try:
            m.check_log()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, errors


def push(assetfs_bin, store_url, path, name, bump_major=False):
    args = [assetfs_bin, "push", "--store", store_url]
    if bump_major:
        args.append("--bump-major")
    p = run(args + [str(path), name], timeout=120)
    return p.stdout.decode().split()[1]  # "pushed NAME:VERSION (...)"


def make_tree(root, files):
    """Write {relpath: bytes} under @root; return @root."""
    root = pathlib.Path(root)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def manifest_entry(path, data, block=BLOCK):
    blocks = [hashlib.sha256(data[i:i + block]).hexdigest()
              for i in range(0, len(data), block)]
    return {"path": path, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "blocks": blocks}


def write_version(store_dir, name, version, data, manifest=True,
                  push_date="2026-01-02T03:04:05.123456",
                  block=BLOCK, add_to_versions=True):
    """Write one version's objects per DESIGN §2: @data is bytes (a file
    asset) or {relpath: bytes} (a folder asset)."""
    store_dir = pathlib.Path(store_dir)
    base = store_dir / name
    base.mkdir(parents=True, exist_ok=True)
    if isinstance(data, (bytes, bytearray)):
        (base / version).write_bytes(data)
        meta = {"push_date": push_date, "is_directory": False}
        files = [manifest_entry("", data, block)]
    else:
        for rel, b in data.items():
            p = base / version / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b)
        meta = {"push_date": push_date, "is_directory": True,
                "contents": sorted(data)}
        files = [manifest_entry(rel, b, block)
                 for rel, b in sorted(data.items())]
    if manifest:
        meta["assetfs"] = {"format": 1, "block_size": block, "files": files}
    (base / f"{version}.meta").write_text(json.dumps(meta))
    if add_to_versions:
        vf = store_dir / f"{name}.versions"
        vs = json.loads(vf.read_text())["versions"] if vf.exists() else []
        vs.insert(0, version)
        vf.write_text(json.dumps({"versions": vs}))


def read_all(path, chunk=1 << 20):
    with open(path, "rb") as f:
        out = bytearray()
        while True:
            b = f.read(chunk)
            if not b:
                return bytes(out)
            out += b
