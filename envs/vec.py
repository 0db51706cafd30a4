"""Batched environments: one wrapper with a leading batch axis, and wrappers at that level.

``VecEnv(env, num_envs)`` runs ``num_envs`` copies of a single-agent (gymnax) or multi-agent
(:class:`~accelrl.envs.multi_agent.MultiAgentEnv`) environment:

* ``reset(key, params) -> obs[B, ...], state``
* ``step(key, state, action[B, ...], params) -> obs[B], state, reward[B], terminated[B],
  truncated[B], info`` with ``info["final_observation"]`` (the observation before a reset).

The batched wrapper owns resets: it calls ``step_env`` (never gymnax's own auto-resetting
``step``) and, only when some copy finished, asks its *reset strategy*
(:mod:`accelrl.envs.reset`) for fresh starts. The default, ``ResetEnv``, is ``reset_env`` with
the current params, on a fast path whose state is the environment's own; a curriculum teacher
(new task params per episode) or a snapshot bank (stored states with a step limit) is a strategy
with state of its own, carried in the batched state (:class:`VecEnvState`). Params are shared by
the batch by default; any params leaf may carry a leading batch axis (one task per copy).
Agents call :meth:`BatchedEnv.on_update` once per update (the strategy's heavy work) and add
:meth:`BatchedEnv.metrics` to their metrics.

Wrappers with state shared by all copies (episode statistics, observation normalisation,
curricula) subclass :class:`BatchedWrapper`. Agents recognise a batched env by
``isinstance(env, BatchedEnv)`` and wrap a plain env in :class:`VecEnv` themselves.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from accelrl._lax import run_if
from accelrl.envs.checks import check_int, check_params
from accelrl.envs.multi_agent import MultiAgentEnv
from accelrl.envs.reset import NO_LIMIT, ResetEnv, ResetStrategy, StepRecord, broadcast_params


def params_in_axes(params: Any, reference: Any) -> Any:
    """vmap ``in_axes`` for ``params``: 0 for leaves with one more dim than ``reference``.

    ``reference`` is the environment's ``default_params`` (unbatched). Leaves with the same
    number of dims are shared by the batch (``None``).
    """
    return jax.tree.map(
        lambda p, r: 0 if jnp.ndim(p) == jnp.ndim(r) + 1 else None, params, reference
    )


def episode_done(terminated: Any, truncated: Any) -> jax.Array:
    """Whether an episode ended: arrays for single-agent, ``"__all__"`` for multi-agent dicts."""
    if isinstance(terminated, dict):
        return terminated["__all__"] | truncated["__all__"]
    return terminated | truncated


def transition(env: Any, key: jax.Array, state: Any, action: Any, params: Any):
    """One step of one copy without reset: ``obs, state, reward, terminated, truncated, info``.

    Works for gymnax environments (``step_env`` + ``is_truncated``) and multi-agent ones.
    """
    if isinstance(env, MultiAgentEnv):
        return env.transition(key, state, action, params)
    obs, state, reward, terminated, info = env.step_env(key, state, action, params)
    truncated = env.is_truncated(state, params)
    return obs, state, reward, jnp.asarray(terminated, bool), jnp.asarray(truncated, bool), info


def select_copies(mask: jax.Array, a: Any, b: Any) -> Any:
    """Per-copy select over pytrees whose leaves have a leading batch axis."""

    def sel(x, y):
        m = mask.reshape(mask.shape + (1,) * (jnp.ndim(x) - 1))
        return jnp.where(m, x, y)

    return jax.tree.map(sel, a, b)


class BatchedEnv:
    """Base class of everything with a leading batch axis (``VecEnv`` and its wrappers)."""

    num_envs: int
    env: Any  # the single (unbatched) environment

    @property
    def default_params(self) -> Any:
        return self.env.default_params

    @property
    def is_multi_agent(self) -> bool:
        return isinstance(self.env, MultiAgentEnv)

    @property
    def agents(self) -> tuple[str, ...]:
        return self.env.agents

    @property
    def unwrapped(self) -> VecEnv:
        raise NotImplementedError

    def single_observation_space(self, params: Any = None, agent: str | None = None):
        """Observation space of one copy (``agent`` for multi-agent environments)."""
        params = self.default_params if params is None else params
        if self.is_multi_agent:
            return self.env.observation_space(agent, params)
        return self.env.observation_space(params)

    def single_action_space(self, params: Any = None, agent: str | None = None):
        """Action space of one copy (``agent`` for multi-agent environments)."""
        params = self.default_params if params is None else params
        if self.is_multi_agent:
            return self.env.action_space(agent, params)
        return self.env.action_space(params)

    def check_params(self, params: Any) -> None:
        """Refuse params that do not fit the environment or would produce NaN, on the host.

        :func:`accelrl.envs.checks.check_params` with leaves of the environment's default shape
        or with a leading ``[num_envs]`` axis (one task per copy). Call it where params enter
        from the host (the agents do at construction); ``reset`` and ``step`` run inside jit
        and check nothing.

        Raises:
            TypeError, ValueError: as :func:`~accelrl.envs.checks.check_params`.
        """
        check_params(self.env, params, batch_size=self.num_envs)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        raise NotImplementedError

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        raise NotImplementedError

    def on_update(self, state: Any, update_index: jax.Array) -> Any:
        """The agent-update boundary (once per update, from the agent skeleton): the reset
        strategy's heavy work. ``update_index`` is ``i32[]``, unbatched under a seed vmap."""
        return state

    def metrics(self, state: Any) -> dict[str, jax.Array]:
        """The reset strategy's numbers for the agent's per-update metrics (``f32[]`` each)."""
        return {}

    @property
    def strategy(self) -> ResetStrategy:
        """The reset strategy of the underlying :class:`VecEnv`."""
        return self.unwrapped.strategy

    def strategy_state(self, state: Any) -> Any:
        """The reset strategy's state inside this env's batched ``state`` (``()`` for the
        default strategy)."""
        raise NotImplementedError

    def with_strategy_state(self, state: Any, strategy_state: Any) -> Any:
        """``state`` with the reset strategy's state replaced (the default strategy has none:
        ``state`` is returned as it is)."""
        raise NotImplementedError


@struct.dataclass
class VecEnvState:
    """Batched state of a :class:`VecEnv` with a (non-default) reset strategy."""

    env: Any
    """Environment states ``[B, ...]``."""
    params: Any
    """Per-copy params ``[B, ...]``: the task each copy runs until its episode ends."""
    steps: jax.Array
    """``i32[B]`` steps of the current episode."""
    step_limit: jax.Array
    """``i32[B]`` steps after which the current episode is truncated."""
    episode_return: jax.Array
    """``f32[B]`` undiscounted return of the current episode."""
    strategy: Any
    """The reset strategy's state."""


def _mean_reward(reward: Any) -> jax.Array:
    if isinstance(reward, dict):
        return jnp.mean(jnp.stack([r.astype(jnp.float32) for r in reward.values()]), axis=0)
    return reward.astype(jnp.float32)


def _cut(terminated: Any, truncated: Any, limit_hit: jax.Array) -> Any:
    """``truncated`` with the step limit applied (not where the episode terminated)."""
    if isinstance(truncated, dict):
        return {a: t | (limit_hit & ~terminated[a]) for a, t in truncated.items()}
    return truncated | (limit_hit & ~terminated)


class VecEnv(BatchedEnv):
    """``num_envs`` copies of ``env`` with wrapper-owned resets.

    Args:
        env: a gymnax ``Environment`` or an accelrl ``MultiAgentEnv``.
        num_envs: batch size ``B``.
        strategy: what a fresh start is (:mod:`accelrl.envs.reset`); default
            :class:`~accelrl.envs.reset.ResetEnv`, ``reset_env`` with the copy's params.

    With the default strategy the state is the batched environment state (every leaf has
    leading axis ``B``); with any other it is a :class:`VecEnvState` holding the environment
    state, each copy's params, step counters and limits, and the strategy's state.
    """

    def __init__(self, env: Any, num_envs: int, strategy: ResetStrategy | None = None):
        if isinstance(env, BatchedEnv):
            raise TypeError("VecEnv wraps a single environment, got an already batched one")
        num_envs = check_int("VecEnv: num_envs", num_envs, minimum=1)
        if strategy is not None and not isinstance(strategy, ResetStrategy):
            raise TypeError(f"strategy must be a ResetStrategy, got {type(strategy).__name__}")
        self.env = env
        self.num_envs = int(num_envs)
        self._strategy = ResetEnv() if strategy is None else strategy
        # The default strategy takes the fast path: today's state layout, no per-copy bookkeeping.
        self.plain = type(self._strategy) is ResetEnv

    @property
    def strategy(self) -> ResetStrategy:
        return self._strategy

    @property
    def unwrapped(self) -> VecEnv:
        return self

    def _params(self, params: Any) -> tuple[Any, Any]:
        params = self.default_params if params is None else params
        return params, params_in_axes(params, self.default_params)

    def reset_copies(self, key: jax.Array, params: Any) -> tuple[Any, Any]:
        """Fresh starts for all ``B`` copies (the default reset hook): ``obs[B], state``."""
        params, axes = self._params(params)
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset_env, in_axes=(0, axes))(keys, params)

    @partial(jax.jit, static_argnums=0)
    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        if self.plain:
            return self.reset_copies(key, params)
        params, _ = self._params(params)
        base = broadcast_params(params, self.default_params, self.num_envs)
        k_init, k_start = jax.random.split(key)
        s_state = self._strategy.init(k_init, self.env, base, self.num_envs)
        everyone = jnp.ones(self.num_envs, bool)
        starts, s_state = self._strategy.starts(k_start, s_state, self.env, base, everyone)
        state = VecEnvState(
            env=starts.env_state,
            params=starts.params,
            steps=jnp.zeros(self.num_envs, jnp.int32),
            step_limit=self._limit(starts.step_limit),
            episode_return=jnp.zeros(self.num_envs, jnp.float32),
            strategy=s_state,
        )
        return starts.obs, state

    def _limit(self, step_limit: Any) -> jax.Array:
        if step_limit is None:
            return jnp.full(self.num_envs, NO_LIMIT, jnp.int32)
        return jnp.broadcast_to(jnp.asarray(step_limit, jnp.int32), (self.num_envs,))

    def reset_done(
        self, key: jax.Array, obs: Any, state: Any, done: jax.Array, params: Any
    ) -> tuple[Any, Any]:
        """Replace the copies where ``done`` by fresh starts (default strategy).

        The reset hook runs only when at least one copy finished, so expensive resets are not
        paid on every step; under an outer ``vmap`` (over seeds) only when a copy of some seed
        finished (:func:`~accelrl._lax.run_if`; a ``lax.cond`` would become a select there).
        """

        def do_reset(current):
            key, params, done, obs, state = current
            obs_re, state_re = self.reset_copies(key, params)
            return (
                jax.random.fold_in(key, 1),  # a key that changes keeps the draws in the branch
                params,
                done,
                select_copies(done, obs_re, obs),
                select_copies(done, state_re, state),
            )

        return run_if(jnp.any(done), do_reset, (key, params, done, obs, state))[3:]

    @partial(jax.jit, static_argnums=0)
    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        if not self.plain:
            return self._step_with_strategy(key, state, action, params)
        params, axes = self._params(params)
        key_reset, key_step = jax.random.split(key)
        keys = jax.random.split(key_step, self.num_envs)
        step_fn = partial(transition, self.env)
        obs_st, state_st, reward, terminated, truncated, info = jax.vmap(
            step_fn, in_axes=(0, 0, 0, axes)
        )(keys, state, action, params)
        done = episode_done(terminated, truncated)
        obs, state = self.reset_done(key_reset, obs_st, state_st, done, params)
        info = {**info, "final_observation": obs_st, "done": done}
        return obs, state, reward, terminated, truncated, info

    def _step_with_strategy(self, key: jax.Array, state: VecEnvState, action: Any, params: Any):
        """Step with each copy's own params, apply step limits, tell the strategy, and ask it
        for fresh starts where copies finished."""
        params, _ = self._params(params)
        key_reset, key_step = jax.random.split(key)
        keys = jax.random.split(key_step, self.num_envs)
        obs_st, env_st, reward, terminated, truncated, info = jax.vmap(
            partial(transition, self.env)
        )(keys, state.env, action, state.params)
        steps = state.steps + 1
        truncated = _cut(terminated, truncated, steps >= state.step_limit)
        done = episode_done(terminated, truncated)
        step_reward = _mean_reward(reward)
        ret = state.episode_return + step_reward
        term_all = terminated["__all__"] if isinstance(terminated, dict) else terminated
        record = StepRecord(
            reward=step_reward,
            terminated=term_all,
            truncated=done & ~term_all,
            done=done,
            episode_return=ret,
            episode_length=steps,
            task=state.params,
        )
        s_state = self._strategy.observe(state.strategy, record)
        base = broadcast_params(params, self.default_params, self.num_envs)

        def do_reset(current):
            key, base, done, obs, env_state, task, limit, s_state = current
            starts, s_state = self._strategy.starts(key, s_state, self.env, base, done)
            return (
                jax.random.fold_in(key, 1),  # a key that changes keeps the draws in the branch
                base,
                done,
                select_copies(done, starts.obs, obs),
                select_copies(done, starts.env_state, env_state),
                select_copies(done, starts.params, task),
                jnp.where(done, self._limit(starts.step_limit), limit),
                s_state,
            )

        current = (key_reset, base, done, obs_st, env_st, state.params, state.step_limit, s_state)
        obs, env_state, task, limit, s_state = run_if(jnp.any(done), do_reset, current)[3:]
        new = VecEnvState(
            env=env_state,
            params=task,
            steps=jnp.where(done, 0, steps),
            step_limit=limit,
            episode_return=jnp.where(done, 0.0, ret),
            strategy=s_state,
        )
        info = {**info, "final_observation": obs_st, "done": done}
        return obs, new, reward, terminated, truncated, info

    def strategy_state(self, state: Any) -> Any:
        return () if self.plain else state.strategy

    def with_strategy_state(self, state: Any, strategy_state: Any) -> Any:
        return state if self.plain else state.replace(strategy=strategy_state)

    def on_update(self, state: Any, update_index: jax.Array) -> Any:
        if self.plain:
            return state
        return state.replace(strategy=self._strategy.on_update(state.strategy, update_index))

    def metrics(self, state: Any) -> dict[str, jax.Array]:
        if self.plain:
            return {}
        return self._strategy.metrics(state.strategy)


class BatchedWrapper(BatchedEnv):
    """Base for wrappers at the batch level; delegates to ``self.inner``."""

    def __init__(self, env: BatchedEnv):
        if not isinstance(env, BatchedEnv):
            raise TypeError(
                f"{type(self).__name__} wraps a batched env (VecEnv or a wrapper of it), "
                f"got {type(env).__name__}"
            )
        self.inner = env
        self.env = env.env
        self.num_envs = env.num_envs

    @property
    def unwrapped(self) -> VecEnv:
        return self.inner.unwrapped

    def strategy_state(self, state: Any) -> Any:
        return self.inner.strategy_state(state.inner)

    def with_strategy_state(self, state: Any, strategy_state: Any) -> Any:
        return state.replace(inner=self.inner.with_strategy_state(state.inner, strategy_state))

    def on_update(self, state: Any, update_index: jax.Array) -> Any:
        return state.replace(inner=self.inner.on_update(state.inner, update_index))

    def metrics(self, state: Any) -> dict[str, jax.Array]:
        return self.inner.metrics(state.inner)

    def __getattr__(self, name: str) -> Any:  # reach inner wrappers' extras
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


@struct.dataclass
class EpisodeStatisticsState:
    inner: Any
    episode_returns: Any  # [B] (dict of [B] per agent for multi-agent)
    episode_lengths: jax.Array  # [B] int32
    returned_episode_returns: Any  # [B], return of the last finished episode per copy
    returned_episode_lengths: jax.Array  # [B]


class EpisodeStatistics(BatchedWrapper):
    """Tracks undiscounted returns and lengths, counted correctly across resets.

    Adds to ``info``: ``returned_episode`` ([B] bool, an episode ended at this step),
    ``returned_episode_returns`` and ``returned_episode_lengths`` (the finished episode's
    values where ``returned_episode``, else the last finished episode's), and
    ``episode_returns`` (running).
    """

    @partial(jax.jit, static_argnums=0)
    def reset(self, key: jax.Array, params: Any = None):
        obs, inner = self.inner.reset(key, params)
        b = self.num_envs
        zeros_r = self._zero_rewards(b)
        state = EpisodeStatisticsState(
            inner=inner,
            episode_returns=zeros_r,
            episode_lengths=jnp.zeros(b, jnp.int32),
            returned_episode_returns=zeros_r,
            returned_episode_lengths=jnp.zeros(b, jnp.int32),
        )
        return obs, state

    def _zero_rewards(self, b: int):
        if self.is_multi_agent:
            return {a: jnp.zeros(b, jnp.float32) for a in self.agents}
        return jnp.zeros(b, jnp.float32)

    @partial(jax.jit, static_argnums=0)
    def step(self, key: jax.Array, state: EpisodeStatisticsState, action: Any, params: Any = None):
        obs, inner, reward, terminated, truncated, info = self.inner.step(
            key, state.inner, action, params
        )
        done = episode_done(terminated, truncated)
        ret = jax.tree.map(lambda r, x: r + x.astype(jnp.float32), state.episode_returns, reward)
        length = state.episode_lengths + 1
        new = EpisodeStatisticsState(
            inner=inner,
            episode_returns=jax.tree.map(lambda r: r * (1 - done), ret),
            episode_lengths=length * (1 - done),
            returned_episode_returns=jax.tree.map(
                lambda r, o: jnp.where(done, r, o), ret, state.returned_episode_returns
            ),
            returned_episode_lengths=jnp.where(done, length, state.returned_episode_lengths),
        )
        info = {
            **info,
            "returned_episode": done,
            "returned_episode_returns": new.returned_episode_returns,
            "returned_episode_lengths": new.returned_episode_lengths,
            "episode_returns": ret,
        }
        return obs, new, reward, terminated, truncated, info


@struct.dataclass
class RunningMeanStd:
    """Running mean/variance over a batch axis (Chan et al. parallel update)."""

    mean: Any
    var: Any
    count: jax.Array

    @classmethod
    def create(cls, example: Any) -> RunningMeanStd:
        return cls(
            mean=jax.tree.map(lambda x: jnp.zeros(x.shape[1:], jnp.float32), example),
            var=jax.tree.map(lambda x: jnp.ones(x.shape[1:], jnp.float32), example),
            count=jnp.asarray(1e-4, jnp.float32),
        )

    def update(self, batch: Any) -> RunningMeanStd:
        n = jnp.asarray(jax.tree.leaves(batch)[0].shape[0], jnp.float32)
        tot = self.count + n

        def upd(mean, var, x):
            x = x.astype(jnp.float32)
            bm, bv = x.mean(0), x.var(0)
            delta = bm - mean
            new_mean = mean + delta * n / tot
            m2 = var * self.count + bv * n + delta**2 * self.count * n / tot
            return new_mean, m2 / tot

        out = jax.tree.map(upd, self.mean, self.var, batch)
        mean = jax.tree.map(lambda _, o: o[0], self.mean, out)
        var = jax.tree.map(lambda _, o: o[1], self.mean, out)
        return RunningMeanStd(mean=mean, var=var, count=tot)

    def normalize(self, x: Any, clip: float, eps: float = 1e-8) -> Any:
        return jax.tree.map(
            lambda v, m, s: jnp.clip((v - m) / jnp.sqrt(s + eps), -clip, clip).astype(jnp.float32),
            x,
            self.mean,
            self.var,
        )


@struct.dataclass
class NormalizeObservationState:
    inner: Any
    stats: RunningMeanStd
    update: jax.Array  # bool scalar; False freezes the statistics (evaluation)


class NormalizeObservation(BatchedWrapper):
    """Normalises observations with running statistics shared by the whole batch.

    The statistics live in the wrapper state (``state.stats``) and are updated from every
    batch of observations while ``state.update`` is True; set it False (``freeze(state)``) for
    evaluation. ``info["final_observation"]`` is normalised with the same statistics.

    Args:
        env: a batched env.
        clip: normalised observations are clipped to ``[-clip, clip]``.
        skip_keys: for dict observations, entries left untouched (default: ``"action_mask"``,
            so masked-action games keep their boolean masks).
    """

    def __init__(
        self, env: BatchedEnv, clip: float = 10.0, skip_keys: tuple[str, ...] = ("action_mask",)
    ):
        super().__init__(env)
        self.clip = float(clip)
        self.skip_keys = tuple(skip_keys)

    @staticmethod
    def freeze(state: NormalizeObservationState) -> NormalizeObservationState:
        return state.replace(update=jnp.asarray(False))

    def _part(self, obs: Any) -> Any:
        """The entries that are normalised."""
        if isinstance(obs, dict):
            return {k: v for k, v in obs.items() if k not in self.skip_keys}
        return obs

    def normalize(self, stats: RunningMeanStd, obs: Any) -> Any:
        """Normalise ``obs`` (batched) with ``stats``; skipped dict entries pass through."""
        normed = stats.normalize(self._part(obs), self.clip)
        if isinstance(obs, dict):
            return {**obs, **normed}
        return normed

    def _maybe_update(self, stats: RunningMeanStd, obs: Any, update: jax.Array) -> RunningMeanStd:
        new = stats.update(self._part(obs))
        return jax.tree.map(lambda a, b: jnp.where(update, a, b), new, stats)

    @partial(jax.jit, static_argnums=0)
    def reset(self, key: jax.Array, params: Any = None):
        obs, inner = self.inner.reset(key, params)
        stats = RunningMeanStd.create(self._part(obs)).update(self._part(obs))
        state = NormalizeObservationState(inner=inner, stats=stats, update=jnp.asarray(True))
        return self.normalize(stats, obs), state

    @partial(jax.jit, static_argnums=0)
    def step(
        self, key: jax.Array, state: NormalizeObservationState, action: Any, params: Any = None
    ):
        obs, inner, reward, terminated, truncated, info = self.inner.step(
            key, state.inner, action, params
        )
        stats = self._maybe_update(state.stats, obs, state.update)
        info = {**info, "final_observation": self.normalize(stats, info["final_observation"])}
        new = state.replace(inner=inner, stats=stats)
        return self.normalize(stats, obs), new, reward, terminated, truncated, info


def as_batched(env: Any, num_envs: int) -> BatchedEnv:
    """Return ``env`` if it is already batched (its own ``num_envs`` must match), else a VecEnv."""
    if isinstance(env, BatchedEnv):
        if env.num_envs != num_envs:
            raise ValueError(
                f"batched env has num_envs={env.num_envs} but the config asks for {num_envs}"
            )
        return env
    return VecEnv(env, num_envs)


__all__ = [
    "BatchedEnv",
    "BatchedWrapper",
    "EpisodeStatistics",
    "EpisodeStatisticsState",
    "NormalizeObservation",
    "NormalizeObservationState",
    "RunningMeanStd",
    "VecEnv",
    "VecEnvState",
    "as_batched",
    "episode_done",
    "params_in_axes",
    "select_copies",
    "transition",
]
