"""Checkpoints keep every leaf's dtype, float64 physics state included; restoring is strict but
fills in leaves added after a checkpoint was written (``optional``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from accelrl.agents.checkpoint import (
    CheckpointMismatchError,
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)


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


@struct.dataclass
class _Old:
    history: jax.Array
    count: jax.Array


@struct.dataclass
class _New:
    history: jax.Array
    count: jax.Array
    ratio: jax.Array  # a field added after _Old checkpoints were written


def _old_checkpoint(tmp_path):
    old = {"strategy": _Old(jnp.arange(6, dtype=jnp.float32).reshape(2, 3), jnp.asarray([3, 4]))}
    save_checkpoint(tmp_path / "run" / "checkpoints", 4, old, {"lr": jnp.ones(2)}, {})
    new_like = {"strategy": _New(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros(2))}
    return latest_checkpoint(tmp_path / "run" / "checkpoints"), old, new_like


def test_a_checkpoint_lacking_an_optional_leaf_restores_with_it_filled_in(tmp_path):
    path, old, new_like = _old_checkpoint(tmp_path)
    ratio = np.asarray([0.3, 0.5], np.float32)
    restored, hp = restore_checkpoint(
        path, new_like, {"lr": jnp.ones(2)}, optional={("strategy", "ratio"): ratio}
    )
    assert isinstance(restored["strategy"], _New)
    np.testing.assert_array_equal(restored["strategy"].history, old["strategy"].history)
    np.testing.assert_array_equal(restored["strategy"].count, [3, 4])
    assert restored["strategy"].count.dtype == jnp.int32
    np.testing.assert_array_equal(restored["strategy"].ratio, ratio)
    assert restored["strategy"].ratio.dtype == jnp.float32
    # a checkpoint that holds the leaf keeps its own value (optional only fills what is absent)
    save_checkpoint(tmp_path / "new", 5, restored, hp, {})
    again, _ = restore_checkpoint(
        latest_checkpoint(tmp_path / "new"),
        new_like,
        {"lr": jnp.ones(2)},
        optional={("strategy", "ratio"): np.zeros(2, np.float32)},
    )
    np.testing.assert_array_equal(again["strategy"].ratio, ratio)


@pytest.mark.parametrize(
    ("like", "optional", "says"),
    [  # without optional: strict
        (
            {"strategy": _New(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros(2))},
            {},
            "missing from the checkpoint: state.strategy.ratio",
        ),
        (  # optional excuses only the leaves it names
            {"strategy": _New(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros(2))},
            {("strategy", "history"): np.zeros((2, 3), np.float32)},
            "missing from the checkpoint: state.strategy.ratio",
        ),
        (  # another shape (another config) fails even with the new field optional
            {"strategy": _New(jnp.zeros((2, 4)), jnp.zeros(2, jnp.int32), jnp.zeros(2))},
            {("strategy", "ratio"): np.zeros(2, np.float32)},
            "shapes differ: state.strategy.history (2, 3) saved, (2, 4) expected",
        ),
        (
            {"strategy": {"history": jnp.zeros((2, 3))}},
            {},
            "not in this run's state: state.strategy.count",
        ),
    ],
)
def test_any_other_mismatch_fails_in_one_line_naming_the_run_folder(tmp_path, like, optional, says):
    path, _, _ = _old_checkpoint(tmp_path)
    with pytest.raises(CheckpointMismatchError) as e:
        restore_checkpoint(path, like, {"lr": jnp.ones(2)}, optional=optional)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"run folder {tmp_path / 'run'}: checkpoint step_000004 does not match" in msg
    assert says in msg
