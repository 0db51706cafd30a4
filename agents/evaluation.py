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

from accelrl.envs.vec import VecEnv, episode_done

_TRAIN_TAG = 0x7A1
_EVAL_TAG = 0xE7A1


def training_key(seed: int) -> jax.Array:
    """The key training of ``seed`` starts from."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _TRAIN_TAG)


def evaluation_key(seed: int) -> jax.Array:
    """The key evaluation of ``seed`` uses; independent of everything training draws."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_TAG)


def max_episode_steps(env_params: Any, default: int = 10_000) -> int:
    """Episode step cap from ``env_params.max_steps_in_episode`` (gymnax), else ``default``."""
    value = getattr(env_params, "max_steps_in_episode", None)
    try:
        return int(value) if value is not None else default
    except TypeError:  # traced or batched params
        return default


class _EvalCarry(NamedTuple):
    key: jax.Array
    obs: Any
    env_state: Any
    returns: jax.Array  # f32[N] return of each copy's first episode so far
    active: jax.Array  # bool[N] first episode still running
    t: jax.Array  # i32[] steps taken


def evaluate_policy(
    env: Any,
    env_params: Any,
    policy: Callable[[Any, jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    max_steps: int,
    obs_fn: Callable[[Any], Any] = lambda obs: obs,
) -> jax.Array:
    """Undiscounted returns of ``num_episodes`` episodes, one per copy of ``env``.

    Args:
        env: the single (unbatched) environment.
        env_params: its params (unbatched).
        policy: ``(obs[N], key) -> action[N]`` on normalised observations.
        key: evaluation key (see :func:`evaluation_key`).
        num_episodes: ``N``, the number of parallel copies (one episode each).
        max_steps: cap on the number of steps (the episodes' own truncation normally ends
            them first).
        obs_fn: observation transform (frozen normalisation statistics).

    Returns:
        ``f32[N]``: the return of each copy's first episode.
    """
    venv = VecEnv(env, num_episodes)
    key, k_reset = jax.random.split(key)
    obs, env_state = venv.reset(k_reset, env_params)

    def cond(c: _EvalCarry) -> jax.Array:
        return jnp.any(c.active) & (c.t < max_steps)

    def body(c: _EvalCarry) -> _EvalCarry:
        key, k_act, k_env = jax.random.split(c.key, 3)
        action = policy(obs_fn(c.obs), k_act)
        obs, env_state, reward, terminated, truncated, _ = venv.step(
            k_env, c.env_state, action, env_params
        )
        returns = c.returns + jnp.where(c.active, reward.astype(jnp.float32), 0.0)
        active = c.active & ~episode_done(terminated, truncated)
        return _EvalCarry(key, obs, env_state, returns, active, c.t + 1)

    init = _EvalCarry(
        key, obs, env_state, jnp.zeros(num_episodes), jnp.ones(num_episodes, bool), jnp.int32(0)
    )
    return jax.lax.while_loop(cond, body, init).returns




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


__all__ = ["evaluate_policy", "evaluate_seeds", "evaluation_key", "max_episode_steps", "training_key"]
