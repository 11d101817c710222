"""Signed stores: `assetfs keygen`, `push --sign` and `--verify-key` /
ASSETFS_VERIFY_KEY on resolve, cat and ls, against a local store.

What a user sees is checked exactly: the key files and their modes, the
64-byte `.meta.sig` (checked independently with the openssl tool), the
order of the writes, and the one-line refusal with exit status 1 for an
unsigned, tampered or differently signed version; without a key,
everything reads as before."""
import os
import re
import shutil
import stat
import subprocess

import pytest

from helpers_cli import Cli, make_folder, snapshot


def bare_out(cli, *args):
    """stdout of a successful `assetfs` run without --store."""
    return cli.run(*args, store=False).stdout.decode()


def bare_fail(cli, *args, status=1):
    """The one stderr line of a failing run without --store."""
    p = cli.run(*args, store=False, check=False)
    assert p.returncode == status, (p.returncode, p.stderr)
    assert p.stdout == b""
    err = p.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    return err.rstrip("\n")


@pytest.fixture
def cli(assetfs_bin, store):
    url, directory = store
    return Cli(assetfs_bin, url, directory)


@pytest.fixture
def keys(cli, tmp_path):
    """Two key pairs: (private, public) paths of 'k' and of 'other'."""
    out = {}
    for name in ("k", "other"):
        path = tmp_path / "keys" / name
        path.parent.mkdir(exist_ok=True)
        assert bare_out(cli, "keygen", str(path)) == \
            f"wrote {path} (private key, keep it secret) and {path}.pub " \
            "(public key)\n"
        out[name] = (str(path), f"{path}.pub")
    return out


@pytest.fixture
def signed(cli, keys, tmp_path):
    """fraud/xgb 0.0 (a signed file asset) and 0.1 (a signed folder)."""
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights v0\n")
    assert cli.out("push", "--sign", keys["k"][0], str(f), "fraud/xgb") == \
        "pushed fraud/xgb:0.0 (1 file, 11 bytes, signed)\n"
    src = tmp_path / "folder"
    files = make_folder(src, big_size=1 << 20)
    total = sum(len(d) for d in files.values())
    assert cli.out("push", str(src), "fraud/xgb", "--sign",
                   keys["k"][0]) == \
        f"pushed fraud/xgb:0.1 (5 files, {total} bytes, signed)\n"
    return files


def meta_path(cli, name, version):
    return cli.dir / f"{name}/{version}.meta"


def sig_path(cli, name, version):
    return cli.dir / f"{name}/{version}.meta.sig"


def test_keygen_makes_pem_files_with_modes(cli, tmp_path):
    key = tmp_path / "signing"
    old = os.umask(0o022)
    try:
        out = bare_out(cli, "keygen", str(key))
    finally:
        os.umask(old)
    assert out == f"wrote {key} (private key, keep it secret) and " \
        f"{key}.pub (public key)\n"
    priv, pub = key.read_text(), (tmp_path / "signing.pub").read_text()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "signing.pub").stat().st_mode) == 0o644
    assert priv.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert priv.endswith("-----END PRIVATE KEY-----\n")
    assert pub.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pub.endswith("-----END PUBLIC KEY-----\n")
    if shutil.which("openssl"):
        p = subprocess.run(["openssl", "pkey", "-in", str(key), "-noout",
                            "-text"], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0 and "ED25519 Private-Key" in p.stdout
        p = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout"],
                           capture_output=True, text=True, timeout=30)
        assert p.stdout == pub  # the pair belongs together

    # never overwritten: one line, exit 1, both files unchanged
    err = bare_fail(cli, "keygen", str(key))
    assert err == f"assetfs keygen: cannot create {key}.pub: it exists " \
        "(a key is never overwritten; remove it or pick another path)"
    assert key.read_text() == priv
    (tmp_path / "signing.pub").unlink()
    err = bare_fail(cli, "keygen", str(key))
    assert err.startswith(f"assetfs keygen: cannot create {key}: File "
                          "exists")
    assert key.read_text() == priv
    assert not (tmp_path / "signing.pub").exists()
    assert bare_fail(cli, "keygen", status=2) == \
        "assetfs keygen: expected KEY (see 'assetfs keygen --help')"


def test_push_sign_writes_the_signature_of_the_meta(cli, keys, signed):
    for v in ("0.0", "0.1"):
        sig = sig_path(cli, "fraud/xgb", v).read_bytes()
        assert len(sig) == 64
    if not shutil.which("openssl"):
        return
    # an independent check: openssl verifies the raw signature over the
    # exact .meta bytes with the public key file
    for v in ("0.0", "0.1"):
        p = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
             keys["k"][1], "-rawin", "-in", str(meta_path(cli, "fraud/xgb",
                                                          v)),
             "-sigfile", str(sig_path(cli, "fraud/xgb", v))],
            capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "Signature Verified Successfully" in p.stdout


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_push_sign_writes_sig_after_meta_before_versions(cli, keys,
                                                         tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    trace = tmp_path / "trace"
    p = subprocess.run(["strace", "-f", "-y", "-e", "trace=rename,renameat,"
                        "renameat2", "-o", str(trace), cli.binary, "push",
                        "--sign", keys["k"][0], str(f), "a/b", "--store",
                        cli.url], capture_output=True, timeout=60,
                       env=dict(os.environ, ASAN_OPTIONS=":".join(filter(
                           None, [os.environ.get("ASAN_OPTIONS"),
                                  "detect_leaks=0"]))))
    # (LeakSanitizer cannot run under ptrace; the other tests keep it)
    assert p.returncode == 0, p.stderr
    # the file store renames inside a directory descriptor (strace -y
    # shows its path: renameat(3</dir>, ".tmp", 3</dir>, "name"))
    targets = [os.path.join(m.group(1) or "", m.group(2)) for m in
               re.finditer(r'rename(?:at2?)?\(.*?"[^"]*", (?:-?\d+'
                           r'(?:<([^>]*)>)?, )?"([^"]*)"', trace.read_text())]
    names = [t[len(str(cli.dir)) + 1:] for t in targets
             if t.startswith(str(cli.dir))]
    assert names[:4] == ["a/b/0.0", "a/b/0.0.meta", "a/b/0.0.meta.sig",
                         "a/b.versions"], names


def test_failed_sig_write_lists_nothing(cli, keys, signed, tmp_path):
    """If the .sig cannot be written the version is never listed and what
    was written is removed; if the .meta cannot be, no .sig is written."""
    f = tmp_path / "f"
    f.write_bytes(b"v2\n")
    sig_path(cli, "fraud/xgb", "0.2").mkdir()  # the rename onto it fails
    (sig_path(cli, "fraud/xgb", "0.2") / "x").write_bytes(b"")
    err = cli.fail("push", "--sign", keys["k"][0], str(f), "fraud/xgb")
    assert err.startswith("assetfs push: cannot write "
                          "fraud/xgb/0.2.meta.sig: "), err
    assert "0.2" not in (cli.dir / "fraud/xgb.versions").read_text()
    assert cli.out("ls", "fraud/xgb") == "0.1\n0.0\n"
    assert not meta_path(cli, "fraud/xgb", "0.2").exists()
    assert not (cli.dir / "fraud/xgb/0.2").exists()
    shutil.rmtree(sig_path(cli, "fraud/xgb", "0.2"))

    meta_path(cli, "fraud/xgb", "0.2").mkdir()
    (meta_path(cli, "fraud/xgb", "0.2") / "x").write_bytes(b"")
    err = cli.fail("push", "--sign", keys["k"][0], str(f), "fraud/xgb")
    assert err.startswith("assetfs push: cannot write fraud/xgb/0.2.meta: ")
    assert not sig_path(cli, "fraud/xgb", "0.2").exists()
    assert cli.out("ls", "fraud/xgb") == "0.1\n0.0\n"


def test_verify_key_accepts_signed_versions(cli, keys, signed):
    pub = keys["k"][1]
    assert cli.out("resolve", "--verify-key", pub, "fraud/xgb:0.0") == \
        f"fraud/xgb:0.0\n{cli.url}/fraud/xgb/0.0\n"
    assert cli.out("resolve", "fraud/xgb", "--verify-key", pub) == \
        f"fraud/xgb:0.1\n{cli.url}/fraud/xgb/0.1\n"
    assert cli.run("cat", "--verify-key", pub, "fraud/xgb:0.0").stdout == \
        b"weights v0\n"
    assert cli.run("cat", "--verify-key", pub,
                   "fraud/xgb:0.1[weights/big.bin]").stdout == \
        signed["weights/big.bin"]
    assert cli.out("ls", "--verify-key", pub, "fraud/xgb") == "0.1\n0.0\n"
    # the environment gives the same default
    env = {"ASSETFS_VERIFY_KEY": pub}
    assert cli.run("cat", "fraud/xgb:0.1[model.json]",
                   env=env).stdout == signed["model.json"]
    assert cli.out("ls", "fraud/xgb", env=env) == "0.1\n0.0\n"
    # names are not signed: the asset list is the same with a key
    assert cli.out("ls", "--verify-key", pub) == "fraud/xgb\n"


def test_tampered_meta_is_refused(cli, keys, signed):
    pub = keys["k"][1]
    m = meta_path(cli, "fraud/xgb", "0.0")
    doc = m.read_bytes()
    # still a valid .meta: only the date moved by a second
    tampered = re.sub(rb'(\d)(\.\d+)?Z"', lambda x: bytes(
        [x.group(1)[0] ^ 1]) + (x.group(2) or b"") + b'Z"', doc, count=1)
    assert tampered != doc
    m.write_bytes(tampered)
    want = f"fraud/xgb:0.0: .meta signature does not verify with {pub}"
    assert cli.fail("resolve", "--verify-key", pub, "fraud/xgb:0.0") == \
        f"assetfs resolve: {want}"
    assert cli.fail("cat", "--verify-key", pub, "fraud/xgb:0.0") == \
        f"assetfs cat: {want}"
    assert cli.fail("cat", "fraud/xgb:0.0",
                    env={"ASSETFS_VERIFY_KEY": pub}) == f"assetfs cat: {want}"
    # ls prints what verifies, names what does not, and exits 1
    p = cli.run("ls", "--verify-key", pub, "fraud/xgb", check=False)
    assert p.returncode == 1
    assert p.stdout == b"0.1\n"
    assert p.stderr.decode() == f"assetfs ls: {want}\n"
    # without a key it reads as before (the manifest still matches)
    assert cli.run("cat", "fraud/xgb:0.0").stdout == b"weights v0\n"
    # a flipped byte in the signature itself
    m.write_bytes(doc)
    s = sig_path(cli, "fraud/xgb", "0.0")
    sig = bytearray(s.read_bytes())
    sig[10] ^= 0x40
    s.write_bytes(bytes(sig))
    assert cli.fail("resolve", "--verify-key", pub, "fraud/xgb:0.0") == \
        f"assetfs resolve: {want}"
    # a truncated or oversized signature is no signature
    for bad in (bytes(sig[:63]), bytes(sig) * 100):
        s.write_bytes(bad)
        assert cli.fail("resolve", "--verify-key", pub,
                        "fraud/xgb:0.0") == f"assetfs resolve: {want}"


def test_missing_sig_and_other_key_are_refused(cli, keys, signed, tmp_path):
    pub, other = keys["k"][1], keys["other"][1]
    # another key pair's public key
    assert cli.fail("resolve", "--verify-key", other, "fraud/xgb") == \
        "assetfs resolve: fraud/xgb:0.1: .meta signature does not verify " \
        f"with {other}"
    # an unsigned version (pushed without --sign) is refused with a key
    f = tmp_path / "f"
    f.write_bytes(b"unsigned\n")
    assert cli.out("push", str(f), "fraud/xgb") == \
        "pushed fraud/xgb:0.2 (1 file, 9 bytes)\n"
    assert not sig_path(cli, "fraud/xgb", "0.2").exists()
    want = "fraud/xgb:0.2: .meta has no signature (no " \
        f"fraud/xgb/0.2.meta.sig) to verify with {pub}"
    assert cli.fail("resolve", "--verify-key", pub, "fraud/xgb") == \
        f"assetfs resolve: {want}"
    assert cli.fail("cat", "--verify-key", pub, "fraud/xgb:0.2") == \
        f"assetfs cat: {want}"
    # the signed ones still pass, and without a key all three read
    assert cli.out("resolve", "--verify-key", pub, "fraud/xgb:0.1") \
        .startswith("fraud/xgb:0.1\n")
    assert cli.out("resolve", "fraud/xgb") == \
        f"fraud/xgb:0.2\n{cli.url}/fraud/xgb/0.2\n"
    assert cli.run("cat", "fraud/xgb:0.2").stdout == b"unsigned\n"
    assert cli.out("ls", "fraud/xgb") == "0.2\n0.1\n0.0\n"
    # a removed .sig of a signed version
    sig_path(cli, "fraud/xgb", "0.0").unlink()
    assert cli.fail("cat", "--verify-key", pub, "fraud/xgb:0.0") == \
        "assetfs cat: fraud/xgb:0.0: .meta has no signature (no " \
        f"fraud/xgb/0.0.meta.sig) to verify with {pub}"


def test_bad_key_files_fail_cleanly(cli, keys, signed, tmp_path):
    priv, pub = keys["k"]
    before = snapshot(cli.dir)
    missing = tmp_path / "nope.pub"
    assert cli.fail("resolve", "--verify-key", str(missing),
                    "fraud/xgb") == \
        f"assetfs resolve: cannot read key {missing}: No such file or " \
        "directory"
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    err = cli.fail("cat", "--verify-key", str(junk), "fraud/xgb:0.0")
    assert err.startswith(f"assetfs cat: {junk}: not an Ed25519 public "
                          "key (PEM SubjectPublicKeyInfo")
    assert cli.fail("ls", "--verify-key", priv, "fraud/xgb") == \
        f"assetfs ls: {priv}: a private key; verify with the public key " \
        f"({priv}.pub from 'assetfs keygen {priv}')"
    assert cli.fail("ls", "fraud/xgb",
                    env={"ASSETFS_VERIFY_KEY": str(missing)}) == \
        f"assetfs ls: cannot read key {missing}: No such file or directory"
    # signing with a public key or junk writes nothing
    f = tmp_path / "f"
    f.write_bytes(b"x")
    err = cli.fail("push", "--sign", pub, str(f), "fraud/xgb")
    assert err.startswith(f"assetfs push: {pub}: not an Ed25519 private "
                          "key (PEM PKCS#8")
    err = cli.fail("push", "--sign", str(missing), str(f), "fraud/xgb")
    assert err == f"assetfs push: cannot read key {missing}: No such " \
        "file or directory"
    assert snapshot(cli.dir) == before
    # --dry-run with --sign loads the key and writes nothing
    assert cli.out("push", "--dry-run", "--sign", priv, str(f),
                   "fraud/xgb") == \
        "would push fraud/xgb:0.2 (1 file, 1 bytes, signed)\n"
    assert snapshot(cli.dir) == before
    assert bare_fail(cli, "resolve", "fraud/xgb", "--verify-key",
                     status=2) == \
        "assetfs resolve: option '--verify-key' needs a value (see " \
        "'assetfs resolve --help')"


def test_unsigned_store_reads_as_before(cli, tmp_path):
    """No key anywhere: no .sig objects, outputs exactly as before."""
    f = tmp_path / "f"
    f.write_bytes(b"plain\n")
    assert cli.out("push", str(f), "plain") == \
        "pushed plain:0.0 (1 file, 6 bytes)\n"
    assert sorted(p.name for p in (cli.dir / "plain").iterdir()) == \
        ["0.0", "0.0.meta"]
    assert cli.out("resolve", "plain") == \
        f"plain:0.0\n{cli.url}/plain/0.0\n"
    assert cli.run("cat", "plain").stdout == b"plain\n"
    assert cli.out("ls", "plain") == "0.0\n"
    # an empty ASSETFS_VERIFY_KEY means none
    assert cli.run("cat", "plain", env={"ASSETFS_VERIFY_KEY": ""}) \
        .stdout == b"plain\n"


def test_signed_leftovers_do_not_block_a_new_asset(cli, keys, tmp_path):
    """A .meta.sig left by an interrupted push of a new asset's version is
    that asset's own key, not a sign that the name is a namespace."""
    (cli.dir / "late").mkdir()
    (cli.dir / "late/0.0.meta.sig").write_bytes(b"\0" * 64)
    f = tmp_path / "f"
    f.write_bytes(b"x")
    assert cli.out("push", "--sign", keys["k"][0], str(f), "late") == \
        "pushed late:0.0 (1 file, 1 bytes, signed)\n"
    assert cli.out("resolve", "--verify-key", keys["k"][1], "late") == \
        f"late:0.0\n{cli.url}/late/0.0\n"


def test_help_mentions_the_options(cli):
    top = bare_out(cli, "--help")
    assert re.search(r"^  keygen +make an Ed25519 key pair", top, re.M)
    assert "--verify-key" in top and "ASSETFS_VERIFY_KEY" in top
    assert "--sign KEY" in bare_out(cli, "push", "--help")
    for cmd in ("resolve", "cat", "ls"):
        h = bare_out(cli, cmd, "--help")
        assert "--verify-key KEY" in h, cmd
        assert "$ASSETFS_VERIFY_KEY" in h, cmd
    h = bare_out(cli, "keygen", "--help")
    assert h.startswith("usage: assetfs keygen KEY\n")
    assert "0600" in h and "KEY.pub" in h
