"""PettingZoo adapter: every multi-agent accelrl id as a ``pettingzoo.ParallelEnv``.

>>> from accelrl.envs.pettingzoo import parallel_env
>>> env = parallel_env("MPE_simple_spread_v3", max_cycles=25)
>>> obs, infos = env.reset(seed=0)

Requires the ``pettingzoo`` extra. Agents leave ``env.agents`` when they terminate or
truncate; spaces are cached per agent; numpy in and out.

``step(actions)`` takes one action for each live agent (``env.agents``), no more and no fewer,
each checked against its space on the host by :func:`~accelrl.envs.spaces.check_action`
(``KeyError`` for unknown or missing agents, ``ValueError`` for agents that already left,
``TypeError``/:class:`~accelrl.envs.spaces.InvalidActionError` for a bad action). Params are
checked by :func:`~accelrl.envs.checks.check_params` at construction and at every ``reset``
after ``env.params`` was replaced.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jax
import numpy as np

from accelrl.envs import registry
from accelrl.envs.checks import check_int, check_params
from accelrl.envs.gymnasium_adapter import cached_build
from accelrl.envs.spaces import check_action, to_gymnasium_space, to_jax_action, to_numpy

try:
    from pettingzoo import ParallelEnv
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "accelrl.envs.pettingzoo needs the pettingzoo extra: pip install 'accelrl[pettingzoo]'"
    ) from err

_KEY_HIGH = 2**31 - 1


@lru_cache(maxsize=32)
def _compiled(env_id: str, kwargs_items: tuple) -> tuple:
    env, params = registry.make(env_id, **dict(kwargs_items))
    reset = jax.jit(lambda seed, p: env.reset_env(jax.random.key(seed), p))
    step = jax.jit(lambda seed, s, a, p: env.transition(jax.random.key(seed), s, a, p))
    return env, params, reset, step


class AccelParallelEnv(ParallelEnv):
    """A multi-agent accelrl environment as a PettingZoo ``ParallelEnv``.

    Args:
        env_id: a multi-agent accelrl id.
        max_cycles: episode length, an integer >= 1 (sets ``params.max_steps_in_episode``);
            default: the env's.
        render_mode: ``None`` or ``"rgb_array"``.
        env_params: params to use instead of the defaults (unbatched; checked).
        **kwargs: constructor arguments for :func:`accelrl.envs.make`.
    """

    metadata = {"render_modes": ["rgb_array"], "name": "accelrl", "is_parallelizable": True}

    def __init__(
        self,
        env_id: str,
        max_cycles: int | None = None,
        render_mode: str | None = None,
        env_params: Any = None,
        **kwargs: Any,
    ):
        if not registry.is_multi_agent(env_id):
            raise ValueError(
                f"{env_id!r} is not a multi-agent accelrl id; multi-agent ids: "
                f"{[i for i in registry.registered_envs() if registry.is_multi_agent(i)]}"
            )
        self.env, default_params, self._reset, self._step = cached_build(_compiled, env_id, kwargs)
        params = default_params if env_params is None else env_params
        if max_cycles is not None:
            params = params.replace(
                max_steps_in_episode=check_int("max_cycles", max_cycles, minimum=1)
            )
        self.params = params
        self._checked = None
        self._check_params()
        self.env_id = env_id
        self.metadata = {**self.metadata, "name": env_id}
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.possible_agents = list(self.env.agents)
        self.agents: list[str] = []
        self._state = None
        self._history: list = []
        self._rng = np.random.default_rng()

    @functools.cache  # noqa: B019 - one cache per env instance is intended
    def observation_space(self, agent: str):
        return to_gymnasium_space(self.env.observation_space(agent, self.params))

    @functools.cache  # noqa: B019
    def action_space(self, agent: str):
        return to_gymnasium_space(self.env.action_space(agent, self.params))

    def _seed(self) -> int:
        return int(self._rng.integers(0, _KEY_HIGH))

    def _check_params(self) -> None:
        if self.params is not self._checked:
            check_params(self.env, self.params)
            self._checked = self.params

    def _obs(self, obs: dict) -> dict:
        return {a: to_numpy(obs[a], self.observation_space(a)) for a in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._check_params()
        obs, self._state = self._reset(self._seed(), self.params)
        self.agents = list(self.possible_agents)
        self._history = [self._state] if self.render_mode == "rgb_array" else []
        return self._obs(obs), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not isinstance(actions, Mapping):
            raise TypeError(f"actions must be a dict keyed by agent, got {type(actions).__name__}")
        unknown = set(actions) - set(self.possible_agents)
        if unknown:
            raise KeyError(f"actions for unknown agents {sorted(unknown)}")
        left = sorted(set(actions) - set(self.agents))
        if left:
            raise ValueError(f"actions for agents that are done: {left} (live: {self.agents})")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise KeyError(f"no actions for live agents {missing}")
        acts = {}
        for a in self.possible_agents:  # agents that left still need an array of the right shape
            space = self.action_space(a)
            if a in actions:
                acts[a] = check_action(actions[a], space, f"action for {a}")
            else:
                acts[a] = to_jax_action(np.zeros(space.shape, space.dtype), space)
        obs, self._state, rewards, term, trunc, _ = self._step(
            self._seed(), self._state, acts, self.params
        )
        if self.render_mode == "rgb_array":
            self._history.append(self._state)
        live = list(self.agents)
        out_obs = {a: to_numpy(obs[a], self.observation_space(a)) for a in live}
        out_rew = {a: float(rewards[a]) for a in live}
        out_term = {a: bool(term[a]) for a in live}
        out_trunc = {a: bool(trunc[a]) for a in live}
        self.agents = [a for a in live if not (out_term[a] or out_trunc[a])]
        return out_obs, out_rew, out_term, out_trunc, {a: {} for a in live}

    @property
    def state_(self) -> Any:
        """The current (jax) environment state."""
        return self._state

    def state(self) -> np.ndarray:
        """Global state for centralised critics (``env.world_state``)."""
        return np.asarray(self.env.world_state(self._state, self.params))

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.env.render(self._history, self.params)

    def close(self):
        pass


def parallel_env(env_id: str, **kwargs: Any) -> AccelParallelEnv:
    """Build a PettingZoo ``ParallelEnv`` for a multi-agent accelrl id (see ``AccelParallelEnv``)."""
    return AccelParallelEnv(env_id, **kwargs)
