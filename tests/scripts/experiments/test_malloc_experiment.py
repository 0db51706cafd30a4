"""scripts/malloc_experiment.py: the summary and target helpers (fast) and ``--quick`` end to end
(slow: 323 s measured on the 2 shared development cores, mostly compiling the two PPO networks,
the search and the rollouts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from malloc_experiment import Args, main, summary, target_met


def test_summary_counts_wins_ties_and_gaps():
    xla = np.array([0.5, 0.6, 0.7, 0.8])
    best = np.array([0.6, 0.6, 0.9, 0.8])
    s = summary({"a": np.array([0.55, 0.6, 0.65, 0.8]), "xla_best_fit": xla}, xla, best)
    assert s["a"]["wins_vs_xla"] == 0.25 and s["a"]["ties_vs_xla"] == 0.5
    assert s["a"]["mean"] == pytest.approx(0.65)
    assert s["a"]["gap_to_optimal"] == pytest.approx(np.mean(best - [0.55, 0.6, 0.65, 0.8]))
    assert s["xla_best_fit"]["wins_vs_xla"] == 0.0


def test_target_needs_a_higher_mean_and_60_percent_wins():
    base = {"xla_best_fit": {"mean": 0.7}}
    ok = dict(base, a={"mean": 0.71, "wins_vs_xla": 0.6, "ties_vs_xla": 0.0})
    assert target_met(ok, ["a"])[0]
    few_wins = dict(base, a={"mean": 0.8, "wins_vs_xla": 0.5, "ties_vs_xla": 0.5})
    met, why = target_met(few_wins, ["a"])
    assert not met and "50%" in why
    low_mean = dict(base, a={"mean": 0.69, "wins_vs_xla": 0.9, "ties_vs_xla": 0.0})
    assert not target_met(low_mean, ["a"])[0]


@pytest.mark.slow
def test_quick_run_writes_report_and_plot(tmp_path):
    args = Args(
        quick=True,
        search_networks=("set",),
        out=tmp_path / "m.md",
        plot=tmp_path / "m.png",
        json_out=tmp_path / "m.json",
    )
    report = main(args)
    text = (tmp_path / "m.md").read_text()
    assert "xla_best_fit" in text and "PPO set + search" in text and "Target" in text
    assert (tmp_path / "m.png").stat().st_size < 200_000
    saved = json.loads((tmp_path / "m.json").read_text())
    methods = saved["test"]["methods"]
    assert {"PPO mlp", "PPO set", "PPO set + search", "xla_best_fit", "first_fit"} <= set(methods)
    for name, values in methods.items():
        assert all(0.0 <= v <= 1.0 for v in values), name
    # every method is bounded by the optimum or its upper bound
    best = np.asarray(methods["optimal (or bound)"])
    for name, values in methods.items():
        assert np.all(np.asarray(values) <= best + 1e-6), name
    if report.get("minimalloc"):
        for values in report["minimalloc"]["methods"].values():
            assert all(0.0 <= v <= 1.0 for v in values)


def test_command_line_reproduces_the_arguments():
    import shlex
    from pathlib import Path

    import tyro
    from malloc_experiment import command_line

    args = Args(quick=True, num_simulations=64, search_networks=("set",), load_dir=Path("r/x"))
    cmd = command_line(args)
    assert cmd.startswith("python scripts/experiments/malloc_experiment.py --quick")
    assert tyro.cli(Args, args=shlex.split(cmd)[2:]) == args
    assert command_line(Args()) == "python scripts/experiments/malloc_experiment.py"
