"""The Flask + gunicorn contender of scripts/bench-server.

A model server in the architecture of Seldon Core's Python wrapper, written
for the benchmark: a Flask app, run by gunicorn's sync workers, parses the
Seldon v1 JSON request, builds a numpy array, calls the model's
predict_proba (the xgboost Python package) and answers in Seldon's shape.

    ASSETFS_BENCH_MODEL=/path/model.json \
        gunicorn -w 1 -b 127.0.0.1:PORT --chdir bench flask_server:app

The handler (request, answer and errors) is seldon_flask.py's. Each
worker loads the model once, at import, and predicts on one thread
(n_jobs=1): gunicorn's workers are the parallelism, and xgboost's default
of one OpenMP thread per core makes a one-row prediction about 5x slower
here (3.9 ms instead of 0.7 ms), which would flatter assetfs-server.
"""
import os

import numpy as np
import xgboost as xgb

from seldon_flask import make_app

model = xgb.XGBClassifier()
model.load_model(os.environ["ASSETFS_BENCH_MODEL"])
model.set_params(n_jobs=1)
app = make_app(model, np.float32)
