"""Fixtures for the assetfs-server integration tests.

Models are trained in the test process with Debian's python3-xgboost and
saved as JSON and UBJ into directories laid out like the mount
(NAME/VERSION/model.json, with or without the `latest` / `N.latest` alias
symlinks). `servers` starts real assetfs-server processes on free ports,
waits until they answer, and always stops them at teardown (SIGTERM, then
SIGKILL), failing the test if a server's stderr shows sanitizer output.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("ASSETFS_BUILD", ROOT / "build"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugin_path():
    p = BUILD / "server" / "sample_plugin.so"
    assert p.exists(), f"build the sample plugin first ({p} missing)"
    return p


class Models:
    """An iris classifier and a diabetes regressor (and a second, different
    classifier for version swaps), with the data to check them."""

    def __init__(self):
        import xgboost as xgb
        from sklearn.datasets import load_diabetes, load_iris

        self.X, self.y = load_iris(return_X_y=True)
        self.clf = xgb.XGBClassifier(n_estimators=10, max_depth=3)
        self.clf.fit(self.X, self.y)
        self.clf2 = xgb.XGBClassifier(n_estimators=3, max_depth=2)
        self.clf2.fit(self.X, self.y)
        self.ybin = (self.y == 1).astype(int)
        self.clfbin = xgb.XGBClassifier(n_estimators=5, max_depth=2)
        self.clfbin.fit(self.X, self.ybin)
        self.Xd, self.yd = load_diabetes(return_X_y=True)
        self.reg = xgb.XGBRegressor(n_estimators=10, max_depth=3)
        self.reg.fit(self.Xd, self.yd)
        rng = np.random.default_rng(7)
        lo, hi = self.X.min(0), self.X.max(0)
        self.X1000 = rng.uniform(lo, hi, size=(1000, 4))
        lo, hi = self.Xd.min(0), self.Xd.max(0)
        self.Xd1000 = rng.uniform(lo, hi, size=(1000, 10))

    def save(self, model, directory, name="model.json"):
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        model.save_model(str(d / name))
        return d / name


@pytest.fixture(scope="session")
def models():
    return Models()


def alias(asset_dir, name, version):
    """Point alias @name at @version atomically, as the mount shows a
    moved version (a new symlink renamed over the old)."""
    asset_dir = pathlib.Path(asset_dir)
    tmp = asset_dir / f".{name}.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(version, tmp)
    os.replace(tmp, asset_dir / name)


class Server:
    def __init__(self, binary, args, env, log_path):
        self.port = free_port()
        self.metrics_port = None
        self.args = [binary, "--http-port", str(self.port), *args]
        if "--metrics-port" in args:
            self.metrics_port = int(args[args.index("--metrics-port") + 1])
        self.log_path = log_path
        full = dict(os.environ)
        full.update(env or {})
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=full)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=20, path="/v2/health/live"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited {self.proc.returncode}:\n"
                    + self.logtext())
            try:
                r = requests.get(self.url + path, timeout=1)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("server not ready:\n" + self.logtext())

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        return pathlib.Path(self.log_path).read_text(errors="replace")

    def get(self, path, **kw):
        kw.setdefault("timeout", 10)
        return requests.get(self.url + path, **kw)

    def post(self, path, body=None, **kw):
        kw.setdefault("timeout", 30)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return requests.post(self.url + path, data=body, **kw)

    def metrics(self):
        port = self.metrics_port or self.port
        r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert r.status_code == 200
        return r.text

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop the server; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        return self.proc.returncode


def metric(text, name, **labels):
    """Sum of the samples of @name whose labels include @labels."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        ok = all(f'{k}="{v}"' in head for k, v in labels.items())
        if ok:
            total += float(value)
            found = True
    return total if found else None


@pytest.fixture
def servers(server_bin, tmp_path):
    """servers(args, env=None, ready=True) -> a started Server; every
    server is stopped at teardown and its log checked for sanitizers."""
    started = []

    def start(args, env=None, ready=True, ready_path="/v2/health/live"):
        s = Server(server_bin, [str(a) for a in args], env,
                   tmp_path / f"server{len(started)}.log")
        started.append(s)
        if ready:
            s.wait_ready(path=ready_path)
        return s

    yield start
    bad = []
    codes = []
    for s in started:
        already = s.proc.poll() is not None
        code = s.stop()
        if not already:
            codes.append((code, s.args))
        text = s.logtext()
        if "ERROR: AddressSanitizer" in text or "runtime error:" in text \
                or "LeakSanitizer" in text:
            bad.append(text[-4000:])
    assert not bad, "sanitizer output in a server log:\n" + bad[0]
    for code, args in codes:
        assert code == 0, f"server {args} exited {code} on SIGTERM"


def v2_body(X, datatype="FP64", name="input-0", **extra):
    X = np.asarray(X)
    body = {"inputs": [{"name": name, "shape": list(X.shape),
                        "datatype": datatype, "data": X.tolist()}]}
    body.update(extra)
    return body


def v2_output(resp, name):
    assert resp.status_code == 200, resp.text
    for o in resp.json()["outputs"]:
        if o["name"] == name:
            return np.asarray(o["data"]).reshape(o["shape"])
    raise AssertionError(f"no output {name} in {resp.text[:500]}")


class Load:
    """@n threads posting V2 infer requests until stopped."""

    def __init__(self, srv, X, n=4, model="iris"):
        self.srv, self.X, self.model = srv, X, model
        self.results = []   # (status, version, proba or text)
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        s = requests.Session()
        body = v2_body(self.X)
        while not self.stop_flag.is_set():
            try:
                r = s.post(f"{self.srv.url}/v2/models/{self.model}/infer",
                           json=body, timeout=10)
                if r.status_code == 200:
                    j = r.json()
                    res = (200, j["model_version"],
                           np.asarray(j["outputs"][0]["data"]))
                else:
                    res = (r.status_code, None, r.text)
            except requests.RequestException as e:
                res = (0, None, repr(e))
            with self.lock:
                self.results.append(res)

    def versions_seen(self):
        with self.lock:
            return [r[1] for r in self.results]

    def wait_version(self, v, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.results and self.results[-1][1] == v:
                    return
            time.sleep(0.05)
        raise AssertionError(f"never switched to {v}")

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)
        return self.results
