"""Offline (DESIGN §4): with the store gone (for file://, its directory
moved aside), cached assets stay browsable and readable, uncached reads
fail with EIO at once with one log line saying why, and the same holds
after the daemon restarts while the store is still away."""
import errno
import os
import random
import time

import pytest

from helpers_mount import mounter, push, read_all  # noqa

MiB = 1 << 20


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


@pytest.fixture
def offline_setup(assetfs_bin, store, tmp_path):
    url, sd = store
    a = rnd(6 * MiB, 1)
    b = rnd(5 * MiB, 2)
    (tmp_path / "a.bin").write_bytes(a)
    (tmp_path / "b").mkdir()
    (tmp_path / "b/model.bin").write_bytes(b)
    push(assetfs_bin, url, tmp_path / "a.bin", "team/cached")
    push(assetfs_bin, url, tmp_path / "a.bin", "team/cached")
    push(assetfs_bin, url, tmp_path / "b", "team/uncached")
    return url, sd, a, b


def check_offline_tree(m, a, timeout_s):
    mnt = m.mnt
    assert sorted(os.listdir(mnt)) == ["team"]
    assert sorted(os.listdir(mnt / "team")) == ["cached", "uncached"]
    assert sorted(os.listdir(mnt / "team/cached")) == \
        ["0.0", "0.1", "0.latest", "latest"]
    assert os.readlink(mnt / "team/cached/latest") == "0.1"
    assert read_all(mnt / "team/cached/latest") == a
    assert read_all(mnt / "team/cached/0.1") == a
    assert sorted(os.listdir(mnt / "team/uncached/0.0")) == ["model.bin"]
    assert os.stat(mnt / "team/uncached/0.0/model.bin").st_size == 5 * MiB
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        read_all(mnt / "team/uncached/0.0/model.bin")
    assert e.value.errno == errno.EIO
    assert time.monotonic() - t0 < timeout_s + 1
    log = m.read_log()
    lines = [ln for ln in log.splitlines()
             if "uncached/0.0/model.bin" in ln and "failed" in ln]
    assert len(lines) == 1, log
    assert "missing" in lines[0] or "unreachable" in lines[0] or \
        "No such" in lines[0], lines[0]
    assert "EIO" in lines[0]


def test_offline_serves_cached_and_fails_uncached(offline_setup, mounter,
                                                  tmp_path):
    url, sd, a, b = offline_setup
    cache_dir = tmp_path / "cache"
    m = mounter(url, cache_dir=cache_dir, versions_ttl=1, timeout=5)
    # browse everything, read only team/cached
    assert read_all(m.mnt / "team/cached/latest") == a
    assert read_all(m.mnt / "team/cached/0.0") == a
    assert sorted(os.listdir(m.mnt / "team/uncached/0.0")) == ["model.bin"]
    away = sd.parent / "moved-away"
    os.rename(sd, away)
    try:
        time.sleep(1.2)  # past versions_ttl: lists are re-read and fail
        check_offline_tree(m, a, 5)
        assert "unreachable" in m.read_log()
        assert m.stats()["errors"] >= 1
    finally:
        os.rename(away, sd)
    # back online: the uncached file reads (after the failure memory)
    time.sleep(3.5)
    assert read_all(m.mnt / "team/uncached/0.0/model.bin") == b


def test_offline_after_restart(offline_setup, mounter, tmp_path):
    url, sd, a, b = offline_setup
    cache_dir = tmp_path / "cache"
    m = mounter(url, cache_dir=cache_dir, versions_ttl=1, timeout=5)
    # browsed once while online
    assert os.listdir(m.mnt) == ["team"]
    assert sorted(os.listdir(m.mnt / "team")) == ["cached", "uncached"]
    assert read_all(m.mnt / "team/cached/latest") == a
    assert read_all(m.mnt / "team/cached/0.0") == a
    assert sorted(os.listdir(m.mnt / "team/uncached/0.0")) == ["model.bin"]
    m.unmount()
    away = sd.parent / "moved-away"
    os.rename(sd, away)
    try:
        m2 = mounter(url, name="mnt2", cache_dir=cache_dir, versions_ttl=1,
                     timeout=5)
        check_offline_tree(m2, a, 5)
        assert m2.stats()["bytes_fetched"] == 0
        assert m2.stats()["offline_serves"] > 0
    finally:
        os.rename(away, sd)


def test_offline_after_restart_lists_what_was_only_opened(offline_setup,
                                                         mounter, tmp_path):
    """The root, never listed online (an asset was opened by path, as a
    model server does), still lists offline after a restart: from the
    version lists the cache kept."""
    url, sd, a, b = offline_setup
    cache_dir = tmp_path / "cache"
    m = mounter(url, cache_dir=cache_dir, versions_ttl=1, timeout=5)
    assert read_all(m.mnt / "team/cached/0.0") == a  # no listing at all
    m.unmount()
    away = sd.parent / "moved-away"
    os.rename(sd, away)
    try:
        m2 = mounter(url, name="mnt2", cache_dir=cache_dir, versions_ttl=1,
                     timeout=5)
        assert os.listdir(m2.mnt) == ["team"]
        assert "cached" in os.listdir(m2.mnt / "team")
        assert "0.0" in os.listdir(m2.mnt / "team/cached")
        assert read_all(m2.mnt / "team/cached/0.0") == a
        assert m2.stats()["bytes_fetched"] == 0
    finally:
        os.rename(away, sd)


def test_unanswering_store_fails_within_timeout(mounter, tmp_path):
    """A store that accepts connections and never answers: a lookup fails
    with EIO after about `timeout`, not later, and the next one fails at
    once (the store is remembered as unreachable)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        # timeout=5 keeps "within the timeout" and "at once" (the failure
        # is remembered) apart even on a loaded machine.
        m = mounter(f"http://127.0.0.1:{port}/modelkit-assets", timeout=5)
        t0 = time.monotonic()
        with pytest.raises(OSError) as e:
            os.stat(m.mnt / "team/model/latest")
        took = time.monotonic() - t0
        assert e.value.errno == errno.EIO
        assert took < 5 + 3, f"took {took:.1f}s with timeout=5"
        t0 = time.monotonic()
        with pytest.raises(OSError) as e:
            os.stat(m.mnt / "team/other/latest")
        assert e.value.errno == errno.EIO
        took = time.monotonic() - t0
        assert took < 2.5, f"a remembered failure took {took:.1f}s"
        assert "unreachable" in m.read_log()
    finally:
        stop.set()
        t.join()
        for c in conns:
            c.close()
        srv.close()


def test_offline_listing_agrees_with_aliases(assetfs_bin, store, mounter,
                                             tmp_path):
    """Only 1.0 was read while online (its asset dir never listed): offline,
    the asset dir still lists every version the store last named and the
    aliases it implies; a version whose .meta was never fetched fails EIO
    on lookup with one log line, and no alias names a hidden entry."""
    url, sd = store
    data = {}
    for i, v in enumerate(["0.0", "0.1", "1.0"]):
        d = tmp_path / f"src{i}"
        d.mkdir()
        data[v] = rnd(1000 + i, 10 + i)
        (d / "model.json").write_bytes(data[v])
        push(assetfs_bin, url, d, "demo/iris", bump_major=(v == "1.0"))
    m = mounter(url, cache_dir=tmp_path / "cache", versions_ttl=1,
                timeout=5)
    assert read_all(m.mnt / "demo/iris/1.0/model.json") == data["1.0"]
    away = sd.parent / "moved-away"
    os.rename(sd, away)
    try:
        time.sleep(1.5)  # past versions_ttl: the list is re-read and fails
        names = sorted(os.listdir(m.mnt / "demo/iris"))
        assert names == ["0.0", "0.1", "0.latest", "1.0", "1.latest",
                         "latest"]
        # every alias names an entry the listing shows
        for al in ("0.latest", "1.latest", "latest"):
            assert os.readlink(m.mnt / "demo/iris" / al) in names
        assert os.readlink(m.mnt / "demo/iris/0.latest") == "0.1"
        assert os.readlink(m.mnt / "demo/iris/latest") == "1.0"
        # the cached version reads, through its alias too
        assert read_all(m.mnt / "demo/iris/latest/model.json") == \
            data["1.0"]
        # listing with attributes (readdirplus) shows the same names
        with os.scandir(m.mnt / "demo/iris") as it:
            assert sorted(e.name for e in it) == names
        # the uncached version: EIO at lookup, at once, one log line
        t0 = time.monotonic()
        with pytest.raises(OSError) as e:
            os.listdir(m.mnt / "demo/iris/0.latest/")
        assert e.value.errno == errno.EIO
        assert time.monotonic() - t0 < 5
        log = m.read_log()
        lines = [ln for ln in log.splitlines()
                 if "demo/iris:0.1" in ln and "EIO" in ln]
        assert len(lines) == 1, log
        with pytest.raises(OSError) as e:
            os.stat(m.mnt / "demo/iris/0.0")
        assert e.value.errno == errno.EIO
    finally:
        os.rename(away, sd)
