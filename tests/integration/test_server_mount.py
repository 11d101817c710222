"""assetfs-server on a real assetfs mount: models pushed with `assetfs
push` to a local store, mounted, served; a push of a new version moves
`1.latest` in the mount and the server switches to it under load with
zero failed requests; a pushed broken version leaves the old one serving."""
import time

import numpy as np

from helpers_mount import mounter, push, wait_for  # noqa: F401
from helpers_server import Load, models, servers, v2_body, v2_output  # noqa

TOL = 1e-6


def test_serve_from_a_real_mount_and_follow_pushes(assetfs_bin, store,
                                                   mounter, servers,
                                                   models, tmp_path):
    url, _ = store
    src = tmp_path / "src"
    models.save(models.clf, src / "a")
    models.save(models.clf2, src / "b")
    (src / "broken").mkdir()
    (src / "broken" / "model.json").write_text('{"learner": ')
    assert push(assetfs_bin, url, src / "a", "fraud/xgb") == "fraud/xgb:0.0"
    assert push(assetfs_bin, url, src / "a", "fraud/xgb",
                bump_major=True) == "fraud/xgb:1.0"
    m = mounter(url, versions_ttl=1)
    adir = m.mnt / "fraud" / "xgb"
    assert sorted(p.name for p in adir.iterdir()) == [
        "0.0", "0.latest", "1.0", "1.latest", "latest"]
    srv = servers(["--assets-dir", m.mnt, "--model", "fraud=fraud/xgb:1",
                   "--poll-interval", "0.3"])
    X = models.X[:5]
    r = srv.post("/v2/models/fraud/infer", v2_body(models.X1000))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(models.X1000),
                               atol=TOL)
    assert r.json()["model_version"] == "1.0"

    load = Load(srv, X, n=4, model="fraud")
    try:
        assert push(assetfs_bin, url, src / "b", "fraud/xgb") == \
            "fraud/xgb:1.1"
        wait_for(lambda: srv.get("/v2/models/fraud").json()["versions"]
                 == ["1.1"], 20, "the server to switch to 1.1")
        assert push(assetfs_bin, url, src / "broken", "fraud/xgb") == \
            "fraud/xgb:1.2"
        wait_for(lambda: "cannot load version 1.2" in srv.logtext(), 20,
                 "the broken version to be tried")
        time.sleep(0.5)
    finally:
        results = load.finish()
    assert not [r for r in results if r[0] != 200], results[:3]
    want = {"1.0": models.clf.predict_proba(X).ravel(),
            "1.1": models.clf2.predict_proba(X).ravel()}
    assert {r[1] for r in results} == {"1.0", "1.1"}
    for _, version, proba in results:
        np.testing.assert_allclose(proba, want[version], atol=TOL)
    assert srv.get("/v2/models/fraud").json()["versions"] == ["1.1"]
    r = srv.post("/v2/models/fraud/infer", v2_body(X))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf2.predict_proba(X), atol=TOL)
