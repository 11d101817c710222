"""`assetfs push / ls / resolve / cat / index` against a local store:
outputs checked exactly, errors are one stderr line with a non-zero exit
and leave the store unchanged, --dry-run writes nothing."""
import hashlib
import json
import os
import pathlib

import pytest

from conftest import run
from helpers_cli import Cli, make_folder, snapshot


@pytest.fixture
def cli(assetfs_bin, store):
    url, directory = store
    return Cli(assetfs_bin, url, directory)


@pytest.fixture
def pushed(cli, tmp_path):
    """A file asset with two versions and a folder asset with 0.0, 0.1,
    0.2 (two updates) and 1.0 (a bumped major)."""
    one = tmp_path / "readme.txt"
    one.write_bytes(b"first\n")
    assert cli.out("push", str(one), "docs/readme") == \
        "pushed docs/readme:0.0 (1 file, 6 bytes)\n"
    one.write_bytes(b"second version\n")
    assert cli.out("push", str(one), "docs/readme") == \
        "pushed docs/readme:0.1 (1 file, 15 bytes)\n"

    src = tmp_path / "xgb"
    files = make_folder(src)
    total = sum(len(d) for d in files.values())
    versions = {}
    for want in ["0.0", "0.1", "0.2"]:
        (src / "model.json").write_bytes(b'{"v": "%s"}\n' % want.encode())
        files["model.json"] = (src / "model.json").read_bytes()
        total = sum(len(d) for d in files.values())
        assert cli.out("push", str(src), "fraud/xgb") == \
            f"pushed fraud/xgb:{want} (5 files, {total} bytes)\n"
        versions[want] = dict(files)
    (src / "model.json").write_bytes(b'{"v": "1.0"}\n')
    files["model.json"] = (src / "model.json").read_bytes()
    total = sum(len(d) for d in files.values())
    assert cli.out("push", "--bump-major", str(src), "fraud/xgb") == \
        f"pushed fraud/xgb:1.0 (5 files, {total} bytes)\n"
    versions["1.0"] = dict(files)
    return versions


def test_ls(cli, pushed):
    assert cli.out("ls") == "docs/readme\nfraud/xgb\n"
    assert cli.out("ls", "fraud/xgb") == "1.0\n0.2\n0.1\n0.0\n"
    assert cli.out("ls", "docs/readme") == "0.1\n0.0\n"
    # A namespace lists what is directly below it.
    assert cli.out("ls", "fraud") == "fraud/xgb\n"


def test_resolve(cli, pushed):
    base = cli.url
    assert cli.out("resolve", "fraud/xgb") == \
        f"fraud/xgb:1.0\n{base}/fraud/xgb/1.0\n"
    assert cli.out("resolve", "fraud/xgb:0") == \
        f"fraud/xgb:0.2\n{base}/fraud/xgb/0.2\n"
    assert cli.out("resolve", "fraud/xgb:0.1[config/deep/er/vocab.txt]") \
        == ("fraud/xgb:0.1[config/deep/er/vocab.txt]\n"
            f"{base}/fraud/xgb/0.1/config/deep/er/vocab.txt\n")
    assert cli.out("resolve", "docs/readme:0.0") == \
        f"docs/readme:0.0\n{base}/docs/readme/0.0\n"


def test_cat(cli, pushed, tmp_path):
    assert cli.run("cat", "docs/readme").stdout == b"second version\n"
    assert cli.run("cat", "docs/readme:0.0").stdout == b"first\n"
    for v, files in pushed.items():
        for rel, data in files.items():
            got = cli.run("cat", f"fraud/xgb:{v}[{rel}]").stdout
            assert got == data, (v, rel)
    # The 10 MiB file streams through a pipe to a file byte-exactly.
    out = tmp_path / "big.out"
    with open(out, "wb") as f:
        p = run([cli.binary, "cat", "--store", cli.url,
                 "fraud/xgb:1[weights/big.bin]"], check=False)
        f.write(p.stdout)
    assert p.returncode == 0
    assert out.read_bytes() == pushed["1.0"]["weights/big.bin"]


def test_dotfiles_are_not_pushed(cli, pushed):
    names = set(p.relative_to(cli.dir).as_posix()
                for p in cli.dir.rglob("*"))
    assert not any("/." in "/" + n for n in names), names
    err = cli.fail("cat", "fraud/xgb[.hidden.txt]")
    assert err == "assetfs cat: no file '.hidden.txt' in 'fraud/xgb:1.0'"


@pytest.mark.parametrize("args,message", [
    (["resolve", "fraud//xgb"],
     "assetfs resolve: invalid asset name 'fraud//xgb': empty segment"),
    (["cat", "fraud/xgb:"], None),
    (["resolve", "nope/asset"], "assetfs resolve: no such asset 'nope/asset'"),
    (["cat", "nope/asset"], "assetfs cat: no such asset 'nope/asset'"),
    (["ls", "nope"], "assetfs ls: no such asset 'nope'"),
    (["resolve", "fraud/xgb:7"], None),
    (["resolve", "fraud/xgb:0.9"], None),
    (["cat", "fraud/xgb:1.0"], None),
    (["cat", "fraud/xgb[nope.json]"],
     "assetfs cat: no file 'nope.json' in 'fraud/xgb:1.0'"),
    (["cat", "docs/readme[x]"], None),
])
def test_errors_are_one_line_and_change_nothing(cli, pushed, args, message):
    before = snapshot(cli.dir)
    err = cli.fail(*args)
    if message:
        assert err == message
    else:
        assert err.startswith(f"assetfs {args[0]}: ")
    if args[-1].startswith("fraud/xgb:7"):
        assert "'7'" in err
    if args == ["cat", "fraud/xgb:1.0"]:
        assert "folder asset" in err
    assert snapshot(cli.dir) == before


def test_push_over_existing_version_is_refused(cli, pushed, tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"overwrite attempt\n")
    before = snapshot(cli.dir)
    err = cli.fail("push", str(f), "fraud/xgb:0.1")
    assert err == ("assetfs push: version '0.1' of 'fraud/xgb' already "
                   "exists; versions are immutable")
    err = cli.fail("push", str(f), "fraud/xgb:1")
    assert "invalid version '1'" in err
    err = cli.fail("push", str(f), "fraud/xgb[a.txt]")
    assert "[file]" in err
    err = cli.fail("push", str(tmp_path / "missing"), "fraud/xgb")
    assert "No such file or directory" in err
    assert snapshot(cli.dir) == before
    assert cli.run("cat", "fraud/xgb:0.1[model.json]").stdout == \
        b'{"v": "0.1"}\n'


def test_explicit_version(cli, pushed, tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"five\n")
    assert cli.out("push", str(f), "other:5.3") == \
        "pushed other:5.3 (1 file, 5 bytes)\n"
    assert cli.out("push", str(f), "other") == \
        "pushed other:5.4 (1 file, 5 bytes)\n"
    assert cli.out("ls", "other") == "5.4\n5.3\n"
    assert cli.out("ls") == "docs/readme\nfraud/xgb\nother\n"


def test_dry_run_writes_nothing(cli, tmp_path):
    src = tmp_path / "src"
    total = sum(len(d) for d in make_folder(src, big_size=1000).values())
    assert cli.out("push", "--dry-run", str(src), "a/b") == \
        f"would push a/b:0.0 (5 files, {total} bytes)\n"
    assert list(cli.dir.iterdir()) == []
    cli.out("push", str(src), "a/b")
    before = snapshot(cli.dir)
    assert cli.out("push", "--dry-run", "--bump-major", str(src), "a/b") \
        == f"would push a/b:1.0 (5 files, {total} bytes)\n"
    assert snapshot(cli.dir) == before


def test_failed_push_leaves_nothing_visible(cli, tmp_path):
    src = tmp_path / "src"
    make_folder(src, big_size=3 << 20)
    # Make the .meta write fail after the data went up: a directory
    # squats on the .meta's key.
    squat = cli.dir / "a" / "b" / "0.0.meta"
    squat.mkdir(parents=True)
    err = cli.fail("push", str(src), "a/b")
    assert err.startswith("assetfs push: cannot write a/b/0.0.meta")
    files, _ = snapshot(cli.dir)
    assert files == {}, files  # data removed, no .versions, no index
    assert not (cli.dir / "a" / "b" / "0.0").exists()
    assert cli.fail("resolve", "a/b") == \
        "assetfs resolve: no such asset 'a/b'"
    assert cli.out("ls") == ""
    squat.rmdir()
    assert cli.out("push", str(src), "a/b").startswith("pushed a/b:0.0 ")


def test_unreadable_source_fails_before_writing(cli, tmp_path):
    src = tmp_path / "src"
    make_folder(src, big_size=1000)
    os.symlink("/nonexistent/target", src / "dangling")  # skipped
    (src / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(src / "fifo")  # not a regular file: skipped
    assert cli.out("push", str(src), "s").startswith("pushed s:0.0 (5 files")
    empty = tmp_path / "empty"
    (empty / ".only-dotfiles").mkdir(parents=True)
    before = snapshot(cli.dir)
    err = cli.fail("push", str(empty), "s")
    assert "has no files" in err
    assert snapshot(cli.dir) == before


def test_index(cli, pushed):
    index = cli.dir / "assets.index"
    want = {"assets": ["docs/readme", "fraud/xgb"]}
    assert json.loads(index.read_bytes()) == want
    index.unlink()
    assert cli.out("index") == "assets.index: 2 assets\n"
    assert json.loads(index.read_bytes()) == want


def test_store_from_environment(assetfs_bin, tmp_path):
    bucket = tmp_path / "bucket"
    f = tmp_path / "x.txt"
    f.write_bytes(b"env\n")
    env = {"MODELKIT_STORAGE_PROVIDER": "local",
           "MODELKIT_STORAGE_BUCKET": str(bucket),
           "ASSETFS_STORE": ""}
    # A store whose parent does not exist is an error, like a missing
    # bucket; the message names the missing parent (the prefix itself is
    # created below an existing one, see test_hostile_file_store.py).
    p = run([assetfs_bin, "push", str(f), "e/x"], env=env, check=False)
    assert p.returncode == 1
    assert p.stderr.decode().count("\n") == 1
    assert f"its parent {bucket} does not exist" in p.stderr.decode()
    assert not bucket.exists()
    bucket.mkdir()
    assert run([assetfs_bin, "push", str(f), "e/x"], env=env).stdout == \
        b"pushed e/x:0.0 (1 file, 4 bytes)\n"
    assert (bucket / "modelkit-assets" / "e" / "x.versions").exists()
    env["MODELKIT_STORAGE_PREFIX"] = "team"
    p = run([assetfs_bin, "ls"], env=env, check=False)
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "assetfs ls: cannot list the store: LIST /: store directory "
        f"{bucket}/team is missing\n")
    env["ASSETFS_STORE"] = f"file://{bucket}/modelkit-assets"
    assert run([assetfs_bin, "ls"], env=env).stdout == b"e/x\n"
    p = run([assetfs_bin, "ls"], check=False,
            env={"ASSETFS_STORE": "", "MODELKIT_STORAGE_PROVIDER": ""})
    assert p.returncode == 1
    assert p.stderr.decode().startswith("assetfs ls: no store given")


def test_versioning_override(cli, tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"d\n")
    out = cli.out("push", "--versioning", "simple_date", str(f), "dated")
    assert out.startswith("pushed dated:20") and out.endswith(
        "Z (1 file, 2 bytes)\n")
    err = cli.fail("ls", "--versioning", "semver", "dated")
    assert "semver" in err


def test_usage_errors(cli):
    for args in (["push"], ["push", "a"], ["ls", "a", "b"], ["resolve"],
                 ["cat", "--bogus", "x"], ["index", "extra"]):
        err = cli.fail(*args, status=2)
        assert f"(see 'assetfs {args[0]} --help')" in err
    p = run([cli.binary, "nosuchcommand"], check=False)
    assert p.returncode == 2
    assert p.stderr == \
        b"assetfs: unknown command 'nosuchcommand' (see 'assetfs --help')\n"
    p = run([cli.binary], check=False)
    assert p.returncode == 2 and b"usage: assetfs" in p.stderr


def test_help_tells_the_truth(cli):
    top = run([cli.binary, "--help"]).stdout.decode()
    for name in ("push", "ls", "resolve", "cat", "index", "mount", "stats",
                 "cache"):
        assert f"\n  {name} " in top
    for cmd, opts in {"push": ["--bump-major", "--dry-run", "--store"],
                      "ls": ["--store", "--versioning"],
                      "resolve": ["--store"], "cat": ["--store"],
                      "index": ["--store"]}.items():
        text = run([cli.binary, cmd, "--help"]).stdout.decode()
        assert text.startswith(f"usage: assetfs {cmd} ")
        for o in opts:
            assert o in text, (cmd, o)


def test_progress_bar(cli, tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(5 << 20))
    p = cli.run("push", str(f), "big", env={"ASSETFS_PROGRESS": "1"})
    assert p.stdout == b"pushed big:0.0 (1 file, 5242880 bytes)\n"
    err = p.stderr.decode()
    assert "hashing big:0.0" in err and "pushing big:0.0" in err
    assert err.count("100%") >= 2
    assert err.endswith("\n")
    # Not a terminal and not forced: no bar.
    p = cli.run("push", str(f), "big")
    assert p.stderr == b""
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    assert hashlib.sha256(cli.run("cat", "big:0.1").stdout).hexdigest() \
        == digest


def test_assets_do_not_nest(cli, pushed, tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"x\n")
    before = snapshot(cli.dir)
    assert cli.fail("push", str(f), "fraud/xgb/inner") == (
        "assetfs push: cannot create 'fraud/xgb/inner': 'fraud/xgb' is an "
        "asset, and assets do not nest")
    assert cli.fail("push", str(f), "fraud") == (
        "assetfs push: cannot create 'fraud': it is a namespace holding "
        "'fraud/xgb.versions'")
    assert snapshot(cli.dir) == before
    # Leftovers of an interrupted push (no .versions) do not block it.
    (cli.dir / "fresh" / "0.0").mkdir(parents=True)
    (cli.dir / "fresh" / "0.0" / "partial.bin").write_bytes(b"half")
    (cli.dir / "fresh" / "0.0.meta").write_bytes(b"{")
    assert cli.out("push", str(f), "fresh") == \
        "pushed fresh:0.0 (1 file, 2 bytes)\n"
    assert cli.run("cat", "fresh").stdout == b"x\n"


def test_store_as_a_plain_directory(cli, tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"plain\n")
    p = run([cli.binary, "push", "--store", str(cli.dir), str(f), "p"])
    assert p.stdout == b"pushed p:0.0 (1 file, 6 bytes)\n"
    assert cli.out("ls") == "p\n"


def test_cat_checks_the_manifest(cli, tmp_path):
    f = tmp_path / "m.bin"
    good = os.urandom(9 << 20)
    f.write_bytes(good)
    cli.out("push", str(f), "m")
    obj = cli.dir / "m" / "0.0"
    data = bytearray(good)
    data[(4 << 20) + 7] ^= 0xFF  # flip a byte in the second block
    obj.write_bytes(bytes(data))
    p = cli.run("cat", "m", check=False)
    assert p.returncode == 1
    assert p.stderr == (b"assetfs cat: m/0.0: block 1 does not match its "
                        b"manifest's SHA-256: the store is corrupt (nothing "
                        b"of that block was written)\n")
    # the good first block went out; nothing of the bad one did
    assert p.stdout == good[:4 << 20]
    # a store object longer or shorter than its manifest says
    for wrong in (good + b"x", good[:-1]):
        obj.write_bytes(wrong)
        p = cli.run("cat", "m", check=False)
        assert p.returncode == 1
        assert p.stderr == (b"assetfs cat: m/0.0 is not the size its "
                            b"manifest says (9437184 bytes): the store is "
                            b"corrupt\n"), p.stderr
    obj.write_bytes(good)
    assert cli.run("cat", "m").stdout == good
