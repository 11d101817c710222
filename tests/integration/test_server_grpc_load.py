"""assetfs-server's gRPC front end under load, with python3-grpcio: a
version swap while clients call ModelInfer without pause (zero failed
calls), one client opening 1,000 concurrent streams, and a client that
stops reading its answers while others are still served."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

from helpers_grpc import (channel, grpc_server, infer_request,  # noqa
                          output, pb)
from helpers_server import alias, models, servers  # noqa

TOL = 1e-6


def test_swap_under_grpc_load_with_zero_failures(grpc_server, tmp_path, pb,
                                                 models):
    import grpc
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    alias(root / "iris", "1.latest", "1.0")
    srv = grpc_server(["--assets-dir", root, "--model", "iris=iris:1",
                       "--poll-interval", "0.2", "--threads", "4"])
    X = models.X[:5]
    want = {"1.0": models.clf.predict_proba(X),
            "1.1": models.clf2.predict_proba(X)}
    results, lock, stop = [], threading.Lock(), threading.Event()

    def run():
        stub = pb.v2g.GRPCInferenceServiceStub(channel(srv))
        req = infer_request(pb, "iris", X, "FP64", raw=True)
        while not stop.is_set():
            try:
                r = stub.ModelInfer(req, timeout=10)
                res = ("OK", r.model_version, output(r, "predict_proba"))
            except grpc.RpcError as e:
                res = (e.code().name, None, e.details())
            with lock:
                results.append(res)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.7)
        models.save(models.clf2, root / "iris" / "1.1", "model.ubj")
        alias(root / "iris", "1.latest", "1.1")
        deadline = time.monotonic() + 15
        while True:
            with lock:
                if results and results[-1][1] == "1.1":
                    break
            assert time.monotonic() < deadline, "never swapped"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    failed = [r for r in results if r[0] != "OK"]
    assert not failed, failed[:3]
    seen = [r[1] for r in results]
    assert len(seen) > 100 and set(seen) == {"1.0", "1.1"}
    assert seen[-1] == "1.1"
    for _, version, proba in results:
        np.testing.assert_allclose(proba, want[version], atol=TOL)


def test_one_client_opens_1000_streams(grpc_server, tmp_path, pb, models):
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    srv = grpc_server(["--assets-dir", root, "--model", "iris=iris:1.0"])
    stub = pb.v2g.GRPCInferenceServiceStub(channel(srv))
    X = models.X[:3]
    futures = [stub.ModelInfer.future(
        infer_request(pb, "iris", X, "FP32", id=str(i)), timeout=60)
        for i in range(1000)]   # one HTTP/2 connection, 1,000 streams
    got = [f.result() for f in futures]
    assert sorted(int(r.id) for r in got) == list(range(1000))
    want = models.clf.predict_proba(X)
    for r in got:
        np.testing.assert_allclose(output(r, "predict_proba"), want,
                                   atol=TOL)


SLOW_CLIENT = textwrap.dedent("""
    import sys, time, struct
    sys.path.insert(0, sys.argv[1])
    import grpc
    import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as pbg
    ch = grpc.insecure_channel(sys.argv[2])
    grpc.channel_ready_future(ch).result(timeout=20)
    stub = pbg.GRPCInferenceServiceStub(ch)
    req = pb.ModelInferRequest(model_name="iris")
    t = req.inputs.add()
    t.name, t.datatype = "x", "FP64"
    t.shape.extend([2000, 4])
    t.contents.fp64_contents.extend([5.1, 3.5, 1.4, 0.2] * 2000)
    fs = [stub.ModelInfer.future(req) for _ in range(300)]
    print("sent", flush=True)
    time.sleep(3600)
""")


def test_a_client_that_never_reads_does_not_stop_others(grpc_server,
                                                        tmp_path, pb,
                                                        models):
    """The slow client asks for 300 answers of 2,000 rows (about 25 MB)
    and is then frozen (SIGSTOP): it reads nothing more. The server's
    sends to it stall; everyone else is still answered, over gRPC and
    REST."""
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    srv = grpc_server(["--assets-dir", root, "--model", "iris=iris:1.0",
                       "--threads", "2"])
    stubs_dir = os.path.dirname(sys.modules[pb.v2.__name__].__file__)
    slow = subprocess.Popen([sys.executable, "-c", SLOW_CLIENT, stubs_dir,
                             srv.target], stdout=subprocess.PIPE, text=True)
    try:
        assert slow.stdout.readline().strip() == "sent"
        time.sleep(0.3)
        slow.send_signal(signal.SIGSTOP)
        time.sleep(1.0)   # the server is now stuck sending to it
        stub = pb.v2g.GRPCInferenceServiceStub(channel(srv))
        t0 = time.monotonic()
        for _ in range(50):
            r = stub.ModelInfer(infer_request(pb, "iris", models.X[:2]),
                                timeout=5)
            np.testing.assert_allclose(
                output(r, "predict_proba"),
                models.clf.predict_proba(models.X[:2]), atol=TOL)
        assert time.monotonic() - t0 < 10
        assert srv.get("/v2/health/ready").status_code == 200
    finally:
        slow.send_signal(signal.SIGCONT)
        slow.kill()
        slow.wait(timeout=10)
