"""gRPC clients for the assetfs-server tests: Python stubs generated at
test time by protoc and grpc_python_plugin (protobuf-compiler,
protobuf-compiler-grpc) from the vendored server/proto/*.proto, and used
with Debian's python3-grpcio. `grpc_server` starts a server with a gRPC
port (a `servers` fixture with --grpc-port on a free port)."""
import importlib
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from helpers_server import ROOT, free_port

PROTO_DIR = ROOT / "server" / "proto"


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """A namespace of the generated modules: pb.v2, pb.v2g, pb.sel, pb.selg."""
    import grpc  # noqa: F401  (fail early when python3-grpcio is missing)
    out = tmp_path_factory.mktemp("grpc_stubs")
    plugin = shutil.which("grpc_python_plugin")
    assert plugin, "grpc_python_plugin missing (protobuf-compiler-grpc)"
    subprocess.run(["protoc", f"-I{PROTO_DIR}", "-I/usr/include",
                    f"--python_out={out}", f"--grpc_out={out}",
                    f"--plugin=protoc-gen-grpc={plugin}",
                    "grpc_predict_v2.proto", "prediction.proto"],
                   check=True)
    sys.path.insert(0, str(out))

    class NS:
        v2 = importlib.import_module("grpc_predict_v2_pb2")
        v2g = importlib.import_module("grpc_predict_v2_pb2_grpc")
        sel = importlib.import_module("prediction_pb2")
        selg = importlib.import_module("prediction_pb2_grpc")
    return NS


RAW_FMT = {"BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i",
           "INT64": "q", "UINT8": "B", "UINT16": "H", "UINT32": "I",
           "UINT64": "Q", "FP32": "f", "FP64": "d"}
TYPED_FIELD = {"BOOL": "bool_contents", "INT8": "int_contents",
               "INT16": "int_contents", "INT32": "int_contents",
               "INT64": "int64_contents", "UINT8": "uint_contents",
               "UINT16": "uint_contents", "UINT32": "uint_contents",
               "UINT64": "uint64_contents", "FP32": "fp32_contents",
               "FP64": "fp64_contents"}


def infer_request(pb, model, X, datatype="FP32", raw=False, outputs=(),
                  name="input-0", **kw):
    """A ModelInferRequest of one tensor X (2-D), typed or raw."""
    X = np.asarray(X)
    req = pb.v2.ModelInferRequest(model_name=model, **kw)
    t = req.inputs.add()
    t.name, t.datatype = name, datatype
    t.shape.extend(X.shape)
    flat = X.ravel().tolist()
    if datatype == "BOOL":
        flat = [bool(v) for v in flat]
    elif not datatype.startswith("FP"):
        flat = [int(v) for v in flat]
    if raw:
        req.raw_input_contents.append(
            struct.pack("<%d%s" % (len(flat), RAW_FMT[datatype]), *flat))
    else:
        getattr(t.contents, TYPED_FIELD[datatype]).extend(flat)
    for o in outputs:
        req.outputs.add().name = o
    return req


def output(resp, name):
    """Output @name of a ModelInferResponse as an array, raw or typed."""
    for i, o in enumerate(resp.outputs):
        if o.name != name:
            continue
        if resp.raw_output_contents:
            b = resp.raw_output_contents[i]
            fmt = RAW_FMT[o.datatype]
            vals = struct.unpack("<%d%s" % (len(b) // struct.calcsize(fmt),
                                            fmt), b)
        else:
            vals = list(getattr(o.contents, TYPED_FIELD[o.datatype]))
        return np.asarray(vals).reshape(list(o.shape))
    raise AssertionError(f"no output {name} in {resp}")


@pytest.fixture
def grpc_server(servers):
    """grpc_server(args, env=None) -> a Server with .grpc_port and .target."""
    def start(args, env=None, ready=True):
        port = free_port()
        s = servers(["--grpc-port", port, *args], env=env, ready=ready)
        s.grpc_port = port
        s.target = f"127.0.0.1:{port}"
        return s
    return start


def channel(srv, **opts):
    """A ready insecure channel to @srv's gRPC port."""
    import grpc
    ch = grpc.insecure_channel(srv.target, options=list(opts.items()))
    grpc.channel_ready_future(ch).result(timeout=20)
    return ch


def rpc_error(fn, *args, **kw):
    """Call @fn expecting a gRPC error; returns (code name, details)."""
    import grpc
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code().name, e.details()
    raise AssertionError("the call succeeded")


def slow_linear_server(grpc_server, tmp_path, *args):
    """A server of one lazily loaded model 'lin' (test_server_ops' linear
    plugin) whose load takes 1.5 s, with @args added to its command."""
    import json
    from test_server_ops import write_linear
    root = tmp_path / "assets"
    write_linear(root / "lin" / "0.0")
    cfg = tmp_path / "models.json"
    cfg.write_text(json.dumps({"models": [{
        "name": "lin", "asset": "lin", "runtime": "plugin",
        "config": {"load_delay_ms": 1500}}]}))
    return grpc_server(["--assets-dir", root, "--config", cfg, "--lazy",
                        *args])
