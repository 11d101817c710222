"""`assetfs cache stat|gc|verify [--cache-dir D]` as an operator uses it.

The cache dirs here are filled the way the block cache lays them out
(blocks/<2 hex>/<sha256 hex>) without a mount: the index is then rebuilt
from the files at the first open, which is itself part of what is tested.
"""
import hashlib
import json
import os

import pytest

from conftest import run
from helpers_mount import (BLOCK, SANITIZER_MARKS, mounter,  # noqa: F401
                           push, read_all)

BLK = 64 * 1024


def put_block(cache_dir, data, name=None, mtime=None):
    """Write a block file; @name overrides the digest (a corrupt block)."""
    hexd = name or hashlib.sha256(data).hexdigest()
    d = cache_dir / "blocks" / hexd[:2]
    d.mkdir(parents=True, exist_ok=True)
    p = d / hexd
    p.write_bytes(data)
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return hexd, p


def kv(stdout):
    out = {}
    for line in stdout.decode().splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def cache(assetfs_bin, *args, check=False, env=None):
    p = run([assetfs_bin, "cache", *args], check=check, env=env, timeout=60)
    err = p.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    return p


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    d.mkdir()
    return d


def test_stat_prints_key_value_lines(assetfs_bin, cache_dir):
    sizes = [BLK, BLK - 1, 10]
    for i, n in enumerate(sizes):
        put_block(cache_dir, bytes([i + 1]) * n)
    p = cache(assetfs_bin, "stat", "--cache-dir", str(cache_dir))
    assert p.returncode == 0, p.stderr
    s = kv(p.stdout)
    assert s["cache_dir"] == str(cache_dir)
    assert int(s["blocks"]) == 3
    assert int(s["bytes"]) == sum(sizes)
    assert int(s["max_bytes"]) == 10 << 30  # no mount recorded one
    assert int(s["disk_free_bytes"]) > 0
    # rebuilt from the files: owed a check before being served
    assert int(s["suspect_blocks"]) == 3
    for k in ("min_free_bytes", "docs", "objblocks"):
        assert s[k].isdigit()
    # the layout DESIGN §5 names
    for sub in ("blocks", "tmp", "locks", "index.db"):
        assert (cache_dir / sub).exists()

    p = cache(assetfs_bin, "stat", "--cache-dir", str(cache_dir), "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["blocks"] == 3 and j["bytes"] == sum(sizes)


@pytest.mark.parametrize("action", ["stat", "gc", "verify"])
def test_every_report_opens_with_its_cache_dir(assetfs_bin, cache_dir,
                                               action):
    put_block(cache_dir, os.urandom(BLK))
    p = cache(assetfs_bin, action, "--cache-dir", str(cache_dir))
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines()[0] == f"cache_dir {cache_dir}"
    p = cache(assetfs_bin, action, "--cache-dir", str(cache_dir), "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert list(j)[0] == "cache_dir" and j["cache_dir"] == str(cache_dir)
    assert j["bytes"] == BLK


def test_verify_reports_corrupt_block_and_exits_nonzero(assetfs_bin,
                                                        cache_dir):
    good = [put_block(cache_dir, os.urandom(BLK))[0] for _ in range(3)]
    bad_hex, bad_path = put_block(
        cache_dir, os.urandom(BLK),
        name=hashlib.sha256(b"something else").hexdigest())
    p = cache(assetfs_bin, "verify", "--cache-dir", str(cache_dir))
    assert p.returncode == 1
    out = p.stdout.decode()
    assert f"bad {bad_hex} content does not match its name" in out
    s = kv(p.stdout)
    assert s["checked"] == "4"
    assert s["bad"] == "1"
    assert s["bytes"] == str(4 * BLK)
    assert "1 bad block(s)" in p.stderr.decode()
    assert not bad_path.exists()
    for h in good:
        assert (cache_dir / "blocks" / h[:2] / h).exists()

    # the bad one is gone: a second run is clean
    p = cache(assetfs_bin, "verify", "--cache-dir", str(cache_dir))
    assert p.returncode == 0, p.stderr
    s = kv(p.stdout)
    assert s["checked"] == "3" and s["bad"] == "0"
    p = cache(assetfs_bin, "stat", "--cache-dir", str(cache_dir))
    assert kv(p.stdout)["blocks"] == "3"
    # verified blocks are no longer suspect
    assert kv(p.stdout)["suspect_blocks"] == "0"


def test_verify_catches_truncated_block(assetfs_bin, cache_dir):
    data = os.urandom(BLK)
    h, path = put_block(cache_dir, data)
    cache(assetfs_bin, "stat", "--cache-dir", str(cache_dir), check=True)
    path.chmod(0o644)
    path.write_bytes(data[: BLK // 2])  # a crash lost the tail
    p = cache(assetfs_bin, "verify", "--cache-dir", str(cache_dir))
    assert p.returncode == 1
    assert f"bad {h}" in p.stdout.decode()
    assert not path.exists()


def test_gc_evicts_least_recently_used_to_target(assetfs_bin, cache_dir):
    names = []
    for i in range(6):  # older first
        h, _ = put_block(cache_dir, os.urandom(BLK), mtime=1_000_000 + i)
        names.append(h)
    stale = cache_dir / "tmp"
    stale.mkdir()
    (stale / "123.1.abc").write_bytes(b"half a block from a killed writer")
    p = cache(assetfs_bin, "gc", "--cache-dir", str(cache_dir),
              "--target", "128K")
    assert p.returncode == 0, p.stderr
    s = kv(p.stdout)
    assert s["evicted"] == "4"
    assert s["blocks"] == "2"
    assert s["bytes"] == str(2 * BLK)
    left = sorted(f.name for f in (cache_dir / "blocks").rglob("*")
                  if f.is_file())
    assert left == sorted(names[4:])  # the two most recent
    assert list((cache_dir / "tmp").iterdir()) == []

    # without --target: down to the recorded cache_size (10 GiB): no-op
    p = cache(assetfs_bin, "gc", "--cache-dir", str(cache_dir))
    assert p.returncode == 0, p.stderr
    assert kv(p.stdout)["evicted"] == "0"


def test_usage_and_errors(assetfs_bin, tmp_path, cache_dir):
    p = cache(assetfs_bin)
    assert p.returncode == 2
    assert b"usage: assetfs cache" in p.stderr
    p = cache(assetfs_bin, "frobnicate", "--cache-dir", str(cache_dir))
    assert p.returncode == 2
    assert b'unknown action "frobnicate"' in p.stderr
    p = cache(assetfs_bin, "gc", "--cache-dir", str(cache_dir),
              "--target", "lots")
    assert p.returncode == 2
    assert b'bad size "lots"' in p.stderr
    p = cache(assetfs_bin, "stat", "--target", "1G", "--cache-dir",
              str(cache_dir))
    assert p.returncode == 2
    missing = tmp_path / "nope"
    p = cache(assetfs_bin, "stat", "--cache-dir", str(missing))
    assert p.returncode == 1
    assert p.stderr.decode().strip().endswith(
        f"{missing}: no such cache directory")
    assert not missing.exists()  # inspecting never creates a cache
    p = cache(assetfs_bin, "--help")
    assert p.returncode == 0 and b"verify" in p.stdout


@pytest.mark.skipif(os.geteuid() == 0,
                    reason="root always uses /var/cache/assetfs")
def test_default_dir_follows_xdg_cache_home(assetfs_bin, tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "assetfs").mkdir(parents=True)
    put_block(xdg / "assetfs", b"x" * 100)
    p = cache(assetfs_bin, "stat", env={"XDG_CACHE_HOME": str(xdg)})
    assert p.returncode == 0, p.stderr
    s = kv(p.stdout)
    assert s["cache_dir"] == str(xdg / "assetfs")
    assert s["blocks"] == "1"


def test_cli_over_a_real_mount(assetfs_bin, store, mounter, tmp_path):
    """stat/verify/gc on a cache a mount filled; a block damaged on disk is
    found by verify, removed, and fetched again (correctly) by the next
    mount; gc empties the cache and a mount still reads everything."""
    url, _ = store
    data = os.urandom(2 * BLOCK + 12345)  # 3 blocks, the last one short
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    spec = push(assetfs_bin, url, src, "cachecli/model")
    name, version = spec.split(":")
    cache_dir = tmp_path / "cache"

    m = mounter(url, cache_dir=cache_dir)
    assert read_all(m.mnt / name / version) == data
    m.unmount()
    s = kv(cache(assetfs_bin, "stat", "--cache-dir", str(cache_dir),
                 check=True).stdout)
    assert s["blocks"] == "3"
    assert s["bytes"] == str(len(data))
    assert s["suspect_blocks"] == "0"
    assert int(s["docs"]) >= 1  # version lists kept for offline use

    full = [f for f in (cache_dir / "blocks").rglob("*")
            if f.is_file() and f.stat().st_size == BLOCK]
    assert len(full) == 2
    victim = full[0]
    raw = bytearray(victim.read_bytes())
    raw[BLOCK // 3] ^= 0xFF
    victim.chmod(0o644)
    victim.write_bytes(bytes(raw))
    p = cache(assetfs_bin, "verify", "--cache-dir", str(cache_dir))
    assert p.returncode == 1, (p.stdout, p.stderr)
    s = kv(p.stdout)
    assert s["checked"] == "3" and s["bad"] == "1"
    assert f"bad {victim.name}" in p.stdout.decode()
    assert not victim.exists()

    m2 = mounter(url, name="mnt2", cache_dir=cache_dir)
    assert read_all(m2.mnt / name / version) == data
    assert m2.stats()["bytes_fetched"] == BLOCK  # just the removed one
    m2.unmount()
    p = cache(assetfs_bin, "verify", "--cache-dir", str(cache_dir))
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert kv(p.stdout)["bad"] == "0"

    s = kv(cache(assetfs_bin, "gc", "--cache-dir", str(cache_dir),
                 "--target", "0", check=True).stdout)
    assert s["evicted"] == "3" and s["blocks"] == "0" and s["bytes"] == "0"
    assert not [f for f in (cache_dir / "blocks").rglob("*") if f.is_file()]
    m3 = mounter(url, name="mnt3", cache_dir=cache_dir)
    assert read_all(m3.mnt / name / version) == data
    assert m3.stats()["bytes_fetched"] == len(data)
