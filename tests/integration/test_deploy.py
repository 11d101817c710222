"""The Kubernetes manifests under deploy/ parse, carry what a node-wide
assetfs needs, and agree with each other (paths, propagation, ports)."""
import pathlib
import posixpath
import re
import shlex

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load_all():
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


DOCS = load_all()


def one(kind, name=None):
    found = [d for _, d in DOCS if d["kind"] == kind and
             (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"want exactly one {kind} {name or ''}"
    return found[0]


def container(doc):
    cs = doc["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1
    return cs[0]


def volume_of(doc, mount):
    vols = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
    return vols[mount["name"]]


def mount_options():
    cm = one("ConfigMap", "assetfs-config")
    opts = {}
    for item in cm["data"]["ASSETFS_OPTIONS"].split(","):
        key, _, value = item.partition("=")
        opts[key] = value
    return opts


def daemon_mountpoint():
    ds = one("DaemonSet", "assetfs")
    script = "\n".join(container(ds)["args"])
    m = re.search(r'^\s*mnt=(\S+)', script, re.M)
    assert m, "the start script names its mountpoint"
    return m.group(1), script


def test_every_document_is_well_formed():
    assert DOCS, "deploy/ holds manifests"
    for fname, doc in DOCS:
        assert doc.get("apiVersion"), fname
        assert doc.get("kind"), fname
        assert doc.get("metadata", {}).get("name"), fname
        if doc["kind"] in ("DaemonSet", "Deployment"):
            sel = doc["spec"]["selector"]["matchLabels"]
            labels = doc["spec"]["template"]["metadata"]["labels"]
            for k, v in sel.items():
                assert labels.get(k) == v, f"{fname}: selector {k} matches"


def test_daemonset_runs_privileged_with_fuse_and_resources():
    ds = one("DaemonSet", "assetfs")
    c = container(ds)
    assert c["securityContext"]["privileged"] is True
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    fuse = volume_of(ds, mounts["/dev/fuse"])
    assert fuse["hostPath"] == {"path": "/dev/fuse", "type": "CharDevice"}
    for key in ("requests", "limits"):
        assert c["resources"][key]["memory"]
    assert c["resources"]["requests"]["cpu"]


def test_daemonset_cache_is_the_hostpath_the_mount_uses():
    ds = one("DaemonSet", "assetfs")
    c = container(ds)
    cache_dir = mount_options()["cache_dir"]
    assert cache_dir == "/var/cache/assetfs"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert cache_dir in mounts, "cache_dir is a volume mount"
    vol = volume_of(ds, mounts[cache_dir])
    assert vol["hostPath"]["path"] == "/var/cache/assetfs"


def test_daemonset_mount_propagates_to_the_host():
    ds = one("DaemonSet", "assetfs")
    c = container(ds)
    mnt, script = daemon_mountpoint()
    bidir = [m for m in c["volumeMounts"]
             if m.get("mountPropagation") == "Bidirectional"]
    assert len(bidir) == 1
    base = bidir[0]["mountPath"]
    assert posixpath.commonpath([base, mnt]) == base and mnt != base, \
        "the FUSE mountpoint lies below the Bidirectional volume"
    vol = volume_of(ds, bidir[0])
    assert vol["hostPath"]["path"] == base
    argv = shlex.split(script.splitlines()[-1])
    assert argv[:2] == ["exec", "assetfs"] and argv[2] == "mount"
    assert '"$mnt"' in script.splitlines()[-1]


def test_daemonset_recovers_stale_mount_and_unmounts_on_stop():
    ds = one("DaemonSet", "assetfs")
    c = container(ds)
    mnt, script = daemon_mountpoint()
    before_mount = script[:script.index("exec assetfs mount")]
    assert "fusermount3 -u -z" in before_mount, \
        "a stale mount (ENOTCONN) is detached before mounting"
    # stopping the pod: SIGTERM to the daemon (PID 1, exec), which
    # unmounts what it still serves; a fusermount3 there would take the
    # mount from the pod that took it over
    pre = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    assert "fusermount3" not in pre and "kill -TERM 1" in pre
    assert c["livenessProbe"]["exec"]["command"][-1] == mnt, \
        "the liveness probe checks the mount itself"
    # ready: the mount answers, and this pod's daemon (PID 1) holds its
    # FUSE connection (during an update, the old pod's daemon answers
    # until the takeover); tests/integration/test_node.py runs it
    ready = c["readinessProbe"]["exec"]["command"]
    assert f"assetfs stats {mnt}" in ready[-1] and "/proc/1/fd" in ready[-1]


def test_daemonset_credentials_come_from_a_secret_in_usual_names():
    ds = one("DaemonSet", "assetfs")
    c = container(ds)
    refs = [e["secretRef"]["name"] for e in c["envFrom"] if "secretRef" in e]
    assert refs == ["assetfs-credentials"]
    secret = one("Secret", "assetfs-credentials")
    assert "AWS_ACCESS_KEY_ID" in secret["stringData"]
    assert "AWS_SECRET_ACCESS_KEY" in secret["stringData"]


def test_metrics_port_agrees_everywhere():
    ds = one("DaemonSet", "assetfs")
    c = container(ds)
    port = int(mount_options()["metrics_port"])
    # scraped from outside the pod: not loopback (the mount's default)
    assert not mount_options().get("metrics_addr", "127.0.0.1") \
        .startswith(("127.", "::1", "localhost"))
    ann = ds["spec"]["template"]["metadata"]["annotations"]
    assert int(ann["prometheus.io/port"]) == port
    assert port in [p["containerPort"] for p in c["ports"]]


def test_server_reads_the_node_mount_read_only():
    dep = one("Deployment", "fraud-model")
    c = container(dep)
    mnt, _ = daemon_mountpoint()
    ds = one("DaemonSet", "assetfs")
    ds_base = [m for m in container(ds)["volumeMounts"]
               if m.get("mountPropagation") == "Bidirectional"][0]["mountPath"]
    vm = [m for m in c["volumeMounts"]
          if m.get("mountPropagation") == "HostToContainer"]
    assert len(vm) == 1 and vm[0].get("readOnly") is True
    assert volume_of(dep, vm[0])["hostPath"]["path"] == ds_base
    args = dict(a[2:].split("=", 1) for a in c["args"] if a.startswith("--")
                and "=" in a)
    # The assets dir in the pod is the node's mountpoint seen through the
    # pod's mount of the same host directory.
    rel = posixpath.relpath(mnt, ds_base)
    assert args["assets-dir"] == posixpath.join(vm[0]["mountPath"], rel)


def test_server_probes_and_ports_agree():
    dep = one("Deployment", "fraud-model")
    c = container(dep)
    args = dict(a[2:].split("=", 1) for a in c["args"] if a.startswith("--")
                and "=" in a)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == int(args["http-port"])
    assert ports["metrics"] == int(args["metrics-port"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["readinessProbe"]["httpGet"]["port"] in ("http", ports["http"])
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert int(ann["prometheus.io/port"]) == ports["metrics"]
    svc = one("Service", "fraud-model")
    assert svc["spec"]["selector"] == \
        dep["spec"]["selector"]["matchLabels"]


SECRETS = [(f, d) for f, d in DOCS if d["kind"] == "Secret"]


@pytest.mark.parametrize("fname,doc", SECRETS, ids=[f for f, _ in SECRETS])
def test_no_real_secret_is_committed(fname, doc):
    assert doc.get("stringData")
    for key, value in doc.get("stringData", {}).items():
        assert value in ("REPLACE_ME", ""), f"{fname}: {key} holds a value"


def test_image_is_named_by_a_variable_that_envsubst_fills():
    # no placeholder registry: both workloads run the image the operator
    # names in ASSETFS_IMAGE, filled in by envsubst with that one variable
    # (the start script's own $variables must survive the rendering)
    import subprocess
    for fname in ("daemonset.yaml", "server-deployment.yaml"):
        text = (DEPLOY / fname).read_text()
        p = subprocess.run(["envsubst", "$ASSETFS_IMAGE"], input=text,
                           capture_output=True, text=True, check=True,
                           env={"ASSETFS_IMAGE": "reg.test/assetfs:1.2"})
        raw = [d for d in yaml.safe_load_all(text) if d]
        out = [d for d in yaml.safe_load_all(p.stdout) if d]
        for before, after in zip(raw, out):
            if before["kind"] not in ("DaemonSet", "Deployment"):
                assert before == after
                continue
            assert container(before)["image"] == "${ASSETFS_IMAGE}"
            assert container(after)["image"] == "reg.test/assetfs:1.2"
            container(after)["image"] = "${ASSETFS_IMAGE}"
            assert before == after, f"{fname}: envsubst changed more"


def test_pin_file_is_the_configmap_the_daemonset_mounts():
    ds = one("DaemonSet", "assetfs")
    c = container(ds)
    pins = mount_options()["pins"]
    assert "warm_before_flip" in mount_options()
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    base = posixpath.dirname(pins)
    assert base in mounts and mounts[base].get("readOnly") is True
    vol = volume_of(ds, mounts[base])
    cm = one("ConfigMap", vol["configMap"]["name"])
    specs = [line.strip() for line in
             cm["data"][posixpath.basename(pins)].splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    # the server's model is one the node keeps pinned
    dep = one("Deployment", "fraud-model")
    models = [a.split("=", 2)[2] for a in container(dep)["args"]
              if a.startswith("--model=")]
    assert models and all(m in specs for m in models), (models, specs)


def test_daemonset_rolls_by_takeover():
    """The new pod starts beside the old one and takes its mount over
    through the control socket on a hostPath both pods see (issue 12)."""
    ds = one("DaemonSet", "assetfs")
    ru = ds["spec"]["updateStrategy"]["rollingUpdate"]
    assert ru["maxSurge"] == 1 and ru["maxUnavailable"] == 0
    _, script = daemon_mountpoint()
    last = shlex.split(script.splitlines()[-1])
    opts = last[last.index("-o") + 1].split(",")
    assert "takeover" in opts and "linger" in opts
    c = container(ds)
    ctl = [m for m in c["volumeMounts"] if m["mountPath"] == "/run/assetfs"]
    assert len(ctl) == 1
    assert volume_of(ds, ctl[0])["hostPath"]["path"] == "/run/assetfs"
