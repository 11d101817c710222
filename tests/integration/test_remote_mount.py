"""The mount's byte-identical matrix against every remote backend: nginx
(http), s3rver behind the SigV4 verifier (s3), azurite (az) and the GCS
fake (gs). Each mount goes through a pass-through proxy that the test stops
to take the store offline. Per backend: the tree and its aliases, whole
files and random ranges identical to the source, a new version appearing
within versions_ttl, then offline: cached files still read, an uncached
one fails with EIO within the timeout; no secret in the daemon's log."""
import concurrent.futures
import errno
import json
import os
import random
import subprocess
import time

import pytest

from helpers_mount import BLOCK, make_tree, mounter, read_all, wait_for  # noqa
from helpers_remote import (S3_ACCESS_KEY, S3_SECRET, cli, servers,  # noqa
                            stop_server)

KINDS = ["http", "s3", "az", "gs"]
GCS_EMAIL = "mount-test@example-project.iam.gserviceaccount.com"


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


@pytest.fixture(scope="module")
def backends(servers, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("mountbackends")
    out = {}
    # http: a local store served by nginx
    root = d / "www"
    (root / "mnt-http").mkdir(parents=True)
    ng = servers("nginx", "--root", str(root), name="nginx-mount")
    out["http"] = {"push": f"file://{root}/mnt-http", "push_env": {},
                   "upstream": ng["url"],
                   "mount": lambda px: (px + "/mnt-http", {}),
                   "secrets": []}
    # s3: s3rver behind the verifier
    s3 = servers("s3rver", "--bucket", "assets", name="s3rver-mount")
    v4 = servers("sigv4proxy", "--upstream", s3["url"], "--access-key",
                 S3_ACCESS_KEY, "--secret-key", S3_SECRET,
                 name="sigv4-mount")
    s3env = {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
             "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_PROFILE": "",
             "AWS_SESSION_TOKEN": "", "AWS_REGION": "us-east-1",
             "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "",
             "AWS_CA_BUNDLE": ""}
    out["s3"] = {"push": "s3://assets/mnt-s3",
                 "push_env": dict(s3env, S3_ENDPOINT=v4["url"]),
                 "upstream": v4["url"],
                 "mount": lambda px: ("s3://assets/mnt-s3",
                                      dict(s3env, S3_ENDPOINT=px)),
                 "secrets": [S3_SECRET]}
    # az: azurite
    az = servers("azurite", name="azurite-mount")
    base = az["url"].rsplit("/", 1)[0]

    def az_env(ep):
        return {"AZURE_STORAGE_CONNECTION_STRING":
                f"AccountName={az['account']};AccountKey={az['key']};"
                f"BlobEndpoint={ep}/{az['account']}"}
    out["az"] = {"push": "az://assets/mnt-az", "push_env": az_env(base),
                 "upstream": base,
                 "mount": lambda px: ("az://assets/mnt-az", az_env(px)),
                 "secrets": [az["key"]]}
    # gs: the fake, with a real service-account key pair
    key, pub = d / "k.pem", d / "k.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out",
                    str(pub)], check=True, capture_output=True, timeout=60)
    g = servers("gcsfake", "--pubkey", str(pub), "--client-email",
                GCS_EMAIL, name="gcs-mount")
    sa = d / "sa.json"
    sa.write_text(json.dumps({"type": "service_account",
                              "client_email": GCS_EMAIL,
                              "private_key": key.read_text(),
                              "token_uri": g["token_uri"]}))

    def gs_env(ep):
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(sa),
                "STORAGE_EMULATOR_HOST": ep}
    out["gs"] = {"push": "gs://assets/mnt-gs", "push_env": gs_env(g["url"]),
                 "upstream": g["url"],
                 "mount": lambda px: ("gs://assets/mnt-gs", gs_env(px)),
                 "secrets": [key.read_text().splitlines()[3]]}
    return out


def push(assetfs_bin, be, path, name):
    p = cli(assetfs_bin, be["push"], "push", str(path), name,
            env=be["push_env"])
    return p.stdout.decode().split()[1]


@pytest.mark.parametrize("kind", KINDS)
def test_mount_matrix(kind, backends, servers, mounter,  # noqa: F811
                      assetfs_bin, tmp_path):
    be = backends[kind]
    v0 = {"model.json": b'{"v": 0}\n', "sub/empty": b"",
          "weights.bin": rnd(2 * BLOCK + 777, 1)}
    v1 = dict(v0, **{"model.json": b'{"v": 1}\n',
                     "weights.bin": rnd(2 * BLOCK + 999, 2)})
    assert push(assetfs_bin, be, make_tree(tmp_path / "v0", v0),
                "team/model") == "team/model:0.0"
    assert push(assetfs_bin, be, make_tree(tmp_path / "v1", v1),
                "team/model") == "team/model:0.1"
    lone = rnd(1 << 20, 3)
    (tmp_path / "lone.bin").write_bytes(lone)
    push(assetfs_bin, be, tmp_path / "lone.bin", "team/lone")

    px = servers("fault", "--upstream", be["upstream"], "--faults", "",
                 name=f"passthrough-{kind}-{time.monotonic_ns()}")
    url, env = be["mount"](px["url"])
    m = mounter(url, env=env, versions_ttl=1, timeout=5)
    model = m.mnt / "team/model"

    # the tree and its aliases
    assert sorted(os.listdir(m.mnt / "team")) == ["lone", "model"]
    assert sorted(os.listdir(model)) == ["0.0", "0.1", "0.latest", "latest"]
    assert os.readlink(model / "latest") == "0.1"
    assert os.readlink(model / "0.latest") == "0.1"

    # whole files, both versions, identical
    for ver, files in (("0.0", v0), ("0.1", v1)):
        for rel, data in files.items():
            assert read_all(model / ver / rel) == data, (kind, ver, rel)
    assert read_all(model / "latest/model.json") == v1["model.json"]

    # random ranges from 4 threads
    w = v1["weights.bin"]
    rng = random.Random(7)
    jobs = [(rng.randrange(len(w)), rng.randint(1, 300_000))
            for _ in range(400)]

    def check(chunk):
        fd = os.open(model / "0.1/weights.bin", os.O_RDONLY)
        try:
            for off, n in chunk:
                if os.pread(fd, n, off) != w[off:off + n]:
                    return f"[{off}, +{n}) differs"
        finally:
            os.close(fd)
        return None
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        errs = [e for e in ex.map(check, [jobs[i::4] for i in range(4)])
                if e]
    assert not errs, errs[:3]

    # a new version appears within versions_ttl and the aliases move
    v2 = {"model.json": b'{"v": 2}\n'}
    assert push(assetfs_bin, be, make_tree(tmp_path / "v2", v2),
                "team/model") == "team/model:0.2"
    wait_for(lambda: os.readlink(model / "latest") == "0.2", 10,
             f"{kind}: latest -> 0.2")
    assert read_all(model / "latest/model.json") == v2["model.json"]

    # offline: the store goes away (the proxy stops)
    stop_server("fault", px["dir"])
    time.sleep(1.2)  # past versions_ttl
    assert read_all(model / "0.1/weights.bin") == w
    assert os.readlink(model / "latest") == "0.2"
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        read_all(m.mnt / "team/lone/0.0")
    assert e.value.errno == errno.EIO
    assert time.monotonic() - t0 < 5 + 2

    log = m.read_log()
    for s in be["secrets"]:
        assert s not in log, f"{kind}: a secret is in the daemon log"
