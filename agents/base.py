"""The agent contract and the plumbing every agent shares.

An agent (``make_ppo(config, env)``, ``make_sac(config, env)``) splits what is static from
what is data (DESIGN.md, "Contracts"):

* ``config``: a frozen dataclass fixing shapes and compilation, validated before compiling;
* ``hparams``: a ``flax.struct.dataclass`` of shape-preserving numbers, vmappable;
* ``init(key, hparams) -> state`` and a jitted ``run(state, hparams, n_updates) -> (state,
  metrics)`` with ``metrics`` a dict of ``f32[n_updates]``.

This module holds the :class:`Agent` protocol and the helpers shared by all agents: wrapping
the environment (:func:`wrap_env`), describing its action space (:func:`action_spec`),
per-update episode statistics (:func:`episode_metrics`), gradient clipping and wrapper-state
lookups.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.vec import (
    BatchedEnv,
    BatchedWrapper,
    EpisodeStatistics,
    NormalizeObservation,
    as_batched,
    params_in_axes,
)

ActionKind = Literal["discrete", "masked_discrete", "continuous"]


class UnsupportedEnvironmentError(ValueError):
    """An agent cannot act in an environment (action kind, multi-agent, observation type)."""


# ----------------------------------------------------------------------------------------------
# Environment plumbing


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """What an agent needs to know about one copy's action space."""

    kind: ActionKind
    """``"discrete"``, ``"masked_discrete"`` (observation dict with ``"action_mask"``) or
    ``"continuous"``."""
    dim: int
    """Number of actions ``K`` (discrete) or action dimension ``D`` (continuous)."""
    low: np.ndarray | None = None
    """Lower bounds ``f32[D]`` (continuous only)."""
    high: np.ndarray | None = None
    """Upper bounds ``f32[D]`` (continuous only)."""


def action_spec(env: BatchedEnv, params: Any = None) -> ActionSpec:
    """Describe the action space of a batched single-agent environment.

    Raises:
        UnsupportedEnvironmentError: for multi-agent environments or unsupported spaces.
    """
    from gymnax.environments import spaces  # gymnax imports its whole environment zoo: lazily

    if env.is_multi_agent:
        raise UnsupportedEnvironmentError(
            f"{type(env.env).__name__} is multi-agent; these agents are single-agent"
        )
    a_space = env.single_action_space(params)
    o_space = env.single_observation_space(params)
    if isinstance(a_space, spaces.Discrete):
        masked = isinstance(o_space, spaces.Dict) and "action_mask" in o_space.spaces
        return ActionSpec("masked_discrete" if masked else "discrete", int(a_space.n))
    if isinstance(a_space, spaces.Box):
        shape = tuple(a_space.shape)
        if len(shape) != 1:
            raise UnsupportedEnvironmentError(f"continuous actions must be 1-D, got shape {shape}")
        low = np.broadcast_to(np.asarray(a_space.low, np.float32), shape).copy()
        high = np.broadcast_to(np.asarray(a_space.high, np.float32), shape).copy()
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise UnsupportedEnvironmentError("continuous actions need finite bounds")
        return ActionSpec("continuous", shape[0], low, high)
    raise UnsupportedEnvironmentError(f"unsupported action space {type(a_space).__name__}")


def check_action_kind(
    agent_name: str, spec: ActionSpec, supported: tuple[str, ...], env_name: str
) -> None:
    """Raise a clear error when ``agent_name`` cannot handle ``spec.kind``."""
    if spec.kind not in supported:
        raise UnsupportedEnvironmentError(
            f"{agent_name} supports {', '.join(supported)} actions, but {env_name} has "
            f"{spec.kind} actions"
        )


def find_wrapper(env: BatchedEnv, cls: type) -> BatchedEnv | None:
    """The outermost wrapper of type ``cls`` in ``env``'s chain, or None."""
    while True:
        if isinstance(env, cls):
            return env
        if not isinstance(env, BatchedWrapper):
            return None
        env = env.inner


def find_wrapper_state(env: BatchedEnv, state: Any, cls: type) -> Any:
    """The state belonging to the outermost ``cls`` wrapper in ``env``'s chain, or None."""
    while True:
        if isinstance(env, cls):
            return state
        if not isinstance(env, BatchedWrapper):
            return None
        env, state = env.inner, state.inner


def wrap_env(
    env: Any, num_envs: int, normalize_obs: bool = False, obs_clip: float = 10.0
) -> BatchedEnv:
    """Batch a single env (or accept a batched one) and add the agent's wrappers.

    The chain is ``as_batched(env) -> [NormalizeObservation] -> EpisodeStatistics``; wrappers
    already in the chain of a batched ``env`` are not added twice.

    Args:
        env: a single environment or a :class:`BatchedEnv` (curriculum wrappers and the like).
        num_envs: batch size; must match a batched env's own.
        normalize_obs: add observation normalisation (dict observations keep their
            ``"action_mask"`` as is).
        obs_clip: clip of the normalised observations.
    """
    benv = as_batched(env, num_envs)
    if normalize_obs and find_wrapper(benv, NormalizeObservation) is None:
        benv = NormalizeObservation(benv, clip=obs_clip)
    if find_wrapper(benv, EpisodeStatistics) is None:
        benv = EpisodeStatistics(benv)
    return benv


def unbatched_params(env: BatchedEnv, env_params: Any) -> Any:
    """``env_params`` without a per-copy batch axis (for spaces and evaluation).

    Params with a leading batch axis (one task per copy) fall back to the environment's
    defaults; evaluation runs its own batch.
    """
    ref = env.default_params
    batched = any(a == 0 for a in jax.tree.leaves(params_in_axes(env_params, ref)))
    return ref if batched else env_params


def obs_normalizer(env: BatchedEnv, env_state: Any):
    """``obs -> normalised obs`` with the (frozen) statistics of ``env``'s normalisation wrapper.

    Identity when the chain has no :class:`NormalizeObservation`. Used by evaluation, which
    rolls an unwrapped copy of the environment.
    """
    wrapper = find_wrapper(env, NormalizeObservation)
    if wrapper is None:
        return lambda obs: obs
    stats = find_wrapper_state(env, env_state, NormalizeObservation).stats
    return lambda obs: wrapper.normalize(stats, obs)


# ----------------------------------------------------------------------------------------------
# Shared update maths


def episode_metrics(
    info: dict[str, Any], last_return: jax.Array, last_length: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean return and length of the episodes that finished in a rollout.

    Args:
        info: stacked ``EpisodeStatistics`` info with leading axes ``[T, B]``.
        last_return: ``f32[]`` previous value, carried forward when no episode finished
            (NaN before the first finished episode).
        last_length: ``f32[]`` likewise for lengths.

    Returns:
        ``(mean_return f32[], mean_length f32[])``.
    """
    done = info["returned_episode"].astype(jnp.float32)
    n = done.sum()
    safe = jnp.maximum(n, 1.0)
    mean_ret = (info["returned_episode_returns"] * done).sum() / safe
    mean_len = (info["returned_episode_lengths"].astype(jnp.float32) * done).sum() / safe
    return jnp.where(n > 0, mean_ret, last_return), jnp.where(n > 0, mean_len, last_length)


def global_norm(tree: Any) -> jax.Array:
    """Global L2 norm of a pytree of arrays, ``f32[]``."""
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def clip_by_global_norm(tree: Any, max_norm: jax.Array) -> tuple[Any, jax.Array]:
    """Scale ``tree`` so its global norm is at most ``max_norm`` (a traced hparam).

    Returns ``(clipped tree, norm before clipping)``. Same maths as optax's
    ``clip_by_global_norm``, but with the threshold as data so it can be vmapped.
    """
    norm = global_norm(tree)
    scale = jnp.where(norm > max_norm, max_norm / jnp.maximum(norm, 1e-12), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), tree), norm


__all__ = [
    "ActionKind",
    "ActionSpec",
    "UnsupportedEnvironmentError",
    "action_spec",
    "check_action_kind",
    "clip_by_global_norm",
    "episode_metrics",
    "find_wrapper",
    "find_wrapper_state",
    "global_norm",
    "obs_normalizer",
    "wrap_env",
]
