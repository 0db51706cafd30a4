"""SOR and SSOR-preconditioned CG on shifted 2-D Laplacians, as capped ``lax.while_loop``s.

Every system here is ``A = alpha * L + beta * I`` with ``L`` the 5-point Laplacian on an
``n x n`` interior grid with zero boundary (MATLAB's ``delsq(numgrid('S', n + 2))``: 4 on the
diagonal, -1 for each of the up to four neighbours). Vectors are grids ``[n, n]`` whose flat
row-major index ``k * n + i`` is the natural (lexicographic) ordering: line ``k``, position
``i``. The triangular solves of SOR's natural ordering run line by line: within a line the
lower-triangular factor is bidiagonal, so its inverse is a dense ``n x n`` lower triangle
``(1 / diag) * q^(i - j)``, applied as one small product per line.

All functions compute in float64 and must be called inside ``jax.enable_x64(True)``
(DESIGN.md, Precision); they are pure and vmap over every argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

MAX_ITERATIONS: int = 10_000
"""The authors' iteration cap (``solvers/sor.m``, ``ssor_pcg.m``)."""

TOLERANCE: float = 1e-8
"""Relative residual at which a solve stops (the authors' ``epsilon``)."""


def laplacian_apply(x: jax.Array, alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """``A x`` for ``A = alpha * L + beta * I``: ``x`` [n, n] -> [n, n] (zero boundary)."""
    p = jnp.pad(x, 1)
    neighbours = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
    return (4.0 * alpha + beta) * x - alpha * neighbours


def _line_inverse(n: int, diag: jax.Array, off: jax.Array) -> jax.Array:
    """Inverse of the bidiagonal line factor ``diag * I - off * S`` (S: subdiagonal ones).

    Returns [n, n] lower triangular, entries ``(1 / diag) * (off / diag)^(i - j)``.
    """
    d = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]
    q = off / diag
    powers = jnp.where(d >= 0, q ** jnp.maximum(d, 0).astype(q.dtype), 0.0)
    return powers / diag


def lower_solve(r: jax.Array, diag: jax.Array, off: jax.Array) -> jax.Array:
    """Solve ``(diag * I - off * N_lower) y = r`` in natural order, ``r`` [n, n] -> [n, n].

    ``N_lower`` holds the earlier neighbours of each point (left in its line, same position in
    the previous line): SOR's ``D / omega + tril(A, -1)`` is ``diag = (4 alpha + beta) / omega``,
    ``off = alpha``; SSOR's ``D + omega * tril(A, -1)`` is ``diag = 4 alpha + beta``,
    ``off = omega * alpha``.
    """
    n = r.shape[0]
    inv = _line_inverse(n, diag, off)
    lines = []
    prev = jnp.zeros_like(r[0])
    for k in range(n):  # lines are sequential; n is static
        # a product and a sum, not a dot: a dot traced in an x64 scope and batched again
        # outside it (the runner's vmap over seeds) is truncated to float32; also faster here
        prev = jnp.sum(inv * (r[k] + off * prev)[None, :], axis=1)
        lines.append(prev)
    return jnp.stack(lines)


def upper_solve(r: jax.Array, diag: jax.Array, off: jax.Array) -> jax.Array:
    """Solve ``(diag * I - off * N_upper) y = r`` (later neighbours): the transpose of
    :func:`lower_solve`'s factor, so the same solve on the grid reversed in both axes."""
    return lower_solve(r[::-1, ::-1], diag, off)[::-1, ::-1]


def _norm(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(x * x))


def sor_solve(
    alpha: jax.Array,
    beta: jax.Array,
    b: jax.Array,
    x0: jax.Array,
    omega: jax.Array,
    tol: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> tuple[jax.Array, jax.Array]:
    """SOR in natural ordering, as the authors' ``sor.m``: ``x += (D / omega + L) \\ r``.

    Stops at the first iteration ``k`` with ``||b - A x_k|| / ||b - A x_0|| < tol`` or at
    ``max_iterations`` (then ``k = max_iterations``, converged or not).

    Args:
        alpha, beta: the matrix ``alpha * L + beta * I`` (float64 scalars).
        b, x0: right-hand side and start, float64 [n, n].
        omega: relaxation parameter (any float; cast to float64).

    Returns:
        ``(iterations int32 scalar in [1, max_iterations], x float64 [n, n])``.
    """
    f64 = b.dtype
    omega = jnp.asarray(omega).astype(f64)
    diag = (4.0 * alpha + beta) / omega
    r0 = b - laplacian_apply(x0, alpha, beta)
    norm0 = _norm(r0)

    def cond(carry):
        k, _, _, done = carry
        return (~done) & (k < max_iterations)

    def body(carry):
        k, x, r, _ = carry
        x = x + lower_solve(r, diag, alpha)
        r = b - laplacian_apply(x, alpha, beta)
        return k + 1, x, r, _norm(r) / norm0 < tol

    k, x, _, _ = lax.while_loop(cond, body, (jnp.int32(0), x0, r0, jnp.zeros((), bool)))
    return k, x


def ssor_pcg_solve(
    alpha: jax.Array,
    beta: jax.Array,
    b: jax.Array,
    x0: jax.Array,
    omega: jax.Array,
    tol: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> tuple[jax.Array, jax.Array]:
    """SSOR-preconditioned CG from a warm start, as the authors' ``ssor_pcg.m`` (MATLAB ``pcg``).

    Preconditioner ``M = M1 M2`` with ``M1 = X' D^-1``, ``M2 = X / (omega (2 - omega))`` and
    ``X = D + omega tril(A, -1)``; each iteration applies ``M2 \\ (M1 \\ r)``. Stops when the
    recursive residual reaches ``tol * ||b||`` and the true residual ``b - A x`` confirms it (if
    not, CG continues from the true residual, as ``pcg`` does); returns 0 iterations when ``x0``
    already meets the tolerance, ``max_iterations`` when never.

    Args:
        alpha, beta: the matrix ``alpha * L + beta * I`` (float64 scalars).
        b, x0: right-hand side and warm start, float64 [n, n].
        omega: relaxation parameter in (0, 2).

    Returns:
        ``(iterations int32 scalar in [0, max_iterations], x float64 [n, n])``.
    """
    f64 = b.dtype
    omega = jnp.asarray(omega).astype(f64)
    d = 4.0 * alpha + beta
    tolb = tol * _norm(b)
    r0 = b - laplacian_apply(x0, alpha, beta)

    def precondition(r):
        y = d * upper_solve(r, d, omega * alpha)  # M1 \ r = D (X' \ r)
        return omega * (2.0 - omega) * lower_solve(y, d, omega * alpha)  # M2 \ y

    def cond(carry):
        k, _, _, _, _, done = carry
        return (~done) & (k < max_iterations)

    def body(carry):
        k, x, r, p, rho_prev, _ = carry
        z = precondition(r)
        rho = jnp.sum(r * z)
        p = jnp.where(k == 0, z, z + (rho / rho_prev) * p)
        q = laplacian_apply(p, alpha, beta)
        step = rho / jnp.sum(p * q)
        x = x + step * p
        r = r - step * q
        small = _norm(r) <= tolb
        r = jnp.where(small, b - laplacian_apply(x, alpha, beta), r)  # confirm with the true one
        return k + 1, x, r, p, rho, small & (_norm(r) <= tolb)

    start = (jnp.int32(0), x0, r0, jnp.zeros_like(b), jnp.ones((), f64), _norm(r0) <= tolb)
    k, x, *_ = lax.while_loop(cond, body, start)
    return k, x


def spectral_omega(n: int, alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """The asymptotically optimal SOR omega (the authors' ``omega_opt.m``) in closed form.

    Jacobi's spectral radius for ``alpha L + beta I`` on the ``n x n`` grid is
    ``rho = 4 alpha cos(pi h) / (4 alpha + beta)``, ``h = 1 / (n + 1)``; Young's optimum is
    ``1 + (rho / (1 + sqrt(1 - rho^2)))^2`` (``2 / (1 + sin(pi h))`` for ``beta = 0``).
    """
    rho = 4.0 * alpha * jnp.cos(jnp.pi / (n + 1)) / (4.0 * alpha + beta)
    return 1.0 + (rho / (1.0 + jnp.sqrt(1.0 - rho**2))) ** 2
