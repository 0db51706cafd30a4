"""The shared k-means (curricula/kmeans.py): Lloyd's fixed point against numbers worked out by
hand, masks of points and slots, the stopping rule, and k-means++ on separated groups."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.curricula import kmeans

X = jnp.asarray([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [12.0, 0.0], [100.0, 100.0]])
"""Two groups (means (0, 1) and (11, 0)) and a far point that the tests mask out."""
VALID = jnp.asarray([True, True, True, True, False])


def test_lloyd_reaches_the_group_means_by_hand():
    start = jnp.asarray([[1.0, 1.0], [9.0, 0.0]])
    c = kmeans.lloyd(X, VALID, start, jnp.asarray([True, True]), 100)
    np.testing.assert_array_equal(c, [[0.0, 1.0], [11.0, 0.0]])
    np.testing.assert_array_equal(kmeans.assign(X[:4], c, jnp.asarray([True, True])), [0, 0, 1, 1])


def test_masked_points_and_inactive_slots_take_no_part():
    # slot 2 sits on the masked far point and slot 1 is inactive although it is nearest to the
    # right-hand group: neither moves, the right-hand points join slot 0
    start = jnp.asarray([[1.0, 1.0], [11.0, 0.0], [100.0, 100.0]])
    active = jnp.asarray([True, False, True])
    c = kmeans.lloyd(X, VALID, start, active, 100)
    np.testing.assert_array_equal(c[0], [5.5, 0.5])  # the mean of all four valid points
    np.testing.assert_array_equal(c[1:], start[1:])  # inactive: unchanged; empty: kept
    assert int(kmeans.assign(X[1:2] + 20.0, c, active)[0]) != 1


def test_tol_and_iters_stop_the_iterations():
    x = jnp.asarray([[0.0], [1.0], [2.0], [10.0]])
    valid, active = jnp.ones(4, bool), jnp.ones(2, bool)
    start = jnp.asarray([[0.0], [1.0]])
    # one iteration: {0} and {1, 2, 10} -> 0 and 13/3
    np.testing.assert_allclose(kmeans.lloyd(x, valid, start, active, 1), [[0.0], [13 / 3]])
    # to the fixed point: {0, 1, 2} and {10}
    np.testing.assert_allclose(kmeans.lloyd(x, valid, start, active, 100), [[1.0], [10.0]])
    # a tolerance larger than the first shift stops after one iteration
    np.testing.assert_allclose(
        kmeans.lloyd(x, valid, start, active, 100, tol=100.0), [[0.0], [13 / 3]]
    )


def test_plus_plus_puts_one_centre_in_each_separated_group():
    rng = np.random.default_rng(0)
    groups = np.asarray([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    x = jnp.asarray(np.concatenate([g + rng.normal(size=(30, 2)) for g in groups]), jnp.float32)
    valid = jnp.ones(len(x), bool)
    u = jax.random.uniform(jax.random.key(0), (4, kmeans.plus_plus_trials(4)))
    c = jax.jit(kmeans.plus_plus, static_argnums=4)(u, x, valid, 3, 4)
    nearest = np.argmin(np.linalg.norm(np.asarray(c)[:3, None] - groups[None], axis=-1), axis=1)
    assert sorted(nearest.tolist()) == [0, 1, 2]
    np.testing.assert_array_equal(c[3], c[0])  # a slot past k_active keeps the first centre
