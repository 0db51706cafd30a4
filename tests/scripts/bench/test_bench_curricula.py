"""bench_curricula's command line: per-teacher keyword arguments reach the teachers' run specs."""

from __future__ import annotations

import bench_curricula
import pytest

import accelrl.agents


def test_teacher_kwargs_reach_only_their_teacher(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(accelrl.agents, "train_run", lambda spec, out, **kw: calls.append(spec))
    monkeypatch.setattr(bench_curricula, "summarise_run", lambda run_dir, wall: {"final": [0.0],
                        "auc": [0.0]})  # fmt: skip
    bench_curricula.run_teachers(
        tmp_path, [0], quick=False, spaces=["three_body_ic"], teachers=["alp_gmm", "random"],
        teacher_kwargs={"alp_gmm": {"fit_rate": 100}},
    )  # fmt: skip
    by_teacher = {spec.reset_strategy.name: spec.reset_strategy.settings for spec in calls}
    assert by_teacher["alp_gmm"] == {"task_space": "three_body_ic", "fit_rate": 100}
    assert by_teacher["random"] == {"task_space": "three_body_ic"}


def test_quick_teacher_settings_are_overridden_not_dropped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(accelrl.agents, "train_run", lambda spec, out, **kw: calls.append(spec))
    monkeypatch.setattr(bench_curricula, "summarise_run", lambda run_dir, wall: {"final": [0.0],
                        "auc": [0.0]})  # fmt: skip
    bench_curricula.run_teachers(
        tmp_path, [0], quick=True, spaces=["pendulum_dynamics"], teachers=["alp_gmm"],
        teacher_kwargs={"alp_gmm": {"fit_rate": 30}},
    )  # fmt: skip
    (spec,) = calls
    kwargs = spec.reset_strategy.settings
    assert kwargs["fit_rate"] == 30 and kwargs["ks"] == [2, 3, 4]


@pytest.mark.parametrize("bad", ['{"nope": {"fit_rate": 1}}', '{"alp_gmm": 3}', "[1]"])
def test_bad_teacher_kwargs_are_refused(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(
            ["--out", str(tmp_path), "--parts", "teachers", "--teacher-kwargs", bad]
        )
    assert exc.value.code == 2
    assert "--teacher-kwargs" in capsys.readouterr().err


def test_overhead_seeds_below_one_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(
            ["--out", str(tmp_path), "--parts", "overhead", "--overhead-seeds", "0"]
        )
    assert exc.value.code == 2
    assert "--overhead-seeds" in capsys.readouterr().err


def test_ceiling_keys_below_one_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_curricula.main(["--out", str(tmp_path), "--parts", "ceiling", "--ceiling-keys", "0"])
    assert exc.value.code == 2
    assert "--ceiling-keys" in capsys.readouterr().err


def test_ceiling_skips_continuous_action_spaces(capsys):
    assert bench_curricula.run_ceiling(["pendulum_dynamics"], keys=1) == {}
    assert "skipped (continuous actions)" in capsys.readouterr().out
