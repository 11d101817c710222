"""az:// against azurite, which enforces SharedKey and SAS: push, ls,
resolve, cat, index with a SharedKey connection string, with account +
key variables and with a SAS; marker-paged listings; Put Block lists for
large blobs; a wrong key is a clear authentication error; no secret in
any output."""
import base64
import hashlib
import hmac
import os
import urllib.parse

import pytest

from helpers_remote import (assert_no_secrets, check_store_roundtrip, cli,
                            make_folder, servers, prov_tool)  # noqa: F401
from conftest import run

STORE = "az://assets/modelkit-assets"


def account_sas(account, key_b64, perms="rwdlac"):
    """An account SAS (sv=2019-12-12) for the blob service."""
    sv, ss, srt, se, spr = "2019-12-12", "b", "sco", \
        "2030-01-01T00:00:00Z", "https,http"
    sts = "\n".join([account, perms, ss, srt, "", se, "", spr, sv, ""])
    sig = base64.b64encode(hmac.new(base64.b64decode(key_b64), sts.encode(),
                                    hashlib.sha256).digest()).decode()
    return urllib.parse.urlencode({"sv": sv, "ss": ss, "srt": srt,
                                   "sp": perms, "se": se, "spr": spr,
                                   "sig": sig})


@pytest.fixture(scope="module")
def az(servers):  # noqa: F811
    info = servers("azurite")
    info["env"] = {"AZURE_STORAGE_CONNECTION_STRING":
                   info["connection_string"]}
    return info


def test_azure_sharedkey_roundtrip(az, assetfs_bin, tmp_path):
    src = make_folder(tmp_path / "src", seed=3)
    procs = check_store_roundtrip(assetfs_bin, STORE, src, "nlp/bert",
                                  az["env"])
    assert_no_secrets(procs, [az["key"]])


def test_azure_account_and_key_variables(az, assetfs_bin, tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(10_000))
    # no connection string: account + key, and an endpoint for azurite
    # through a connection string holding only BlobEndpoint + account key
    env = {"AZURE_STORAGE_CONNECTION_STRING":
           f"AccountName={az['account']};AccountKey={az['key']};"
           f"BlobEndpoint={az['url']}"}
    cli(assetfs_bin, STORE, "push", str(f), "vars/f", env=env)
    p = cli(assetfs_bin, STORE, "cat", "vars/f", env=az["env"])
    assert p.stdout == f.read_bytes()


def test_azure_sas(az, assetfs_bin, tmp_path):
    sas = account_sas(az["account"], az["key"])
    env = {"AZURE_STORAGE_CONNECTION_STRING":
           f"BlobEndpoint={az['url']};SharedAccessSignature={sas}"}
    f = tmp_path / "s.bin"
    f.write_bytes(os.urandom(77_777))
    procs = [cli(assetfs_bin, STORE, "push", str(f), "sas/s", env=env)]
    p = cli(assetfs_bin, STORE, "cat", "sas/s", env=env)
    assert p.stdout == f.read_bytes()
    procs.append(p)
    procs.append(cli(assetfs_bin, STORE, "ls", env=env))
    sig = urllib.parse.parse_qs(sas)["sig"][0]
    assert_no_secrets(procs, [sig, urllib.parse.quote(sig, safe=""),
                              az["key"]])
    # a read-only SAS cannot push
    ro = account_sas(az["account"], az["key"], perms="rl")
    env = {"AZURE_STORAGE_CONNECTION_STRING":
           f"BlobEndpoint={az['url']};SharedAccessSignature={ro}"}
    p = cli(assetfs_bin, STORE, "push", str(f), "sas/ro", env=env,
            check=False)
    assert p.returncode != 0 and "HTTP 403" in p.stderr.decode()
    # a tampered SAS is refused
    bad = sas.replace("sp=rwdlac", "sp=rwdlacx")
    env = {"AZURE_STORAGE_CONNECTION_STRING":
           f"BlobEndpoint={az['url']};SharedAccessSignature={bad}"}
    p = cli(assetfs_bin, STORE, "ls", env=env, check=False)
    assert p.returncode != 0 and "HTTP 403" in p.stderr.decode()


def test_azure_wrong_key(az, assetfs_bin):
    wrong = base64.b64encode(b"not the key of this account!!").decode()
    env = {"AZURE_STORAGE_CONNECTION_STRING":
           f"AccountName={az['account']};AccountKey={wrong};"
           f"BlobEndpoint={az['url']}"}
    p = cli(assetfs_bin, STORE, "ls", env=env, check=False)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert "HTTP 403" in err and "the account key or SAS was refused" in err
    assert_no_secrets([p], [wrong, az["key"]])
    env = {"AZURE_STORAGE_CONNECTION_STRING":
           f"AccountName={az['account']};AccountKey=%%%not-base64;"
           f"BlobEndpoint={az['url']}"}
    p = cli(assetfs_bin, STORE, "ls", env=env, check=False)
    assert p.returncode != 0 and "not valid base64" in p.stderr.decode()


def test_azure_paging_blocks_ranges(az, prov_tool, tmp_path):
    env = dict(az["env"], ASSETFS_LIST_PAGE_SIZE="2",
               ASSETFS_MULTIPART_THRESHOLD=str(3 << 20),
               ASSETFS_AZ_BLOCK_SIZE=str(1 << 20))
    big = tmp_path / "big.bin"
    data = os.urandom((5 << 20) + 999)
    big.write_bytes(data)
    p = run([prov_tool, STORE, "put", "pb/big.bin", str(big)],
            env=dict(env, PROV_TOOL_PROGRESS="1"))
    assert f"progress {len(data)}/{len(data)} in".encode() in p.stderr
    for i in range(5):
        run([prov_tool, STORE, "put", f"pb/d{i}/x", str(big)],
            env=dict(env, ASSETFS_MULTIPART_THRESHOLD=str(64 << 20)))
    p = run([prov_tool, STORE, "list", "pb/", "-d"], env=env)
    assert p.stdout.decode().splitlines() == \
        [f"P pb/d{i}/" for i in range(5)] + [f"O pb/big.bin {len(data)}"]
    p = run([prov_tool, STORE, "list", "pb/"], env=env)
    assert len(p.stdout.decode().splitlines()) == 6
    p = run([prov_tool, STORE, "get", "pb/big.bin"], env=env)
    assert p.stdout == data
    p = run([prov_tool, STORE, "get", "pb/big.bin", str((1 << 20) - 5),
             "10"], env=env)
    assert p.stdout == data[(1 << 20) - 5:(1 << 20) + 5]
    run([prov_tool, STORE, "del", "pb/big.bin"], env=env)
    run([prov_tool, STORE, "del", "pb/big.bin"], env=env)  # idempotent
    p = run([prov_tool, STORE, "get", "pb/big.bin"], env=env, check=False)
    assert p.returncode == 1 and b"no such object" in p.stderr
