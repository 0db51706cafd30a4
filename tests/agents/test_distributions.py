"""Distributions: masking never samples an invalid action; tanh-Gaussian density is correct."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents.distributions import (
    diag_gaussian,
    masked_categorical,
    tanh_gaussian,
    tanh_gaussian_mode,
)


def test_masked_categorical_never_samples_masked_action():
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    batch, k = 64, 7
    # Masked actions get the *largest* logits, so a broken mask would pick them most often.
    mask = jax.random.bernoulli(k1, 0.5, (batch, k))
    mask = mask.at[:, 0].set(True)  # at least one valid action per row
    logits = jnp.where(mask, jax.random.normal(k2, (batch, k)), 50.0)
    dist = masked_categorical(logits, mask)
    samples = dist.sample(seed=k3, sample_shape=(500,))  # [500, batch]
    picked_valid = jnp.take_along_axis(
        jnp.broadcast_to(mask, (500, batch, k)), samples[..., None], axis=-1
    )[..., 0]
    assert bool(jnp.all(picked_valid))
    assert bool(jnp.all(dist.probs[~mask] == 0.0))
    np.testing.assert_allclose(dist.probs.sum(-1), 1.0, rtol=1e-5)
    assert bool(jnp.all(jnp.isfinite(dist.entropy())))
    assert bool(jnp.all(mask[jnp.arange(batch), dist.mode()]))
    # The same logits without the mask do sample invalid actions (the check can fail).
    unmasked = masked_categorical(logits, None).sample(seed=k3, sample_shape=(500,))
    hits = jnp.take_along_axis(jnp.broadcast_to(mask, (500, batch, k)), unmasked[..., None], -1)
    assert not bool(jnp.all(hits))


def test_masked_categorical_entropy_matches_renormalised_valid_logits():
    logits = jnp.array([1.0, 2.0, 3.0, 4.0])
    mask = jnp.array([True, False, True, False])
    dist = masked_categorical(logits, mask)
    p = jax.nn.softmax(jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(dist.entropy(), -(p * jnp.log(p)).sum(), rtol=1e-6)
    np.testing.assert_allclose(dist.log_prob(2), jnp.log(p[1]), rtol=1e-6)


def test_diag_gaussian_log_prob_sums_over_dims():
    mean = jnp.array([0.5, -1.0])
    log_std = jnp.array([0.0, jnp.log(2.0)])
    a = jnp.array([1.0, 1.0])
    expected = sum(
        -0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
        for x, m, s in zip([1.0, 1.0], [0.5, -1.0], [1.0, 2.0], strict=True)
    )
    np.testing.assert_allclose(diag_gaussian(mean, log_std).log_prob(a), expected, rtol=1e-6)


def _numeric_tanh_gaussian_logp(y, mean, std, low, high):
    """log p(y) from the change of variables with a finite-difference Jacobian (float64)."""
    c, s = (high + low) / 2, (high - low) / 2
    x = np.arctanh((y - c) / s)
    h = 1e-6
    dydx = (s * np.tanh(x + h) - s * np.tanh(x - h)) / (2 * h)
    log_normal = -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.sum(log_normal - np.log(np.abs(dydx)), axis=-1)


def test_tanh_gaussian_log_prob_matches_numerical_change_of_variables():
    mean = np.array([0.3, -0.7], np.float64)
    std = np.array([0.8, 0.5], np.float64)
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
    dist = tanh_gaussian(
        jnp.asarray(mean, jnp.float32), jnp.log(jnp.asarray(std, jnp.float32)), low, high
    )
    ys = np.array([[0.1, 0.2], [-1.5, 0.9], [1.9, 0.05], [0.0, 0.5]])
    got = np.asarray(dist.log_prob(jnp.asarray(ys, jnp.float32)))
    want = _numeric_tanh_gaussian_logp(ys, mean, std, low, high)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
    # A log-prob without the Jacobian term would be off by a lot.
    no_jac = _numeric_tanh_gaussian_logp(ys, mean, std, low, high) + np.log(
        np.abs((high - low) / 2 * (1 - ((ys - (high + low) / 2) / ((high - low) / 2)) ** 2))
    ).sum(-1)
    assert np.max(np.abs(no_jac - want)) > 0.1


def test_tanh_gaussian_density_integrates_to_one_and_samples_in_bounds():
    low, high = -3.0, 1.0
    dist = tanh_gaussian(jnp.array([0.4]), jnp.array([np.log(0.9)]), low, high)
    grid = np.linspace(low, high, 200_001)[1:-1]
    p = np.exp(np.asarray(dist.log_prob(jnp.asarray(grid[:, None], jnp.float32)), np.float64))
    np.testing.assert_allclose(np.trapezoid(p, grid), 1.0, atol=2e-3)
    y, logp = dist.sample_and_log_prob(seed=jax.random.PRNGKey(1), sample_shape=(1000,))
    assert bool(jnp.all((y >= low) & (y <= high)))
    inner = (y[:, 0] > low + 1e-3) & (y[:, 0] < high - 1e-3)
    np.testing.assert_allclose(logp[inner], dist.log_prob(y)[inner], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(tanh_gaussian_mode(jnp.array([0.0]), low, high), [-1.0])


@pytest.mark.parametrize("mean", [-30.0, 30.0])
def test_tanh_gaussian_sample_log_prob_finite_at_saturation(mean):
    dist = tanh_gaussian(jnp.array([mean]), jnp.array([-3.0]), -1.0, 1.0)
    _, logp = dist.sample_and_log_prob(seed=jax.random.PRNGKey(0), sample_shape=(16,))
    assert bool(jnp.all(jnp.isfinite(logp)))
