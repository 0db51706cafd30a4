"""Generalised advantage estimation (Schulman et al., 2016), written once for all agents.

Time-major arrays ``[T, ...]``. Truncation and termination are told apart: the bootstrap value
``next_values[t]`` is the critic's value of the *true* next observation (``final_observation``
when the episode ended at ``t``), cut by ``terminated[t]`` only; the recursion is cut by
``done[t] = terminated[t] | truncated[t]`` (the next step belongs to a new episode).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: jax.Array | float,
    gae_lambda: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets.

    ``delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t`` and
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}`` with ``A_T = 0``.

    Args:
        rewards: ``f32[T, ...]``.
        values: ``f32[T, ...]`` critic values of the observations acted on.
        next_values: ``f32[T, ...]`` critic values of the next observations before any reset.
        terminated: ``bool[T, ...]`` the episode reached a terminal state (no bootstrap).
        done: ``bool[T, ...]`` the episode ended (terminated or truncated).
        gamma: discount.
        gae_lambda: GAE lambda.

    Returns:
        ``(advantages f32[T, ...], returns f32[T, ...])`` with ``returns = advantages + values``.
    """
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_term * next_values - values

    def step(next_adv, x):
        delta, nd = x
        adv = delta + gamma * gae_lambda * nd * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True)
    return advantages, advantages + values


__all__ = ["gae"]
