"""The Flask + gunicorn contender for the sklearn model of
scripts/bench-server.

A model server in the architecture of Seldon Core's Python wrapper (and
its SKLEARN_SERVER): a Flask app, run by gunicorn's sync workers, parses
the Seldon v1 JSON request, builds a numpy array, calls the scikit-learn
model's predict_proba and answers in Seldon's shape.

    ASSETFS_BENCH_MODEL=/path/model.joblib \\
        gunicorn -w 2 -b 127.0.0.1:PORT --chdir bench flask_sklearn:app

The handler (request, answer and errors) is seldon_flask.py's. Each
worker loads the model once, at import. BLAS runs one thread per process
(as in assetfs-server's model processes): gunicorn's workers are the
parallelism.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import joblib  # noqa: E402
import numpy as np  # noqa: E402

from seldon_flask import make_app  # noqa: E402

model = joblib.load(os.environ["ASSETFS_BENCH_MODEL"])
app = make_app(model, np.float64)
