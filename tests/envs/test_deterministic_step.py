"""The ``deterministic_step`` flag: every environment that declares it has a ``step_env``
whose result does not depend on its key (search agents use it as their model)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import make
from accelrl.envs.malloc import MallocGame

FLAGGED = ("MallocGame-v0", "CacheReplacement-v0")


def step_ignores_key(env, params, key, num_steps: int = 24) -> bool:
    """Play ``num_steps`` random legal actions from a reset; at each step compare
    ``step_env`` under two different keys (every output leaf equal: True)."""
    k_reset, key = jax.random.split(key)
    obs, state = env.reset_env(k_reset, params)
    step = jax.jit(env.step_env)
    for _ in range(num_steps):
        key, k_act, k1, k2 = jax.random.split(key, 4)
        if isinstance(obs, dict) and "action_mask" in obs:
            logits = jnp.where(obs["action_mask"], 0.0, -jnp.inf)
            action = jax.random.categorical(k_act, logits)
        else:
            action = env.action_space(params).sample(k_act)
        a, b = step(k1, state, action, params), step(k2, state, action, params)
        if not all(
            np.array_equal(x, y)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        ):
            return False
        obs, state = a[0], a[1]
        if bool(env.is_terminal(state, params)):
            obs, state = env.reset_env(k_act, params)
    return True


@pytest.mark.parametrize("env_id", FLAGGED)
def test_flagged_envs_step_without_using_the_key(env_id):
    env, params = make(env_id)
    assert env.deterministic_step is True
    assert step_ignores_key(env, params, jax.random.key(0))


class NoisyMalloc(MallocGame):
    """A stochastic variant (the reward gets noise from the key) that claims the flag."""

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        return obs, state, reward + jax.random.normal(key), terminated, info


def test_the_check_catches_a_step_that_uses_its_key():
    _, params = make("MallocGame-v0")
    assert not step_ignores_key(NoisyMalloc(), params, jax.random.key(0))


def test_other_envs_do_not_claim_it():
    for env_id in ("CartPole-v1", "Pendulum-v1", "ThreeBody-v0"):
        env, _ = make(env_id)
        assert getattr(env, "deterministic_step", False) is not True, env_id
