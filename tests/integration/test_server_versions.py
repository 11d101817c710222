"""assetfs-server follows a moving alias: under constant load from several
client threads a new version is loaded beside the old one and swapped in
with zero failed requests; a broken version leaves the old one serving;
in a plain directory (no alias symlinks) the newest version listed wins."""
import os
import time

import numpy as np

from helpers_server import (Load, alias, metric, models, servers,  # noqa
                            v2_body, v2_output)

TOL = 1e-6


def test_swap_under_load_with_zero_failures(servers, tmp_path, models):
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    alias(root / "iris", "1.latest", "1.0")
    alias(root / "iris", "latest", "1.0")
    srv = servers(["--assets-dir", root, "--model", "iris=iris:1",
                   "--poll-interval", "0.2", "--threads", "4",
                   "--log-level", "debug", "--metrics-port", "0"])
    X = models.X[:5]
    want = {"1.0": models.clf.predict_proba(X).ravel(),
            "1.1": models.clf2.predict_proba(X).ravel()}
    assert not np.allclose(want["1.0"], want["1.1"])
    load = Load(srv, X, n=4)
    try:
        time.sleep(0.7)
        # a new version appears, then the alias moves, as the mount shows
        models.save(models.clf2, root / "iris" / "1.1", "model.ubj")
        alias(root / "iris", "1.latest", "1.1")
        alias(root / "iris", "latest", "1.1")
        load.wait_version("1.1")
        time.sleep(0.5)
        # a broken version: invalid model file; the old one keeps serving
        (root / "iris" / "1.2").mkdir()
        (root / "iris" / "1.2" / "model.json").write_text('{"learner": 3')
        alias(root / "iris", "1.latest", "1.2")
        deadline = time.monotonic() + 10
        while "cannot load version 1.2" not in srv.logtext():
            assert time.monotonic() < deadline, srv.logtext()
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        results = load.finish()
    failed = [r for r in results if r[0] != 200]
    assert not failed, failed[:3]
    assert len(results) > 100
    seen = [r[1] for r in results]
    assert set(seen) == {"1.0", "1.1"}
    first_new = seen.index("1.1")
    assert "1.0" in seen[:first_new]
    for status, version, proba in results:
        np.testing.assert_allclose(proba, want[version], atol=TOL)
    # the server settled on 1.1 and says so everywhere
    assert seen[-1] == "1.1"
    assert srv.get("/v2/models/iris").json()["versions"] == ["1.1"]
    assert srv.get("/v1/models/iris").json()[
        "model_version_status"][0]["version"] == "1.1"
    log = srv.logtext()
    assert "freeing drained model version 1.0" in log
    assert "the old version keeps serving" in log
    m = srv.metrics()
    assert metric(m, "assetfs_server_model_load_failures_total",
                  model="iris") == 1
    assert metric(m, "assetfs_server_model_loads_total", model="iris") == 2
    assert metric(m, "assetfs_server_model_serving", model="iris",
                  version="1.1") == 1
    assert metric(m, "assetfs_server_model_serving", model="iris",
                  version="1.0") is None
    assert metric(m, "assetfs_server_requests_total", model="iris",
                  version="1.0", protocol="v2", status="200") == \
        seen.count("1.0")
    # the broken version is retried after a while (it may have been caught
    # half-copied): repaired in place, it is picked up
    models.save(models.clf2, root / "iris" / "1.2")
    deadline = time.monotonic() + 10
    while srv.get("/v2/models/iris").json()["versions"] != ["1.2"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # a fixed version after the broken one is picked up
    models.save(models.clf, root / "iris" / "1.3")
    alias(root / "iris", "1.latest", "1.3")
    deadline = time.monotonic() + 10
    while srv.get("/v2/models/iris").json()["versions"] != ["1.3"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_plain_directory_resolves_newest_and_majors(servers, tmp_path,
                                                    models):
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    models.save(models.clf, root / "iris" / "1.2")
    models.save(models.clf2, root / "iris" / "10.0")   # not a "1.x"
    models.save(models.clf, root / "iris" / "0.9")
    srv = servers(["--assets-dir", root, "--model", "m1=iris:1",
                   "--model", "newest=iris", "--model", "pinned=iris:0.9",
                   "--poll-interval", "0.2"])
    v = lambda n: srv.get(f"/v2/models/{n}").json()["versions"]  # noqa
    assert v("m1") == ["1.2"]
    assert v("newest") == ["10.0"]
    assert v("pinned") == ["0.9"]
    # a new directory appears (complete: renamed into place), floating
    # specs follow it, a pinned one does not
    models.save(models.clf2, tmp_path / "staging" / "1.10")
    os.rename(tmp_path / "staging" / "1.10", root / "iris" / "1.10")
    deadline = time.monotonic() + 10
    while v("m1") != ["1.10"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert v("newest") == ["10.0"]
    assert v("pinned") == ["0.9"]
    r = srv.post("/v2/models/m1/infer", v2_body(models.X[:3]))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf2.predict_proba(models.X[:3]),
                               atol=TOL)


def test_file_asset_and_file_option(servers, tmp_path, models):
    """A file asset (the version is the model file itself, no extension)
    and file= naming a model inside a folder version."""
    root = tmp_path / "assets"
    (root / "flat").mkdir(parents=True)
    models.clf.save_model(str(tmp_path / "m.json"))
    (root / "flat" / "0.0").write_bytes((tmp_path / "m.json").read_bytes())
    models.save(models.reg, root / "folder" / "0.0", "a.ubj")
    models.save(models.clf, root / "folder" / "0.0", "b.json")
    srv = servers(["--assets-dir", root, "--model", "flat=flat",
                   "--model", "reg=folder:0.0,file=a.ubj",
                   "--model", "clf=folder:0.0[b.json]"])
    r = srv.post("/v2/models/flat/infer", v2_body(models.X[:2]))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(models.X[:2]),
                               atol=TOL)
    r = srv.post("/v2/models/reg/infer", v2_body(models.Xd[:2]))
    np.testing.assert_allclose(v2_output(r, "predict"),
                               models.reg.predict(models.Xd[:2]), rtol=TOL)
    r = srv.post("/v2/models/clf/infer", v2_body(models.X[:2]))
    assert r.status_code == 200


def test_simple_date_versions(servers, tmp_path, models):
    root = tmp_path / "assets"
    models.save(models.clf, root / "daily" / "2026-01-01T00-00-00Z")
    models.save(models.clf2, root / "daily" / "2026-03-01T12-30-00Z")
    models.save(models.clf, root / "daily" / "2026-02-01T00-00-00Z")
    srv = servers(["--assets-dir", root, "--model", "d=daily",
                   "--model", "pinned=daily:2026-01-01T00-00-00Z"])
    assert srv.get("/v2/models/d").json()["versions"] == [
        "2026-03-01T12-30-00Z"]
    r = srv.post("/v2/models/d/infer", v2_body(models.X[:2]))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf2.predict_proba(models.X[:2]),
                               atol=TOL)
    assert srv.get("/v2/models/pinned").json()["versions"] == [
        "2026-01-01T00-00-00Z"]
