"""Bearer tokens for http(s) stores as a user gives them: `--bearer-token-file
FILE` on the CLI commands that open a store, `-o bearer_token_file=FILE` on
the mount, and ASSETFS_BEARER_TOKEN_FILE for both, against nginx requiring
the token. Without it (or with a wrong one): a clear authentication error;
with it: the bytes. The token never shows in any output or log, also at
debug log level."""
import errno
import os

import pytest

from conftest import run
from helpers_mount import mounter, read_all  # noqa: F401
from helpers_remote import (assert_no_secrets, cli, make_folder,  # noqa
                            servers)

TOKEN = "bRr-T0ken-must-never-be-printed-5e9a"
AUTH_HINT = ("HTTP 401 (authentication required: an http(s) store takes a "
             "bearer token from --bearer-token-file FILE or "
             "$ASSETFS_BEARER_TOKEN_FILE)")


@pytest.fixture(scope="module")
def guarded(servers, assetfs_bin, tmp_path_factory):  # noqa: F811
    """nginx requiring TOKEN, serving priv/a (file) and priv/f (folder)."""
    d = tmp_path_factory.mktemp("bearer")
    root = d / "www"
    (root / "modelkit-assets").mkdir(parents=True)
    local = f"file://{root}/modelkit-assets"
    a = d / "a.bin"
    a.write_bytes(os.urandom(300_000))
    src = make_folder(d / "folder", 7)
    cli(assetfs_bin, local, "push", str(a), "priv/a")
    cli(assetfs_bin, local, "push", str(src), "priv/f")
    info = servers("nginx", "--root", str(root), "--bearer", TOKEN,
                   name="nginx-bearer-cli")
    tok = d / "token"
    tok.write_text(TOKEN + "\n")
    wrong = d / "wrong"
    wrong.write_text("not-the-token\n")
    return {"store": info["url"] + "/modelkit-assets", "a": a.read_bytes(),
            "src": src, "tok": str(tok), "wrong": str(wrong), "dir": d}


def one_line(p):
    err = p.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


def test_cli_bearer_token_file(guarded, assetfs_bin):
    g, procs = guarded, []
    env = {"ASSETFS_BEARER_TOKEN_FILE": "", "ASSETFS_LOG": "debug"}
    for args in (["cat", "priv/a"], ["resolve", "priv/a"], ["ls"]):
        p = cli(assetfs_bin, g["store"], *args, check=False, env=env)
        procs.append(p)
        assert p.returncode == 1 and p.stdout == b"", p
        assert one_line(p).endswith(AUTH_HINT), p.stderr
        p = cli(assetfs_bin, g["store"], *args, "--bearer-token-file",
                g["wrong"], check=False, env=env)
        procs.append(p)
        assert p.returncode == 1 and one_line(p).endswith(AUTH_HINT)

    p = cli(assetfs_bin, g["store"], "cat", "--bearer-token-file", g["tok"],
            "priv/a", env=env)
    procs.append(p)
    assert p.stdout == g["a"]
    p = cli(assetfs_bin, g["store"], "cat", "--bearer-token-file", g["tok"],
            "priv/f:0.0[sub/vocab.txt]", env=env)
    procs.append(p)
    assert p.stdout == (g["src"] / "sub/vocab.txt").read_bytes()
    p = cli(assetfs_bin, g["store"], "ls", "--bearer-token-file", g["tok"],
            env=env)
    procs.append(p)
    assert p.stdout.decode().split() == ["priv/a", "priv/f"]
    p = cli(assetfs_bin, g["store"], "resolve", "--bearer-token-file",
            g["tok"], "priv/f", env=env)
    procs.append(p)
    assert p.stdout.decode().split("\n")[0] == "priv/f:0.0"
    # the option wins over the environment
    p = cli(assetfs_bin, g["store"], "cat", "--bearer-token-file", g["tok"],
            "priv/a", env={"ASSETFS_BEARER_TOKEN_FILE": g["wrong"]})
    procs.append(p)
    assert p.stdout == g["a"]
    # the environment alone
    p = cli(assetfs_bin, g["store"], "cat", "priv/a",
            env={"ASSETFS_BEARER_TOKEN_FILE": g["tok"]})
    procs.append(p)
    assert p.stdout == g["a"]
    # a missing token file is named, before any request
    missing = str(g["dir"] / "nope")
    p = cli(assetfs_bin, g["store"], "cat", "--bearer-token-file", missing,
            "priv/a", check=False)
    procs.append(p)
    assert p.returncode == 1
    assert one_line(p) == (f"assetfs cat: bearer token file {missing}: "
                           "No such file or directory")
    # push and index take it too (and are refused by a read-only server)
    p = run([assetfs_bin, "push", "--help"])
    assert b"--bearer-token-file FILE" in p.stdout
    assert_no_secrets(procs, [TOKEN])


def test_mount_bearer_token_file(guarded, mounter, tmp_path):  # noqa: F811
    g = guarded
    env = {"ASSETFS_BEARER_TOKEN_FILE": "", "ASSETFS_LOG": "debug"}
    # without the token: EIO and one log line saying access was refused
    m = mounter(g["store"], name="none", cache_dir=tmp_path / "c0",
                env=env, timeout=5)
    with pytest.raises(OSError) as e:
        os.listdir(m.mnt / "priv")
    assert e.value.errno == errno.EIO
    log = m.read_log()
    lines = [ln for ln in log.splitlines() if "refused access" in ln]
    assert len(lines) == 1, log
    assert "HTTP 401" in lines[0] and "bearer_token_file" in lines[0]

    # with it: the bytes
    m = mounter(g["store"], name="tok", cache_dir=tmp_path / "c1", env=env,
                bearer_token_file=g["tok"], timeout=5)
    assert sorted(os.listdir(m.mnt / "priv")) == ["a", "f"]
    assert read_all(m.mnt / "priv/a/0.0") == g["a"]
    for f in sorted(g["src"].rglob("*")):
        if f.is_file():
            rel = f.relative_to(g["src"]).as_posix()
            assert read_all(m.mnt / "priv/f/latest" / rel) == f.read_bytes()
    # from the environment
    m2 = mounter(g["store"], name="envtok", cache_dir=tmp_path / "c2",
                 env={"ASSETFS_BEARER_TOKEN_FILE": g["tok"]}, timeout=5)
    assert read_all(m2.mnt / "priv/a/latest") == g["a"]
    # a missing token file fails the mount with the file named
    mnt = tmp_path / "never"
    mnt.mkdir()
    missing = str(tmp_path / "nope")
    p = run([m.bin, "mount", "-f", g["store"], str(mnt), "-o",
             f"cache_dir={tmp_path / 'c3'},bearer_token_file={missing}"],
            check=False, timeout=60)
    assert p.returncode == 1 and not os.path.ismount(mnt)
    assert f"bearer token file {missing}: No such file" in \
        p.stderr.decode()
    for mm in (m, m2):
        assert mm.unmount() == 0
        assert TOKEN not in mm.read_log()
    assert TOKEN not in (tmp_path / "none.log").read_text()
    assert_no_secrets([p], [TOKEN])
