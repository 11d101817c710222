"""Python model environments: a requirements.txt in a model version gets a
venv of its own, built once per node from a local wheelhouse, shared by
the server's workers, invisible to other models; a new version whose
requirements cannot be installed leaves the old version serving."""
import re
import subprocess
import sys
import time

from helpers_mount import mounter, push, wait_for  # noqa: F401
from helpers_python import build_wheel, write_class
from helpers_server import servers  # noqa: F401

USES_PKG = """
    import afs_tiny

    class Model:
        n_features = 1

        def predict(self, X, names):
            return X[:, 0] * 0 + afs_tiny.VALUE
    """

PROBES_PKG = """
    import importlib.util

    class Model:
        n_features = 1

        def predict(self, X, names):
            seen = importlib.util.find_spec("afs_tiny") is not None
            return X[:, 0] * 0 + (1.0 if seen else 0.0)
    """


def test_requirements_get_their_own_environment(assetfs_bin, store, mounter,
                                                servers, tmp_path):
    url, _ = store
    wh = build_wheel(tmp_path, "afs-tiny", "afs_tiny", 42.5)
    src = tmp_path / "src"
    write_class(src / "with", {"m.py": USES_PKG,
                               "requirements.txt": "afs-tiny==1.0\n"})
    write_class(src / "without", {"m.py": PROBES_PKG})
    write_class(src / "broken", {"m.py": USES_PKG,
                                 "requirements.txt": "afs-missing==9.9\n"})
    push(assetfs_bin, url, src / "with", "py/with")
    push(assetfs_bin, url, src / "without", "py/without")
    m = mounter(url, versions_ttl=1)
    envs = tmp_path / "envs"
    srv = servers(["--assets-dir", m.mnt, "--workers", "2",
                   "--poll-interval", "0.3", "--python-env-dir", envs,
                   "--python-wheelhouse", wh,
                   "--model", "with=py/with:0,class=m.Model",
                   "--model", "without=py/without,class=m.Model"],
                  ready=False)
    # the environment is built before the server listens: venv + pip
    srv.wait_ready(timeout=300, path="/v2/health/ready")
    for _ in range(6):  # both workers answer
        r = srv.post("/v1/models/with:predict", {"instances": [[1]]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == [42.5]
        r = srv.post("/v1/models/without:predict", {"instances": [[1]]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == [0]
    # one environment, keyed by the file's SHA-256, built once for both
    # workers; the system interpreter cannot import what it installed
    built = [p for p in envs.iterdir() if p.is_dir()]
    assert len(built) == 1 and re.fullmatch("[0-9a-f]{64}", built[0].name)
    assert srv.logtext().count("built the Python environment") == 1
    p = subprocess.run([sys.executable, "-c", "import afs_tiny"],
                       capture_output=True)
    assert p.returncode != 0
    p = subprocess.run([built[0] / "bin" / "python", "-c",
                        "import afs_tiny, sklearn; print(afs_tiny.VALUE)"],
                       capture_output=True, text=True)
    assert p.stdout.strip() == "42.5", p.stderr

    # a version whose requirements cannot be installed: the old one serves
    assert push(assetfs_bin, url, src / "broken", "py/with") == "py/with:0.1"
    wait_for(lambda: "cannot load version 0.1" in srv.logtext(), 120,
             "the broken version to be tried")
    log = srv.logtext()
    assert "afs-missing" in log and "the old version keeps serving" in log
    time.sleep(1)
    assert srv.get("/v2/models/with").json()["versions"] == ["0.0"]
    r = srv.post("/v1/models/with:predict", {"instances": [[1]]})
    assert r.status_code == 200 and r.json()["predictions"] == [42.5]
    # the failed build left nothing half-built, and ran pip once
    wait_for(lambda: [p.name for p in envs.iterdir() if p.is_dir()] ==
             [built[0].name], 60, "no build in progress")
    assert srv.logtext().count("building the Python environment") == 2
