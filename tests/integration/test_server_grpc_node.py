"""assetfs-server's gRPC front end with @grpc/grpc-js (npm,
tests/node/grpc_client.js, protos loaded at run time by
@grpc/proto-loader): every V2 method, typed and raw ModelInfer, a
NOT_FOUND, and Seldon's Predict, compared with XGBoost's own numbers and
with the REST answers."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from helpers_grpc import PROTO_DIR, grpc_server  # noqa
from helpers_server import ROOT, alias, models, servers  # noqa

NODE_DIR = ROOT / "tests" / "node"


def test_grpc_js_client(grpc_server, tmp_path, models):
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").exists():
        pytest.fail("@grpc/grpc-js missing: run npm ci in tests/node "
                    "(scripts/setup does)")
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    alias(root / "iris", "latest", "1.0")
    srv = grpc_server(["--assets-dir", root, "--model", "iris=iris"])
    X = models.X[:6]
    p = subprocess.run([shutil.which("node"),
                        str(NODE_DIR / "grpc_client.js"), srv.target,
                        str(PROTO_DIR), "iris", json.dumps(X.tolist())],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["live"] and out["ready"] and out["model_ready"]
    assert out["server"]["name"] == "assetfs-server"
    assert out["model"]["name"] == "iris"
    assert out["model"]["versions"] == ["1.0"]
    rest = srv.get("/v2/models/iris").json()
    assert [(t["name"], t["datatype"], [int(d) for d in t["shape"]])
            for t in out["model"]["outputs"]] == \
        [(t["name"], t["datatype"], t["shape"]) for t in rest["outputs"]]
    want = models.clf.predict_proba(X)
    t = out["typed"]
    assert t["id"] == "n1" and t["version"] == "1.0"
    assert t["outputs"][0]["name"] == "predict_proba"
    assert t["outputs"][0]["shape"] == [6, 3]
    np.testing.assert_allclose(np.reshape(t["outputs"][0]["data"], (6, 3)),
                               want, atol=1e-6)
    raw = {o["name"]: o for o in out["raw"]}
    assert raw["predict"]["datatype"] == "INT64"
    np.testing.assert_array_equal(raw["predict"]["data"],
                                  models.clf.predict(X))
    np.testing.assert_allclose(np.reshape(raw["predict_proba"]["data"],
                                          (6, 3)), want, atol=1e-6)
    assert out["unknown"] == {"code": 5, "details": "unknown model 'nope'"}
    sel = out["seldon"]
    r = srv.post("/api/v1.0/predictions",
                 {"data": {"ndarray": X.tolist()}}).json()
    assert sel["names"] == r["data"]["names"]
    assert sel["requestPath"] == r["meta"]["requestPath"]
    np.testing.assert_array_equal(np.float32(sel["ndarray"]),
                                  np.float32(r["data"]["ndarray"]))
