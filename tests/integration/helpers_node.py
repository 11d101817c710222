"""A Kubernetes node in a box, with podman, for tests/integration/test_node.py.

The image is the one scripts/image builds (cached: seconds when nothing
changed). A host directory bind-mounted onto itself and made rshared
stands for the DaemonSet's hostPath /var/lib/assetfs; another stands for
the cache's hostPath. Containers are started from what deploy/ ships: the
DaemonSet's command, args, environment (deploy/config.yaml, with the
overrides a test names), volume mounts (Bidirectional -> :rshared,
HostToContainer -> :rslave) and probes; the Deployment's command and args
for the servers. Each container has its own address on podman's bridge,
as a pod has its pod IP, and the tests reach the ports of its manifest
there, as another pod or a Service's DNAT would: no port is published.
Published ports (-p) went through rootlessport, a userspace proxy that no
pod's traffic crosses; stopped for longer than the servers' keep-alive
(at load average 10-13 it can be), it held a client's request while the
server closed the connection as idle, and the client saw
RemoteDisconnected. Every container, mount and bind mount made here is
removed at teardown, the FUSE mount first with the DaemonSet's own
preStop command.

podman runs with --runtime runc and explicit --ulimit flags: crun refuses
this host's hybrid cgroups and its rlimits.
"""
import os
import pathlib
import subprocess
import time

import pytest
import requests
import yaml

from helpers_mount import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE = os.environ.get("ASSETFS_NODE_IMAGE", "localhost/assetfs:node-test")
# the rolling update's image: the same build, another version label
NEXT_IMAGE = IMAGE + "-next"
PODMAN = ["podman", "--runtime", "runc"]
RUN = ["--ulimit", "nofile=16384:16384", "--ulimit", "nproc=16384:16384",
       "--network", "bridge"]
PROPAGATION = {"Bidirectional": "rshared", "HostToContainer": "rslave"}


def podman(*args, check=True, timeout=120):
    p = subprocess.run([*PODMAN, *args], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}... exited "
                             f"{p.returncode}: {p.stderr[-2000:]}")
    return p


def manifest(kind, name):
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind and \
                    doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in deploy/")


def workload(kind, name):
    """(container spec, {volume name: volume}) of a Deployment/DaemonSet."""
    doc = manifest(kind, name)
    spec = doc["spec"]["template"]["spec"]
    return spec["containers"][0], {v["name"]: v for v in spec["volumes"]}


def build_image(name, **env):
    env = dict(os.environ, ASSETFS_IMAGE=name, **env)
    p = subprocess.run([str(ROOT / "scripts" / "image")], env=env,
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, f"scripts/image failed:\n{p.stderr[-4000:]}"
    assert p.stdout.strip().splitlines()[-1] == name
    return name


def image_version(image):
    return podman("image", "inspect", "-f",
                  '{{index .Labels "org.opencontainers.image.version"}}',
                  image).stdout.strip()


@pytest.fixture(scope="session")
def node_image():
    """Build (or reuse) the image; its name."""
    if os.geteuid() != 0:
        pytest.skip("the node test needs root (mounts, privileged podman)")
    return build_image(IMAGE)


@pytest.fixture(scope="session")
def next_image(node_image):
    """The image a rolling update brings: scripts/image run again with
    another version (the base is shared, so only the binaries' layer is
    built); its name."""
    version = image_version(node_image) + "+next"
    build_image(NEXT_IMAGE, ASSETFS_IMAGE_VERSION=version)
    assert image_version(NEXT_IMAGE) == version
    return NEXT_IMAGE


class Container:
    def __init__(self, name):
        self.name = name
        self.ip = None  # its address on podman's bridge, once started

    def host_url(self, port):
        return f"http://{self.ip}:{port}"

    def logs(self):
        return podman("logs", self.name, check=False).stdout + \
            podman("logs", self.name, check=False).stderr

    def exec(self, *cmd, check=False, timeout=60):
        return podman("exec", self.name, *cmd, check=check, timeout=timeout)

    def running(self):
        p = podman("inspect", "-f", "{{.State.Running}}", self.name,
                   check=False)
        return p.stdout.strip() == "true"

    def exit_code(self):
        """The exit status of its process, None while it runs."""
        p = podman("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}",
                    self.name)
        running, code = p.stdout.split()
        return None if running == "true" else int(code)

    def image(self):
        return podman("inspect", "-f", "{{.ImageName}}",
                      self.name).stdout.strip()


class Node:
    """One node: hostPath directories, the DaemonSet's container, servers."""

    def __init__(self, image, base):
        self.image = image
        self.base = pathlib.Path(base)
        self.tag = f"assetfs-node-{os.getpid()}-{int(time.time() * 1000)}"
        self.containers = []
        self.binds = []
        self.configmaps = {}  # name -> the host directory of its keys
        # the node's hostPaths; /var/lib/assetfs is shared both ways with
        # the daemon's container, as kubelet makes a Bidirectional volume
        self.host = {"/var/lib/assetfs": self.base / "var-lib-assetfs",
                     "/var/cache/assetfs": self.base / "var-cache-assetfs",
                     "/run/assetfs": self.base / "run-assetfs"}
        for d in self.host.values():
            d.mkdir(parents=True, exist_ok=True)
        lib = str(self.host["/var/lib/assetfs"])
        subprocess.run(["mount", "--bind", lib, lib], check=True)
        self.binds.append(lib)
        subprocess.run(["mount", "--make-rshared", lib], check=True)

    def volumes(self, c, vols, extra=()):
        args = []
        for vm in c.get("volumeMounts", []):
            vol = vols[vm["name"]]
            if "configMap" in vol:
                # the kubelet's view of a ConfigMap: a directory of its keys
                d = self.base / "configmaps" / vol["configMap"]["name"]
                d.mkdir(parents=True, exist_ok=True)
                cm = manifest("ConfigMap", vol["configMap"]["name"])
                for key, text in cm["data"].items():
                    (d / key).write_text(text)
                self.configmaps[vol["configMap"]["name"]] = d
                args += ["-v", f"{d}:{vm['mountPath']}:ro"]
                continue
            hp = vol["hostPath"]["path"]
            if hp == "/dev/fuse":
                args += ["--device", "/dev/fuse"]
                continue
            opts = []
            if vm.get("readOnly"):
                opts.append("ro")
            if vm.get("mountPropagation") in PROPAGATION:
                opts.append(PROPAGATION[vm["mountPropagation"]])
            spec = f"{self.host[hp]}:{vm['mountPath']}"
            args += ["-v", spec + (":" + ",".join(opts) if opts else "")]
        for host, inside in extra:
            args += ["-v", f"{host}:{inside}:ro"]
        return args

    def start(self, c, vols, env=None, extra_volumes=(), privileged=False,
              image=None):
        name = f"{self.tag}-{len(self.containers)}"
        args = ["run", "-d", "--name", name, *RUN]
        if privileged or c.get("securityContext", {}).get("privileged"):
            args.append("--privileged")
        for k, v in (env or {}).items():
            args += ["-e", f"{k}={v}"]
        args += self.volumes(c, vols, extra_volumes)
        cmd = c.get("command", [])
        args += ["--entrypoint", cmd[0]] if cmd else []
        args += [image or self.image, *cmd[1:], *c.get("args", [])]
        ct = Container(name)
        self.containers.append(ct)
        podman(*args)
        ct.ip = podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}",
                       name).stdout.strip()
        assert ct.ip, f"{name} has no address on podman's bridge"
        return ct

    def daemon(self, env_overrides, store_dir, image=None, command=None):
        """Start the DaemonSet's container (of @image, default the node's)
        and wait until its readiness probe passes. @command replaces the
        container's command (and args), to run its probes beside another
        process; then no wait."""
        c, vols = workload("DaemonSet", "assetfs")
        env = dict(manifest("ConfigMap", "assetfs-config")["data"])
        env.update(env_overrides)
        if command:
            c = dict(c, command=command, args=[])
        ct = self.start(c, vols, env=env,
                        extra_volumes=[(store_dir, "/store")], image=image)
        if command:
            ct.probe = c["readinessProbe"]["exec"]["command"]
            return ct
        probe = c["readinessProbe"]["exec"]["command"]

        def ready():
            if not ct.running():
                raise AssertionError("the daemon container exited:\n" +
                                     ct.logs())
            return ct.exec(*probe).returncode == 0
        wait_for(ready, 60, "the DaemonSet's readiness probe", interval=0.3)
        ct.probe = probe
        ct.mnt = c["livenessProbe"]["exec"]["command"][-1]
        ct.prestop = c["lifecycle"]["preStop"]["exec"]["command"]
        return ct

    def server(self, model_args=None):
        c, vols = workload("Deployment", "fraud-model")
        c = dict(c)
        if model_args is not None:
            c["args"] = [a for a in c["args"]
                         if not a.startswith("--model=")] + model_args
        ct = self.start(c, vols)
        http = next(p["containerPort"] for p in c["ports"]
                    if p["name"] == "http")
        path = c["readinessProbe"]["httpGet"]["path"]
        ct.url = ct.host_url(http)
        ct.metrics_port = next(p["containerPort"] for p in c["ports"]
                               if p["name"] == "metrics")

        def ready():
            if not ct.running():
                raise AssertionError("a server container exited:\n" +
                                     ct.logs())
            try:
                return requests.get(ct.url + path, timeout=2).ok
            except requests.RequestException:
                return False
        wait_for(ready, 90, "a server's readiness probe", interval=0.3)
        return ct

    def remove(self, ct):
        podman("rm", "-f", "-t", "0", ct.name)
        self.containers.remove(ct)

    def stop_pod(self, ct, grace):
        """Delete a pod as the kubelet does: its preStop hook, then SIGTERM
        and @grace seconds (terminationGracePeriodSeconds) before SIGKILL;
        the container's exit status."""
        ct.exec(*ct.prestop, timeout=grace + 10)
        podman("stop", "-t", str(grace), ct.name, timeout=grace + 30)
        code = ct.exit_code()
        podman("rm", ct.name)
        self.containers.remove(ct)
        return code

    def mountpoint(self):
        return self.host["/var/lib/assetfs"] / "assets"

    def mounts_at_mountpoint(self):
        """How many mounts the host sees at the mountpoint, and of what
        types (/proc/self/mountinfo)."""
        mnt = str(self.mountpoint())
        types = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == mnt:
                    types.append(fields[fields.index("-") + 1])
        return types

    def teardown(self):
        errors = []
        daemons = [c for c in self.containers if hasattr(c, "prestop")]
        servers = [c for c in self.containers if c not in daemons]
        for c in servers:
            podman("rm", "-f", "-t", "5", c.name, check=False)
        for c in daemons:
            c.exec(*c.prestop, check=False)
            podman("rm", "-f", "-t", "10", c.name, check=False)
        mnt = self.mountpoint()
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
            errors.append("the FUSE mount outlived the daemon's preStop")
        for b in reversed(self.binds):
            subprocess.run(["umount", "-R", "-l", b], capture_output=True)
        return errors


@pytest.fixture
def node(node_image, tmp_path):
    n = Node(node_image, tmp_path / "node")
    yield n
    errors = n.teardown()
    assert not errors, errors


def mount_counters(daemon):
    """`assetfs stats` inside the daemon's container, as a dict."""
    p = daemon.exec("assetfs", "stats", daemon.mnt, check=True)
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = int(v) if v.isdigit() else v  # store_state: words
    return out
