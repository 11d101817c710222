"""`assetfs mount` as a user sees it: the tree of DESIGN §4, byte-identical
reads (whole files and 10,000 random ranges from 8 threads), ls/stat/
readlink/getfattr, EROFS on every write, new versions within versions_ttl,
hostile store content, altered store bytes, listings at scale, stats and
the metrics port."""
import concurrent.futures
import errno
import json
import os
import pathlib
import random
import re
import socket
import stat
import subprocess
import time
import urllib.request

import pytest

from conftest import run
from helpers_mount import (BLOCK, make_tree, mounter, push, read_all,  # noqa
                           wait_for, write_version)


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


@pytest.fixture
def assets(assetfs_bin, store, tmp_path):
    """Several pushed assets: {"name:version": bytes or {rel: bytes}}."""
    url, _ = store
    out = {}
    f1 = tmp_path / "src" / "model.bin"
    f1.parent.mkdir(parents=True)
    f1.write_bytes(rnd(3 * BLOCK + 12345, 1))
    out[push(assetfs_bin, url, f1, "fraud/xgb")] = f1.read_bytes()
    folder = {
        "model.json": b'{"trees": 3}\n',
        "empty.txt": b"",
        "weights/exact.bin": rnd(BLOCK, 2),
        "weights/plus1.bin": rnd(BLOCK + 1, 3),
        "weights/deep/big.bin": rnd(2 * BLOCK + 777, 4),
    }
    src = make_tree(tmp_path / "src2", folder)
    out[push(assetfs_bin, url, src, "fraud/xgb")] = folder
    folder2 = dict(folder, **{"model.json": b'{"trees": 4}\n'})
    src2 = make_tree(tmp_path / "src3", folder2)
    out[push(assetfs_bin, url, src2, "fraud/xgb", bump_major=True)] = folder2
    f2 = tmp_path / "src" / "tiny.txt"
    f2.write_bytes(b"tiny\n")
    out[push(assetfs_bin, url, f2, "team/nlp/tok")] = b"tiny\n"
    return out


def files_of(mnt, assets):
    """[(path in mount, bytes)] for every file of @assets."""
    res = []
    for spec, data in assets.items():
        name, version = spec.split(":")
        base = pathlib.Path(mnt) / name / version
        if isinstance(data, bytes):
            res.append((base, data))
        else:
            res += [(base / rel, b) for rel, b in data.items()]
    return res


def test_every_file_reads_back_identical(store, assets, mounter):
    m = mounter(store[0])
    files = files_of(m.mnt, assets)
    assert len(files) == 12
    for path, data in files:
        assert read_all(path) == data, path
        assert read_all(path, chunk=4096 + 7) == data, path

    # 10,000 random ranges from 8 threads, biased to block boundaries
    big = [(p, d) for p, d in files if len(d) > 0]
    rng = random.Random(42)
    jobs = []
    for _ in range(10000):
        p, d = rng.choice(big)
        if rng.random() < 0.5 and len(d) > BLOCK:
            edge = BLOCK * rng.randint(1, len(d) // BLOCK)
            off = max(0, edge - rng.randint(0, 70000))
        else:
            off = rng.randrange(len(d))
        jobs.append((p, d, off, rng.randint(1, 300000)))

    def check(chunk):
        fds = {}
        try:
            for p, d, off, n in chunk:
                fd = fds.get(p)
                if fd is None:
                    fd = fds[p] = os.open(p, os.O_RDONLY)
                got = os.pread(fd, n, off)
                if got != d[off:off + n]:
                    return f"{p} [{off}, +{n}) differs"
        finally:
            for fd in fds.values():
                os.close(fd)
        return None

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        chunks = [jobs[i::8] for i in range(8)]
        errors = [e for e in ex.map(check, chunks) if e]
    assert not errors, errors[:5]
    s = m.stats()
    assert s["errors"] == 0
    assert s["digest_mismatches"] == 0
    assert s["bytes_served"] >= sum(len(d) for _, d in files)


def test_ls_stat_readlink_xattrs(store, assets, mounter, tmp_path):
    m = mounter(store[0])
    mnt = m.mnt
    assert sorted(os.listdir(mnt)) == ["fraud", "team"]
    assert sorted(os.listdir(mnt / "team")) == ["nlp"]
    assert sorted(os.listdir(mnt / "fraud" / "xgb")) == \
        ["0.0", "0.1", "0.latest", "1.0", "1.latest", "latest"]
    assert sorted(os.listdir(mnt / "fraud/xgb/1.0")) == \
        ["empty.txt", "model.json", "weights"]
    assert sorted(os.listdir(mnt / "fraud/xgb/1.0/weights")) == \
        ["deep", "exact.bin", "plus1.bin"]

    out = run(["ls", "-l", str(mnt / "fraud" / "xgb")]).stdout.decode()
    lines = {ln.split()[-1] if "->" not in ln else ln.split()[-3]: ln
             for ln in out.splitlines()[1:]}
    assert lines["0.0"].startswith("-r--r--r-- 1 ")
    assert lines["0.1"].startswith("dr-xr-xr-x ")
    assert lines["latest"].startswith("lrwxrwxrwx ")
    assert lines["latest"].endswith("latest -> 1.0")
    assert lines["0.latest"].endswith("0.latest -> 0.1")
    assert lines["1.latest"].endswith("1.latest -> 1.0")

    assert os.readlink(mnt / "fraud/xgb/latest") == "1.0"
    assert os.readlink(mnt / "fraud/xgb/0.latest") == "0.1"
    assert read_all(mnt / "fraud/xgb/latest/model.json") == \
        b'{"trees": 4}\n'

    st = os.stat(mnt / "fraud/xgb/0.0")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444
    assert st.st_size == 3 * BLOCK + 12345
    assert st.st_uid == os.getuid() and st.st_gid == os.getgid()
    meta = json.loads((store[1] / "fraud/xgb/0.0.meta").read_text())
    pd = meta["push_date"]
    want = time.mktime(time.strptime(pd[:19], "%Y-%m-%dT%H:%M:%S")) - \
        time.timezone
    assert abs(st.st_mtime - want) < 1.0
    for d in ["", "fraud", "fraud/xgb", "fraud/xgb/1.0",
              "fraud/xgb/1.0/weights"]:
        sd = os.stat(mnt / d)
        assert stat.S_ISDIR(sd.st_mode), d
        assert stat.S_IMODE(sd.st_mode) == 0o555, d
    assert os.stat(mnt / "fraud/xgb/1.0/empty.txt").st_size == 0
    # stat(1) as a user would run it
    out = run(["stat", "-c", "%A %s %U", str(mnt / "team/nlp/tok/0.0")])
    assert out.stdout.decode().split()[:2] == ["-r--r--r--", "5"]

    out = run(["getfattr", "-d", str(mnt / "fraud/xgb/1.0/model.json")])
    text = out.stdout.decode()
    assert 'user.assetfs.version="1.0"' in text
    assert 'user.assetfs.spec="fraud/xgb:1.0[model.json]"' in text
    sha = [f["sha256"] for f in json.loads(
        (store[1] / "fraud/xgb/1.0.meta").read_text())["assetfs"]["files"]
        if f["path"] == "model.json"][0]
    assert f'user.assetfs.sha256="{sha}"' in text
    assert f'user.assetfs.push_date="' in text
    assert 'user.assetfs.cached="' in text
    assert os.getxattr(mnt / "fraud/xgb/0.0", "user.assetfs.version") == \
        b"0.0"
    assert os.getxattr(mnt / "fraud/xgb/0.0", "user.assetfs.spec") == \
        b"fraud/xgb:0.0"
    # cached grows as the file is read
    p = mnt / "fraud/xgb/0.0"
    before = int(os.getxattr(p, "user.assetfs.cached"))
    read_all(p)
    assert int(os.getxattr(p, "user.assetfs.cached")) == 3 * BLOCK + 12345
    assert before < 3 * BLOCK + 12345
    # nothing that is not a version or alias, never a bare major
    for bad in ["1", "0", "2.0", "x", ".versions", "1.latest.x"]:
        assert not os.path.exists(mnt / "fraud/xgb" / bad), bad


def test_writes_fail_with_erofs(store, assets, mounter):
    m = mounter(store[0])
    f = m.mnt / "fraud/xgb/0.0"
    d = m.mnt / "fraud/xgb/1.0"

    def erofs(fn, *a):
        with pytest.raises(OSError) as e:
            fn(*a)
        assert e.value.errno == errno.EROFS, (fn, a, e.value)

    erofs(os.open, f, os.O_WRONLY)
    erofs(os.open, f, os.O_RDWR)
    erofs(os.open, d / "new.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    erofs(os.unlink, f)
    erofs(os.rename, f, m.mnt / "fraud/xgb/9.9")
    erofs(os.chmod, f, 0o777)
    erofs(os.truncate, f, 0)
    erofs(os.mkdir, d / "newdir")
    erofs(os.rmdir, d / "weights")
    erofs(os.symlink, "0.0", m.mnt / "fraud/xgb/mine")
    erofs(os.link, f, d / "hard")
    erofs(os.setxattr, f, "user.x", b"1")
    erofs(os.utime, f, (1, 1))
    p = subprocess.run(["sh", "-c", f"echo x > {d}/model.json"],
                       capture_output=True)
    assert p.returncode != 0 and b"Read-only file system" in p.stderr
    assert read_all(d / "model.json") == b'{"trees": 4}\n'


def test_new_version_appears_and_aliases_move(assetfs_bin, store, assets,
                                              mounter, tmp_path):
    url, _ = store
    m = mounter(url, versions_ttl=1)
    xgb = m.mnt / "fraud/xgb"
    assert os.readlink(xgb / "latest") == "1.0"
    assert os.readlink(xgb / "1.latest") == "1.0"
    src = make_tree(tmp_path / "new", {"model.json": b"new\n"})
    assert push(assetfs_bin, url, src, "fraud/xgb") == "fraud/xgb:1.1"
    # The list is re-read once versions_ttl (1 s) has passed; the bound is
    # generous because the machine may be loaded, not a timing claim.
    wait_for(lambda: "1.1" in os.listdir(xgb), 30, "1.1 in the listing")
    wait_for(lambda: os.readlink(xgb / "latest") == "1.1", 30,
             "latest -> 1.1")
    assert os.readlink(xgb / "1.latest") == "1.1"
    assert os.readlink(xgb / "0.latest") == "0.1"
    assert read_all(xgb / "latest/model.json") == b"new\n"
    # a brand new asset in a namespace shows too
    assert push(assetfs_bin, url, src, "fraud/lgbm") == "fraud/lgbm:0.0"
    wait_for(lambda: "lgbm" in os.listdir(m.mnt / "fraud"), 30,
             "a new asset in the namespace")
    assert read_all(m.mnt / "fraud/lgbm/latest/model.json") == b"new\n"


def test_hostile_store_content(store, mounter, tmp_path):
    url, sd = store
    write_version(sd, "good/a", "0.0", b"fine\n")
    # .meta contents escaping the version
    write_version(sd, "evil/escape", "0.0", {"a.txt": b"a"},
                  manifest=False)
    meta = json.loads((sd / "evil/escape/0.0.meta").read_text())
    meta["contents"] = ["../../../../etc/passwd", "a.txt"]
    (sd / "evil/escape/0.0.meta").write_text(json.dumps(meta))
    write_version(sd, "evil/escape", "0.1", {"ok.txt": b"ok"})
    # a name with ..
    (sd / "evil").mkdir(exist_ok=True)
    (sd / "evil/..versions").write_text('{"versions": ["0.0"]}')
    (sd / "evil/.hidden.versions").write_text('{"versions": ["0.0"]}')
    (sd / "evil/-x.versions").write_text('{"versions": ["0.0"]}')
    # a .versions that is not JSON
    (sd / "evil/notjson.versions").write_text("this is { not json")
    # a 1 GiB .meta (sparse)
    write_version(sd, "evil/huge", "0.0", b"x")
    with open(sd / "evil/huge/0.1.meta", "wb") as f:
        f.truncate(1 << 30)
    (sd / "evil/huge.versions").write_text('{"versions": ["0.1", "0.0"]}')
    # a version listed with a hostile name
    (sd / "evil/badver.versions").write_text(
        '{"versions": ["../../x", "0.0", 7, null]}')
    write_version(sd, "evil/badver", "0.0", b"v\n", add_to_versions=False)

    m = mounter(url)
    mnt = m.mnt
    assert read_all(mnt / "good/a/0.0") == b"fine\n"
    names = sorted(os.listdir(mnt / "evil"))
    assert names == ["badver", "escape", "huge"]
    # the escaping version is skipped, the good one serves
    assert sorted(os.listdir(mnt / "evil/escape")) == ["0.1", "0.latest",
                                                       "latest"]
    assert read_all(mnt / "evil/escape/0.1/ok.txt") == b"ok"
    assert not os.path.exists(mnt / "evil/escape/0.0")
    # huge .meta: that version is skipped, and so are the aliases that
    # name it (an alias never names an entry the listing does not show)
    assert sorted(os.listdir(mnt / "evil/huge")) == ["0.0"]
    assert read_all(mnt / "evil/huge/0.0") == b"x"
    # not JSON: no asset dir
    assert not os.path.exists(mnt / "evil/notjson")
    assert not os.path.exists(mnt / "evil/.hidden")
    assert sorted(os.listdir(mnt / "evil/badver")) == ["0.0", "0.latest",
                                                       "latest"]
    # nothing outside the tree
    for p in ["evil/escape/0.0/../../../../etc/passwd",
              "evil/..", "../etc/passwd"]:
        full = os.path.normpath(mnt / p)
        if full.startswith(str(mnt)):
            assert not os.path.exists(mnt / p) or \
                os.path.realpath(mnt / p).startswith(str(mnt)), p
    # walking everything works: nothing hostile is left to trip over
    p = run(["ls", "-lR", str(mnt)], timeout=60)
    assert b"passwd" not in p.stdout
    found = run(["find", str(mnt), "-type", "f"]).stdout.decode().split()
    assert sorted(os.path.relpath(f, mnt) for f in found) == [
        "evil/badver/0.0", "evil/escape/0.1/ok.txt", "evil/huge/0.0",
        "good/a/0.0"]
    assert m.proc.poll() is None  # still alive
    log = m.read_log()
    assert "evil/escape" in log and "0.0" in log
    assert "evil/huge" in log
    assert "notjson" in log


# Every SHA-256 implementation the mount may pick must refuse the bad
# block: the CPU's default, OpenSSL, and the 8-lane AVX2 one (an
# implementation this CPU lacks falls back to the default).
@pytest.mark.parametrize("sha_impl", [None, "openssl", "avx2"])
def test_altered_store_bytes_fail_with_eio(assetfs_bin, store, mounter,
                                           tmp_path, sha_impl):
    url, sd = store
    env = {"ASSETFS_SHA256": sha_impl} if sha_impl else None
    # 12 blocks: read-ahead commits several at once, so the bad one is
    # judged inside a SIMD pass, not alone (a lone block goes to OpenSSL)
    data = rnd(12 * BLOCK + 100, 9)
    src = tmp_path / "m.bin"
    src.write_bytes(data)
    push(assetfs_bin, url, src, "alter/me")
    obj = sd / "alter/me/0.0"
    bad = bytearray(data)
    bad[5 * BLOCK + 5] ^= 0xFF  # block 5 altered after the push
    obj.write_bytes(bytes(bad))
    cache_dir = tmp_path / "cache"
    m = mounter(url, cache_dir=cache_dir, env=env, timeout=10)
    path = m.mnt / "alter/me/0.0"
    with open(path, "rb") as f:
        assert f.read(BLOCK) == data[:BLOCK]  # block 0 is fine
        with pytest.raises(OSError) as e:
            f.seek(5 * BLOCK)
            f.read(100)
        assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        read_all(path)
    assert e.value.errno == errno.EIO
    s = m.stats()
    assert s["digest_mismatches"] >= 1
    assert s["errors"] >= 1
    flags = pathlib.Path("/proc/cpuinfo").read_text()
    if sha_impl != "openssl" and " avx2" in flags and " sha_ni" not in flags:
        # blocks shared passes
        assert s["sha256_batches"] < s["sha256_blocks"], s
    assert "do not match" in m.read_log()
    if sha_impl == "openssl":  # the log says which hashing is in use
        assert "(SHA-256: openssl, 1 lane)" in m.read_log()
    # the bad bytes are not cached: every cached block is a good block
    good = {__import__("hashlib").sha256(data[i:i + BLOCK]).hexdigest()
            for i in range(0, len(data), BLOCK)}
    cached = {p.name for p in (cache_dir / "blocks").rglob("*")
              if p.is_file()}
    assert cached <= good
    bad1 = __import__("hashlib").sha256(bytes(bad[5 * BLOCK:6 * BLOCK]))
    assert bad1.hexdigest() not in cached
    m.unmount()
    p = run([assetfs_bin, "cache", "verify", "--cache-dir", str(cache_dir)],
            check=False)
    assert p.returncode == 0, p.stderr


def test_version_without_manifest_trust_on_first_use(store, mounter):
    url, sd = store
    data = rnd(BLOCK + 999, 5)
    write_version(sd, "legacy/m", "0.0", data, manifest=False)
    write_version(sd, "legacy/m", "0.1", {"a/b.bin": data, "c": b"c"},
                  manifest=False)
    m = mounter(url)
    assert os.stat(m.mnt / "legacy/m/0.0").st_size == len(data)
    assert read_all(m.mnt / "legacy/m/0.0") == data
    assert read_all(m.mnt / "legacy/m/0.1/a/b.bin") == data
    assert read_all(m.mnt / "legacy/m/0.1/c") == b"c"
    assert b"user.assetfs.sha256" not in run(
        ["getfattr", "-d", str(m.mnt / "legacy/m/0.0")]).stdout


def test_readdir_scales(store, mounter):
    url, sd = store
    n_versions = 1000
    vs = [f"{i // 100}.{i % 100}" for i in range(n_versions)]
    base = sd / "big/many"
    base.mkdir(parents=True)
    for v in vs:
        (base / v).write_bytes(v.encode())
        (base / f"{v}.meta").write_text(json.dumps(
            {"push_date": "2026-01-01T00:00:00", "is_directory": False}))
    (sd / "big/many.versions").write_text(json.dumps({"versions": vs}))
    wide = sd / "wide"
    wide.mkdir()
    n_assets = 10000
    body = json.dumps({"versions": ["0.0"]})
    for i in range(n_assets):
        (wide / f"a{i:05d}.versions").write_text(body)
    m = mounter(url)
    t0 = time.monotonic()
    names = os.listdir(m.mnt / "big/many")
    t1 = time.monotonic()
    majors = {f"{i}.latest" for i in range(10)}
    assert sorted(names) == sorted(vs + list(majors) + ["latest"])
    assert os.readlink(m.mnt / "big/many/latest") == "9.99"
    assert os.readlink(m.mnt / "big/many/3.latest") == "3.99"
    assert read_all(m.mnt / "big/many/5.7") == b"5.7"
    t2 = time.monotonic()
    wide_names = os.listdir(m.mnt / "wide")
    t3 = time.monotonic()
    assert len(wide_names) == n_assets
    assert sorted(wide_names) == [f"a{i:05d}" for i in range(n_assets)]
    out = run(["ls", "-l", str(m.mnt / "wide")], timeout=60).stdout
    assert out.count(b"\ndr-xr-xr-x") == n_assets
    assert t1 - t0 < 10, f"1,000 versions listed in {t1 - t0:.1f}s"
    assert t3 - t2 < 15, f"10,000 assets listed in {t3 - t2:.1f}s"


def test_stats_and_metrics_port(assetfs_bin, store, assets, mounter):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = mounter(store[0], metrics_port=port)
    data = assets["fraud/xgb:0.0"]
    assert read_all(m.mnt / "fraud/xgb/0.0") == data
    s = m.stats()
    for k in ["bytes_fetched", "bytes_served", "block_hits", "block_misses",
              "retries", "errors", "evictions", "cache_bytes"]:
        assert k in s, k
    assert s["bytes_fetched"] == len(data)
    assert s["bytes_served"] == len(data)
    assert s["block_misses"] >= 1
    assert s["cache_bytes"] >= len(data)
    assert s["errors"] == 0
    # every fetched block was hashed once, in SIMD passes of one or more
    assert s["sha256_blocks"] == s["blocks_fetched"] >= 1
    assert 1 <= s["sha256_batches"] <= s["sha256_blocks"]
    p = run([assetfs_bin, "stats", str(m.mnt), "--json"])
    j = json.loads(p.stdout)
    assert j["bytes_fetched"] == len(data)
    assert j["store_state"] == "online" and j["store_offline"] == 0
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                  timeout=10).read().decode()
    assert re.search(rf"^assetfs_fetched_bytes_total {len(data)}$", body, re.M)
    assert re.search(r"^assetfs_cache_bytes \d+$", body, re.M)
    assert "# TYPE assetfs_cache_bytes gauge" in body
    assert re.search(r"^assetfs_store_offline 0$", body, re.M)
    assert "# TYPE assetfs_store_state_since_seconds gauge" in body
    p = run([assetfs_bin, "stats", str(m.mnt.parent)], check=False)
    assert p.returncode == 1 and b"not an assetfs mount" in p.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_at(host, port):
    try:
        return urllib.request.urlopen(f"http://{host}:{port}/metrics",
                                      timeout=5).read().decode()
    except OSError:
        return None


def test_metrics_addr(assetfs_bin, store, mounter, tmp_path):
    # default: loopback 127.0.0.1 only (127.0.0.2 reaches any address
    # bound to 0.0.0.0, never one bound to 127.0.0.1)
    port = free_port()
    m = mounter(store[0], name="m1", metrics_port=port)
    assert "assetfs_fetched_bytes_total" in metrics_at("127.0.0.1", port)
    assert metrics_at("127.0.0.2", port) is None
    m.unmount()
    # metrics_addr=0.0.0.0: every address, so Prometheus can scrape it
    port = free_port()
    mounter(store[0], name="m2", metrics_port=port, metrics_addr="0.0.0.0")
    assert "assetfs_fetched_bytes_total" in metrics_at("127.0.0.2", port)
    # not a numeric address: a usage error naming it, nothing mounted
    (tmp_path / "m3").mkdir()
    p = run([assetfs_bin, "mount", "-f", store[0], str(tmp_path / "m3"),
             "-o", f"cache_dir={tmp_path / 'cache'},metrics_port={port},"
             "metrics_addr=example.com"], check=False, timeout=30)
    assert p.returncode == 2
    assert b"bad option 'metrics_addr=example.com'" in p.stderr
    assert not os.path.ismount(tmp_path / "m3")


def test_help_lists_every_option_with_its_default(assetfs_bin):
    out = run([assetfs_bin, "mount", "--help"]).stdout
    out = out if isinstance(out, str) else out.decode()
    # every option cmd_mount.c parses, each on a line with its default
    src = (pathlib.Path(__file__).resolve().parents[2] /
           "fs/cli/cmd_mount.c").read_text()
    parsed = set(re.findall(r'IS\("([a-z_]+)"\)', src))
    assert {"readahead_kb", "metrics_addr", "metrics_port", "cache_dir",
            "threads"} <= parsed
    for opt in parsed:
        line = [ln for ln in out.splitlines()
                if re.match(rf"\s*{opt}\b", ln)]
        assert line, f"{opt} missing from mount --help:\n{out}"
        assert re.search(r"\(.+\)", line[0]), f"{opt}: no default shown"
    for opt, default in [("versions_ttl", "60"), ("timeout", "30"),
                         ("readahead", "32"), ("threads", "16"),
                         ("readahead_kb", "16384"), ("cache_size", "10G"),
                         ("cache_min_free", "5%"),
                         ("metrics_addr", "127.0.0.1")]:
        assert re.search(rf"^\s*{opt}=\S*\s+\({re.escape(default)}\)",
                         out, re.M), opt
    st = run([assetfs_bin, "stats", "--help"]).stdout
    st = st if isinstance(st, str) else st.decode()
    assert "metrics_port=N" in st and "metrics_addr" in st
    assert "127.0.0.1" in st and "bytes_fetched" in st


def test_daemon_mode_and_sigterm(assetfs_bin, store, assets, tmp_path):
    mnt = tmp_path / "dmnt"
    mnt.mkdir()
    p = run([assetfs_bin, "mount", store[0], str(mnt), "-o",
             f"cache_dir={tmp_path / 'c'},log={tmp_path / 'd.log'}"],
            timeout=30)
    try:
        assert p.returncode == 0
        assert os.path.ismount(mnt)
        assert read_all(mnt / "team/nlp/tok/0.0") == b"tiny\n"
    finally:
        run(["fusermount3", "-u", str(mnt)], check=False)
    assert not os.path.ismount(mnt)
    # foreground, SIGTERM: clean unmount and exit 0
    proc = subprocess.Popen([assetfs_bin, "mount", "-f", store[0], str(mnt),
                             "-o", f"cache_dir={tmp_path / 'c'}"],
                            stderr=subprocess.PIPE)
    try:
        wait_for(lambda: os.path.ismount(mnt), 10, "mount")
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert not os.path.ismount(mnt)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        run(["fusermount3", "-u", "-z", str(mnt)], check=False)


def test_usage_errors(assetfs_bin, tmp_path):
    p = run([assetfs_bin, "mount", "file:///nonexistent", str(tmp_path),
             "-o", "versions_ttl=abc"], check=False)
    assert p.returncode == 2 and b"bad option 'versions_ttl=abc'" in p.stderr
    p = run([assetfs_bin, "mount", "file:///x", str(tmp_path / "nope")],
            check=False)
    assert p.returncode == 1 and b"mountpoint" in p.stderr


HELPER = pathlib.Path(__file__).resolve().parents[2] / "systemd/mount.assetfs"


@pytest.mark.skipif(os.getuid() != 0, reason="installs a mount(8) helper")
def test_mount_helper_and_fstab(assetfs_bin, store, assets, tmp_path):
    """`mount -t fuse.assetfs URL DIR -o ...` and an fstab line (through
    mount -T FILE) run /sbin/mount.fuse.assetfs, our helper."""
    target = pathlib.Path("/sbin/mount.fuse.assetfs")
    installed = False
    if not target.exists():
        target.write_bytes(HELPER.read_bytes())
        target.chmod(0o755)
        installed = True
    env = {"ASSETFS_BIN": assetfs_bin}
    mnt = tmp_path / "assets"
    mnt.mkdir()
    cache = tmp_path / "hcache"
    try:
        run(["mount", "-t", "fuse.assetfs", store[0], str(mnt), "-o",
             f"cache_dir={cache},allow_other,_netdev"], env=env, timeout=30)
        assert os.path.ismount(mnt)
        line = [ln for ln in open("/proc/mounts")
                if f" {mnt} " in ln][0].split()
        assert line[0] == store[0] and line[2] == "fuse.assetfs"
        assert "ro" in line[3].split(",")
        assert "allow_other" in line[3].split(",")
        assert read_all(mnt / "team/nlp/tok/latest") == b"tiny\n"
        run(["umount", str(mnt)], timeout=30)
        wait_for(lambda: not os.path.ismount(mnt), 10, "unmount")

        fstab = tmp_path / "fstab"
        fstab.write_text(f"{store[0]} {mnt} fuse.assetfs "
                         f"cache_dir={cache},nofail,_netdev 0 0\n")
        run(["mount", "-T", str(fstab), str(mnt)], env=env, timeout=30)
        assert os.path.ismount(mnt)
        assert sorted(os.listdir(mnt)) == ["fraud", "team"]
        run(["umount", str(mnt)], timeout=30)
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
        if installed:
            target.unlink()


def test_store_from_environment_and_sigint(assetfs_bin, store, assets,
                                           tmp_path):
    """No STORE argument: ASSETFS_STORE names it; SIGINT unmounts."""
    mnt = tmp_path / "envmnt"
    mnt.mkdir()
    env = dict(os.environ, ASSETFS_STORE=store[0])
    proc = subprocess.Popen([assetfs_bin, "mount", "-f", str(mnt), "-o",
                             f"cache_dir={tmp_path / 'c'}"],
                            stderr=subprocess.PIPE, env=env)
    try:
        wait_for(lambda: os.path.ismount(mnt), 10, "mount")
        assert read_all(mnt / "team/nlp/tok/0.0") == b"tiny\n"
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0
        assert not os.path.ismount(mnt)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        run(["fusermount3", "-u", "-z", str(mnt)], check=False)
    p = run([assetfs_bin, "mount", str(mnt)], check=False,
            env={"ASSETFS_STORE": "", "MODELKIT_STORAGE_PROVIDER": ""})
    assert p.returncode == 2 and b"no store given" in p.stderr


def test_uid_gid_options(store, assets, mounter):
    m = mounter(store[0], uid=1234, gid=5678)
    for p in ["", "fraud/xgb", "fraud/xgb/0.0", "fraud/xgb/1.0/model.json"]:
        st = os.lstat(m.mnt / p)
        assert (st.st_uid, st.st_gid) == (1234, 5678), p
    assert os.lstat(m.mnt / "fraud/xgb/latest").st_uid == 1234


def test_simple_date_versions_have_only_latest(store, mounter):
    url, sd = store
    dates = ["2026-01-01T00-00-00Z", "2026-03-05T10-20-30Z",
             "2025-12-31T23-59-59Z"]
    for d in dates:
        write_version(sd, "daily/report", d, d.encode())
    m = mounter(url)
    names = sorted(os.listdir(m.mnt / "daily/report"))
    assert names == sorted(dates + ["latest"])
    assert os.readlink(m.mnt / "daily/report/latest") == \
        "2026-03-05T10-20-30Z"
    assert read_all(m.mnt / "daily/report/latest") == \
        b"2026-03-05T10-20-30Z"
