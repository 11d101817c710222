"""Signed stores through the mount: `-o verify_key=KEY.pub` (or
ASSETFS_VERIFY_KEY) refuses every version whose `.meta` has no signature
that verifies with the key -- lookups fail with EACCES and the daemon logs
one line naming the version -- online and offline, whatever other mounts
(with or without a key) left in a shared cache_dir. Without a key the
mount reads exactly as before."""
import errno
import json
import os
import sqlite3

import pytest

from conftest import run
from helpers_cli import Cli, make_folder
from helpers_mount import mounter, read_all  # noqa: F401


@pytest.fixture
def signed_store(assetfs_bin, store, tmp_path):
    """fraud/xgb 0.0 (signed file), 0.1 (signed folder), 0.2 (unsigned
    file); team/b 0.0 (signed file); fraud/tamp 0.0 (signed, then its
    .meta altered in the store)."""
    url, sd = store
    cli = Cli(assetfs_bin, url, sd)
    key = tmp_path / "keys" / "k"
    key.parent.mkdir()
    cli.run("keygen", str(key), store=False)
    a, b, c = b"signed weights\n" * 1000, b"team b\n", b"unsigned!\n"
    (tmp_path / "a.bin").write_bytes(a)
    (tmp_path / "b.bin").write_bytes(b)
    (tmp_path / "c.bin").write_bytes(c)
    files = make_folder(tmp_path / "folder", big_size=1 << 20)
    cli.run("push", "--sign", str(key), str(tmp_path / "a.bin"),
            "fraud/xgb")
    cli.run("push", "--sign", str(key), str(tmp_path / "folder"),
            "fraud/xgb")
    cli.run("push", str(tmp_path / "c.bin"), "fraud/xgb")
    cli.run("push", "--sign", str(key), str(tmp_path / "b.bin"), "team/b")
    cli.run("push", "--sign", str(key), str(tmp_path / "a.bin"),
            "fraud/tamp")
    tamper(sd / "fraud/tamp/0.0.meta")
    return {"url": url, "dir": sd, "pub": f"{key}.pub", "a": a, "b": b,
            "c": c, "files": files}


def tamper(path):
    """Rewrite a .meta with another push_date: still a valid document,
    no longer the signed bytes."""
    doc = json.loads(path.read_bytes())
    doc["push_date"] = "2001-02-03T04:05:06Z"
    path.write_text(json.dumps(doc))


def refused(path):
    with pytest.raises(OSError) as e:
        os.stat(path)
    assert e.value.errno == errno.EACCES, e.value
    with pytest.raises(OSError) as e:
        read_all(path)
    assert e.value.errno == errno.EACCES, e.value


def refusal_lines(m, spec):
    return [ln for ln in m.read_log().splitlines()
            if spec + ":" in ln and "refused" in ln]


def test_signed_reads_unsigned_and_tampered_refused(signed_store, mounter,
                                                    tmp_path):
    s = signed_store
    m = mounter(s["url"], verify_key=s["pub"])
    mnt = m.mnt
    assert read_all(mnt / "fraud/xgb/0.0") == s["a"]
    for rel, data in s["files"].items():
        assert read_all(mnt / "fraud/xgb/0.1" / rel) == data
    assert read_all(mnt / "team/b/0.0") == s["b"]

    for _ in range(3):  # refused every time, logged once
        refused(mnt / "fraud/xgb/0.2")
        refused(mnt / "fraud/tamp/0.0")
    lines = refusal_lines(m, "fraud/xgb:0.2")
    assert len(lines) == 1, m.read_log()
    assert "has no signature" in lines[0] and s["pub"] in lines[0]
    assert "EACCES" in lines[0]
    lines = refusal_lines(m, "fraud/tamp:0.0")
    assert len(lines) == 1, m.read_log()
    assert "does not verify with " + s["pub"] in lines[0]
    # the listing leaves the refused version out, and the aliases that
    # name it (an alias is listed only if its target is)
    assert sorted(os.listdir(mnt / "fraud/xgb")) == ["0.0", "0.1"]
    assert os.listdir(mnt / "fraud/tamp") == []
    assert "unreachable" not in m.read_log()  # never an outage

    # without a key, the same store reads as before
    plain = mounter(s["url"], name="plain", cache_dir=tmp_path / "c2")
    assert read_all(plain.mnt / "fraud/xgb/0.2") == s["c"]
    assert read_all(plain.mnt / "fraud/xgb/latest") == s["c"]
    assert read_all(plain.mnt / "fraud/tamp/0.0") == s["a"]
    assert sorted(os.listdir(plain.mnt / "fraud/xgb")) == \
        ["0.0", "0.1", "0.2", "0.latest", "latest"]
    assert "refused" not in plain.read_log()


def test_verify_key_from_the_environment(signed_store, mounter, tmp_path):
    s = signed_store
    m = mounter(s["url"], env={"ASSETFS_VERIFY_KEY": s["pub"]})
    assert read_all(m.mnt / "fraud/xgb/0.0") == s["a"]
    refused(m.mnt / "fraud/xgb/0.2")
    assert len(refusal_lines(m, "fraud/xgb:0.2")) == 1
    # an explicit empty option turns the environment's key off
    off = mounter(s["url"], name="off", cache_dir=tmp_path / "c2",
                  env={"ASSETFS_VERIFY_KEY": s["pub"]}, verify_key="")
    assert read_all(off.mnt / "fraud/xgb/0.2") == s["c"]


def test_bad_verify_key_fails_the_mount(signed_store, assetfs_bin,
                                        tmp_path):
    s = signed_store
    mnt = tmp_path / "never"
    mnt.mkdir()
    bad = tmp_path / "missing.pub"
    p = run([assetfs_bin, "mount", "-f", s["url"], str(mnt), "-o",
             f"cache_dir={tmp_path / 'c'},verify_key={bad}"],
            check=False, timeout=60)
    assert p.returncode == 1
    assert not os.path.ismount(mnt)
    err = p.stderr.decode()
    assert str(bad) in err and "No such file" in err, err
    # a private key is not a verify key
    p = run([assetfs_bin, "mount", "-f", s["url"], str(mnt), "-o",
             f"cache_dir={tmp_path / 'c'},"
             f"verify_key={s['pub'][:-len('.pub')]}"],
            check=False, timeout=60)
    assert p.returncode == 1 and not os.path.ismount(mnt)
    assert "public key" in p.stderr.decode(), p.stderr


def cached_doc(cache_dir, dkey):
    db = sqlite3.connect(cache_dir / "index.db", timeout=10)
    try:
        row = db.execute("SELECT data FROM docs WHERE dkey = ?",
                         (dkey,)).fetchone()
        return bytes(row[0]) if row else None
    finally:
        db.close()


def set_cached_doc(cache_dir, dkey, data):
    db = sqlite3.connect(cache_dir / "index.db", timeout=10)
    try:
        n = db.execute("UPDATE docs SET data = ? WHERE dkey = ?",
                       (data, dkey)).rowcount
        db.commit()
        assert n == 1, dkey
    finally:
        db.close()


def test_offline_uses_only_verified_cached_metas(signed_store, mounter,
                                                 tmp_path):
    s = signed_store
    cache = tmp_path / "cache"
    # 1. with the key: read what is signed (its .meta and .sig are kept)
    m1 = mounter(s["url"], name="m1", cache_dir=cache,
                 verify_key=s["pub"])
    assert read_all(m1.mnt / "fraud/xgb/0.0") == s["a"]
    assert read_all(m1.mnt / "fraud/xgb/0.1/model.json") == \
        s["files"]["model.json"]
    assert read_all(m1.mnt / "team/b/0.0") == s["b"]
    assert m1.unmount() == 0
    assert len(cached_doc(cache, "assetfs:sig:fraud/xgb/0.0.meta.sig")) \
        == 128
    # 2. the store's 0.1 .meta is altered; a mount without a key reads it
    # (and the unsigned 0.2) and so caches both documents, unchecked
    tamper(s["dir"] / "fraud/xgb/0.1.meta")
    m2 = mounter(s["url"], name="m2", cache_dir=cache)
    assert read_all(m2.mnt / "fraud/xgb/0.1/model.json") == \
        s["files"]["model.json"]
    assert read_all(m2.mnt / "fraud/xgb/0.2") == s["c"]
    assert m2.unmount() == 0
    assert cached_doc(cache, "fraud/xgb/0.1.meta") == \
        (s["dir"] / "fraud/xgb/0.1.meta").read_bytes()
    assert cached_doc(cache, "fraud/xgb/0.2.meta") is not None
    # 3. a cached document altered in place (someone with write access
    # to the cache dir)
    doc = json.loads(cached_doc(cache, "team/b/0.0.meta"))
    doc["push_date"] = "2001-02-03T04:05:06Z"
    set_cached_doc(cache, "team/b/0.0.meta", json.dumps(doc).encode())

    away = s["dir"].parent / "moved-away"
    os.rename(s["dir"], away)
    try:
        m3 = mounter(s["url"], name="m3", cache_dir=cache,
                     verify_key=s["pub"], timeout=5)
        assert read_all(m3.mnt / "fraud/xgb/0.0") == s["a"]
        refused(m3.mnt / "fraud/xgb/0.1")
        refused(m3.mnt / "fraud/xgb/0.2")
        refused(m3.mnt / "team/b/0.0")
        log = m3.read_log()
        ln = refusal_lines(m3, "fraud/xgb:0.1")
        assert len(ln) == 1 and "unreachable" in ln[0] and \
            "does not verify with " + s["pub"] in ln[0], log
        ln = refusal_lines(m3, "fraud/xgb:0.2")
        assert len(ln) == 1 and "no signature of the cached .meta" in \
            ln[0], log
        assert len(refusal_lines(m3, "team/b:0.0")) == 1, log
        # the same cache without a key still serves what it has
        m4 = mounter(s["url"], name="m4", cache_dir=cache, timeout=5)
        assert read_all(m4.mnt / "fraud/xgb/0.0") == s["a"]
        assert os.path.isdir(m4.mnt / "fraud/xgb/0.1")
    finally:
        os.rename(away, s["dir"])
    # 4. back online, after the keyless mount: the key still refuses the
    # unsigned and the altered versions, the signed one reads
    m5 = mounter(s["url"], name="m5", cache_dir=cache, verify_key=s["pub"])
    refused(m5.mnt / "fraud/xgb/0.2")
    refused(m5.mnt / "fraud/xgb/0.1")
    assert read_all(m5.mnt / "fraud/xgb/0.0") == s["a"]
    assert len(refusal_lines(m5, "fraud/xgb:0.2")) == 1
