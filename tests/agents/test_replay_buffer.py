"""Replay buffer: wraparound, sampling only filled slots, jit and vmap over seeds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents.replay_buffer import ReplayBuffer


def _items(start, n):
    """n items whose every leaf encodes its index (so we can tell which slot was sampled)."""
    ids = jnp.arange(start, start + n, dtype=jnp.int32)
    return {"id": ids, "obs": jnp.stack([ids, -ids], axis=1).astype(jnp.float32)}


def _example():
    return {"id": jnp.zeros((), jnp.int32), "obs": jnp.zeros(2, jnp.float32)}


def test_add_fills_in_order_and_counts_size():
    buf = ReplayBuffer(capacity=5)
    state = buf.init(_example())
    assert state.data["obs"].shape == (5, 2) and state.data["id"].dtype == jnp.int32
    state = buf.add(state, _items(1, 3))
    np.testing.assert_array_equal(state.data["id"], [1, 2, 3, 0, 0])
    assert int(state.size) == 3 and int(state.position) == 3


def test_wraparound_overwrites_oldest():
    buf = ReplayBuffer(capacity=5)
    state = buf.init(_example())
    add = jax.jit(buf.add)
    state = add(state, _items(1, 3))  # 1 2 3 . .
    state = add(state, _items(4, 3))  # 6 2 3 4 5
    np.testing.assert_array_equal(state.data["id"], [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(state.data["obs"][0], [6.0, -6.0])
    assert int(state.size) == 5 and int(state.position) == 1
    state = add(state, _items(7, 5))  # a whole capacity at once, from slot 1: 11 7 8 9 10
    np.testing.assert_array_equal(state.data["id"], [11, 7, 8, 9, 10])
    assert int(state.size) == 5 and int(state.position) == 1


def test_add_more_than_capacity_rejected():
    buf = ReplayBuffer(capacity=2)
    with pytest.raises(ValueError, match="capacity"):
        buf.add(buf.init(_example()), _items(0, 3))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=0)


def test_sample_only_filled_slots():
    buf = ReplayBuffer(capacity=100)
    state = buf.add(buf.init(_example()), _items(1, 7))  # ids 1..7, slots 7..99 empty (id 0)
    batch = jax.jit(buf.sample, static_argnums=2)(state, jax.random.key(0), 2000)
    ids = np.asarray(batch["id"])
    assert ids.shape == (2000,) and batch["obs"].shape == (2000, 2)
    assert ids.min() >= 1 and ids.max() <= 7
    assert set(ids.tolist()) == set(range(1, 8))  # uniform over all filled slots
    np.testing.assert_array_equal(batch["obs"][:, 0], ids)  # leaves stay aligned


def test_vmap_over_seeds_gives_independent_buffers():
    buf = ReplayBuffer(capacity=4)
    keys = jax.random.split(jax.random.key(1), 3)

    def one_seed(key):
        state = buf.init(_example())
        n = jax.random.randint(key, (), 1, 100)
        state = buf.add(state, {"id": jnp.full(3, n), "obs": jnp.zeros((3, 2))})
        return state, buf.sample(state, key, 16)["id"]

    states, ids = jax.jit(jax.vmap(one_seed))(keys)
    assert states.data["id"].shape == (3, 4)
    np.testing.assert_array_equal(states.size, [3, 3, 3])
    for s in range(3):  # every seed samples its own contents
        assert np.all(np.asarray(ids[s]) == np.asarray(states.data["id"][s, 0]))
