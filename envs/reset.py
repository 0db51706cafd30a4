"""Reset strategies: what a fresh start of a batched environment copy is.

:class:`~accelrl.envs.vec.VecEnv` owns resets and asks its strategy for fresh starts. The
default, :class:`ResetEnv`, is ``reset_env`` with the copy's params (the fast path: the batched
state is the environment's own). Any other strategy (a curriculum teacher choosing each
episode's task, a snapshot bank starting episodes from stored states) has state of its own,
carried inside the batched env state, so it is checkpointed, restored and vmapped over seeds
with the agent, and no agent code changes. A strategy is a set of pure functions over that
state:

* ``init(key, env, params, num_envs) -> state``;
* ``starts(key, state, env, params, mask) -> (Starts, state)``: fresh starts for the copies
  where ``mask`` (all of them at ``reset``; the finished ones after a step). A start is new
  task params (the copy keeps them and steps with them until its episode ends, so an episode
  never mixes two tasks) and/or a stored environment state with its observation, and a step
  limit after which the episode is *truncated* (not terminated: the agent bootstraps);
* ``observe(state, record) -> state``: every step, per copy, the reward, termination and
  truncation and, for finished copies, the episode's return and the task it ran (O(B) work);
* ``on_update(state, update_index) -> state``: once per agent update, called by every agent
  through the shared skeleton. ``update_index`` is unbatched under the runner's vmap over
  seeds, so ``lax.cond(update_index % R == 0, refit, ...)`` stays a real branch (a condition
  on the batched strategy state goes through :func:`accelrl._lax.run_if`); heavy work (a
  mixture refit) belongs here, never in ``observe``;
* ``metrics(state) -> {name: f32[]}``: numbers the agents add to each update's metrics.

Settings that keep shapes are *data*: a strategy names them in ``data_settings`` and keeps
each one's value in its state (a field of the same name, ``f32[]``), initialised from the
constructor's value, so members of one vmapped program may differ in them (one compile), a
checkpoint holds them and a tuner replaces them between segments (:meth:`ResetStrategy.with_data`,
through :meth:`accelrl.agents.Runner.set_strategy_data`). Settings that change shapes or
compiled constants stay constructor arguments (a different value is a different program).

A 20-line example, a strategy that cycles through a list of task values and records the
return of every finished episode per task::

    @struct.dataclass
    class CycleState:
        next_task: jax.Array            # i32[]
        totals: jax.Array               # f32[K] return credited to each task
        counts: jax.Array               # i32[K] finished episodes per task

    class CycleTasks(ResetStrategy):
        def __init__(self, values):     # e.g. Pendulum max_torque values
            self.values = jnp.asarray(values, jnp.float32)

        def init(self, key, env, params, num_envs):
            k = len(self.values)
            return CycleState(jnp.int32(0), jnp.zeros(k), jnp.zeros(k, jnp.int32))

        def starts(self, key, state, env, params, mask):
            n = mask.shape[0]
            ids = (state.next_task + jnp.cumsum(mask) - 1) % len(self.values)
            params = params.replace(max_torque=self.values[ids])
            obs, env_state = reset_copies(env, key, params)
            return Starts(obs, env_state, params), state.replace(next_task=state.next_task + mask.sum())

        def observe(self, state, record):
            ids = jnp.searchsorted(self.values, record.task.max_torque)   # the task each copy ran
            w = record.done
            return state.replace(totals=state.totals.at[ids].add(jnp.where(w, record.episode_return, 0.0)),
                                 counts=state.counts.at[ids].add(w.astype(jnp.int32)))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

NO_LIMIT = int(jnp.iinfo(jnp.int32).max)
"""Step limit meaning "no limit beyond the environment's own"."""


class Starts(NamedTuple):
    """Fresh starts for all ``B`` copies (the batched env keeps those where the mask is set)."""

    obs: Any
    """Observations ``[B, ...]``."""
    env_state: Any
    """Environment states ``[B, ...]``."""
    params: Any
    """Per-copy params ``[B, ...]`` each copy steps with until its episode ends."""
    step_limit: Any = None
    """``i32[B]`` steps after which the episode is truncated; None: :data:`NO_LIMIT`."""


class StepRecord(NamedTuple):
    """What a strategy learns every step, per copy (leading axis ``[B]``)."""

    reward: jax.Array
    """``f32[B]`` this step's reward (multi-agent: the mean over agents)."""
    terminated: jax.Array
    """``bool[B]`` the episode ended in a terminal state."""
    truncated: jax.Array
    """``bool[B]`` the episode was cut off (the env's limit or the start's step limit)."""
    done: jax.Array
    """``bool[B]`` ``terminated | truncated``: the copy restarts after this step."""
    episode_return: jax.Array
    """``f32[B]`` undiscounted return of the current episode including this step (where
    ``done``: the finished episode's return)."""
    episode_length: jax.Array
    """``i32[B]`` steps of the current episode including this step."""
    task: Any
    """The per-copy params ``[B, ...]`` this step ran with (the task the episode is credited to)."""


def broadcast_params(params: Any, reference: Any, num_envs: int) -> Any:
    """``params`` with a leading ``[num_envs]`` axis on every leaf (leaves that already carry
    one, relative to the unbatched ``reference``, are kept)."""

    def bcast(p, r):
        p = jnp.asarray(p)
        if p.ndim == jnp.ndim(r) + 1:
            return p
        return jnp.broadcast_to(p, (num_envs,) + p.shape)

    return jax.tree.map(bcast, params, reference)


def reset_copies(env: Any, key: jax.Array, params: Any) -> tuple[Any, Any]:
    """``reset_env`` of every copy with its own params (``params`` leaves lead with ``[B]``)."""
    num_envs = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(key, num_envs)
    return jax.vmap(env.reset_env)(keys, params)


class ResetStrategy:
    """Base class; its methods are the defaults (fresh ``reset_env`` starts, nothing learnt).

    Subclasses override what they need. Strategies must be hashable (they are part of a
    static, jitted environment); state belongs in the pytree ``init`` returns.
    """

    name: str = "reset_env"
    """Registered name (recorded in a run's ``config.json``)."""

    def init(self, key: jax.Array, env: Any, params: Any, num_envs: int) -> Any:
        """The strategy's state (a pytree; ``()`` when it has none)."""
        return ()

    def starts(
        self, key: jax.Array, state: Any, env: Any, params: Any, mask: jax.Array
    ) -> tuple[Starts, Any]:
        """Fresh starts for all copies; ``params`` are the per-copy base params ``[B]``,
        ``mask`` ``bool[B]`` the copies that will take them."""
        obs, env_state = reset_copies(env, key, params)
        return Starts(obs, env_state, params), state

    def observe(self, state: Any, record: StepRecord) -> Any:
        """Per-step bookkeeping (O(B))."""
        return state

    def on_update(self, state: Any, update_index: jax.Array) -> Any:
        """Once per agent update (``update_index``: ``i32[]``, unbatched under a seed vmap)."""
        return state

    def metrics(self, state: Any) -> dict[str, jax.Array]:
        """Numbers added to every update's metrics row (``f32[]`` each)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for ``config.json`` (name and settings)."""
        return {"name": self.name}

    # -- settings that are data ---------------------------------------------------------------

    data_settings: tuple[str, ...] = ()
    """Names of the settings kept in the state (shape-preserving; module docstring)."""
    data_ranges: dict[str, tuple[float, float]] = {}
    """Closed ``[low, high]`` range of each data setting that has one."""

    def data_defaults(self) -> dict[str, float]:
        """The constructor's value of each data setting."""
        return {n: float(getattr(self, n)) for n in self.data_settings}

    def check_data(self, values: Mapping[str, Any]) -> dict[str, float]:
        """``values`` as floats, checked on the host.

        Raises:
            ValueError: a name that is not a data setting, or a value outside its range.
        """
        out = {}
        for name, value in values.items():
            if name not in self.data_settings:
                known = ", ".join(self.data_settings) or "none"
                raise ValueError(
                    f"{name!r} is not a data setting of the {self.name!r} strategy (data "
                    f"settings: {known})"
                )
            v = float(value)
            low, high = self.data_ranges.get(name, (-math.inf, math.inf))
            if not (math.isfinite(v) and low <= v <= high):
                raise ValueError(f"{self.name} setting {name} must be in [{low}, {high}], got {v}")
            out[name] = v
        return out

    def data(self, state: Any) -> dict[str, jax.Array]:
        """The data settings held in ``state`` (``f32[]`` each, ``[M]`` under a vmap)."""
        return {n: getattr(state, n) for n in self.data_settings}

    def with_data(self, state: Any, values: Mapping[str, Any]) -> Any:
        """``state`` with the data settings in ``values`` replaced (the others kept); jittable,
        no checks (:meth:`check_data` on the host first)."""
        if not values:
            return state
        return state.replace(**{n: jnp.asarray(v, jnp.float32) for n, v in values.items()})


class ResetEnv(ResetStrategy):
    """The default: ``reset_env`` with the copy's params. :class:`~accelrl.envs.vec.VecEnv`
    takes its fast path for it (the batched state is the environment's own)."""


__all__ = [
    "NO_LIMIT",
    "ResetEnv",
    "ResetStrategy",
    "Starts",
    "StepRecord",
    "broadcast_params",
    "reset_copies",
]
