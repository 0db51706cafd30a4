"""cache_learning's pure parts: the generated table and card section, --quick kept out of docs."""

from __future__ import annotations

import cache_learning
import pytest
from cache_learning import BLOCK, Args, main, render, table

from accelrl.results import block_markers, paired_bootstrap, verdict


def _record(agent, lru):
    test = {
        "agent": {"0": agent, "hidden": agent},
        "predicted": {"0": [0.5, 0.5, 0.5]},
        **{b: {"any": lru} for b in ("belady", "lru", "lfu", "fifo", "random", "s3fifo")},
    }
    comparisons = {}
    for label in ("0", "hidden"):
        for base in ("lru", "belady", "s3fifo", "predicted"):
            if base == "predicted" and label == "hidden":
                continue
            other = test[base]["0" if base == "predicted" else "any"]
            d, lo, hi = paired_bootstrap(agent, other, reps=200)
            comparisons[f"{label}|{base}"] = {
                "diff": d,
                "low": lo,
                "high": hi,
                "verdict": verdict(lo, hi),
            }
    return {
        "command": "python scripts/bench/cache_learning.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "machine": {"cpu_count": 2, "machine": "x86_64", "backend": "cpu"},
        "seeds": {"train": [0], "window_keys": [10_000]},
        "budgets": {"total_timesteps": 1000, "num_envs": 4, "gammas": [0.9, 0.99]},
        "geometry": {"episode_length": 256},
        "test_traces": ["a", "b", "c"],
        "validation": {"means": {"gamma 0.9, greedy": 0.5}, "choice": "gamma 0.9, greedy"},
        "test": test,
        "comparisons": comparisons,
        "wall_seconds": {"train": 1.0, "evaluate": 2.0},
    }


def test_table_states_the_verdict_from_the_numbers():
    better = table(_record([0.62, 0.71, 0.55], [0.50, 0.60, 0.45]))
    assert "| PPO agent | 62.7 | 62.7 |" in better and "beats" in better
    worse = table(_record([0.40, 0.50, 0.35], [0.50, 0.60, 0.45]))
    assert "worse" in worse and "beats" not in worse.split("vs predicted")[1].split("|")[6]
    assert "| hidden |" in worse and "- |" in worse  # no predicted comparison when hidden


def test_render_replaces_only_the_generated_section(tmp_path):
    BEGIN, END = block_markers(BLOCK)
    card = tmp_path / "card.md"
    card.write_text(f"head\n{BEGIN}\nold\n{END}\ntail\n")
    render(_record([0.6, 0.7, 0.5], [0.5, 0.6, 0.4]), card)
    text = card.read_text()
    assert text.startswith("head\n") and text.endswith(f"{END}\ntail\n") and "old" not in text
    card.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        render(_record([0.6, 0.7, 0.5], [0.5, 0.6, 0.4]), card)


def test_quick_never_writes_into_docs():
    with pytest.raises(ValueError, match="quick"):
        main(Args(quick=True, out=cache_learning.REPO / "docs" / "results" / "x.json"))
