"""The Flask + gunicorn contenders of scripts/bench-server
(bench/flask_server.py for xgboost, bench/flask_sklearn.py for
scikit-learn), run by a real gunicorn as the benchmark runs them: both
answer Seldon v1 predictions equal to the model's own predict_proba, and
Seldon's 400 shape for bad requests.
"""
import os
import pathlib
import subprocess
import time

import joblib
import numpy as np
import pytest
import requests
import xgboost as xgb
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from helpers_server import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]


def gunicorn(app, model_path):
    port = free_port()
    env = dict(os.environ, ASSETFS_BENCH_MODEL=str(model_path))
    proc = subprocess.Popen(
        ["gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
         "--chdir", str(ROOT / "bench"), "--log-level", "warning", app],
        env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(url + "/health/ping", timeout=1).text == "pong":
                return proc, url
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, f"gunicorn {app} exited"
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"gunicorn {app} did not answer")


@pytest.mark.parametrize("app", ["flask_server:app", "flask_sklearn:app"])
def test_seldon_predictions(tmp_path, app):
    X, y = load_iris(return_X_y=True)
    if app.startswith("flask_server"):
        model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
        path = tmp_path / "model.json"
        model.save_model(str(path))
        want = model.predict_proba(X[:3].astype(np.float32))
    else:
        model = LogisticRegression(max_iter=500).fit(X, y)
        path = tmp_path / "model.joblib"
        joblib.dump(model, path)
        want = model.predict_proba(X[:3])
    proc, url = gunicorn(app, path)
    try:
        r = requests.post(url + "/api/v1.0/predictions",
                          json={"data": {"ndarray": X[:3].tolist()}})
        assert r.status_code == 200
        body = r.json()
        assert body["data"]["names"] == ["t:0", "t:1", "t:2"]
        assert np.allclose(body["data"]["ndarray"], want, rtol=1e-6)
        for bad, info in (({"data": {"ndarray": [1, 2]}}, "2-dimensional"),
                          ({"data": {"ndarray": [["x"]]}}, "numeric"),
                          ({"nodata": 1}, "expected")):
            r = requests.post(url + "/api/v1.0/predictions", json=bad)
            assert r.status_code == 400
            st = r.json()["status"]
            assert st["reason"] == "MICROSERVICE_BAD_DATA"
            assert info in st["info"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
