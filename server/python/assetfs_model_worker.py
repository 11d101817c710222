"""assetfs-server's Python model process (server/rt_python.c starts it).

One process serves one loaded model version. It talks to the server over
the Unix socket on fd 3 in frames: a 32-byte header (magic, type, rows,
cols, cols2, reserved, payload length; host byte order, as
server/pyproc.h) and a payload. The first frame is a JSON load request
{"kind", "model", "dir", "file", "config"}; the answer is a JSON
description of the model (HELLO) or an error. After that, PREDICT frames
carry rows x cols float64 and are answered with RESULT frames of rows x
n_outputs float64 (or ERROR: 1 bad input, 2 the model raised, 3 out of
memory, after which the process exits). METRICS frames carry a whole data
set (and labels) and are answered with a JSON object.

Runtimes:
- sklearn: a joblib (or pickle) file of an estimator or pipeline;
  predict_proba for classifiers, predict otherwise.
- python: class=MODULE.CLASS, MODULE a file inside the version directory.
  Methods are looked for in this order: _predict_batch(items) and
  _predict(item) (modelkit's Model: constructed with asset_path set to the
  version directory, then _load()), then predict(X, features_names) or
  predict(X) (Seldon's Python wrapper: constructed with the config's
  "parameters" as keyword arguments, then load() if it has one).
- MLServer's model-settings.json ("implementation", "parameters.uri") is
  read when no class is given: an implementation naming sklearn loads the
  uri as an sklearn model, anything else is taken as MODULE.CLASS.

The process exits on EOF (the server closed the socket) and when its
parent changes (the server died while the model hung).
"""
import importlib
import inspect
import json
import math
import os
import pathlib
import socket
import struct
import sys
import threading
import time
import traceback
import warnings

import numpy as np

MAGIC = 0x79504641
HDR = struct.Struct("=IIIIIIQ")
LOAD, HELLO, PREDICT, RESULT, ERROR, METRICS, METRICS_RESULT = range(1, 8)
E_INPUT, E_MODEL, E_MEMORY, E_LOAD = 1, 2, 3, 4
MAX_TEXT = 1 << 20
MODEL = "?"


class Conn:
    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.hdr = bytearray(HDR.size)

    def _read_into(self, view):
        got = 0
        while got < len(view):
            n = self.sock.recv_into(view[got:])
            if n == 0:
                return False
            got += n
        return True

    def recv(self):
        """(type, rows, cols, cols2, payload bytearray) or None at EOF."""
        if not self._read_into(memoryview(self.hdr)):
            return None
        magic, typ, rows, cols, cols2, _, n = HDR.unpack(self.hdr)
        if magic != MAGIC:
            raise SystemExit("assetfs model worker: bad frame from server")
        payload = bytearray(n)
        if n and not self._read_into(memoryview(payload)):
            return None
        return typ, rows, cols, cols2, payload

    def send(self, typ, rows=0, cols=0, payload=b""):
        view = memoryview(payload).cast("B")
        head = HDR.pack(MAGIC, typ, rows, cols, 0, 0, len(view))
        self.sock.sendmsg([head, view])

    def send_error(self, kind, text):
        data = text.encode("utf-8", "replace")[:4000]
        self.send(ERROR, kind, 0, data)


def log(msg):
    sys.stderr.write(f"assetfs model worker ({MODEL}, pid {os.getpid()}): "
                     f"{msg}\n")
    sys.stderr.flush()


def describe(exc):
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 2000 else text[:2000] + "..."


def as_matrix(result, rows):
    """A model's answer as a C-contiguous float64 (rows, k) array."""
    y = np.asarray(result, dtype=np.float64)
    if y.ndim == 0:
        y = y.reshape(1, 1)
    if y.ndim == 1:
        y = y.reshape(rows, -1) if y.size % max(rows, 1) == 0 and \
            y.size != rows else y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[0] != rows:
        raise ValueError(f"the model returned shape {list(y.shape)} for "
                         f"{rows} rows")
    return np.ascontiguousarray(y)


def accepts(fn, name):
    if fn is object.__init__:
        return False
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(
        p.kind == p.VAR_KEYWORD for p in params.values())


def positional(fn):
    """How many positional arguments @fn (a bound method) takes."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


class Model:
    """What the server sees: predict(X) -> (rows, n_outputs)."""

    n_features = -1
    n_outputs = 1
    classifier = False
    objective = "python"
    obj = None

    def predict(self, x):
        raise NotImplementedError

    def metrics(self, x, y):
        if self.obj is not None and hasattr(self.obj, "metrics"):
            out = self.obj.metrics(x, y)
            if not isinstance(out, dict):
                raise TypeError("metrics() must return a dict")
            return out
        p = self.predict(x)
        out = {"rows": int(x.shape[0]),
               "mean_prediction": float(p.mean()) if p.size else 0.0}
        if y is None:
            return out
        if self.classifier and p.shape[1] > 1:
            idx = y.astype(np.int64)
            out["accuracy"] = float((p.argmax(1) == idx).mean())
            ok = (idx >= 0) & (idx < p.shape[1])
            pr = np.where(ok, p[np.arange(len(idx)),
                                np.clip(idx, 0, p.shape[1] - 1)], 0.0)
            out["log_loss"] = float(-np.log(np.clip(pr, 1e-15, 1)).mean())
        else:
            d = p[:, 0] - y
            out["rmse"] = float(math.sqrt((d * d).mean()))
            out["mae"] = float(np.abs(d).mean())
        return out


class Sklearn(Model):
    def __init__(self, path):
        import joblib
        from sklearn.base import is_classifier

        warnings.filterwarnings(
            "ignore", message="X does not have valid feature names")
        self.obj = est = joblib.load(path)
        self.proba = hasattr(est, "predict_proba") and is_classifier(est)
        self.classifier = self.proba
        self.n_features = int(getattr(est, "n_features_in_", -1))
        if self.proba:
            self.fn = est.predict_proba
            self.n_outputs = len(est.classes_)
        elif hasattr(est, "predict"):
            self.fn = est.predict
            self.n_outputs = int(getattr(est, "n_outputs_", 1) or 1)
        else:
            raise TypeError(f"{type(est).__name__} has no predict method")
        self.objective = f"sklearn:{type(est).__name__}"
        if isinstance(getattr(est, "steps", None), list) and est.steps:
            self.objective += f"({type(est.steps[-1][1]).__name__})"

    def predict(self, x):
        return as_matrix(self.fn(x), x.shape[0])

    def metrics(self, x, y):
        return Model.metrics(self, x, y)


class PythonClass(Model):
    def __init__(self, vdir, spec, config):
        module, _, name = spec.rpartition(".")
        parts = module.split(".") if module else []
        if not parts or not name.isidentifier() or \
                not all(p.isidentifier() for p in parts):
            raise ValueError(f"class={spec!r}: expected MODULE.CLASS")
        base = pathlib.Path(vdir, *parts)
        if not (base.with_suffix(".py").is_file()
                or (base / "__init__.py").is_file()):
            raise ImportError(f"class={spec}: no {'/'.join(parts)}.py in "
                              f"the model version {vdir}")
        sys.path.insert(0, vdir)
        cls = getattr(importlib.import_module(module), name)
        params = config.get("parameters") or {}
        modelkit = hasattr(cls, "_predict") or hasattr(cls, "_predict_batch")
        if modelkit:
            kw = {}
            if accepts(cls.__init__, "asset_path"):
                kw["asset_path"] = vdir
                if accepts(cls.__init__, "model_settings"):
                    kw["model_settings"] = params
            obj = cls(**kw)
            if not getattr(obj, "asset_path", None):
                obj.asset_path = vdir
            own_load = any(c.__module__.split(".")[0] == "modelkit"
                           for c in cls.__mro__[1:])
            if hasattr(obj, "_load") and not own_load:
                obj._load()
            if hasattr(obj, "_predict_batch"):
                self.fn = lambda x: obj._predict_batch(list(x))
            else:
                self.fn = lambda x: [obj._predict(row) for row in x]
        else:
            obj = cls(**params)
            if hasattr(obj, "load"):
                obj.load()
            if not hasattr(obj, "predict"):
                raise TypeError(f"{spec} has none of _predict_batch, "
                                "_predict, predict")
            names = list(config.get("features_names") or [])
            if positional(obj.predict) >= 2:
                self.fn = lambda x: obj.predict(x, names)
            else:
                self.fn = obj.predict
        self.obj = obj
        self.objective = f"python:{spec}"
        classes = getattr(obj, "class_names", None)
        self.n_features = int(config.get("n_features") or getattr(
            obj, "n_features", getattr(obj, "n_features_in_", -1)) or -1)
        n_out = config.get("n_outputs") or getattr(obj, "n_outputs", None)
        if n_out is None and classes:
            n_out = len(classes)
        if n_out is None and self.n_features > 0:
            n_out = np.asarray(self.fn(np.zeros((1, self.n_features))),
                               dtype=np.float64).size
        self.n_outputs = int(n_out or 1)
        self.classifier = bool(classes) or bool(
            getattr(obj, "is_classifier", False))

    def predict(self, x):
        y = as_matrix(self.fn(x), x.shape[0])
        if y.shape[1] != self.n_outputs:
            raise RuntimeError(
                f"the model returned {y.shape[1]} values per row, not "
                f"{self.n_outputs} (set n_outputs= in the model's config)")
        return y


def from_settings(vdir, config):
    """MLServer's model-settings.json -> (kind, file or class)."""
    path = pathlib.Path(vdir, "model-settings.json")
    settings = json.loads(path.read_text())
    impl = str(settings.get("implementation") or "")
    params = settings.get("parameters") or {}
    uri = str(params.get("uri") or "")
    if not impl:
        raise ValueError("model-settings.json has no implementation")
    if "sklearn" in impl.lower():
        target = pathlib.Path(vdir, uri).resolve() if uri else None
        root = pathlib.Path(vdir).resolve()
        if target is None:
            found = sorted(root.glob("*.joblib")) + sorted(root.glob("*.pkl"))
            if not found:
                raise FileNotFoundError("no model file in " + vdir)
            target = found[0]
        if root not in target.parents:
            raise ValueError(f"parameters.uri {uri!r} is outside the "
                             "model version")
        return Sklearn(str(target))
    extra = params.get("extra") if isinstance(params.get("extra"),
                                              dict) else {}
    config = dict(config)
    config.setdefault("parameters", extra)
    return PythonClass(vdir, impl, config)


def load(req):
    global MODEL
    MODEL = req.get("model", "?")
    config = req.get("config") or {}
    kind = req.get("kind")
    if kind == "sklearn":
        return Sklearn(req["file"])
    vdir = req["dir"]
    if config.get("class"):
        return PythonClass(vdir, config["class"], config)
    if pathlib.Path(vdir, "model-settings.json").is_file():
        return from_settings(vdir, config)
    raise ValueError("a python model needs class=MODULE.CLASS (or an "
                     "MLServer model-settings.json)")


def watch_parent():
    ppid = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != ppid:
            os._exit(0)


def out_of_memory(conn, exc):
    try:
        conn.send_error(E_MEMORY, describe(exc))
    finally:
        os._exit(3)


def serve(conn, model):
    while True:
        frame = conn.recv()
        if frame is None:
            return
        typ, rows, cols, cols2, payload = frame
        try:
            x = np.frombuffer(payload, dtype=np.float64, count=rows * cols)
            x = x.reshape(rows, cols)
            if typ == PREDICT:
                y = model.predict(x)
                conn.send(RESULT, y.shape[0], y.shape[1], y)
            elif typ == METRICS:
                labels = None
                if cols2:
                    labels = np.frombuffer(payload, dtype=np.float64,
                                           offset=rows * cols * 8)
                out = model.metrics(x, labels)
                text = json.dumps(out, default=lambda o: o.item()
                                  if hasattr(o, "item") else str(o))
                conn.send(METRICS_RESULT, 0, 0, text.encode()[:MAX_TEXT])
            else:
                conn.send_error(E_MODEL, f"unexpected frame type {typ}")
        except MemoryError as e:
            out_of_memory(conn, e)
        except ValueError as e:
            conn.send_error(E_INPUT, describe(e))
        except Exception as e:  # the model's own failure: say it, go on
            traceback.print_exc(file=sys.stderr)
            conn.send_error(E_MODEL, describe(e))


def main():
    conn = Conn(3)
    threading.Thread(target=watch_parent, daemon=True).start()
    frame = conn.recv()
    if frame is None or frame[0] != LOAD:
        return 2
    try:
        model = load(json.loads(bytes(frame[4])))
        hello = {"n_features": model.n_features,
                 "n_outputs": model.n_outputs,
                 "classifier": model.classifier,
                 "objective": model.objective[:60],
                 "metrics": True}
    except MemoryError as e:
        out_of_memory(conn, e)
    except BaseException as e:  # noqa: B036 - reported, then we exit
        traceback.print_exc(file=sys.stderr)
        conn.send_error(E_LOAD, describe(e))
        return 2
    conn.send(HELLO, 0, 0, json.dumps(hello).encode())
    try:
        serve(conn, model)
    except MemoryError as e:
        out_of_memory(conn, e)
    except (ConnectionError, BrokenPipeError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
