"""``accelrl-tune``: clear errors for bad input, and (slow) SIGKILL during a TPE study then
``--resume`` keeps every finished trial exactly once."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelrl.agents.spec import RunSpec
from accelrl.autotune import Float, SearchSpace, write_space
from accelrl.scripts.tune import main

TINY = [
    "--tuning-seeds", "0", "1", "--test-seeds", "2", "3", "--bootstrap-reps", "100",
    "--overrides", '{"num_envs": 4, "num_steps": 32, "num_minibatches": 2, "update_epochs": 1,'
    ' "eval_episodes": 2}',
]  # fmt: skip


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_input_gets_a_clear_error_naming_it(tmp_path, capsys):
    base = ["--agent", "ppo", "--trials", "4", "--budget", "1000", "--out", str(tmp_path / "o")]
    assert "Did you mean: CartPole-v1" in _error(capsys, ["--env", "CartPol-v1", *base])
    err = _error(capsys, ["--env", "CartPole-v1", "--agent", "ppo", "--out", str(tmp_path)])
    assert "missing --budget" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hyperparameters": [{"name": "learning_rate", "type": "uniform_float",
                                                    "lower": 1e-3}]}))  # fmt: skip
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--space", str(bad)])
    assert "learning_rate" in err and "upper" in err
    space = tmp_path / "space.json"
    write_space(SearchSpace({"learnin_rate": Float(1e-4, 1e-2, log=True)}), space)
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--space", str(space)])
    assert "learnin_rate" in err and "Did you mean: learning_rate" in err
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--tuning-seeds", "0", "5"])
    assert "overlap" in err
    err = _error(capsys, ["--resume", str(tmp_path / "nothing")])
    assert "no study" in err
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--method", "pbt", "--burn-in", "-5"])
    assert "--burn_in must be >= 0" in err


@pytest.mark.slow  # budget: about 2-3 minutes on 2 cores (3 processes, one program each)
def test_sigkill_during_a_tpe_study_then_resume_keeps_every_trial_once(tmp_path):
    space = tmp_path / "space.json"
    write_space(SearchSpace({"learning_rate": Float(1e-4, 1e-2, log=True),
                             "ent_coef": Float(0.0, 0.05)}), space)  # fmt: skip
    out = tmp_path / "study"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "accelrl.scripts.tune", "--env", "CartPole-v1", "--agent",
           "ppo", "--method", "tpe", "--trials", "8", "--batch", "2", "--budget", "2048",
           "--space", str(space), "--out", str(out), *TINY]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows_path = out / "trials.jsonl"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if rows_path.exists() and len(rows_path.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before the kill: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {json.loads(x)["trial_id"]: x for x in rows_path.read_text().splitlines()}
    assert 2 <= len(before) < 8
    done = subprocess.run(
        [sys.executable, "-m", "accelrl.scripts.tune", "--resume", str(out), "--quiet"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = rows_path.read_text().splitlines()
    ids = [json.loads(x)["trial_id"] for x in lines]
    assert len(ids) == len(set(ids)) == 8  # every finished trial exactly once
    after = dict(zip(ids, lines, strict=True))
    assert all(after[i] == line for i, line in before.items())  # kept as written
    inc = json.loads((out / "incumbent.json").read_text())
    assert inc["method"] == "tpe" and inc["test"]["seeds"] == [2, 3]
    assert "TPE" in done.stdout


@pytest.mark.slow  # budget: ~90 s here (a 2-trial study of tiny CartPole runs)
def test_two_tune_processes_on_one_folder_one_proceeds(tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "accelrl.scripts.tune", "--env", "CartPole-v1", "--agent", "ppo",
           "--trials", "2", "--budget", "512", "--out", str(out), "--quiet", *TINY]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / ".lock").exists():
            assert first.poll() is None and time.time() < deadline, first.stderr.read()
            time.sleep(0.2)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1
        assert "in use by another accelrl process" in second.stderr
        assert second.stderr.count("\n") == 1
        assert first.wait(timeout=600) == 0, first.stderr.read()
    finally:
        first.kill()
    rows = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert sorted(r["trial_id"] for r in rows) == [0, 1]
    assert not (out / ".lock").exists()  # released at exit


CURRICULUM = [
    "--env", "Pendulum-v1", "--agent", "ppo", "--teacher", "alp_gmm", "--task_space",
    "pendulum_dynamics", "--teacher_kwargs", '{"fit_rate": 8, "ks": [2], "history": 64}',
    "--curriculum", '{"test_tasks": 8}', "--tuning-seeds", "0", "1", "--test-seeds", "2", "3",
    "--bootstrap-reps", "100",
    "--overrides", '{"num_envs": 4, "num_steps": 64, "num_minibatches": 1, "update_epochs": 1}',
]  # fmt: skip


def test_curriculum_study_names_strategy_settings_and_refuses_unknown_ones(tmp_path, capsys):
    space = tmp_path / "space.json"
    write_space(SearchSpace({"teacher.fit_rat": Float(0.0, 0.5)}), space)
    base = ["--method", "pbt", "--trials", "4", "--budget", "1024", "--space", str(space)]
    err = _error(capsys, [*CURRICULUM, *base, "--out", str(tmp_path / "o")])
    assert "teacher.fit_rat" in err and "Did you mean: teacher.fit_rate" in err
    assert len(err.strip().splitlines()) == 1
    err = _error(capsys, ["--env", "Pendulum-v1", "--agent", "ppo", "--score", "mastered",
                          *base, "--out", str(tmp_path / "o")])  # fmt: skip
    assert "--score mastered needs --teacher" in err
    err = _error(capsys, [*CURRICULUM, *base, "--out", str(tmp_path / "o"), "--backend", "ray"])
    assert "--backend ray tunes runs with the default resets" in err


@pytest.mark.slow  # budget: about 3 minutes on 2 shared cores (two processes, PPO + ALP-GMM)
def test_sigkill_during_a_curriculum_pbt_study_then_resume_keeps_its_rows(tmp_path):
    """``accelrl-tune --teacher alp_gmm --task_space pendulum_dynamics --method pbt --score
    mastered`` over PPO hparams and ``teacher.random_task_ratio``: killed after its rows were
    written (during the test step), resumed; the rows are kept as written and carry every
    teacher setting each trial ran with, searched or not."""
    space = tmp_path / "space.json"
    write_space(SearchSpace({"learning_rate": Float(1e-4, 1e-2, log=True),
                             "teacher.random_task_ratio": Float(0.0, 0.5)}), space)  # fmt: skip
    out = tmp_path / "study"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "accelrl.scripts.tune", *CURRICULUM, "--method", "pbt",
           "--trials", "4", "--intervals", "2", "--budget", "1024", "--score", "mastered",
           "--space", str(space), "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows_path = out / "trials.jsonl"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if rows_path.exists() and len(rows_path.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before the kill: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "incumbent.json").exists()
    before = rows_path.read_text().splitlines()
    search = json.loads((out / "search.json").read_text())
    assert search["run"]["reset_strategy"]["name"] == "alp_gmm" and search["score"] == "mastered"
    done = subprocess.run(
        [sys.executable, "-m", "accelrl.scripts.tune", "--resume", str(out), "--quiet"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert rows_path.read_text().splitlines() == before  # no finished trial lost or repeated
    rows = [json.loads(x) for x in before]
    assert sorted(r["trial_id"] for r in rows) == [0, 1, 2, 3]
    for r in rows:
        cfg = r["config"]
        assert cfg["teacher.fit_rate"] == 8 and cfg["teacher.ks"] == [2]  # fixed, not searched
        assert cfg["teacher.task_space"] == "pendulum_dynamics"
        assert 0.0 <= cfg["teacher.random_task_ratio"] <= 0.5  # searched
        assert all(0.0 <= s <= 1.0 for s in r["seed_scores"])  # fractions mastered
    inc = json.loads((out / "incumbent.json").read_text())
    assert "mastered" in inc["test"]["scores_are"]
    assert inc["full"]["reset_strategy"]["settings"]["fit_rate"] == 8


@pytest.mark.slow  # budget: about 3 minutes on 2 shared cores (IPPO on MPE compiles twice)
def test_a_multi_agent_agent_is_tuned_on_an_mpe_id(tmp_path, capsys):
    space = tmp_path / "space.json"
    write_space(SearchSpace({"learning_rate": Float(1e-4, 1e-2, log=True)}), space)
    out = tmp_path / "study"
    argv = ["--env", "MPE_simple_spread_v3", "--agent", "ippo", "--method", "random",
            "--trials", "2", "--budget", "4096", "--space", str(space), "--out", str(out),
            "--tuning-seeds", "0", "1", "--test-seeds", "2", "3", "--bootstrap-reps", "100",
            "--overrides", '{"num_envs": 4, "num_steps": 32, "update_epochs": 1,'
            ' "num_minibatches": 1}', "--quiet"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    rows = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(r["score"] < 0 for r in rows)  # simple_spread's returns are negative distances
    inc = json.loads((out / "incumbent.json").read_text())
    assert inc["agent"] == "ippo" and inc["test"]["incumbent"]["scores"] is not None


OLD_STUDIES = Path(__file__).parents[1] / "autotune" / "data" / "studies_395f955"
"""Study folders written at 395f955, before ``search.json`` held the run spec (``env``,
``agent``, ``budget``, ``overrides``, ... at its top)."""


def test_a_study_folder_from_before_the_run_spec_resumes(tmp_path, capsys):
    """Budget: one tiny CartPole trial and the final step (about 30 s)."""
    out = tmp_path / "study"
    shutil.copytree(OLD_STUDIES / "random_cartpole", out)
    rows_before = (out / "trials.jsonl").read_text().splitlines()
    assert main(["--resume", str(out), "--trials", "3", "--quiet"]) == 0
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert lines[:2] == rows_before and len(lines) == 3  # kept as written, one more
    search = json.loads((out / "search.json").read_text())  # rewritten in today's layout
    assert "env" not in search and "overrides" not in search and search["trials"] == 3
    run = RunSpec.from_dict(search["run"])
    assert (run.env, run.agent) == ("CartPole-v1", "ppo")
    assert dict(run.config) == {"num_envs": 4, "num_steps": 8, "update_epochs": 1,
                                "total_timesteps": 256}  # fmt: skip
    # ... and resumes again from the new layout, refusing a changed setting as before
    assert main(["--resume", str(out), "--quiet"]) == 0
    assert len((out / "trials.jsonl").read_text().splitlines()) == 3


def test_an_old_teacher_study_record_reads_as_the_same_run(tmp_path):
    """The upgrade sorts the old overrides into config and hparams fields and moves the reset
    strategy and measurements into the run: a new spec of the same study matches it."""
    from accelrl.agents.build import make_spec
    from accelrl.agents.spec import StrategySpec
    from accelrl.autotune.folder import open_study, release_studies
    from accelrl.autotune.pbt import PBTSettings
    from accelrl.autotune.tuners import StudySpec, upgrade_record

    old = json.loads((OLD_STUDIES / "pbt_teacher" / "search.json").read_text())
    record = upgrade_record(old)
    run = RunSpec.from_dict(record["run"])
    assert dict(run.config) == {"num_envs": 8, "num_steps": 100, "total_timesteps": 2400}
    assert dict(run.hparams) == {"gamma": 0.98}
    assert run.reset_strategy == StrategySpec(
        "alp_gmm", {"task_space": "pendulum_dynamics", "fit_rate": 8, "ks": [2]}
    )
    assert run.curriculum == {"test_tasks": 20} and record["score"] == "mastered"
    assert upgrade_record(record) == record  # today's layout is left as it is
    out = tmp_path / "study"
    shutil.copytree(OLD_STUDIES / "pbt_teacher", out)
    teacher = StrategySpec("alp_gmm", {"task_space": "pendulum_dynamics", "fit_rate": 8,
                                       "ks": [2]})  # fmt: skip
    space = SearchSpace({"learning_rate": Float(1e-4, 1e-2, log=True),
                         "teacher.random_task_ratio": Float(0.0, 0.5)})  # fmt: skip
    new = make_spec("Pendulum-v1", "ppo", {"num_envs": 8, "num_steps": 100, "gamma": 0.98,
                                           "total_timesteps": 2400},
                    reset_strategy=teacher, curriculum={"test_tasks": 20})  # fmt: skip
    spec = StudySpec(new, space, (0, 1), (2, 3), score="mastered", bootstrap_reps=100)
    try:
        open_study("pbt", PBTSettings(population=4, intervals=2), spec, out)  # no mismatch
        with pytest.raises(ValueError, match="run differ"):
            open_study("pbt", PBTSettings(population=4, intervals=2),
                       spec.replace(run=dataclasses.replace(new, hparams={"gamma": 0.9})),
                       tmp_path / "study")  # fmt: skip
    finally:
        release_studies()


def test_config_flag_tunes_the_run_a_spec_file_describes(tmp_path, capsys):
    """``--config RUN/config.json``: the trials train that run (its fixed fields and budget),
    the space's dimensions drawn over it. Budget: two tiny CartPole trials (about 30 s)."""
    from accelrl.agents.build import build_run, make_spec

    base = make_spec("CartPole-v1", "ppo", {"num_envs": 4, "num_steps": 8, "update_epochs": 1,
                                            "eval_episodes": 2, "total_timesteps": 256,
                                            "learning_rate": 5e-4})  # fmt: skip
    resolved = build_run(base).spec  # what a run folder's config.json holds: every field
    path = tmp_path / "config.json"
    path.write_text(json.dumps(resolved.to_dict()))
    space = tmp_path / "space.json"
    write_space(SearchSpace({"ent_coef": Float(0.0, 0.05)}), space)
    out = tmp_path / "study"
    argv = ["--config", str(path), "--space", str(space), "--trials", "2", "--out", str(out),
            "--tuning-seeds", "0", "1", "--test-seeds", "2", "3", "--bootstrap-reps", "100",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    run = RunSpec.from_dict(json.loads((out / "search.json").read_text())["run"])
    assert run.config["total_timesteps"] == 256 and run.config["num_envs"] == 4
    assert run.hparams["learning_rate"] == pytest.approx(5e-4) and "ent_coef" not in run.hparams
    rows = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert all(r["env_steps"] == 256 and r["status"] == "ok" for r in rows)
    inc = json.loads((out / "incumbent.json").read_text())
    assert inc["full"]["hparams"]["learning_rate"] == pytest.approx(5e-4)
    # a spec with a grid is refused in one line
    path.write_text(json.dumps({**resolved.to_dict(), "grid": [{"gamma": 0.9}]}))
    other = [str(tmp_path / "other") if a == str(out) else a for a in argv]
    assert main(other) == 2
    assert "hparams grid" in capsys.readouterr().err
