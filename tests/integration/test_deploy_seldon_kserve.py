"""deploy/seldon-deployment.yaml and deploy/kserve-inferenceservice.yaml:
they read the node's mount like deploy/server-deployment.yaml, and
assetfs-server started exactly as each platform starts the container
(Seldon's operator: its PREDICTIVE_UNIT_* environment from the graph;
KServe: the container's args) serves the model over the ports the
manifest declares, REST and gRPC, following the alias."""
import json
import pathlib

import numpy as np
import pytest
import yaml

from helpers_grpc import channel, infer_request, output, pb  # noqa
from helpers_server import Server, alias, free_port, models  # noqa

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
POD_MOUNT = "/mnt/assetfs"


def doc(name):
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.fixture
def node_mount(tmp_path, models):
    """What the pod sees at /mnt/assetfs: assets/fraud/xgb with 1.latest."""
    base = tmp_path / "mnt"
    d = base / "assets" / "fraud" / "xgb"
    models.save(models.clf, d / "1.0")
    alias(d, "1.latest", "1.0")
    alias(d, "latest", "1.0")
    return base


def pod_path(path, base):
    assert path.startswith(POD_MOUNT + "/"), path
    return str(base) + path[len(POD_MOUNT):]


class PodServer(Server):
    def __init__(self, binary, args, env, log_path, port):
        import os
        import subprocess
        self.port, self.metrics_port = port, None
        self.args = [binary, *args]
        self.log_path = log_path
        full = dict(os.environ)
        full.update(env)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=full)
        self.url = f"http://127.0.0.1:{port}"


def mounts_the_node_read_only(spec):
    c = spec["containers"][0]
    vm = [m for m in c["volumeMounts"] if m["mountPath"] == POD_MOUNT]
    assert len(vm) == 1 and vm[0]["readOnly"] is True
    assert vm[0]["mountPropagation"] == "HostToContainer"
    vol = {v["name"]: v for v in spec["volumes"]}[vm[0]["name"]]
    node = next(yaml.safe_load_all(
        (DEPLOY / "server-deployment.yaml").read_text()))
    assert vol["hostPath"]["path"] == \
        node["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"]
    assert c["image"] == "${ASSETFS_IMAGE}"
    assert c["command"] == ["assetfs-server"]
    return c


def test_seldon_deployment_runs_as_seldon_starts_it(server_bin, node_mount,
                                                    tmp_path, pb, models):
    sd = doc("seldon-deployment.yaml")
    assert sd["kind"] == "SeldonDeployment"
    pred = sd["spec"]["predictors"][0]
    c = mounts_the_node_read_only(pred["componentSpecs"][0]["spec"])
    graph = pred["graph"]
    params = [dict(p) for p in graph["parameters"]]
    uri = [p for p in params if p["name"] == "model_uri"][0]
    assert uri["value"].endswith("/1.latest")   # an alias: it floats
    uri["value"] = pod_path(uri["value"], node_mount)
    http, grpc_port, mport = free_port(), free_port(), free_port()
    # what Seldon's operator sets on a custom model container
    env = {"PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http),
           "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(grpc_port),
           "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(mport),
           "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
           "PREDICTIVE_UNIT_ID": graph["name"],
           "PREDICTIVE_UNIT_PARAMETERS": json.dumps(params)}
    env.update({e["name"]: e["value"] for e in c.get("env", [])})
    s = PodServer(server_bin, ["--poll-interval", "0.2"], env,
                  tmp_path / "seldon.log", http)
    try:
        s.wait_ready()
        X = models.X[:3]
        r = s.post("/api/v1.0/predictions",
                   {"data": {"ndarray": X.tolist()}}).json()
        assert r["meta"]["requestPath"] == {"classifier": "1.0"}
        np.testing.assert_allclose(r["data"]["ndarray"],
                                   models.clf.predict_proba(X), atol=1e-6)
        s.grpc_port, s.target = grpc_port, f"127.0.0.1:{grpc_port}"
        m = pb.sel.SeldonMessage()
        for row in X.tolist():
            m.data.ndarray.append(row)
        g = pb.selg.SeldonStub(channel(s)).Predict(m)
        np.testing.assert_allclose([list(x) for x in g.data.ndarray],
                                   models.clf.predict_proba(X), atol=1e-6)
        import requests
        t = requests.get(f"http://127.0.0.1:{mport}/prometheus",
                         timeout=10).text
        assert "assetfs_server_grpc_requests_total" in t
    finally:
        s.stop()


def test_kserve_inferenceservice_runs_as_kserve_starts_it(server_bin,
                                                          node_mount,
                                                          tmp_path, pb,
                                                          models):
    isvc = doc("kserve-inferenceservice.yaml")
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["annotations"][
        "serving.kserve.io/deploymentMode"] == "RawDeployment"
    c = mounts_the_node_read_only(isvc["spec"]["predictor"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    args = dict(a[2:].split("=", 1) for a in c["args"])
    assert int(args["http-port"]) == ports["http1"]
    assert int(args["grpc-port"]) == ports["h2c"]
    assert c["readinessProbe"]["httpGet"]["port"] == ports["http1"]
    # the same args, with this machine's free ports and the mount's path
    http, grpc_port = free_port(), free_port()
    args.update({"http-port": str(http), "grpc-port": str(grpc_port),
                 "metrics-port": str(free_port()),
                 "assets-dir": pod_path(args["assets-dir"], node_mount)})
    s = PodServer(server_bin, [f"--{k}={v}" for k, v in args.items()], {},
                  tmp_path / "kserve.log", http)
    try:
        s.wait_ready(path=c["readinessProbe"]["httpGet"]["path"])
        X = models.X[:4]
        name = args["model"].split("=")[0]
        r = s.post(f"/v2/models/{name}/infer", {"inputs": [{
            "name": "x", "shape": [4, 4], "datatype": "FP64",
            "data": X.tolist()}]}).json()
        rest = np.reshape(r["outputs"][0]["data"], (4, 3))
        s.grpc_port, s.target = grpc_port, f"127.0.0.1:{grpc_port}"
        stub = pb.v2g.GRPCInferenceServiceStub(channel(s))
        got = output(stub.ModelInfer(infer_request(pb, name, X, "FP64")),
                     "predict_proba")
        np.testing.assert_array_equal(np.float32(got), np.float32(rest))
        np.testing.assert_allclose(got, models.clf.predict_proba(X),
                                   atol=1e-6)
    finally:
        s.stop()
