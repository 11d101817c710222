"""The systemd units pass `systemd-analyze verify`, and order the server
after the mount it reads (and so stop it before the mount goes)."""
import configparser
import pathlib
import shutil
import subprocess

import pytest

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
    assert "fusermount3 -u" in svc["ExecStop"]
    assert svc["Restart"] == "on-failure"


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
