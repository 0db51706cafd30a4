"""bench_autotune's pure parts: the methods' equal budgets, TPE's rounds, the paired verdict,
the generated page block, the declared seeds and refused arguments."""

from __future__ import annotations

import sys
from pathlib import Path

import bench_autotune
import numpy as np
import pytest
from bench_autotune import compare, hyperband_trials, old_rule, render, tpe_settings

from accelrl.agents.spec import RunSpec
from accelrl.autotune.hyperband import HyperbandSettings, hyperband
from accelrl.autotune.tuners import StudySpec

sys.path.insert(0, str(Path(__file__).parents[2] / "autotune"))  # the synthetic backend
from synthetic import SPACE, SyntheticBackend  # noqa: E402


@pytest.mark.parametrize("full_runs", [6, 24])
def test_hyperband_gets_the_most_trials_within_the_same_tuning_steps(full_runs, tmp_path):
    """Run the real Hyperband (synthetic training) and count the steps it used."""
    budget, seeds = 900, [0, 1]

    def tuning_steps(trials: int, out: Path) -> int:
        spec = StudySpec(
            RunSpec("CartPole-v1", "ppo", config={"total_timesteps": budget}),
            SPACE,
            tuning_seeds=tuple(seeds),
            test_seeds=(2, 3),
            bootstrap_reps=50,
            backend=SyntheticBackend(budget),
        )
        result = hyperband(HyperbandSettings(trials=trials), spec, out)  # fmt: skip
        return result.incumbent["budget"]["tuning_env_steps"]

    trials = hyperband_trials(full_runs)
    assert trials > full_runs  # stopping at rungs buys more configurations
    allowed = full_runs * budget * len(seeds)
    assert tuning_steps(trials, tmp_path / "fits") <= allowed * 1.001
    assert tuning_steps(trials + 1, tmp_path / "one_more") > allowed


@pytest.mark.parametrize(
    ("trials", "expected"),
    [(1, (1, 1)), (2, (1, 1)), (6, (3, 3)), (8, (4, 4)), (24, (4, 8)), (64, (4, 8))],
)
def test_tpe_settings(trials, expected):
    assert tpe_settings(trials) == expected


def test_tpe_fits_its_model_several_times_on_larger_studies():
    batch, startup = tpe_settings(24)
    model_rounds = -(-(24 - startup) // batch)
    assert model_rounds >= 4  # the old (trials // 2, trials // 2) fitted it once for 12 trials


def _entry(scores):
    """A test entry as ``incumbent.json`` holds it (IQM and stratified-bootstrap interval)."""
    from accelrl.autotune.protocol import summarize

    s = summarize(np.asarray(scores, np.float64)[:, None], reps=2_000)
    return {"iqm": s["iqm"], "ci": s["ci"], "scores": [float(x) for x in scores]}


def _record(rows, **extra):
    """A results record as the bench writes it (provenance keys included)."""
    from accelrl.results import results_record

    record = {
        **results_record("python scripts/bench/bench_autotune.py", bench_autotune.GENERATOR,
                         bench_autotune.PAGE_NAME),
        "quick": False, "finished": True, "tuning_seeds": [0, 1, 2, 3, 4],
        "validation_seeds": list(range(25)), "test_seeds": list(range(1000, 1008)),
        "trials": 24, "methods": ["random"], "cases": bench_autotune.CASES,
        "wall_seconds": 12.0, "tuning": rows,
    }  # fmt: skip
    return {**record, **extra}


def _row(inc, default, method="random", env="CartPole-v1"):
    return {
        "env": env, "agent": "ppo", "method": method, "trials": 24,
        "tuning_env_steps": 1_966_080, "incumbent": _entry(inc), "default": _entry(default),
        "wall_seconds": 114.0,
    }  # fmt: skip


# The default is bimodal over the 8 test seeds (IQM 150); the incumbent scores 160 on every
# seed, so its IQM interval lies above the default's IQM (the old rule: "beats"), but per seed
# it wins by 160 on half and loses by 140 on the other half: the paired interval straddles 0.
DEFAULT = [0.0, 0.0, 0.0, 0.0, 300.0, 300.0, 300.0, 300.0]
FLAT = [160.0, 160.1, 159.9, 160.0, 160.2, 159.8, 160.0, 160.1]


def test_old_rule_beats_but_the_paired_interval_says_no_difference():
    inc, default = _entry(FLAT), _entry(DEFAULT)
    assert old_rule(inc, default) is True  # what the page used to claim
    c = compare(inc, default)
    assert c["low"] < 0 < c["high"] and c["verdict"] == "no difference shown"
    text = render(_record([_row(FLAT, DEFAULT)]))
    row = next(line for line in text.splitlines() if line.startswith("| CartPole-v1"))
    assert "no difference shown" in row and "tuned beats default" not in row
    assert "- CartPole-v1: a tuned incumbent beats the default: **not met**" in text
    assert 'would have said "beats" in 1 row(s)' in text


def test_a_paired_interval_above_zero_says_beats_and_met():
    better = [d + 50.0 + 0.1 * i for i, d in enumerate(DEFAULT)]
    text = render(_record([_row(better, DEFAULT)]))
    row = next(line for line in text.splitlines() if line.startswith("| CartPole-v1"))
    assert "**tuned beats default**" in row and "+50.35 [" in row
    assert (
        "- CartPole-v1: a tuned incumbent beats the default: **met** (paired interval above 0 "
        "for random, over 8 test seeds)" in text
    )
    assert "default's own" not in text  # the default's interval is a column, not prose
    assert "| 0 [0, 300] |" not in text and "| 150 [" in row  # the default's IQM and interval
    worse = [d - 50.0 - 0.1 * i for i, d in enumerate(DEFAULT)]
    assert "default better" in render(_record([_row(worse, DEFAULT)]))


def test_render_says_failed_runs_unfinished_runs_missing_envs_and_dirty_trees():
    failed = {**_row(FLAT, DEFAULT), "incumbent": {"iqm": None, "ci": None, "scores": None,
                                                   "error": "boom"}}  # fmt: skip
    text = render(_record([failed], finished=False, clean_tree=False))
    assert "failed (boom)" in text and "n/a (a run failed)" in text
    assert "**This run did not finish**" in text
    assert "Not run in this record: Pendulum-v1, ThreeBody-v0." in text
    assert "**uncommitted changes in the tree**" in text
    assert "Speed: not measured in this run." in text


def test_render_flags_a_default_that_scored_differently_between_studies():
    rows = [_row(FLAT, DEFAULT), _row(FLAT, [x + 1 for x in DEFAULT], method="tpe")]
    assert "**differently** between studies" in render(_record(rows))
    assert "the same in each" in render(_record([_row(FLAT, DEFAULT)] * 2))


def test_test_seeds_are_new_and_disjoint_from_validation():
    test = set(bench_autotune.TEST_SEEDS)
    assert len(test) == 20
    assert not test & set(bench_autotune.VALIDATION_SEEDS)
    assert not test & set(range(5, 25))  # the seeds the earlier runs judged on
    assert set(bench_autotune.TUNING_SEEDS) <= set(bench_autotune.VALIDATION_SEEDS)


def test_from_results_rerenders_the_block(tmp_path):
    from accelrl.results import write_results

    page = tmp_path / "autotune.md"
    page.write_text("intro\n<!-- bench_autotune: begin -->\nSTALE\n<!-- bench_autotune: end -->\n")
    path = write_results(tmp_path / "autotune.json", _record([_row(FLAT, DEFAULT)]),
                         allow_dirty=True)  # fmt: skip
    assert bench_autotune.main(["--from_results", str(path), "--page", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("intro\n") and "STALE" not in text and "no difference shown" in text


def test_quick_never_writes_into_docs(capsys):
    out = str(bench_autotune.RESULTS)
    with pytest.raises(ValueError, match="never write into"):
        bench_autotune.main(["--quick", "--out", out])


def test_unknown_environment_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_autotune.main(["--out", str(tmp_path / "r.json"), "--envs", "NoSuchEnv-v0"])
    assert exc.value.code == 2
    assert "NoSuchEnv-v0" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["-0.1", "1.0"])
def test_pbt_burn_in_outside_the_budget_is_refused(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_autotune.main(["--out", str(tmp_path / "r.json"), "--pbt-burn-in", bad])
    assert exc.value.code == 2
    assert "--pbt-burn-in" in capsys.readouterr().err


def test_pbt_burn_in_is_each_cases_own_and_names_its_row(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import accelrl.autotune as autotune

    calls = []

    def fake_pbt(settings, spec, out):
        calls.append({"burn_in": settings.burn_in, "out": out})
        inc = {"budget": {"tuning_env_steps": 10}, "config": {},
               "tuning": {"seeds": [0], "score": 1.0},
               "test": {"incumbent": {"iqm": 1.0, "ci": [0.5, 1.5], "scores": [[1.0], [2.0]]},
                        "default": {"iqm": 0.0, "ci": [0.0, 0.0], "scores": [[0.0], [0.5]]}}}  # fmt: skip
        return SimpleNamespace(incumbent=inc, rows=[{}])

    monkeypatch.setattr(autotune, "pbt", fake_pbt)
    saved = []
    rows = bench_autotune.run_tuning(tmp_path, ["CartPole-v1", "Pendulum-v1"], ["pbt"], 4, True,
                                     ((0,), (1, 2)), on_row=lambda r: saved.append(len(r)))  # fmt: skip
    assert [c["burn_in"] for c in calls] == [0, 600]  # Pendulum: half its quick budget
    assert [Path(c["out"]).name for c in calls] == ["pbt", "pbt_burn-in_0.5"]
    assert [r["method"] for r in rows] == ["pbt", "pbt, burn-in 0.5"]
    assert rows[0]["incumbent"]["scores"] == [1.0, 2.0]  # flattened, test-seed order
    assert rows[0]["paired"]["mean_diff"] == pytest.approx(1.25)
    assert saved == [1, 2]  # saved after every row
    bench_autotune.run_tuning(tmp_path, ["CartPole-v1"], ["pbt"], 4, True, ((0,), (1, 2)), 0.5)
    assert calls[-1]["burn_in"] == 4_096  # an explicit --pbt-burn-in overrides the case's


def test_each_results_file_renders_its_own_block(tmp_path):
    from accelrl.results import write_results

    results = bench_autotune.RESULTS.parent
    assert bench_autotune.block_name(results / "autotune.json") == "bench_autotune"
    name = bench_autotune.block_name(results / "autotune_three_body.json")
    assert name == "bench_autotune_three_body"
    assert bench_autotune.block_name(results / "other.json") is None
    assert bench_autotune.block_name(tmp_path / "autotune.json") is None  # not under docs/
    page = tmp_path / "autotune.md"
    page.write_text(
        "<!-- bench_autotune: begin -->\nKEEP\n<!-- bench_autotune: end -->\n"
        "<!-- bench_autotune_three_body: begin -->\nSTALE\n<!-- bench_autotune_three_body: end -->\n"
    )
    rows = [_row(FLAT, DEFAULT, env="ThreeBody-v0")]
    path = write_results(tmp_path / "r.json", _record(rows, block=name), allow_dirty=True)
    assert bench_autotune.main(["--from_results", str(path), "--page", str(page)]) == 0
    text = page.read_text()
    assert "KEEP" in text and "STALE" not in text and "| ThreeBody-v0 (ppo) |" in text


def test_a_speed_only_record_renders_its_speed_line_alone():
    speed = {"env_steps_per_configuration": 32_768, "vmapped_steps_per_s": 90_000.0,
             "sequential_steps_per_s": 60_000.0, "speedup_median": 1.5, "rounds": 3}  # fmt: skip
    text = render(_record([], parts=["speed"], speed=speed))
    assert text.startswith("Speed: 16 PPO configurations x 32,768 steps") and "1.50x" in text
    assert "| environment" not in text and "commit `" in text
