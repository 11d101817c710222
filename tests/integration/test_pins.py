"""Pins and pre-warm (issue 13, docs/cache.md): `assetfs warm` fills the
cache without a mount (through nginx, counting the GETs a fault proxy saw),
`assetfs pin add|rm|ls|wait` keep versions whole in the cache, floating
pins follow a new push, `-o warm_before_flip` holds an alias until its new
target is complete, `-o pins=FILE` is re-read when it changes, eviction
under pressure never touches a pinned block, `pin wait` refuses a missing
or corrupt block, and the pin gauges say what the cache holds. Every test
mounts for real (and unmounts in teardown) or runs the real CLI."""
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import run
from helpers_mount import BLOCK, mounter, push, wait_for  # noqa: F401
from helpers_remote import servers  # noqa: F401
from helpers_server import free_port

PROMTOOL = shutil.which("promtool")


def rnd(n, seed):
    out, h = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h * 64
    return bytes(out[:n])


def folder(d, files):
    d = pathlib.Path(d)
    for rel, data in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    return d


def cli(assetfs, *args, check=True):
    return run([assetfs, *args], check=check, timeout=180)


def pin_ls(assetfs, cache):
    """[(spec, version, present, total, state...)] from `pin ls`."""
    out = cli(assetfs, "pin", "ls", "--cache-dir", str(cache)).stdout
    rows = []
    for line in out.decode().splitlines():
        spec, version, pt, state = line.split(" ", 3)
        present, total = (int(x) for x in pt.split("/"))
        rows.append((spec, version, present, total,
                     state.split("  ")[0]))
    return rows


def warm_summary(out):
    m = re.search(r"warmed (\S+) -> (\S+): (\d+) bytes in (\d+) blocks, "
                  r"fetched (\d+), already present (\d+)", out.decode())
    assert m, out
    return {"version": m.group(2), "total": int(m.group(3)),
            "blocks": int(m.group(4)), "fetched": int(m.group(5)),
            "present": int(m.group(6))}


def block_path(cache, data):
    h = hashlib.sha256(data).hexdigest()
    return pathlib.Path(cache) / "blocks" / h[:2] / h


def stage_version(store_dir, stage_dir, assetfs, src, name):
    """Push @src as the next version of @name into a copy of the store
    and bring only its .meta and the new .versions into the real store:
    the version is listed, its data missing (a store still uploading, or
    too slow for a warm to finish). Returns (version, copy_data)."""
    shutil.copytree(store_dir, stage_dir, dirs_exist_ok=True)
    ver = push(assetfs, f"file://{stage_dir}", src, name)
    ver = ver.split(":")[1]
    shutil.copy(pathlib.Path(stage_dir) / name / f"{ver}.meta",
                pathlib.Path(store_dir) / name / f"{ver}.meta")
    shutil.copy(pathlib.Path(stage_dir) / f"{name}.versions",
                pathlib.Path(store_dir) / f"{name}.versions")

    def copy_data():
        shutil.copytree(pathlib.Path(stage_dir) / name / ver,
                        pathlib.Path(store_dir) / name / ver)
    return ver, copy_data


def test_warm_fetches_each_block_once(servers, assetfs_bin, tmp_path,
                                      mounter):  # noqa: F811
    root = tmp_path / "www"
    (root / "modelkit-assets").mkdir(parents=True)
    files = {"weights.bin": rnd(2 * BLOCK + 12345, 1),
             "model.json": b'{"trees": 3}', "sub/vocab.txt": rnd(5000, 2)}
    src = folder(tmp_path / "src", files)
    push(assetfs_bin, f"file://{root}/modelkit-assets", src, "fraud/xgb")
    ng = servers("nginx", "--root", str(root), name="nginx-warm")
    fp = servers("fault", "--upstream", ng["url"], "--faults", "",
                 "--methods", "GET", name="count-warm")
    store = fp["url"] + "/modelkit-assets"
    cache = tmp_path / "cache"

    def gets():
        with urllib.request.urlopen(fp["url"] + "/__fault/stats",
                                    timeout=10) as r:
            return json.loads(r.read())["requests"]

    g0 = gets()
    p = cli(assetfs_bin, "warm", "fraud/xgb", "--store", store,
            "--cache-dir", str(cache))
    first = warm_summary(p.stdout)
    g1 = gets()
    total = sum(len(d) for d in files.values())
    assert first == {"version": "0.0", "total": total, "blocks": 5,
                     "fetched": total, "present": 0}
    p = cli(assetfs_bin, "warm", "fraud/xgb:0.0", "--store", store,
            "--cache-dir", str(cache))
    second = warm_summary(p.stdout)
    g2 = gets()
    assert (second["fetched"], second["present"]) == (0, total)
    # the second warm asked only for the version list and the .meta: the
    # first one's extra GETs are the five blocks, one each
    assert (g1 - g0) - (g2 - g1) == 5
    for rel, data in files.items():
        assert block_path(cache, data[:BLOCK]).read_bytes() == data[:BLOCK]
    # a mount on that cache reads everything and fetches nothing
    m = mounter(store, cache_dir=cache)
    for rel, data in files.items():
        assert (m.mnt / "fraud/xgb/0.0" / rel).read_bytes() == data
    st = m.stats()
    assert st["bytes_fetched"] == 0 and st["block_misses"] == 0, st


def test_pin_add_ls_rm(assetfs_bin, store, tmp_path):
    url, _ = store
    data = rnd(BLOCK + 100, 3)
    (tmp_path / "m.bin").write_bytes(data)
    push(assetfs_bin, url, tmp_path / "m.bin", "team/m")
    cache = tmp_path / "cache"
    p = cli(assetfs_bin, "pin", "add", "team/m:0", "--store", url,
            "--cache-dir", str(cache))
    assert p.stdout.decode().startswith("pinned team/m:0 -> 0.0 ")
    assert f"fetched {len(data)} bytes" in p.stdout.decode()
    assert pin_ls(assetfs_bin, cache) == [
        ("team/m:0", "0.0", len(data), len(data), "ready")]
    assert block_path(cache, data[:BLOCK]).exists()
    p = cli(assetfs_bin, "pin", "add", "team/m[x.bin]", "--store", url,
            "--cache-dir", str(cache), check=False)
    assert p.returncode == 1 and b"whole versions" in p.stderr
    p = cli(assetfs_bin, "pin", "add", "team/nope", "--store", url,
            "--cache-dir", str(cache), check=False)
    assert p.returncode == 1 and b"no such asset" in p.stderr
    # a new version, no mount: ls says what the pin resolves to now, and
    # `assetfs warm` (no spec: every pin) moves the pin to it
    new = rnd(2000, 33)
    (tmp_path / "m.bin").write_bytes(new)
    push(assetfs_bin, url, tmp_path / "m.bin", "team/m")
    assert pin_ls(assetfs_bin, cache) == [
        ("team/m:0", "0.1", 0, len(new),
         "failed: not pinned yet (a mount using this cache, or 'assetfs "
         "warm', moves the pin)"),
        ("team/m:0", "0.0", len(data), len(data), "ready")]
    p = cli(assetfs_bin, "warm", "--store", url, "--cache-dir", str(cache))
    assert warm_summary(p.stdout)["version"] == "0.1"
    assert pin_ls(assetfs_bin, cache) == [
        ("team/m:0", "0.1", len(new), len(new), "ready")]
    p = cli(assetfs_bin, "pin", "rm", "team/m:0", "--cache-dir", str(cache))
    assert p.stdout.decode() == "unpinned team/m:0\n"
    assert pin_ls(assetfs_bin, cache) == []
    p = cli(assetfs_bin, "pin", "rm", "team/m:0", "--cache-dir", str(cache),
            check=False)
    assert p.returncode == 1 and b"not pinned" in p.stderr


def test_a_pin_that_cannot_fit_is_refused(assetfs_bin, store, tmp_path,
                                          mounter):  # noqa: F811
    url, _ = store
    (tmp_path / "big.bin").write_bytes(rnd(10_000_000, 4))
    (tmp_path / "small.bin").write_bytes(rnd(3 << 20, 5))
    push(assetfs_bin, url, tmp_path / "big.bin", "team/big")
    push(assetfs_bin, url, tmp_path / "small.bin", "team/small")
    cache = tmp_path / "cache"
    # the mount records cache_size=8M in the cache's index
    m = mounter(url, cache_dir=cache, cache_size="8M")
    m.unmount()
    cli(assetfs_bin, "pin", "add", "team/small", "--store", url,
        "--cache-dir", str(cache))
    p = cli(assetfs_bin, "pin", "add", "team/big", "--store", url,
            "--cache-dir", str(cache), check=False)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert ("pin team/big (0.0) does not fit: it needs 9.5 MiB, pins hold "
            "3.0 MiB already, cache_size is 8.0 MiB") in err, err
    # nothing recorded, nothing fetched for it
    assert [r[0] for r in pin_ls(assetfs_bin, cache)] == ["team/small"]
    st = cli(assetfs_bin, "cache", "stat", "--cache-dir", str(cache)).stdout
    assert b"\nbytes 3145728\n" in st, st


def test_floating_pin_follows_a_new_push(assetfs_bin, store, tmp_path,
                                         mounter):  # noqa: F811
    url, _ = store
    v0, v1 = rnd(BLOCK + 7, 6), rnd(BLOCK + 9, 7)
    (tmp_path / "a").mkdir()
    (tmp_path / "a/model.bin").write_bytes(v0)
    push(assetfs_bin, url, tmp_path / "a", "fraud/xgb")
    pins = tmp_path / "pins.txt"
    pins.write_text("fraud/xgb:0\n")
    cache = tmp_path / "cache"
    m = mounter(url, cache_dir=cache, pins=pins, versions_ttl=1)
    wait_for(lambda: pin_ls(assetfs_bin, cache) ==
             [("fraud/xgb:0", "0.0", len(v0), len(v0), "ready")], 20,
             "0.0 pinned")
    (tmp_path / "a/model.bin").write_bytes(v1)
    push(assetfs_bin, url, tmp_path / "a", "fraud/xgb")
    # 0.1 warmed in the background, then 0.0 released
    wait_for(lambda: pin_ls(assetfs_bin, cache) ==
             [("fraud/xgb:0", "0.1", len(v1), len(v1), "ready")], 30,
             "the pin to follow 0.1")
    before = m.stats()
    assert (m.mnt / "fraud/xgb/0.latest/model.bin").read_bytes() == v1
    after = m.stats()
    assert after["bytes_fetched"] == before["bytes_fetched"]
    assert "pin fraud/xgb:0: released 0.0 (now 0.1)" in m.read_log()


@pytest.mark.parametrize("flip", [True, False])
def test_warm_before_flip_holds_the_alias(assetfs_bin, store, tmp_path,
                                          mounter, flip):  # noqa: F811
    url, sdir = store
    v0, v1 = rnd(BLOCK + 11, 8), rnd(2 * BLOCK, 9)
    (tmp_path / "a").mkdir()
    (tmp_path / "a/model.bin").write_bytes(v0)
    push(assetfs_bin, url, tmp_path / "a", "fraud/xgb")
    pins = tmp_path / "pins.txt"
    pins.write_text("# the node's models\nfraud/xgb\n")
    cache = tmp_path / "cache"
    opts = {"pins": pins, "versions_ttl": 1}
    if flip:
        opts["warm_before_flip"] = True
    m = mounter(url, cache_dir=cache, **opts)
    asset = m.mnt / "fraud/xgb"
    wait_for(lambda: pin_ls(assetfs_bin, cache)[:1] ==
             [("fraud/xgb", "0.0", len(v0), len(v0), "ready")], 20,
             "0.0 pinned")
    (tmp_path / "a/model.bin").write_bytes(v1)
    ver, copy_data = stage_version(sdir, tmp_path / "stage", assetfs_bin,
                                   tmp_path / "a", "fraud/xgb")
    assert ver == "0.1"
    # listed at once; its data cannot be fetched yet
    wait_for(lambda: "0.1" in os.listdir(asset), 20, "0.1 listed")
    wait_for(lambda: any(r[1] == "0.1" and r[4].startswith("failed")
                         for r in pin_ls(assetfs_bin, cache)), 20,
             "the warm of 0.1 to fail")
    if not flip:
        # the control: without the option the aliases move at once
        assert os.readlink(asset / "latest") == "0.1"
        return
    for _ in range(3):
        assert os.readlink(asset / "latest") == "0.0"
        assert os.readlink(asset / "0.latest") == "0.0"
        time.sleep(1)
    assert sorted(os.listdir(asset)) == ["0.0", "0.1", "0.latest",
                                         "latest"]
    copy_data()
    wait_for(lambda: os.readlink(asset / "latest") == "0.1", 30,
             "latest -> 0.1 once 0.1 is complete")
    assert os.readlink(asset / "0.latest") == "0.1"
    rows = pin_ls(assetfs_bin, cache)
    assert ("fraud/xgb", "0.1", len(v1), len(v1), "ready") in rows
    before = m.stats()
    assert (asset / "latest/model.bin").read_bytes() == v1
    assert m.stats()["bytes_fetched"] == before["bytes_fetched"]


def test_pin_file_add_and_remove(assetfs_bin, store, tmp_path,
                                 mounter):  # noqa: F811
    url, _ = store
    blobs = {n: rnd(300_000 + i, 10 + i)
             for i, n in enumerate(["a/one", "a/two", "a/three"])}
    for n, d in blobs.items():
        f = tmp_path / n.replace("/", "_")
        f.write_bytes(d)
        push(assetfs_bin, url, f, n)
    pins = tmp_path / "pins.txt"
    pins.write_text("a/one\n")
    cache = tmp_path / "cache"
    mounter(url, cache_dir=cache, pins=pins)

    def specs():
        return sorted((r[0], r[4]) for r in pin_ls(assetfs_bin, cache))
    wait_for(lambda: specs() == [("a/one", "ready")], 20, "a/one pinned")
    # a pin added by hand is not the file's to remove
    cli(assetfs_bin, "pin", "add", "a/three", "--store", url,
        "--cache-dir", str(cache))
    pins.write_text("  # edited\na/two   # the new model\n\n")
    wait_for(lambda: specs() == [("a/three", "ready"), ("a/two", "ready")],
             20, "a/two pinned and a/one unpinned")


def test_eviction_never_touches_pinned_blocks(assetfs_bin, store, tmp_path,
                                              mounter):  # noqa: F811
    url, _ = store
    pinned = rnd(2 * BLOCK, 20)
    (tmp_path / "p.bin").write_bytes(pinned)
    push(assetfs_bin, url, tmp_path / "p.bin", "team/pinned")
    others = []
    for i in range(4):
        d = rnd(BLOCK, 30 + i)
        (tmp_path / f"o{i}.bin").write_bytes(d)
        push(assetfs_bin, url, tmp_path / f"o{i}.bin", f"team/other{i}")
        others.append(d)
    cache = tmp_path / "cache"
    m = mounter(url, cache_dir=cache, cache_size="16M")
    # pinned while the mount runs, with the limits it recorded
    cli(assetfs_bin, "pin", "add", "team/pinned", "--store", url,
        "--cache-dir", str(cache))
    for rnd_pass in range(2):
        for i, d in enumerate(others):
            assert (m.mnt / f"team/other{i}/0.0").read_bytes() == d
    st = m.stats()
    assert st["evictions"] >= 2, st
    for k in range(2):
        assert block_path(cache, pinned[k * BLOCK:(k + 1) * BLOCK]).exists()
    p = cli(assetfs_bin, "pin", "wait", "team/pinned", "--store", url,
            "--cache-dir", str(cache))
    assert p.stdout.decode() == \
        f"ready team/pinned -> 0.0 ({len(pinned)} bytes verified)\n"
    # unpinned, the same blocks are fair game
    cli(assetfs_bin, "pin", "rm", "team/pinned", "--cache-dir", str(cache))
    cli(assetfs_bin, "cache", "gc", "--cache-dir", str(cache), "--target",
        "0")
    assert not block_path(cache, pinned[:BLOCK]).exists()


def test_pin_wait_refuses_missing_and_corrupt_blocks(assetfs_bin, store,
                                                     tmp_path):
    url, _ = store
    data = rnd(3 * BLOCK, 40)
    (tmp_path / "m.bin").write_bytes(data)
    push(assetfs_bin, url, tmp_path / "m.bin", "team/m")
    cache = tmp_path / "cache"
    common = ["--store", url, "--cache-dir", str(cache)]

    def wait(*extra):
        return cli(assetfs_bin, "pin", "wait", "team/m", *common, *extra,
                   check=False)
    p = wait()
    assert p.returncode == 1 and b"not ready: 0 of" in p.stderr
    cli(assetfs_bin, "pin", "add", "team/m", *common)
    assert wait().returncode == 0
    missing = block_path(cache, data[BLOCK:2 * BLOCK])
    missing.unlink()
    t0 = time.monotonic()
    p = wait("--timeout", "1.5")
    assert p.returncode == 1
    assert time.monotonic() - t0 >= 1.0
    assert b"team/m/0.0 block 1: missing" in p.stderr, p.stderr
    cli(assetfs_bin, "warm", *common)  # every pin, kept current
    assert wait().returncode == 0
    bad = block_path(cache, data[2 * BLOCK:])
    raw = bytearray(bad.read_bytes())
    raw[100] ^= 1
    bad.write_bytes(bytes(raw))  # same size: only a re-hash sees it
    p = wait()
    assert p.returncode == 1
    assert b"block 2: corrupt (removed)" in p.stderr, p.stderr
    assert not bad.exists()
    cli(assetfs_bin, "warm", "team/m", *common)
    assert wait().returncode == 0
    assert bad.read_bytes() == data[2 * BLOCK:]


def test_pin_gauges(assetfs_bin, store, tmp_path, mounter):  # noqa: F811
    url, sdir = store
    data = rnd(BLOCK + 500, 50)
    (tmp_path / "a").mkdir()
    (tmp_path / "a/m.bin").write_bytes(data)
    push(assetfs_bin, url, tmp_path / "a", "team/ok")
    (tmp_path / "a/m.bin").write_bytes(rnd(1000, 51))
    push(assetfs_bin, url, tmp_path / "a", "team/late")
    stage_version(sdir, tmp_path / "stage", assetfs_bin, tmp_path / "a",
                  "team/late")  # 0.1 listed, its data missing
    pins = tmp_path / "pins.txt"
    pins.write_text("team/ok\nteam/late:0.1\n")
    port = free_port()
    cache = tmp_path / "cache"
    m = mounter(url, cache_dir=cache, pins=pins, metrics_port=port)

    def scrape():
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                      timeout=10).read().decode()
    wait_for(lambda: 'assetfs_pin_ready{spec="team/ok"} 1' in scrape(), 20,
             "team/ok ready")
    text = scrape()
    ok = ['spec="team/ok",version="0.0"']
    assert f'assetfs_pin_bytes_present{{{ok[0]}}} {len(data)}' in text
    assert f'assetfs_pin_bytes{{{ok[0]}}} {len(data)}' in text
    late = 'spec="team/late:0.1",version="0.1"'
    wait_for(lambda: f'assetfs_pin_bytes_present{{{late}}} 0' in scrape(),
             20, "team/late's failed pin")
    text = scrape()
    assert f'assetfs_pin_bytes{{{late}}} 1000' in text
    assert 'assetfs_pin_ready{spec="team/late:0.1"} 0' in text
    st = m.stats()
    assert st["pins"] == 2
    assert st["pinned_bytes_present"] == len(data)
    assert st["pinned_bytes_total"] == len(data) + 1000
    if PROMTOOL:
        p = subprocess.run([PROMTOOL, "check", "metrics"],
                           input=text.encode(), capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr


def test_unmount_stops_a_warm_which_resumes(servers, assetfs_bin, tmp_path,
                                            mounter):  # noqa: F811
    # a slow store: nginx sends each response at 2 MB/s, so a 4 MiB block
    # takes 2 s and the pin's 64 blocks, 8 at a time, about 16 s
    root = tmp_path / "www"
    (root / "modelkit-assets").mkdir(parents=True)
    data = os.urandom(64 * BLOCK)
    (tmp_path / "big.bin").write_bytes(data)
    push(assetfs_bin, f"file://{root}/modelkit-assets", tmp_path / "big.bin",
         "team/big")
    ng = servers("nginx", "--root", str(root), "--limit-rate", "2m",
                 name="nginx-slow")
    store = ng["url"] + "/modelkit-assets"
    pins = tmp_path / "pins.txt"
    pins.write_text("team/big\n")
    cache = tmp_path / "cache"
    m = mounter(store, cache_dir=cache, pins=pins, cache_size="1G")

    def present():
        rows = pin_ls(assetfs_bin, cache)
        return rows[0][2] if rows else 0
    wait_for(lambda: present() > 0, 30, "the first blocks of the warm")
    t0 = time.monotonic()
    assert m.unmount() == 0
    # the blocks in flight finish (2 s each); the other rounds do not run
    assert time.monotonic() - t0 < 8
    [(spec, ver, have, total, state)] = pin_ls(assetfs_bin, cache)
    assert (spec, ver, total, state) == ("team/big", "0.0", len(data),
                                         "warming")
    assert 0 < have < total
    # a new mount resumes: it fetches only what is missing
    m2 = mounter(store, name="mnt2", cache_dir=cache, pins=pins,
                 cache_size="1G")
    wait_for(lambda: pin_ls(assetfs_bin, cache)[0][4] == "ready", 60,
             "the resumed warm")
    assert m2.stats()["bytes_fetched"] == total - have
    p = cli(assetfs_bin, "pin", "wait", "team/big", "--store", store,
            "--cache-dir", str(cache))
    assert p.returncode == 0
