"""gs:// against tests/gcs_fake, which verifies the service account's RS256
JWT with its public key, expires tokens, pages listings three entries at a
time and serves ranges: push, ls, resolve, cat, index; a JWT signed by
another key is refused; tokens are refreshed before they expire; public
buckets read anonymously; no key or token in any output."""
import json
import time
import os
import subprocess

import pytest

from helpers_remote import (assert_no_secrets, check_store_roundtrip, cli,
                            make_folder, servers, prov_tool)  # noqa: F401
from conftest import run

STORE = "gs://assets/modelkit-assets"
EMAIL = "assetfs-test@example-project.iam.gserviceaccount.com"


def rsa_key(d, name):
    key, pub = d / f"{name}.pem", d / f"{name}.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out",
                    str(pub)], check=True, capture_output=True, timeout=60)
    return key, pub


def sa_file(d, name, key, token_uri):
    f = d / f"{name}.json"
    f.write_text(json.dumps({"type": "service_account",
                             "project_id": "example-project",
                             "client_email": EMAIL,
                             "private_key": key.read_text(),
                             "token_uri": token_uri}))
    return f


def key_body(key):
    """A line of the PEM body: what a leak of the key would contain."""
    return key.read_text().splitlines()[3]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("gcskeys")
    good, good_pub = rsa_key(d, "good")
    other, _ = rsa_key(d, "other")
    return {"dir": d, "good": good, "pub": good_pub, "other": other}


@pytest.fixture(scope="module")
def gcs(servers, keys):  # noqa: F811
    info = servers("gcsfake", "--pubkey", str(keys["pub"]),
                   "--client-email", EMAIL, "--page-size", "3")
    sa = sa_file(keys["dir"], "sa", keys["good"], info["token_uri"])
    info["env"] = {"GOOGLE_APPLICATION_CREDENTIALS": str(sa),
                   "STORAGE_EMULATOR_HOST": info["url"]}
    return info


def fake_stats(url):
    import urllib.request
    with urllib.request.urlopen(url + "/__fake/stats", timeout=10) as r:
        return json.loads(r.read())


def test_gcs_roundtrip(gcs, keys, assetfs_bin, tmp_path):
    src = make_folder(tmp_path / "src", seed=4)
    procs = check_store_roundtrip(assetfs_bin, STORE, src, "cv/resnet",
                                  gcs["env"])
    st = fake_stats(gcs["url"])
    assert st["tokens_issued"] >= 1 and st["token_rejected"] == 0
    assert_no_secrets(procs, [key_body(keys["good"]), "ya29.fake-"])


def test_gcs_paging_and_ranges(gcs, prov_tool, tmp_path):
    env = gcs["env"]
    data = os.urandom(200_000)
    f = tmp_path / "d.bin"
    f.write_bytes(data)
    for i in range(8):
        run([prov_tool, STORE, "put", f"pg/a{i}/x.bin", str(f)], env=env)
    run([prov_tool, STORE, "put", "pg/top.bin", str(f)], env=env)
    # the fake pages by 3: 9 entries take several pages
    before = fake_stats(gcs["url"])["requests"]
    p = run([prov_tool, STORE, "list", "pg/", "-d"], env=env)
    assert p.stdout.decode().splitlines() == \
        [f"P pg/a{i}/" for i in range(8)] + ["O pg/top.bin 200000"]
    assert fake_stats(gcs["url"])["requests"] - before >= 3
    p = run([prov_tool, STORE, "list", "pg/"], env=env)
    assert len(p.stdout.decode().splitlines()) == 9
    for off, ln in [(0, 1), (199_999, 1), (777, 100_000)]:
        p = run([prov_tool, STORE, "get", "pg/top.bin", str(off), str(ln)],
                env=env)
        assert p.stdout == data[off:off + ln]
    p = run([prov_tool, STORE, "get", "pg/top.bin", "199990", "11"],
            env=env, check=False)
    assert p.returncode == 1 and b"range past the end" in p.stderr
    run([prov_tool, STORE, "del", "pg/top.bin"], env=env)
    p = run([prov_tool, STORE, "head", "pg/top.bin"], env=env, check=False)
    assert p.returncode == 1 and b"no such object" in p.stderr


def test_gcs_rejects_jwt_of_another_key(gcs, keys, assetfs_bin):
    bad = sa_file(keys["dir"], "bad", keys["other"], gcs["token_uri"])
    env = dict(gcs["env"], GOOGLE_APPLICATION_CREDENTIALS=str(bad))
    before = fake_stats(gcs["url"])["jwt_rejected"]
    p = cli(assetfs_bin, STORE, "ls", env=env, check=False)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert "the service account's JWT was refused" in err
    assert "invalid_grant" in err
    assert fake_stats(gcs["url"])["jwt_rejected"] > before
    assert_no_secrets([p], [key_body(keys["other"])])


def test_gcs_token_refreshed_before_expiry(servers, keys, prov_tool,  # noqa
                                           tmp_path):
    info = servers("gcsfake", "--pubkey", str(keys["pub"]),
                   "--client-email", EMAIL, name="gcs-shortttl",
                   env_extra={"GCS_FAKE_TOKEN_TTL": "2"})
    sa = sa_file(tmp_path, "sa", keys["good"], info["token_uri"])
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(sa),
           "STORAGE_EMULATOR_HOST": info["url"]}
    f = tmp_path / "t.bin"
    f.write_bytes(b"t" * 1000)
    run([prov_tool, STORE, "put", "tok/t.bin", str(f)], env=env)
    p = run([prov_tool, STORE, "repeat", "tok/t.bin", "8", "400"], env=env)
    assert p.stdout.decode().strip() == "8 of 8"
    st = fake_stats(info["url"])
    # 2 s tokens over ~3 s of requests in one process: refreshed early,
    # never used expired
    assert st["tokens_issued"] >= 3
    assert st["token_rejected"] == 0


def test_gcs_public_bucket_anonymous(servers, keys, prov_tool,  # noqa
                                     tmp_path):
    info = servers("gcsfake", "--pubkey", str(keys["pub"]),
                   "--client-email", EMAIL, name="gcs-public",
                   env_extra={"GCS_FAKE_PUBLIC": "1"})
    sa = sa_file(tmp_path, "sa", keys["good"], info["token_uri"])
    f = tmp_path / "p.bin"
    f.write_bytes(os.urandom(5000))
    run([prov_tool, STORE, "put", "pub/p.bin", str(f)],
        env={"GOOGLE_APPLICATION_CREDENTIALS": str(sa),
             "STORAGE_EMULATOR_HOST": info["url"]})
    anon = {"GOOGLE_APPLICATION_CREDENTIALS": "",
            "STORAGE_EMULATOR_HOST": info["url"]}
    p = run([prov_tool, STORE, "get", "pub/p.bin"], env=anon)
    assert p.stdout == f.read_bytes()
    assert fake_stats(info["url"])["anonymous"] >= 1
    p = run([prov_tool, STORE, "put", "pub/q.bin", str(f)], env=anon,
            check=False)
    assert p.returncode == 1 and b"HTTP 401" in p.stderr


def test_gcs_revoked_token_is_replaced(gcs, prov_tool, tmp_path):
    import threading
    import urllib.request
    f = tmp_path / "r.bin"
    f.write_bytes(b"r" * 100)
    run([prov_tool, STORE, "put", "rev/r.bin", str(f)], env=gcs["env"])
    before = fake_stats(gcs["url"])

    def revoke():
        # Revoke once prov_tool holds its token (and so before its second
        # GET, 600 ms later): a fixed delay raced prov_tool's start on a
        # busy machine.
        deadline = time.monotonic() + 60
        while (time.monotonic() < deadline and
               fake_stats(gcs["url"])["tokens_issued"] ==
               before["tokens_issued"]):
            time.sleep(0.01)
        req = urllib.request.Request(gcs["url"] + "/__fake/revoke",
                                     method="POST", data=b"")
        urllib.request.urlopen(req, timeout=10).read()
    t = threading.Thread(target=revoke)
    t.start()
    try:
        p = run([prov_tool, STORE, "repeat", "rev/r.bin", "3", "600"],
                env=gcs["env"])
    finally:
        t.join()
    assert p.stdout.decode().strip() == "3 of 3"
    after = fake_stats(gcs["url"])
    assert after["token_rejected"] - before["token_rejected"] == 1
    assert after["tokens_issued"] - before["tokens_issued"] == 2
