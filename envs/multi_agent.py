"""Multi-agent base class: the gymnax contract with dicts keyed by agent name.

``reset(key, params) -> obs, state`` and
``step(key, state, actions, params) -> obs, state, rewards, terminated, truncated, info``
with ``obs``/``rewards``/``terminated``/``truncated`` dicts keyed by agent name (the JaxMARL
convention); ``terminated`` and ``truncated`` also carry ``"__all__"``. ``step`` auto-resets the
whole episode when ``terminated["__all__"] | truncated["__all__"]`` and puts the pre-reset
observations in ``info["final_observation"]``. Params are passed explicitly so they can be
vmapped.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class MultiAgentEnvParams:
    """Params every multi-agent environment has."""

    max_steps_in_episode: int = 25


class MultiAgentEnv:
    """Base class for multi-agent environments.

    Subclasses set ``self.agents`` (a tuple of names, fixed at construction) and implement
    ``reset_env``, ``step_env`` (returning ``obs, state, rewards, terminated, info`` where
    ``terminated`` is a dict keyed by agent plus ``"__all__"``), ``observation_space(agent,
    params)``, ``action_space(agent, params)`` and ``default_params``. The state must have a
    ``time`` field (steps taken in the episode) unless ``is_truncated`` is overridden.
    """

    agents: tuple[str, ...] = ()

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def default_params(self) -> Any:
        return MultiAgentEnvParams()

    # -- to implement ---------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: Any) -> tuple[dict[str, jax.Array], Any]:
        raise NotImplementedError

    def step_env(
        self, key: jax.Array, state: Any, actions: dict[str, jax.Array], params: Any
    ) -> tuple[dict, Any, dict, dict, dict]:
        raise NotImplementedError

    def observation_space(self, agent: str, params: Any = None):
        raise NotImplementedError

    def action_space(self, agent: str, params: Any = None):
        raise NotImplementedError

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        """Whether the episode hit its time limit (scalar bool)."""
        return state.time >= params.max_steps_in_episode

    @property
    def teams(self) -> dict[str, tuple[str, ...]]:
        """Teams of agents, ``{team name: agent names}`` (every agent in exactly one, in
        :attr:`agents` order). Multi-agent agents give each team its own parameters and
        optimiser and share them across the team's agents. Default: one team, ``"agents"``;
        competitive environments override it."""
        return {"agents": tuple(self.agents)}

    def world_state_from_obs(self, obs: dict[str, jax.Array]) -> jax.Array:
        """Global state for centralised critics, from an observation dict: every agent's
        observation concatenated in :attr:`agents` order, ``f32[..., sum of obs sizes]`` (any
        leading batch axes). Centralised critics build it from the observations they already
        have, including ``info["final_observation"]`` for the truncation bootstrap."""
        return jnp.concatenate([jnp.asarray(obs[a], jnp.float32) for a in self.agents], axis=-1)

    def world_state(self, state: Any, params: Any = None) -> jax.Array:
        """Global state vector of one environment state. Environments that can compute their
        observations from a state override it to return :meth:`world_state_from_obs` of them
        (MPE does); the base class cannot, and says so."""
        raise NotImplementedError(
            f"{type(self).__name__} does not compute a world state from a state; use "
            "world_state_from_obs(obs) on its observations"
        )

    # -- provided -------------------------------------------------------------------------------
    def transition(
        self, key: jax.Array, state: Any, actions: dict[str, jax.Array], params: Any
    ) -> tuple[dict, Any, dict, dict, dict, dict]:
        """One step without reset: ``obs, state, rewards, terminated, truncated, info``."""
        obs, state, rewards, terminated, info = self.step_env(key, state, actions, params)
        trunc = jnp.asarray(self.is_truncated(state, params))
        truncated = {a: trunc for a in self.agents}
        truncated["__all__"] = trunc
        return obs, state, rewards, terminated, truncated, info

    @partial(jax.jit, static_argnums=0)
    def reset(self, key: jax.Array, params: Any = None) -> tuple[dict[str, jax.Array], Any]:
        if params is None:
            params = self.default_params
        return self.reset_env(key, params)

    @partial(jax.jit, static_argnums=0)
    def step(self, key: jax.Array, state: Any, actions: dict[str, jax.Array], params: Any = None):
        if params is None:
            params = self.default_params
        key_step, key_reset = jax.random.split(key)
        obs_st, state_st, rewards, terminated, truncated, info = self.transition(
            key_step, state, actions, params
        )
        done = terminated["__all__"] | truncated["__all__"]
        obs_re, state_re = self.reset_env(key_reset, params)
        state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), state_re, state_st)
        obs = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), obs_re, obs_st)
        info = {**info, "final_observation": obs_st}
        return obs, state, rewards, terminated, truncated, info
