"""systemd readiness (systemd/assetfs@.service is Type=notify): the daemon
sends READY=1 on $NOTIFY_SOCKET only once the mount answers, from the
process that serves (also when it daemonises), and STOPPING=1 when it
begins to unmount."""
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from helpers_mount import SANITIZER_MARKS, push, wait_for


@pytest.fixture
def notify_sock():
    """A datagram socket like systemd's: (socket, NOTIFY_SOCKET value)."""
    name = f"assetfs-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    yield s, "@" + name
    s.close()


def recv_state(s, timeout):
    """One notification: (text, sender pid). Fails after @timeout s."""
    s.settimeout(timeout)
    try:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        raise AssertionError(f"no notification within {timeout}s")
    pid = None
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", cdata[:12])[0]
    return data.decode(), pid


def stat_within(path, timeout):
    """`stat` in a child (a stuck FUSE request must not hang the test)."""
    try:
        p = subprocess.run(["stat", "-c", "%d %i", str(path)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return p.stdout.split() if p.returncode == 0 else None


def alive(pid):
    """Whether @pid runs (a zombie nobody reaped yet has exited)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cleanup(mnt, proc=None):
    subprocess.run(["fusermount3", "-u", "-z", str(mnt)],
                   capture_output=True)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def small_store(assetfs_bin, store, tmp_path):
    url, _ = store
    (tmp_path / "m.json").write_bytes(b"{}\n")
    push(assetfs_bin, url, tmp_path / "m.json", "team/m")
    return url


def test_ready_after_the_mount_answers_and_stopping_on_sigterm(
        assetfs_bin, small_store, notify_sock, tmp_path):
    s, addr = notify_sock
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    parent_dev = os.stat(tmp_path).st_dev
    env = dict(os.environ, NOTIFY_SOCKET=addr, ASSETFS_LOG="info")
    log = open(tmp_path / "mnt.log", "wb")
    proc = subprocess.Popen(
        [assetfs_bin, "mount", "-f", small_store, str(mnt), "-o",
         f"cache_dir={tmp_path / 'cache'}"], stdout=log, stderr=log,
        env=env)
    log.close()
    try:
        state, pid = recv_state(s, 15)
        # freeze the daemon the moment it says ready: the mount must
        # already have answered (its root attributes are in the kernel),
        # not merely be attached with FUSE_INIT still unanswered
        proc.send_signal(signal.SIGSTOP)
        try:
            assert state == "READY=1"
            assert pid == proc.pid
            got = stat_within(mnt, 3)
            assert got is not None, "the mount did not answer at READY=1"
            assert int(got[0]) != parent_dev and got[1] == "1"
        finally:
            proc.send_signal(signal.SIGCONT)
        assert os.listdir(mnt) == ["team"]
        proc.send_signal(signal.SIGTERM)
        state, pid = recv_state(s, 10)
        assert state == "STOPPING=1" and pid == proc.pid
        assert proc.wait(timeout=20) == 0
        assert not os.path.ismount(mnt)
        log = (tmp_path / "mnt.log").read_text(errors="replace")
        assert not any(mk in log for mk in SANITIZER_MARKS), log
    finally:
        cleanup(mnt, proc)


def test_daemonised_ready_comes_from_the_serving_process(
        assetfs_bin, small_store, notify_sock, tmp_path):
    s, addr = notify_sock
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, NOTIFY_SOCKET=addr)
    server_pid = None
    try:
        p = subprocess.run(
            [assetfs_bin, "mount", small_store, str(mnt), "-o",
             f"cache_dir={tmp_path / 'cache'}"], env=env,
            capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        # the parent returned only once the daemon said ready
        state, server_pid = recv_state(s, 1)
        assert state == "READY=1"
        assert os.path.ismount(mnt)
        assert os.listdir(mnt) == ["team"]
        # the sender is the daemon that serves, still alive
        cmd = open(f"/proc/{server_pid}/cmdline", "rb").read()
        assert b"assetfs" in cmd and b"mount" in cmd
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True,
                       timeout=20)
        state, pid = recv_state(s, 10)
        assert state == "STOPPING=1" and pid == server_pid
        wait_for(lambda: not alive(server_pid), 20, "the daemon to exit")
    finally:
        cleanup(mnt)
        if server_pid and alive(server_pid):
            try:
                os.kill(server_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
