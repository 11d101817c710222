"""The store's state and stale-while-revalidate (issue 11, defect 3),
over http with a real nginx that is stopped and started again:

- a known asset dir lists at once after its TTL with the store down
  (the list is served as it is and refreshed in the background);
- once a request found the store unreachable, the store is `offline`
  (`assetfs stats`: store_state, store_state_since; Prometheus: the
  gauges) and an uncached read fails with EIO within 1 s;
- `ls -lR` of a cached tree with the store down costs at most about what
  it costs online and warm (the ratio is printed);
- the store back: the probe notices and reads fetch again, within its
  interval.
"""
import errno
import os
import random
import subprocess
import time

import pytest

from helpers_mount import mounter, push, read_all, wait_for  # noqa: F401
from helpers_remote import (sanitized_build, servers,  # noqa: F401
                            start_server, stop_server)

MiB = 1 << 20
SLACK = 4 if sanitized_build() else 1


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


def walk(top):
    """`ls -lR`: every name listed and lstat'ed; returns the count."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.lstat(os.path.join(dirpath, name))
            n += 1
    return n


def timed(fn):
    t0 = time.monotonic()
    v = fn()
    return v, time.monotonic() - t0


@pytest.fixture
def store(assetfs_bin, servers, tmp_path):  # noqa: F811
    root = tmp_path / "www"
    sd = root / "store"
    sd.mkdir(parents=True)
    a, b = rnd(3 * MiB, 1), rnd(5 * MiB, 2)
    (tmp_path / "a.bin").write_bytes(a)
    (tmp_path / "b").mkdir()
    (tmp_path / "b/model.bin").write_bytes(b)
    url = f"file://{sd}"
    push(assetfs_bin, url, tmp_path / "a.bin", "team/cached")
    push(assetfs_bin, url, tmp_path / "a.bin", "team/cached")
    push(assetfs_bin, url, tmp_path / "b", "team/uncached")
    for i in range(6):  # a small tree for ls -lR
        d = tmp_path / f"t{i}"
        (d / "sub").mkdir(parents=True)
        (d / "model.json").write_bytes(rnd(100 + i, 10 + i))
        (d / "sub/w.bin").write_bytes(rnd(1000 + i, 20 + i))
        push(assetfs_bin, url, d, f"tree/m{i}")
    subprocess.run([assetfs_bin, "index", "--store", url], check=True,
                   capture_output=True, timeout=60)
    ng = servers("nginx", "--root", str(root), name="nginx-state")
    return {"url": ng["url"] + "/store", "port": ng["port"], "root": root,
            "dir": ng["dir"], "a": a, "b": b}


def test_offline_answers_at_local_speed(store, mounter, assetfs_bin):  # noqa
    m = mounter(store["url"], versions_ttl=1, timeout=5)
    mnt = m.mnt
    assert read_all(mnt / "team/cached/latest") == store["a"]
    assert sorted(os.listdir(mnt / "team/uncached/0.0")) == ["model.bin"]
    assert m.stats()["store_state"] == "online"
    walk(mnt)  # cold: fetches every list and .meta
    time.sleep(1.2)  # past the TTL: the next walk refreshes (SWR)
    n_on, t_on = timed(lambda: walk(mnt))  # online and warm
    listing = sorted(os.listdir(mnt / "team/cached"))
    assert listing == ["0.0", "0.1", "0.latest", "latest"]

    stop_server("nginx", store["dir"])
    try:
        time.sleep(1.2)  # past the TTL
        # a known asset dir: at once, as it was
        names, t = timed(lambda: sorted(os.listdir(mnt / "team/cached")))
        print(f"ls of a known asset dir after its TTL, store down: "
              f"{t * 1000:.1f} ms")
        assert names == listing
        assert t < 0.2 * SLACK
        assert os.readlink(mnt / "team/cached/latest") == "0.1"

        # the first uncached read finds the store down (bounded by
        # `timeout`), then the store is offline and reads fail at once
        with pytest.raises(OSError) as e:
            read_all(mnt / "team/uncached/0.0/model.bin")
        assert e.value.errno == errno.EIO
        wait_for(lambda: m.stats()["store_state"] == "offline", 10,
                 "store_state offline")
        st = m.stats()
        assert abs(st["store_state_since"] - time.time()) < 60
        assert st["store_offline"] == 1
        for _ in range(3):
            with pytest.raises(OSError) as e:
                t0 = time.monotonic()
                with open(mnt / "team/uncached/0.0/model.bin", "rb") as f:
                    f.seek(3 * MiB)  # a block not tried before
                    f.read(4096)
            t = time.monotonic() - t0
            assert e.value.errno == errno.EIO
            assert t < 1.0 * SLACK, f"uncached read failed after {t:.2f} s"
        # cached bytes still read
        assert read_all(mnt / "team/cached/0.0") == store["a"]

        # ls -lR of the cached tree: about what it costs online
        n_off, t_off = timed(lambda: walk(mnt))
        ratio = t_off / max(t_on, 1e-3)
        print(f"ls -lR: online warm {t_on * 1000:.1f} ms, store down "
              f"{t_off * 1000:.1f} ms, ratio {ratio:.2f} "
              f"({n_on} names)")
        assert n_off == n_on
        assert t_off < 2 * t_on + 0.5 * SLACK
        assert "unreachable" in m.read_log()
    finally:
        start_server("nginx", store["dir"], "--root", str(store["root"]),
                     "--port", str(store["port"]))

    # the store back: the probe sees it, and reads fetch again
    t0 = time.monotonic()

    def back():
        try:
            return read_all(mnt / "team/uncached/0.0/model.bin")
        except OSError:
            return None
    data = wait_for(back, 15, "a read after the store came back",
                    interval=0.2)
    print(f"store back: a read succeeded after "
          f"{time.monotonic() - t0:.1f} s")
    assert data == store["b"]
    st = m.stats()
    assert st["store_state"] == "online"
    assert st["store_offline"] == 0
    assert "answers again" in m.read_log()
