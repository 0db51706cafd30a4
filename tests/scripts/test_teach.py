"""accelrl-teach: a tiny run writes the run folder (metrics with ``mastered``, the task log and
its heat map), resumes, and bad names fail fast with close matches."""

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from accelrl.scripts.teach import main

TINY = [
    "--num_envs", "4", "--num_steps", "64", "--num_minibatches", "1", "--update_epochs", "1",
    "--total_timesteps", "1024", "--eval_episodes", "2", "--test_tasks", "8", "--no-progress",
]  # fmt: skip
"""4 updates of 4 x 64 steps per seed: the first Pendulum episodes (200 steps) end in update 4."""


def teach(out, teacher="random", *extra):
    return main(
        ["--env", "Pendulum-v1", "--agent", "ppo", "--teacher", teacher, "--task_space",
         "pendulum_dynamics", "--seeds", "0", "1", "--out", str(out), *TINY, *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("teach") / "random"
    assert teach(out, "random", "--segments", "2", "--checkpoint_every", "1") == 0
    return out


def test_tiny_run_writes_the_folder(run_dir):
    out = run_dir
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["env"] == "Pendulum-v1" and cfg["seeds"] == [0, 1]
    assert cfg["reset_strategy"]["name"] == "random"
    assert cfg["reset_strategy"]["settings"]["task_space"] == "pendulum_dynamics"
    assert cfg["curriculum"]["test_tasks"] == 8
    assert cfg["curriculum"]["heatmap_dims"] == ["mass", "length"]  # resolved: the first two
    for seed in (0, 1):
        m = json.loads((out / f"seed_{seed}" / "metrics.json").read_text())["metrics"]
        mastered = np.asarray(m["mastered"], np.float64)
        assert mastered.shape == (4,)
        assert np.all(np.isnan(mastered[[0, 2]]))  # measured at the 2 segment ends only
        assert np.all((mastered[[1, 3]] >= 0) & (mastered[[1, 3]] <= 1))
        assert "mastered" in (out / f"seed_{seed}" / "metrics.csv").read_text().splitlines()[0]
        lines = (out / f"seed_{seed}" / "tasks.csv").read_text().splitlines()
        assert lines[0] == "episode,update,env_steps,mass,length,gravity,return"
        rows = np.loadtxt(out / f"seed_{seed}" / "tasks.csv", delimiter=",", skiprows=1)
        np.testing.assert_array_equal(rows[:, 0], np.arange(4))  # 4 copies, one episode each
        np.testing.assert_array_equal(rows[:, 1], 4)  # 200-step episodes end in update 4
        assert np.all((rows[:, 3:6] >= [0.5, 0.5, 5.0]) & (rows[:, 3:6] <= [3.0, 1.5, 20.0]))
        assert m["teacher_episodes"][-1] == 4
    for png in ("tasks.png", "mastered.png", "learning_curve.png"):
        assert (out / png).stat().st_size > 1000, png
    ev = json.loads((out / "eval.json").read_text())
    assert len(ev["mastered"]) == 2 and 0 <= ev["mastered_mean"] <= 1
    assert (out / "checkpoints" / "step_000004").is_dir()


@pytest.mark.slow
def test_resume_from_an_earlier_checkpoint_relogs_the_same_tasks(run_dir, tmp_path):
    """Drop the last checkpoint (as if killed after update 2): ``accelrl-train --resume``
    rebuilds the teacher from config.json, re-measures ``mastered`` and the task log drops
    the rows logged after update 2 and logs the same episodes again.

    Slow (budget 40 s: rebuilds and recompiles the run's programs in a resumed process)."""
    from accelrl.scripts.train import main as train_main

    out = tmp_path / "copy"
    shutil.copytree(run_dir, out)
    shutil.rmtree(out / "checkpoints" / "step_000004")
    (out / "checkpoints" / "step_000004.json").unlink()
    assert train_main(["--resume", str(out), "--no-progress"]) == 0
    for seed in (0, 1):
        for name in ("tasks.csv", "metrics.csv"):
            a = (run_dir / f"seed_{seed}" / name).read_text()
            b = (out / f"seed_{seed}" / name).read_text()
            if name == "tasks.csv":
                assert a == b
            else:  # same columns and mastered values (losses may differ in the last bits)
                ra = np.genfromtxt(run_dir / f"seed_{seed}" / name, delimiter=",", names=True)
                rb = np.genfromtxt(out / f"seed_{seed}" / name, delimiter=",", names=True)
                np.testing.assert_array_equal(ra["mastered"], rb["mastered"])
    assert main(["--resume", str(out), "--no-progress"]) == 0  # finished: nothing to train


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--teacher", "alp_gmn"], "Did you mean: alp_gmm"),
        (["--task_space", "pendulum_dynamic"], "Did you mean: pendulum_dynamics"),
        (["--agent", "dqm"], "unknown agent 'dqm'"),
        (["--env", "CartPole-v1"], "not --env CartPole-v1"),
        (["--env", "Pendulm-v1"], "Did you mean: Pendulum-v1"),
        (["--lerning_rate", "1"], "--learning_rate"),
        (["--teacher_kwargs", '{"fit_rat": 10}'], "fit_rat"),
        (["--teacher_kwargs", "[1]"], "JSON object"),
        (["--heatmap_dims", "mass", "lenght"], "Did you mean: length"),
        (["--test_tasks", "0"], "test_tasks must be >= 1"),
    ],
)
def test_bad_input_fails_before_compiling(argv, message, tmp_path, capsys):
    base = {"--env": "Pendulum-v1", "--agent": "ppo", "--teacher": "alp_gmm",
            "--task_space": "pendulum_dynamics", "--out": str(tmp_path / "run")}  # fmt: skip
    for flag, value in zip(argv[::2], argv[1::2], strict=False):
        if flag in base:
            base[flag] = value
    extra = [a for i, a in enumerate(argv) if argv[i - (i % 2)] not in base]
    full = [a for kv in base.items() for a in kv] + extra
    t0 = time.perf_counter()
    assert main(full) == 2
    assert time.perf_counter() - t0 < 20  # no compilation happened
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "run" / "config.json").exists()


def test_help_explains_itself_and_names_fail_before_jax(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for fragment in ("--teacher NAME", "alp_gmm, covar_gmm, riac, random", "three_body_ic",
                     "mastered", "tasks.png", "--resume RUN_DIR"):  # fmt: skip
        assert fragment in text, fragment
    args = ["--agent", "ppo", "--teacher", "riac", "--task_space", "pendulum_dynamics", "--help"]
    assert main(args) == 0
    text = capsys.readouterr().out
    for fragment in ("--teacher_kwargs", "--mastered_every", "--heatmap_dims", "--learning_rate"):
        assert fragment in text, fragment
    code = (
        "import sys; from accelrl.scripts.teach import main; "
        "rc = main(['--agent', 'ppo', '--teacher', 'rac', '--task_space', 'three_body_ic']); "
        "print(rc, 'jax' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    assert "Did you mean: riac" in proc.stderr


def test_catalog_names_match_the_registries():
    from accelrl._catalog import TASK_SPACE_NAMES, TEACHER_NAMES
    from accelrl.curricula import TEACHERS, registered_task_spaces

    assert TEACHER_NAMES == tuple(TEACHERS)
    assert set(TASK_SPACE_NAMES) <= set(registered_task_spaces())


@pytest.mark.slow
def test_alp_gmm_run_refits_and_logs(tmp_path):
    """ALP-GMM with a small fit_rate refits during a tiny run; its settings round-trip through
    config.json. Slow (budget 60 s: compiles the EM refit inside PPO)."""
    out = tmp_path / "alp"
    kwargs = '{"fit_rate": 8, "ks": [2, 3], "refit_every": 1, "history": 64}'
    total = ["--total_timesteps", "2048", "--segments", "2"]
    assert teach(out, "alp_gmm", "--teacher_kwargs", kwargs, *total) == 0
    cfg = json.loads((out / "config.json").read_text())
    settings = cfg["reset_strategy"]["settings"]
    assert settings["fit_rate"] == 8 and settings["ks"] == [2, 3]
    m = json.loads((out / "seed_0" / "metrics.json").read_text())["metrics"]
    assert m["teacher_refits"][-1] >= 1
    rows = np.loadtxt(out / "seed_0" / "tasks.csv", delimiter=",", skiprows=1)
    assert len(rows) == m["teacher_episodes"][-1] == 8


@pytest.mark.slow  # budget: ~60 s here (a second tiny teacher run)
def test_config_file_reruns_a_teacher_run_and_load_run_rebuilds_it(run_dir, tmp_path):
    import jax

    from accelrl.agents import load_run
    from accelrl.scripts.train import main as train_main

    again = tmp_path / "again"
    assert train_main(["--config", str(run_dir / "config.json"), "--out", str(again)]) == 0
    for seed in (0, 1):
        for name in ("metrics.json", "tasks.csv"):
            a = (run_dir / f"seed_{seed}" / name).read_text()
            assert a == (again / f"seed_{seed}" / name).read_text(), name
    from accelrl.agents.base import find_wrapper
    from accelrl.curricula import RandomTeacher
    from accelrl.envs import VecEnv

    agent, state, _, _ = load_run(run_dir)
    assert isinstance(find_wrapper(agent.env, VecEnv).strategy, RandomTeacher)
    one = jax.tree.map(lambda x: x[0], state)
    assert agent.evaluate(one, jax.random.key(0), 2, True).shape == (2,)


def test_teach_resume_refuses_a_run_without_a_teacher(tmp_path, capsys):
    from accelrl.agents import RunSpec
    from accelrl.agents.build import write_spec

    write_spec(tmp_path / "plain", RunSpec(env="CartPole-v1", agent="ppo"))
    assert main(["--resume", str(tmp_path / "plain")]) == 2
    assert "without a teacher" in capsys.readouterr().err


def test_resume_refuses_a_damaged_task_log_before_touching_the_run(run_dir, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(run_dir, out)
    (out / "seed_0" / "tasks.csv").write_text("")  # emptied
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    t0 = time.perf_counter()
    assert main(["--resume", str(out), "--no-progress"]) == 2
    assert time.perf_counter() - t0 < 30  # refused before compiling
    assert "tasks.csv is missing or damaged" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
