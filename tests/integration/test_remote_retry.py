"""The request runner's retry rules, one scripted fault at a time (the
fault proxy's --script) in front of nginx: what is retried, how often, how
long Retry-After makes it wait, that a stall is cut short, that a resumed
body is exact, and that nothing outlives the timeout."""
import json
import os
import time

import pytest

from helpers_remote import servers, prov_tool  # noqa: F401
from conftest import run


@pytest.fixture(scope="module")
def origin(servers, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("retry-www")
    data = os.urandom(1 << 20)
    (root / "f.bin").write_bytes(data)
    ng = servers("nginx", "--root", str(root), name="nginx-retry")
    return {"url": ng["url"], "local": root / "f.bin", "data": data}


def one_read(servers, prov_tool, origin, script, timeout_ms,  # noqa: F811
             retry_after=1):
    fp = servers("fault", "--upstream", origin["url"], "--script", script,
                 "--retry-after", str(retry_after), "--stall-seconds", "30",
                 name=f"fault-{script}-{time.monotonic_ns()}")
    p = run([prov_tool, fp["url"], "stress", "f.bin", str(origin["local"]),
             "1", "1", "1"], env={"PROV_TOOL_TIMEOUT_MS": str(timeout_ms)})
    return json.loads(p.stdout), p.stderr.decode()


@pytest.mark.parametrize("script,retries", [
    ("500,500,429", 3), ("reset", 1), ("midreset", 1), ("truncate", 1),
    ("short", 1), ("503", 1)])
def test_retried_and_exact(servers, prov_tool, origin, script,  # noqa: F811
                           retries):
    res, _ = one_read(servers, prov_tool, origin, script, 10000)
    assert (res["ok"], res["wrong"], res["short"]) == (1, 0, 0), res
    assert res["retries"] == retries, res


def test_retry_after_is_honoured(servers, prov_tool, origin):  # noqa: F811
    res, _ = one_read(servers, prov_tool, origin, "503", 10000,
                      retry_after=2)
    assert res["ok"] == 1 and res["retries"] == 1
    assert res["max_ms"] >= 2000, res
    # a Retry-After beyond the deadline: give up at once, not after it
    res, err = one_read(servers, prov_tool, origin, "503", 2000,
                        retry_after=5)
    assert res["failed"] == 1 and res["errors"] == {"110": 1}, res
    assert res["max_ms"] < 1000, res
    assert "HTTP 503" in err and "no time left to retry" in err


def test_stall_is_cut_and_retried(servers, prov_tool, origin):  # noqa: F811
    # timeout 4 s: a transfer without a byte for 1 s is a stall
    res, _ = one_read(servers, prov_tool, origin, "stall", 4000)
    assert res["ok"] == 1 and res["retries"] == 1, res
    assert 1000 <= res["max_ms"] < 3000, res
    # stalled on every try: fails with ETIMEDOUT within the timeout
    res, err = one_read(servers, prov_tool, origin,
                        "stall,stall,stall,stall,stall", 3000)
    assert res["failed"] == 1 and res["errors"] == {"110": 1}, res
    assert res["max_ms"] <= 3300, res
    assert "stalled" in err or "gave up" in err or "no time left" in err


def test_final_errors_are_not_retried(prov_tool, origin):
    t0 = time.monotonic()
    p = run([prov_tool, origin["url"], "get", "missing.bin"], check=False)
    assert p.returncode == 1 and b"no such object" in p.stderr
    assert time.monotonic() - t0 < 1.5
