"""The wheel maps the top-level folders into the ``accelrl`` namespace and nothing generic."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("accelrl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(t == "accelrl" or t.endswith(".dist-info") for t in tops), tops
    for module in (
        "envs/registry.py",
        "envs/vec.py",
        "agents/__init__.py",
        "curricula/__init__.py",
    ):
        assert f"accelrl/{module}" in names
    assert not any(n.startswith("accelrl/tests/") for n in names)
    # The library and its CLIs ship; benchmarks and experiments (run from a checkout) do not.
    for cli in ("train", "teach", "evaluate", "snapshot", "tune", "_cli"):
        assert f"accelrl/scripts/{cli}.py" in names
    shipped_scripts = [n for n in names if n.startswith("accelrl/scripts/")]
    assert not any("bench" in n or "experiment" in n or "workloads" in n for n in shipped_scripts)
    assert not any(
        n.startswith(("accelrl/scripts/bench/", "accelrl/scripts/experiments/")) for n in names
    )
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "accelrl-train = accelrl.scripts.train:main" in entry_points
