"""Long version lists (issue 11, defect 2): an asset whose `.versions`
lists 100,000 versions (hourly simple_date versions over eleven years,
and major_minor with 1000 majors of 100 minors), shuffled, with
duplicates and junk, served by a file store, nginx (http) and s3rver
(s3). Through a real mount: `ls` of the asset dir, `readlink` of
`latest` and `N.latest` and a read each finish within 2 s, the daemon
stays up in bounded memory (its RSS is printed), and the store is asked
for a bounded number of documents, not one `.meta` per version.

Only the versions a listing looks at first (the newest, the aliases'
targets) and those read have a `.meta` and data: a mount that fetched
every version's `.meta` would show it in the request count.
"""
import datetime
import http.client
import json
import os
import pathlib
import random
import time
import urllib.parse

import pytest

from helpers_mount import mounter, read_all, write_version  # noqa: F401
from helpers_remote import sanitized_build, servers  # noqa: F401

N = 100_000
AHEAD = 64  # CATALOG_LIST_AHEAD: .meta documents one listing fetches
SLACK = 4 if sanitized_build() else 1
LIMIT_S = 2.0 * SLACK
RSS_LIMIT_KB = 256 * 1024


def nightly_versions():
    t0 = datetime.datetime(2010, 1, 1)
    return [(t0 + datetime.timedelta(hours=i)).strftime("%Y-%m-%dT%H-%M-%SZ")
            for i in range(N)]


def mm_versions():
    return [f"{a}.{b}" for a in range(N // 100) for b in range(100)]


def version_doc(vs, seed):
    """The .versions document: shuffled, some duplicates, some junk."""
    doc = list(vs) + vs[:50] + ["not-a-version", "", "1.2.3", 7, None]
    random.Random(seed).shuffle(doc)
    return json.dumps({"versions": doc}).encode()


def build_store(d):
    """{key: bytes} of the store, and what the test reads."""
    objs = {}

    def version(name, v, data):
        sd = d / "tmpver"
        write_version(sd, name, v, data, add_to_versions=False)
        for p in sd.rglob("*"):
            if p.is_file():
                objs[p.relative_to(sd).as_posix()] = p.read_bytes()
                p.unlink()

    nightly = sorted(nightly_versions(), reverse=True)
    objs["long/nightly.versions"] = version_doc(nightly, 1)
    # the newest are folder versions, the rest of the window files
    for i, v in enumerate(nightly[:AHEAD + 8]):
        if i < 3:
            version("long/nightly", v, {"model.json": v.encode() * 3,
                                        "sub/w.bin": os.urandom(1000)})
        else:
            version("long/nightly", v, v.encode())
    mm = sorted(mm_versions(), key=lambda s: tuple(map(int, s.split("."))),
                reverse=True)
    objs["long/mm.versions"] = version_doc(mm, 2)
    # http cannot list: the index makes "long" a namespace there
    objs["assets.index"] = json.dumps(
        {"assets": ["long/mm", "long/nightly"]}).encode()
    # the newest, the aliases' targets a listing looks at, and 500.99
    want = set(mm[:AHEAD + 8]) | {f"{a}.99" for a in range(900, 1000)}
    want.add("500.99")
    for v in sorted(want):
        version("long/mm", v, f"mm {v}".encode() * 10)
    return objs, nightly, mm


@pytest.fixture(scope="module")
def long_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("longstore")
    objs, nightly, mm = build_store(d)
    root = d / "www" / "store"
    for k, b in objs.items():
        p = root / k
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b)
    return {"dir": d, "root": root, "objs": objs, "nightly": nightly,
            "mm": mm}


def s3_put_all(url, bucket, prefix, objs):
    """PUT every object to s3rver (anonymous, one kept-alive connection)."""
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    for k, b in objs.items():
        c.request("PUT", f"/{bucket}/{prefix}/{k}", body=b,
                  headers={"Content-Length": str(len(b))})
        r = c.getresponse()
        r.read()
        assert r.status == 200, (k, r.status)
    c.close()


@pytest.fixture(scope="module")
def backends(long_store, servers):  # noqa: F811
    out = {"file": (f"file://{long_store['root']}", None)}
    ng = servers("nginx", "--root", str(long_store["root"].parent),
                 name="nginx-long")
    out["http"] = (ng["url"] + "/store", None)
    s3 = servers("s3rver", "--bucket", "assets", name="s3rver-long")
    s3_put_all(s3["url"], "assets", "store", long_store["objs"])
    env = {"S3_ENDPOINT": s3["url"], "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
           "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": ""}
    out["s3"] = ("s3://assets/store", env)
    return out


def timed(fn):
    t0 = time.monotonic()
    v = fn()
    return v, time.monotonic() - t0


def rss_kb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("kind", ["file", "http", "s3"])
def test_long_version_lists(kind, backends, long_store, mounter):  # noqa: F811
    url, env = backends[kind]
    m = mounter(url, env=env, timeout=20)
    st = long_store
    nightly, mm = st["nightly"], st["mm"]
    a = m.mnt / "long" / "nightly"
    b = m.mnt / "long" / "mm"
    report = []

    # readlink of the aliases: the list is fetched and parsed once
    for path, want in ((a / "latest", nightly[0]), (b / "latest", "999.99"),
                       (b / "500.latest", "500.99"),
                       (b / "0.latest", "0.99")):
        got, t = timed(lambda: os.readlink(path))
        report.append(f"readlink {path.name}: {t:.3f} s")
        assert got == want
        assert t < LIMIT_S, "; ".join(report)

    # reads through the aliases
    data, t = timed(lambda: read_all(a / "latest" / "model.json"))
    report.append(f"read nightly/latest/model.json: {t:.3f} s")
    assert data == nightly[0].encode() * 3
    assert t < LIMIT_S, "; ".join(report)
    data, t = timed(lambda: read_all(b / "500.latest"))
    report.append(f"read mm/500.latest: {t:.3f} s")
    assert data == b"mm 500.99" * 10
    assert t < LIMIT_S, "; ".join(report)

    # ls of the asset dirs: every version and alias, in bounded time
    names, t = timed(lambda: os.listdir(a))
    report.append(f"ls nightly: {t:.3f} s, {len(names)} names")
    assert t < LIMIT_S, "; ".join(report)
    assert len(names) == N + 1
    assert set(names) == set(nightly) | {"latest"}
    names, t = timed(lambda: os.listdir(b))
    report.append(f"ls mm: {t:.3f} s, {len(names)} names")
    assert t < LIMIT_S, "; ".join(report)
    assert len(names) == N + 1 + N // 100
    assert "500.latest" in names and "123.45" in names
    # a version no listing looked at: its .meta is fetched on lookup
    assert os.stat(b / "920.99").st_size == len(b"mm 920.99" * 10)
    # one whose .meta is missing shows in the listing, and is ENOENT
    with pytest.raises(FileNotFoundError):
        os.stat(b / "3.3")

    assert m.proc.poll() is None, "the daemon died"
    rss = rss_kb(m.proc.pid)
    stats = m.stats()
    report.append(f"daemon RSS {rss // 1024} MiB, "
                  f"{stats['store_requests']} store requests")
    print(f"[{kind}] " + "; ".join(report))
    assert rss < RSS_LIMIT_KB, "; ".join(report)
    # two lists, the window of .meta (and a HEAD each for file assets
    # without a manifest: none here), the reads: not 200,000 documents
    assert stats["store_requests"] < 6 * AHEAD, "; ".join(report)
