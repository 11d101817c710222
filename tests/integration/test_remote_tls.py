"""TLS is always verified: https stores with a self-signed certificate fail
with a clear message unless its CA is given, through CURL_CA_BUNDLE or
SSL_CERT_FILE for every backend and AWS_CA_BUNDLE for s3://."""
import os

from helpers_remote import (S3_ACCESS_KEY, S3_SECRET, servers,  # noqa
                            prov_tool)
from conftest import run

NO_CA = {"CURL_CA_BUNDLE": "", "SSL_CERT_FILE": "", "AWS_CA_BUNDLE": ""}


def test_https_nginx_verifies(servers, prov_tool, tmp_path):  # noqa: F811
    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(50_000)
    (root / "x.bin").write_bytes(data)
    ng = servers("nginx", "--root", str(root), "--tls", name="nginx-tls")
    assert ng["url"].startswith("https://")
    p = run([prov_tool, ng["url"], "get", "x.bin"], env=NO_CA, check=False)
    assert p.returncode == 1
    assert b"TLS verification failed" in p.stderr
    for var in ("CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        p = run([prov_tool, ng["url"], "get", "x.bin", "100", "1000"],
                env=dict(NO_CA, **{var: ng["ca"]}))
        assert p.stdout == data[100:1100]


def test_s3_uses_aws_ca_bundle(servers, prov_tool, tmp_path):  # noqa: F811
    s3 = servers("s3rver", "--bucket", "assets", "--tls", name="s3rver-tls")
    env = dict(NO_CA, AWS_ACCESS_KEY_ID=S3_ACCESS_KEY,
               AWS_SECRET_ACCESS_KEY=S3_SECRET, AWS_PROFILE="",
               AWS_REGION="us-east-1", S3_ENDPOINT=s3["url"],
               AWS_ENDPOINT_URL="", AWS_ENDPOINT_URL_S3="")
    f = tmp_path / "o.bin"
    f.write_bytes(os.urandom(20_000))
    store = "s3://assets/tls"
    p = run([prov_tool, store, "put", "o.bin", str(f)], env=env, check=False)
    assert p.returncode == 1 and b"TLS verification failed" in p.stderr
    env["AWS_CA_BUNDLE"] = s3["ca"]
    run([prov_tool, store, "put", "o.bin", str(f)], env=env)
    p = run([prov_tool, store, "get", "o.bin"], env=env)
    assert p.stdout == f.read_bytes()
    # AWS_CA_BUNDLE wins over the generic variables
    other = tmp_path / "other.pem"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(tmp_path / "k.pem"), "-out", str(other), "-days",
         "1", "-subj", "/CN=other"])
    env.update(AWS_CA_BUNDLE=str(other), CURL_CA_BUNDLE=s3["ca"])
    p = run([prov_tool, store, "get", "o.bin"], env=env, check=False)
    assert p.returncode == 1 and b"TLS verification failed" in p.stderr
