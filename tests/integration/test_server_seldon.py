"""Seldon Core's names for assetfs-server's settings: each environment
variable of Seldon's Python server (and --pidfile) takes effect — a port
is listened on, a worker count shows in the process tree, the metrics
path answers, the log says what it should — and PREDICTIVE_UNIT_PARAMETERS'
model_uri (or --model-uri) is served as PREDICTIVE_UNIT_ID, following an
alias of the mount as --model does."""
import json
import os
import pathlib
import socket
import subprocess
import time

import numpy as np
import pytest
import requests

from helpers_grpc import channel, infer_request, output, pb  # noqa
from helpers_server import Server, alias, free_port, models  # noqa

TOL = 1e-6
ROW = [[5.1, 3.5, 1.4, 0.2]]


class EnvServer(Server):
    """A server configured by its environment only (no --http-port)."""

    def __init__(self, binary, args, env, log_path, port):
        self.port, self.metrics_port = port, None
        self.args = [binary, *[str(a) for a in args]]
        self.log_path = log_path
        full = {k: v for k, v in os.environ.items()
                if not k.startswith(("PREDICTIVE_UNIT", "GUNICORN",
                                     "GRPC_WORKERS", "FLASK_", "SELDON_",
                                     "LOG_LEVEL_ENV", "PAYLOAD_",
                                     "FILTER_METRICS"))}
        full.update({k: str(v) for k, v in env.items()})
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=full)
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def assets(tmp_path, models):
    root = tmp_path / "assets"
    models.save(models.clf, root / "fraud" / "xgb" / "1.0")
    alias(root / "fraud" / "xgb", "1.latest", "1.0")
    alias(root / "fraud" / "xgb", "latest", "1.0")
    return root


@pytest.fixture
def seldon(server_bin, tmp_path, assets):
    """seldon(env, args=(), ready=True) -> a running EnvServer; the HTTP
    port comes from PREDICTIVE_UNIT_HTTP_SERVICE_PORT (set here unless the
    test sets it)."""
    started = []

    def start(env, args=None, ready=True):
        env = dict(env)
        env.setdefault("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", free_port())
        if args is None:
            args = ["--assets-dir", assets, "--model", "iris=fraud/xgb:1"]
        s = EnvServer(server_bin, args, env,
                      tmp_path / f"seldon{len(started)}.log",
                      int(env["PREDICTIVE_UNIT_HTTP_SERVICE_PORT"]))
        started.append(s)
        if ready:
            s.wait_ready()
        return s

    yield start
    for s in started:
        s.stop()


def children(pid):
    out = []
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                st = (d / "stat").read_text()
            except OSError:
                continue
            if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def threads_of(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])


def listeners(port):
    """LISTEN sockets on @port (one per worker with SO_REUSEPORT)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(f).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
                n += 1
    return n


def test_ports_and_metrics_endpoint(seldon, pb):
    http, grpc_port, mport = free_port(), free_port(), free_port()
    s = seldon({"PREDICTIVE_UNIT_HTTP_SERVICE_PORT": http,
                "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": grpc_port,
                "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": mport,
                "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus"})
    assert s.post("/api/v1.0/predictions",
                  {"data": {"ndarray": ROW}}).status_code == 200
    s.grpc_port, s.target = grpc_port, f"127.0.0.1:{grpc_port}"
    stub = pb.v2g.GRPCInferenceServiceStub(channel(s))
    assert stub.ServerLive(pb.v2.ServerLiveRequest()).live
    r = requests.get(f"http://127.0.0.1:{mport}/prometheus", timeout=10)
    assert r.status_code == 200
    assert "assetfs_server_requests_total" in r.text
    assert requests.get(f"http://127.0.0.1:{mport}/metrics",
                        timeout=10).status_code == 404


def test_metrics_endpoint_on_the_main_port(seldon):
    s = seldon({"PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus"})
    assert "assetfs_server_requests_total" in s.get("/prometheus").text
    assert s.get("/metrics").status_code == 404


def test_gunicorn_workers_and_grpc_workers(seldon):
    gport = free_port()
    s = seldon({"GUNICORN_WORKERS": 3, "GRPC_WORKERS": 2,
                "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": gport})
    deadline = time.monotonic() + 20
    while (len(children(s.proc.pid)) != 3 or listeners(gport) != 2) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(children(s.proc.pid)) == 3
    assert listeners(gport) == 2
    off = free_port()
    s2 = seldon({"GRPC_WORKERS": 0, "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": off})
    assert s2.get("/v2/health/ready").status_code == 200
    assert listeners(off) == 0


def test_gunicorn_threads_and_flask_single_threaded(seldon):
    many = seldon({"GUNICORN_THREADS": 12})
    single = seldon({"GUNICORN_THREADS": 12, "FLASK_SINGLE_THREADED": "true"})
    assert threads_of(many.proc.pid) - threads_of(single.proc.pid) >= 10
    assert single.post("/v1/models/iris:predict",
                       {"instances": ROW}).status_code == 200


def test_gunicorn_max_requests_and_jitter(seldon):
    recycled = seldon({"GUNICORN_WORKERS": 1, "GUNICORN_MAX_REQUESTS": 5,
                       "GUNICORN_MAX_REQUESTS_JITTER": 0})
    jittered = seldon({"GUNICORN_WORKERS": 1, "GUNICORN_MAX_REQUESTS": 5,
                       "GUNICORN_MAX_REQUESTS_JITTER": 10**12})
    for s in (recycled, jittered):
        for _ in range(30):
            assert s.post("/v1/models/iris:predict",
                          {"instances": ROW}).status_code == 200
    time.sleep(1.5)

    def restarts(s):
        for line in s.get("/metrics").text.splitlines():
            if line.startswith("assetfs_server_worker_restarts_total "):
                return float(line.split()[1])
    assert restarts(recycled) >= 1
    assert restarts(jittered) == 0   # 5 + up to 10^12: not within 30


def test_gunicorn_keepalive(seldon):
    s = seldon({"GUNICORN_KEEPALIVE": 1})
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.recv(4096).startswith(b"HTTP/1.1 200")
    t0 = time.monotonic()
    assert c.recv(4096) == b""    # the idle connection is closed
    assert time.monotonic() - t0 < 4
    c.close()


def test_access_log_and_filtering_metrics(seldon):
    s = seldon({"GUNICORN_ACCESS_LOG": "true",
                "FILTER_METRICS_ACCESS_LOGS": "true"})
    s.get("/metrics")
    s.get("/v2/models/iris")
    time.sleep(0.3)
    log = s.logtext()
    assert '"GET /v2/models/iris"' in log
    assert '"GET /metrics"' not in log
    s2 = seldon({"GUNICORN_ACCESS_LOG": "1"})
    s2.get("/metrics")
    time.sleep(0.3)
    assert '"GET /metrics"' in s2.logtext()


def test_log_level_env_seldon_debug_and_payload_passthrough(seldon):
    quiet = seldon({"LOG_LEVEL_ENV": "ERROR"})
    debug = seldon({"SELDON_DEBUG": "1"})
    loud = seldon({"LOG_LEVEL_ENV": "DEBUG", "PAYLOAD_PASSTHROUGH": "true"})
    assert " info: " not in quiet.logtext()
    assert " debug: http port" in debug.logtext()
    assert " debug: http port" in loud.logtext()
    assert "PAYLOAD_PASSTHROUGH is set: it has no effect here" \
        in loud.logtext()
    bad = seldon({"LOG_LEVEL_ENV": "LOUD"}, ready=False)
    assert bad.proc.wait(timeout=10) == 2
    assert "LOG_LEVEL_ENV: 'LOUD'" in bad.logtext()


def test_pidfile(seldon, tmp_path):
    pidfile = tmp_path / "server.pid"
    s = seldon({}, args=["--assets-dir", tmp_path / "assets", "--model",
                         "iris=fraud/xgb:1", "--pidfile", pidfile])
    assert int(pidfile.read_text()) == s.proc.pid
    assert s.stop() == 0
    assert not pidfile.exists()


@pytest.mark.parametrize("how", ["env", "flag"])
def test_model_uri_served_as_unit_id_following_the_alias(seldon, assets,
                                                         models, how):
    uri = str(assets / "fraud" / "xgb" / "1.latest")
    env = {"PREDICTIVE_UNIT_ID": "fraud-clf", "PREDICTIVE_UNIT_PARAMETERS":
           json.dumps([{"name": "threshold", "value": "0.5",
                        "type": "FLOAT"},
                       {"name": "model_uri", "value": uri,
                        "type": "STRING"}])}
    args = ["--poll-interval", "0.2"]
    if how == "flag":
        env = {"PREDICTIVE_UNIT_ID": "fraud-clf"}
        args += ["--model-uri", uri]
    s = seldon(env, args=args)
    r = s.post("/api/v1.0/predictions", {"data": {"ndarray": ROW}}).json()
    assert r["meta"]["requestPath"] == {"fraud-clf": "1.0"}
    np.testing.assert_allclose(r["data"]["ndarray"],
                               models.clf.predict_proba(np.array(ROW)),
                               atol=TOL)
    # the alias moves, as the mount shows a push: the server follows
    models.save(models.clf2, assets / "fraud" / "xgb" / "1.1")
    alias(assets / "fraud" / "xgb", "1.latest", "1.1")
    deadline = time.monotonic() + 15
    while s.get("/v2/models/fraud-clf").json()["versions"] != ["1.1"]:
        assert time.monotonic() < deadline, s.logtext()
        time.sleep(0.1)
    r = s.post("/api/v1.0/predictions", {"data": {"ndarray": ROW}}).json()
    np.testing.assert_allclose(r["data"]["ndarray"],
                               models.clf2.predict_proba(np.array(ROW)),
                               atol=TOL)


def test_model_uri_default_name_and_bad_uri(seldon, assets):
    s = seldon({"PREDICTIVE_UNIT_PARAMETERS": json.dumps(
        [{"name": "model_uri", "value": str(assets / "fraud" / "xgb" /
                                            "1.0"), "type": "STRING"}])},
        args=[])
    assert s.get("/v2/models/model").json()["versions"] == ["1.0"]
    bad = seldon({"PREDICTIVE_UNIT_PARAMETERS": json.dumps(
        [{"name": "model_uri", "value": "gs://bucket/model",
          "type": "STRING"}])}, args=[], ready=False)
    assert bad.proc.wait(timeout=10) == 2
    assert "model_uri 'gs://bucket/model': not a local path" \
        in bad.logtext()
