"""Shared fixtures for environment tests: a tiny multi-agent game for the adapter tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import struct
from gymnax.environments import spaces

from accelrl.envs import MultiAgentEnv, MultiAgentEnvParams, register, registered_envs

TOY_ID = "TestToyCoop-v0"


@struct.dataclass
class ToyState:
    pos: jax.Array  # [n] float32
    time: int


@struct.dataclass
class ToyParams(MultiAgentEnvParams):
    max_steps_in_episode: int = 7
    goal: float = 1.0


class ToyCoop(MultiAgentEnv):
    """n agents on a line move left/stay/right toward a shared goal; agent 0 can finish early."""

    def __init__(self, num_agents: int = 2):
        self.agents = tuple(f"agent_{i}" for i in range(num_agents))

    @property
    def default_params(self) -> ToyParams:
        return ToyParams()

    def reset_env(self, key, params):
        pos = jax.random.uniform(key, (self.num_agents,), minval=-1.0, maxval=1.0)
        state = ToyState(pos=pos, time=0)
        return self._obs(state), state

    def _obs(self, state):
        return {a: jnp.stack([state.pos[i], state.pos.mean()]) for i, a in enumerate(self.agents)}

    def step_env(self, key, state, actions, params):
        move = jnp.stack([actions[a] for a in self.agents]).astype(jnp.float32) - 1.0
        pos = jnp.clip(state.pos + 0.25 * move, -2.0, 2.0)
        state = ToyState(pos=pos, time=state.time + 1)
        dist = jnp.abs(pos - params.goal)
        rewards = {a: -dist[i] for i, a in enumerate(self.agents)}
        done0 = dist[0] < 0.1
        terminated = {a: done0 if i == 0 else jnp.asarray(False) for i, a in enumerate(self.agents)}
        terminated["__all__"] = jnp.all(dist < 0.1)
        return self._obs(state), state, rewards, terminated, {}

    def observation_space(self, agent, params=None):
        return spaces.Box(-2.0, 2.0, (2,), jnp.float32)

    def action_space(self, agent, params=None):
        return spaces.Discrete(3)

    def world_state(self, state, params=None):
        return state.pos


# Registered at import so that parametrised tests over ``registered_envs()`` see it too.
if TOY_ID not in registered_envs():
    register(TOY_ID, ToyCoop, multi_agent=True)


@pytest.fixture(scope="session")
def toy_marl_id() -> str:
    return TOY_ID
