"""The run spec, typed settings, the strategy registry and folder ownership (no compilation)."""

import json
import os
import subprocess
import sys

import pytest

from accelrl._typed import check_value, coerce, from_mapping
from accelrl.agents.folders import FolderBusyError, FolderLock, check_new_folder, check_output_path
from accelrl.agents.spec import RunOptions, RunSpec, StrategySpec, check_seeds
from accelrl.envs.strategies import UnknownStrategyError, registered_strategies, strategy


def test_spec_round_trips_through_json_and_files(tmp_path):
    spec = RunSpec(
        env="Pendulum-v1",
        agent="ppo",
        seeds=(3, 1),
        config={"total_timesteps": 1000},
        hparams={"learning_rate": 1e-3},
        reset_strategy=StrategySpec("alp_gmm", {"task_space": "pendulum_dynamics", "ks": [2, 3]}),
        curriculum={"test_tasks": 8},
        run=RunOptions(segments=4, log=("tensorboard",)),
    )
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.to_dict() == spec.to_dict()
    (tmp_path / "s.json").write_text(json.dumps(spec.to_dict()))
    assert RunSpec.from_file(tmp_path / "s.json").to_dict() == spec.to_dict()
    (tmp_path / "s.toml").write_text(
        'env = "CartPole-v1"\nagent = "ppo"\nseeds = [0, 1]\n[config]\ntotal_timesteps = 64\n'
    )
    toml = RunSpec.from_file(tmp_path / "s.toml")
    assert toml.seeds == (0, 1) and toml.config == {"total_timesteps": 64}
    assert spec.identity() == again.identity() and "run" not in spec.identity()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"env": "CartPole-v1", "agent": "ppo", "seed": [1]}, "Did you mean: seeds"),
        ({"env": "CartPole-v1"}, "needs 'agent'"),
        ({"env": "CartPole-v1", "agent": "ppo", "seeds": [0, 2**32]}, "[0, 2**32)"),
        ({"env": "CartPole-v1", "agent": "ppo", "seeds": [-1]}, "[0, 2**32)"),
        ({"env": "CartPole-v1", "agent": "ppo", "seeds": [1, 1]}, "distinct"),
        ({"env": "CartPole-v1", "agent": "ppo", "seeds": [1.5]}, "integers"),
        ({"env": "CartPole-v1", "agent": "ppo", "run": {"segments": 0}}, ">= 1"),
        ({"env": "CartPole-v1", "agent": "ppo", "run": {"checkpoint_seconds": "nan"}}, "finite"),
        ({"env": "CartPole-v1", "agent": "ppo", "run": {"log": ["wandbb"]}}, "wandbb"),
        ({"env": "CartPole-v1", "agent": "ppo", "reset_strategy": {"nme": "x"}}, "name"),
    ],
)
def test_bad_specs_are_refused_in_one_line(data, message):
    with pytest.raises(ValueError) as e:
        RunSpec.from_dict(data)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_seeds_that_alias_a_32_bit_key_are_refused():
    assert check_seeds([0, 2**32 - 1]) == (0, 2**32 - 1)
    with pytest.raises(ValueError, match=r"\[0, 2\*\*32\)"):
        check_seeds([0, 2**32])  # would train the same run as seed 0
    with pytest.raises(ValueError, match="integers"):
        check_seeds([True])


def test_a_config_json_from_before_the_spec_is_read():
    old = {
        "env": "Pendulum-v1",
        "env_kwargs": {},
        "agent": "ppo",
        "seeds": [0, 1],
        "config": {"num_envs": 4},
        "hparams": {"gamma": 0.99},
        "reset_strategy": {"name": "alp_gmm", "task_space": "pendulum_dynamics", "fit_rate": 40},
        "jax_version": "0.10.2",
        "backend": "cpu",
        "run": {"segments": 2, "checkpoint_every": 5, "checkpoint_seconds": 300.0},
        "curriculum": {"teacher": "alp_gmm", "task_space": "pendulum_dynamics", "test_tasks": 8,
                       "mastered_every": 1, "test_seed": 0, "episodes_per_task": 1,
                       "heatmap_dims": [0, 1], "heatmap_moments": 4},
    }  # fmt: skip
    spec = RunSpec.from_dict(old)
    assert spec.reset_strategy == StrategySpec(
        "alp_gmm", {"task_space": "pendulum_dynamics", "fit_rate": 40}
    )
    assert spec.recorded == {"jax_version": "0.10.2", "backend": "cpu"}
    assert spec.curriculum["heatmap_dims"] == ["0", "1"] and "teacher" not in spec.curriculum


def test_typed_values_refuse_what_json_or_a_flag_gets_wrong():
    assert check_value(5, int, "n") == 5 and coerce("5", int, "n") == 5
    assert coerce("64,64", tuple[int, ...], "h") == (64, 64)
    assert coerce("none", int | None, "k") is None
    for bad in (5.5, True, "5"):
        with pytest.raises(ValueError, match="n must be int"):
            check_value(bad, int, "n")
    with pytest.raises(ValueError, match="finite"):
        check_value(float("nan"), float, "x")
    with pytest.raises(ValueError, match="must be"):
        coerce("abc", int, "n")


def test_strategies_are_registered_with_typed_settings():
    assert {"default", "alp_gmm", "covar_gmm", "riac", "random", "snapshot"} <= set(
        registered_strategies()
    )
    entry = strategy("alp_gmm")
    settings = entry.settings({"task_space": "pendulum_dynamics", "fit_rate": 150})
    assert settings.fit_rate == 150 and settings.ks == tuple(range(2, 11))  # the class default
    with pytest.raises(ValueError, match="fit_rate must be int, got 10.7"):
        entry.settings({"task_space": "pendulum_dynamics", "fit_rate": 10.7})
    with pytest.raises(ValueError, match="Did you mean: fit_rate"):
        entry.settings({"task_space": "pendulum_dynamics", "fit_rat": 10})
    with pytest.raises(ValueError, match="needs task_space"):
        entry.settings({})
    with pytest.raises(UnknownStrategyError, match="Did you mean: alp_gmm"):
        strategy("alp_gm")
    snap = strategy("snapshot").settings({"bank": "b.npz", "schedule": "linear"})
    assert snap.horizon == 100 and snap.num_clusters is None
    with pytest.raises(ValueError, match="schedule"):
        strategy("snapshot").settings({"bank": "b.npz", "schedule": "sometimes"})


def test_teacher_settings_follow_the_constructor():
    from accelrl.curricula.teachers import ALPGMM, TEACHER_SETTINGS

    fields = set(TEACHER_SETTINGS["alp_gmm"].__dataclass_fields__)
    assert fields == {"task_space", "alp_chunk", "fit_rate", "ks", "random_task_ratio",
                      "n_init", "num_iters", "refit_every", "history"}  # fmt: skip
    assert ALPGMM.name == "alp_gmm"


def test_a_folder_has_one_writer_and_a_dead_writers_lock_is_taken_over(tmp_path):
    run = tmp_path / "run"
    code = (
        "import sys, time; from accelrl.agents.folders import FolderLock\n"
        f"with FolderLock({str(run)!r}):\n    print('held', flush=True); time.sleep(60)\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=f"pid {other.pid}"):
            FolderLock(run).__enter__()
    finally:
        other.kill()
        other.wait()
    # The holder died without releasing: its lock is stale and taken over.
    assert (run / ".lock").exists()
    with FolderLock(run):
        assert json.loads((run / ".lock").read_text())["pid"] == os.getpid()
    assert not (run / ".lock").exists()


def test_a_failed_start_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError), FolderLock(tmp_path / "new"):
        raise RuntimeError("build failed")
    assert not (tmp_path / "new").exists()


def test_outputs_never_overwrite_a_runs_own_files(tmp_path):
    run = tmp_path / "run"
    (run / "seed_0").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "config.json").write_text("{}")
    for name in ("config.json", "seed_0/metrics.json", "checkpoints/step_000004.json"):
        with pytest.raises(ValueError):
            check_output_path(run / name)
    assert check_output_path(run / "eval_stochastic.json") == (run / "eval_stochastic.json")
    with pytest.raises(ValueError, match="already holds a run"):
        check_new_folder(run)
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        check_new_folder(tmp_path / "afile")


def test_measurements_are_checked():
    from accelrl.curricula.report import Measurements, heatmap_dims

    with pytest.raises(ValueError, match="test_tasks must be >= 1"):
        from_mapping(Measurements, {"test_tasks": 0}, "curriculum")
    assert heatmap_dims(("gravity", "0"), ("mass", "length", "gravity")) == [2, 0]
    with pytest.raises(ValueError, match="Did you mean: length"):
        heatmap_dims(("mass", "lenght"), ("mass", "length", "gravity"))


def test_a_snapshot_config_json_from_before_the_spec_is_read():
    old = {
        "env": "CartPole-v1",
        "agent": "ppo",
        "reset_strategy": {"name": "snapshot", "bank": "/b.bank", "bank_hash": "sha256:x",
                           "num_clusters": 6, "horizon": 7, "snapshot_steps": 96,
                           "settings": {"schedule": "linear", "horizon": 100}},
    }  # fmt: skip
    settings = strategy("snapshot").settings(RunSpec.from_dict(old).reset_strategy.settings)
    assert (settings.bank, settings.bank_hash, settings.num_clusters) == ("/b.bank", "sha256:x", 6)
    assert settings.horizon == 7 and settings.schedule == "linear"  # describe() wins, then flags
    assert settings.kmeans_iters == 100  # absent: the settings class's default


def test_a_snapshot_bank_is_never_an_output(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "teacher.bank", "w") as z:
        z.writestr("header.npy", b"")
    with pytest.raises(ValueError, match="is a snapshot bank"):
        check_output_path(tmp_path / "teacher.bank")
