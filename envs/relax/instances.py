"""Instance families: shifted Laplacians with random offsets, and the 2-D heat equation.

Facts from the authors' code (``scripts/contextual.m``, ``scripts/h2d.m``, ``utils/Heat2D.m``,
``utils/bump.m``, ``utils/truncated_normal.m``); the code is written anew.

- ``"shift"``: ``A = L + c I`` on an ``n x n`` grid (their ``delsq(numgrid('S', 12))``, n = 10),
  ``c = c_low + c_scale * Beta(a, b)``: high variance ``-0.15 + 0.6 Beta(0.5, 1.5)``, low
  variance ``-0.15 + 0.6 Beta(2, 6)``; ``b`` a standard normal radially truncated to
  ``||b|| <= sqrt(N)`` (rejection sampling); solved by SOR from zero.
- ``"heat"``: Crank-Nicolson steps of ``u_t = kappa(t) Lap u + f(t, x)`` on the unit square with
  zero boundary, ``nx`` cells a side (``n = nx - 1`` unknowns a side), ``dt = 5 / 5000``;
  ``kappa(t) = max(0.1 sin(2 pi t), -10 sin(2 pi t))``; ``f`` a bump of height 32 and radius
  1/8 circling the centre at radius 1/4 with 8 turns per time unit; ``u(0)`` a bump of radius
  1/4 in the middle. Step ``i`` solves ``(I + s L) u' = (I - s L) u + dt f(t + dt / 2)``,
  ``s = kappa(t + dt / 2) dt / (2 dx^2)``, by SSOR-preconditioned CG warm-started at ``u``.

All float64 work happens inside ``jax.enable_x64(True)`` scopes; random draws are made in the
default 32-bit mode (the same streams whichever mode the caller is in).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

F64 = jnp.float64

FAMILIES: tuple[str, ...] = ("shift", "heat")
"""Instance families (a constructor argument: the heat family's grid differs)."""

VARIANCES: dict[str, tuple[float, float]] = {"high": (0.5, 1.5), "low": (2.0, 6.0)}
"""Beta(a, b) of the shift family's offset ``c = -0.15 + 0.6 Beta(a, b)`` (the paper's two)."""


def sample_offset(key: jax.Array, params: Any) -> jax.Array:
    """``c = c_low + c_scale * Beta(beta_a, beta_b)`` (float32 scalar)."""
    beta = jax.random.beta(key, params.beta_a, params.beta_b, dtype=jnp.float32)
    return jnp.asarray(params.c_low, jnp.float32) + params.c_scale * beta


def truncated_normal(key: jax.Array, n: int) -> jax.Array:
    """A standard normal [n, n] conditioned on ``||z|| <= n`` (= sqrt(N)), by rejection (float32).

    Acceptance is about one half, so the vmapped loop rarely runs more than a few rounds.
    """

    def draw(k):
        return jax.random.normal(k, (n, n), jnp.float32)

    def cond(carry):
        _, z = carry
        return jnp.sum(z * z) > n * n

    def body(carry):
        k, _ = carry
        k, sub = jax.random.split(k)
        return k, draw(sub)

    k, sub = jax.random.split(key)
    return lax.while_loop(cond, body, (k, draw(sub)))[1]


def bump(x: jax.Array, y: jax.Array, cx: jax.Array, cy: jax.Array, radius: jax.Array) -> jax.Array:
    """The authors' ``bump.m``: ``exp(1 - 1 / (1 - min(1, |p - c|^2 / r^2)))`` (0 outside)."""
    s = jnp.minimum(1.0, ((x - cx) ** 2 + (y - cy) ** 2) / radius**2)
    inside = s < 1.0
    return jnp.where(inside, jnp.exp(1.0 - 1.0 / jnp.where(inside, 1.0 - s, 1.0)), 0.0)


def grid_points(n: int) -> tuple[jax.Array, jax.Array]:
    """Coordinates ``(x, y)`` [n, n] of the interior points ``(k + 1, i + 1) / (n + 1)``; the line
    index ``k`` is the first coordinate, as ``Heat2D.ijdx`` (float64, x64 scope)."""
    h = 1.0 / (n + 1)
    coords = jnp.arange(1, n + 1, dtype=F64) * h
    return jnp.broadcast_to(coords[:, None], (n, n)), jnp.broadcast_to(coords[None, :], (n, n))


def diffusion(t: jax.Array, params: Any) -> jax.Array:
    """``kappa(t) = max(kappa_up sin(2 pi t), -kappa_down sin(2 pi t))``."""
    s = jnp.sin(2.0 * jnp.pi * t)
    return jnp.maximum(params.kappa_up * s, -params.kappa_down * s)


def forcing(t: jax.Array, n: int, params: Any) -> jax.Array:
    """The moving source ``f(t, x)`` on the grid [n, n] (float64, x64 scope)."""
    x, y = grid_points(n)
    angle = 2.0 * jnp.pi * params.forcing_turns * t
    cx = 0.5 + params.forcing_orbit * jnp.cos(angle)
    cy = 0.5 + params.forcing_orbit * jnp.sin(angle)
    return params.forcing_height * bump(x, y, cx, cy, params.forcing_radius)


def heat_initial(n: int, params: Any) -> jax.Array:
    """``u(0)``: a bump of radius ``initial_radius`` in the middle, [n, n] float64 (x64 scope)."""
    x, y = grid_points(n)
    return bump(x, y, 0.5, 0.5, params.initial_radius)


def heat_system(
    u: jax.Array, t: jax.Array, params: Any
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The Crank-Nicolson system of the step from time ``t`` (x64 scope).

    Args:
        u: the solution at ``t``, float64 [n, n].
        t: time, float64 scalar.

    Returns:
        ``(alpha, beta, b, kappa)``: the matrix ``alpha L + beta I`` (``alpha = s``, ``beta = 1``),
        the right-hand side [n, n] and the diffusion coefficient at the half step (the context).
    """
    n = u.shape[0]
    dt = jnp.asarray(params.dt).astype(F64)
    half = t + 0.5 * dt
    kappa = diffusion(half, params).astype(F64)
    s = 0.5 * kappa * dt * (n + 1) ** 2
    p = jnp.pad(u, 1)
    lap_u = 4.0 * u - (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])
    b = u - s * lap_u + dt * forcing(half, n, params).astype(F64)
    return s, jnp.ones((), F64), b, kappa
