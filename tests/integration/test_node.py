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

test_daemon_upgrade_under_load: the DaemonSet's rolling update
(maxSurge 1, maxUnavailable 0) with a new image while both servers
answer predictions: the new pod's container starts beside the old one
with the same command, takes the mount over through the hostPath
/run/assetfs, the old daemon hands over and lingers until its pod is
deleted (preStop, SIGTERM: exit status 0, mount left alone); zero failed
predictions, one assetfs mount at the hostPath all along, reads through
the mount never fail, the new daemon counts the takeover, and nothing is
fetched again.

test_python_models_in_the_image: a server container of the same image
serves an sklearn model (joblib) and a Python class through the
propagated mount, with the predictions the same model gives here.
"""
import importlib.util
import json
import os
import threading
import time

import numpy as np
import requests

from helpers_mount import push, wait_for  # noqa: F401
from helpers_node import (image_version, manifest,  # noqa: F401
                          mount_counters, next_image, node, node_image)
from helpers_python import skl, write_class  # noqa: F401
from helpers_server import Load, models, v2_body, v2_output  # noqa: F401
from test_pins import stage_version

TOL = 1e-6


def daemon_env(opts_overrides):
    """The ConfigMap's settings, with the store in the box and @overrides
    of single mount options."""
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
    prom = requests.get(daemon.host_url(9100) + "/metrics",
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
    prom = requests.get(daemon.host_url(9100) + "/metrics",
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
        assert {v for ld in loads for v in ld.versions_seen()} == {"1.0"}, \
            [([r for r in ld.results if r[0] != 200][:2], srv.logs()[-2000:])
             for ld, srv in zip(loads, servers)]
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
    for srv, res in zip(servers, results):
        bad = [r for r in res if r[0] != 200]
        assert not bad, (bad[:3], srv.logs()[-3000:])
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


class MountWatch(threading.Thread):
    """On the host, every 20 ms: which mounts sit at the mountpoint, and a
    read of @path (a fresh open) through it, compared with @want."""

    def __init__(self, node, path, want):
        super().__init__(daemon=True)
        self.node, self.path, self.want = node, path, want
        self.mounts, self.reads, self.failures = set(), 0, []
        self.stop = threading.Event()
        self.start()

    def run(self):
        while not self.stop.is_set():
            self.mounts.add(tuple(self.node.mounts_at_mountpoint()))
            try:
                os.listdir(self.path.parent)
                with open(self.path, "rb") as f:
                    if f.read() != self.want:
                        self.failures.append("wrong bytes")
                self.reads += 1
            except OSError as e:
                self.failures.append(repr(e))
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        self.join()


def test_daemon_upgrade_under_load(node, next_image, assetfs_bin, models,
                                   tmp_path):
    store = tmp_path / "store" / "modelkit-assets"
    store.mkdir(parents=True)
    url = f"file://{store}"
    src = tmp_path / "src"
    a = models.save(models.clf, src / "a")
    push(assetfs_bin, url, src / "a", "fraud/xgb")
    assert push(assetfs_bin, url, src / "a", "fraud/xgb",
                bump_major=True) == "fraud/xgb:1.0"
    env = daemon_env({})
    old = node.daemon(env, tmp_path / "store")
    p = old.exec("assetfs", "pin", "wait", "fraud/xgb:1", "--cache-dir",
                 "/var/cache/assetfs", "--timeout", "60", timeout=90)
    assert p.returncode == 0, p.stderr
    servers = [node.server(), node.server()]
    before = mount_counters(old)
    assert before["bytes_fetched"] == a.stat().st_size, before
    assert before["takeovers"] == 0, before

    # the readiness probe of a pod whose daemon does not serve the mount
    # (here: not started) fails, though the mount answers in it: during
    # an update the old daemon answers until it has handed over
    idle = node.daemon(env, tmp_path / "store", command=["sleep", "600"])
    assert idle.exec("assetfs", "stats", old.mnt).returncode == 0
    assert idle.exec(*idle.probe).returncode == 1
    node.remove(idle)

    grace = manifest_grace()
    Xs = models.X[:5]
    watch = MountWatch(node, node.mountpoint() / "fraud/xgb/1.0/model.json",
                       a.read_bytes())
    loads = [Load(srv, Xs, n=2, model="fraud") for srv in servers]
    try:
        time.sleep(1)
        # the rolling update: the new pod beside the old one, its
        # container started with the DaemonSet's command as shipped
        t0 = time.monotonic()
        new = node.daemon(env, tmp_path / "store", image=next_image)
        t_ready = time.monotonic() - t0
        # ready: it took the mount over. Handed over, the old daemon
        # lingers (a DaemonSet's pod restarts what exits) until the
        # controller, seeing the new pod ready, deletes the old pod at
        # once: preStop, SIGTERM
        assert old.exit_code() is None, old.logs()
        code = node.stop_pod(old, grace)
        t_deleted = time.monotonic() - t0
        time.sleep(1)  # predictions go on once the old pod is gone
    finally:
        results = [ld.finish() for ld in loads]
        watch.finish()
    failed = [(r, srv.name) for srv, res in zip(servers, results)
              for r in res if r[0] != 200]
    print(json.dumps({"requests": sum(len(r) for r in results),
                      "failed_predictions": len(failed),
                      "mount_reads": watch.reads,
                      "old_daemon_exit": code,
                      "new_pod_ready_s": round(t_ready, 1),
                      "old_pod_deleted_s": round(t_deleted, 1)}))
    assert not failed, (failed[:3], [srv.logs()[-2000:] for srv in servers])
    want = models.clf.predict_proba(Xs).ravel()
    for res in results:
        assert len(res) > 10
        for _, version, proba in res:
            assert version == "1.0"
            np.testing.assert_allclose(proba, want, atol=TOL)
    assert code == 0
    assert watch.failures == [], watch.failures[:3]
    assert watch.reads > 10
    assert watch.mounts == {("fuse.assetfs",)}, watch.mounts

    # the new pod serves: its image, its process, the takeover counted,
    # nothing fetched again (the cache on the hostPath was warm)
    assert new.image() == next_image
    assert image_version(next_image).endswith("+next")
    s = mount_counters(new)
    assert s["takeovers"] == 1, s
    assert s["errors"] == 0, s
    print(json.dumps({k: s[k] for k in ("opens", "lookups", "reads",
                                         "bytes_fetched", "takeovers")}))
    # its counters start at the takeover: it served opens, fetched nothing
    assert s["bytes_fetched"] == 0 and s["block_misses"] == 0, s
    assert s["opens"] > 0, s
    p = new.exec("cat", f"/proc/{s['pid']}/comm",
                 f"/proc/{s['supervisor_pid']}/cmdline")
    assert p.stdout.startswith("assetfs\n"), p.stdout
    assert "takeover" in p.stdout, p.stdout
    prom = requests.get(new.host_url(9100) + "/metrics",
                        timeout=5).text
    assert 'assetfs_pin_ready{spec="fraud/xgb:1"} 1' in prom
    assert node.mounts_at_mountpoint() == ["fuse.assetfs"]
    for srv in servers:  # and one in each server's container (:rslave)
        p = srv.exec("grep", "-c", " /mnt/assetfs/assets ",
                     "/proc/self/mountinfo")
        assert p.stdout.strip() == "1", p.stdout


def manifest_grace():
    doc = manifest("DaemonSet", "assetfs")
    return doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


SCORE_CLASS = """
    import json
    import os

    import numpy as np

    class Score:
        def _load(self):
            with open(os.path.join(self.asset_path, "weights.json")) as f:
                self.w = np.asarray(json.load(f), dtype=float)

        def _predict_batch(self, items):
            return np.tanh(np.asarray(items, dtype=float) @ self.w).tolist()
    """


def test_python_models_in_the_image(node, assetfs_bin, skl, tmp_path):
    store = tmp_path / "store" / "modelkit-assets"
    store.mkdir(parents=True)
    url = f"file://{store}"
    src = tmp_path / "src"
    skl.save(skl.pipe, src / "pipe")
    write_class(src / "score", {"score.py": SCORE_CLASS,
                                "weights.json": "[0.5, -0.25, 0.125, 1]"})
    assert push(assetfs_bin, url, src / "pipe", "py/pipe") == "py/pipe:0.0"
    assert push(assetfs_bin, url, src / "score", "py/score") == \
        "py/score:0.0"
    daemon = node.daemon(daemon_env({}), tmp_path / "store")
    srv = node.server(["--model=pipe=py/pipe",
                       "--model=score=py/score,class=score.Score"])

    X = skl.X50
    r = requests.post(srv.url + "/v2/models/pipe/infer", json=v2_body(X),
                      timeout=60)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(v2_output(r, "predict_proba"),
                               skl.pipe.predict_proba(X), atol=TOL, rtol=0)
    meta = requests.get(srv.url + "/v2/models/pipe", timeout=5).json()
    assert meta["platform"] == "sklearn", meta

    # the same class, loaded here from its source, on the same rows
    spec = importlib.util.spec_from_file_location("score",
                                                  src / "score/score.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    local = mod.Score()
    local.asset_path = str(src / "score")
    local._load()
    r = requests.post(srv.url + "/v1/models/score:predict",
                      json={"instances": X.tolist()}, timeout=60)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.ravel(r.json()["predictions"]),
                               local._predict_batch(X.tolist()),
                               atol=TOL, rtol=0)
    meta = requests.get(srv.url + "/v2/models/score", timeout=5).json()
    assert meta["platform"] == "python", meta

    # the models came through the node's mount, fetched by its daemon
    s = mount_counters(daemon)
    assert s["bytes_fetched"] >= (src / "pipe/model.joblib").stat().st_size
    assert s["errors"] == 0, s
