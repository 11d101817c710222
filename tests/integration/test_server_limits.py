"""assetfs-server against hostile clients: a 100 MB body, 10,000-deep
nesting, a client sending one byte a second, too many connections. Each
gets the right 4xx or a closed connection, and the server keeps serving
everyone else meanwhile."""
import socket
import threading
import time

import numpy as np
import pytest

from helpers_server import models, servers, v2_body, v2_output  # noqa


@pytest.fixture
def srv(servers, tmp_path, models):
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    return servers(["--assets-dir", root, "--model", "iris=iris",
                    "--request-timeout", "2", "--max-connections", "16",
                    "--threads", "2"])


def still_serving(srv, models):
    r = srv.post("/v2/models/iris/infer", v2_body(models.X[:2]))
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(models.X[:2]),
                               atol=1e-6)


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def test_100mb_body_gets_413_before_it_is_read(srv, models):
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\n"
              b"Content-Length: 104857600\r\n\r\n")
    s.sendall(b"[" * 65536)
    data = read_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert b"larger than 33554432 bytes" in data
    # without a length (chunked): the connection is closed past the cap
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    closed = False
    t0 = time.monotonic()
    try:
        for _ in range(100):
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        closed = read_all(s) == b""
    s.close()
    assert closed
    assert time.monotonic() - t0 < 20
    still_serving(srv, models)


def test_deep_nesting_is_refused(srv, models):
    deep = "[" * 10000 + "1" + "]" * 10000
    for path, body in [
            ("/v2/models/iris/infer",
             '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", '
             '"data": ' + deep + '}]}'),
            ("/api/v1.0/predictions", '{"data": {"ndarray": ' + deep + '}}'),
            ("/v1/models/iris:predict", '{"instances": ' + deep + '}')]:
        r = srv.post(path, body)
        assert r.status_code == 400, r.text
        assert "nested deeper than 32" in r.text
    still_serving(srv, models)


def test_slow_clients_are_cut_off_and_others_served(srv, models):
    def slow(prefix, results):
        s = socket.create_connection(("127.0.0.1", srv.port))
        t0 = time.monotonic()
        try:
            s.sendall(prefix)
            for _ in range(30):
                s.sendall(b" ")
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_all(s, timeout=5)
        results.append((time.monotonic() - t0, data))
        s.close()

    results = []
    threads = [
        # body one byte at a time
        threading.Thread(target=slow, args=(
            b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100\r\n\r\n", results)),
        # headers one byte at a time
        threading.Thread(target=slow, args=(
            b"POST /v2/models/iris/infer HTTP/1.1\r\nX-Slow: a", results)),
    ]
    for t in threads:
        t.start()
    # meanwhile everyone else is served promptly
    t0 = time.monotonic()
    for _ in range(20):
        still_serving(srv, models)
    assert time.monotonic() - t0 < 5
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2
    for elapsed, data in results:
        assert elapsed < 7, elapsed   # cut off at ~2 s, not after 15 s
        assert not data.startswith(b"HTTP/1.1 200")
    still_serving(srv, models)


def test_connection_limit(srv, models):
    idle = [socket.create_connection(("127.0.0.1", srv.port))
            for _ in range(16)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", srv.port))
    extra.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_all(extra, timeout=3)
    extra.close()
    assert not data.startswith(b"HTTP/1.1 200"), data[:100]
    for s in idle:
        s.close()
    time.sleep(0.3)
    still_serving(srv, models)


def test_garbage_request_lines(srv, models):
    for junk in (b"\x00\x01\x02 garbage\r\n\r\n",
                 b"GET " + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
                 b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: -5\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", srv.port))
        try:
            s.sendall(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_all(s, timeout=5)
        s.close()
        assert data == b"" or data.startswith(b"HTTP/1.1 4"), data[:100]
    still_serving(srv, models)
