"""bench_autotune's pure parts: the methods' equal budgets, TPE's rounds, the verdict, the table."""

from __future__ import annotations

import sys
from pathlib import Path

import bench_autotune
import pytest
from bench_autotune import _beats, hyperband_trials, table, tpe_settings

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
            "CartPole-v1",
            "ppo",
            SPACE,
            budget,
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


def _entry(iqm, lo, hi):
    return {"iqm": iqm, "ci": [lo, hi], "scores": []}


def test_beats_needs_the_whole_interval_above_the_default_iqm():
    default = _entry(-81.0, -211.8, -19.8)
    assert _beats(_entry(72.1, 9.0, 111.8), default) is True
    assert _beats(_entry(-23.9, -124.9, 52.7), default) is False  # IQM above, interval not
    assert _beats(_entry(-263.3, -412.8, -113.0), default) is False
    assert _beats({"iqm": None, "ci": None}, default) is None


def test_table_rows_and_speed_line():
    row = {
        "env": "ThreeBody-v0", "agent": "ppo", "method": "random", "trials": 24,
        "tuning_env_steps": 4_915_200, "incumbent": _entry(72.13, 9.048, 111.8),
        "default": _entry(-81.01, -211.8, -19.75), "tuned_beats_default": True,
        "wall_seconds": 256.8,
    }  # fmt: skip
    failed = {**row, "method": "tpe", "incumbent": {"iqm": None, "ci": None, "error": "boom"},
              "tuned_beats_default": None}  # fmt: skip
    text = table({"tuning": [row, failed]})
    lines = text.splitlines()
    assert lines[2] == (
        "| ThreeBody-v0 (ppo) | random | 24 | 4,915,200 | 72.13 [9.048, 111.8] | "
        "-81.01 [-211.8, -19.75] | yes | 257 |"
    )
    assert "failed (boom)" in lines[3] and "| n/a |" in lines[3]
    speed = {"env_steps_per_configuration": 32768, "vmapped_steps_per_s": 29038.0,
             "sequential_steps_per_s": 29113.0, "speedup_median": 1.1, "rounds": 3}  # fmt: skip
    assert "speedup 1.10x (median of 3 rounds" in table({"tuning": [], "speed": speed})


def test_unknown_environment_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_autotune.main(["--out", str(tmp_path), "--envs", "NoSuchEnv-v0"])
    assert exc.value.code == 2
    assert "NoSuchEnv-v0" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["-0.1", "1.0"])
def test_pbt_burn_in_outside_the_budget_is_refused(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_autotune.main(["--out", str(tmp_path), "--pbt-burn-in", bad])
    assert exc.value.code == 2
    assert "--pbt-burn-in" in capsys.readouterr().err


def test_pbt_with_burn_in_is_its_own_row_and_folder(tmp_path, monkeypatch):
    import json
    from types import SimpleNamespace

    import accelrl.autotune as autotune

    calls = []

    def fake_pbt(settings, spec, out):
        calls.append({"burn_in": settings.burn_in, "out": out})
        summary = {"iqm": 1.0, "ci": [0.5, 1.5], "scores": [1.0]}
        inc = {"budget": {"tuning_env_steps": 10}, "test": {"incumbent": summary,
               "default": {**summary, "iqm": 0.0}}, "config": {}, "tuning": {"seeds": [0]}}  # fmt: skip
        return SimpleNamespace(incumbent=inc, rows=[{}])

    monkeypatch.setattr(autotune, "pbt", fake_pbt)
    for burn in (0.0, 0.5):
        bench_autotune.run_tuning(tmp_path, ["CartPole-v1"], ["pbt"], 4, True, ([0], [1]), burn)
    assert [c["burn_in"] for c in calls] == [0, 4_096]  # half the quick budget
    assert [Path(c["out"]).name for c in calls] == ["pbt", "pbt_burn_in_0.5"]
    rows = json.loads((tmp_path / "results.json").read_text())["tuning"]
    assert [r["method"] for r in rows] == ["pbt", "pbt, burn-in 0.5"]
