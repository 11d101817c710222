"""Helpers for the store CLI tests: run `assetfs` against a local store,
snapshot a store directory, make sample assets."""
import hashlib
import os
import pathlib

from conftest import run


class Cli:
    """`assetfs` bound to one store URL."""

    def __init__(self, binary, url, directory):
        self.binary = binary
        self.url = url
        self.dir = pathlib.Path(directory)

    def run(self, *args, check=True, env=None, store=True):
        cmd = [self.binary, *args]
        if store:
            cmd += ["--store", self.url]
        return run(cmd, check=check, env=env)

    def out(self, *args, env=None):
        """stdout of a successful command, as text."""
        return self.run(*args, env=env).stdout.decode()

    def fail(self, *args, env=None, status=1):
        """Run a command that must fail: returns its one stderr line."""
        p = self.run(*args, check=False, env=env)
        assert p.returncode == status, (p.returncode, p.stderr)
        assert p.stdout == b"", p.stdout
        err = p.stderr.decode()
        assert err.endswith("\n") and err.count("\n") == 1, repr(err)
        assert err.startswith("assetfs "), repr(err)
        return err.rstrip("\n")


def snapshot(directory):
    """{relative path: sha256} of every file below @directory, plus the
    set of directories: what a listing of the store would show."""
    root = pathlib.Path(directory)
    files = {}
    dirs = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = pathlib.Path(dirpath).relative_to(root)
        dirs.add(str(rel))
        for f in filenames:
            data = (pathlib.Path(dirpath) / f).read_bytes()
            files[str(rel / f)] = hashlib.sha256(data).hexdigest()
    return files, dirs


def make_folder(root, big_size=10 << 20, seed=b"assetfs"):
    """A folder asset source with nested folders, dotfiles (which push
    skips) and a random binary of @big_size bytes. Returns
    {relpath: bytes} of what must be stored."""
    root = pathlib.Path(root)
    files = {
        "model.json": b'{"learner": {"name": "gbtree"}}\n',
        "config/params.yaml": b"depth: 6\neta: 0.3\n",
        "config/deep/er/vocab.txt": b"a\nb\nc\n",
        "weights/big.bin": os.urandom(big_size),
        "empty.txt": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_bytes(b"ref: refs/heads/main\n")
    (root / ".hidden.txt").write_bytes(b"secret\n")
    (root / "config" / ".DS_Store").write_bytes(b"junk")
    return files
