"""Every shell command in README.md and docs/*.md runs here, so the docs
cannot drift from the code (the convention and the sandbox are described
in helpers_docs.py and, for doc writers, in docs/README.md).

A ```sh-norun block is one whose running is impossible on a test machine;
NORUN says why and which test checks it another way. The fstab line of
docs/deployment.md is mounted through mount(8) with its options exactly as
written, and the plugin example of docs/server.md is built and served.
"""
import os
import pathlib
import re
import subprocess

import pytest

from helpers_docs import (BUILD, DOCS, ROOT, Sandbox, match_output,
                          mounts_under, parse, rewrite_ports)

# (file, first line of the block) -> why it is not run, and what checks it.
NORUN = {
    ("README.md", "scripts/demo    # set up, build, and run the demo on a "
                  "local store"):
        "scripts/test runs this suite (it cannot run itself); "
        "test_demo_runs runs scripts/demo",
    ("docs/deployment.md", "meson setup build --prefix=/usr/local"):
        "installs into /usr/local; the binaries it installs are the ones "
        "every other test runs from the build dir",
    ("docs/deployment.md", "install -m 0755 systemd/mount.assetfs "
                           "/sbin/mount.fuse.assetfs"):
        "writes /sbin; test_fstab_line_mounts installs the same helper for "
        "its run (as test_mount.py's test_mount_helper_and_fstab does)",
    ("docs/deployment.md", "install -m 0644 systemd/assetfs@.service "
                           "systemd/assetfs-server@.service "
                           "/etc/systemd/system/"):
        "needs systemd as PID 1; test_systemd.py runs systemd-analyze "
        "verify on both units and checks their ordering",
    ("docs/deployment.md", "kubectl apply -f deploy/namespace.yaml -f "
                           "deploy/config.yaml -f "
                           "deploy/secret-example.yaml"):
        "needs a Kubernetes cluster; test_deploy.py parses and checks "
        "every manifest",
    ("docs/deployment.md", "scripts/image                                   "
                           "# prints localhost/assetfs:dev"):
        "needs root, podman and minutes of debootstrap and a release "
        "build; test_node.py builds the image with scripts/image and runs "
        "it as a node",
    ("docs/deployment.md", "journalctl -u assetfs@assets -u "
                           "assetfs-server@assets"):
        "needs systemd's journal; the log= option shown in "
        "docs/troubleshooting.md is run",
    ("docs/deployment.md", "install -m 0755 build/fs/assetfs "
                           "/usr/local/bin/assetfs"):
        "needs systemd as PID 1 and writes /usr/local; test_systemd.py "
        "checks ExecReload is a takeover, and test_takeover.py runs the "
        "same takeover and the counters these commands show",
    ("docs/deployment.md", "systemctl restart assetfs@assets"):
        "needs systemd as PID 1; test_systemd.py restarts the unit under "
        "systemd in a podman container and checks what these commands "
        "show (MainPID, supervisor_pid, takeovers, one mount, the log)",
    ("docs/deployment.md", "export ASSETFS_IMAGE=REGISTRY/assetfs:0.1.1   "
                           "# the new build, pushed"):
        "needs a Kubernetes cluster; test_deploy.py checks the rolling "
        "update and the control socket's hostPath, test_takeover.py the "
        "takeover itself",
    ("docs/benchmarks.md", "scripts/bench 1024"):
        "benchmarks take minutes of an idle machine and print figures, "
        "they do not pass or fail; test_bench_scripts_parse checks the "
        "scripts named exist and parse",
    ("docs/troubleshooting.md", "journalctl -u assetfs@assets -f"):
        "needs systemd's journal; log= is run in the same file",
}

RELPATH = {d: d.relative_to(ROOT).as_posix() for d in DOCS}


def install_mount_helper():
    """Install systemd/mount.assetfs as /sbin/mount.fuse.assetfs unless
    one is there; returns the path to remove afterwards, or None."""
    target = pathlib.Path("/sbin/mount.fuse.assetfs")
    if target.exists():
        return None
    target.write_bytes((ROOT / "systemd/mount.assetfs").read_bytes())
    target.chmod(0o755)
    return target


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory):
    """An XGBoost iris classifier (10 trees, depth 3), trained once."""
    import xgboost as xgb
    from sklearn.datasets import load_iris

    d = tmp_path_factory.mktemp("iris")
    X, y = load_iris(return_X_y=True)
    clf = xgb.XGBClassifier(n_estimators=10, max_depth=3)
    clf.fit(X, y)
    clf.save_model(str(d / "model.json"))
    return d


def test_docs_exist():
    names = {RELPATH[d] for d in DOCS}
    for n in ("README.md", "docs/mount.md", "docs/store-format.md",
              "docs/cache.md", "docs/providers.md", "docs/server.md",
              "docs/deployment.md", "docs/troubleshooting.md",
              "docs/benchmarks.md"):
        assert n in names, n


def test_norun_blocks_are_listed():
    seen = set()
    for d in DOCS:
        for b in parse(d):
            assert b.lang != "text", \
                f"{RELPATH[d]}:{b.line}: a text block that follows no sh " \
                "block (use another tag for shown, unchecked text)"
            shellish = b.lang.startswith(("sh", "bash", "shell", "console",
                                          "zsh"))
            assert not shellish or b.lang in ("sh", "sh-norun"), \
                f"{RELPATH[d]}:{b.line}: a command block must be sh " \
                f"(run) or sh-norun (listed in NORUN), not {b.lang}"
            if b.lang != "sh-norun":
                continue
            key = (RELPATH[d], b.text.split("\n")[0].strip())
            assert key in NORUN, \
                f"{RELPATH[d]}:{b.line}: sh-norun block not in NORUN: {key}"
            seen.add(key)
    assert seen == set(NORUN), f"NORUN entries with no block: " \
        f"{set(NORUN) - seen}"


def test_links_resolve():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    for d in DOCS:
        for m in link.finditer(d.read_text()):
            target = m.group(1)
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (d.parent / target).exists(), \
                f"{RELPATH[d]}: broken link {target}"


@pytest.mark.skipif(os.getuid() != 0, reason="mounts and /etc/fuse.conf "
                    "as the docs show them need root")
@pytest.mark.parametrize("doc", DOCS, ids=[RELPATH[d] for d in DOCS])
def test_doc_commands(doc, tmp_path, iris_model):
    blocks = parse(doc)
    sh = [b for b in blocks if b.lang == "sh"]
    if not sh:
        pytest.skip("no commands")
    box = Sandbox(tmp_path, iris_model,
                  with_store=RELPATH[doc] != "README.md")
    helper = None
    if RELPATH[doc] == "docs/deployment.md":
        # what its sh-norun install step does, for this run only
        helper = install_mount_helper()
    try:
        everything = "".join(b.text + (b.expect.text if b.expect else "")
                             for b in sh)
        box.prepare_ports(everything)
        rc, at, sh, outs = box.run(blocks)
        if rc != 0:
            b = sh[min(at, len(sh) - 1)]
            raise AssertionError(
                f"{RELPATH[doc]}:{b.line}: block exited {rc}:\n{b.text}\n"
                f"--- output:\n{outs[min(at, len(sh) - 1)][-3000:]}")
        for b, out in zip(sh, outs):
            if b.expect is None:
                continue
            want = rewrite_ports(b.expect.text, box.ports, box.literals)
            assert match_output(want, out), \
                f"{RELPATH[doc]}:{b.line}: output differs\n--- shown:\n" \
                f"{want}--- got:\n{out}"
    finally:
        box.close()
        if helper:
            helper.unlink()
    assert mounts_under(tmp_path) == []


def test_match_output_rules():
    assert match_output("a\n...\nd\n", "a\nb\nc\nd\n")
    assert match_output("a\n...\nd\n", "a\nd\n")
    assert match_output("x ... z\n", "x yyy z  \n\n")
    assert not match_output("a\nd\n", "a\nb\nd\n")
    assert not match_output("x ... z\n", "x y\nz\n")


@pytest.mark.skipif(os.getuid() != 0, reason="installs a mount(8) helper")
def test_fstab_line_mounts(tmp_path, iris_model):
    """The fstab line of docs/deployment.md, with its options exactly as
    written (the source and mountpoint swapped for a local store and a temp
    dir, cache_dir for a temp dir), mounts through mount(8) and our helper
    and shows the asset."""
    blocks = [b for b in parse(ROOT / "docs/deployment.md")
              if b.lang == "fstab"]
    assert blocks, "docs/deployment.md shows no fstab line"
    line = [ln for ln in blocks[0].text.splitlines()
            if ln.strip() and not ln.startswith("#")][0]
    src, mp, fstype, opts, *_ = line.split()
    assert fstype == "fuse.assetfs"
    box = Sandbox(tmp_path, iris_model)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    opts = re.sub(r"cache_dir=[^,]*", f"cache_dir={tmp_path}/cache", opts)
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{box.env['ASSETFS_STORE']} {mnt} {fstype} {opts} "
                     "0 0\n")
    installed = install_mount_helper()
    try:
        p = subprocess.run(["mount", "-T", str(fstab), str(mnt)],
                           env=dict(box.env,
                                    ASSETFS_BIN=str(BUILD / "fs/assetfs")),
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert sorted(os.listdir(mnt / "demo/iris")) == \
            ["0.0", "0.1", "0.latest", "1.0", "1.latest", "latest"]
        assert (mnt / "demo/iris/latest/model.json").read_bytes() == \
            (iris_model / "model.json").read_bytes()
        subprocess.run(["umount", str(mnt)], timeout=30, check=True)
    finally:
        box.close()
        if installed:
            installed.unlink()


@pytest.mark.skipif(os.getuid() != 0, reason="the demo mounts as root")
def test_demo_runs():
    """scripts/demo (the Quick start) runs to the end, prints a prediction
    and leaves no mount, process or work dir behind."""
    p = subprocess.run([str(ROOT / "scripts/demo")],
                       env=dict(os.environ, ASSETFS_BUILD=str(BUILD)),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    assert '"model_version": "1.0"' in out and '"predict_proba"' in out
    assert '"model_version": "1.1"' in out
    work = re.search(r"^WORK=(\S+)$", out, re.M).group(1)
    assert not os.path.exists(work)
    assert mounts_under(work) == []


def test_bench_scripts_parse():
    """The benchmark scripts docs/benchmarks.md names exist, are
    executable and are valid bash."""
    text = (ROOT / "docs/benchmarks.md").read_text()
    names = sorted(set(re.findall(r"scripts/bench[a-z-]*", text)))
    assert names == ["scripts/bench", "scripts/bench-remote",
                     "scripts/bench-server", "scripts/bench-takeover"], names
    for n in names:
        f = ROOT / n
        assert os.access(f, os.X_OK), n
        p = subprocess.run(["bash", "-n", str(f)], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stderr
