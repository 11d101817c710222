"""scripts/test judges the source tree with scripts/check-layers once.

The checker runs as a step of its own (with its self-test) and is also a
meson test in the unit suite, which scripts/test runs for two builds.
Without running the whole suite, this counts the runs scripts/test would
make: its direct calls of the checker, plus, for each build it unit-tests,
whether the suites its `meson test` command selects list check_layers.
"""
import re
import subprocess

from conftest import BUILD, ROOT


def listed(*selection):
    out = subprocess.run(["meson", "test", "-C", str(BUILD), "--list",
                          *selection],
                         capture_output=True, text=True, check=True).stdout
    # "check_layers", or "assetfs:unit+layers / check_layers"
    return sum(1 for line in out.splitlines()
               if line.split("/")[-1].strip() == "check_layers")


def test_check_layers_runs_once():
    script = re.sub(r"\\\n\s*", " ", (ROOT / "scripts" / "test").read_text())
    code = [re.sub(r'"[^"]*"', '""', line) for line in script.splitlines()
            if not line.lstrip().startswith("#")]
    direct = sum(len(re.findall(r"scripts/check-layers(?: --root \S+)?"
                                r"(?=\s*(?:$|[;&|)]))", line))
                 for line in code)
    builds = sum(1 for line in code if re.search(r"(^|\s)run_unit build",
                                                  line))
    selections = [re.findall(r"--(?:no-)?suite \S+", line)
                  for line in code if re.match(r"\s*meson test ", line)]
    assert direct == 1 and builds == 2 and len(selections) == 1
    selection = " ".join(selections[0]).split()
    assert direct + builds * listed(*selection) == 1


def test_check_layers_stays_in_the_unit_suite():
    assert listed("--suite", "unit") == 1
