"""The Seldon v1 handler shared by the Flask + gunicorn contenders of
scripts/bench-server (flask_server.py for xgboost, flask_sklearn.py for
scikit-learn): they differ only in how they load the model and in the
dtype its predict_proba takes.

POST /api/v1.0/predictions  {"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}}
  -> {"data": {"names": ["t:0", ...], "ndarray": [[p0, p1, p2]]},
      "meta": {}}
Errors answer 400 with Seldon's {"status": {...}} shape.
"""
import numpy as np
from flask import Flask, jsonify, request


def _error(msg):
    body = {"status": {"code": -1, "info": msg,
                       "reason": "MICROSERVICE_BAD_DATA", "status": 1}}
    return jsonify(body), 400


def make_app(model, dtype):
    """A Flask app answering Seldon v1 predictions with model.predict_proba
    on the request's rows as a 2-d numpy array of dtype."""
    app = Flask(__name__)

    @app.route("/api/v1.0/predictions", methods=["POST"])
    def predictions():
        req = request.get_json(force=True, silent=True)
        if not isinstance(req, dict) or not isinstance(req.get("data"), dict):
            return _error("expected {\"data\": {\"ndarray\": [[...]]}}")
        rows = req["data"].get("ndarray")
        try:
            x = np.asarray(rows, dtype=dtype)
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

    return app
