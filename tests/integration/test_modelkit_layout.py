"""A store written by hand in modelkit's layout (DESIGN §2) without
assetfs manifests: `.versions` latest-first with a duplicate, `.meta`
without the `assetfs` key, push dates with and without a fraction, a
folder asset whose contents start with '/', a simple_date asset. It
resolves and reads the same through ls / resolve / cat, and a push on top
of it keeps the existing versions."""
import json

import pytest

from helpers_cli import Cli, snapshot


def put(root, key, data):
    p = root / key
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.fixture
def cli(assetfs_bin, store):
    url, d = store
    put(d, "fraud/xgb.versions",
        json.dumps({"versions": ["10.0", "1.10", "1.2", "1.0", "1.2"]}))
    for v, body in [("10.0", b"ten\n"), ("1.2", b"one-two\n"),
                    ("1.0", b"one-oh\n")]:
        put(d, f"fraud/xgb/{v}", body)
        put(d, f"fraud/xgb/{v}.meta", json.dumps(
            {"push_date": "2021-05-04T10:00:00.123456",
             "is_directory": False}))
    # 1.10 is a folder asset, contents with leading '/', as modelkit wrote
    # them on some versions.
    put(d, "fraud/xgb/1.10.meta", json.dumps(
        {"push_date": "2021-06-01T08:30:00", "is_directory": True,
         "contents": ["/model.json", "/vocab/words.txt"]}))
    put(d, "fraud/xgb/1.10/model.json", b'{"booster": "gbtree"}')
    put(d, "fraud/xgb/1.10/vocab/words.txt", b"alpha\nbeta\n")
    put(d, "daily/report.versions", json.dumps(
        {"versions": ["2022-01-02T00-00-00Z", "2022-03-04T05-06-07Z"]}))
    put(d, "daily/report/2022-03-04T05-06-07Z", b"march\n")
    put(d, "daily/report/2022-03-04T05-06-07Z.meta", json.dumps(
        {"push_date": "2022-03-04T05:06:07+00:00", "is_directory": False}))
    put(d, "daily/report/2022-01-02T00-00-00Z", b"january\n")
    put(d, "daily/report/2022-01-02T00-00-00Z.meta", json.dumps(
        {"push_date": "2022-01-02T00:00:00Z", "is_directory": False}))
    return Cli(assetfs_bin, url, d)


def test_ls(cli):
    assert cli.out("ls") == "daily/report\nfraud/xgb\n"
    assert cli.out("ls", "fraud/xgb") == "10.0\n1.10\n1.2\n1.0\n"
    assert cli.out("ls", "daily/report") == \
        "2022-03-04T05-06-07Z\n2022-01-02T00-00-00Z\n"
    assert cli.out("ls", "fraud") == "fraud/xgb\n"


def test_resolve(cli):
    u = cli.url
    assert cli.out("resolve", "fraud/xgb") == \
        f"fraud/xgb:10.0\n{u}/fraud/xgb/10.0\n"
    # An exact major: 1 is 1.10, never 10.0.
    assert cli.out("resolve", "fraud/xgb:1[vocab/words.txt]") == \
        f"fraud/xgb:1.10[vocab/words.txt]\n{u}/fraud/xgb/1.10/vocab/words.txt\n"
    assert cli.out("resolve", "fraud/xgb:1.2") == \
        f"fraud/xgb:1.2\n{u}/fraud/xgb/1.2\n"
    assert cli.out("resolve", "daily/report") == \
        f"daily/report:2022-03-04T05-06-07Z\n" \
        f"{u}/daily/report/2022-03-04T05-06-07Z\n"
    err = cli.fail("resolve", "fraud/xgb:2")
    assert err.startswith("assetfs resolve: no such version '2'")


def test_cat(cli):
    assert cli.run("cat", "fraud/xgb").stdout == b"ten\n"
    assert cli.run("cat", "fraud/xgb:1.0").stdout == b"one-oh\n"
    assert cli.run("cat", "fraud/xgb:1[model.json]").stdout == \
        b'{"booster": "gbtree"}'
    assert cli.run("cat", "fraud/xgb:1.10[vocab/words.txt]").stdout == \
        b"alpha\nbeta\n"
    assert cli.run("cat", "daily/report:2022-01-02T00-00-00Z").stdout == \
        b"january\n"
    before = snapshot(cli.dir)
    err = cli.fail("cat", "fraud/xgb:1[nope]")
    assert err == "assetfs cat: no file 'nope' in 'fraud/xgb:1.10'"
    assert snapshot(cli.dir) == before


def test_push_on_top_keeps_history(cli, tmp_path):
    f = tmp_path / "new.txt"
    f.write_bytes(b"eleven\n")
    assert cli.out("push", str(f), "fraud/xgb") == \
        "pushed fraud/xgb:10.1 (1 file, 7 bytes)\n"
    assert cli.out("ls", "fraud/xgb") == "10.1\n10.0\n1.10\n1.2\n1.0\n"
    doc = json.loads((cli.dir / "fraud/xgb.versions").read_bytes())
    assert doc == {"versions": ["10.1", "10.0", "1.10", "1.2", "1.0"]}
    # The old versions read as before.
    assert cli.run("cat", "fraud/xgb:1.2").stdout == b"one-two\n"
    assert cli.run("cat", "fraud/xgb").stdout == b"eleven\n"
    # A simple_date asset gets a date version later than its newest.
    out = cli.out("push", str(f), "daily/report")
    version = out.split(":", 1)[1].split(" ")[0]
    assert version > "2022-03-04T05-06-07Z"
    assert cli.out("ls", "daily/report").splitlines()[0] == version
