"""train_run / resume_run / load_run: one library path for every kind of run."""

import json

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
