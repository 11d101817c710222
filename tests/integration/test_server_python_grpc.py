"""The Python runtimes over gRPC: the same runtime interface as REST, so an
sklearn model answers V2 ModelInfer and Seldon Predict with what
predict_proba computes, and a model process that dies answers
UNAVAILABLE with the reason while REST says 503."""
import numpy as np

from helpers_grpc import (channel, grpc_server, infer_request, output,  # noqa
                          pb, rpc_error)
from helpers_python import skl, write_class  # noqa: F401
from helpers_server import servers  # noqa: F401

TOL = 1e-6

CRASH = """
    import os

    class Model:
        n_features = 2

        def predict(self, X, names):
            if X[0][0] == 666:
                os._exit(1)
            return X[:, 0] + X[:, 1]
    """


def test_python_models_over_grpc(grpc_server, pb, skl, tmp_path):
    root = tmp_path / "assets"
    skl.save(skl.pipe, root / "pipe" / "1.0")
    write_class(root / "crash" / "0.0", {"m.py": CRASH})
    srv = grpc_server(["--assets-dir", root, "--model", "pipe=pipe",
                       "--model", "crash=crash,class=m.Model",
                       "--python-env-dir", tmp_path / "envs"], ready=False)
    srv.wait_ready(timeout=180)
    ch = channel(srv)
    stub = pb.v2g.GRPCInferenceServiceStub(ch)
    X = skl.X50[:9]
    want = skl.pipe.predict_proba(X)
    for raw in (False, True):
        resp = stub.ModelInfer(infer_request(pb, "pipe", X, "FP64", raw=raw))
        assert resp.model_version == "1.0"
        np.testing.assert_allclose(output(resp, "predict_proba"), want,
                                   atol=TOL, rtol=0)
    m = pb.sel.SeldonMessage()
    for row in X.tolist():
        m.data.ndarray.append(row)
    got = pb.selg.ModelStub(ch).Predict(m)
    np.testing.assert_allclose([list(r) for r in got.data.ndarray], want,
                               atol=TOL, rtol=0)

    resp = stub.ModelInfer(infer_request(pb, "crash", [[2, 3]], "FP64"))
    assert output(resp, "predict").ravel().tolist() == [5]
    code, msg = rpc_error(stub.ModelInfer,
                          infer_request(pb, "crash", [[666, 1]], "FP64"))
    assert code == "UNAVAILABLE", (code, msg)
    assert "exited with status 1" in msg
    r = srv.post("/v2/models/pipe/infer", {"inputs": [{
        "name": "x", "shape": [1, 4], "datatype": "FP64",
        "data": X[0].tolist()}]})
    assert r.status_code == 200
