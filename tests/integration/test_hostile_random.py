"""Randomized hostile stores (issue 11, "Must show"): for each seed, build a
store no test wrote by hand - `.versions` of odd shapes (wrong types, huge
numbers, duplicates, names like `..`, `a/b`, empty, very long, unicode,
NUL-escaped, not JSON, past the cap), `.meta` of odd shapes (wrong types,
contents with `..` and absolute paths, duplicates, huge lists, manifests
with wrong sizes, digests, block counts, negative sizes), odd names,
FIFOs and symlinks that leave the store or stay inside - mount it, walk
the whole tree (os.walk, lstat, readlink, listxattr/getxattr) and read
every file. Then check: the daemon is alive and still serves a sentinel
asset; a canary planted outside the store (a unique string) appears in no
byte, name, link or attribute; a file whose manifest does not describe
its bytes never reads successfully (EIO), and a file that reads returns
exactly its store bytes; only EIO/ENOENT come back as errors.

A fixed list of seeds runs by default (file://, and some over http from
nginx, without symlinks: over http what nginx serves is nginx's business);
ASSETFS_HOSTILE_SEEDS=N runs N more seeds from ASSETFS_HOSTILE_SEED_BASE
(default 1000), e.g. `ASSETFS_HOSTILE_SEEDS=200 pytest ...`.
"""
import errno
import hashlib
import json
import os
import random
import threading

import pytest

from helpers_mount import BLOCK, mounter  # noqa: F401
from helpers_remote import servers  # noqa: F401

FILE_SEEDS = list(range(1, 15))
HTTP_SEEDS = [101, 102, 103, 104]
EXTRA = int(os.environ.get("ASSETFS_HOSTILE_SEEDS", "0") or 0)
EXTRA_BASE = int(os.environ.get("ASSETFS_HOSTILE_SEED_BASE", "1000"))
FILE_SEEDS += list(range(EXTRA_BASE, EXTRA_BASE + EXTRA))

OK_ERRNOS = {errno.EIO, errno.ENOENT}
XATTR_ERRNOS = {errno.ENODATA, errno.EOPNOTSUPP, errno.ENOENT, errno.EIO,
                errno.ERANGE, errno.E2BIG}
WALK_TIMEOUT = 60
SMALL = 64 << 10  # small test blocks keep stores small: 64 KiB

ODD_VERSIONS = ["..", ".", "a/b", "", "x" * 5000, "\u00fc.0", "0.0\u0000",
                "0.0/..", "/0.0", "99999999999999999999.1",
                "1.99999999999999999999", "-1.0", "1.-1", " 1.0", "1.0 ",
                "2026-13-45T99-99-99Z", "0x1.0", "1e3.0"]
ODD_JSON_VALUES = [7, None, 1e308, -1, True, {}, [], 2 ** 70, -0.0]
ODD_ASSET_FILES = ["", "..", ".", " ", "\u00fc", "x" * 240, "-x", "a_",
                   "\t", "a..b", "A-Z", "new\nline", "quo'te"]
ODD_RELPATHS = ["..", "../x", "/etc/passwd", "a/../../x", "./a", "a//b", "",
                "x" * 5000, "a/\u0000b", "\u00fc", ".hidden", "a/", "/"]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def manifest_entry(path, data, block):
    return {"path": path, "size": len(data), "sha256": sha(data),
            "blocks": [sha(data[i:i + block])
                       for i in range(0, len(data), block)] if data else []}


class Store:
    """Builds one hostile store and remembers what each mount path must
    give: self.expect[path] = ("exact", bytes) or ("corrupt", why)."""

    def __init__(self, rng, root, outside, canary, links):
        self.http = not links
        self.rng = rng
        self.root = root
        self.outside = outside
        self.canary = canary
        self.links = links
        self.expect = {}
        self.assets = []

    # -- helpers -------------------------------------------------------
    def write(self, rel, data):
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.exists():
            return
        p.write_bytes(data if isinstance(data, bytes) else data.encode())

    def link(self, rel, target):
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not (p.is_symlink() or p.exists()):
            os.symlink(target, p)

    def data(self):
        r = self.rng
        n = r.choice([0, 1, 17, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL + 5])
        b = r.randbytes(n)
        return b.replace(self.canary[:8], b"xxxxxxxx")

    def escape_target(self, want_dir=False):
        r = self.rng
        if want_dir:
            return r.choice([str(self.outside),
                             "../" * 12 + str(self.outside).lstrip("/"),
                             "/proc/self/root" + str(self.outside)])
        return r.choice([str(self.outside / "canary.txt"),
                         "../" * 12 + str(self.outside / "canary.txt")
                         .lstrip("/"),
                         "/etc/passwd",
                         "/proc/self/root" + str(self.outside / "canary.txt"),
                         "/proc/self/fd/0"])

    # -- documents -----------------------------------------------------
    def versions_doc(self, good):
        """(text, shape) of a .versions listing @good among others."""
        r = self.rng
        shape = r.choice(["good", "good", "good", "dups", "odd", "odd",
                          "types", "huge", "notjson", "padded"])
        vs = list(good)
        if shape == "dups":
            vs = vs + vs + [r.choice(vs)] if vs else vs
            r.shuffle(vs)
        elif shape == "odd":
            vs = vs + r.sample(ODD_VERSIONS, 4) + r.sample(ODD_JSON_VALUES, 2)
            r.shuffle(vs)
        elif shape == "huge":
            vs = vs + [f"{i}.{j}" for i in range(30, 60) for j in range(30)]
        if shape == "types":
            return r.choice(['{"versions": "0.0"}', '{"versions": {}}',
                             '[]', '"str"', '42', 'null', '{"versions": 0}',
                             '{"versions": [["0.0"]]}', '{"v": ["0.0"]}',
                             json.dumps({"versions": vs}) + "trailing",
                             '{"versions": ["0.0"], "versions": ["9.9"]}',
                             "[" * 5000 + "]" * 5000]), shape
        if shape == "notjson":
            return r.choice(["", "{", '{"versions": [', "\u0000\xff\xfe",
                             "not json at all"]), shape
        text = json.dumps({"versions": vs})
        if shape == "padded":  # past the 4 MiB cap
            text = text[:-1] + " " * (4 << 20) + "}"
        return text, shape

    def meta_doc(self, is_dir, files, block):
        """(doc dict or text, corrupt reason or None) for a version whose
        real files are @files {relpath: bytes} ("" for a file asset)."""
        r = self.rng
        meta = {"push_date": "2026-01-02T03:04:05Z", "is_directory": is_dir}
        if is_dir:
            meta["contents"] = sorted(files)
        kind = r.choice(["good", "good", "good", "nomanifest", "nomanifest",
                         "digest", "bigger", "smaller", "blockcount",
                         "negative", "blocksize", "types", "contents",
                         "hugelist", "notjson", "mismatch"])
        ents = [manifest_entry(p, b, block) for p, b in sorted(files.items())]
        man = {"format": 1, "block_size": block, "files": ents}
        bad = None
        if kind == "digest" and ents:
            e = r.choice(ents)
            e["sha256"] = sha(b"not it")
            if e["blocks"]:
                e["blocks"][r.randrange(len(e["blocks"]))] = sha(b"nope")
            bad = (e["path"], "digest")
        elif kind == "bigger" and ents:
            e = r.choice(ents)
            e["size"] += r.choice([1, block, 1 << 40])
            # one block more makes the document itself invalid
            same = len(e["blocks"]) == -(-e["size"] // block)
            bad = (e["path"] if same else "*", "size bigger")
        elif kind == "smaller" and ents:
            e = r.choice(ents)
            if e["size"]:
                e["size"] -= 1
                # one block fewer makes the document itself invalid
                same = len(e["blocks"]) == -(-e["size"] // block)
                bad = (e["path"] if same else "*", "size smaller")
        elif kind == "blockcount" and ents:
            e = r.choice(ents)
            e["blocks"] = e["blocks"] + [sha(b"extra")]
            bad = ("*", "block count")
        elif kind == "negative" and ents:
            e = r.choice(ents)
            e["size"] = -5
            bad = ("*", "negative size")
        elif kind == "blocksize":
            man["block_size"] = r.choice([0, 3, 1 << 40, -4096, "4M"])
            bad = ("*", "block size")
        elif kind == "mismatch" and ents:
            e = r.choice(ents)
            e["path"] = e["path"] + "x" if e["path"] else "x"
            bad = ("*", "manifest files differ from contents")
        if kind != "nomanifest":
            meta["assetfs"] = man
        if kind == "types":
            k = r.choice(["is_directory", "contents", "push_date",
                          "assetfs"])
            meta[k] = r.choice(["yes", 5, None, [], {"a": 1}, -1.5])
            # what a file asset does with contents is its own business
            # null for "assetfs" is no manifest: the bytes are trusted
            known = (is_dir or k != "contents") and not (
                k == "assetfs" and meta[k] is None)
            bad = ("*" if known else "?", "wrong type")
        elif kind == "contents" and not is_dir:
            meta["contents"] = r.sample(ODD_RELPATHS, 3)
            bad = ("?", "contents on a file asset")
        elif kind == "contents":
            extra = r.sample(ODD_RELPATHS, 3)
            meta["contents"] = (meta.get("contents") or []) + extra + (
                meta.get("contents") or [])
            bad = ("*", "odd contents")
        elif kind == "hugelist":
            meta["contents"] = [f"f{i}/g{i}.bin" for i in range(20000)]
            meta["is_directory"] = True
            bad = ("*", "huge contents")
        elif kind == "notjson":
            return r.choice(["", "{", "nope", "\xff"]), ("*", "not json"), kind
        return meta, bad, kind

    # -- assets --------------------------------------------------------
    def asset(self, name):
        r = self.rng
        block = SMALL
        versions = [f"{m}.{n}" for m in range(r.randint(1, 3))
                    for n in range(r.randint(1, 3))]
        unlisted = r.random() < 0.3
        text, shape = self.versions_doc(versions)
        good_doc = shape in ("good", "dups", "odd", "huge")
        self.write(f"{name}.versions", text)
        made = versions + (["9.9"] if unlisted else [])
        for v in made:
            is_dir = r.random() < 0.5
            if is_dir:
                files = {r.choice(["a.bin", "m.json", "w/x.bin",
                                   "w/deep/y"]): self.data()
                         for _ in range(r.randint(1, 3))}
            else:
                files = {"": self.data()}
            meta, bad, kind = self.meta_doc(is_dir, files, block)
            # over plain http a folder version without a manifest has no
            # sizes (see test_http_folder_without_manifest below)
            unlistable = self.http and is_dir and kind == "nomanifest"
            for rel, b in files.items():
                self.write(f"{name}/{v}" + (f"/{rel}" if rel else ""), b)
            self.write(f"{name}/{v}.meta",
                       meta if isinstance(meta, str) else json.dumps(meta))
            if v == "9.9" or not good_doc:
                continue  # must not show; checked by the canary only
            for rel, b in files.items():
                path = f"{name}/{v}" + (f"/{rel}" if rel else "")
                if bad and bad[0] == "?":
                    continue  # no oracle; the canary check still holds
                if bad and bad[0] in ("*", rel):
                    self.expect[path] = ("corrupt", bad[1])
                else:
                    # clean: the whole version and its list are sound
                    self.expect[path] = ("exact", b, bad is None and
                                         shape != "odd" and not unlistable)
        if self.links:
            self.hostile_links(name, made)
        self.assets.append(name)

    def hostile_links(self, name, versions):
        r = self.rng
        for _ in range(r.randint(0, 3)):
            v = r.choice(versions)
            where = r.choice(["vfile", "vdir", "infile", "meta", "versions",
                              "assetdir", "inside", "loop", "fifo"])
            base = self.root / name / v
            if where in ("vfile", "vdir", "meta") and \
                    (base.exists() or base.is_symlink()):
                target = f"{name}/{v}" + (".meta" if where == "meta"
                                          else "")
                self.replace(target, self.escape_target(where == "vdir"))
            elif where == "infile" and base.is_dir():
                files = [p for p in base.rglob("*") if p.is_file()]
                if files:
                    rel = files[0].relative_to(self.root)
                    self.replace(str(rel), self.escape_target())
            elif where == "versions":
                self.replace(f"{name}.versions", str(self.outside /
                                                     "evil.versions"))
            elif where == "assetdir":
                self.replace(name, self.escape_target(True))
            elif where == "inside":
                # a listed version linked to another object of the store
                others = [p for p in self.root.rglob("*")
                          if p.is_file() and not p.is_symlink()]
                if others and (base.is_file() or not base.exists()):
                    self.replace(f"{name}/{v}", os.path.relpath(
                        r.choice(others), base.parent))
            elif where == "loop":
                self.replace(f"{name}/{v}", v)
            elif where == "fifo" and base.is_file():
                base.unlink()
                os.mkfifo(base)
                self.mark_unknown(f"{name}/{v}")

    def replace(self, rel, target):
        p = self.root / rel
        if p.is_dir() and not p.is_symlink():
            for q in sorted(p.rglob("*"), reverse=True):
                q.unlink() if not q.is_dir() or q.is_symlink() else q.rmdir()
            p.rmdir()
        elif os.path.lexists(p):
            p.unlink()
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
        self.mark_unknown(rel)

    def mark_unknown(self, rel):
        """What lies at or below @rel no longer has known bytes."""
        for suffix in (".versions", ".meta"):
            if rel.endswith(suffix):
                rel = rel[:-len(suffix)]
        for k in list(self.expect):
            if k == rel or k.startswith(rel + "/"):
                del self.expect[k]

    def odd_files(self):
        r = self.rng
        for n in r.sample(ODD_ASSET_FILES, 4):
            self.write(f"odd/{n}.versions", '{"versions": ["0.0"]}')
            self.write(f"odd/{n}/0.0", b"odd")
        if self.links:
            self.link("nsleak", self.escape_target(True))
            self.link("odd/leak.versions", str(self.outside /
                                               "evil.versions"))


def build(rng, root, outside, canary, links):
    outside.mkdir(parents=True)
    (outside / "canary.txt").write_bytes(canary)
    (outside / "evil.versions").write_text(
        json.dumps({"versions": ["0.0", canary.decode()]}))
    (outside / "0.0").write_bytes(canary)
    (outside / "0.0.meta").write_text(json.dumps(
        {"push_date": "2026-01-02T03:04:05Z", "is_directory": True,
         "contents": [canary.decode()]}))
    root.mkdir(parents=True, exist_ok=True)
    st = Store(rng, root, outside, canary, links)
    # the sentinel: a plain good asset, read before and after the walk
    st.write("zz/ok.versions", '{"versions": ["0.0"]}')
    st.write("zz/ok/0.0", b"sentinel\n")
    st.write("zz/ok/0.0.meta", json.dumps(
        {"push_date": "2026-01-02T03:04:05Z", "is_directory": False,
         "assetfs": {"format": 1, "block_size": SMALL,
                     "files": [manifest_entry("", b"sentinel\n", SMALL)]}}))
    for i in range(rng.randint(3, 7)):
        ns = rng.choice(["", "ns/", "ns/deep/", "n2/"])
        st.asset(f"{ns}a{i}")
    st.odd_files()
    names = st.assets + ["zz/ok"] + rng.sample(
        ["..", "a/b", "", "x" * 2000, "odd/..", "/abs"], 2)
    (root / "assets.index").write_text(json.dumps({"assets": names}))
    return st


def walk(mnt, canary, found):
    """Walk and read everything; fills @found: names, data, problems."""
    for top, dirs, files in os.walk(mnt):
        for n in dirs + files:
            p = os.path.join(top, n)
            found["names"].append(os.path.relpath(p, mnt))
            try:
                os.lstat(p)
                if os.path.islink(p):
                    found["names"].append(os.readlink(p))
                for a in os.listxattr(p, follow_symlinks=False):
                    try:
                        found["xattrs"] += os.getxattr(
                            p, a, follow_symlinks=False)
                    except OSError as e:
                        if e.errno not in XATTR_ERRNOS:
                            found["bad"].append((p, "getxattr", e))
            except OSError as e:
                if e.errno not in OK_ERRNOS | XATTR_ERRNOS:
                    found["bad"].append((p, "stat", e))
        for n in files:
            p = os.path.join(top, n)
            rel = os.path.relpath(os.path.realpath(p), mnt)
            try:
                with open(p, "rb") as f:
                    b = f.read()
                found["data"] += b
                found["reads"][rel] = b
            except OSError as e:
                found["reads"][rel] = e
                if e.errno not in OK_ERRNOS:
                    found["bad"].append((p, "read", e))
    found["done"] = True


def check_seed(st, m, canary):
    mnt = m.mnt
    sentinel = mnt / "zz/ok/0.0"
    assert sentinel.read_bytes() == b"sentinel\n"
    found = {"names": [], "data": bytearray(), "xattrs": b"", "reads": {},
             "bad": [], "done": False}
    t = threading.Thread(target=walk, args=(mnt, canary, found),
                         daemon=True)
    t.start()
    t.join(WALK_TIMEOUT)
    assert found["done"], f"the walk hung past {WALK_TIMEOUT}s"
    assert m.proc.poll() is None, "the daemon died:\n" + m.read_log()[-3000:]
    assert sentinel.read_bytes() == b"sentinel\n"
    assert not found["bad"], found["bad"][:10]
    assert canary not in found["data"]
    assert canary not in found["xattrs"]
    assert not any(canary.decode() in n for n in found["names"])
    assert "nsleak" not in os.listdir(mnt)
    wrong = []
    for path, want in st.expect.items():
        got = found["reads"].get(path)
        if want[0] == "corrupt":
            # never the bytes of a manifest that does not describe them;
            # bytes that fail their digest are EIO (a document that does
            # not parse may instead hide the version: absent or ENOENT)
            if isinstance(got, bytes):
                wrong.append((path, want[1], "read succeeded"))
            elif isinstance(got, OSError) and got.errno != errno.EIO and \
                    want[1] in ("digest", "size smaller", "size bigger"):
                wrong.append((path, want[1], got))
        elif isinstance(got, bytes) and got != want[1]:
            wrong.append((path, "wrong bytes", len(got), len(want[1])))
        elif got is None:
            pass  # absent: allowed, a sibling document may hide it
    assert not wrong, wrong[:10]
    # a clean version of a sound list reads, whatever its siblings are
    clean = [p for p, w in st.expect.items() if w[0] == "exact" and w[2]]
    missing = [(p, found["reads"].get(p)) for p in clean
               if not isinstance(found["reads"].get(p), bytes)]
    assert not missing, missing[:10]


def seed_store(tmp_path, seed, links):
    rng = random.Random(seed)
    canary = f"CANARY-{seed}-{rng.getrandbits(64):016x}".encode()
    root = tmp_path / "www" / "store"
    st = build(rng, root, tmp_path / "outside", canary, links)
    return st, root, canary


@pytest.mark.parametrize("seed", FILE_SEEDS)
def test_hostile_random_file_store(seed, tmp_path, mounter):
    st, root, canary = seed_store(tmp_path, seed, links=True)
    env = {"ASSETFS_FILE_NO_OPENAT2": "1"} if seed % 3 == 0 else None
    opts = {"allow_other": True} if seed % 2 else {}
    m = mounter(f"file://{root}", env=env, timeout=5, **opts)
    check_seed(st, m, canary)


@pytest.fixture(scope="module")
def nginx_root(servers, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("hostile-www")
    ng = servers("nginx", "--root", str(root), name="nginx-hostile")
    return root, ng["url"]


@pytest.mark.parametrize("seed", HTTP_SEEDS)
def test_hostile_random_http_store(seed, nginx_root, tmp_path, mounter):
    www, url = nginx_root
    st, root, canary = seed_store(tmp_path, seed, links=False)
    os.rename(root, www / f"s{seed}")
    m = mounter(f"{url}/s{seed}", timeout=5)
    check_seed(st, m, canary)


def test_http_folder_without_manifest(nginx_root, mounter):
    """A folder version as modelkit writes it (no manifest) over plain
    http, which cannot list: its files' sizes come from a HEAD each."""
    www, url = nginx_root
    sd = www / "nomanifest"
    (sd / "b/0.0/sub").mkdir(parents=True)
    (sd / "b/0.0/x.bin").write_bytes(b"x" * 100)
    (sd / "b/0.0/sub/y.json").write_bytes(b"{}")
    (sd / "b.versions").write_text('{"versions": ["0.0"]}')
    (sd / "b/0.0.meta").write_text(json.dumps(
        {"push_date": "2026-01-02T03:04:05Z", "is_directory": True,
         "contents": ["x.bin", "sub/y.json", "gone.bin"]}))
    m = mounter(f"{url}/nomanifest", timeout=5)
    assert (m.mnt / "b/0.0/x.bin").read_bytes() == b"x" * 100
    assert (m.mnt / "b/0.0/sub/y.json").read_bytes() == b"{}"
    assert sorted(os.listdir(m.mnt / "b/0.0")) == ["sub", "x.bin"]
