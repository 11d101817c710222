"""The fault-injecting proxy (tests/fault_proxy) in front of nginx and of
s3rver (behind the SigV4 verifier): across thousands of random ranged
reads with 500s, 503 + Retry-After, 429s, resets, stalls, truncated and
short bodies, every read returns exactly the right bytes or fails within
the timeout; flipped bytes are caught by the manifest check of `cat`."""
import json
import os
import urllib.request

import pytest

from helpers_remote import (S3_ACCESS_KEY, S3_SECRET, assert_no_secrets,
                            cli, make_folder, sanitized_build, servers,
                            prov_tool)  # noqa
from conftest import run

FAULTS = ("500=0.04,503=0.02,429=0.02,reset=0.04,midreset=0.03,"
          "stall=0.01,truncate=0.04,short=0.04")
TIMEOUT_MS = 5000


def fault_stats(url):
    with urllib.request.urlopen(url + "/__fault/stats", timeout=10) as r:
        return json.loads(r.read())


def stress(prov_tool, store, key, local, n, threads, seed, env=None):
    e = {"PROV_TOOL_TIMEOUT_MS": str(TIMEOUT_MS)}
    e.update(env or {})
    p = run([prov_tool, store, "stress", key, str(local), str(n),
             str(threads), str(seed)], env=e, timeout=600)
    return json.loads(p.stdout), p


def check_stress(res, n):
    assert res["wrong"] == 0, res
    assert res["short"] == 0, res
    assert res["ok"] + res["failed"] == n, res
    # a failure is bounded by the timeout (plus scheduling slack, more
    # under sanitizers on a loaded 2-core machine)
    slack = 4000 if sanitized_build() else 1500
    assert res["max_ms"] <= TIMEOUT_MS + slack, res
    assert res["ok"] >= 0.95 * n, res
    assert res["retries"] > 0, res


def test_faults_nginx_ranged_reads(servers, prov_tool, tmp_path):  # noqa
    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(4 << 20)
    (root / "blob.bin").write_bytes(data)
    (tmp_path / "blob.bin").write_bytes(data)
    ng = servers("nginx", "--root", str(root), name="nginx-faults")
    fp = servers("fault", "--upstream", ng["url"], "--seed", "11",
                 "--faults", FAULTS, name="fault-nginx")
    n = 1200
    res, _ = stress(prov_tool, fp["url"], "blob.bin", tmp_path / "blob.bin",
                    n, 8, 3)
    check_stress(res, n)
    st = fault_stats(fp["url"])
    for f in ("500", "503", "429", "reset", "midreset", "stall",
              "truncate", "short"):
        assert st.get(f, 0) > 0, (f, st)


def test_faults_s3_ranged_reads(servers, prov_tool, tmp_path):  # noqa
    s3 = servers("s3rver", "--bucket", "assets", name="s3rver-faults")
    px = servers("sigv4proxy", "--upstream", s3["url"], "--access-key",
                 S3_ACCESS_KEY, "--secret-key", S3_SECRET,
                 name="sigv4-faults")
    fp = servers("fault", "--upstream", px["url"], "--seed", "5",
                 "--faults", FAULTS, name="fault-s3")
    env = {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_PROFILE": "",
           "AWS_SESSION_TOKEN": "", "AWS_REGION": "us-east-1",
           "S3_ENDPOINT": fp["url"], "AWS_ENDPOINT_URL": "",
           "AWS_ENDPOINT_URL_S3": "", "AWS_CA_BUNDLE": ""}
    data = os.urandom(2 << 20)
    local = tmp_path / "obj.bin"
    local.write_bytes(data)
    store = "s3://assets/faults"
    # the proxy faults GET and HEAD only: the upload goes through
    run([prov_tool, store, "put", "obj.bin", str(local)], env=env)
    n = 500
    res, p = stress(prov_tool, store, "obj.bin", local, n, 8, 9, env=env)
    check_stress(res, n)
    assert_no_secrets([p], [S3_SECRET])


def test_faults_flipped_bytes_never_pass_cat(servers, assetfs_bin,  # noqa
                                             tmp_path):
    root = tmp_path / "www"
    (root / "modelkit-assets").mkdir(parents=True)
    src = make_folder(tmp_path / "src", seed=5,
                      files={"w.bin": 300_000})
    cli(assetfs_bin, f"file://{root}/modelkit-assets", "push", str(src),
        "flip/m")
    ng = servers("nginx", "--root", str(root), name="nginx-flip")
    fp = servers("fault", "--upstream", ng["url"], "--seed", "2",
                 "--faults", "flip=0.5", "--methods", "GET",
                 name="fault-flip")
    store = fp["url"] + "/modelkit-assets"
    want = (src / "w.bin").read_bytes()
    caught = 0
    for _ in range(12):
        p = cli(assetfs_bin, store, "cat", "flip/m:0.0[w.bin]", check=False)
        if p.returncode == 0:
            assert p.stdout == want
        else:
            caught += 1
    assert caught > 0  # flips happened and were refused


def test_faults_gcs_ranged_reads(servers, prov_tool, tmp_path):  # noqa
    """Resumed GCS reads pin the generation first served (URL parameter
    ifGenerationMatch), so retries after partial bodies stay exact."""
    import subprocess
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out",
                    str(pub)], check=True, capture_output=True, timeout=60)
    g = servers("gcsfake", "--pubkey", str(pub), name="gcs-faults")
    fp = servers("fault", "--upstream", g["url"], "--seed", "4",
                 "--faults", FAULTS, name="fault-gcs")
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps({"type": "service_account",
                              "client_email": "x@y.iam.gserviceaccount.com",
                              "private_key": key.read_text(),
                              "token_uri": g["token_uri"]}))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(sa),
           "STORAGE_EMULATOR_HOST": fp["url"]}
    local = tmp_path / "g.bin"
    local.write_bytes(os.urandom(1 << 20))
    run([prov_tool, "gs://assets/f", "put", "g.bin", str(local)], env=env)
    n = 300
    res, _ = stress(prov_tool, "gs://assets/f", "g.bin", local, n, 4, 21,
                    env=env)
    check_stress(res, n)
