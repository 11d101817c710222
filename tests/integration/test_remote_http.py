"""http:// against nginx: the store is written by a local push into the
directory nginx serves; ls (through assets.index), resolve, cat and ranged
reads come back byte-identical; pushes are refused; bearer tokens."""
import os

import pytest

from helpers_mount import make_tree, mounter, read_all  # noqa: F401
from helpers_remote import (assert_no_secrets, cli, make_folder,
                            servers, prov_tool)  # noqa: F401
from conftest import run

TOKEN = "bearer-T0KEN-never-printed-7d1f"


@pytest.fixture(scope="module")
def nginx(servers, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("www")
    (root / "modelkit-assets").mkdir()
    info = servers("nginx", "--root", str(root))
    info["store"] = info["url"] + "/modelkit-assets"
    info["local"] = f"file://{root}/modelkit-assets"
    return info


def test_http_read_what_a_local_push_wrote(nginx, assetfs_bin, tmp_path):
    src = make_folder(tmp_path / "src", seed=2)
    cli(assetfs_bin, nginx["local"], "push", str(src), "team/model")
    cli(assetfs_bin, nginx["local"], "push", str(src), "team/model")
    one = tmp_path / "one.bin"
    one.write_bytes(os.urandom(54_321))
    cli(assetfs_bin, nginx["local"], "push", str(one), "team/file")
    store = nginx["store"]
    # the root listing comes from assets.index (no listing over http)
    p = cli(assetfs_bin, store, "ls")
    assert p.stdout.decode().split() == ["team/file", "team/model"]
    p = cli(assetfs_bin, store, "ls", "team/model")
    assert p.stdout.decode().split() == ["0.1", "0.0"]
    p = cli(assetfs_bin, store, "resolve", "team/model:0")
    assert p.stdout.decode().split()[0] == "team/model:0.1"
    for f in sorted(src.rglob("*")):
        if f.is_file():
            rel = f.relative_to(src).as_posix()
            p = cli(assetfs_bin, store, "cat", f"team/model:0.0[{rel}]")
            assert p.stdout == f.read_bytes(), rel
    p = cli(assetfs_bin, store, "cat", "team/file")
    assert p.stdout == one.read_bytes()


def test_http_mount_finds_namespaced_assets_without_the_index(
        servers, mounter, assetfs_bin, tmp_path):  # noqa: F811
    """Lookups by name never need assets.index (DESIGN 2): over plain
    HTTP, with the index gone (or not naming an asset yet), the mount
    still finds a/b/c by name, though it cannot list the root."""
    root = tmp_path / "www"
    (root / "s").mkdir(parents=True)
    ng = servers("nginx", "--root", str(root), name="nginx-noindex")
    local = f"file://{root}/s"
    files = {"model.json": b'{"k": 1}\n', "sub/w.bin": os.urandom(70_000)}
    cli(assetfs_bin, local, "push", str(make_tree(tmp_path / "t", files)),
        "team/model")
    cli(assetfs_bin, local, "push", str(make_tree(tmp_path / "d", files)),
        "a/b/c")
    one = tmp_path / "one.bin"
    one.write_bytes(os.urandom(5_000))
    cli(assetfs_bin, local, "push", str(one), "top")
    (root / "s" / "assets.index").unlink()
    m = mounter(ng["url"] + "/s", versions_ttl=1, timeout=5)

    assert os.listdir(m.mnt) == []  # the root needs the index
    for name in ("team/model", "a/b/c"):
        assert sorted(os.listdir(m.mnt / name)) == ["0.0", "0.latest",
                                                     "latest"]
        for rel, data in files.items():
            assert read_all(m.mnt / name / "latest" / rel) == data
    assert read_all(m.mnt / "top/0.0") == one.read_bytes()
    assert os.path.isdir(m.mnt / "a/b")
    # an asset's children are still only its versions and aliases
    assert not os.path.exists(m.mnt / "team/model/9.9")


def test_http_push_is_refused(nginx, assetfs_bin, tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"x")
    p = cli(assetfs_bin, nginx["store"], "push", str(f), "team/nope",
            check=False)
    assert p.returncode != 0
    assert "read-only" in p.stderr.decode()
    p = cli(assetfs_bin, nginx["store"], "index", check=False)
    assert p.returncode != 0


def test_http_ranges_and_missing(nginx, prov_tool, tmp_path):
    root = nginx["root"]
    data = os.urandom(300_000)
    with open(os.path.join(root, "modelkit-assets", "r.bin"), "wb") as f:
        f.write(data)
    store = nginx["store"]
    for off, ln in [(0, 1), (299_999, 1), (1000, 250_000), (0, 300_000)]:
        p = run([prov_tool, store, "get", "r.bin", str(off), str(ln)])
        assert p.stdout == data[off:off + ln]
    p = run([prov_tool, store, "get", "r.bin"])
    assert p.stdout == data
    p = run([prov_tool, store, "get", "r.bin", "299990", "11"], check=False)
    assert p.returncode == 1 and b"range past the end" in p.stderr
    p = run([prov_tool, store, "head", "r.bin"])
    assert p.stdout.decode().split()[:2] == ["r.bin", "300000"]
    p = run([prov_tool, store, "get", "nope.bin"], check=False)
    assert p.returncode == 1 and b"no such object" in p.stderr
    p = run([prov_tool, store, "list", ""], check=False)
    assert p.returncode == 1 and b"cannot list" in p.stderr


def test_http_bearer_token(servers, prov_tool, tmp_path):  # noqa: F811
    root = tmp_path / "www"
    root.mkdir()
    (root / "a.bin").write_bytes(b"secret bytes")
    info = servers("nginx", "--root", str(root), "--bearer", TOKEN,
                   name="nginx-bearer")
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    p = run([prov_tool, info["url"], "get", "a.bin"],
            env={"PROV_TOOL_BEARER_FILE": str(tok)})
    assert p.stdout == b"secret bytes"
    tok.write_text("wrong-token\n")
    p = run([prov_tool, info["url"], "get", "a.bin"],
            env={"PROV_TOOL_BEARER_FILE": str(tok)}, check=False)
    assert p.returncode == 1 and b"HTTP 401" in p.stderr
    assert_no_secrets([p], [TOKEN, "wrong-token"])


def test_http_bearer_token_from_the_environment(servers, assetfs_bin,  # noqa
                                                tmp_path):
    root = tmp_path / "www"
    (root / "modelkit-assets").mkdir(parents=True)
    f = tmp_path / "a.bin"
    f.write_bytes(os.urandom(3000))
    cli(assetfs_bin, f"file://{root}/modelkit-assets", "push", str(f),
        "priv/a")
    info = servers("nginx", "--root", str(root), "--bearer", TOKEN,
                   name="nginx-bearer-env")
    store = info["url"] + "/modelkit-assets"
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    p = cli(assetfs_bin, store, "cat", "priv/a",
            env={"ASSETFS_BEARER_TOKEN_FILE": str(tok)})
    assert p.stdout == f.read_bytes()
    p = cli(assetfs_bin, store, "cat", "priv/a", check=False,
            env={"ASSETFS_BEARER_TOKEN_FILE": ""})
    assert p.returncode != 0 and "HTTP 401" in p.stderr.decode()
    p = cli(assetfs_bin, store, "cat", "priv/a", check=False,
            env={"ASSETFS_BEARER_TOKEN_FILE": str(tmp_path / "nope")})
    assert p.returncode != 0
    assert "bearer token file" in p.stderr.decode()
    assert_no_secrets([p], [TOKEN])


def test_http_server_without_ranges(servers, prov_tool, tmp_path):  # noqa
    """A server that ignores Range answers 200 with the whole object: the
    bytes before the range are skipped and the transfer is cut once the
    range is in."""
    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(4 << 20)
    (root / "big.bin").write_bytes(data)
    (tmp_path / "big.bin").write_bytes(data)
    info = servers("nginx", "--root", str(root), "--no-ranges",
                   name="nginx-noranges")
    p = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-r",
             "0-9", info["url"] + "/big.bin"])
    assert p.stdout == b"200"  # the server really ignores Range
    for off, ln in [(0, 10), (3 << 20, 1000), ((4 << 20) - 1, 1)]:
        p = run([prov_tool, info["url"], "get", "big.bin", str(off),
                 str(ln)])
        assert p.stdout == data[off:off + ln]
    p = run([prov_tool, info["url"], "get", "big.bin", str(4 << 20), "1"],
            check=False)
    assert p.returncode == 1 and b"range past the end" in p.stderr
    p = run([prov_tool, info["url"], "stress", "big.bin",
             str(tmp_path / "big.bin"), "60", "4", "1"])
    assert '"wrong": 0' in p.stdout.decode()
    assert '"ok": 60' in p.stdout.decode()
