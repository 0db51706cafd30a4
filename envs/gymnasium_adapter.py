"""gymnasium adapters: every accelrl (and gymnax) id as a ``gymnasium.Env`` and ``VectorEnv``.

Importing :mod:`accelrl.envs` registers every single-agent accelrl id with gymnasium as
``accelrl/<id>`` (plus ``accelrl/CartPole-v1`` etc. for gymnax passthroughs on demand:
``gymnasium.make("accelrl/CartPole-v1")`` works because ``gymnasium.make`` is given the
``accelrl.envs:`` module prefix or the package was imported).

* :class:`GymnasiumEnv`: no auto-reset; numpy in and out; rewards as Python floats; seeding
  through ``reset(seed=...)`` with keys drawn from ``np_random``.
* :class:`GymnasiumVectorEnv`: all copies in one jitted call, autoreset mode NEXT_STEP. Copy
  ``i`` draws its keys from its own generator seeded with ``seed + i``, so it matches a
  ``SyncVectorEnv`` of :class:`GymnasiumEnv` step for step.

Inputs are checked on the host, in the adapters' own methods (so ``env.unwrapped.step(99)`` is
refused too): actions by :func:`~accelrl.envs.spaces.check_action` in ``step`` (``TypeError``
for the wrong type, :class:`~accelrl.envs.spaces.InvalidActionError` for the wrong shape or
range), params by :func:`~accelrl.envs.checks.check_params` at construction and at every
``reset`` after ``env.params`` was replaced. Finite continuous actions outside the bounds are
passed on; the environments clip them.
"""

from __future__ import annotations

import numbers
from functools import lru_cache, partial
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector.utils import batch_space

from accelrl.envs import registry
from accelrl.envs.checks import check_int, check_params
from accelrl.envs.spaces import check_action, to_gymnasium_space, to_numpy
from accelrl.envs.vec import select_copies, transition

NAMESPACE = "accelrl"
_KEY_HIGH = 2**31 - 1


@lru_cache(maxsize=64)
def _compiled(env_id: str, kwargs_items: tuple) -> tuple:
    """One environment object and its jitted functions per (id, kwargs), shared by instances."""
    env, params = registry.make(env_id, **dict(kwargs_items))

    def reset_one(seed, params):
        return env.reset_env(jax.random.key(seed), params)

    def step_one(seed, state, action, params):
        return transition(env, jax.random.key(seed), state, action, params)

    reset_j = jax.jit(reset_one)
    step_j = jax.jit(step_one)

    @jax.jit
    def vec_reset(seeds, params):
        return jax.vmap(reset_one, in_axes=(0, None))(seeds, params)

    @jax.jit
    def vec_step(seeds, state, action, autoreset, params):
        obs_st, st_st, reward, term, trunc, info = jax.vmap(step_one, in_axes=(0, 0, 0, None))(
            seeds, state, action, params
        )

        def with_reset(_):
            obs_re, st_re = jax.vmap(reset_one, in_axes=(0, None))(seeds, params)
            return select_copies(autoreset, obs_re, obs_st), select_copies(autoreset, st_re, st_st)

        obs, state = jax.lax.cond(jnp.any(autoreset), with_reset, lambda _: (obs_st, st_st), None)
        reward = jnp.where(autoreset, 0.0, reward)
        term = jnp.where(autoreset, False, term)
        trunc = jnp.where(autoreset, False, trunc)
        return obs, state, reward, term, trunc, info

    return env, params, reset_j, step_j, vec_reset, vec_step


def cached_build(build: Any, env_id: str, kwargs: dict[str, Any]) -> tuple:
    """``build(env_id, kwargs_items)`` through its ``lru_cache`` when the kwargs are hashable.

    Instances with the same id and kwargs share one environment object and its compiled
    functions; unhashable kwargs (arrays, lists) build a fresh, unshared one.
    """
    items = tuple(sorted(kwargs.items(), key=lambda kv: kv[0]))
    try:
        hash(items)
    except TypeError:
        return build.__wrapped__(env_id, items)
    return build(env_id, items)


def _build(env_id: str, kwargs: dict[str, Any]) -> tuple:
    return cached_build(_compiled, env_id, kwargs)


def _info_to_numpy(info: dict) -> dict:
    out = {}
    for k, v in info.items():
        if isinstance(v, dict):
            out[k] = _info_to_numpy(v)
        else:
            out[k] = np.asarray(v)
    return out


class _CheckedParams:
    """``self.params`` checked by :func:`check_params` once per params object (host side)."""

    env: Any
    params: Any
    _checked: Any = None

    def _check_params(self) -> None:
        if self.params is not self._checked:
            check_params(self.env, self.params)
            self._checked = self.params


class GymnasiumEnv(_CheckedParams, gymnasium.Env):
    """A single accelrl/gymnax environment as a ``gymnasium.Env`` (no auto-reset).

    Args:
        env_id: accelrl or gymnax id.
        render_mode: ``None`` or ``"rgb_array"`` (environments with a ``render`` method).
        env_params: params to use instead of the environment's defaults (unbatched; checked
            by :func:`~accelrl.envs.checks.check_params` here and when replaced before a reset).
        **kwargs: constructor arguments passed to :func:`accelrl.envs.make`.

    Raises:
        ValueError, TypeError: a multi-agent id, bad constructor arguments or params, an
            unsupported render mode; ``step`` raises them for invalid actions (see the module
            docstring).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, env_id: str, render_mode: str | None = None, env_params: Any = None, **kwargs
    ):
        if registry.is_multi_agent(env_id):
            raise ValueError(
                f"{env_id!r} is multi-agent: use accelrl.envs.pettingzoo.parallel_env({env_id!r})"
            )
        self.env_id = env_id
        self.env, default_params, self._reset, self._step, _, _ = _build(env_id, kwargs)
        self.params = default_params if env_params is None else env_params
        self._check_params()
        can_render = hasattr(self.env, "render")
        self.metadata = {**self.metadata, "render_modes": ["rgb_array"] if can_render else []}
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} not supported by {env_id!r}; "
                f"supported: {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.observation_space = to_gymnasium_space(self.env.observation_space(self.params))
        self.action_space = to_gymnasium_space(self.env.action_space(self.params))
        self._state = None
        self._history: list = []

    def _next_seed(self) -> int:
        return int(self.np_random.integers(0, _KEY_HIGH))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._check_params()
        obs, self._state = self._reset(self._next_seed(), self.params)
        self._history = [self._state] if self.render_mode == "rgb_array" else []
        return to_numpy(obs, self.observation_space), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        act = check_action(action, self.action_space)
        obs, self._state, reward, term, trunc, info = self._step(
            self._next_seed(), self._state, act, self.params
        )
        if self.render_mode == "rgb_array":
            self._history.append(self._state)
        return (
            to_numpy(obs, self.observation_space),
            float(reward),
            bool(term),
            bool(trunc),
            _info_to_numpy(info),
        )

    @property
    def state(self) -> Any:
        """The current (jax) environment state."""
        return self._state

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if not self._history:
            raise RuntimeError("call reset() before render()")
        return self.env.render(self._history, self.params)


class GymnasiumVectorEnv(_CheckedParams, gymnasium.vector.VectorEnv):
    """``num_envs`` copies stepped in one jitted call; autoreset mode NEXT_STEP.

    Args:
        env_id: a single-agent accelrl or gymnax id.
        num_envs: number of copies, an integer >= 1.
        env_params: params shared by every copy (unbatched; checked as :class:`GymnasiumEnv`
            checks them).
        **kwargs: constructor arguments passed to :func:`accelrl.envs.make`.

    ``step(actions)`` takes actions of shape ``[num_envs, *single_action_space.shape]``
    (``action_space``), checked as :class:`GymnasiumEnv` checks one.
    """

    def __init__(self, env_id: str, num_envs: int = 1, env_params: Any = None, **kwargs):
        if registry.is_multi_agent(env_id):
            raise ValueError(f"{env_id!r} is multi-agent; gymnasium vector envs are single-agent")
        num_envs = check_int("num_envs", num_envs, minimum=1)
        kwargs.pop("render_mode", None)
        self.env_id = env_id
        self.env, default_params, _, _, self._vreset, self._vstep = _build(env_id, kwargs)
        self.params = default_params if env_params is None else env_params
        self._check_params()
        self.num_envs = num_envs
        self.metadata = {"autoreset_mode": gymnasium.vector.AutoresetMode.NEXT_STEP}
        self.single_observation_space = to_gymnasium_space(self.env.observation_space(self.params))
        self.single_action_space = to_gymnasium_space(self.env.action_space(self.params))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs = [np.random.default_rng() for _ in range(self.num_envs)]
        self._state = None
        self._autoreset = np.zeros(self.num_envs, bool)

    def _seeds(self) -> np.ndarray:
        return np.array([int(r.integers(0, _KEY_HIGH)) for r in self._rngs], np.uint32)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if seed is not None:
            if isinstance(seed, numbers.Integral):
                seeds = [int(seed) + i for i in range(self.num_envs)]
            else:
                seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} copies")
            self._rngs = [gymnasium.utils.seeding.np_random(s)[0] for s in seeds]
        self._check_params()
        obs, self._state = self._vreset(self._seeds(), self.params)
        self._autoreset[:] = False
        return to_numpy(obs, self.observation_space), {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        act = check_action(actions, self.action_space, "actions")
        obs, self._state, reward, term, trunc, info = self._vstep(
            self._seeds(), self._state, act, self._autoreset, self.params
        )
        term, trunc = np.asarray(term), np.asarray(trunc)
        self._autoreset = term | trunc
        return (
            to_numpy(obs, self.observation_space),
            np.asarray(reward, np.float64),
            term,
            trunc,
            _info_to_numpy(info),
        )


def _entry_point(env_id: str):
    return partial(GymnasiumEnv, env_id)


def register_with_gymnasium(env_id: str) -> None:
    """Register ``accelrl/<env_id>`` with gymnasium (no-op for multi-agent ids or repeats)."""
    if registry.is_multi_agent(env_id):
        return
    gid = f"{NAMESPACE}/{env_id}"
    if gid in gymnasium.registry:
        return
    gymnasium.register(
        id=gid,
        entry_point=_entry_point(env_id),
        vector_entry_point=partial(GymnasiumVectorEnv, env_id),
        disable_env_checker=False,
    )


def register_all() -> None:
    """Mirror every accelrl id and every gymnax id into gymnasium's ``accelrl/`` namespace."""
    for env_id in registry.registered_envs(include_gymnax=True):
        register_with_gymnasium(env_id)
    if register_with_gymnasium not in registry._register_listeners:
        registry._register_listeners.append(register_with_gymnasium)
