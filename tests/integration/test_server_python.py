"""assetfs-server's sklearn and python runtimes on a real assetfs mount.

Models are pushed with `assetfs push` to a local store, mounted, and
served; each loaded version runs in Python processes of its own. The
tests compare what every protocol answers with what scikit-learn computes
in this process, and check what a client sees when a model process
crashes, hangs or runs out of memory while another model serves on.
"""
import json
import os
import time

import numpy as np
import requests

from conftest import run
from helpers_mount import mounter, push, wait_for  # noqa: F401
from helpers_python import skl, write_class  # noqa: F401
from helpers_server import (Load, metric, servers, v2_body,  # noqa: F401
                            v2_output)

TOL = 1e-6

SELDON_CLASS = """
    import time

    import numpy as np

    class Scorer:
        def __init__(self, factor=1.0):
            self.factor = float(factor)

        def predict(self, X, features_names):
            time.sleep(0.02)  # slow enough that concurrent requests queue
            return np.asarray(X).sum(axis=1) * self.factor
    """

MODELKIT_CLASS = """
    import json
    import os

    class Linear:
        def _load(self):
            with open(os.path.join(self.asset_path, "weights.json")) as f:
                self.w = json.load(f)

        def _predict(self, item):
            return [sum(a * b for a, b in zip(self.w, item)), len(item)]

        def metrics(self, X, y):
            return {"custom": True, "rows": len(X),
                    "label_sum": float(sum(y))}
    """


def post_all(srv, name, X, first=False):
    """(V2 predict_proba, Seldon ndarray, TF Serving predictions)."""
    X = np.asarray(X)
    v2 = v2_output(srv.post(f"/v2/models/{name}/infer", v2_body(X)),
                   "predict_proba")
    path = "/api/v1.0/predictions" if first else \
        f"/seldon/{name}/api/v1.0/predictions"
    r = srv.post(path, {"data": {"ndarray": X.tolist()}})
    assert r.status_code == 200, r.text
    seldon = np.asarray(r.json()["data"]["ndarray"])
    r = srv.post(f"/v1/models/{name}:predict", {"instances": X.tolist()})
    assert r.status_code == 200, r.text
    tfs = np.asarray(r.json()["predictions"])
    return v2, seldon, tfs


def test_sklearn_and_classes_on_a_mount(assetfs_bin, server_bin, store,
                                        mounter, servers, skl, tmp_path):
    url, _ = store
    src = tmp_path / "src"
    skl.save(skl.lr, src / "lr")
    skl.save(skl.rf, src / "rf", "forest.pkl")
    skl.save(skl.pipe, src / "pipe")
    write_class(src / "seldon", {"scorer.py": SELDON_CLASS})
    write_class(src / "mk", {"pkg/linear.py": MODELKIT_CLASS,
                             "pkg/__init__.py": "",
                             "weights.json": "[1, 10, 100, 1000]"})
    for name in ("lr", "rf", "pipe", "seldon", "mk"):
        assert push(assetfs_bin, url, src / name, f"py/{name}") == \
            f"py/{name}:0.0"
    m = mounter(url)
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": [
        {"name": "lr", "asset": "py/lr"},
        {"name": "rf", "asset": "py/rf", "runtime": "sklearn"},
        {"name": "pipe", "asset": "py/pipe:0"},
        {"name": "seldon", "asset": "py/seldon", "class": "scorer.Scorer",
         "replicas": 2,
         "config": {"parameters": {"factor": 2}, "n_features": 4}},
        {"name": "mk", "asset": "py/mk", "class": "pkg.linear.Linear",
         "n_features": 4},
    ]}))
    envs = tmp_path / "envs"
    srv = servers(["--assets-dir", m.mnt, "--config", models, "--threads",
                   "0", "--python-env-dir", envs], ready=False)
    srv.wait_ready(timeout=180)  # Python processes load before it listens
    for name, model in (("lr", skl.lr), ("rf", skl.rf), ("pipe", skl.pipe)):
        want = model.predict_proba(skl.X50)
        for got in post_all(srv, name, skl.X50, first=name == "lr"):
            np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
        meta = srv.get(f"/v2/models/{name}").json()
        assert meta["platform"] == "sklearn", meta
        assert meta["inputs"][0]["shape"] == [-1, 4]
    # the predict output of a classifier is the argmax of predict_proba
    got = v2_output(srv.post("/v2/models/pipe/infer", v2_body(
        skl.X50, outputs=[{"name": "predict"}])), "predict")
    np.testing.assert_array_equal(got, skl.pipe.predict(skl.X50))

    r = srv.post("/v1/models/seldon:predict", {"instances": [[1, 2, 3, 4],
                                                             [0, 0, 0.5, 0]]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [20, 1]
    r = srv.post("/v1/models/mk:predict", {"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [[4321, 4]]
    meta = srv.get("/v2/models/mk").json()
    assert meta["platform"] == "python"
    assert meta["parameters"]["objective"] == "python:pkg.linear.Linear"

    # wrong width: a 400 naming it, from every protocol, before Python
    r = srv.post("/v2/models/lr/infer", v2_body([[1, 2, 3]]))
    assert r.status_code == 400 and "expects 4 features" in r.text

    # every loaded version runs in its own Python process, not the server
    pids = run(["pgrep", "-P", str(srv.proc.pid)]).stdout.split()
    assert len(pids) == 6, pids  # seldon has two
    for pid in pids:
        cmd = open(f"/proc/{int(pid)}/cmdline", "rb").read().split(b"\0")
        assert cmd[-2].endswith(b"assetfs_model_worker.py"), cmd

    # concurrent requests are batched: one call carries many of them (the
    # model takes 20 ms a call, so the others queue meanwhile), and each
    # gets its own answer back
    from concurrent.futures import ThreadPoolExecutor
    text = srv.metrics()
    before = [metric(text, f"assetfs_server_model_batch_rows_{k}",
                     model="seldon") for k in ("count", "sum")]

    def one(i):
        with requests.Session() as s:
            for j in range(10):
                r = s.post(f"{srv.url}/v1/models/seldon:predict",
                           json={"instances": [[i, j, 0, 1]]}, timeout=60)
                assert r.status_code == 200, r.text
                assert r.json()["predictions"] == [2 * (i + j + 1)]
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(one, range(16)))
    text = srv.metrics()
    calls, rows = [metric(text, f"assetfs_server_model_batch_rows_{k}",
                          model="seldon") - b
                   for k, b in zip(("count", "sum"), before)]
    assert rows == 160 and calls <= 80, (calls, rows)
    assert metric(text, "assetfs_server_model_queue_seconds_count",
                  model="seldon") >= 160
    assert metric(text, "assetfs_server_model_process_restarts_total",
                  model="seldon") == 0

    # batch jobs: a metrics job hands every record to the model at once
    recs = tmp_path / "recs.jsonl"
    recs.write_text("".join(json.dumps({"features": list(x), "label": int(y)})
                            + "\n" for x, y in zip(skl.X[:30], skl.y[:30])))
    out = tmp_path / "metrics.json"
    run([server_bin, "batch", "--assets-dir", m.mnt, "--model",
         "mk=py/mk,class=pkg.linear.Linear", "--python-env-dir", envs,
         "--input", recs, "--output", out, "--metrics-job"])
    res = json.loads(out.read_text())
    assert res["records"] == 30 and res["failed"] == 0
    assert res["metrics"] == {"custom": True, "rows": 30,
                              "label_sum": float(skl.y[:30].sum())}
    run([server_bin, "batch", "--assets-dir", m.mnt, "--model", "rf=py/rf",
         "--python-env-dir", envs, "--input", recs, "--output", out,
         "--metrics-job"])
    res = json.loads(out.read_text())["metrics"]
    p = skl.rf.predict_proba(skl.X[:30])
    assert res["rows"] == 30
    assert abs(res["accuracy"] - (p.argmax(1) == skl.y[:30]).mean()) < 1e-9
    ll = -np.log(np.clip(p[np.arange(30), skl.y[:30]], 1e-15, 1)).mean()
    assert abs(res["log_loss"] - ll) < 1e-9


CRASH = """
    import os

    class Model:
        n_features = 2

        def predict(self, X, names):
            if X[0][0] == 666:
                os._exit(1)
            return X[:, 0] + X[:, 1]
    """

HANG = """
    import time

    class Model:
        n_features = 2

        def predict(self, X, names):
            if X[0][0] == 1:
                time.sleep(60)
            return X[:, 0]
    """

LEAK = """
    held = []

    class Model:
        n_features = 2

        def predict(self, X, names):
            if X[0][0] == 1:
                held.append(bytearray(40 << 20))
            return X[:, 0] * 0 + len(held)
    """


def wait_ok(srv, name, x, timeout=20):
    """Post @x until it answers 200 (the restarted process); the body."""
    return wait_for(lambda: (lambda r: r.json() if r.status_code == 200
                             else None)(srv.post(f"/v1/models/{name}:predict",
                                                 {"instances": x})),
                    timeout, f"{name} to answer again", interval=0.1)


def test_crash_hang_and_leak_take_only_themselves_down(
        assetfs_bin, store, mounter, servers, skl, tmp_path):
    url, _ = store
    src = tmp_path / "src"
    skl.save(skl.lr, src / "lr")
    for name, code in (("crash", CRASH), ("hang", HANG), ("leak", LEAK)):
        write_class(src / name, {"m.py": code})
        push(assetfs_bin, url, src / name, f"py/{name}")
    push(assetfs_bin, url, src / "lr", "py/lr")
    m = mounter(url)
    srv = servers(["--assets-dir", m.mnt, "--threads", "0",
                   "--python-env-dir", tmp_path / "envs",
                   "--model", "lr=py/lr",
                   "--model", "crash=py/crash,class=m.Model,replicas=2",
                   "--model", "hang=py/hang,class=m.Model,timeout=1",
                   "--model", "leak=py/leak,class=m.Model,max_memory=400M"],
                  ready=False)
    srv.wait_ready(timeout=180)  # Python processes load before it listens
    load = Load(srv, skl.X[:3], n=3, model="lr")
    try:
        # a crash: retried once on a fresh process, then a clear 503
        r = srv.post("/v1/models/crash:predict", {"instances": [[666, 1]]})
        assert r.status_code == 503, r.text
        assert "exited with status 1" in r.json()["error"]
        assert "also when retried on a fresh process" in r.json()["error"]
        assert wait_ok(srv, "crash", [[2, 3]])["predictions"] == [5]
        r = srv.post("/v2/models/crash/infer", v2_body([[666, 1]]))
        assert r.status_code == 503 and "exited with status 1" in r.text
        assert wait_ok(srv, "crash", [[4, 3]])["predictions"] == [7]

        # a hang: 503 at the timeout, the process killed and restarted
        t0 = time.monotonic()
        r = srv.post("/seldon/hang/api/v1.0/predictions",
                     {"data": {"ndarray": [[1, 0]]}})
        assert r.status_code == 503, r.text
        assert "did not answer within 1 s" in r.json()["status"]["info"]
        assert time.monotonic() - t0 < 10
        assert wait_ok(srv, "hang", [[5, 0]])["predictions"] == [5]

        # a leak: past max_memory the process says so, 503, restarts
        codes = []
        for _ in range(30):
            r = srv.post("/v1/models/leak:predict", {"instances": [[1, 0]]})
            codes.append(r.status_code)
            if r.status_code == 503:
                assert "ran out of memory (max_memory=400 MiB)" in \
                    r.json()["error"], r.text
                break
            assert r.status_code == 200, r.text
        assert codes[-1] == 503 and len(codes) > 2, codes
        assert wait_ok(srv, "leak", [[0, 0]])["predictions"] == [0]
        time.sleep(0.5)
    finally:
        results = load.finish()
    assert len(results) > 20
    bad = [r for r in results if r[0] != 200]
    assert not bad, bad[:3]
    for _, version, proba in results:
        np.testing.assert_allclose(proba, skl.lr.predict_proba(
            skl.X[:3]).ravel(), atol=TOL)
    text = srv.metrics()
    for name in ("crash", "hang", "leak"):
        assert metric(text, "assetfs_server_model_process_restarts_total",
                      model=name) >= 1, name
    assert metric(text, "assetfs_server_model_process_restarts_total",
                  model="lr") == 0
    # the two crashing requests, and polls during the restart backoff
    assert metric(text, "assetfs_server_requests_total", model="crash",
                  status="503") >= 2


def test_version_swap_under_load(assetfs_bin, store, mounter, servers, skl,
                                 tmp_path):
    url, _ = store
    src = tmp_path / "src"
    skl.save(skl.lr, src / "a")
    skl.save(skl.pipe, src / "b")
    push(assetfs_bin, url, src / "a", "py/iris")
    m = mounter(url, versions_ttl=1)
    srv = servers(["--assets-dir", m.mnt, "--model", "iris=py/iris:0",
                   "--poll-interval", "0.3", "--threads", "0",
                   "--python-env-dir", tmp_path / "envs"], ready=False)
    srv.wait_ready(timeout=180)  # Python processes load before it listens
    X = skl.X[:4]
    load = Load(srv, X, n=6, model="iris")
    try:
        time.sleep(1)
        assert push(assetfs_bin, url, src / "b", "py/iris") == "py/iris:0.1"
        load.wait_version("0.1", timeout=60)
        time.sleep(1)
    finally:
        results = load.finish()
    bad = [r for r in results if r[0] != 200]
    assert not bad, bad[:3]
    want = {"0.0": skl.lr.predict_proba(X).ravel(),
            "0.1": skl.pipe.predict_proba(X).ravel()}
    assert {r[1] for r in results} == {"0.0", "0.1"}
    for _, version, proba in results:
        np.testing.assert_allclose(proba, want[version], atol=TOL)
    # the old version's process is gone once drained
    wait_for(lambda: len(run(["pgrep", "-P", str(srv.proc.pid)],
                             check=False).stdout.split()) == 1, 10,
             "the old model process to exit")


def test_lazy_loading_and_prediction_cache(assetfs_bin, store, mounter,
                                           servers, skl, tmp_path):
    url, _ = store
    skl.save(skl.rf, tmp_path / "src")
    push(assetfs_bin, url, tmp_path / "src", "py/rf")
    m = mounter(url)
    srv = servers(["--assets-dir", m.mnt, "--lazy", "--model", "rf=py/rf",
                   "--python-env-dir", tmp_path / "envs"],
                  env={"MODELKIT_CACHE_PROVIDER": "native"})
    # lazy: no model process until the first request
    assert run(["pgrep", "-P", str(srv.proc.pid)], check=False).stdout == b""
    X = skl.X50[:7]
    for _ in range(3):
        r = srv.post("/v1/models/rf:predict", {"instances": X.tolist()})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"],
                                   skl.rf.predict_proba(X), atol=TOL)
    assert len(run(["pgrep", "-P", str(srv.proc.pid)]).stdout.split()) == 1
    text = srv.metrics()
    # the process was called once; the cache answered the other two
    assert metric(text, "assetfs_server_model_batch_rows_count",
                  model="rf") == 1
    assert metric(text, "assetfs_server_cache_hits_total") == 2


def test_mlserver_model_settings(servers, skl, tmp_path):
    """MLServer's model-settings.json, with no runtime named: an sklearn
    implementation loads parameters.uri, any other is MODULE.CLASS with
    parameters.extra as its parameters."""
    root = tmp_path / "assets"
    v = skl.save(skl.rf, root / "ml" / "skl" / "1.0", "forest.joblib")
    (v / "model-settings.json").write_text(json.dumps({
        "name": "skl", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./forest.joblib", "version": "v1"}}))
    write_class(root / "ml" / "custom" / "1.0", {
        "scorer.py": SELDON_CLASS,
        "model-settings.json": json.dumps({
            "name": "custom", "implementation": "scorer.Scorer",
            "parameters": {"extra": {"factor": 3}}})})
    write_class(root / "ml" / "escape" / "1.0", {
        "model-settings.json": json.dumps({
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "../../skl/1.0/forest.joblib"}})})
    srv = servers(["--assets-dir", root, "--lazy", "--python-env-dir",
                   tmp_path / "envs", "--model", "skl=ml/skl",
                   "--model", "custom=ml/custom",
                   "--model", "escape=ml/escape"])
    r = srv.post("/v1/models/skl:predict", {"instances": skl.X50.tolist()})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"],
                               skl.rf.predict_proba(skl.X50), atol=TOL)
    assert srv.get("/v2/models/skl").json()["platform"] == "python"
    r = srv.post("/v1/models/custom:predict", {"instances": [[1, 2, 3]]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [18]
    # a uri outside the version is refused, and says so
    r = srv.post("/v1/models/escape:predict", {"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 503
    assert "outside the model version" in r.json()["error"]
