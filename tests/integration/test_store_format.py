"""Walk a store directory after pushes and check every object name and
JSON document against DESIGN §2: keys, types, the manifest (sha256 of
every 4 MiB block recomputed from the source files) and the write order
(.versions last)."""
import datetime
import hashlib
import json
import os
import re

import pytest

from helpers_cli import Cli, make_folder

BLOCK = 4 << 20
NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
NAME_RE = re.compile(rf"{NAME}(?:/{NAME})*")
VERSION_RE = re.compile(r"\d+\.\d+")


def parse_date(s):
    assert isinstance(s, str)
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def manifest_entry(path, data):
    return {
        "path": path,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "blocks": [hashlib.sha256(data[i:i + BLOCK]).hexdigest()
                   for i in range(0, len(data), BLOCK)],
    }


@pytest.fixture
def pushed(assetfs_bin, store, tmp_path):
    url, directory = store
    cli = Cli(assetfs_bin, url, directory)
    sources = {}  # (name, version) -> {relpath: bytes} ("" for files)
    f = tmp_path / "one.bin"
    for i, size in enumerate([BLOCK, 2 * BLOCK + 1]):
        data = os.urandom(size)
        f.write_bytes(data)
        cli.out("push", str(f), "team/one")
        sources[("team/one", f"0.{i}")] = {"": data}
    f.write_bytes(b"")
    cli.out("push", str(f), "empty")
    sources[("empty", "0.0")] = {"": b""}
    src = tmp_path / "folder"
    files = make_folder(src)
    (src / "exact.bin").write_bytes(os.urandom(BLOCK))
    files["exact.bin"] = (src / "exact.bin").read_bytes()
    cli.out("push", str(src), "fraud/models/xgb")
    sources[("fraud/models/xgb", "0.0")] = dict(files)
    (src / "model.json").write_bytes(b'{"v": 2}')
    files["model.json"] = b'{"v": 2}'
    cli.out("push", "--bump-major", str(src), "fraud/models/xgb")
    sources[("fraud/models/xgb", "1.0")] = dict(files)
    return directory, sources


def test_object_names(pushed):
    directory, sources = pushed
    expected = {"assets.index"}
    for (name, version), files in sources.items():
        expected.add(f"{name}.versions")
        expected.add(f"{name}/{version}.meta")
        for rel in files:
            expected.add(f"{name}/{version}" + (f"/{rel}" if rel else ""))
    found = set()
    for dirpath, _, filenames in os.walk(directory):
        for fn in filenames:
            found.add(os.path.relpath(os.path.join(dirpath, fn), directory))
    assert found == expected
    for key in found:
        if key == "assets.index":
            continue
        m = re.fullmatch(rf"({NAME_RE.pattern})(\.versions|/(\d+\.\d+)"
                         r"(\.meta|/.+)?)", key)
        assert m, key


def test_versions_documents(pushed):
    directory, sources = pushed
    names = {n for n, _ in sources}
    for name in names:
        doc = json.loads((directory / f"{name}.versions").read_bytes())
        assert list(doc) == ["versions"]
        versions = doc["versions"]
        assert all(isinstance(v, str) and VERSION_RE.fullmatch(v)
                   for v in versions)
        want = sorted((v for n, v in sources if n == name),
                      key=lambda v: tuple(map(int, v.split("."))),
                      reverse=True)
        assert versions == want  # newest first, no duplicates


def test_meta_documents_and_manifests(pushed):
    directory, sources = pushed
    for (name, version), files in sources.items():
        raw = (directory / f"{name}/{version}.meta").read_bytes()
        doc = json.loads(raw)
        is_dir = "" not in files
        assert set(doc) == ({"push_date", "is_directory", "assetfs"} |
                            ({"contents"} if is_dir else set()))
        date = parse_date(doc["push_date"])
        now = datetime.datetime.now(datetime.timezone.utc)
        if date.tzinfo is None:
            date = date.replace(tzinfo=datetime.timezone.utc)
        assert abs((now - date).total_seconds()) < 600
        assert doc["is_directory"] is is_dir
        if is_dir:
            assert doc["contents"] == sorted(files)
            assert all(not c.startswith(("/", ".")) and "/." not in c
                       for c in doc["contents"])
        man = doc["assetfs"]
        assert man["format"] == 1
        assert man["block_size"] == BLOCK
        want = [manifest_entry(p, files[p]) for p in sorted(files)]
        assert man["files"] == want
        # And the stored bytes are the source bytes.
        for rel, data in files.items():
            obj = directory / (f"{name}/{version}" + (f"/{rel}" if rel
                                                      else ""))
            assert obj.read_bytes() == data


def test_versions_written_last(pushed):
    directory, sources = pushed
    for (name, version), files in sources.items():
        versions_t = (directory / f"{name}.versions").stat().st_mtime_ns
        meta_t = (directory / f"{name}/{version}.meta").stat().st_mtime_ns
        assert meta_t <= versions_t
        for rel in files:
            obj = directory / (f"{name}/{version}" + (f"/{rel}" if rel
                                                      else ""))
            assert obj.stat().st_mtime_ns <= meta_t, (name, version, rel)


def test_assets_index(pushed):
    directory, sources = pushed
    doc = json.loads((directory / "assets.index").read_bytes())
    assert doc == {"assets": sorted({n for n, _ in sources})}
