"""Fixtures for the Python runtimes of assetfs-server (sklearn, python).

`skl` trains the scikit-learn models of the tests once per session
(LogisticRegression, RandomForestClassifier, a StandardScaler +
LogisticRegression Pipeline) with the data to check them. `write_class`
writes a model version made of Python source files (and data files), and
`build_wheel` builds a real wheel of a tiny package with pip, offline, for
the environment tests.
"""
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest


class Sklearn:
    def __init__(self):
        from sklearn.datasets import load_iris
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.X, self.y = load_iris(return_X_y=True)
        self.lr = LogisticRegression(max_iter=1000).fit(self.X, self.y)
        self.rf = RandomForestClassifier(n_estimators=20, max_depth=4,
                                         random_state=3).fit(self.X, self.y)
        self.pipe = make_pipeline(StandardScaler(),
                                  LogisticRegression(C=0.3)).fit(self.X,
                                                                 self.y)
        rng = np.random.default_rng(11)
        lo, hi = self.X.min(0), self.X.max(0)
        self.X50 = rng.uniform(lo, hi, size=(50, 4))

    def save(self, model, directory, name="model.joblib"):
        import joblib

        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, d / name)
        return d


@pytest.fixture(scope="session")
def skl():
    return Sklearn()


def write_class(directory, files):
    """Write {relpath: text or bytes} (text is dedented) under @directory."""
    d = pathlib.Path(directory)
    for rel, data in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            p.write_text(textwrap.dedent(data))
        else:
            p.write_bytes(data)
    return d


def build_wheel(tmp_path, name, module, value):
    """Build NAME-1.0-py3-none-any.whl (package @module with VALUE =
    @value) into tmp_path/wheelhouse with pip, offline; return the dir."""
    src = tmp_path / f"src-{name}"
    write_class(src, {
        "setup.py": f"""
            from setuptools import setup
            setup(name="{name}", version="1.0", packages=["{module}"])
            """,
        f"{module}/__init__.py": f"VALUE = {value!r}\n",
    })
    wh = tmp_path / "wheelhouse"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--no-build-isolation", "--no-index", "-q", "-w",
                    str(wh), str(src)], check=True, capture_output=True,
                   timeout=300)
    assert list(wh.glob(f"{module}-1.0-*.whl")), list(wh.iterdir())
    return wh
