"""The mount through the fault-injecting proxy in front of nginx: under
500s, 503s, resets, stalls and truncated or short bodies every read returns
the right bytes or fails with EIO within the timeout, and retries show in
`assetfs stats`; a flipped byte is never served and never cached."""
import errno
import os
import random
import time

import pytest

from helpers_mount import BLOCK, make_tree, mounter, read_all  # noqa
from helpers_remote import cli, servers  # noqa: F401

FAULTS = ("500=0.05,503=0.03,reset=0.05,midreset=0.03,stall=0.02,"
          "truncate=0.05,short=0.05")


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


@pytest.fixture
def origin(servers, assetfs_bin, tmp_path):  # noqa: F811
    root = tmp_path / "www"
    (root / "modelkit-assets").mkdir(parents=True)
    files = {"model.json": b'{"x": 1}\n', "w.bin": rnd(3 * BLOCK + 5, 9)}
    src = make_tree(tmp_path / "src", files)
    cli(assetfs_bin, f"file://{root}/modelkit-assets", "push", str(src),
        "f/m")
    ng = servers("nginx", "--root", str(root),
                 name=f"nginx-mf-{time.monotonic_ns()}")
    return ng["url"], files


def test_mount_reads_exact_or_eio_under_faults(servers, origin,  # noqa
                                               mounter):
    url, files = origin
    fp = servers("fault", "--upstream", url, "--seed", "13", "--faults",
                 FAULTS, "--methods", "GET", "--stall-seconds", "20",
                 name=f"fault-mf-{time.monotonic_ns()}")
    m = mounter(fp["url"] + "/modelkit-assets", timeout=5, versions_ttl=60)
    w = files["w.bin"]
    path = m.mnt / "f/m/0.0/w.bin"
    rng = random.Random(1)
    ok = eio = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(150):
            off, n = rng.randrange(len(w)), rng.randint(1, 200_000)
            t0 = time.monotonic()
            try:
                got = os.pread(fd, n, off)
                assert got == w[off:off + n], (off, n)
                ok += 1
            except OSError as e:
                assert e.errno == errno.EIO
                eio += 1
            assert time.monotonic() - t0 < 5 + 3
    finally:
        os.close(fd)
    assert ok >= 140, (ok, eio)
    assert m.stats()["retries"] > 0
    assert m.stats()["digest_mismatches"] == 0


def test_flipped_bytes_never_served_nor_cached(servers, origin,  # noqa
                                               mounter, tmp_path):
    url, files = origin
    fp = servers("fault", "--upstream", url, "--seed", "3", "--faults",
                 "flip206=0.5", "--methods", "GET",
                 name=f"fault-flip-{time.monotonic_ns()}")
    cache = tmp_path / "cache-flip"
    m = mounter(fp["url"] + "/modelkit-assets", name="mflip",
                cache_dir=cache, timeout=5)
    w = files["w.bin"]
    for _ in range(6):
        try:
            assert read_all(m.mnt / "f/m/0.0/w.bin") == w
        except OSError as e:
            assert e.errno == errno.EIO  # refused, never wrong bytes
        time.sleep(0.3)  # let the failure memory pass
    assert m.stats()["digest_mismatches"] > 0
    m.unmount()
    # the same cache through a clean path: only good blocks were kept
    m2 = mounter(url + "/modelkit-assets", name="mclean", cache_dir=cache,
                 timeout=5)
    assert read_all(m2.mnt / "f/m/0.0/w.bin") == w
