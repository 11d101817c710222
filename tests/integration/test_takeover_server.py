"""assetfs-server reading its models through the mount keeps answering
while the mount is taken over and while its worker is killed: zero failed
requests (issue 12)."""
import os
import signal
import time

import numpy as np

from helpers_mount import mounter, push, wait_for  # noqa: F401
from helpers_server import Load, models, servers, v2_body  # noqa: F401
from test_takeover import stats, take_over

TOL = 1e-6


def test_server_answers_through_takeovers_and_crashes(assetfs_bin, store,
                                                      mounter, servers,
                                                      models, tmp_path):
    url, _ = store
    models.save(models.clf, tmp_path / "src" / "a")
    models.save(models.clf2, tmp_path / "src" / "b")
    push(assetfs_bin, url, tmp_path / "src" / "a", "fraud/xgb")
    push(assetfs_bin, url, tmp_path / "src" / "a", "fraud/xgb",
         bump_major=True)
    m = mounter(url, versions_ttl=1)
    srv = servers(["--assets-dir", m.mnt, "--model", "fraud=fraud/xgb:1",
                   "--poll-interval", "0.3"])
    X = models.X[:5]
    load = Load(srv, X, n=4, model="fraud")
    events = 0
    try:
        for i in range(2):
            p, _ = take_over(assetfs_bin, m, "readahead=8" if i else "")
            assert p.returncode == 0, p.stderr
            time.sleep(0.7)
            pid = stats(assetfs_bin, m.mnt)["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: stats(assetfs_bin, m.mnt)["pid"] != pid, 10,
                     "a new worker")
            time.sleep(0.7)
            events += 2
        # the server still follows the mount: a new version is picked up
        push(assetfs_bin, url, tmp_path / "src" / "b", "fraud/xgb")
        wait_for(lambda: srv.get("/v2/models/fraud").json()["versions"]
                 == ["1.1"], 20, "the server to switch to 1.1")
    finally:
        results = load.finish()
    assert events == 4
    assert len(results) > 50
    assert not [r for r in results if r[0] != 200], results[:3]
    want = {"1.0": models.clf.predict_proba(X).ravel(),
            "1.1": models.clf2.predict_proba(X).ravel()}
    for _, version, proba in results:
        np.testing.assert_allclose(proba, want[version], atol=TOL)
    s = stats(assetfs_bin, m.mnt)
    assert s["takeovers"] == 2 and s["worker_restarts"] == 2
