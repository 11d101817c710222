"""Fixtures for the remote-store tests: servers started by scripts/testserver
on 127.0.0.1 with free ports, sample assets, and the prov_tool driver.

Every server is stopped in teardown; every wait is bounded (testserver
waits at most 30 s for a port, commands time out after 120 s).
"""
import hashlib
import json
import os
import pathlib
import random
import subprocess
import urllib.request

import pytest

from conftest import BUILD, ROOT, run

TESTSERVER = str(ROOT / "scripts" / "testserver")
PROV_TOOL = BUILD / "tests" / "prov_tool"

# Distinctive credentials, so a leak is easy to grep for.
S3_ACCESS_KEY = "S3RVER"  # s3rver accepts only this access key id
S3_SECRET = "tEsT-s3cr3t-K3Y-must-never-be-printed-0xC0FFEE"


def start_server(kind, d, *args, env=None):
    """Start @kind under @d; returns its KEY=VALUE lines as a dict."""
    p = run([TESTSERVER, "start", kind, "--dir", str(d), *args], env=env,
            timeout=60)
    info = {}
    for line in p.stdout.decode().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            info[k] = v
    return info


def stop_server(kind, d):
    run([TESTSERVER, "stop", kind, "--dir", str(d)], check=False, timeout=30)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """start(kind, *args) -> info; everything started is stopped after."""
    d = tmp_path_factory.mktemp("servers")
    started = []

    def start(kind, *args, name=None, env_extra=None):
        sd = d / (name or kind)
        sd.mkdir(exist_ok=True)
        info = start_server(kind, sd, *args, env=env_extra)
        info["dir"] = sd
        started.append((kind, sd))
        return info

    yield start
    for kind, sd in reversed(started):
        stop_server(kind, sd)


@pytest.fixture(scope="session")
def prov_tool():
    assert PROV_TOOL.exists(), f"build prov_tool first ({PROV_TOOL})"
    return str(PROV_TOOL)


def make_folder(d, seed, files=None):
    """A folder asset with deterministic random contents; returns d."""
    rnd = random.Random(seed)
    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    files = files or {"model.json": 200, "weights.bin": 700_000,
                      "sub/vocab.txt": 5000, "sub/empty": 0}
    for rel, size in files.items():
        f = d / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(rnd.randbytes(size))
    return d


def cli(assetfs, store, *args, env=None, check=True, input=None):
    """Run `assetfs CMD --store STORE ARGS`; returns CompletedProcess."""
    cmd = [assetfs, args[0], "--store", store, *args[1:]]
    return run(cmd, env=env, check=check, input=input, timeout=120)


def assert_no_secrets(procs, secrets):
    """No secret appears in any stdout/stderr of @procs."""
    for p in procs:
        for stream in (p.stdout, p.stderr):
            text = stream if isinstance(stream, bytes) else stream.encode()
            for s in secrets:
                assert s.encode() not in text, f"secret leaked: {s[:4]}..."


def proxy_stats(url):
    with urllib.request.urlopen(url + "/__sigv4_proxy/stats",
                                timeout=10) as r:
        return json.loads(r.read())


def sanitized_build():
    """Whether BUILD was configured with -Db_sanitize (everything runs
    several times slower there, so time bounds get more slack)."""
    try:
        opts = json.loads((BUILD / "meson-info" /
                           "intro-buildoptions.json").read_text())
    except (OSError, ValueError):
        return False
    for o in opts:
        if o.get("name") == "b_sanitize":
            return o.get("value") not in (None, "", "none")
    return False


def sha(b):
    return hashlib.sha256(b).hexdigest()


def check_store_roundtrip(assetfs, store, src, name, env):
    """push (twice), ls, resolve, cat every file, index: all bytes equal."""
    procs = []
    procs.append(cli(assetfs, store, "push", str(src), name, env=env))
    procs.append(cli(assetfs, store, "push", str(src), name, env=env))
    p = cli(assetfs, store, "ls", env=env)
    procs.append(p)
    assert name in p.stdout.decode().split()
    p = cli(assetfs, store, "ls", name, env=env)
    procs.append(p)
    assert p.stdout.decode().split() == ["0.1", "0.0"]
    p = cli(assetfs, store, "resolve", name, env=env)
    procs.append(p)
    assert p.stdout.decode().split()[0] == f"{name}:0.1"
    for f in sorted(src.rglob("*")):
        if f.is_file():
            rel = f.relative_to(src).as_posix()
            for v in ("0.0", "0.1"):
                p = cli(assetfs, store, "cat", f"{name}:{v}[{rel}]", env=env)
                procs.append(p)
                assert p.stdout == f.read_bytes(), rel
    procs.append(cli(assetfs, store, "index", env=env))
    return procs
