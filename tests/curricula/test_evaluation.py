"""curricula/evaluation.py: what fixed actions master on a task space."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from accelrl.curricula import TaskSpace, fixed_action_mastery, task_space


def _cartpole_tau(threshold: float) -> TaskSpace:
    # Always pushing one way topples CartPole's pole after about 0.2 s of simulated time:
    # about 19 steps at tau = 0.01 s, 9 at 0.02 and 5 at 0.04 (return = steps).
    return TaskSpace(
        name="cartpole_tau",
        env_id="CartPole-v1",
        names=("tau",),
        fields=("tau",),
        low=(0.01,),
        high=(0.04,),
        mastery_threshold=threshold,
        return_range=(0.0, 500.0),
    )


def test_fixed_actions_master_the_fine_time_steps_only():
    tasks = np.array([[0.01], [0.02], [0.04]], np.float32)
    masks = np.asarray(fixed_action_mastery(_cartpole_tau(12.0), jax.random.key(0), tasks))
    assert masks.shape == (2, 3) and masks.dtype == bool
    np.testing.assert_array_equal(masks, [[True, False, False], [True, False, False]])
    # a threshold below every return masters everything, one above none
    assert np.asarray(fixed_action_mastery(_cartpole_tau(3.0), jax.random.key(0), tasks)).all()
    assert not np.asarray(fixed_action_mastery(_cartpole_tau(40.0), jax.random.key(0), tasks)).any()


def test_default_test_set_and_episodes_per_task():
    masks = fixed_action_mastery(_cartpole_tau(12.0), jax.random.key(1), n=16, episodes_per_task=2)
    masks = np.asarray(masks)
    assert masks.shape == (2, 16)
    assert 0 < masks.mean() < 1  # the box [0.01, 0.04] straddles the threshold


def test_refuses_continuous_actions_and_bad_episode_counts():
    with pytest.raises(ValueError, match="discrete actions"):
        fixed_action_mastery(task_space("pendulum_dynamics"), jax.random.key(0), n=2)
    with pytest.raises(ValueError, match="episodes_per_task"):
        fixed_action_mastery(_cartpole_tau(12.0), jax.random.key(0), n=2, episodes_per_task=0)
