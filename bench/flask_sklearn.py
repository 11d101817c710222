"""The Flask + gunicorn contender for the sklearn model of
scripts/bench-server.

A model server in the architecture of Seldon Core's Python wrapper (and
its SKLEARN_SERVER): a Flask app, run by gunicorn's sync workers, parses
the Seldon v1 JSON request, builds a numpy array, calls the scikit-learn
model's predict_proba and answers in Seldon's shape.

    ASSETFS_BENCH_MODEL=/path/model.joblib \\
        gunicorn -w 2 -b 127.0.0.1:PORT --chdir bench flask_sklearn:app

POST /api/v1.0/predictions  {"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}}
  -> {"data": {"names": ["t:0", ...], "ndarray": [[p0, p1, p2]]},
      "meta": {}}
Errors answer 400 with Seldon's {"status": {...}} shape. Each worker
loads the model once, at import. BLAS runs one thread per process (as in
assetfs-server's model processes): gunicorn's workers are the parallelism.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import joblib  # noqa: E402
import numpy as np  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402

app = Flask(__name__)

model = joblib.load(os.environ["ASSETFS_BENCH_MODEL"])


def _error(msg):
    body = {"status": {"code": -1, "info": msg,
                       "reason": "MICROSERVICE_BAD_DATA", "status": 1}}
    return jsonify(body), 400


@app.route("/api/v1.0/predictions", methods=["POST"])
def predictions():
    req = request.get_json(force=True, silent=True)
    if not isinstance(req, dict) or not isinstance(req.get("data"), dict):
        return _error("expected {\"data\": {\"ndarray\": [[...]]}}")
    rows = req["data"].get("ndarray")
    try:
        x = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        return _error("data.ndarray is not a numeric matrix")
    if x.ndim != 2:
        return _error("data.ndarray must be 2-dimensional")
    try:
        y = model.predict_proba(x)
    except ValueError as e:
        return _error(str(e))
    names = [f"t:{i}" for i in range(y.shape[1])]
    return jsonify({"data": {"names": names, "ndarray": y.tolist()},
                    "meta": {}})


@app.route("/health/ping", methods=["GET"])
def ping():
    return "pong"
