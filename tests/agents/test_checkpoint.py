"""Checkpoints keep every leaf's dtype, float64 physics state included."""

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.agents.checkpoint import latest_checkpoint, restore_checkpoint, save_checkpoint


def test_round_trip_keeps_dtypes_and_values(tmp_path):
    with jax.enable_x64(True):
        pos = jnp.asarray(np.linspace(0.1, 1.0, 6).reshape(3, 2) + 1e-12, jnp.float64)
    state = {
        "pos": pos,
        "w": jnp.ones((2, 3), jnp.float32),
        "step": jnp.asarray(7, jnp.int32),
        "key": jax.random.key_data(jax.random.key(3)),
    }
    hparams = {"lr": jnp.asarray(3e-4, jnp.float32)}
    save_checkpoint(tmp_path, 7, state, hparams, {"env": "test"})
    path = latest_checkpoint(tmp_path)
    restored, hp = restore_checkpoint(path, state, hparams)
    assert not jax.config.jax_enable_x64  # the x64 scope did not leak
    for k in state:
        assert restored[k].dtype == state[k].dtype, k
        np.testing.assert_array_equal(np.asarray(restored[k]), np.asarray(state[k]))
    assert restored["pos"].dtype == jnp.float64
    assert float(hp["lr"]) == np.float32(3e-4)
