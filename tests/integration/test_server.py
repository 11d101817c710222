"""assetfs-server: predictions over V2, Seldon and TF Serving equal
XGBoost's own (predict_proba / predict) to 1e-6, for single rows and
batches of 1,000; metadata, health and the protocols' error shapes."""
import json
import os

import numpy as np
import pytest

from helpers_server import (alias, metric, models, servers, v2_body,  # noqa
                            v2_output)

TOL = 1e-6


@pytest.fixture
def assets(tmp_path, models):
    """iris (JSON 1.0, UBJ 1.1, aliases to 1.1) and diab (0.0, no aliases)."""
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0", "model.json")
    models.save(models.clf, root / "iris" / "1.1", "model.ubj")
    alias(root / "iris", "1.latest", "1.1")
    alias(root / "iris", "latest", "1.1")
    models.save(models.reg, root / "diab" / "0.0", "model.json")
    return root


@pytest.fixture
def srv(servers, assets):
    return servers(["--assets-dir", assets, "--model", "iris=iris:1",
                    "--model", "diab=diab", "--model",
                    "iris10=iris:1.0"])


def test_v2_classifier_matches_predict_proba(srv, models):
    for name in ("iris", "iris10"):   # UBJ and JSON files
        for X in (models.X[:1], models.X, models.X1000):
            r = srv.post(f"/v2/models/{name}/infer", v2_body(X))
            got = v2_output(r, "predict_proba")
            want = models.clf.predict_proba(X)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    r = srv.post("/v2/models/iris/infer",
                 v2_body(models.X1000, outputs=[{"name": "predict"}]))
    got = v2_output(r, "predict")
    assert [o["name"] for o in r.json()["outputs"]] == ["predict"]
    assert r.json()["outputs"][0]["datatype"] == "INT64"
    np.testing.assert_array_equal(got, models.clf.predict(models.X1000))


def test_v2_regressor_matches_predict(srv, models):
    for X in (models.Xd[:1], models.Xd1000):
        for dt in ("FP32", "FP64"):
            r = srv.post("/v2/models/diab/infer", v2_body(X, datatype=dt))
            got = v2_output(r, "predict")
            np.testing.assert_allclose(got, models.reg.predict(X),
                                       atol=TOL * 1000, rtol=TOL)
            # float32 outputs: compare as float32, exactly
            np.testing.assert_array_equal(
                got.astype(np.float32),
                models.reg.predict(X).astype(np.float32))


def test_v2_flat_data_id_parameters_and_several_inputs(srv, models):
    X = models.X[:5]
    body = {"id": "req-42", "parameters": {"content_type": "np"},
            "inputs": [{"name": "x", "shape": [5, 4], "datatype": "FP32",
                        "data": X.ravel().tolist()}]}
    r = srv.post("/v2/models/iris/versions/1.1/infer", body)
    assert r.json()["id"] == "req-42"
    assert r.json()["model_name"] == "iris"
    assert r.json()["model_version"] == "1.1"
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(X), atol=TOL)
    # one row as a 1-D tensor
    r = srv.post("/v2/models/iris/infer", {"inputs": [
        {"name": "x", "shape": [4], "datatype": "FP64",
         "data": X[0].tolist()}]})
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(X[:1]), atol=TOL)
    # four inputs, one column each
    r = srv.post("/v2/models/iris/infer", {"inputs": [
        {"name": f"f{i}", "shape": [5], "datatype": "FP64",
         "data": X[:, i].tolist()} for i in range(4)]})
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(X), atol=TOL)


def test_v2_integer_and_bool_datatypes(srv, models):
    X = np.array([[5, 3, 1, 0], [7, 3, 5, 2]])
    for dt in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
               "UINT32", "UINT64"):
        r = srv.post("/v2/models/iris/infer", v2_body(X, datatype=dt))
        np.testing.assert_allclose(v2_output(r, "predict_proba"),
                                   models.clf.predict_proba(X), atol=TOL)
    B = [[True, False, True, False]]
    r = srv.post("/v2/models/iris/infer", v2_body(B, datatype="BOOL"))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(
                                   np.array(B, dtype=float)), atol=TOL)


def test_seldon_ndarray_tensor_jsondata(srv, models):
    X = models.X1000
    want = models.clf.predict_proba(X)
    r = srv.post("/api/v1.0/predictions",
                 {"data": {"names": ["a", "b", "c", "d"],
                           "ndarray": X.tolist()}})
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["names"] == ["t:0", "t:1", "t:2"]
    np.testing.assert_allclose(np.array(d["ndarray"]), want, atol=TOL)
    r = srv.post("/predict", {"data": {"tensor": {
        "shape": [1000, 4], "values": X.ravel().tolist()}}})
    t = r.json()["data"]["tensor"]
    assert t["shape"] == [1000, 3]
    np.testing.assert_allclose(np.array(t["values"]).reshape(1000, 3), want,
                               atol=TOL)
    r = srv.post("/api/v1.0/predictions", {"jsonData": X[:1].tolist()})
    np.testing.assert_allclose(
        np.array(r.json()["jsonData"]["predictions"]), want[:1], atol=TOL)
    r = srv.post("/api/v1.0/predictions",
                 {"jsonData": {"ndarray": X[:2].tolist()},
                  "meta": {"puid": "p-1"}})
    assert r.json()["meta"]["puid"] == "p-1"
    assert r.json()["meta"]["requestPath"] == {"iris": "1.1"}
    np.testing.assert_allclose(
        np.array(r.json()["jsonData"]["predictions"]), want[:2], atol=TOL)
    # another model by name; a regressor answers a flat ndarray
    r = srv.post("/seldon/diab/api/v1.0/predictions",
                 {"data": {"ndarray": models.Xd[:3].tolist()}})
    np.testing.assert_allclose(np.array(r.json()["data"]["ndarray"]),
                               models.reg.predict(models.Xd[:3]), rtol=TOL)
    assert srv.get("/health/ping").text == "pong"
    assert srv.get("/health/status").json() == {"status": "ok"}


def test_tfserving_instances_inputs_and_status(srv, models):
    X = models.X1000
    r = srv.post("/v1/models/iris:predict", {"instances": X.tolist()})
    np.testing.assert_allclose(np.array(r.json()["predictions"]),
                               models.clf.predict_proba(X), atol=TOL)
    r = srv.post("/v1/models/iris/versions/1.1:predict",
                 {"inputs": X[:1].tolist()})
    np.testing.assert_allclose(np.array(r.json()["outputs"]),
                               models.clf.predict_proba(X[:1]), atol=TOL)
    r = srv.post("/v1/models/iris:predict",
                 {"inputs": {"x": X[:3].tolist()}, "signature_name": "a"})
    np.testing.assert_allclose(np.array(r.json()["outputs"]),
                               models.clf.predict_proba(X[:3]), atol=TOL)
    r = srv.post("/v1/models/diab:predict",
                 {"instances": [{"x": row} for row in
                                models.Xd[:4].tolist()]})
    np.testing.assert_allclose(np.array(r.json()["predictions"]),
                               models.reg.predict(models.Xd[:4]), rtol=TOL)
    assert srv.get("/v1/models").json() == {
        "models": ["iris", "diab", "iris10"]}
    st = srv.get("/v1/models/iris").json()
    assert st == {"name": "iris", "ready": True, "model_version_status": [{
        "version": "1.1", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}
    assert srv.get("/v1/models/iris/versions/1.0").status_code == 404


def test_v2_metadata_health_ready(srv):
    assert srv.get("/v2/health/live").json() == {"live": True}
    r = srv.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    meta = srv.get("/v2").json()
    assert meta["name"] == "assetfs-server" and "version" in meta
    m = srv.get("/v2/models/iris").json()
    assert m["name"] == "iris" and m["versions"] == ["1.1"]
    assert m["platform"] == "xgboost"
    assert m["inputs"] == [{"name": "input-0", "datatype": "FP32",
                            "shape": [-1, 4]}]
    assert [o["name"] for o in m["outputs"]] == ["predict_proba", "predict"]
    assert m["outputs"][0]["shape"] == [-1, 3]
    assert srv.get("/v2/models/iris/versions/1.1").status_code == 200
    m = srv.get("/v2/models/diab").json()
    assert m["versions"] == ["0.0"]    # newest of a plain directory
    assert m["outputs"] == [{"name": "predict", "datatype": "FP32",
                             "shape": [-1]}]
    r = srv.get("/v2/models/iris/ready")
    assert r.status_code == 200 and r.json()["ready"] is True
    assert srv.get("/v2/models/iris/versions/1.1/ready").status_code == 200
    assert srv.get("/v2/models/iris/versions/9.9/ready").status_code == 404
    assert srv.get("/v2/models/nope/ready").status_code == 404


def bad(r, status, *words, shape="v2"):
    assert r.status_code == status, (r.status_code, r.text)
    j = r.json()
    if shape == "seldon":
        msg = j["status"]["info"]
        assert j["status"]["status"] == "FAILURE"
        assert j["status"]["code"] == status
    else:
        assert set(j) == {"error"}, j
        msg = j["error"]
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_v2_errors_name_the_problem(srv, models):
    p = "/v2/models/iris/infer"
    bad(srv.post(p, "{not json"), 400, "malformed JSON")
    bad(srv.post(p, ""), 400, "no body")
    bad(srv.post(p, "[1, 2]"), 400, "JSON object")
    bad(srv.post(p, {"inputs": []}), 400, "inputs")
    bad(srv.post(p, {"inputs": [{"name": "x", "shape": [1, 4],
                                 "datatype": "FP32"}]}), 400, "'data'")
    bad(srv.post(p, {"inputs": [{"name": "x", "shape": [2, 4],
                                 "datatype": "FP32", "data": [1, 2, 3, 4]}]}),
        400, "inputs[0] (x)", "8 elements", "4")
    bad(srv.post(p, v2_body([[1, 2, 3]])), 400, "expects 4 features", "3")
    bad(srv.post(p, v2_body([[1, 2, 3, 4]], datatype="FP128")), 400,
        "datatype")
    bad(srv.post(p, v2_body([[1, 2, 3, 4]], datatype="BYTES")), 400,
        "BYTES")
    bad(srv.post(p, v2_body([[1.5, 2, 3, 4]], datatype="INT32")), 400,
        "element 0", "INT32")
    bad(srv.post(p, v2_body([[300, 2, 3, 4]], datatype="UINT8")), 400,
        "UINT8")
    bad(srv.post(p, v2_body([[-1, 2, 3, 4]], datatype="UINT64")), 400,
        "UINT64")
    bad(srv.post(p, {"inputs": [{"name": "x", "shape": [1, 4],
                                 "datatype": "FP32",
                                 "data": [[1, 2, "x", 4]]}]}), 400,
        "inputs[0] (x): element 2")
    bad(srv.post(p, v2_body([[1, 2, 3, 4]], datatype="BOOL")), 400,
        "boolean")
    bad(srv.post(p, v2_body([[1, 2, 3, 4]], id=7)), 400, "'id'")
    bad(srv.post(p, v2_body([[1, 2, 3, 4]], parameters=[])), 400,
        "'parameters'")
    bad(srv.post(p, v2_body([[1, 2, 3, 4]], outputs=[{"name": "zz"}])),
        400, "no output 'zz'")
    bad(srv.post("/v2/models/nope/infer", v2_body([[1, 2, 3, 4]])), 404,
        "unknown model 'nope'")
    bad(srv.post("/v2/models/iris/versions/1.0/infer",
                 v2_body([[1, 2, 3, 4]])), 404, "no version '1.0'")
    bad(srv.get("/v2/models/nope"), 404, "unknown model")
    bad(srv.get("/v2/models/iris/infer"), 405)
    bad(srv.get("/nothing/here"), 404)
    # still serving
    r = srv.post(p, v2_body(models.X[:2]))
    assert r.status_code == 200


def test_seldon_and_tfserving_errors(srv):
    bad(srv.post("/api/v1.0/predictions", "{nope"), 400, "malformed",
        shape="seldon")
    bad(srv.post("/api/v1.0/predictions", {"data": {}}), 400, "ndarray",
        shape="seldon")
    bad(srv.post("/api/v1.0/predictions",
                 {"data": {"ndarray": [[1, 2], [1, 2, 3]]}}), 400, "row 1",
        shape="seldon")
    bad(srv.post("/api/v1.0/predictions",
                 {"data": {"tensor": {"shape": [2, 4], "values": [1]}}}),
        400, "values", shape="seldon")
    bad(srv.post("/seldon/nope/api/v1.0/predictions",
                 {"data": {"ndarray": [[1, 2, 3, 4]]}}), 404, shape="seldon")
    bad(srv.post("/v1/models/iris:predict", "{"), 400, "malformed")
    bad(srv.post("/v1/models/iris:predict", {"foo": 1}), 400, "instances")
    bad(srv.post("/v1/models/iris:predict", {"instances": [[1, 2]]}), 400,
        "expects 4 features")
    bad(srv.post("/v1/models/nope:predict", {"instances": [[1, 2]]}), 404,
        "unknown model")
    bad(srv.get("/v1/models/nope"), 404)


def test_help_tells_the_truth(server_bin):
    import subprocess
    out = subprocess.run([server_bin, "--help"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0
    for opt in ("--model", "--config", "--assets-dir", "--http-port",
                "--metrics-port", "--workers", "--threads",
                "--max-requests", "--max-requests-jitter", "--keepalive",
                "--access-log", "--single-threaded", "--poll-interval",
                "--lazy", "--input", "--output", "--metrics-job",
                "MODELKIT_CACHE_PROVIDER"):
        assert opt in out.stdout, opt
    bad_run = subprocess.run([server_bin, "--bogus"], capture_output=True,
                             text=True, timeout=10)
    assert bad_run.returncode == 2 and "--bogus" in bad_run.stderr
    none = subprocess.run([server_bin, "--assets-dir", "/tmp"],
                          capture_output=True, text=True, timeout=10)
    assert none.returncode == 2 and "no model" in none.stderr


def test_startup_fails_clearly_on_a_missing_asset(server_bin, tmp_path):
    import subprocess
    (tmp_path / "a").mkdir()
    p = subprocess.run([server_bin, "--assets-dir", tmp_path, "--http-port",
                        "0", "--model", "m=nothere:1"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    assert "no such asset 'nothere'" in p.stderr


def test_single_threaded_and_thread_per_connection(servers, assets, models):
    for extra in (["--single-threaded"], ["--threads", "0"]):
        s = servers(["--assets-dir", assets, "--model", "iris=iris",
                     *extra])
        r = s.post("/v2/models/iris/infer", v2_body(models.X[:3]))
        np.testing.assert_allclose(v2_output(r, "predict_proba"),
                                   models.clf.predict_proba(models.X[:3]),
                                   atol=TOL)


def test_models_file_object_form(servers, assets, models, tmp_path):
    cfg = tmp_path / "models.json"
    cfg.write_text(json.dumps({
        "clf": {"asset": "iris:1.0", "runtime": "xgboost"},
        "reg": {"asset": "diab", "file": "model.json"}}))
    srv = servers(["--assets-dir", assets, "--config", cfg])
    r = srv.post("/v2/models/clf/infer", v2_body(models.X[:2]))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(models.X[:2]),
                               atol=TOL)
    assert r.json()["model_version"] == "1.0"
    r = srv.post("/v2/models/reg/infer", v2_body(models.Xd[:2]))
    assert r.status_code == 200
    bad_cfg = tmp_path / "bad.json"
    bad_cfg.write_text('{"models": [{"name": "x"}]}')
    import subprocess
    p = subprocess.run([srv.args[0], "--assets-dir", str(assets),
                        "--config", str(bad_cfg)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2 and 'has no "asset"' in p.stderr


def test_binary_classifier_gives_both_probabilities(servers, tmp_path,
                                                    models):
    root = tmp_path / "assets"
    models.save(models.clfbin, root / "bin" / "0.0", "model.ubj")
    srv = servers(["--assets-dir", root, "--model", "bin=bin"])
    X = models.X1000
    want = models.clfbin.predict_proba(X)
    assert want.shape == (1000, 2)
    r = srv.post("/v2/models/bin/infer", v2_body(X))
    np.testing.assert_allclose(v2_output(r, "predict_proba"), want,
                               atol=TOL)
    r = srv.post("/v2/models/bin/infer",
                 v2_body(X, outputs=[{"name": "predict"}]))
    np.testing.assert_array_equal(v2_output(r, "predict"),
                                  models.clfbin.predict(X))
    r = srv.post("/v1/models/bin:predict", {"instances": X[:5].tolist()})
    np.testing.assert_allclose(r.json()["predictions"], want[:5], atol=TOL)
    m = srv.get("/v2/models/bin").json()
    assert m["parameters"]["objective"] == "binary:logistic"
    assert m["outputs"][0] == {"name": "predict_proba", "datatype": "FP32",
                               "shape": [-1, 2]}


ROW = [5.1, 3.5, 1.4, 0.2]
# (path, good body, shape of its errors); each body is answered 200 as is
BODIES = [
    ("/v2/models/iris/infer", v2_body([ROW]), "v2"),
    ("/api/v1.0/predictions", {"data": {"ndarray": [ROW]}}, "seldon"),
    ("/api/v1.0/predictions",
     {"data": {"tensor": {"shape": [1, 4], "values": ROW}}}, "seldon"),
    ("/v1/models/iris:predict", {"instances": [ROW]}, "tfs"),
    ("/v1/models/iris:predict", {"inputs": [ROW]}, "tfs"),
]


def test_a_body_is_exactly_one_json_value(srv):
    """Issue 11, defect 4: bytes after the JSON value are a 400 in every
    protocol, naming the byte; whitespace after it is fine."""
    for path, body, shape in BODIES:
        text = json.dumps(body)
        r = srv.post(path, text + " \n\t")
        assert r.status_code == 200, (path, r.text)
        for tail in (" trailing", "{}", " {\"inputs\": []}", "]", "\x00x"):
            r = srv.post(path, text + tail)
            msg = bad(r, 400, "bytes after the JSON value",
                      shape="seldon" if shape == "seldon" else "v2")
            assert f"at byte {len(text) + (tail[0] == ' ')}" in msg, msg


def test_null_in_a_numeric_tensor_is_refused_naming_it(srv):
    """Issue 11, defect 4: null is not a missing value: a 400 that names
    the element, for every float and integer datatype."""
    p = "/v2/models/iris/infer"
    for dt in ("FP32", "FP64", "INT32", "UINT8"):
        body = v2_body([[5, 3, 1, 0]], datatype=dt)
        body["inputs"][0]["data"] = [[5, 3, None, 0]]
        bad(srv.post(p, body), 400, "inputs[0] (input-0): element 2 is null")
    bad(srv.post("/api/v1.0/predictions", {"data": {"tensor": {
        "shape": [1, 4], "values": [5.1, None, 1.4, 0.2]}}}), 400,
        "data.tensor.values: element 1 is null", shape="seldon")
    bad(srv.post("/api/v1.0/predictions",
                 {"data": {"ndarray": [[5.1, 3.5, None, 0.2]]}}), 400,
        "row 0 column 2", shape="seldon")
    bad(srv.post("/v1/models/iris:predict",
                 {"instances": [[5.1, 3.5, 1.4, None]]}), 400,
        "row 0 column 3")
    bad(srv.post("/v1/models/iris:predict",
                 {"instances": [5.1, None, 1.4, 0.2]}), 400,
        "element 1")
