"""Tiny deterministic gymnax environments for agent unit tests (imported by the test modules)."""

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class CounterState(environment.EnvState):
    pass


@struct.dataclass
class CounterParams(environment.EnvParams):
    max_steps_in_episode: int = 3


class CounterEnv(environment.Environment):
    """obs = [time]; action 1 terminates (reward 1), action 0 continues (reward 0.5).

    Episodes are truncated after ``max_steps_in_episode`` steps, so a random policy produces
    both terminations and truncations.
    """

    @property
    def default_params(self):
        return CounterParams()

    def step_env(self, key, state, action, params):
        state = CounterState(time=state.time + 1)
        terminated = action == 1
        reward = jnp.where(terminated, 1.0, 0.5)
        return self.get_obs(state), state, reward, terminated, {}

    def reset_env(self, key, params):
        state = CounterState(time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.time], jnp.float32)

    def is_terminal(self, state, params):
        return jnp.array(False)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 10.0, (1,), jnp.float32)


@struct.dataclass
class MaskedState(environment.EnvState):
    valid: jax.Array  # bool[K]
    violations: jax.Array  # i32[] invalid actions taken


class MaskedEnv(environment.Environment):
    """Dict observations with a random action mask; taking an invalid action is counted."""

    K = 6

    @property
    def default_params(self):
        return CounterParams(max_steps_in_episode=5)

    def _mask(self, key):
        m = jax.random.bernoulli(key, 0.4, (self.K,))
        return m.at[0].set(True)

    def step_env(self, key, state, action, params):
        ok = state.valid[action]
        state = MaskedState(
            time=state.time + 1, valid=self._mask(key), violations=state.violations + (~ok)
        )
        reward = jnp.where(ok, action.astype(jnp.float32), -100.0)
        return (
            self.get_obs(state),
            state,
            reward,
            jnp.array(False),
            {"violations": state.violations},
        )

    def reset_env(self, key, params):
        state = MaskedState(time=0, valid=self._mask(key), violations=jnp.int32(0))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return {"observation": state.valid.astype(jnp.float32), "action_mask": state.valid}

    def is_terminal(self, state, params):
        return jnp.array(False)

    def action_space(self, params=None):
        return spaces.Discrete(self.K)

    def observation_space(self, params):
        return spaces.Dict(
            {
                "observation": spaces.Box(0.0, 1.0, (self.K,), jnp.float32),
                "action_mask": spaces.Box(0, 1, (self.K,), jnp.bool_),
            }
        )
