"""scripts/bench/bench_agents.py: ratios, targets and the page blocks from a results record
(nothing trained, no peer environment)."""

from __future__ import annotations

import json
import math

import bench_agents as A
import pytest


def _runs(train_s, setup_s=5.0, reached=True):
    return [
        {"reached": reached, "steps": 4000, "train_s": t, "setup_s": setup_s,
         "train_cpu_s": 2 * t, "setup_cpu_s": 2 * setup_s}
        for t in train_s
    ]  # fmt: skip


def _record(accelrl_s, sb3_s=(60.0, 61.0, 59.0), rejax_reached=True):
    runs = {
        "accelrl": _runs(accelrl_s),
        "rejax": _runs((30.0, 29.0, 31.0), reached=rejax_reached),
        "sb3": _runs(sb3_s, setup_s=1.0),
    }
    summary = {fw: A.summarise(r) for fw, r in runs.items()}
    throughput = {"accelrl": {"1": {"seeds_per_hour": 31.0}, "16": {"seeds_per_hour": 30.0}},
                  "sb3": {"1": {"seeds_per_hour": 15.0}}}  # fmt: skip
    ratios = A.task_ratios(summary, throughput)
    return {
        "command": "python scripts/bench/bench_agents.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "generator": A.GENERATOR,
        "page": A.PAGES["sac"],
        "algo": "sac",
        "task": A.TASKS["sac"],
        "num_seeds": 3,
        "host": {"cpus": 2, "load_start": [1.0], "load_end": [1.5]},
        "wall_s": 900.0,
        "versions_peer": {"rejax": "0.1.3"},
        "summary": summary,
        "throughput": throughput,
        "ratios": ratios,
        "targets": A.task_targets(ratios),
    }


def test_ratios_are_of_medians_and_unreached_seeds_count_as_infinitely_slow():
    rec = _record((20.0, 19.0, 21.0))
    assert rec["ratios"]["accelrl_over_rejax_steady"] == pytest.approx(20.0 / 30.0)
    assert rec["ratios"]["sb3_over_accelrl_steady"] == pytest.approx(60.0 / 20.0)
    assert rec["ratios"]["sb3_over_accelrl_e2e"] == pytest.approx(61.0 / 25.0)
    assert rec["ratios"]["sb3_over_accelrl_steady_16"] == pytest.approx(2.0)
    assert math.isnan(_record((20.0,) * 3, rejax_reached=False)["ratios"]["accelrl_over_rejax_e2e"])


def test_block_says_met_and_not_met_from_the_record():
    text = A.render(_record((20.0, 19.0, 21.0)))["bench_agents_sac"]
    assert "- accelrl/rejax time, steady: **met** (0.67, target <= 1)" in text
    assert "- speed-up over SB3, steady: **not met** (3.0, target >= 20x)" in text
    assert "| rejax 0.1.3 | 3/3 | 4,000 | 30.0 | 35.0 |" in text and "clean tree" in text
    # a false claim: accelrl slower than rejax -> not met; far faster than SB3 -> met
    text = A.render(_record((40.0, 41.0, 39.0), sb3_s=(2000.0,) * 3))["bench_agents_sac"]
    assert "- accelrl/rejax time, steady: **not met** (1.33, target <= 1)" in text
    assert "- speed-up over SB3, steady: **met** (50.0, target >= 20x)" in text
    # rejax never reached the threshold: no ratio, target not met
    text = A.render(_record((20.0,) * 3, rejax_reached=False))["bench_agents_sac"]
    assert "- accelrl/rejax time, end to end: **not met** (no ratio: a framework" in text
    assert "not reached" in text
    with pytest.raises(ValueError, match="task"):
        A.render({"algo": "dqn"})


def test_from_results_rewrites_the_tasks_block(tmp_path):
    page = tmp_path / "sac.md"
    page.write_text("a\n<!-- bench_agents_sac: begin -->\nhand\n<!-- bench_agents_sac: end -->\n")
    path = tmp_path / "agents_sac.json"
    path.write_text(json.dumps(_record((20.0, 19.0, 21.0))))
    A.render_from_results(path, A.render, page=page)
    assert "hand" not in page.read_text() and "**met** (0.67" in page.read_text()


def test_quick_never_writes_into_docs():
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        A.main(["--quick", "--out_dir", str(REPO / "docs" / "results")])
