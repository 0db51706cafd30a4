"""scripts/bench_snapshot.py: the threshold, summary, table and target helpers (fast), and the
``--quick`` path end to end (slow)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from bench_snapshot import (
    Args,
    check_targets,
    compare,
    format_table,
    main,
    quartiles,
    steps_to_threshold,
    summarise_run,
    table_rows,
)

STEPS = [1_000, 2_000, 3_000, 4_000]


def test_steps_to_threshold_takes_the_first_point_reached_and_the_budget_otherwise():
    returns = np.array(
        [
            [10.0, 95.0, 80.0, 99.0],  # first reaches at 2000 (a later dip does not matter)
            [np.nan, 10.0, 20.0, 90.0],  # exactly the threshold counts, NaN never does
            [0.0, 0.0, 89.9, 0.0],  # never
        ]
    )
    steps, reached = steps_to_threshold(STEPS, returns, 90.0, budget=5_000)
    np.testing.assert_array_equal(steps, [2_000, 4_000, 5_000])
    np.testing.assert_array_equal(reached, [True, True, False])
    with pytest.raises(ValueError, match="do not match"):
        steps_to_threshold(STEPS[:3], returns, 90.0, 5_000)


def test_quartiles():
    assert quartiles([1, 2, 3, 4, 5]) == {"median": 3.0, "q25": 2.0, "q75": 4.0}
    assert all(math.isnan(v) for v in quartiles([]).values())


def _returns(first_hits: list[int | None], final: float = 95.0) -> np.ndarray:
    """``[S, 4]`` returns whose seed s first reaches 90 at point ``first_hits[s]`` (None: never)."""
    out = np.zeros((len(first_hits), len(STEPS)))
    for s, i in enumerate(first_hits):
        if i is not None:
            out[s, i:] = final
    return out


def test_summary_counts_unreached_seeds_as_the_budget_and_flags_a_censored_median():
    s = summarise_run(STEPS, _returns([0, 1, 2, None, None]), 90.0, 5_000)
    assert s["num_reached"] == 3 and not s["censored"]
    assert s["steps"] == {"median": 3_000.0, "q25": 2_000.0, "q75": 5_000.0}
    assert s["final"]["median"] == 95.0 and s["final_return"][3] == 0.0
    c = summarise_run(STEPS, _returns([0, 1, None, None, None]), 90.0, 5_000)
    assert c["num_reached"] == 2 and c["censored"] and c["steps"]["median"] == 5_000.0
    # two seeds: one unreached seed already puts the budget into the median
    assert summarise_run(STEPS, _returns([0, None]), 90.0, 5_000)["censored"]
    assert not summarise_run(STEPS, _returns([0, 1]), 90.0, 5_000)["censored"]


def test_compare_says_what_a_ratio_of_censored_medians_means():
    fast = summarise_run(STEPS, _returns([0, 0, 1]), 90.0, 5_000)  # median 1000
    slow = summarise_run(STEPS, _returns([1, 3, 3]), 90.0, 5_000)  # median 4000
    never = summarise_run(STEPS, _returns([None, None, None]), 90.0, 5_000)
    assert compare(fast, slow) == {"ratio": 0.25, "kind": "exact"}
    assert compare(fast, never) == {"ratio": 0.2, "kind": "upper bound"}
    assert compare(never, fast) == {"ratio": 5.0, "kind": "lower bound"}
    assert compare(never, never)["kind"] == "undetermined"


def _run(env, agent, variant, hits, final=95.0):
    return {
        "env": env,
        "agent": agent,
        "variant": variant,
        "summary": summarise_run(STEPS, _returns(hits, final), 90.0, 5_000),
    }


def test_table_and_targets_from_runs():
    runs = [
        _run("E", "sac", "s3rl", [0, 0, 1]),  # 1000 vs 4000: 0.25, met
        _run("E", "sac", "none", [1, 3, 3]),
        _run("E", "ppo", "s3rl", [1, 1, 1]),  # 2000 vs 2000: not hurt
        _run("E", "ppo", "snapshots", [None, None, None], final=0.0),
        _run("E", "ppo", "none", [1, 1, 1]),
    ]
    rows = table_rows(runs)
    assert [r["compare"] is None for r in rows] == [False, True, False, False, True]
    table = format_table(rows)
    assert table.count("\n") == len(runs) + 1
    assert (
        "| E | SAC | S3RL (SC + STT) | 3/3 | 1,000 [1,000, 1,500] | 95.0 [95.0, 95.0] | 0.25 |"
        in table
    )
    assert ">= 5,000 [5,000, 5,000]" in table and "| >= 2.50 |" in table
    lines = check_targets(rows, {"E": 90.0})
    assert lines == [
        "E SAC: steps ratio <= 0.6: met (ratio 0.25)",
        "E PPO: not hurt (steps ratio <= 1.1, final return within 4.5): met (ratio 1.00)",
    ]


@pytest.mark.parametrize(
    "sac_hits, ppo_hits, ppo_final",
    [
        ([1, 1, 1], [1, 1, 1], 95.0),  # SAC 2000 vs 4000 = 0.5 met; PPO equal, not hurt
        ([2, 2, 2], [1, 1, 1], 95.0),  # SAC 0.75: not met
        ([1, 1, 1], [2, 2, 2], 95.0),  # PPO 1.5x slower: hurt
        ([1, 1, 1], [1, 1, 1], 85.0),  # PPO as fast but 10 lower at the end: hurt
    ],
)
def test_targets_fail_when_they_should(sac_hits, ppo_hits, ppo_final):
    rows = table_rows(
        [
            _run("E", "sac", "s3rl", sac_hits),
            _run("E", "sac", "none", [3, 3, 3]),
            _run("E", "ppo", "s3rl", ppo_hits, final=ppo_final),
            _run("E", "ppo", "none", [1, 1, 1]),
        ]
    )
    sac, ppo = check_targets(rows, {"E": 90.0})
    assert (": met" in sac) == (sac_hits == [1, 1, 1])
    assert (": met" in ppo) == (ppo_hits == [1, 1, 1] and ppo_final == 95.0)


def test_targets_are_undetermined_when_neither_median_reached_the_threshold():
    rows = table_rows([_run("E", "sac", "s3rl", [None] * 3), _run("E", "sac", "none", [None] * 3)])
    (line,) = check_targets(rows, {"E": 90.0})
    assert "undetermined" in line and ": met" not in line


@pytest.mark.slow  # budget ~4 min on 2 busy CPU cores: a tiny PPO teacher and 3 tiny SAC runs
def test_quick_bench_writes_results_plot_and_table(tmp_path):
    args = Args(out=str(tmp_path), envs=("MountainCarContinuous-v0",), agents=("sac",), quick=True)
    results = main(args)
    assert [r["variant"] for r in results["runs"]] == ["s3rl", "snapshots", "none"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["table"] == results["table"] and len(saved["targets"]) == 1
    teacher = saved["teachers"]["MountainCarContinuous-v0"]
    assert teacher["num_snapshots"] > 0 and (tmp_path / "teachers").is_dir()
    for run in saved["runs"]:
        assert np.asarray(run["eval_returns"]).shape == (2, len(run["steps"]))
        assert run["steps"][-1] == 300
    s3rl, snaps, none = saved["runs"]
    assert s3rl["strategy"]["horizon"] == 100 and s3rl["strategy"]["num_clusters"] == 4
    assert snaps["strategy"]["horizon"] is None and snaps["strategy"]["num_clusters"] is None
    assert none["strategy"] is None and none["final_snapshot_fraction"] is None
    assert s3rl["final_snapshot_fraction"][0] > 0
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "table.md").read_text().startswith("| env |")
