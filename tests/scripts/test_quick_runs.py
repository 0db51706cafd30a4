"""``--quick`` never writes into docs/ (issue 24): every benchmark and experiment script, run by
file path from the checkout's root with its quickest settings, leaves ``git status`` as it was
(outputs go to the ignored runs/ and bench_out/ folders or under /tmp).

The runs take seconds to minutes each (mostly compilation), about half an hour in all, so they
carry their own marker and run by hand like the benchmarks themselves (``pytest -m
quick_runs``, before committing a results script); the fast test below checks that every
script in scripts/bench/ and scripts/experiments/ is either run here or excluded with a
reason, so a new script cannot slip past."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from accelrl.results import REPO

QUICK: dict[str, list[str]] = {
    "scripts/bench/bench_agents.py": ["--quick", "--frameworks", "accelrl", "--algos", "ppo"],
    "scripts/bench/bench_autotune.py": [
        "--quick",
        "--envs",
        "CartPole-v1",
        "--methods",
        "random",
        "--parts",
        "tuning",
    ],  # fmt: skip
    "scripts/bench/bench_cache.py": ["--quick"],
    "scripts/bench/bench_curricula.py": ["--quick", "--parts", "gmm"],
    "scripts/bench/bench_device.py": ["--quick"],
    "scripts/bench/bench_envs.py": ["--quick", "--ids", "CartPole-v1"],
    "scripts/bench/bench_malloc.py": ["--quick"],
    "scripts/bench/bench_marl.py": ["--quick", "--parts", "throughput", "--no-jaxmarl"],
    "scripts/bench/bench_mpe.py": ["--quick", "--no-jaxmarl", "--batches", "1", "64"],
    "scripts/bench/bench_relax.py": ["--quick"],
    "scripts/bench/bench_snapshot.py": ["--quick", "--envs", "Acrobot-v1", "--agents", "ppo"],
    "scripts/bench/bench_three_body.py": ["--quick"],
    "scripts/bench/bench_xla_flags.py": [
        "--envs",
        "CartPole-v1:ppo",
        "--repeats",
        "1",
        "--rounds",
        "1",
    ],  # fmt: skip
    "scripts/bench/cache_learning.py": ["--quick"],
    "scripts/bench/fixed_mu_baselines.py": ["--quick"],
    "scripts/bench/reference_curves.py": ["--quick", "--parts", "sac"],
    "scripts/bench/relax_experiment.py": ["--quick"],
    "scripts/bench/substep_intervals.py": ["--quick"],
    "scripts/experiments/malloc_az.py": ["--quick"],
    "scripts/experiments/malloc_baselines.py": ["--quick"],
    "scripts/experiments/malloc_reachability.py": ["--quick"],
    "scripts/experiments/mpe_gif.py": ["--max-steps", "3", "--out", "/tmp/accelrl_quick_mpe.gif"],
    "scripts/experiments/three_body_baselines.py": ["--quick"],
    "scripts/experiments/three_body_experiment.py": ["--quick"],
    "scripts/experiments/three_body_rules.py": ["--quick"],
}
"""Each script's quickest settings (``--quick`` where it has one)."""

EXCLUDED: dict[str, str] = {
    "scripts/bench/_bench.py": "helpers, not a script",
    "scripts/bench/tune_curriculum.py": "its --quick trains three PBT studies (~10 min); "
    "test_tune_curriculum checks that --quick refuses docs/ and defaults to /tmp",
    "scripts/experiments/malloc_experiment.py": "the malloc results' script (its own tests)",
    "scripts/experiments/make_workloads.py": "regenerates the malloc package's data set (no "
    "--quick, writes envs/malloc/data by design); not a results script",
}


def _scripts() -> list[str]:
    found = []
    for folder in ("scripts/bench", "scripts/experiments"):
        found += [str(p.relative_to(REPO)) for p in sorted((REPO / folder).glob("*.py"))]
    return found


def test_every_script_is_run_quick_or_excluded_with_a_reason():
    scripts = set(_scripts())
    assert scripts, "no scripts found"
    missing = sorted(scripts - set(QUICK) - set(EXCLUDED))
    assert not missing, f"scripts without a quick run here: {missing}"
    stale = sorted((set(QUICK) | set(EXCLUDED)) - scripts)
    assert not stale, f"listed scripts that do not exist: {stale}"


def _status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.quick_runs  # ~30 min in all on 2 cores: by hand (pytest -m quick_runs), not in CI
@pytest.mark.parametrize("script", sorted(QUICK), ids=lambda s: Path(s).stem)
def test_quick_run_leaves_git_status_unchanged(script):
    if subprocess.run(["git", "-C", str(REPO), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    before = _status()
    out = subprocess.run(
        [sys.executable, str(REPO / script), *QUICK[script]],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert _status() == before, f"{script} changed the checkout:\n{_status()}"
