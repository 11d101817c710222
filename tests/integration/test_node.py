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
- the model was fetched once for the node: the mount's counters (its
  `assetfs stats` in the container and its Prometheus port) show exactly
  the model's bytes, though four server workers loaded it;
- a new version pushed while both servers are under load is swapped in by
  both with zero failed predictions, again fetched once for the node.
"""
import json
import time

import numpy as np
import requests

from helpers_mount import push, wait_for  # noqa: F401
from helpers_node import mount_counters, node, node_image  # noqa: F401
from helpers_server import Load, models, v2_body, v2_output  # noqa: F401

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
    # deploy/config.yaml as shipped
    t0 = time.monotonic()
    daemon = node.daemon(daemon_env({"versions_ttl": "1"}),
                         tmp_path / "store")
    # the FUSE mount made in the container propagated to the host
    adir = node.mountpoint() / "fraud" / "xgb"
    assert sorted(p.name for p in adir.iterdir()) == [
        "0.0", "0.latest", "1.0", "1.latest", "latest"]
    assert mount_counters(daemon)["bytes_fetched"] == 0

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
    # of two workers each loaded it through the mount
    size_a = a.stat().st_size
    s = mount_counters(daemon)
    assert s["bytes_fetched"] == size_a, s
    assert s["blocks_fetched"] == 1, s
    assert s["errors"] == 0, s
    prom = requests.get(f"http://127.0.0.1:{daemon.ports[9100]}/metrics",
                        timeout=5).text
    assert f"\nassetfs_fetched_bytes_total {size_a}\n" in prom

    # a new version, pushed while both servers answer: both swap to it
    # with no failed prediction, and the node fetches it once
    Xs = models.X[:5]
    loads = [Load(srv, Xs, n=2, model="fraud") for srv in servers]
    try:
        time.sleep(0.5)
        assert push(assetfs_bin, url, src / "b", "fraud/xgb") == \
            "fraud/xgb:1.1"
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
    s = mount_counters(daemon)
    assert s["bytes_fetched"] == size_a + b.stat().st_size, s
    assert s["blocks_fetched"] == 2, s
    print(json.dumps({"node_start_s": round(started, 1),
                      "requests": sum(len(r) for r in results)}))
