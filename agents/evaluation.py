"""Evaluation: roll a policy through a fresh batched copy of the environment.

Training and evaluation draw their randomness from disjoint streams of the same seed
(:func:`training_key` and :func:`evaluation_key` fold different tags into ``PRNGKey(seed)``),
so evaluation episodes use starts and environment noise that training never saw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.vec import VecEnv, episode_done, select_copies

_TRAIN_TAG = 0x7A1
_EVAL_TAG = 0xE7A1


def training_key(seed: int) -> jax.Array:
    """The key training of ``seed`` starts from."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _TRAIN_TAG)


def evaluation_key(seed: int) -> jax.Array:
    """The key evaluation of ``seed`` uses; independent of everything training draws."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_TAG)


def max_episode_steps(env_params: Any, default: int = 10_000) -> int:
    """Episode step cap from ``env_params.max_steps_in_episode`` (gymnax; the largest for
    per-episode params), else ``default``."""
    value = getattr(env_params, "max_steps_in_episode", None)
    if value is None:
        return default
    try:
        return int(np.max(np.asarray(value)))
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return default  # traced params


class _EvalCarry(NamedTuple):
    key: jax.Array
    obs: Any
    env_state: Any
    returns: jax.Array  # f32[N] return of each copy's first episode so far
    lengths: jax.Array  # i32[N] its length so far
    last_info: Any  # info entries at each copy's last step so far
    active: jax.Array  # bool[N] first episode still running
    t: jax.Array  # i32[] steps taken


def _per_copy_info(info: dict[str, Any], n: int) -> dict[str, Any]:
    """The ``info`` entries that hold one value per copy (leading axis ``n``)."""
    skip = ("final_observation", "done")
    return {
        k: v
        for k, v in info.items()
        if k not in skip
        and all(jnp.ndim(x) >= 1 and jnp.shape(x)[0] == n for x in jax.tree.leaves(v))
    }


def evaluate_policy_episodes(
    env: Any,
    env_params: Any,
    policy: Callable[[Any, jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    max_steps: int,
    obs_fn: Callable[[Any], Any] = lambda obs: obs,
) -> dict[str, Any]:
    """Per-episode records of ``num_episodes`` episodes, one per copy of ``env``.

    Args:
        env: the single (unbatched) environment.
        env_params: its params: unbatched (every episode the same task) or with a leading
            ``[num_episodes]`` axis on some leaves (one task per episode, e.g. held-out tasks).
        policy: ``(obs[N], key) -> action[N]`` on normalised observations.
        key: evaluation key (see :func:`evaluation_key`).
        num_episodes: ``N``, the number of parallel copies (one episode each).
        max_steps: cap on the number of steps (the episodes' own truncation normally ends
            them first).
        obs_fn: observation transform (frozen normalisation statistics).

    Returns:
        ``{"return": f32[N], "length": i32[N], **info}``: the undiscounted return and length of
        each copy's first episode, and each per-copy ``info`` entry's value at that episode's
        last step (ThreeBody's ``total_substeps`` and ``energy_error``, for example).
    """
    venv = VecEnv(env, num_episodes)
    key, k_reset = jax.random.split(key)
    obs, env_state = venv.reset(k_reset, env_params)
    # The info structure, from an abstract step (nothing runs).
    probe = jax.eval_shape(
        lambda k, s, o: venv.step(k, s, policy(obs_fn(o), k), env_params)[5], key, env_state, obs
    )
    info0 = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), _per_copy_info(probe, num_episodes))

    def cond(c: _EvalCarry) -> jax.Array:
        return jnp.any(c.active) & (c.t < max_steps)

    def body(c: _EvalCarry) -> _EvalCarry:
        key, k_act, k_env = jax.random.split(c.key, 3)
        action = policy(obs_fn(c.obs), k_act)
        obs, env_state, reward, terminated, truncated, info = venv.step(
            k_env, c.env_state, action, env_params
        )
        returns = c.returns + jnp.where(c.active, reward.astype(jnp.float32), 0.0)
        lengths = c.lengths + c.active.astype(jnp.int32)
        last_info = select_copies(c.active, _per_copy_info(info, num_episodes), c.last_info)
        active = c.active & ~episode_done(terminated, truncated)
        return _EvalCarry(key, obs, env_state, returns, lengths, last_info, active, c.t + 1)

    n = num_episodes
    init = _EvalCarry(
        key,
        obs,
        env_state,
        jnp.zeros(n),
        jnp.zeros(n, jnp.int32),
        info0,
        jnp.ones(n, bool),
        jnp.int32(0),
    )
    out = jax.lax.while_loop(cond, body, init)
    return {"return": out.returns, "length": out.lengths, **out.last_info}


def evaluate_policy(
    env: Any,
    env_params: Any,
    policy: Callable[[Any, jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    max_steps: int,
    obs_fn: Callable[[Any], Any] = lambda obs: obs,
) -> jax.Array:
    """Undiscounted returns ``f32[N]`` of ``num_episodes`` episodes, one per copy of ``env``
    (see :func:`evaluate_policy_episodes` for the arguments)."""
    return evaluate_policy_episodes(env, env_params, policy, key, num_episodes, max_steps, obs_fn)[
        "return"
    ]


class Rollout(NamedTuple):
    """What a policy visited (leading axes ``[T, N]``): snapshot banks are built from it."""

    env_state: Any
    """The environment state each step acted in."""
    obs: Any
    """The raw (unnormalised) observation each step acted on."""
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    value: jax.Array
    """The agent's value estimate of ``obs`` (``f32``; zeros when no value function is given)."""


def rollout_policy(
    env: Any,
    env_params: Any,
    policy: Callable[[Any, jax.Array], jax.Array],
    key: jax.Array,
    num_envs: int,
    num_steps: int,
    obs_fn: Callable[[Any], Any] = lambda obs: obs,
    value_fn: Callable[[Any], jax.Array] | None = None,
) -> Rollout:
    """Roll ``policy`` for ``num_steps`` steps of ``num_envs`` fresh copies of ``env`` (episodes
    restart with ``reset_env`` as they end) and return every visited state.

    ``value_fn`` maps normalised observations ``[N, ...]`` to ``f32[N]``.
    """
    venv = VecEnv(env, num_envs)
    key, k_reset = jax.random.split(key)
    obs, env_state = venv.reset(k_reset, env_params)

    def step(carry, _):
        key, obs, env_state = carry
        key, k_act, k_env = jax.random.split(key, 3)
        normed = obs_fn(obs)
        action = policy(normed, k_act)
        value = value_fn(normed) if value_fn is not None else jnp.zeros(num_envs)
        next_obs, next_state, reward, terminated, truncated, _ = venv.step(
            k_env, env_state, action, env_params
        )
        out = Rollout(
            env_state,
            obs,
            action,
            reward.astype(jnp.float32),
            terminated,
            truncated,
            value.astype(jnp.float32),
        )
        return (key, next_obs, next_state), out

    _, traj = jax.lax.scan(step, (key, obs, env_state), None, num_steps)
    return traj


def evaluate_seeds(
    agent: Any, state: Any, seeds: list[int], num_episodes: int, deterministic: bool = True
) -> dict[str, Any]:
    """Evaluate a seed-batched train state; one row of ``num_episodes`` returns per seed.

    Each seed is evaluated with :func:`evaluation_key(seed)`, which training never uses.

    Returns:
        A JSON-ready summary: ``mean_return`` (over seeds of the per-seed means),
        ``std_return`` (across seeds), ``returns`` (per-seed mean return, aligned with
        ``seeds``), ``episode_returns`` (``[S][num_episodes]``), and the settings.
    """
    import numpy as np

    keys = jnp.stack([evaluation_key(s) for s in seeds])
    returns = jax.vmap(lambda s, k: agent.evaluate(s, k, num_episodes, deterministic))(state, keys)
    returns = np.asarray(jax.device_get(returns), np.float64)
    per_seed = returns.mean(axis=1)
    return {
        "mean_return": float(per_seed.mean()),
        "std_return": float(per_seed.std()),
        "returns": [float(x) for x in per_seed],
        "seeds": [int(s) for s in seeds],
        "episode_returns": returns.tolist(),
        "num_episodes": int(num_episodes),
        "deterministic": bool(deterministic),
        "update_step": int(np.asarray(state.update_step).reshape(-1)[0]),
        "env_steps": int(np.asarray(state.env_steps).reshape(-1)[0]),
        "evaluation_keys": "fold_in(PRNGKey(seed), 0xE7A1); training uses fold_in(PRNGKey(seed), 0x7A1)",
    }


__all__ = [
    "Rollout",
    "evaluate_policy",
    "evaluate_policy_episodes",
    "evaluate_seeds",
    "evaluation_key",
    "max_episode_steps",
    "rollout_policy",
    "training_key",
]
