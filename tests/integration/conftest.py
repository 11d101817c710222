"""Shared pytest fixtures for assetfs integration tests.

Tests drive the real binaries from the build directory named by ASSETFS_BUILD
(default: build/ at the top of the repo). Area-specific fixtures (mounts,
remote servers, the model server) live in helpers_<area>.py modules beside
this file and are imported by the tests that need them.
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("ASSETFS_BUILD", ROOT / "build"))


def _bin(name):
    path = BUILD / name
    if not path.exists():
        path = BUILD / "fs" / name
    if not path.exists():
        path = BUILD / "server" / name
    return path


@pytest.fixture(scope="session")
def assetfs_bin():
    path = _bin("assetfs")
    assert path.exists(), f"build assetfs first ({path} missing)"
    return str(path)


@pytest.fixture(scope="session")
def server_bin():
    path = _bin("assetfs-server")
    assert path.exists(), f"build assetfs-server first ({path} missing)"
    return str(path)


@pytest.fixture
def store(tmp_path):
    """An empty local store: (url, directory)."""
    d = tmp_path / "store" / "modelkit-assets"
    d.mkdir(parents=True)
    return f"file://{d}", d


def run(cmd, check=True, env=None, input=None, timeout=120):
    """Run a command, return CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, env=full_env, input=input,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{cmd} exited {p.returncode}\nstdout: {p.stdout[-2000:]!r}\n"
            f"stderr: {p.stderr[-2000:]!r}")
    return p
