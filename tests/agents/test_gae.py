"""GAE against a plain Python loop, with terminations and truncations mixed."""

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.agents.gae import gae


def python_gae(r, v, nv, term, done, gamma, lam):
    t_len, b = r.shape
    adv = np.zeros((t_len, b))
    for j in range(b):
        last = 0.0
        for t in reversed(range(t_len)):
            delta = r[t, j] + gamma * (0.0 if term[t, j] else nv[t, j]) - v[t, j]
            last = delta + gamma * lam * (0.0 if done[t, j] else last)
            adv[t, j] = last
    return adv, adv + v


def test_gae_matches_python_loop():
    rng = np.random.default_rng(0)
    t_len, b = 17, 5
    r, v, nv = (rng.normal(size=(t_len, b)).astype(np.float32) for _ in range(3))
    term = rng.random((t_len, b)) < 0.15
    trunc = (rng.random((t_len, b)) < 0.15) & ~term
    done = term | trunc
    adv, ret = jax.jit(gae)(*map(jnp.asarray, (r, v, nv, term, done)), 0.97, 0.9)
    want_adv, want_ret = python_gae(r, v, nv, term, done, 0.97, 0.9)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, want_ret, rtol=1e-5, atol=1e-5)
    # Treating truncations as terminations gives a different answer (the check can fail).
    wrong, _ = python_gae(r, v, nv, done, done, 0.97, 0.9)
    assert np.max(np.abs(wrong - np.asarray(adv))) > 1e-2


def test_gae_hand_values():
    # Two steps, gamma 0.5, lambda 1: step 1 truncated (bootstrap 4.0), step 0 continues.
    adv, ret = gae(
        jnp.array([1.0, 2.0]),
        jnp.array([0.0, 1.0]),
        jnp.array([1.0, 4.0]),
        jnp.array([False, False]),
        jnp.array([False, True]),
        0.5,
        1.0,
    )
    # delta1 = 2 + 0.5*4 - 1 = 3; delta0 = 1 + 0.5*1 - 0 = 1.5; A0 = 1.5 + 0.5*3 = 3.
    np.testing.assert_allclose(adv, [3.0, 3.0])
    np.testing.assert_allclose(ret, [3.0, 4.0])
    adv_term, _ = gae(
        jnp.array([1.0, 2.0]),
        jnp.array([0.0, 1.0]),
        jnp.array([1.0, 4.0]),
        jnp.array([False, True]),
        jnp.array([False, True]),
        0.5,
        1.0,
    )
    np.testing.assert_allclose(adv_term, [1.5 + 0.5 * 1.0, 1.0])
