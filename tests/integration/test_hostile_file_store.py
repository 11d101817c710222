"""A file:// store never shows anything outside itself (DESIGN §4, issue 11
defect 1): symlinks that leave the store - to /etc/passwd, to a directory
outside, as a version file, a version folder, a file inside a folder
version, a namespace directory, a `.versions`, a `.meta` - show nothing
through a real mount; the daemon stays up and says so once per link; an
object of the store that no version lists is not served; links that stay
inside are followed. Both ways of opening beneath the root run: the
kernel's openat2(2) and the walk by hand (ASSETFS_FILE_NO_OPENAT2=1), one
of them mounted with allow_other (these tests run as root). And `assetfs
push` into a file store: a new prefix below an existing directory is
created, a missing parent is an error that names it, and a push never
writes through a link that leaves (defect 5)."""
import errno
import json
import os
import pathlib

import pytest

from conftest import run
from helpers_mount import mounter, read_all, write_version  # noqa: F401

CANARY = b"CANARY-9f1c2e-outside-the-store"


def meta_doc(is_dir, contents=None):
    m = {"push_date": "2026-01-02T03:04:05Z", "is_directory": is_dir}
    if contents is not None:
        m["contents"] = contents
    return json.dumps(m)


def versions_doc(*vs):
    return json.dumps({"versions": list(vs)})


@pytest.fixture
def hostile(store, tmp_path):
    """A store with a good asset and one case per place a symlink can
    hide; returns (url, store dir, outside dir, {case: link path})."""
    url, sd = store
    out = tmp_path / "outside"
    (out / "dir" / "x").mkdir(parents=True)
    (out / "secret.txt").write_bytes(CANARY)
    (out / "dir" / "secret.txt").write_bytes(CANARY)
    # the outside dir is a whole store of its own: a namespace link to it
    # would show an asset if it were followed
    (out / "dir" / "x.versions").write_text(versions_doc("0.0"))
    (out / "dir" / "x" / "0.0").write_bytes(CANARY)
    (out / "dir" / "x" / "0.0.meta").write_text(meta_doc(False))
    (out / "evil.versions").write_text(versions_doc("0.0", "9.9"))
    (out / "evil.meta").write_text(meta_doc(True, ["CANARYNAME"]))

    write_version(sd, "good/a", "0.0", b"fine\n")
    links = {}

    def link(rel, target):
        p = sd / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
        links[rel] = p

    # a version file -> /etc/passwd (no manifest: sizes from the store)
    write_version(sd, "h/vfile", "0.0", b"ok\n", manifest=False)
    write_version(sd, "h/vfile", "0.1", b"placeholder", manifest=False)
    (sd / "h/vfile/0.1").unlink()
    link("h/vfile/0.1", "/etc/passwd")
    # a version folder -> a directory outside
    write_version(sd, "h/vdir", "0.0", {"secret.txt": b"x"}, manifest=False)
    for f in (sd / "h/vdir/0.0").iterdir():
        f.unlink()
    (sd / "h/vdir/0.0").rmdir()
    link("h/vdir/0.0", out / "dir")
    # a file inside a folder version -> outside (relative, climbing out)
    write_version(sd, "h/infile", "0.0",
                  {"ok.txt": b"ok\n", "leak.txt": b"placeholder"},
                  manifest=False)
    (sd / "h/infile/0.0/leak.txt").unlink()
    link("h/infile/0.0/leak.txt", "../../../../../outside/secret.txt")
    # a namespace directory -> outside
    link("leakns", out / "dir")
    # a .versions -> outside (its versions exist inside: still no asset)
    write_version(sd, "h/vers", "9.9", b"inner\n", add_to_versions=False)
    link("h/vers.versions", out / "evil.versions")
    # a .meta -> outside (a folder listing a canary name)
    write_version(sd, "h/meta", "0.0", b"inner\n", manifest=False)
    (sd / "h/meta/0.0.meta").unlink()
    link("h/meta/0.0.meta", out / "evil.meta")
    # an object of the store that belongs to no version, and a listed
    # version that is a link to it (stays inside: followed)
    write_version(sd, "h/nov", "0.0", b"listed\n", manifest=False)
    write_version(sd, "h/nov", "7.7", b"unlisted\n", manifest=False,
                  add_to_versions=False)
    write_version(sd, "h/inside", "0.0", b"placeholder", manifest=False)
    (sd / "h/inside/0.0").unlink()
    link("h/inside/0.0", "../nov/7.7")
    return url, sd, out, links


def walk_everything(mnt):
    """Every name and every byte the mount shows: ([paths], bytes)."""
    names, data = [], bytearray()
    for top, dirs, files in os.walk(mnt):
        for n in dirs + files:
            p = os.path.join(top, n)
            names.append(os.path.relpath(p, mnt))
            os.lstat(p)
            if os.path.islink(p):
                os.readlink(p)
        for n in files:
            p = os.path.join(top, n)
            try:
                data += read_all(p)
            except OSError as e:
                assert e.errno in (errno.EIO, errno.ENOENT), (p, e)
    return names, bytes(data)


def no_entry(path):
    with pytest.raises(OSError) as e:
        read_all(path)
    assert e.value.errno in (errno.ENOENT, errno.EIO), (path, e.value)


@pytest.mark.parametrize("resolver", ["openat2", "walk"])
def test_symlinks_leaving_the_store_show_nothing(hostile, mounter,
                                                 resolver):
    url, sd, out, links = hostile
    env = {"ASSETFS_FILE_NO_OPENAT2": "1"} if resolver == "walk" else None
    opts = {"allow_other": True} if resolver == "openat2" else {}
    m = mounter(url, env=env, **opts)
    mnt = m.mnt
    passwd = pathlib.Path("/etc/passwd").read_bytes()

    assert read_all(mnt / "good/a/0.0") == b"fine\n"
    # a version file -> /etc/passwd: the good version serves, this fails
    assert read_all(mnt / "h/vfile/0.0") == b"ok\n"
    no_entry(mnt / "h/vfile/0.1")
    # a version folder -> outside: no entry in it shows
    vdir = mnt / "h/vdir/0.0"
    if os.path.isdir(vdir):
        assert os.listdir(vdir) in ([], ["secret.txt"])
    no_entry(vdir / "secret.txt")
    # a file inside a folder version -> outside
    assert read_all(mnt / "h/infile/0.0/ok.txt") == b"ok\n"
    no_entry(mnt / "h/infile/0.0/leak.txt")
    # a namespace dir -> outside: absent
    assert "leakns" not in os.listdir(mnt)
    assert not os.path.exists(mnt / "leakns")
    no_entry(mnt / "leakns/x/0.0")
    # a .versions -> outside: no such asset (its folder of objects is
    # at most an empty namespace)
    if os.path.exists(mnt / "h/vers"):
        assert os.listdir(mnt / "h/vers") == []
    no_entry(mnt / "h/vers/9.9")
    # a .meta -> outside: the version does not show its documents' names
    assert not os.path.exists(mnt / "h/meta/0.0/CANARYNAME")
    # an object of no version is not served by its own path; a listed
    # version linked to it inside the store is
    assert sorted(os.listdir(mnt / "h/nov")) == ["0.0", "0.latest", "latest"]
    no_entry(mnt / "h/nov/7.7")
    assert read_all(mnt / "h/nov/0.0") == b"listed\n"
    assert read_all(mnt / "h/inside/0.0") == b"unlisted\n"

    names, data = walk_everything(mnt)
    assert CANARY not in data
    assert passwd not in data
    assert not any("CANARY" in n or "leakns" in n for n in names), names
    xattrs = run(["getfattr", "-R", "-d", str(mnt)], check=False)
    assert CANARY not in xattrs.stdout

    assert m.proc.poll() is None  # the daemon is up
    assert os.listdir(mnt / "good/a") == os.listdir(mnt / "good/a")
    log = m.read_log()
    lines = [ln for ln in log.splitlines() if "a symlink on its path" in ln]
    for key in ("h/vfile/0.1", "h/vdir/0.0", "h/infile/0.0/leak.txt",
                "leakns", "h/vers.versions", "h/meta/0.0.meta"):
        mine = [ln for ln in lines if f"'{key}" in ln]
        assert mine, (key, log)
        # one line per key: repeated lookups and refreshes stay quiet
        assert len({ln.split("warn: ", 1)[-1] for ln in mine}) == len(mine)
    assert all(lines.count(ln) == 1 for ln in lines)


def test_push_into_a_new_prefix(assetfs_bin, tmp_path):
    src = tmp_path / "m.bin"
    src.write_bytes(b"model\n")
    base = tmp_path / "bucket"
    base.mkdir()
    url = f"file://{base}/modelkit-assets"
    p = run([assetfs_bin, "push", "--store", url, str(src), "a/m"])
    assert b"a/m:0.0" in p.stdout
    assert (base / "modelkit-assets/a/m/0.0").read_bytes() == b"model\n"
    assert json.loads((base / "modelkit-assets/a/m.versions").read_text()
                      ) == {"versions": ["0.0"]}

    missing = tmp_path / "nope" / "deeper"
    p = run([assetfs_bin, "push", "--store", f"file://{missing}/prefix",
             str(src), "a/m"], check=False)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert str(missing) in err and "does not exist" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "nope").exists()

    # a dry run writes nothing, not even the prefix
    p = run([assetfs_bin, "push", "--dry-run", "--store",
             f"file://{base}/dry", str(src), "a/m"], check=False)
    assert not (base / "dry").exists()


def test_push_never_writes_through_a_leaving_symlink(assetfs_bin, store,
                                                     tmp_path):
    url, sd = store
    out = tmp_path / "outside"
    out.mkdir()
    (out / "keep.versions").write_bytes(CANARY)
    src = tmp_path / "m.bin"
    src.write_bytes(b"model\n")
    # a namespace that is a link out: the push fails, nothing lands outside
    (sd / "ns").symlink_to(out)
    p = run([assetfs_bin, "push", "--store", url, str(src), "ns/m"],
            check=False)
    assert p.returncode != 0
    assert sorted(os.listdir(out)) == ["keep.versions"]
    # a .versions that is a link out is replaced, its target untouched
    (sd / "keep.versions").symlink_to(out / "keep.versions")
    p = run([assetfs_bin, "push", "--store", url, str(src), "keep"])
    assert (out / "keep.versions").read_bytes() == CANARY
    assert not (sd / "keep.versions").is_symlink()
    assert json.loads((sd / "keep.versions").read_text()) == {
        "versions": ["0.0"]}
    assert sorted(os.listdir(out)) == ["keep.versions"]
