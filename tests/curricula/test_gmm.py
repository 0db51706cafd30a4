"""The JAX Gaussian-mixture EM (accelrl.curricula.gmm) against scikit-learn's GaussianMixture.

Tolerances: the density functions on scikit-learn's own parameters agree to 1e-4 relative (float32
against float64); fits reach scikit-learn's mean log-likelihood within 2% (EM finds local optima;
best of 3 k-means++ inits against scikit-learn's single k-means init); on well separated blobs both
reach the same optimum, so AIC agrees within 0.1% and the chosen k is the same.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.curricula import gmm

sklearn_mixture = pytest.importorskip("sklearn.mixture")


def alp_like(seed: int, n: int = 250) -> np.ndarray:
    """ALP-GMM-like points: a uniform 2-D task and an ALP coordinate that is high in one corner."""
    rng = np.random.default_rng(seed)
    tasks = rng.uniform(0.0, 1.0, (n, 2))
    bump = np.exp(-np.sum((tasks - [0.3, 0.7]) ** 2, axis=1) / 0.02)
    alp = np.abs(rng.normal(0.0, 0.05, n)) + 0.3 * bump * rng.uniform(0.5, 1.0, n)
    return np.c_[tasks, alp].astype(np.float32)


def blobs(seed: int = 0, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    scales = np.array([[1.0, 0.5], [0.7, 1.2], [0.6, 0.6]])
    x = np.concatenate(
        [c + s * rng.normal(size=(n, 2)) for c, s in zip(centres, scales, strict=True)]
    )
    return x.astype(np.float32), centres


def sk_fit(x: np.ndarray, k: int, seed: int = 0):
    return sklearn_mixture.GaussianMixture(k, covariance_type="full", random_state=seed).fit(x)


def from_sklearn(m) -> gmm.GaussianMixture:
    return gmm.GaussianMixture(
        jnp.asarray(m.weights_, jnp.float32),
        jnp.asarray(m.means_, jnp.float32),
        jnp.asarray(m.covariances_, jnp.float32),
    )


def test_density_and_aic_equal_sklearns_on_its_parameters():
    x = alp_like(0)
    m = sk_fit(x, 4)
    ours = from_sklearn(m)
    np.testing.assert_allclose(
        gmm.log_likelihood(ours, x), m.score_samples(x), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(float(gmm.aic(ours, x)), m.aic(x), rtol=1e-4)


def test_aic_counts_only_components_of_nonzero_weight():
    x = alp_like(1)
    m = sk_fit(x, 3)
    real = from_sklearn(m)
    d = x.shape[1]
    padded = gmm.GaussianMixture(  # 3 padding slots of weight 0 (as fit_best returns)
        jnp.concatenate([real.weights, jnp.zeros(3)]),
        jnp.concatenate([real.means, jnp.ones((3, d))]),
        jnp.concatenate([real.covariances, jnp.broadcast_to(jnp.eye(d), (3, d, d))]),
    )
    assert int(padded.num_components) == 3
    np.testing.assert_allclose(float(gmm.aic(padded, x)), m.aic(x), rtol=1e-5)
    # counting the padding would add 2 * 3 * (d + d(d+1)/2 + 1) = 60
    counted_all = -2 * float(gmm.log_likelihood(padded, x).sum()) + 2 * float(
        gmm.num_parameters(6, d)
    )
    assert counted_all - float(gmm.aic(padded, x)) == pytest.approx(60.0, rel=1e-4)
    # a mask drops rows from the likelihood, not from the parameter count
    mask = np.arange(len(x)) < 100
    np.testing.assert_allclose(float(gmm.aic(padded, x, mask)), m.aic(x[:100]), rtol=1e-4)


def test_fit_reaches_sklearns_likelihood_on_alp_like_data():
    """Best of 3 k-means++ inits (the default) against scikit-learn's single k-means init on 8
    data sets, k = 5: never more than 2% below it, and the AIC follows."""
    xs = np.stack([alp_like(s) for s in range(8)])
    fit = jax.jit(jax.vmap(lambda key, x: gmm.fit(key, x, 5)))
    fitted = fit(jax.random.split(jax.random.key(0), len(xs)), xs)
    for i, x in enumerate(xs):
        ours = jax.tree.map(lambda a, i=i: a[i], fitted)
        assert ours.weights.shape == (5,) and ours.covariances.shape == (5, 3, 3)
        np.testing.assert_allclose(float(ours.weights.sum()), 1.0, rtol=1e-5)
        m = sk_fit(x, 5, seed=i)
        ll, sk_ll = float(gmm.log_likelihood(ours, x).mean()), m.score(x)
        assert ll >= sk_ll - 0.02 * abs(sk_ll), (i, ll, sk_ll)
        assert float(gmm.aic(ours, x)) <= m.aic(x) + 0.02 * abs(sk_ll) * 2 * len(x)


def test_fit_best_picks_sklearns_k_on_separated_blobs_and_vmaps():
    x, centres = blobs()
    ks = range(2, 7)
    fit_best = jax.jit(jax.vmap(lambda key: gmm.fit_best(key, x, ks)))
    fitted, k = fit_best(jax.random.split(jax.random.key(1), 2))  # two keys: vmappable
    sk_aics = {kk: sk_fit(x, kk).aic(x) for kk in ks}
    assert min(sk_aics, key=sk_aics.get) == 3
    np.testing.assert_array_equal(k, [3, 3])
    for i in range(2):
        g = jax.tree.map(lambda a, i=i: a[i], fitted)
        assert g.weights.shape == (6,) and int(g.num_components) == 3  # padded to max(ks)
        np.testing.assert_array_equal(np.asarray(g.weights[3:]), 0.0)
        np.testing.assert_allclose(float(gmm.aic(g, x)), sk_aics[3], rtol=1e-3)
        found = np.asarray(g.means[:3])
        assert np.abs(found[:, None] - centres[None]).sum(-1).min(0).max() < 0.5


def test_mask_ignores_rows():
    x, centres = blobs(seed=2)
    junk = np.full((60, 2), 40.0, np.float32) + np.random.default_rng(0).normal(size=(60, 2))
    padded = np.concatenate([x, junk.astype(np.float32)])
    mask = np.arange(len(padded)) < len(x)
    g = jax.jit(lambda key, x, m: gmm.fit(key, x, 3, m))(jax.random.key(0), padded, mask)
    found = np.asarray(g.means)
    assert np.abs(found[:, None] - centres[None]).sum(-1).min(0).max() < 0.5  # junk unseen
    np.testing.assert_allclose(
        float(gmm.log_likelihood(g, x).mean()), sk_fit(x, 3).score(x), rtol=1e-3
    )


def test_sample_draws_from_the_chosen_component():
    x, centres = blobs()
    g = from_sklearn(sk_fit(x, 3))
    comp = jnp.full(4000, 1, jnp.int32)
    draws = np.asarray(gmm.sample(jax.random.key(0), g, comp))
    np.testing.assert_allclose(draws.mean(0), np.asarray(g.means[1]), atol=0.1)
    np.testing.assert_allclose(np.cov(draws.T), np.asarray(g.covariances[1]), rtol=0.1, atol=0.05)
