"""bench_curricula's command line: per-teacher keyword arguments reach accelrl-teach."""

from __future__ import annotations

import json

import pytest

from accelrl.scripts import bench_curricula, teach


def test_teacher_kwargs_reach_only_their_teacher(tmp_path, monkeypatch):
    calls = []

    def fake_teach(argv):
        calls.append(argv)
        return 0

    monkeypatch.setattr(teach, "main", fake_teach)
    monkeypatch.setattr(bench_curricula, "summarise_run", lambda run_dir, wall: {"final": [0.0],
                        "auc": [0.0]})  # fmt: skip
    bench_curricula.run_teachers(
        tmp_path, [0], quick=False, spaces=["three_body_ic"], teachers=["alp_gmm", "random"],
        teacher_kwargs={"alp_gmm": {"fit_rate": 100}},
    )  # fmt: skip
    by_teacher = {argv[argv.index("--teacher") + 1]: argv for argv in calls}
    alp = by_teacher["alp_gmm"]
    assert json.loads(alp[alp.index("--teacher_kwargs") + 1]) == {"fit_rate": 100}
    assert "--teacher_kwargs" not in by_teacher["random"]


def test_quick_teacher_settings_are_overridden_not_dropped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(teach, "main", lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(bench_curricula, "summarise_run", lambda run_dir, wall: {"final": [0.0],
                        "auc": [0.0]})  # fmt: skip
    bench_curricula.run_teachers(
        tmp_path, [0], quick=True, spaces=["pendulum_dynamics"], teachers=["alp_gmm"],
        teacher_kwargs={"alp_gmm": {"fit_rate": 30}},
    )  # fmt: skip
    (argv,) = calls
    kwargs = json.loads(argv[argv.index("--teacher_kwargs") + 1])
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
