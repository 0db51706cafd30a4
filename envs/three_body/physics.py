"""Gravity of three bodies in the plane: accelerations, jerks, time scales, energy (float64).

Units au / Msun / yr (``G = 4 pi^2``). Internally a system (or a batch of them) is a
:class:`BodyArrays`: 8 arrays of shape (3, *S), the body axis first and any batch axes S last,
so a batch is a few contiguous (3, B) arrays and the compiler emits few, wide kernels per
substep (about 1.4x faster on CPU than one array per body and coordinate, and 2x faster than
vmapping a per-system loop). The public functions take one system as (3, 2) arrays.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

F64 = jnp.float64

G_AU_MSUN_YR: float = 4.0 * math.pi**2
"""Gravitational constant in au^3 / (Msun yr^2)."""

KMS_IN_AU_PER_YR: float = 365.25 * 86400.0 / 149_597_870.7
"""1 km/s in au/yr (Julian year, IAU au): 0.21095."""

PAIRS = ((0, 1), (0, 2), (1, 2))
"""The body pairs (i, j), in the order of the pair axis below."""

_I = np.array([i for i, _ in PAIRS])
_J = np.array([j for _, j in PAIRS])


# ---------------------------------------------------------------------------------------------
# Float64 scope
# ---------------------------------------------------------------------------------------------


def x64(fn):
    """Run ``fn`` inside a ``jax.enable_x64(True)`` scope (works traced, jitted and vmapped)."""

    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    wrapped.__name__ = fn.__name__
    wrapped.__qualname__ = fn.__qualname__
    wrapped.__doc__ = fn.__doc__
    wrapped.__wrapped__ = fn
    return wrapped


def as_float64(tree: Any) -> Any:
    """Turn the floating leaves of ``tree`` into float64 ``jax.Array``s (e.g. after a restore).

    numpy float64 arrays passed into a jitted function outside an x64 scope are canonicalised to
    float32; converting a restored state with this function first keeps it float64.
    """
    with jax.enable_x64(True):

        def conv(x):
            x = jnp.asarray(x)
            return x.astype(F64) if jnp.issubdtype(x.dtype, jnp.floating) else x

        return jax.tree.map(conv, tree)


# ---------------------------------------------------------------------------------------------
# Body-first arrays
# ---------------------------------------------------------------------------------------------


class BodyArrays(NamedTuple):
    """One system (or a batch, axes trailing): each field has shape (3, *S), float64."""

    x: jax.Array
    y: jax.Array
    vx: jax.Array
    vy: jax.Array
    ax: jax.Array
    ay: jax.Array
    jx: jax.Array
    jy: jax.Array


class Forces(NamedTuple):
    """What :func:`forces_flat` evaluates at one (batch of) state(s)."""

    ax: jax.Array
    """Acceleration, x, shape (3, *S)."""
    ay: jax.Array
    """Acceleration, y, shape (3, *S)."""
    jx: jax.Array
    """Jerk, x, shape (3, *S)."""
    jy: jax.Array
    """Jerk, y, shape (3, *S)."""
    collision_time: jax.Array
    """Collision time, shape S."""


def _per_body(pair_i, pair_j):
    """Sum pair terms into bodies: body i gets +pair_i, body j gets -pair_j (pairs 01, 02, 12)."""
    return jnp.stack([pair_i[0] + pair_i[1], pair_i[2] - pair_j[0], -pair_j[1] - pair_j[2]], axis=0)


def forces_flat(x, y, vx, vy, m, G) -> Forces:
    """Acceleration, jerk (each (3, *S)) and collision time (S) from body-first arrays.

    ``m`` has shape (3, ...) broadcastable against the batch axes. Collision time (AMUSE
    Hermite): min over pairs of min(r/|v|, sqrt(r^3 / (G (m_i+m_j)))), evaluated as
    1/sqrt(max over pairs of max(v^2/r^2, G (m_i+m_j)/r^3)) (no division by v).
    """
    dx, dy = x[_J] - x[_I], y[_J] - y[_I]  # (pairs, *S)
    dvx, dvy = vx[_J] - vx[_I], vy[_J] - vy[_I]
    rinv = jax.lax.rsqrt(dx * dx + dy * dy)
    rinv2 = rinv * rinv
    rinv3 = rinv * rinv2
    rv3 = 3.0 * (dx * dvx + dy * dvy) * rinv2
    kx, ky = dvx - rv3 * dx, dvy - rv3 * dy
    fi, fj = G * m[_J] * rinv3, G * m[_I] * rinv3  # pull on i toward j, on j toward i
    ax, ay = _per_body(fi * dx, fj * dx), _per_body(fi * dy, fj * dy)
    jx, jy = _per_body(fi * kx, fj * kx), _per_body(fi * ky, fj * ky)
    pair = jnp.maximum((dvx * dvx + dvy * dvy) * rinv2, G * (m[_I] + m[_J]) * rinv3)
    return Forces(ax, ay, jx, jy, jax.lax.rsqrt(jnp.max(pair, axis=0)))


def _norm(cx, cy):
    return jnp.sqrt(cx * cx + cy * cy)


def aarseth_timescale(a0x, a0y, a1x, a1y, j0x, j0y, j1x, j1y, dt):
    """Aarseth's time scale min_i sqrt((|a||a2| + |j|^2) / (|j||a3| + |a2|^2)) at step end.

    a2, a3 from the Hermite interpolation of the step just taken (start values
    a2 dt^2 = -6(a0-a1) - dt(4 j0 + 2 j1), a3 dt^3 = 12(a0-a1) + 6 dt (j0+j1)),
    a2 moved to the end of the step (a2 + a3 dt). Body-first arrays; returns shape S.
    """
    dax, day = a0x - a1x, a0y - a1y
    a3x = (12.0 * dax + 6.0 * dt * (j0x + j1x)) / dt**3
    a3y = (12.0 * day + 6.0 * dt * (j0y + j1y)) / dt**3
    a2x = (-6.0 * dax - dt * (4.0 * j0x + 2.0 * j1x)) / dt**2 + a3x * dt
    a2y = (-6.0 * day - dt * (4.0 * j0y + 2.0 * j1y)) / dt**2 + a3y * dt
    a, j = _norm(a1x, a1y), _norm(j1x, j1y)
    a2, a3 = _norm(a2x, a2y), _norm(a3x, a3y)
    return jnp.sqrt(jnp.min((a * a2 + j * j) / (j * a3 + a2 * a2), axis=0))


# ---------------------------------------------------------------------------------------------
# One system
# ---------------------------------------------------------------------------------------------


@x64
def forces(pos: jax.Array, vel: jax.Array, mass: jax.Array, G: float):
    """Acceleration, jerk and collision time of one system.

    Args:
        pos: positions, shape (3, 2).
        vel: velocities, shape (3, 2).
        mass: masses, shape (3,).
        G: gravitational constant.

    Returns:
        ``(acc (3, 2), jerk (3, 2), collision_time ())``, float64.
    """
    pos, vel, mass = (jnp.asarray(a, F64) for a in (pos, vel, mass))
    f = forces_flat(pos[:, 0], pos[:, 1], vel[:, 0], vel[:, 1], mass, jnp.asarray(G, F64))
    return jnp.stack([f.ax, f.ay], axis=1), jnp.stack([f.jx, f.jy], axis=1), f.collision_time


@x64
def total_energy(pos: jax.Array, vel: jax.Array, mass: jax.Array, G: float) -> jax.Array:
    """Kinetic plus potential energy of one system (pos, vel (3, 2); mass (3,)), float64."""
    pos, vel, mass = (jnp.asarray(a, F64) for a in (pos, vel, mass))
    kinetic = 0.5 * jnp.sum(mass * jnp.sum(vel * vel, axis=-1))
    potential = 0.0
    for i, j in PAIRS:
        d = pos[j] - pos[i]
        potential = potential - G * mass[i] * mass[j] / jnp.sqrt(jnp.sum(d * d))
    return kinetic + potential
