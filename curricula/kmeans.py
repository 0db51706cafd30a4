"""K-means in pure JAX (jittable, vmappable), for the mixture teachers and snapshot starts.

One implementation of the iterations serves both users: the Gaussian mixtures
(:mod:`accelrl.curricula.gmm`) seed EM with its hard labels on ``d``-dimensional task/ALP points,
and snapshot starts (:func:`accelrl.curricula.snapshot.kmeans_1d`) classify a bank's teacher
values with it in one dimension (with their own k-means++ seeding, which banks' clusters
depend on).

* :func:`plus_plus`: greedy k-means++ seeding (scikit-learn's ``KMeans`` rule: each centre is
  the best of ``2 + floor(log K)`` candidates drawn in proportion to the squared distance to
  the centres so far), from given uniforms so callers choose how many inits and from which key;
* :func:`lloyd`: Lloyd iterations until the squared centre shift is at most ``tol`` (0: an exact
  fixed point) or ``iters`` iterations; a centre that loses all its points keeps its place;
* :func:`assign`: the nearest active centre of every point.

Shapes are static: points that do not count (a fixed-capacity history's empty rows, padding)
are masked with ``valid`` (``bool[n]``), and ``K`` slots hold ``k_active <= K`` centres (the
other slots are never assigned a point), so different ``n`` and ``k`` share one program.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def sq_dist(x: jax.Array, c: jax.Array) -> jax.Array:
    """``[n, m]`` squared Euclidean distances between ``x f32[n, d]`` and ``c f32[m, d]``."""
    return jnp.sum((x.T[:, :, None] - c.T[:, None, :]) ** 2, axis=0)


def draw(weights: jax.Array, u: jax.Array) -> jax.Array:
    """Indices drawn with probability proportional to ``weights`` (``[n]``, >= 0, not all 0)
    by inverting the CDF at uniforms ``u`` (any shape)."""
    cdf = jnp.cumsum(weights)
    idx = jnp.searchsorted(cdf, u * cdf[-1], side="right")
    return jnp.minimum(idx, weights.shape[0] - 1)


def plus_plus_trials(num_slots: int) -> int:
    """Candidates per k-means++ centre (scikit-learn's greedy rule ``2 + floor(log K)``)."""
    return 2 + int(math.log(num_slots))


def plus_plus(
    u: jax.Array, x: jax.Array, valid: jax.Array, k_active: jax.Array, num_slots: int
) -> jax.Array:
    """Greedy k-means++ centres ``f32[K, d]`` of the valid points of ``x f32[n, d]``.

    Args:
        u: ``f32[K, trials]`` uniforms (``trials = plus_plus_trials(K)``); one seeding per array.
        x: ``f32[n, d]`` points.
        valid: ``bool[n]`` points that count (at least one).
        k_active: ``i32[]`` centres to place (``1 <= k_active <= K``); slots ``>= k_active``
            keep the first centre.
        num_slots: ``K`` (static).
    """
    valid_w = valid.astype(x.dtype)
    first = draw(valid_w, u[0, 0])
    centres = jnp.broadcast_to(x[first], (num_slots, x.shape[1]))
    closest = jnp.where(valid, jnp.sum((x - x[first]) ** 2, axis=-1), 0.0)  # [n]

    def add(c, carry):
        centres, closest = carry
        # Candidates in proportion to D^2 (uniformly among valid points when all D are 0).
        weights = jnp.where(jnp.sum(closest) > 0, closest, valid_w)
        cand = draw(weights, u[c])  # [trials]
        pot = jnp.where(valid[None, :], jnp.minimum(closest[None, :], sq_dist(x[cand], x)), 0.0)
        best = cand[jnp.argmin(jnp.sum(pot, axis=1))]
        new_closest = jnp.minimum(closest, jnp.where(valid, jnp.sum((x - x[best]) ** 2, -1), 0.0))
        use = c < k_active
        centres = jnp.where(use, centres.at[c].set(x[best]), centres)
        return centres, jnp.where(use, new_closest, closest)

    centres, _ = jax.lax.fori_loop(1, num_slots, add, (centres, closest))
    return centres


def assign(x: jax.Array, centres: jax.Array, active: jax.Array) -> jax.Array:
    """``i32[n]``: the nearest of the ``active`` (``bool[K]``) centres ``f32[K, d]`` of every
    point of ``x f32[n, d]`` (the lowest index on ties)."""
    d2 = jnp.where(active[None, :], sq_dist(x, centres), jnp.inf)
    return jnp.argmin(d2, axis=1).astype(jnp.int32)


def lloyd(
    x: jax.Array,
    valid: jax.Array,
    centres: jax.Array,
    active: jax.Array,
    iters: int,
    tol: float = 0.0,
) -> jax.Array:
    """Lloyd iterations from ``centres f32[K, d]``; returns the final centres ``f32[K, d]``.

    Each iteration moves every active centre to the mean of the valid points nearest to it
    (one that has none keeps its place); it stops when the summed squared shift of the active
    centres is at most ``tol`` or after ``iters`` iterations.

    Args:
        x: ``f32[n, d]`` points; ``valid``: ``bool[n]`` those that count.
        centres: ``f32[K, d]`` start (finite where ``active``).
        active: ``bool[K]`` slots in use.
        iters: most iterations (static or traced).
        tol: stopping threshold on the shift (0: stop at a fixed point only).
    """

    def members(c):
        return jax.nn.one_hot(assign(x, c, active), c.shape[0]) * valid[:, None]  # [n, K]

    def body(carry):
        c, _, it = carry
        lab = members(c)
        cnt = lab.sum(0)
        # a sum over points, as kmeans_1d's was (the mixtures' former ``lab.T @ x`` gave the
        # same bits on CPU for the tests' fits)
        sums = jnp.sum(lab[:, :, None] * x[:, None, :], axis=0)  # [K, d]
        new = jnp.where((cnt > 0)[:, None], sums / jnp.maximum(cnt, 1)[:, None], c)
        return new, jnp.sum(jnp.where(active[:, None], (new - c) ** 2, 0.0)), it + 1

    def cond(carry):
        _, shift, it = carry
        return (shift > tol) & (it < iters)

    c, _, _ = jax.lax.while_loop(cond, body, (centres, jnp.float32(jnp.inf), 0))
    return c


__all__ = ["assign", "draw", "lloyd", "plus_plus", "plus_plus_trials", "sq_dist"]
