"""Gaussian mixtures with full covariances, fitted by EM in pure JAX (jittable, vmappable).

The teachers (ALP-GMM, Covar-GMM) refit mixtures inside the jitted training program, so the EM
lives here once, written after scikit-learn's ``GaussianMixture(covariance_type="full")``:

* initialisation: k-means++ (greedy, ``2 + floor(log k)`` candidates per centre, as
  scikit-learn's ``KMeans``) and Lloyd iterations (:mod:`accelrl.curricula.kmeans`), whose
  hard labels give the first M-step;
* EM until the mean log-likelihood changes by less than ``tol`` (1e-3) or ``num_iters`` (100)
  iterations; ``reg_covar`` (1e-6) is added to every covariance diagonal and ``10 * eps`` to
  every component's responsibility mass, as scikit-learn does;
* ``n_init`` independent runs, the most likely kept.

Shapes are static, so a fixed-capacity history is fitted with a ``mask`` (``bool[n]``, rows
where False are ignored), and different numbers of components share one program: a mixture of
``K`` slots fits ``k <= K`` components and the other slots get weight exactly 0 (mean 0,
identity covariance). :func:`fit_best` uses this to fit every ``k`` in ``ks`` in one vmapped EM.

Precision: everything is float32 (a float64 scope inside jit does not survive nested
``vmap``/``scan``/``cond`` on jax 0.10: some matmuls come back float32). To keep float32 safe,
the EM runs on data standardised per dimension (a mixture fit is affine-equivariant, so the
optimum is the same) and maps the result back; ``reg_covar`` keeps its meaning in data units
but is at least ``reg_covar`` times each dimension's variance, so a degenerate component stays
positive definite to float32 precision. Densities are evaluated through each component's
correlation matrix (its covariance rescaled to unit diagonal) for the same reason.

>>> gmm = fit(jax.random.key(0), x, 3)                 # x: f32[n, d]
>>> ll = log_likelihood(gmm, x)                        # f32[n]
>>> gmm, k = fit_best(jax.random.key(0), x, range(2, 11))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from accelrl.curricula import kmeans

REG_COVAR = 1e-6
"""Added to covariance diagonals (scikit-learn's default ``reg_covar``)."""
TOL = 1e-3
"""Convergence threshold on the change of the mean log-likelihood (scikit-learn's ``tol``)."""
NUM_ITERS = 100
"""Maximum EM iterations (scikit-learn's ``max_iter``)."""
KMEANS_ITERS = 100
"""Maximum Lloyd iterations of the k-means initialisation."""
KMEANS_TOL = 1e-4
"""Lloyd stops when the squared centre shift is at most this (on standardised data)."""
_LOG_2PI = math.log(2 * math.pi)


@struct.dataclass
class GaussianMixture:
    """A mixture of ``k`` full-covariance Gaussians in ``d`` dimensions (float32).

    Slots of weight exactly 0 are padding (not part of the mixture): :func:`fit_best` returns
    ``max(ks)`` slots whatever ``k`` it chose.
    """

    weights: jax.Array
    """``f32[k]`` mixture weights (sum 1 over the real components, 0 for padding)."""
    means: jax.Array
    """``f32[k, d]``."""
    covariances: jax.Array
    """``f32[k, d, d]``."""

    @property
    def num_components(self) -> jax.Array:
        """``i32[]`` components with non-zero weight."""
        return jnp.sum(self.weights > 0).astype(jnp.int32)


def num_parameters(k: jax.Array | int, d: int) -> jax.Array:
    """Free parameters of a ``k``-component full-covariance mixture in ``d`` dimensions
    (scikit-learn's ``_n_parameters``): ``k * (d + d (d + 1) / 2) + k - 1``."""
    k = jnp.asarray(k, jnp.float32)
    return k * (d + d * (d + 1) / 2.0) + k - 1.0


def _log_weights(w: jax.Array) -> jax.Array:
    """``log w`` with ``-inf`` for zero weights (padding)."""
    return jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -jnp.inf)


SMALL_D = 8
"""Up to this many dimensions the Cholesky factorisation and triangular solves are unrolled
into elementwise arithmetic over the batch of components (XLA fuses them; LAPACK calls per
3x3 matrix inside a vmapped EM loop cost several times more on CPU); above it, LAPACK."""


def _cholesky(a: jax.Array) -> jax.Array:
    """Lower Cholesky factors of ``a[..., d, d]`` (pivots floored at 1e-30, never NaN)."""
    d = a.shape[-1]
    if d > SMALL_D:
        return jnp.linalg.cholesky(a)
    low = [[None] * d for _ in range(d)]
    for j in range(d):
        s = a[..., j, j] - sum((low[j][k] ** 2 for k in range(j)), jnp.zeros_like(a[..., 0, 0]))
        low[j][j] = jnp.sqrt(jnp.maximum(s, 1e-30))
        for i in range(j + 1, d):
            t = a[..., i, j] - sum(
                (low[i][k] * low[j][k] for k in range(j)), jnp.zeros_like(a[..., 0, 0])
            )
            low[i][j] = t / low[j][j]
    zero = jnp.zeros_like(a[..., 0, 0])
    rows = [jnp.stack([low[i][j] if j <= i else zero for j in range(d)], -1) for i in range(d)]
    return jnp.stack(rows, -2)


def _solve_lower(chol: jax.Array, zt: jax.Array) -> jax.Array:
    """``y`` with ``chol @ y = zt`` for ``chol[K, d, d]`` and ``zt[K, d, n]`` (columns of ``zt``
    are right-hand sides); ``[K, d, n]``, points along the minor axis."""
    d = chol.shape[-1]
    if d > SMALL_D:
        return jax.scipy.linalg.solve_triangular(chol, zt, lower=True)
    ys = []
    for i in range(d):
        t = zt[:, i, :]
        for k in range(i):
            t = t - chol[:, i, k][:, None] * ys[k]
        ys.append(t / chol[:, i, i][:, None])
    return jnp.stack(ys, 1)


def _component_log_prob(means: jax.Array, covs: jax.Array, x: jax.Array) -> jax.Array:
    """``[n, K]`` log density of each point under each component.

    Through the correlation matrix ``R = D^-1 C D^-1`` (``D`` the standard deviations), whose
    unit diagonal keeps the float32 Cholesky well scaled whatever the units of each dimension.
    """
    d = x.shape[-1]
    sd = jnp.sqrt(jnp.diagonal(covs, axis1=1, axis2=2))  # [K, d]
    corr = covs / (sd[:, :, None] * sd[:, None, :])
    chol = _cholesky(corr)  # [K, d, d]
    # Points along the minor axis ([K, d, n], not [K, n, d]): the sums over d and, in the
    # M-step, over n then run along contiguous memory (about 1.4x faster for the whole fit).
    zt = (x.T[None, :, :] - means[:, :, None]) / sd[:, :, None]  # [K, d, n]
    maha = jnp.sum(_solve_lower(chol, zt) ** 2, axis=1)  # [K, n]
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)), axis=1)
    log_det = log_det + 2.0 * jnp.sum(jnp.log(sd), axis=1)  # [K]
    return (-0.5 * (d * _LOG_2PI + log_det[:, None] + maha)).T


def _weighted_log_prob(log_w: jax.Array, means: jax.Array, covs: jax.Array, x: jax.Array):
    """``[n, K]``: log weight + log density; ``-inf`` for padding slots."""
    lp = _component_log_prob(means, covs, x)
    return jnp.where(jnp.isfinite(log_w)[None, :], lp + log_w[None, :], -jnp.inf)


# -- EM on standardised data --------------------------------------------------------------------


class _Params(NamedTuple):
    log_weights: jax.Array  # [K], -inf for inactive slots
    means: jax.Array  # [K, d]
    covariances: jax.Array  # [K, d, d]


def _m_step(x: jax.Array, resp: jax.Array, active: jax.Array, reg: jax.Array) -> _Params:
    """Weights, means and covariances from responsibilities ``resp[n, K]`` (zero rows for
    masked points); ``reg`` ``[d]`` is added to the diagonals. Inactive slots get weight 0,
    mean 0 and identity covariance."""
    d = x.shape[-1]
    nk = jnp.sum(resp, axis=0) + 10 * jnp.finfo(jnp.float32).eps  # [K]
    means = (resp.T @ x) / nk[:, None]
    dt = x.T[None, :, :] - means[:, :, None]  # [K, d, n]
    covs = _weighted_scatter(resp.T, dt) / nk[:, None, None] + jnp.diag(reg)
    eye = jnp.broadcast_to(jnp.eye(d, dtype=x.dtype), covs.shape)
    covs = jnp.where(active[:, None, None], covs, eye)
    means = jnp.where(active[:, None], means, 0.0)
    w = jnp.where(active, nk, 0.0)
    return _Params(_log_weights(w / jnp.sum(w)), means, covs)


def _weighted_scatter(w: jax.Array, dt: jax.Array) -> jax.Array:
    """``[K, d, d]``: ``sum_n w[k, n] dt[k, i, n] dt[k, j, n]`` for ``w[K, n]`` and ``dt[K, d,
    n]``, exactly symmetric.

    The ``d (d + 1) / 2`` upper-triangle entries only, as one product reduced along the minor
    axis: on CPU a batched ``einsum`` of ``[K]`` 3 x ``n`` by ``n`` x 3 products cost about twice
    the rest of an EM iteration.
    """
    d = dt.shape[1]
    iu, ju = np.triu_indices(d)
    wdt = w[:, None, :] * dt  # [K, d, n]
    upper = jnp.sum(wdt[:, iu, :] * dt[:, ju, :], axis=-1)  # [K, P]
    entry = np.zeros((d, d), np.int32)
    entry[iu, ju] = entry[ju, iu] = np.arange(iu.shape[0])
    return upper[:, entry]


class _EMCarry(NamedTuple):
    params: _Params
    lower_bound: jax.Array
    change: jax.Array
    it: jax.Array


def _em_once(
    u: jax.Array,
    x: jax.Array,
    valid: jax.Array,
    reg: jax.Array,
    k_active: jax.Array,
    num_slots: int,
    num_iters: int,
    tol: float,
) -> tuple[_Params, jax.Array]:
    """One k-means-seeded EM run on standardised ``x``: ``(params, mean log-likelihood)``."""
    active = jnp.arange(num_slots) < k_active
    n_valid = jnp.maximum(jnp.sum(valid), 1)
    # K-MEANS INIT: hard labels of Lloyd's iterations from greedy k-means++ (scikit-learn's
    # tolerance, 1e-4 times the mean variance: 1 after standardising)
    centres = kmeans.plus_plus(u, x, valid, k_active, num_slots)
    centres = kmeans.lloyd(x, valid, centres, active, KMEANS_ITERS, KMEANS_TOL)
    labels = jax.nn.one_hot(kmeans.assign(x, centres, active), num_slots) * valid[:, None]
    params = _m_step(x, labels, active, reg)

    def e_step(p: _Params):
        wlp = _weighted_log_prob(*p, x)
        lse = jax.nn.logsumexp(wlp, axis=1)
        resp = jnp.where(valid[:, None], jnp.exp(wlp - lse[:, None]), 0.0)
        return resp, jnp.sum(jnp.where(valid, lse, 0.0)) / n_valid

    def body(c: _EMCarry) -> _EMCarry:
        resp, lb = e_step(c.params)
        return _EMCarry(_m_step(x, resp, active, reg), lb, lb - c.lower_bound, c.it + 1)

    def cond(c: _EMCarry) -> jax.Array:
        return (jnp.abs(c.change) >= tol) & (c.it < num_iters)

    inf = jnp.float32(jnp.inf)
    out = jax.lax.while_loop(cond, body, _EMCarry(params, -inf, inf, jnp.int32(0)))
    # The likelihood of the returned parameters (scikit-learn reports the one before the last
    # M-step, which can only be lower).
    _, lb = e_step(out.params)
    return out.params, jnp.where(jnp.isfinite(lb), lb, -jnp.inf)


def _fit_slots(
    key: jax.Array,
    x: jax.Array,
    mask: jax.Array | None,
    k_active: jax.Array,
    num_slots: int,
    num_iters: int,
    n_init: int,
    tol: float,
    reg_covar: float,
) -> tuple[GaussianMixture, jax.Array]:
    """Best of ``n_init`` runs with ``k_active`` of ``num_slots`` slots: the mixture in data
    units and its mean log-likelihood (data units) over the valid rows."""
    x = jnp.asarray(x, jnp.float32)
    valid = jnp.ones(x.shape[0], bool) if mask is None else jnp.asarray(mask, bool)
    n_valid = jnp.maximum(jnp.sum(valid), 1)
    # STANDARDISE (masked mean and standard deviation; constant dimensions keep scale 1)
    mean = jnp.sum(jnp.where(valid[:, None], x, 0.0), axis=0) / n_valid
    var = jnp.sum(jnp.where(valid[:, None], (x - mean) ** 2, 0.0), axis=0) / n_valid
    scale = jnp.where(var > 0, jnp.sqrt(var), 1.0)
    xs = jnp.where(valid[:, None], (x - mean) / scale, 0.0)
    reg = jnp.maximum(reg_covar / scale**2, reg_covar)
    # FIT (n_init runs, the most likely kept)
    u = jax.random.uniform(key, (n_init, num_slots, kmeans.plus_plus_trials(num_slots)))
    params, lbs = jax.vmap(
        lambda uu: _em_once(uu, xs, valid, reg, k_active, num_slots, num_iters, tol)
    )(u)
    best = jnp.argmax(lbs)
    p = jax.tree.map(lambda a: a[best], params)
    # BACK TO DATA UNITS
    active = jnp.isfinite(p.log_weights)
    means = jnp.where(active[:, None], mean + scale * p.means, 0.0)
    covs = p.covariances * scale[None, :, None] * scale[None, None, :]
    covs = jnp.where(active[:, None, None], covs, jnp.eye(x.shape[-1]))
    gmm = GaussianMixture(jnp.where(active, jnp.exp(p.log_weights), 0.0), means, covs)
    return gmm, lbs[best] - jnp.sum(jnp.log(scale))


# -- public API ---------------------------------------------------------------------------------


def fit(
    key: jax.Array,
    x: jax.Array,
    k: int,
    mask: jax.Array | None = None,
    num_iters: int = NUM_ITERS,
    n_init: int = 3,
    *,
    tol: float = TOL,
    reg_covar: float = REG_COVAR,
) -> GaussianMixture:
    """Fit a ``k``-component full-covariance mixture to ``x`` by EM.

    Args:
        key: PRNG key (k-means++ seeding).
        x: ``f32[n, d]`` data.
        k: number of components (static).
        mask: ``bool[n]``, rows to fit (default all); the others are ignored.
        num_iters: maximum EM iterations per run.
        n_init: independent k-means++-seeded runs; the most likely is kept (one run lands more
            than 2% below scikit-learn's likelihood about half the time on ALP-GMM-like data).
        tol: stop when the mean log-likelihood changes by less than this.
        reg_covar: added to every covariance diagonal (at least ``reg_covar`` times the data's
            variance in that dimension).

    Returns:
        A :class:`GaussianMixture` with ``k`` components (a component that lost all its points
        keeps a tiny positive weight, as in scikit-learn).
    """
    gmm, _ = _fit_slots(key, x, mask, int(k), int(k), num_iters, n_init, tol, reg_covar)
    return gmm


def log_likelihood(gmm: GaussianMixture, x: jax.Array) -> jax.Array:
    """``f32[n]`` log density of each row of ``x`` under ``gmm`` (scikit-learn's
    ``score_samples``); zero-weight slots are not part of the mixture."""
    wlp = _weighted_log_prob(
        _log_weights(gmm.weights), gmm.means, gmm.covariances, jnp.asarray(x, jnp.float32)
    )
    return jax.nn.logsumexp(wlp, axis=1)


def aic(gmm: GaussianMixture, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Akaike information criterion ``-2 log L + 2 p`` (``f32[]``) on the rows of ``x`` where
    ``mask`` (default all), with ``p`` counted over the components of non-zero weight only
    (padding slots are not parameters)."""
    ll = log_likelihood(gmm, x)
    if mask is not None:
        ll = jnp.where(jnp.asarray(mask, bool), ll, 0.0)
    return -2.0 * jnp.sum(ll) + 2.0 * num_parameters(gmm.num_components, x.shape[-1])


def fit_best(
    key: jax.Array,
    x: jax.Array,
    ks: Sequence[int],
    mask: jax.Array | None = None,
    num_iters: int = NUM_ITERS,
    n_init: int = 3,
    *,
    tol: float = TOL,
    reg_covar: float = REG_COVAR,
) -> tuple[GaussianMixture, jax.Array]:
    """Fit a mixture for every ``k`` in ``ks`` and keep the one of lowest AIC.

    All fits run in one vmapped EM over ``max(ks)`` slots (slots beyond each ``k`` have weight
    0), so the result has ``max(ks)`` slots whatever ``k`` wins.

    Args:
        key: PRNG key (each ``k`` gets its own stream).
        x: ``f32[n, d]``.
        ks: numbers of components to try (a list, tuple or range of positive ints; static).
        mask: ``bool[n]`` rows to fit (default all).
        num_iters, n_init, tol, reg_covar: as :func:`fit` (ALP-GMM passes ``n_init=1``, as the
            reference does).

    Returns:
        ``(gmm, k)``: the chosen mixture padded to ``max(ks)`` slots and its ``k`` (``i32[]``).
    """
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be non-empty positive integers, got {ks}")
    slots = max(ks)
    karr = jnp.asarray(ks, jnp.int32)
    n = x.shape[0] if mask is None else jnp.sum(jnp.asarray(mask, bool))

    def one(kk, k_active):
        gmm, mean_ll = _fit_slots(kk, x, mask, k_active, slots, num_iters, n_init, tol, reg_covar)
        # scikit-learn's aic: -2 * score * n + 2 * n_parameters
        value = -2.0 * mean_ll * n + 2.0 * num_parameters(k_active, x.shape[-1])
        return gmm, jnp.where(jnp.isfinite(value), value, jnp.inf)

    gmms, aics = jax.vmap(one)(jax.random.split(key, len(ks)), karr)
    best = jnp.argmin(aics)
    return jax.tree.map(lambda a: a[best], gmms), karr[best]


def sample(key: jax.Array, gmm: GaussianMixture, component: jax.Array) -> jax.Array:
    """One draw from each of the given components: ``component`` ``i32[n]`` -> ``f32[n, d]``.

    Uses a symmetric square root of each covariance (eigenvalues clipped at 0, as numpy's
    ``multivariate_normal`` does with an SVD), so a covariance that lost positive definiteness
    to rounding still gives finite draws."""
    z = jax.random.normal(key, (component.shape[0], gmm.means.shape[-1]))
    evals, evecs = jnp.linalg.eigh(gmm.covariances)
    root = evecs * jnp.sqrt(jnp.maximum(evals, 0.0))[:, None, :]  # root @ root.T = cov
    return gmm.means[component] + jnp.einsum("nij,nj->ni", root[component], z)


__all__ = [
    "NUM_ITERS",
    "REG_COVAR",
    "TOL",
    "GaussianMixture",
    "aic",
    "fit",
    "fit_best",
    "log_likelihood",
    "num_parameters",
    "sample",
]
