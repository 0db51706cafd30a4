"""A jittable ring buffer that lives in the train state.

The buffer is a pure value (:class:`ReplayBufferState`): ``add`` and ``sample`` return new
values, so a whole off-policy training run (collect, store, sample, update) stays one jitted
program, the buffer is checkpointed with the rest of the train state, and ``jax.vmap`` over seeds
gives every seed its own buffer.

Example::

    buffer = ReplayBuffer(capacity=100_000)
    state = buffer.init({"obs": jnp.zeros(3), "reward": jnp.zeros(())})
    state = buffer.add(state, {"obs": obs_batch, "reward": reward_batch})  # leading axis n
    batch = buffer.sample(state, key, 256)                                 # leading axis 256
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBufferState:
    """Storage and write position of a :class:`ReplayBuffer`."""

    data: Any
    """Pytree of arrays, every leaf ``[capacity, ...]`` (slots past ``size`` hold zeros)."""
    position: jax.Array
    """int32 scalar: the slot the next item is written to."""
    size: jax.Array
    """int32 scalar: number of filled slots, at most ``capacity``."""


@dataclass(frozen=True)
class ReplayBuffer:
    """Uniform-sampling ring buffer over pytrees of transitions.

    Once full, new items overwrite the oldest. Sampling draws uniformly, with replacement, from
    the filled slots only.
    """

    capacity: int
    """Number of items (single transitions, not batches) the buffer holds."""

    def __post_init__(self):
        if int(self.capacity) < 1:
            raise ValueError(f"replay buffer capacity must be >= 1, got {self.capacity}")

    def init(self, example: Any) -> ReplayBufferState:
        """Empty buffer shaped after ``example`` (one item, no leading axis)."""
        data = jax.tree.map(
            lambda x: jnp.zeros((self.capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example
        )
        return ReplayBufferState(
            data=data, position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32)
        )

    def add(self, state: ReplayBufferState, batch: Any) -> ReplayBufferState:
        """Append ``n`` items (every leaf of ``batch`` has leading axis ``n <= capacity``)."""
        n = jax.tree.leaves(batch)[0].shape[0]
        if n > self.capacity:
            raise ValueError(f"cannot add {n} items to a buffer of capacity {self.capacity}")
        idx = (state.position + jnp.arange(n, dtype=jnp.int32)) % self.capacity
        data = jax.tree.map(lambda d, b: d.at[idx].set(b.astype(d.dtype)), state.data, batch)
        return ReplayBufferState(
            data=data,
            position=(state.position + n) % self.capacity,
            size=jnp.minimum(state.size + n, self.capacity),
        )

    def sample(self, state: ReplayBufferState, key: jax.Array, batch_size: int) -> Any:
        """``batch_size`` items drawn uniformly from the filled slots (leading axis ``batch_size``).

        Sampling an empty buffer returns slot 0 (zeros); callers wait for ``learning_starts``.
        """
        idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
        return jax.tree.map(lambda d: d[idx], state.data)


# ---------------------------------------------------------------------------------------------
# What the off-policy agents (SAC, DQN) store and how they move target networks


class Transition(NamedTuple):
    """One stored transition (leading axes added by the buffer / the batch)."""

    obs: Any
    """Observation (array, or dict with ``action_mask``)."""
    action: jax.Array
    """Continuous (SAC): the squashed action in ``[-1, 1]^D``; discrete: int32 index."""
    reward: jax.Array
    """f32 reward (unscaled)."""
    next_obs: Any
    """Next observation; for a finished episode, the pre-reset ``final_observation``."""
    terminated: jax.Array
    """f32, 1 where the episode terminated (no bootstrap); truncation leaves it 0."""


def polyak(target: Any, online: Any, tau: float | jax.Array) -> Any:
    """``(1 - tau) * target + tau * online`` leaf by leaf."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


__all__ = ["Transition", "polyak", "ReplayBuffer", "ReplayBufferState"]
