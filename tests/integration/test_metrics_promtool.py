"""Both /metrics endpoints pass `promtool check metrics` (Prometheus's own
linter: counters end in _total, every series has # HELP and # TYPE, names
in snake_case with their units): the mount's (`-o metrics_port=`), and the
server's on its own port (`--metrics-port`) and on the HTTP port. The
numbers are real: a read of a pushed asset moves the mount's fetched-bytes
counter by exactly the asset's size, and a prediction moves the server's
request counter. Both endpoints are common/metrics_http (libmicrohttpd):
only GET/HEAD of /metrics answers."""
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
import requests

from helpers_mount import mounter, push, read_all  # noqa: F401
from helpers_server import (free_port, metric, models, servers,  # noqa
                            v2_body, v2_output)

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None,
                                reason="promtool (Debian: prometheus) missing")


def promtool(text):
    """promtool check metrics on @text: (exit code, its complaints)."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


def scrape(port):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                  timeout=10).read().decode()


def families(text):
    """{name: (has HELP, TYPE)} and the sample names seen."""
    help_, type_, samples = set(), {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            help_.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            type_[name] = kind
        elif line and not line.startswith("#"):
            samples.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return help_, type_, samples


def test_promtool_rejects_what_the_mount_used_to_serve():
    # the checker itself can fail here: the old exposition of the mount
    code, out = promtool("# TYPE assetfs_bytes_fetched counter\n"
                         "assetfs_bytes_fetched 6\n")
    assert code != 0
    assert '"_total" suffix' in out and "no help text" in out


def test_mount_metrics_pass_promtool_and_count_a_read(assetfs_bin, store,
                                                      mounter, tmp_path):
    url, _ = store
    data = bytes(range(256)) * 4099  # 1 MiB + a bit, one block
    (tmp_path / "model.bin").write_bytes(data)
    assert push(assetfs_bin, url, tmp_path / "model.bin", "fraud/xgb") == \
        "fraud/xgb:0.0"
    port = free_port()
    m = mounter(url, metrics_port=port)

    before = scrape(port)
    code, out = promtool(before)
    assert code == 0, out
    assert out.strip() == "", out
    assert metric(before, "assetfs_fetched_bytes_total") == 0

    assert read_all(m.mnt / "fraud/xgb/0.0") == data
    after = scrape(port)
    code, out = promtool(after)
    assert code == 0, out
    assert metric(after, "assetfs_fetched_bytes_total") == len(data)
    assert metric(after, "assetfs_served_bytes_total") == len(data)
    assert metric(after, "assetfs_block_misses_total") >= 1
    assert metric(after, "assetfs_cache_bytes") >= len(data)
    # `assetfs stats` keeps its own keys and agrees with the endpoint
    assert m.stats()["bytes_fetched"] == len(data)

    help_, type_, samples = families(after)
    assert len(samples) >= 20
    for name in samples:
        assert name in help_ and name in type_, name
        if type_[name] == "counter":
            assert name.endswith("_total"), name
    assert type_["assetfs_cache_bytes"] == "gauge"

    # only GET/HEAD /metrics: other paths 404, other methods 405
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    assert e.value.code == 404
    r = requests.post(f"http://127.0.0.1:{port}/metrics", data="x",
                      timeout=10)
    assert r.status_code == 405
    r = requests.head(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize("own_port", [True, False])
def test_server_metrics_pass_promtool(servers, models, tmp_path, own_port):
    root = tmp_path / "assets"
    models.save(models.clf, root / "iris" / "1.0")
    args = ["--assets-dir", root, "--model", "iris=iris:1.0"]
    if own_port:
        args += ["--metrics-port", free_port()]
    srv = servers(args)
    X = models.X[:3]
    r = srv.post("/v2/models/iris/infer", v2_body(X))
    assert r.status_code == 200
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               models.clf.predict_proba(X), atol=1e-6)
    text = srv.metrics()
    code, out = promtool(text)
    assert code == 0, out
    assert metric(text, "assetfs_server_requests_total", model="iris",
                  protocol="v2", status="200") == 1
    help_, type_, samples = families(text)
    for name in samples:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert base in help_ and base in type_, name
    if own_port:
        # the metrics port is common/metrics_http: /metrics only
        r = requests.get(f"http://127.0.0.1:{srv.metrics_port}/v2",
                         timeout=10)
        assert r.status_code == 404
