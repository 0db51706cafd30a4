"""train_run / resume_run / load_run: one library path for every kind of run."""

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from accelrl.agents import (
    StrategySpec,
    load_run,
    make_spec,
    resume_run,
    train_run,
)
from accelrl.agents.checkpoint import CheckpointMismatchError

TINY = {"num_envs": 4, "num_steps": 8, "num_minibatches": 1, "update_epochs": 1}


def test_train_resume_and_load_a_plain_run(tmp_path):
    spec = make_spec("CartPole-v1", "ppo", {**TINY, "total_timesteps": 64}, seeds=(0, 1))
    first = train_run(spec, tmp_path / "r", progress=False)
    assert first.summary["checkpoint"] == "checkpoints/step_000002"
    with pytest.raises(ValueError, match="already holds a run"):
        train_run(spec, tmp_path / "r", progress=False)
    longer = resume_run(tmp_path / "r", progress=False, extend_timesteps=128)
    assert longer.summary["update_step"] == 4
    assert (
        json.loads((tmp_path / "r" / "config.json").read_text())["config"]["total_timesteps"] == 128
    )
    agent, state, config, _ = load_run(tmp_path / "r")
    np.testing.assert_array_equal(state.update_step, [4, 4])
    with pytest.raises(ValueError, match="only extend"):
        resume_run(tmp_path / "r", extend_timesteps=64)


def test_extending_an_off_policy_run_keeps_its_replay_buffer(tmp_path):
    """DQN allocates min(buffer_size, total_timesteps) slots: the longer run keeps the buffer
    its checkpoint holds (config.json records it as buffer_size) instead of refusing it."""
    spec = make_spec("CartPole-v1", "dqn", {"num_envs": 4, "total_timesteps": 256,
                                            "buffer_size": 10_000, "learning_starts": 64})  # fmt: skip
    train_run(spec, tmp_path / "r", progress=False)
    longer = resume_run(tmp_path / "r", progress=False, extend_timesteps=512)
    assert longer.summary["update_step"] == longer.built.agent.num_updates
    config = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert (config["total_timesteps"], config["buffer_size"]) == (512, 256)
    _, state, _, _ = load_run(tmp_path / "r")
    assert state.buffer.data.reward.shape == (1, 256)


def test_a_refused_resume_leaves_config_json_as_it_was(tmp_path, monkeypatch):
    from accelrl.agents.runner import Runner

    spec = make_spec("CartPole-v1", "ppo", {**TINY, "total_timesteps": 64})
    train_run(spec, tmp_path / "r", progress=False)
    before = (tmp_path / "r" / "config.json").read_text()

    def refuse(self, path=None):
        raise CheckpointMismatchError("shapes differ")

    monkeypatch.setattr(Runner, "restore", refuse)
    with pytest.raises(CheckpointMismatchError):
        resume_run(tmp_path / "r", progress=False, extend_timesteps=128)
    assert (tmp_path / "r" / "config.json").read_text() == before


def test_nothing_is_written_when_a_check_fails(tmp_path):
    bad = make_spec("CartPole-v1", "ppo", {"num_minibatches": 3, **{"num_envs": 4}})
    with pytest.raises(ValueError):
        train_run(bad, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    teach = make_spec(
        "Pendulum-v1", "ppo", TINY,
        reset_strategy=StrategySpec("random", {"task_space": "pendulum_dynamics"}),
        curriculum={"heatmap_dims": ["mass", "lenght"]},
    )  # fmt: skip
    with pytest.raises(ValueError, match="Did you mean: length"):
        train_run(teach, tmp_path / "y", progress=False)
    assert not (tmp_path / "y").exists()


@pytest.mark.slow  # budget: ~2 min here (compiles IPPO with a teacher, then the evaluation)
def test_a_multi_agent_team_with_a_teacher_trains_and_reloads(tmp_path):
    spec = make_spec(
        "MPE_simple_spread_v3", "ippo", {"num_envs": 4, "num_steps": 25, "total_timesteps": 200,
                                         "eval_episodes": 2},
        seeds=(0, 1),
        reset_strategy=StrategySpec("random", {"task_space": "mpe_spread_dynamics"}),
        curriculum={"test_tasks": 4},
    )  # fmt: skip
    outcome = train_run(spec, tmp_path / "team", progress=False)
    assert len(outcome.summary["mastered"]) == 2
    rows = np.loadtxt(tmp_path / "team" / "seed_0" / "tasks.csv", delimiter=",", skiprows=1)
    assert rows.shape[1] == 3 + 3 + 1 and np.all((rows[:, 3] >= 1.0) & (rows[:, 3] <= 8.0))
    agent, state, _, _ = load_run(tmp_path / "team")
    one = jax.tree.map(lambda x: x[1], state)
    assert np.all(np.isfinite(agent.evaluate(one, jax.random.key(0), 2, True)))


# Run folders written by accelrl at a518ab4, before the reset strategies' data settings moved
# into their state (teacher: ALP-GMM with random_task_ratio 0.3 in its config.json; snapshot
# starts with probability 1.0), killed after the checkpoint of update 4 of 5 (pictures left
# out; the metrics and task logs are the uninterrupted old run's, all 5 updates). Their
# checkpoints lack the ``random_task_ratio`` / ``probability`` leaves.
OLD_RUNS = Path(__file__).parent / "data" / "runs_a518ab4"
OLD_SETTINGS = {"teach": ("random_task_ratio", 0.3), "snap": ("probability", 1.0)}


def _old_run(tmp_path: Path, name: str) -> Path:
    """A copy of an old run folder (the snapshot run's bank moved beside the fixture)."""
    run = tmp_path / name
    shutil.copytree(OLD_RUNS / name, run)
    if name == "snap":
        cfg = json.loads((run / "config.json").read_text())
        cfg["reset_strategy"]["settings"]["bank"] = str(OLD_RUNS / "bank.npz")
        (run / "config.json").write_text(json.dumps(cfg, indent=2))
    return run


def _files(run: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["teach", "snap"])
def test_a_run_folder_from_before_the_data_settings_loads_unchanged(tmp_path, name):
    import orbax.checkpoint as ocp

    run = _old_run(tmp_path, name)
    before = _files(run)
    agent, state, _, _ = load_run(run)
    assert _files(run) == before  # loading writes nothing
    field, value = OLD_SETTINGS[name]
    s_state = agent.env.strategy_state(state.env_state)
    np.testing.assert_array_equal(agent.env.strategy.data(s_state)[field], np.float32([value]))
    # every other leaf is the checkpoint's own
    with jax.enable_x64(True):
        raw = ocp.StandardCheckpointer().restore(run / "checkpoints" / "step_000004")
    saved = ocp.tree.to_flat_dict(raw["state"])
    got = ocp.tree.to_flat_dict(ocp.tree.serialize_tree(state))
    assert set(got) - set(saved) == {k for k in got if k[-1] == field}
    for k, v in saved.items():
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(v), err_msg=str(k))
    if name == "teach":
        assert int(s_state.history.count[0]) == 4  # the four episodes of tasks.csv


def test_an_old_run_folder_that_differs_otherwise_fails_in_one_line(tmp_path):
    run = _old_run(tmp_path, "teach")
    cfg = json.loads((run / "config.json").read_text())
    cfg["config"]["hidden_sizes"] = [32, 32]  # another network: not the checkpoint's shapes
    (run / "config.json").write_text(json.dumps(cfg, indent=2))
    before = _files(run)
    with pytest.raises(CheckpointMismatchError) as e:
        load_run(run)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"run folder {run.absolute()}: checkpoint step_000004 does not match" in msg
    assert "shapes differ: state.params" in msg
    assert "random_task_ratio" not in msg  # the one known difference is not reported
    with pytest.raises(CheckpointMismatchError):
        resume_run(run, progress=False)
    assert _files(run) == before


@pytest.mark.slow  # budget: ~1 min per run here (compiles PPO with the strategy, one update)
@pytest.mark.parametrize("name", ["teach", "snap"])
def test_an_old_run_folder_resumes_and_evaluates(tmp_path, name):
    from accelrl.scripts.evaluate import main as eval_main

    run = _old_run(tmp_path, name)
    _, old_state, _, _ = load_run(run)
    outcome = resume_run(run, progress=False)
    assert outcome.summary["update_step"] == 5
    assert outcome.summary["checkpoint"] == "checkpoints/step_000005"
    metrics = outcome.result.metrics
    for key in ("loss", "value_loss", "entropy"):
        assert np.isfinite(metrics[key]).all(), key
    assert np.asarray(metrics["loss"]).shape[-1] == 5  # updates 1-4 kept, update 5 added
    # update 5 as the old code ran it without interruption, byte for byte
    for log in ("metrics.csv", "tasks.csv"):
        if (OLD_RUNS / name / "seed_0" / log).exists():
            assert (run / "seed_0" / log).read_bytes() == (
                OLD_RUNS / name / "seed_0" / log
            ).read_bytes(), log
    agent, state, _, _ = load_run(run)  # the new checkpoint holds the setting itself
    field, value = OLD_SETTINGS[name]
    s_state = agent.env.strategy_state(state.env_state)
    np.testing.assert_array_equal(agent.env.strategy.data(s_state)[field], np.float32([value]))
    if name == "teach":  # the restored history is kept and grows
        old = agent.env.strategy_state(old_state.env_state).history
        new = s_state.history
        assert int(new.count[0]) >= int(old.count[0]) == 4
        np.testing.assert_array_equal(new.tasks[0, :4], old.tasks[0, :4])
    assert eval_main([str(run), "--episodes", "2"]) == 0
