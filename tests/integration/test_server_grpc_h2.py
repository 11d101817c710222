"""The HTTP/2 side of assetfs-server's gRPC front end (libnghttp2), with
clients the project did not write: python3-grpcio (compressed requests,
a call in flight while the server stops), curl (a request that is not
gRPC), nghttp from nghttp2-client (the SETTINGS the server sends), and a
raw socket sending bytes that are not HTTP/2 at all, or HTTP/2 and then
nothing (the server's keepalive PING)."""
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from helpers_grpc import (channel, grpc_server, infer_request, output,  # noqa
                          pb, rpc_error, slow_linear_server)
from helpers_server import alias, models, servers  # noqa


@pytest.fixture
def assets(tmp_path, models):
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    alias(root / "iris", "1.latest", "1.0")
    return root


def test_compressed_requests_are_inflated_within_the_cap(grpc_server, assets,
                                                         pb, models):
    import grpc
    srv = grpc_server(["--assets-dir", assets, "--model", "iris=iris:1",
                       "--grpc-max-message", "65536"])
    want = models.clf.predict_proba(models.X[:3])
    for comp in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        ch = grpc.insecure_channel(srv.target, compression=comp)
        stub = pb.v2g.GRPCInferenceServiceStub(ch)
        got = output(stub.ModelInfer(infer_request(pb, "iris", models.X[:3]),
                                     timeout=20), "predict_proba")
        np.testing.assert_allclose(got, want, atol=1e-6)
        # 160 kB of zeros deflate to a few hundred bytes: the cap is on
        # what the message inflates to
        zeros = np.zeros((5000, 4))
        req = infer_request(pb, "iris", zeros, "FP64", raw=True)
        code, msg = rpc_error(stub.ModelInfer, req, timeout=20)
        assert code == "RESOURCE_EXHAUSTED", (code, msg)
        assert "65536 bytes once inflated" in msg
        ch.close()


def test_what_is_not_grpc_gets_http_errors(grpc_server, assets):
    srv = grpc_server(["--assets-dir", assets, "--model", "iris=iris:1"])
    url = f"http://{srv.target}/inference.GRPCInferenceService/ServerLive"
    p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o",
                        "/dev/null", "-w", "%{http_code} %{http_version}",
                        "-H", "content-type: application/json", "-d", "{}",
                        url], capture_output=True, text=True, timeout=30)
    assert p.stdout == "415 2", p
    p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o",
                        "/dev/null", "-w", "%{http_code}", "-H",
                        "content-type: application/grpc", url],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout == "405", p   # a GET


def test_settings_and_bytes_that_are_not_http2(grpc_server, assets, pb,
                                               models):
    srv = grpc_server(["--assets-dir", assets, "--model", "iris=iris:1",
                       "--grpc-max-streams", "7"])
    p = subprocess.run(["nghttp", "-nv", f"http://{srv.target}/"],
                       capture_output=True, text=True, timeout=30)
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7]" in p.stdout, p.stdout
    # HTTP/1.1, noise, and a DATA frame on stream 0 after a good preface:
    # the server closes those connections, the last with a GOAWAY, and
    # keeps serving
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    for junk, goaway in ((b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
                         (bytes(range(256)) * 8, False),
                         (preface + b"\0\0\0\x04\0\0\0\0\0"
                          + b"\0\0\x01\0\0\0\0\0\0x", True)):
        s = socket.create_connection(("127.0.0.1", srv.grpc_port), 10)
        s.settimeout(10)
        s.sendall(junk)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break   # closed by the server
            got += b
        s.close()
        kinds, i = [], 0
        while i + 9 <= len(got):
            kinds.append(got[i + 3])
            i += 9 + int.from_bytes(got[i:i + 3], "big")
        assert kinds[0] == 0x4, kinds   # our SETTINGS first
        assert (kinds[-1] == 0x7) == goaway, kinds
    stub = pb.v2g.GRPCInferenceServiceStub(channel(srv))
    got = output(stub.ModelInfer(infer_request(pb, "iris", models.X[:1])),
                 "predict_proba")
    np.testing.assert_allclose(got, models.clf.predict_proba(models.X[:1]),
                               atol=1e-6)


def test_a_call_in_flight_when_the_server_stops_is_answered(
        grpc_server, tmp_path, pb):
    from concurrent.futures import ThreadPoolExecutor
    from test_server_ops import linear
    srv = slow_linear_server(grpc_server, tmp_path)
    stub = pb.v2g.GRPCInferenceServiceStub(channel(srv))
    X = [[1, 2, 3]]
    with ThreadPoolExecutor(1) as ex:
        # the first call loads the model (1.5 s): it is in flight
        first = ex.submit(stub.ModelInfer, infer_request(pb, "lin", X,
                                                         "FP64"),
                          timeout=30)
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        got = output(first.result(timeout=30), "predict")
    np.testing.assert_allclose(got, linear(X))
    assert srv.proc.wait(timeout=30) == 0


def frames(sock, want, limit=64):
    """Read HTTP/2 frames from @sock until one of type @want (returned as
    (flags, payload)); None when the connection closes first."""
    buf = b""
    for _ in range(limit):
        while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
            b = sock.recv(65536)
            if not b:
                return None
            buf += b
        n = int.from_bytes(buf[:3], "big")
        kind, flags, payload = buf[3], buf[4], buf[9:9 + n]
        buf = buf[9 + n:]
        if kind == want:
            return flags, payload
    return None


def test_a_quiet_connection_is_pinged(grpc_server, assets):
    srv = grpc_server(["--assets-dir", assets, "--model", "iris=iris:1",
                       "--grpc-keepalive", "1"])
    s = socket.create_connection(("127.0.0.1", srv.grpc_port), 10)
    s.settimeout(30)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0\0\0\x04\0\0\0\0\0")
    got = frames(s, 0x6)   # a PING, sent after a second without bytes
    assert got is not None and got[0] & 1 == 0, got   # not an ACK
    # answered, the connection stays and is pinged again later
    s.sendall(b"\0\0\x08\x06\x01\0\0\0\0" + got[1])
    again = frames(s, 0x6)
    assert again is not None and again[0] & 1 == 0, again
    s.close()
