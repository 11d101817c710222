"""A node in a box (issue 13): the image scripts/image builds, run with
podman the way deploy/ runs it on a Kubernetes node.

A host directory bind-mounted onto itself and made rshared stands for the
hostPath /var/lib/assetfs. The DaemonSet's container (privileged,
/dev/fuse, its own start script and readiness probe from
deploy/daemonset.yaml) mounts the store below it with :rshared and keeps
the cache on another host directory; two containers of the Deployment in
deploy/server-deployment.yaml read the model through the propagated mount
(:rslave) and answer predictions. The test shows:

- the mount made inside the daemon's container is visible on the host and
  in both servers' containers;
- both servers predict, with numbers equal to xgboost's own in Python;
- the pin file (deploy/config.yaml's assetfs-pins, mounted as the kubelet
  mounts a ConfigMap) makes the model local before any server starts:
  `assetfs pin wait` passes and the pin gauge says ready, with the model's
  bytes fetched once, by the warmer, not by a reader;
- the model was fetched once for the node: the mount's counters (its
  `assetfs stats` in the container and its Prometheus port) show exactly
  the model's bytes, though four server workers loaded it, and no read
  missed the cache;
- a new version pushed while both servers are under load, its data still
  on its way (listed, not fetchable yet), leaves 1.latest on the old one
  (warm_before_flip); once the data is there the warmer fetches it, the
  alias moves, and both servers swap with zero failed predictions and
  without a byte fetched by their loads: no cold fetch during serving.
"""
import json
import os
import time

import numpy as np
import requests

from helpers_mount import push, wait_for  # noqa: F401
from helpers_node import mount_counters, node, node_image  # noqa: F401
from helpers_server import Load, models, v2_body, v2_output  # noqa: F401
from test_pins import stage_version

TOL = 1e-6


def daemon_env(opts_overrides):
    """The ConfigMap's settings, with the store in the box and @overrides
    of single mount options."""
    from helpers_node import manifest
    data = manifest("ConfigMap", "assetfs-config")["data"]
    opts = dict(o.partition("=")[::2] for o in
                data["ASSETFS_OPTIONS"].split(","))
    opts.update(opts_overrides)
    return {"ASSETFS_STORE": "file:///store/modelkit-assets",
            "ASSETFS_OPTIONS": ",".join(k if v == "" else f"{k}={v}"
                                        for k, v in opts.items())}


def served_version(srv):
    r = requests.get(srv.url + "/v2/models/fraud", timeout=5)
    return r.json()["versions"] if r.ok else None


def test_node_in_a_box(node, assetfs_bin, models, tmp_path):
    store = tmp_path / "store" / "modelkit-assets"
    store.mkdir(parents=True)
    url = f"file://{store}"
    src = tmp_path / "src"
    a = models.save(models.clf, src / "a")
    b = models.save(models.clf2, src / "b")
    assert push(assetfs_bin, url, src / "a", "fraud/xgb") == "fraud/xgb:0.0"
    assert push(assetfs_bin, url, src / "a", "fraud/xgb",
                bump_major=True) == "fraud/xgb:1.0"

    # versions_ttl=1 so the push below shows within a second; the rest is
    # deploy/config.yaml as shipped (its pin file holds fraud/xgb:1)
    t0 = time.monotonic()
    daemon = node.daemon(daemon_env({"versions_ttl": "1"}),
                         tmp_path / "store")
    # the FUSE mount made in the container propagated to the host
    adir = node.mountpoint() / "fraud" / "xgb"
    assert sorted(p.name for p in adir.iterdir()) == [
        "0.0", "0.latest", "1.0", "1.latest", "latest"]

    # the pinned model is local before any server starts: the startup
    # probe of docs/deployment.md passes, and the warmer fetched it
    p = daemon.exec("assetfs", "pin", "wait", "fraud/xgb:1", "--cache-dir",
                    "/var/cache/assetfs", "--timeout", "60", timeout=90)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ready fraud/xgb:1 -> 1.0"), p.stdout
    size_a = a.stat().st_size
    s = mount_counters(daemon)
    assert s["bytes_fetched"] == size_a, s
    prom = requests.get(f"http://127.0.0.1:{daemon.ports[9100]}/metrics",
                        timeout=5).text
    assert 'assetfs_pin_ready{spec="fraud/xgb:1"} 1' in prom

    servers = [node.server(), node.server()]
    started = time.monotonic() - t0
    X = models.X1000
    for srv in servers:
        r = requests.post(srv.url + "/v2/models/fraud/infer",
                          json=v2_body(X), timeout=30)
        np.testing.assert_allclose(v2_output(r, "predict_proba"),
                                   models.clf.predict_proba(X), atol=TOL)
        assert r.json()["model_version"] == "1.0"

    # one fetch for the node: the model's bytes, once, though two servers
    # of two workers each loaded it through the mount, every read a hit
    s = mount_counters(daemon)
    assert s["bytes_fetched"] == size_a, s
    assert s["blocks_fetched"] == 1, s
    assert s["block_hits"] >= 1, s
    assert s["errors"] == 0, s
    prom = requests.get(f"http://127.0.0.1:{daemon.ports[9100]}/metrics",
                        timeout=5).text
    assert f"\nassetfs_fetched_bytes_total {size_a}\n" in prom

    # a new version while both servers answer, its data still on its way
    # (listed, not fetchable): warm_before_flip holds 1.latest on 1.0
    Xs = models.X[:5]
    size_b = b.stat().st_size
    loads = [Load(srv, Xs, n=2, model="fraud") for srv in servers]
    try:
        ver, copy_data = stage_version(store, tmp_path / "stage",
                                       assetfs_bin, src / "b", "fraud/xgb")
        assert ver == "1.1"
        wait_for(lambda: "1.1" in os.listdir(adir), 20, "1.1 listed")
        for _ in range(3):
            assert os.readlink(adir / "1.latest") == "1.0"
            time.sleep(1)
        assert {v for ld in loads for v in ld.versions_seen()} == {"1.0"}
        # the data arrives: warmed, then the alias moves
        copy_data()
        wait_for(lambda: os.readlink(adir / "1.latest") == "1.1", 60,
                 "1.latest -> 1.1 once 1.1 is local")
        at_flip = mount_counters(daemon)
        for ld in loads:
            ld.wait_version("1.1", timeout=60)
        time.sleep(0.5)
    finally:
        results = [ld.finish() for ld in loads]
    want = {"1.0": models.clf.predict_proba(Xs).ravel(),
            "1.1": models.clf2.predict_proba(Xs).ravel()}
    for res in results:
        bad = [r for r in res if r[0] != 200]
        assert not bad, bad[:3]
        assert {r[1] for r in res} == {"1.0", "1.1"}
        for _, version, proba in res:
            np.testing.assert_allclose(proba, want[version], atol=TOL)
    for srv in servers:
        assert served_version(srv) == ["1.1"]
    # 1.1 was local when the alias moved, and the servers' loads of it
    # fetched nothing: one fetch for the node, none while serving
    assert at_flip["bytes_fetched"] == size_a + size_b, at_flip
    s = mount_counters(daemon)
    assert s["bytes_fetched"] == size_a + size_b, s
    assert s["blocks_fetched"] == 2, s
    print(json.dumps({"node_start_s": round(started, 1),
                      "requests": sum(len(r) for r in results)}))
