"""The node daemon never breaks its readers (issue 12): a supervisor keeps
/dev/fuse, restarts a killed worker on the same connection (the kernel
resends what the dead one held), and `-o takeover` hands a live mount to a
new process. Real readers run through the mount meanwhile: a stream over a
300 MB file, four random readers on descriptors opened before the first
event, one with its cwd in a version dir, one with a 100 MB mmap; every
byte is checked, no read may fail, the mount stays one mount, and nothing
is left running afterwards."""
import ctypes
import errno
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import run
from helpers_mount import make_tree, mounter, push, wait_for  # noqa: F401
from helpers_remote import servers  # noqa: F401

MiB = 1 << 20
READER = pathlib.Path(__file__).with_name("takeover_reader.py")


def rnd(n, seed):
    r = random.Random(seed)
    return b"".join(r.randbytes(min(64 * MiB, n - i))
                    for i in range(0, n, 64 * MiB))


def mounts_at(mnt):
    """fuse.assetfs mounts at @mnt in /proc/self/mountinfo."""
    n = 0
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split()[4] == str(mnt) and \
                    right.split()[0] == "fuse.assetfs":
                n += 1
    return n


def procs_naming(mnt):
    """Live processes whose command line names @mnt (our daemons)."""
    out = []
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
            st = (p / "stat").read_text().split(") ")[-1].split()[0]
        except OSError:
            continue
        if str(mnt).encode() in cmd and st != "Z":
            out.append(int(p.name))
    return out


class MountWatch(threading.Thread):
    """Counts the assetfs mounts at a path every 10 ms."""

    def __init__(self, mnt):
        super().__init__(daemon=True)
        self.mnt, self.counts, self.stop = mnt, set(), threading.Event()
        self.start()

    def run(self):
        while not self.stop.is_set():
            self.counts.add(mounts_at(self.mnt))
            time.sleep(0.01)

    def finish(self):
        self.stop.set()
        self.join()
        return self.counts


def stats(assetfs_bin, mnt):
    p = run([assetfs_bin, "stats", "--json", str(mnt)], timeout=30)
    return json.loads(p.stdout)


def take_over(assetfs_bin, m, extra, env=None):
    """`assetfs mount -o takeover` (background: returns once it serves)."""
    opts = f"{m.optstr()},log={m.log},takeover"
    if extra:
        opts += "," + extra
    t0 = time.monotonic()
    p = run([assetfs_bin, "mount", m.url, str(m.mnt), "-o", opts],
            check=False, env=env, timeout=700)
    return p, time.monotonic() - t0


def kill_worker(assetfs_bin, m, sig):
    pid = stats(assetfs_bin, m.mnt)["pid"]
    os.kill(pid, sig)
    # the next answer comes from another worker
    wait_for(lambda: stats(assetfs_bin, m.mnt)["pid"] != pid, 10,
             "a new worker")


def start_reader(kind, path, src, stop, seed=1):
    p = subprocess.Popen([sys.executable, str(READER), kind, str(path),
                          str(src), str(stop), str(seed)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return p


def finish_readers(readers, stop):
    stop.write_text("stop")
    out = []
    for p in readers:
        o, e = p.communicate(timeout=120)
        assert p.returncode == 0, e
        out.append(json.loads(o.strip().splitlines()[-1]))
    return out


def worst_stall(results, t_event, window=5.0):
    """Longest reader operation in flight at @t_event or starting in the
    @window seconds after it."""
    worst = 0.0
    for r in results:
        for t0, dt in r["slow"]:
            if t0 <= t_event + window and t0 + dt >= t_event:
                worst = max(worst, dt)
    return worst


@pytest.fixture
def big_store(assetfs_bin, store, tmp_path):
    url, _ = store
    src = tmp_path / "src"
    src.mkdir()
    (src / "stream.bin").write_bytes(rnd(300 * MiB, 1))
    (src / "mapped.bin").write_bytes(rnd(100 * MiB, 2))
    files = {"model.json": b'{"w": [1, 2, 3]}\n', "weights.bin":
             rnd(6 * MiB + 17, 3), "sub/notes.txt": b"notes\n"}
    make_tree(src / "folder", files)
    push(assetfs_bin, url, src / "stream.bin", "data/stream")
    push(assetfs_bin, url, src / "mapped.bin", "data/mapped")
    push(assetfs_bin, url, src / "folder", "data/folder")
    return url, src


def test_readers_survive_takeovers_and_crashes(assetfs_bin, big_store,
                                               mounter, tmp_path):
    url, src = big_store
    m = mounter(url, readahead=16)
    mnt = m.mnt
    stop = tmp_path / "stop"
    watch = MountWatch(mnt)
    readers = [start_reader("stream", mnt / "data/stream/0.0",
                            src / "stream.bin", stop)]
    for i in range(4):
        f = ("data/stream/0.0", "stream.bin") if i % 2 else \
            ("data/mapped/0.0", "mapped.bin")
        readers.append(start_reader("random", mnt / f[0], src / f[1], stop,
                                    seed=10 + i))
    readers.append(start_reader("cwd", mnt / "data/folder/0.0",
                                src / "folder", stop))
    readers.append(start_reader("mmap", mnt / "data/mapped/0.0",
                                src / "mapped.bin", stop))
    option_sets = ["readahead=8,threads=8,timeout=20",
                   "readahead=32,threads=16,versions_ttl=30"]
    events = []
    takeovers = kills = 0
    plan = ["takeover", "kill"] * 5 + ["segv"]
    try:
        time.sleep(1.0)
        for what in plan:
            t = time.monotonic()
            if what == "takeover":
                old = stats(assetfs_bin, mnt)
                p, took = take_over(assetfs_bin, m,
                                    option_sets[takeovers % 2])
                assert p.returncode == 0, (p.stderr, m.read_log()[-3000:])
                new = stats(assetfs_bin, mnt)
                assert new["supervisor_pid"] != old["supervisor_pid"]
                takeovers += 1
            else:
                kill_worker(assetfs_bin, m, signal.SIGKILL if what == "kill"
                            else signal.SIGSEGV)
                kills += 1
            events.append((what, t))
            time.sleep(1.0)
        final = stats(assetfs_bin, mnt)
    finally:
        results = finish_readers(readers, stop)
        counts = watch.finish()
    for what, t in events:
        print(f"{what}: longest reader stall {worst_stall(results, t):.3f} s")
    for r in results:
        assert r["failures"] == [], r
        assert r["wrong"] == 0, r
        assert r["ino_changes"] == 0, r
        assert r["ops"] > 10, r
    assert counts == {1}, f"mounts at {mnt} seen: {counts}"
    assert final["takeovers"] == 5 and final["worker_restarts"] == 6, final
    assert final["version"]
    m.unmount()
    wait_for(lambda: not procs_naming(mnt), 10, "no assetfs left running")
    assert "ENOTCONN" not in m.read_log()


def test_incompatible_takeover_is_refused_and_old_keeps_serving(
        assetfs_bin, store, mounter, tmp_path):
    url, _ = store
    data = rnd(3 * MiB, 5)
    (tmp_path / "f.bin").write_bytes(data)
    push(assetfs_bin, url, tmp_path / "f.bin", "a/f")
    m = mounter(url)
    before = stats(assetfs_bin, m.mnt)
    with open(m.mnt / "a/f/0.0", "rb") as f:
        p, _ = take_over(assetfs_bin, m, "",
                         env={"ASSETFS_TEST_HANDOVER_VERSION": "999"})
        assert p.returncode == 1
        err = p.stderr.decode()
        assert "hand-over version 1, this one 999" in err, err
        assert "keeps serving" in err
        assert len(err.strip().splitlines()) == 1, err
        assert f.read() == data  # the descriptor opened before still reads
    after = stats(assetfs_bin, m.mnt)
    assert after["pid"] == before["pid"]
    assert after["supervisor_pid"] == before["supervisor_pid"]
    assert after["takeovers"] == 0
    assert mounts_at(m.mnt) == 1
    assert "refused" in m.read_log()


def test_takeover_without_a_daemon_mounts(assetfs_bin, store, tmp_path):
    url, _ = store
    (tmp_path / "f.bin").write_bytes(b"x" * 1000)
    push(assetfs_bin, url, tmp_path / "f.bin", "a/f")
    mnt = tmp_path / "m"
    mnt.mkdir()
    run([assetfs_bin, "mount", url, str(mnt), "-o",
         f"cache_dir={tmp_path / 'c'},takeover"], timeout=30)
    try:
        assert (mnt / "a/f/0.0").read_bytes() == b"x" * 1000
        assert stats(assetfs_bin, mnt)["takeovers"] == 0
        # a second plain mount on a live one is refused, not stacked
        p = run([assetfs_bin, "mount", url, str(mnt), "-o",
                 f"cache_dir={tmp_path / 'c'}"], check=False, timeout=30)
        assert p.returncode == 1 and b"-o takeover" in p.stderr
        assert mounts_at(mnt) == 1
    finally:
        run(["fusermount3", "-u", str(mnt)], check=False)
    wait_for(lambda: not procs_naming(mnt), 10, "the daemon to exit")


def test_a_dead_daemons_mount_is_detached_by_the_next(assetfs_bin, store,
                                                      mounter):
    """kill -9 of the supervisor leaves a dead mount (ENOTCONN or, on newer
    kernels, ECONNABORTED); the next
    `assetfs mount` there detaches it and mounts (the systemd unit has no
    fusermount3 step of its own any more)."""
    url, _ = store
    m = mounter(url)
    # at once: the daemon's start-up check of its mount may be in flight
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    with pytest.raises(OSError) as e:
        os.statvfs(m.mnt)
    assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    assert mounts_at(m.mnt) == 1
    m.proc = None
    m.start()  # (the dead mount, still there at first, looks mounted)

    def lists():
        try:
            return os.listdir(m.mnt) == []
        except OSError:
            return False
    wait_for(lists, 15, "the new mount to answer")
    assert mounts_at(m.mnt) == 1
    assert "is a dead assetfs mount (its daemon is gone): detaching it" in \
        m.read_log()


def proc_state(pid):
    """The state letter of process @pid, or None once it is gone."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text() \
            .split(") ")[-1].split()[0]
    except OSError:
        return None


def in_d_state(pid):
    """Whether a thread of process @pid waits uninterruptibly (D)."""
    try:
        tasks = list(pathlib.Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for t in tasks:
        try:
            if (t / "stat").read_text().split(") ")[-1].split()[0] == "D":
                return True
        except OSError:
            pass
    return False


def abort_mount(mnt):
    """umount2(MNT_FORCE): the kernel aborts the FUSE connection (root
    only), freeing whatever waits on it; then detach the dead mount."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(str(mnt).encode(), 1)  # MNT_FORCE
    libc.umount2(str(mnt).encode(), 2)  # MNT_DETACH


def test_worker_killed_during_its_start_check_is_replaced(
        assetfs_bin, store, mounter, tmp_path):
    """kill -9 of the worker while the daemon's check that its mount
    answers (a stat of the mountpoint) is in flight: the test hook holds
    that very request in the worker until it is killed. No process of the
    daemon may be the one waiting on its own mount: the worker dies, the
    supervisor sees it, a new worker answers the resent request, and the
    mount serves."""
    url, _ = store
    data = rnd(5 * MiB + 3, 11)
    (tmp_path / "f.bin").write_bytes(data)
    push(assetfs_bin, url, tmp_path / "f.bin", "a/f")
    # nothing but the daemon's own check may stat the new mount first
    m = mounter(url, env={"ASSETFS_TEST_HOLD_OWN_GETATTR_MS": "600000"},
                start=False).start(wait=False)
    held = "test hook: holding the GETATTR of the root from pid "
    line = wait_for(lambda: next((ln for ln in m.read_log().splitlines()
                                  if held in ln), None), 15,
                    "the start-up check to be held")
    worker = int(line.rsplit("worker pid ", 1)[1].split()[0])
    # the check is in flight: the daemon has not said it serves yet
    assert "serving, supervisor pid" not in m.read_log()
    os.kill(worker, signal.SIGKILL)
    try:
        wait_for(lambda: proc_state(worker) is None, 10,
                 f"the killed worker {worker} to be gone")
        wait_for(lambda: "serving, supervisor pid" in m.read_log(), 10,
                 "the daemon to serve with a new worker")
    except AssertionError:
        if proc_state(worker) is not None:
            held = in_d_state(worker)
            abort_mount(m.mnt)  # or the mount hangs past the test
            assert not held, f"the killed worker {worker} hangs in D " \
                "state, waiting on its own mount"
        raise
    log = m.read_log()
    assert "died of signal 9" in log, log
    assert (m.mnt / "a/f/0.0").read_bytes() == data
    s = stats(assetfs_bin, m.mnt)
    assert s["pid"] != worker and s["worker_restarts"] == 1, s
    assert mounts_at(m.mnt) == 1
    stuck = [p for p in procs_naming(m.mnt) if in_d_state(p)]
    assert stuck == [], f"processes in D state: {stuck}"
    # the supervisor and its worker, nothing else of ours
    assert len(procs_naming(m.mnt)) == 2, procs_naming(m.mnt)
    m.unmount()
    wait_for(lambda: not procs_naming(m.mnt), 10, "no assetfs left running")


def test_a_start_check_that_gets_no_answer_is_bounded(
        assetfs_bin, store, mounter, tmp_path):
    """The daemon's check that its mount answers gets no answer (held in
    the worker): past its limit (shortened by a test hook) the daemon
    says it serves all the same and kills the check, whose process is
    reaped once the request is answered (here by the next worker after
    a kill -9); its supervisor never waits for it."""
    url, _ = store
    data = rnd(2 * MiB + 5, 12)
    (tmp_path / "f.bin").write_bytes(data)
    push(assetfs_bin, url, tmp_path / "f.bin", "a/f")
    m = mounter(url, env={"ASSETFS_TEST_HOLD_OWN_GETATTR_MS": "600000",
                          "ASSETFS_TEST_PROBE_LIMIT_MS": "1000"},
                start=False).start(wait=False)
    wait_for(lambda: "did not answer a stat in 1000 ms; reporting ready "
             "anyway" in m.read_log(), 15, "the check to be given up on")
    assert "serving, supervisor pid" in m.read_log()
    # the other threads serve on
    assert (m.mnt / "a/f/0.0").read_bytes() == data
    line = next(ln for ln in m.read_log().splitlines()
                if "test hook: holding the GETATTR" in ln)
    worker = int(line.rsplit("worker pid ", 1)[1].split()[0])
    prober = int(line.split(" from pid ", 1)[1].split()[0])
    assert proc_state(prober) is not None  # killed, still waiting
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: proc_state(prober) is None, 10,
             "the killed check to be reaped")
    assert (m.mnt / "a/f/0.0").read_bytes() == data
    s = stats(assetfs_bin, m.mnt)
    assert s["pid"] != worker and s["worker_restarts"] == 1, s
    assert len(procs_naming(m.mnt)) == 2, procs_naming(m.mnt)
    assert mounts_at(m.mnt) == 1
    m.unmount()
    wait_for(lambda: not procs_naming(m.mnt), 10, "no assetfs left running")


@pytest.fixture
def slow_store(servers, assetfs_bin, tmp_path):  # noqa: F811
    """A store behind the fault proxy whose block reads (ranged GETs)
    each wait 3 s: (url, bytes of asset s/f version 0.0)."""
    root = tmp_path / "www"
    (root / "modelkit-assets").mkdir(parents=True)
    data = rnd(3 * 4 * MiB, 7)
    (tmp_path / "f.bin").write_bytes(data)
    push(assetfs_bin, f"file://{root}/modelkit-assets", tmp_path / "f.bin",
         "s/f")
    ng = servers("nginx", "--root", str(root),
                 name=f"nginx-tk-{time.monotonic_ns()}")
    fp = servers("fault", "--upstream", ng["url"], "--faults", "delay=1.0",
                 "--methods", "GET", "--delay-seconds", "3",
                 name=f"fault-tk-{time.monotonic_ns()}")
    return fp["url"] + "/modelkit-assets", data


def held_read(path, off, n):
    """A pread of the mount in a thread: (thread, result dict)."""
    res = {}

    def go():
        fd = os.open(path, os.O_RDONLY)
        try:
            res["got"] = os.pread(fd, n, off)
        except OSError as e:
            res["err"] = e
        res["t"] = time.monotonic()
        os.close(fd)
    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th, res


def test_takeover_waits_for_what_a_slow_store_holds(assetfs_bin, slow_store,
                                                    mounter):
    url, data = slow_store
    m = mounter(url, readahead=1)
    th, res = held_read(m.mnt / "s/f/0.0", 0, MiB)
    time.sleep(1.0)  # the worker now holds the read, the store has 2 s to go
    t0 = time.monotonic()
    p, took = take_over(assetfs_bin, m, "")
    assert p.returncode == 0, p.stderr
    th.join(30)
    assert res.get("got") == data[:MiB], res.get("err")
    # the old worker answered it (from the slow store) before handing over
    assert res["t"] <= t0 + took
    assert took > 1.0, took
    log = m.read_log()
    assert "drained: no request held" in log
    s = stats(assetfs_bin, m.mnt)
    assert s["takeovers"] == 1 and s["resent_requests"] == 0


def test_a_read_held_by_a_killed_worker_is_resent(assetfs_bin, slow_store,
                                                  mounter):
    url, data = slow_store
    m = mounter(url, readahead=1)
    pid = stats(assetfs_bin, m.mnt)["pid"]
    th, res = held_read(m.mnt / "s/f/0.0", 4 * MiB, MiB)
    time.sleep(1.0)  # held by the worker, waiting for the store
    os.kill(pid, signal.SIGKILL)
    th.join(30)
    assert res.get("got") == data[4 * MiB:5 * MiB], res.get("err")
    s = stats(assetfs_bin, m.mnt)
    assert s["pid"] != pid and s["worker_restarts"] == 1
    assert s["resent_requests"] >= 1, s
    assert "died of signal 9" in m.read_log()
