"""The systemd units pass `systemd-analyze verify`, and order the server
after the mount it reads (and so stop it before the mount goes).

The mount unit under a real systemd (issue 12): systemd 252 as PID 1 in a
podman container (the image scripts/image builds with
ASSETFS_IMAGE_SYSTEMD=1, cached), the unit from systemd/, the binaries of
the image, a file:// store bind-mounted in. Readers inside (a descriptor
opened before, a cwd in a version dir, an mmap) read through three
`systemctl restart`s and a reload: no read fails, every byte is the source's, one
mount, a new main pid each time; `systemctl stop` unmounts and `start`
mounts again. A state the new daemon cannot read is said and a fresh
mount replaces the old one."""
import configparser
import json
import os
import pathlib
import random
import shutil
import subprocess
import time

import pytest

from helpers_mount import push, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze not installed")


def unit(name):
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(UNITS / name)
    return cp


def test_units_verify(tmp_path, assetfs_bin, server_bin):
    # Instantiate the templates as systemd would, pointing ExecStart at the
    # binaries just built (verify checks that executables exist).
    for name in ("assetfs@.service", "assetfs-server@.service"):
        text = (UNITS / name).read_text()
        text = text.replace("/usr/local/bin/assetfs-server", server_bin)
        text = text.replace("/usr/local/bin/assetfs", assetfs_bin)
        (tmp_path / name.replace("@.", "@assets.")).write_text(text)
    p = subprocess.run(
        ["systemd-analyze", "verify", "--man=no",
         str(tmp_path / "assetfs@assets.service"),
         str(tmp_path / "assetfs-server@assets.service")],
        capture_output=True, text=True, timeout=60)
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 0 and out == "", out


def test_mount_unit_reports_readiness_and_unmounts():
    u = unit("assetfs@.service")
    svc = u["Service"]
    assert svc["Type"] == "notify"
    assert "assetfs mount" in svc["ExecStart"] and " -f" in svc["ExecStart"]
    assert svc["Restart"] == "on-failure"
    # stop, restart: the daemon decides (SIGTERM to it alone); nothing in
    # the unit may detach the connection a restart keeps in the fd store
    assert svc["KillMode"] == "mixed"
    assert int(svc["FileDescriptorStoreMax"]) >= 2
    for key in ("ExecStop", "ExecStopPost", "ExecStartPre"):
        assert "fusermount" not in svc.get(key, ""), key


def test_server_starts_after_and_stops_before_the_mount():
    u = unit("assetfs-server@.service")
    assert "assetfs@%i.service" in u["Unit"]["After"]
    assert "assetfs@%i.service" in u["Unit"]["Requires"]
    assert "--assets-dir" in u["Service"]["ExecStart"]


def test_reload_upgrades_in_place_by_takeover():
    """`systemctl reload` runs a takeover in the background mode (it
    returns once the new daemon serves); the new supervisor announces
    itself as the main process, which systemd accepts with
    NotifyAccess=all."""
    svc = unit("assetfs@.service")["Service"]
    reload = svc["ExecReload"]
    assert "assetfs mount" in reload and " -f" not in reload
    assert "-o takeover," in reload
    assert svc["NotifyAccess"] == "all"


# ---- the unit under systemd, in podman ----

PODMAN = ["podman", "--runtime", "runc"]
SD_IMAGE = os.environ.get("ASSETFS_SYSTEMD_IMAGE",
                          "localhost/assetfs-systemd:test")
READER = pathlib.Path(__file__).with_name("takeover_reader.py")
# This host's hard RLIMIT_NOFILE is below the unit's 65536, and a container
# cannot raise it: the container gets 16384 and the unit a drop-in to match.
NOFILE = 16384


def podman(*args, check=True, timeout=120):
    p = subprocess.run([*PODMAN, *args], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:4])}... exited "
                             f"{p.returncode}: {p.stdout[-2000:]}"
                             f"{p.stderr[-2000:]}")
    return p


class Box:
    """A container booted with systemd as PID 1."""

    def __init__(self, name, tmp):
        self.name = name
        self.tmp = tmp

    def sh(self, cmd, check=True, timeout=120):
        return podman("exec", self.name, "sh", "-c", cmd, check=check,
                      timeout=timeout)

    def journal(self):
        return self.sh("journalctl -u assetfs@assets --no-pager -o cat",
                       check=False).stdout

    def mounts(self):
        """fuse.assetfs mounts at /assets in the container."""
        out = self.sh("cat /proc/self/mountinfo").stdout
        return sum(1 for line in out.splitlines()
                   if line.split(" - ")[0].split()[4] == "/assets" and
                   line.split(" - ")[1].split()[0] == "fuse.assetfs")

    def main_pid(self):
        return int(self.sh("systemctl show -p MainPID --value "
                           "assetfs@assets").stdout)

    def stats(self):
        return json.loads(self.sh("assetfs stats --json /assets",
                                  timeout=30).stdout)

    def reader(self, kind, path, src, stop):
        p = subprocess.Popen([*PODMAN, "exec", self.name, "python3",
                              "/t/reader.py", kind, path, src, stop],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        line = p.stdout.readline()
        assert line.strip() == "ready", (line, p.stderr.read())
        return p


@pytest.fixture(scope="module")
def sd_image():
    if os.geteuid() != 0:
        pytest.skip("systemd in podman needs root (privileged podman)")
    if shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("podman or runc not installed (scripts/setup)")
    env = dict(os.environ, ASSETFS_IMAGE=SD_IMAGE, ASSETFS_IMAGE_SYSTEMD="1")
    p = subprocess.run([str(ROOT / "scripts" / "image")], env=env,
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, f"scripts/image failed:\n{p.stderr[-4000:]}"
    return SD_IMAGE


@pytest.fixture
def box(sd_image, tmp_path, assetfs_bin):
    tmp_path.chmod(0o755)
    store = tmp_path / "store" / "modelkit-assets"
    store.mkdir(parents=True)
    src = tmp_path / "t" / "src"
    src.mkdir(parents=True)
    r = random.Random(12)
    (src / "weights.bin").write_bytes(r.randbytes((3 << 20) + 11))
    (src / "model.json").write_bytes(b'{"w": [1, 2, 3]}\n')
    push(assetfs_bin, f"file://{store}", src, "m/a")
    shutil.copy(READER, tmp_path / "t" / "reader.py")
    conf = tmp_path / "assets.conf"
    conf.write_text(f"STORE=file://{store}\nMOUNTPOINT=/assets\n"
                    # the root's attributes expire at once: nothing may
                    # stat the kept mount before the new daemon serves it
                    "OPTIONS=cache_dir=/var/cache/assetfs,versions_ttl=1\n")
    dropin = tmp_path / "dropin"
    dropin.mkdir()
    (dropin / "nofile.conf").write_text(
        f"[Service]\nLimitNOFILE={NOFILE}\nEnvironment=ASSETFS_LOG=info\n")
    name = f"assetfs-sd-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    unit = ROOT / "systemd" / "assetfs@.service"
    p = podman("run", "-d", "--name", name, "--systemd=always",
               "--privileged", "--device", "/dev/fuse", "--network", "none",
               "--ulimit", f"nofile={NOFILE}:{NOFILE}",
               "--ulimit", "nproc=4096:4096",
               "-v", f"{store}:{store}:ro",
               "-v", f"{tmp_path / 't'}:/t",
               "-v", f"{conf}:/etc/assetfs/assets.conf:ro",
               "-v", f"{unit}:/etc/systemd/system/assetfs@.service:ro",
               "-v", f"{dropin}:/etc/systemd/system/assetfs@.service.d:ro",
               sd_image, "/sbin/init", check=False)
    if p.returncode != 0:
        pytest.skip(f"podman cannot start a systemd container here: "
                    f"{p.stderr.strip()[-500:]}")
    b = Box(name, tmp_path)
    try:
        state = ""
        end = time.monotonic() + 60
        while time.monotonic() < end and state not in ("running",
                                                       "degraded"):
            time.sleep(0.2)
            state = b.sh("systemctl is-system-running", check=False,
                         timeout=30).stdout.strip()
        if state not in ("running", "degraded"):
            logs = podman("logs", name, check=False)
            pytest.skip(f"systemd did not boot in podman (state "
                        f"'{state}'): {(logs.stdout + logs.stderr)[-800:]}")
        b.sh("systemctl start assetfs@assets", timeout=90)
        yield b
    finally:
        podman("rm", "-f", "-t", "0", name, check=False, timeout=60)


def test_restart_keeps_the_mount_and_stop_unmounts(box):
    """Three `systemctl restart`s (and a reload) under readers: no failed
    read."""
    fpath = "/assets/m/a/0.0/weights.bin"
    assert box.mounts() == 1
    assert box.sh(f"cmp {fpath} /t/src/weights.bin").returncode == 0
    stop = "/t/stop"
    readers = [box.reader("random", fpath, "/t/src/weights.bin", stop),
               box.reader("cwd", "/assets/m/a/0.0", "/t/src", stop),
               box.reader("mmap", fpath, "/t/src/weights.bin", stop)]
    pids = [box.main_pid()]
    try:
        # a reload (takeover) between: both ways of upgrading still work
        # one after the other
        for what in ("restart", "restart", "reload", "restart"):
            time.sleep(1.5)  # past versions_ttl: the root's attributes
            box.sh(f"systemctl {what} assetfs@assets", timeout=90)
            if what == "reload":
                wait_for(lambda: box.main_pid() != pids[-1], 10,
                         "the reload's new main pid")
            pids.append(box.main_pid())
            st = box.stats()
            assert st["supervisor_pid"] == pids[-1], (st, pids)
            assert box.mounts() == 1
            time.sleep(0.5)
    finally:
        (box.tmp / "t" / "stop").touch()
        results = []
        for p in readers:
            out, err = p.communicate(timeout=60)
            results.append((out, err, p.returncode))
    journal = box.journal()
    for out, err, rc in results:
        assert rc == 0 and out.strip(), (rc, err[-2000:], journal[-3000:])
        r = json.loads(out.strip().splitlines()[-1])
        assert r["failures"] == [] and r["wrong"] == 0, (r, journal[-3000:])
        assert r["ino_changes"] == 0 and r["ops"] > 0, r
        print(f"{r['kind']}: {r['ops']} reads, longest "
              f"{max([d for _, d in r['slow']] or [0]):.3f} s")
    assert len(set(pids)) == 5, (pids, journal[-3000:])
    assert journal.count("kept in systemd's fd store") == 3, journal[-3000:]
    assert journal.count("kept across the unit's restart") == 3, \
        journal[-3000:]
    assert box.stats()["takeovers"] == 4
    assert box.sh(f"cmp {fpath} /t/src/weights.bin").returncode == 0
    # stop: unmounted, nothing left in the store; start: mounted afresh
    box.sh("systemctl stop assetfs@assets", timeout=90)
    assert box.mounts() == 0
    assert "unit's job is stop" in box.journal()
    box.sh("systemctl start assetfs@assets", timeout=90)
    assert box.mounts() == 1
    assert box.sh(f"cmp {fpath} /t/src/weights.bin").returncode == 0
    assert box.stats()["takeovers"] == 0


def test_restart_with_an_unreadable_state_mounts_afresh(box):
    """The new daemon reads another hand-over version (a test knob): it
    says so, detaches the kept mount (its readers get errors) and mounts
    afresh; new readers see the files."""
    fpath = "/assets/m/a/0.0/weights.bin"
    stop = "/t/stop"
    reader = box.reader("cwd", "/assets/m/a/0.0", "/t/src", stop)
    (box.tmp / "dropin" / "version.conf").write_text(
        "[Service]\nEnvironment=ASSETFS_TEST_HANDOVER_VERSION=99\n")
    box.sh("systemctl daemon-reload")
    try:
        box.sh("systemctl restart assetfs@assets", timeout=90)
    finally:
        (box.tmp / "t" / "stop").touch()
        out, err = reader.communicate(timeout=60)
    journal = box.journal()
    assert "the state is of hand-over version 1, this daemon reads 99" \
        in journal, journal[-3000:]
    r = json.loads(out.strip().splitlines()[-1])
    assert r["failures"], r  # the old mount's readers see errors
    wait_for(lambda: box.mounts() == 1, 10, "one mount")
    assert box.sh(f"cmp {fpath} /t/src/weights.bin").returncode == 0
    assert box.sh("systemctl is-active assetfs@assets").returncode == 0
