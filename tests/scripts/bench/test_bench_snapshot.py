"""scripts/bench_snapshot.py: the threshold, summary, table and target helpers (fast), and the
``--quick`` path end to end (slow)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from bench_snapshot import (
    ROOT,
    Args,
    check_targets,
    compare,
    format_table,
    main,
    paired_comparisons,
    quartiles,
    render,
    steps_to_threshold,
    summarise_run,
    table_rows,
    write_page,
)

from accelrl.results import regenerate

STEPS = [1_000, 2_000, 3_000, 4_000]


def test_steps_to_threshold_takes_the_first_sustained_crossing_and_the_budget_otherwise():
    returns = np.array(
        [
            [10.0, 95.0, 80.0, 99.0],  # single crossings only: never sustained for 2
            [np.nan, 90.0, 91.0, 90.0],  # exactly the threshold counts, NaN never does
            [0.0, 0.0, 89.9, 0.0],  # never
            [95.0, 95.0, 0.0, 0.0],  # sustained at the start, lost later: still counts
        ]
    )
    steps, reached = steps_to_threshold(STEPS, returns, 90.0, budget=5_000, sustain=2)
    np.testing.assert_array_equal(steps, [5_000, 2_000, 5_000, 1_000])
    np.testing.assert_array_equal(reached, [False, True, False, True])
    steps, _ = steps_to_threshold(STEPS, returns, 90.0, budget=5_000, sustain=1)
    np.testing.assert_array_equal(steps, [2_000, 2_000, 5_000, 1_000])
    # A crossing in the last evaluations cannot be confirmed: not reached with sustain 3.
    late = np.array([[0.0, 0.0, 95.0, 95.0]])
    assert steps_to_threshold(STEPS, late, 90.0, 5_000, sustain=3)[1].tolist() == [False]
    assert steps_to_threshold(STEPS, late, 90.0, 5_000, sustain=5)[1].tolist() == [False]
    with pytest.raises(ValueError, match="do not match"):
        steps_to_threshold(STEPS[:3], returns, 90.0, 5_000)
    with pytest.raises(ValueError, match="sustain"):
        steps_to_threshold(STEPS, returns, 90.0, 5_000, sustain=0)


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
    s = summarise_run(STEPS, _returns([0, 1, 2, None, None]), 90.0, 5_000, sustain=1)
    assert s["num_reached"] == 3 and not s["censored"]
    assert s["steps"] == {"median": 3_000.0, "q25": 2_000.0, "q75": 5_000.0}
    assert s["final"]["median"] == 95.0 and s["final_return"][3] == 0.0
    c = summarise_run(STEPS, _returns([0, 1, None, None, None]), 90.0, 5_000, sustain=1)
    assert c["num_reached"] == 2 and c["censored"] and c["steps"]["median"] == 5_000.0
    # two seeds: one unreached seed already puts the budget into the median
    assert summarise_run(STEPS, _returns([0, None]), 90.0, 5_000, sustain=1)["censored"]
    assert not summarise_run(STEPS, _returns([0, 1]), 90.0, 5_000, sustain=1)["censored"]


def test_compare_says_what_a_ratio_of_censored_medians_means():
    fast = summarise_run(STEPS, _returns([0, 0, 1]), 90.0, 5_000, 1)  # median 1000
    slow = summarise_run(STEPS, _returns([1, 3, 3]), 90.0, 5_000, 1)  # median 4000
    never = summarise_run(STEPS, _returns([None, None, None]), 90.0, 5_000, 1)
    assert compare(fast, slow) == {"ratio": 0.25, "kind": "exact"}
    assert compare(fast, never) == {"ratio": 0.2, "kind": "upper bound"}
    assert compare(never, fast) == {"ratio": 5.0, "kind": "lower bound"}
    assert compare(never, never)["kind"] == "undetermined"


def _run(env, agent, variant, hits, final=95.0, seeds=None):
    return {
        "env": env,
        "agent": agent,
        "variant": variant,
        "seeds": seeds or list(range(1000, 1000 + len(hits))),
        "summary": summarise_run(STEPS, _returns(hits, final), 90.0, 5_000, sustain=1),
    }


def test_students_table_from_runs():
    runs = [
        _run("E", "sac", "s3rl", [0, 0, 1]),
        _run("E", "sac", "none", [1, 3, 3]),
        _run("E", "ppo", "snapshots", [None, None, None], final=0.0),
        _run("E", "ppo", "none", [1, 1, 1]),
    ]
    rows = table_rows(runs)
    assert [r["compare"] is None for r in rows] == [False, True, False, True]
    table = format_table(rows)
    assert table.count("\n") == len(runs) + 1
    assert (
        "| E | SAC | S3RL (SC + STT) | 3/3 | 1,000 [1,000, 1,500] | 95.0 [95.0, 95.0] | 0.25 |"
        in table
    )
    assert ">= 5,000 [5,000, 5,000]" in table and "| >= 2.50 |" in table


def _targets(sac_hits, ppo_hits, ppo_final=95.0, teacher=0, n=8):
    runs = [
        _run("E", "sac", "s3rl", sac_hits * n),
        _run("E", "sac", "none", [3, 3, 2, 3] * (n // 4) * (len(sac_hits))),
        _run("E", "ppo", "s3rl", ppo_hits * n, final=ppo_final),
        _run("E", "ppo", "none", [1, 1, 1, 1] * (n // 4) * len(ppo_hits)),
    ]
    comparisons = paired_comparisons(runs, {"E": {"env_steps": teacher}})
    return comparisons, check_targets(comparisons, {"E": 90.0})


def test_targets_from_paired_intervals_met_and_not_met():
    comps, (sac, ppo) = _targets([0], [1])  # SAC 1000 vs ~3750: met; PPO equal: not hurt
    assert "**met**" in sac and "**met**" in ppo
    assert comps[0]["total"]["verdict"] == "beats" and comps[1]["total"]["verdict"] == (
        "no difference shown"
    )
    # The claim is false: the teacher's own steps are counted and swamp the student's saving.
    _, (sac, ppo) = _targets([0], [1], teacher=50_000)
    assert "**not met**" in sac and "**not met**" in ppo and "teacher's 50,000 steps" in sac
    _, (sac, _) = _targets([2], [1])  # SAC 3000 vs ~3750: ratio 0.8, not met
    assert "**not met**" in sac
    _, (_, ppo) = _targets([0], [2])  # PPO slower (3000 vs 2000)
    assert "**not met**" in ppo
    _, (_, ppo) = _targets([0], [1], ppo_final=85.0)  # PPO as fast, 10 lower at the end
    assert "**not met**" in ppo and "final return -10.0" in ppo


def test_paired_comparisons_refuse_unpaired_seeds():
    runs = [_run("E", "sac", "s3rl", [0, 0]), _run("E", "sac", "none", [1, 1], seeds=[0, 1])]
    with pytest.raises(ValueError, match="seeds"):
        paired_comparisons(runs, {})


def _results(teacher_steps=0):
    runs = [
        _run("E", "sac", "s3rl", [0] * 8),
        _run("E", "sac", "none", [3, 3, 2, 3] * 2),
    ]
    return {
        "command": "python scripts/bench/bench_snapshot.py",
        "commit": "abcdef0123456789",
        "clean_tree": True,
        "generator": "scripts/bench/bench_snapshot.py",
        "page": "docs/snapshot.md",
        "args": {
            "evals": 4,
            "eval_episodes": 10,
            "sustain": 3,
            "snapshot_fraction": 0.25,
            "teacher_seeds": [100, 101],
        },  # fmt: skip
        "thresholds": {"E": 90.0},
        "teachers": {
            "E": {
                "overrides": {"total_timesteps": 1000},
                "eval_returns": [91.0, 88.0],
                "env_steps": teacher_steps,
                "num_snapshots": 50,
                "teacher_seed": 100,
            }
        },  # fmt: skip
        "runs": runs,
    }


def test_page_block_and_from_results(tmp_path):
    block = render(_results())
    assert "Student seeds 1000-1007 (8 per variant)" in block and "**met**" in block
    assert "commit `abcdef0123`" in block
    assert "**not met**" in render(_results(teacher_steps=100_000))
    page = tmp_path / "snapshot.md"
    page.write_text("x\n<!-- bench_snapshot: begin -->\nold\n<!-- bench_snapshot: end -->\ny\n")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_results()))
    assert regenerate(["--from_results", str(path), "--page", str(page)], write_page)
    assert (
        page.read_text()
        == f"x\n<!-- bench_snapshot: begin -->\n{block}\n<!-- bench_snapshot: end -->\ny\n"
    )


def test_quick_never_writes_into_docs():
    with pytest.raises(SystemExit, match="never write"):
        main(Args(out=str(ROOT / "docs" / "x"), quick=True))


@pytest.mark.slow  # budget ~4 min on 2 busy CPU cores: a tiny PPO teacher and 3 tiny SAC runs
def test_quick_bench_writes_results_plot_and_table(tmp_path):
    committed = ROOT / "docs" / "results" / "snapshot.json"
    before = committed.read_bytes() if committed.exists() else None
    args = Args(out=str(tmp_path), envs=("MountainCarContinuous-v0",), agents=("sac",), quick=True)
    results = main(args)
    assert "--quick" in results["command"] and "--agents sac" in results["command"]
    assert [r["variant"] for r in results["runs"]] == ["s3rl", "snapshots", "none"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["table"] == results["table"] and len(saved["targets"]) == 1
    assert saved["teachers"]["MountainCarContinuous-v0"]["env_steps"] > 4_096
    assert saved["runs"][0]["seeds"] == [1000, 1001]
    teacher = saved["teachers"]["MountainCarContinuous-v0"]
    assert teacher["num_snapshots"] > 0 and (tmp_path / "teachers").is_dir()
    for run in saved["runs"]:
        assert np.asarray(run["eval_returns"]).shape == (2, len(run["steps"]))
        assert run["steps"][-1] == 384
    s3rl, snaps, none = saved["runs"]
    assert s3rl["strategy"]["horizon"] == 100 and s3rl["strategy"]["num_clusters"] == 4
    assert snaps["strategy"]["horizon"] is None and snaps["strategy"]["num_clusters"] is None
    assert none["strategy"] is None and none["final_snapshot_fraction"] is None
    assert s3rl["final_snapshot_fraction"][0] > 0
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "table.md").read_text().startswith("| env |")
    assert (committed.read_bytes() if committed.exists() else None) == before  # docs untouched


class _Killed(Exception):
    pass


def _fake_parts(monkeypatch, calls, kill_at=None):
    """Stand-ins for the teacher, the students and the report, recording what is trained."""
    import bench_snapshot

    def teacher(env_id, task, args, out):
        calls.append(("teacher", env_id))
        return "bank", {"bank": str(out / "b.bank"), "bank_hash": "h", "env_steps": 10}

    def student(env_id, task, agent, variant, bank, args):
        if kill_at is not None and len(calls) == kill_at:
            raise _Killed
        calls.append((env_id, agent, variant))
        return {"env": env_id, "agent": agent, "variant": variant, "bank": bank}

    monkeypatch.setattr(bench_snapshot, "build_teacher", teacher)
    monkeypatch.setattr(bench_snapshot, "run_student", student)
    monkeypatch.setattr(bench_snapshot, "reload_teacher", lambda env_id, rec: "kept bank")
    monkeypatch.setattr(bench_snapshot, "report", lambda results, out: None)
    monkeypatch.setattr("accelrl.agents.compile_cache.enable_compilation_cache", lambda: None)


def test_resume_keeps_the_teacher_and_finished_students_and_trains_the_rest(tmp_path, monkeypatch):
    args = Args(out=str(tmp_path), envs=("Acrobot-v1",), quick=True)
    calls = []
    _fake_parts(monkeypatch, calls, kill_at=3)  # killed after the teacher and two students
    with pytest.raises(_Killed):
        main(args, "cmd")
    partial = json.loads((tmp_path / "results.json").read_text())
    assert [r["variant"] for r in partial["runs"]] == ["s3rl", "snapshots"]

    calls.clear()
    _fake_parts(monkeypatch, calls)
    results = main(dataclasses.replace(args, resume=True), "cmd --resume")
    assert calls == [  # no teacher, only the four students not yet trained
        ("Acrobot-v1", "ppo", "none"),
        ("Acrobot-v1", "sac", "s3rl"),
        ("Acrobot-v1", "sac", "snapshots"),
        ("Acrobot-v1", "sac", "none"),
    ]
    runs = [(r["agent"], r["variant"]) for r in results["runs"]]
    assert runs == [(a, v) for a in ("ppo", "sac") for v in ("s3rl", "snapshots", "none")]
    assert {r["bank"] for r in results["runs"][2:]} == {"kept bank"}
    assert results["command"] == "cmd" and results["started_utc"] == partial["started_utc"]
    assert len(results["resumed_utc"]) == 1 and results["args"]["resume"] is False
    assert results["wall_s"] >= partial["wall_s"]


def test_resume_refuses_another_run(tmp_path, monkeypatch):
    args = Args(out=str(tmp_path), envs=("Acrobot-v1",), quick=True, resume=True)
    calls = []
    _fake_parts(monkeypatch, calls)
    with pytest.raises(SystemExit, match="no .*results.json to continue"):
        main(args)
    main(dataclasses.replace(args, resume=False), "cmd")
    with pytest.raises(SystemExit, match="made with other seeds"):
        main(dataclasses.replace(args, seeds=3))
    saved = json.loads((tmp_path / "results.json").read_text())
    (tmp_path / "results.json").write_text(json.dumps({**saved, "commit": "0" * 40}))
    with pytest.raises(SystemExit, match="made at commit '0000"):
        main(args)


def test_a_kept_bank_that_changed_is_refused(monkeypatch):
    import bench_snapshot

    bank = type("Bank", (), {"content_hash": "new", "size": 3})()
    monkeypatch.setattr("accelrl.curricula.snapshot.load_bank", lambda *a, **k: bank)
    assert bench_snapshot.reload_teacher("Acrobot-v1", {"bank": "b", "bank_hash": "new"}) is bank
    with pytest.raises(SystemExit, match="changed since the run began"):
        bench_snapshot.reload_teacher("Acrobot-v1", {"bank": "b", "bank_hash": "old"})
