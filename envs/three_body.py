"""ThreeBody-v0: adaptive time-step control of the chaotic gravitational three-body problem.

Reproduces the formulation of Saz Ulibarrena & Portegies Zwart (arXiv 2502.12809): an agent
chooses the time-step parameter ``mu`` of a 4th-order Hermite integrator (shared adaptive step
``dt = mu * collision time``) once per check interval of 0.1 yr, trading energy error against
compute. Planar, three unit-mass bodies, units au / Msun / yr (``G = 4 pi^2``).

Physics runs in float64 inside ``jax.enable_x64(True)`` scopes (DESIGN.md, Precision), so the
rest of a program stays float32: the environment state holds float64 ``jax.Array`` leaves and
the observations handed to agents are float32.

Load balance: close encounters need ~100x more substeps than quiet stretches, and a vmapped
``while_loop`` runs every copy until the slowest is done. The environment therefore ends a
decision at the next check time *or* after ``max_substeps_per_decision`` (C) substeps, whichever
comes first. Check times stay on the 0.1 yr grid, so the trajectory does not depend on C; the
agent just gets extra decisions inside close encounters (``info["reached_check"]`` is False for
them) and these do not count toward the episode's 100 check times. ``C`` very large is the
paper's formulation exactly.

Pure functions usable without the environment: :func:`integrate`, :func:`total_energy`,
:func:`hermite_init`, :func:`hermite_substep`, :func:`hermite_advance`, :func:`forces`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from accelrl.envs.registry import register

F64 = jnp.float64

G_AU_MSUN_YR: float = 4.0 * math.pi**2
"""Gravitational constant in au^3 / (Msun yr^2)."""

KMS_IN_AU_PER_YR: float = 365.25 * 86400.0 / 149_597_870.7
"""1 km/s in au/yr (Julian year, IAU au): 0.21095."""

CRITERIA: dict[str, int] = {"collision": 0, "aarseth": 1}
"""Step criteria by name; the int is what ``EnvParams.criterion`` holds."""

PAPER_MU_VALUES: tuple[float, ...] = tuple(float(v) for v in 10.0 ** np.linspace(-4, -1, 10))
"""The paper's 10 log-spaced time-step parameters, 1e-4 ... 1e-1."""

DEFAULT_MAX_SUBSTEPS_PER_DECISION: int = 32
"""Default cap C on Hermite substeps per decision (measured trade-off: docs/envs/three_body.md)."""

_PAIRS = ((0, 1), (0, 2), (1, 2))


# ---------------------------------------------------------------------------------------------
# Float64 scope
# ---------------------------------------------------------------------------------------------


def _x64(fn):
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
# Physics. Internally a system is 8 arrays (x, y, vx, vy, ax, ay, jx, jy) of shape (3, *S):
# the body axis first and any batch axes S last, so a batch is a few contiguous (3, B) arrays
# and the compiler emits few, wide kernels per substep (about 1.4x faster on CPU than one
# array per body and coordinate, and 2x faster than vmapping a per-system loop).
# ---------------------------------------------------------------------------------------------

_I = np.array([i for i, _ in _PAIRS])
_J = np.array([j for _, j in _PAIRS])


class _Flat(NamedTuple):
    """One system (or a batch, axes trailing): each field has shape (3, *S), float64."""

    x: jax.Array
    y: jax.Array
    vx: jax.Array
    vy: jax.Array
    ax: jax.Array
    ay: jax.Array
    jx: jax.Array
    jy: jax.Array


def _per_body(pair_i, pair_j):
    """Sum pair terms into bodies: body i gets +pair_i, body j gets -pair_j (pairs 01, 02, 12)."""
    return jnp.stack([pair_i[0] + pair_i[1], pair_i[2] - pair_j[0], -pair_j[1] - pair_j[2]], axis=0)


def _forces_flat(x, y, vx, vy, m, G):
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
    return ax, ay, jx, jy, jax.lax.rsqrt(jnp.max(pair, axis=0))


def _norm(cx, cy):
    return jnp.sqrt(cx * cx + cy * cy)


def _aarseth_timescale(a0x, a0y, a1x, a1y, j0x, j0y, j1x, j1y, dt):
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


def _criterion_code(criterion: Any) -> Any:
    if isinstance(criterion, str):
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
        return CRITERIA[criterion]
    return criterion


def _select_criterion(criterion, collision_fn, aarseth_fn):
    """Static choice for a Python int; for a traced one a ``lax.cond`` when it is shared by the
    whole batch (one size-1 value: only the chosen branch runs), else an elementwise select."""
    if isinstance(criterion, int | np.integer):
        return aarseth_fn() if int(criterion) == 1 else collision_fn()
    criterion = jnp.asarray(criterion)
    if criterion.size == 1:
        return jax.lax.cond(criterion.reshape(()) == 1, aarseth_fn, collision_fn)
    return jnp.where(criterion == 1, aarseth_fn(), collision_fn())


@struct.dataclass
class HermiteState:
    """Integrator state of one system carried between substeps (all float64).

    Attributes:
        pos: positions, shape (3, 2).
        vel: velocities, shape (3, 2).
        acc: accelerations at (pos, vel), shape (3, 2).
        jerk: jerks at (pos, vel), shape (3, 2).
        t: time reached, scalar.
        timescale: the step criterion's time scale for the next substep (dt = eta * timescale):
            the collision time, or Aarseth's time scale carried from the last full substep.
    """

    pos: jax.Array
    vel: jax.Array
    acc: jax.Array
    jerk: jax.Array
    t: jax.Array
    timescale: jax.Array


def _to_flat(h: HermiteState) -> _Flat:
    return _Flat(*(a[:, k] for a in (h.pos, h.vel, h.acc, h.jerk) for k in (0, 1)))


def _from_flat(f: _Flat, t, timescale) -> HermiteState:
    def join(cx, cy):
        return jnp.stack([cx, cy], axis=1)

    return HermiteState(
        pos=join(f.x, f.y),
        vel=join(f.vx, f.vy),
        acc=join(f.ax, f.ay),
        jerk=join(f.jx, f.jy),
        t=t,
        timescale=timescale,
    )


@_x64
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
    ax, ay, jx, jy, coll = _forces_flat(
        pos[:, 0], pos[:, 1], vel[:, 0], vel[:, 1], mass, jnp.asarray(G, F64)
    )
    return jnp.stack([ax, ay], axis=1), jnp.stack([jx, jy], axis=1), coll


@_x64
def hermite_init(
    pos: jax.Array, vel: jax.Array, mass: jax.Array, G: float, criterion: Any = "collision"
) -> HermiteState:
    """Integrator state at t = 0 for one system (pos, vel (3, 2); mass (3,)).

    ``criterion`` is ``"collision"``/``"aarseth"`` or its int code (may be traced).
    """
    pos, vel, mass = (jnp.asarray(a, F64) for a in (pos, vel, mass))
    acc, jerk, coll = forces(pos, vel, mass, G)
    _criterion_code(
        criterion
    )  # validate; both start from the collision time (Aarseth needs a2, a3)
    return HermiteState(pos=pos, vel=vel, acc=acc, jerk=jerk, t=jnp.zeros((), F64), timescale=coll)


def _substep_flat(f: _Flat, t, timescale, mass, G, eta, t_end, criterion, active=None):
    """One predictor-corrector substep; the step is shortened to land exactly on ``t_end``.

    ``t``, ``timescale``, ``eta``, ``t_end`` have the batch shape S (or broadcast to it), the
    fields of ``f`` and ``mass`` (3, *S). ``active`` (bool, shape S) masks systems that must not
    move: they take a step of length 0 (an exact identity for positions and velocities) and
    keep their acceleration, jerk, time and time scale. This is how a batch runs in lockstep
    without a select on every carried value (see :func:`hermite_advance`).
    """
    dt_full = eta * timescale
    remaining = t_end - t
    last = dt_full >= remaining
    dt = jnp.where(last, remaining, dt_full)
    if active is not None:
        dt = jnp.where(active, dt, 0.0)
    h2, h6, dt2_12 = 0.5 * dt, dt / 6.0, dt * dt / 12.0

    # PREDICT
    xp = f.x + dt * (f.vx + dt * (0.5 * f.ax + h6 * f.jx))
    yp = f.y + dt * (f.vy + dt * (0.5 * f.ay + h6 * f.jy))
    vxp = f.vx + dt * (f.ax + h2 * f.jx)
    vyp = f.vy + dt * (f.ay + h2 * f.jy)

    # EVALUATE at the predicted state
    ax1, ay1, jx1, jy1, coll = _forces_flat(xp, yp, vxp, vyp, mass, G)
    if active is not None:
        # select right after the evaluation, and let the corrector read the selected values:
        # XLA then fuses the forces once (selecting the outputs instead costs ~1.5x per substep)
        ax1, ay1 = jnp.where(active, ax1, f.ax), jnp.where(active, ay1, f.ay)
        jx1, jy1 = jnp.where(active, jx1, f.jx), jnp.where(active, jy1, f.jy)

    # CORRECT (Hut-Makino time-symmetric form)
    vx1 = f.vx + h2 * (f.ax + ax1) + dt2_12 * (f.jx - jx1)
    vy1 = f.vy + h2 * (f.ay + ay1) + dt2_12 * (f.jy - jy1)
    x1 = f.x + h2 * (f.vx + vx1) + dt2_12 * (f.ax - ax1)
    y1 = f.y + h2 * (f.vy + vy1) + dt2_12 * (f.ay - ay1)

    # NEXT TIME SCALE (Aarseth's only from full-length substeps: a landing step may be tiny)
    def aarseth():
        tau = _aarseth_timescale(f.ax, f.ay, ax1, ay1, f.jx, f.jy, jx1, jy1, dt)
        return jnp.where(last | ~(tau > 0.0) | ~jnp.isfinite(tau), timescale, tau)

    new_timescale = _select_criterion(criterion, lambda: coll, aarseth)
    t1 = jnp.where(last, t_end, t + dt)
    if active is not None:
        new_timescale = jnp.where(active, new_timescale, timescale)
        t1 = jnp.where(active, t1, t)
    return _Flat(x1, y1, vx1, vy1, ax1, ay1, jx1, jy1), t1, new_timescale


@_x64
def hermite_substep(
    h: HermiteState,
    mass: jax.Array,
    G: float,
    eta: float,
    t_end: float,
    criterion: Any = "collision",
) -> HermiteState:
    """One Hermite substep of ``dt = min(eta * h.timescale, t_end - h.t)``.

    Args:
        h: integrator state of one system.
        mass: masses (3,).
        G: gravitational constant.
        eta: time-step parameter (``mu`` in the paper).
        t_end: time to land on; the substep is shortened so as not to pass it.
        criterion: ``"collision"``/``"aarseth"`` or its int code.

    Returns:
        The state after the substep.
    """
    f, t, tau = _substep_flat(
        _to_flat(h),
        h.t,
        h.timescale,
        jnp.asarray(mass, F64),
        jnp.asarray(G, F64),
        jnp.asarray(eta, F64),
        jnp.asarray(t_end, F64),
        _criterion_code(criterion),
    )
    return _from_flat(f, t, tau)


def _advance_lockstep(criterion, *arrays):
    """Substep loop over a batch with trailing axes S, every system advanced in lockstep.

    ``arrays``: the 8 ``_Flat`` fields and ``mass`` (shape (3, *S)), then ``t, timescale, G,
    eta, t_end, max_substeps`` (shape S), then (only for a traced criterion) its code (S).
    Shared values may have size-1 axes instead (they stay small and the compiler sees them as
    such). Systems that are done take masked zero-length steps (``_substep_flat(active=...)``)
    until the slowest is done: no per-leaf select of the whole carry, which is what a vmapped
    per-system ``while_loop`` would add.

    Returns the 8 fields, ``t``, ``timescale`` and ``n_substeps``.
    """
    shape = jnp.broadcast_shapes(*(a.shape for a in arrays[9:]), *(a.shape[1:] for a in arrays[:9]))
    flat = _Flat(*(jnp.broadcast_to(a, (3, *shape)) for a in arrays[:8]))
    mass = arrays[8]
    t, tau = (jnp.broadcast_to(a, shape) for a in arrays[9:11])
    G, eta, t_end, max_substeps = arrays[11:15]
    code = arrays[15] if len(arrays) > 15 else criterion

    def running(t, n):
        return (t < t_end) & (n < max_substeps)

    def cond(c):
        _, t, _, n = c
        return jnp.any(running(t, n))

    def body(c):
        f, t, tau, n = c
        active = running(t, n)
        f, t, tau = _substep_flat(f, t, tau, mass, G, eta, t_end, code, active)
        return f, t, tau, n + active.astype(n.dtype)

    init = (flat, t, tau, jnp.zeros_like(t, max_substeps.dtype))  # like t: shard_map-varying
    f, t, tau, n = jax.lax.while_loop(cond, body, init)
    return (*f, t, tau, n)


_LOCKSTEP_CORES: dict[Any, Any] = {}


def _lockstep_core(criterion):
    """``_advance_lockstep`` as a ``custom_vmap`` function (one per static criterion).

    Under ``vmap`` it is not vmapped primitive by primitive: the batch axis moves to the end
    (a size-1 axis for unbatched arguments) and the arrays go straight into the same loop, one
    level up. Nested vmaps (seeds x envs) apply the rule once per level.
    """
    key = "traced" if not isinstance(criterion, int | np.integer) else int(criterion)
    if key not in _LOCKSTEP_CORES:

        @jax.custom_batching.custom_vmap
        def core(*arrays):
            return _advance_lockstep(criterion if key != "traced" else None, *arrays)

        @core.def_vmap
        def _rule(axis_size, in_batched, *arrays):
            del axis_size
            with jax.enable_x64(True):
                arrays = [
                    jnp.moveaxis(a, 0, -1) if b else a[..., None]
                    for a, b in zip(arrays, in_batched, strict=True)
                ]
                out = core(*arrays)
                out = tuple(jnp.moveaxis(a, -1, 0) for a in out)
            return out, (True,) * len(out)

        _LOCKSTEP_CORES[key] = core
    return _LOCKSTEP_CORES[key]


@_x64
def hermite_advance(
    h: HermiteState,
    mass: jax.Array,
    G: float,
    eta: float,
    t_end: float,
    max_substeps: Any,
    criterion: Any = "collision",
) -> tuple[HermiteState, jax.Array]:
    """Substeps until ``t_end`` is reached exactly or ``max_substeps`` were taken.

    Under ``vmap`` (any nesting) this is one lockstep ``while_loop`` over the whole batch that
    runs until every system is done. Finished systems take masked zero-length substeps, so a
    system's result does not depend on how long the others in its batch run.

    Returns:
        ``(state, n_substeps)``; ``state.t == t_end`` iff the target was reached. A non-finite
        time (a collision) also stops the loop.
    """
    code = _criterion_code(criterion)
    # float64 throughout, whatever the caller's state holds (the loop's carry types are fixed)
    arrays = [jnp.asarray(a, F64) for a in (*_to_flat(h), mass, h.t, h.timescale, G, eta, t_end)]
    arrays.append(jnp.asarray(max_substeps, jnp.int32))
    if not isinstance(code, int | np.integer):
        arrays.append(jnp.asarray(code, jnp.int32))
    out = _lockstep_core(code)(*arrays)
    return _from_flat(_Flat(*out[:8]), out[8], out[9]), out[10]


@_x64
def integrate(
    pos: jax.Array,
    vel: jax.Array,
    mass: jax.Array,
    t_end: float,
    eta: float,
    G: float,
    *,
    max_substeps: int = 10_000_000,
    criterion: str = "collision",
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Integrate one system from t = 0 to ``t_end`` (landing on it exactly); vmappable.

    Args:
        pos: positions, shape (3, 2).
        vel: velocities, shape (3, 2).
        mass: masses, shape (3,).
        t_end: end time.
        eta: time-step parameter (dt = eta * collision time, or Aarseth's time scale).
        G: gravitational constant.
        max_substeps: stop after this many substeps (``n_substeps == max_substeps`` means the
            system stopped early), so a near-collision can never hang the loop.
        criterion: ``"collision"`` (AMUSE Hermite) or ``"aarseth"``.

    Returns:
        ``(pos (3, 2), vel (3, 2), n_substeps ())`` with float64 positions and velocities.

    Pass float64 ``jax.Array``s (numpy float64 entering a jit outside an x64 scope is
    canonicalised to float32 at that boundary).
    """
    h = hermite_init(pos, vel, mass, G, criterion)
    h, n = hermite_advance(h, mass, G, eta, t_end, max_substeps, criterion)
    return h.pos, h.vel, n


@_x64
def total_energy(pos: jax.Array, vel: jax.Array, mass: jax.Array, G: float) -> jax.Array:
    """Kinetic plus potential energy of one system (pos, vel (3, 2); mass (3,)), float64."""
    pos, vel, mass = (jnp.asarray(a, F64) for a in (pos, vel, mass))
    kinetic = 0.5 * jnp.sum(mass * jnp.sum(vel * vel, axis=-1))
    potential = 0.0
    for i, j in _PAIRS:
        d = pos[j] - pos[i]
        potential = potential - G * mass[i] * mass[j] / jnp.sqrt(jnp.sum(d * d))
    return kinetic + potential


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class EnvParams:
    """Everything a curriculum or tuner may vary (shapes fixed). Defaults: the paper's setup."""

    mu_values: jax.Array = struct.field(
        default_factory=lambda: jnp.asarray(PAPER_MU_VALUES, jnp.float32)
    )
    """Discrete actions: the time-step parameters to choose from, shape (num_actions,)."""
    log_mu_low: float = -4.0
    """Continuous variant: lowest log10 mu (actions are clipped to [low, high])."""
    log_mu_high: float = -1.0
    """Continuous variant: highest log10 mu."""
    initial_mu: float = 1e-4
    """mu reported in the state at reset (the paper starts at 1e-4)."""
    check_interval: float = 0.1
    """Physical time between check times, yr."""
    num_checks: int = 100
    """Check times per episode (100 in training = 10 yr, 300 in evaluation)."""
    max_decisions: int = 10_000
    """Cap on all decisions (check times plus extra decisions inside encounters): truncates.
    With C = 32, fixed mu = 1e-4 averages ~80 decisions per check interval (~8,000 for 100)."""
    max_substeps_per_decision: int = DEFAULT_MAX_SUBSTEPS_PER_DECISION
    """C: a decision ends after this many substeps if the check time is not reached."""
    criterion: int = 0
    """Step criterion: 0 collision time (AMUSE Hermite, the paper), 1 Aarseth."""
    energy_error_limit: float = 0.1
    """Terminate when |dE| exceeds this."""
    w_energy: float = 3000.0
    """W0: weight of the energy-error term."""
    w_action: float = 4.0
    """W2: weight of the W2 / |log10 mu| term (rewards large steps)."""
    w_compute: float = 0.0
    """Extra compute-cost term: reward -= w_compute * substeps of the decision (0 = paper)."""
    time_weighted_reward: bool = True
    """Scale the paper's reward by the fraction of the check interval a decision covered (1 for
    decisions that land on check times; extra decisions inside encounters earn their share)."""
    energy_reference: float = 1e-10
    """Error at which the energy term changes sign (the 1e-10 in log10(|dE| / 1e-10))."""
    reward_error_cap: float = 0.1
    """|dE| is clipped to this in the reward (keeps the terminal reward finite near |dE| = 1)."""
    ic_low: jax.Array = struct.field(
        default_factory=lambda: jnp.asarray([5.0, 0.0, -10.0, 5.0], jnp.float32)
    )
    """Lower bounds of (x1, y1, x2, y2), au."""
    ic_high: jax.Array = struct.field(
        default_factory=lambda: jnp.asarray([20.0, 10.0, 0.0, 20.0], jnp.float32)
    )
    """Upper bounds of (x1, y1, x2, y2), au."""
    masses: jax.Array = struct.field(default_factory=lambda: jnp.ones(3, jnp.float32))
    """Masses, Msun, shape (3,)."""
    initial_speed_kms: float = 10.0
    """Speed of bodies 0 (+y) and 1 (-x) at reset, km/s."""
    G: float = G_AU_MSUN_YR
    """Gravitational constant, au^3 / (Msun yr^2)."""

    @property
    def max_steps_in_episode(self) -> int:
        """gymnax's name for the step cap (evaluation loops read it): ``max_decisions``."""
        return self.max_decisions


def evaluation_params(params: EnvParams | None = None) -> EnvParams:
    """The paper's evaluation protocol: 300 check times (30 yr) instead of 100."""
    params = EnvParams() if params is None else params
    return params.replace(num_checks=300, max_decisions=3 * params.max_decisions)


@struct.dataclass
class EnvState:
    """One episode's state; physics leaves are float64 jax arrays."""

    hermite: HermiteState
    """Integrator state (float64)."""
    energy0: jax.Array
    """Energy at reset (float64)."""
    energy_error: jax.Array
    """Relative energy error (E - E0) / E0 (float64)."""
    mu: jax.Array
    """Time-step parameter of the last decision (float32)."""
    checks: jax.Array
    """Check times reached (int32)."""
    time: jax.Array
    """Decisions taken (int32)."""
    substeps: jax.Array
    """Substeps of the last decision (int32)."""
    total_substeps: jax.Array
    """Substeps since reset: the compute cost (int32)."""
    blew_up: jax.Array
    """Whether the integration produced a non-finite state (bool; the last finite is kept)."""


def _param64(x: Any) -> jax.Array:
    """A float param as float64, rounded to float32 first (call inside an x64 scope).

    Params passed through ``jit`` in the default mode arrive as float32 while Python floats stay
    exact; rounding both the same way keeps reset and step consistent (E0 and E use one G).
    """
    return jnp.asarray(x, jnp.float32).astype(F64)


def _uniform53(bits: jax.Array) -> jax.Array:
    """Float64 uniforms in [0, 1) with 53 random bits from uint32 pairs [..., 2] (x64 scope)."""
    hi = (bits[..., 0] >> 6).astype(F64)  # 26 bits
    lo = (bits[..., 1] >> 5).astype(F64)  # 27 bits
    return (hi * 2.0**27 + lo) / 2.0**53


def initial_conditions(key: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
    """The paper's initial-condition distribution, in the centre-of-mass frame (float64).

    Returns:
        ``(pos (3, 2), vel (3, 2))`` in au and au/yr.
    """
    bits = jax.random.bits(key, (4, 2), jnp.uint32)  # drawn in the default (32-bit) mode
    with jax.enable_x64(True):
        low = _param64(params.ic_low)
        high = _param64(params.ic_high)
        k = low + (high - low) * _uniform53(bits)
        zero = jnp.zeros((), F64)
        pos = jnp.stack([jnp.stack([zero, zero]), k[0:2], k[2:4]])
        v = _param64(params.initial_speed_kms) * KMS_IN_AU_PER_YR
        vel = jnp.stack([jnp.stack([zero, v]), jnp.stack([-v, zero]), jnp.stack([zero, zero])])
        m = _param64(params.masses)[:, None]
        pos = pos - jnp.sum(m * pos, 0) / jnp.sum(m)
        vel = vel - jnp.sum(m * vel, 0) / jnp.sum(m)
        return pos, vel


def paper_reward(energy_error: jax.Array, mu: jax.Array, t: jax.Array, params: EnvParams):
    """The paper's reward R = -W0 log10(|dE| / 1e-10) / (|log10|dE||^3 t) + W2 / |log10 mu|.

    Args:
        energy_error: relative energy error dE (any sign); |dE| is clipped to
            [1e-16, ``params.reward_error_cap``] so the value stays finite.
        mu: time-step parameter of the decision.
        t: time in check intervals (the paper's decision index).
        params: weights ``w_energy`` (W0), ``w_action`` (W2) and ``energy_reference`` (1e-10).

    Returns:
        Scalar float64 (inside an x64 scope; float32 outside).
    """
    abs_err = jnp.clip(jnp.abs(energy_error), 1e-16, params.reward_error_cap)
    log_err = jnp.log10(abs_err)
    log_ref = jnp.log10(jnp.asarray(params.energy_reference, abs_err.dtype))
    denom = jnp.maximum(jnp.abs(log_err), 1e-6) ** 3 * t
    energy_term = -params.w_energy * (log_err - log_ref) / denom
    abs_log_mu = jnp.maximum(jnp.abs(jnp.log10(jnp.asarray(mu, abs_err.dtype))), 1e-6)
    return energy_term + params.w_action / abs_log_mu


class ThreeBody(environment.Environment):
    """Choose the Hermite time-step parameter mu (discrete, ``num_actions`` values).

    Observation (13 float32): x, y of the 3 bodies / 10 au; vx, vy in N-body velocity units
    (sqrt(G M_total / 1 au)); -log10|dE| (0 at reset).
    Reward (paper): R = -W0 log10(|dE| / 1e-10) / (|log10|dE||^3 t) + W2 / |log10 mu|
    with t the physical time in check intervals (at least 1), R = 0 at the first decision of an
    episode; a decision cut short by the substep cap earns the covered fraction of the interval
    (``time_weighted_reward``); minus ``w_compute * substeps`` (0 by default).
    """

    def __init__(self, num_actions: int = 10):
        super().__init__()
        self._num_actions = int(num_actions)

    @property
    def name(self) -> str:
        return "ThreeBody-v0"

    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def default_params(self) -> EnvParams:
        values = 10.0 ** np.linspace(-4, -1, self._num_actions)
        return EnvParams(mu_values=jnp.asarray(values, jnp.float32))

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (13,), jnp.float32)

    def action_to_mu(self, action: jax.Array, params: EnvParams) -> jax.Array:
        """mu for an action index (float32 scalar)."""
        return jnp.asarray(params.mu_values, jnp.float32)[jnp.asarray(action, jnp.int32)]

    # --- dynamics ------------------------------------------------------------------------

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        with jax.enable_x64(True):
            pos, vel = initial_conditions(key, params)
            mass, G = _param64(params.masses), _param64(params.G)
            h = hermite_init(pos, vel, mass, G, params.criterion)
            state = EnvState(
                hermite=h,
                energy0=total_energy(pos, vel, mass, G),
                energy_error=jnp.zeros((), F64),
                mu=jnp.asarray(params.initial_mu, jnp.float32),
                checks=jnp.zeros((), jnp.int32),
                time=jnp.zeros((), jnp.int32),
                substeps=jnp.zeros((), jnp.int32),
                total_substeps=jnp.zeros((), jnp.int32),
                blew_up=jnp.zeros((), bool),
            )
        return self.get_obs(state, params), state

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        mu = self.action_to_mu(action, params)
        with jax.enable_x64(True):
            mass, G = _param64(params.masses), _param64(params.G)
            interval = _param64(params.check_interval)

            # INTEGRATE to the next check time or for C substeps
            t_check = (state.checks + 1).astype(F64) * interval
            h, n = hermite_advance(
                state.hermite,
                mass,
                G,
                mu.astype(F64),
                t_check,
                params.max_substeps_per_decision,
                params.criterion,
            )
            energy = total_energy(h.pos, h.vel, mass, G)
            error = (energy - state.energy0) / state.energy0

            # CLOSE ENCOUNTERS: keep the last finite state and terminate
            finite = jnp.all(jnp.isfinite(h.pos)) & jnp.all(jnp.isfinite(h.vel))
            finite = finite & jnp.isfinite(error) & jnp.isfinite(h.t)
            h = jax.tree.map(lambda a, b: jnp.where(finite, a, b), h, state.hermite)
            error = jnp.where(finite, error, jnp.asarray(jnp.inf, F64))
            reached = finite & (h.t >= t_check)

            # REWARD (paper's, with t in check intervals)
            t_units = jnp.maximum(h.t / interval, 1.0)
            reward = paper_reward(error, mu, t_units, params)
            # a decision covering part of a check interval earns that fraction (no effect when
            # decisions land on check times; keeps the return per physical time independent of C)
            t_prev_check = state.checks.astype(F64) * interval
            whole = ~finite | (reached & (state.hermite.t == t_prev_check))
            covered = jnp.where(whole, 1.0, (h.t - state.hermite.t) / interval)
            reward = reward * jnp.where(params.time_weighted_reward, covered, 1.0)
            reward = reward - params.w_compute * n.astype(F64)
            reward = jnp.where(state.time == 0, 0.0, reward).astype(jnp.float32)

            new = EnvState(
                hermite=h,
                energy0=state.energy0,
                energy_error=jnp.where(finite, error, state.energy_error),
                mu=mu,
                checks=state.checks + reached.astype(jnp.int32),
                time=state.time + 1,
                substeps=n,
                total_substeps=state.total_substeps + n,
                blew_up=~finite,
            )
            terminated = (~finite) | (jnp.abs(error) > params.energy_error_limit)
            info = {
                # a blow-up reports |dE| = 1 (finite, and far beyond any termination limit)
                "energy_error": jnp.where(finite, jnp.abs(error), 1.0).astype(jnp.float32),
                "substeps": n,
                "total_substeps": new.total_substeps,
                "reached_check": reached,
                "checks": new.checks,
                "physical_time": h.t.astype(jnp.float32),
                "mu": mu,
                "blew_up": ~finite,
            }
        return self.get_obs(new, params), new, reward, terminated, info

    def get_obs(self, state: EnvState, params: EnvParams, key: Any = None) -> jax.Array:
        with jax.enable_x64(True):
            h = state.hermite
            v_unit = jnp.sqrt(_param64(params.G) * jnp.sum(_param64(params.masses)))
            err = jnp.abs(state.energy_error)
            log_err = jnp.where(err > 0.0, -jnp.log10(jnp.maximum(err, 1e-16)), 0.0)
            obs = jnp.concatenate(
                [h.pos.reshape(-1) / 10.0, h.vel.reshape(-1) / v_unit, log_err[None]]
            )
            return obs.astype(jnp.float32)

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return self.is_terminated(state, params) | self.is_truncated(state, params)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        with jax.enable_x64(True):
            return state.blew_up | (jnp.abs(state.energy_error) > params.energy_error_limit)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return (state.checks >= params.num_checks) | (state.time >= params.max_decisions)

    # --- rendering ---------------------------------------------------------------------------

    def render(self, states: list, params: EnvParams | None = None, size: int = 400) -> np.ndarray:
        """Orbits so far: ``states`` since reset (the last is current) -> uint8 [H, W, 3]."""
        return render_orbits(states, size=size)


class ThreeBodyContinuous(ThreeBody):
    """ThreeBody with a continuous action: log10 mu in [log_mu_low, log_mu_high], shape (1,)."""

    def __init__(self):
        super().__init__(num_actions=10)

    @property
    def name(self) -> str:
        return "ThreeBodyContinuous-v0"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        return spaces.Box(params.log_mu_low, params.log_mu_high, (1,), jnp.float32)

    def action_to_mu(self, action: jax.Array, params: EnvParams) -> jax.Array:
        log_mu = jnp.clip(jnp.reshape(action, (-1,))[0], params.log_mu_low, params.log_mu_high)
        return (10.0**log_mu).astype(jnp.float32)


_COLORS = ((230, 57, 70), (29, 120, 200), (40, 160, 60))


def render_orbits(states: list, size: int = 400) -> np.ndarray:
    """Draw the trajectories of a list of :class:`EnvState` (plain numpy, no matplotlib).

    Returns:
        uint8 image [size, size, 3]: white background, one coloured trail per body, a square
        on each body's current position.
    """
    img = np.full((size, size, 3), 255, np.uint8)
    if not states:
        return img
    pos = np.stack([np.asarray(s.hermite.pos, np.float64) for s in states])  # [T, 3, 2]
    pos = np.where(np.isfinite(pos), pos, 0.0)
    centre = 0.5 * (pos.reshape(-1, 2).max(0) + pos.reshape(-1, 2).min(0))
    half = max(float(np.abs(pos.reshape(-1, 2) - centre).max()), 1e-9) * 1.1
    pix = ((pos - centre) / half * 0.5 + 0.5) * (size - 1)
    pix[..., 1] = size - 1 - pix[..., 1]
    for b, colour in enumerate(_COLORS):
        track = pix[:, b]
        for p0, p1 in zip(track[:-1], track[1:], strict=True):
            n = int(max(abs(p1 - p0).max(), 1)) + 1
            xs = np.clip(np.rint(np.linspace(p0[0], p1[0], n)).astype(int), 0, size - 1)
            ys = np.clip(np.rint(np.linspace(p0[1], p1[1], n)).astype(int), 0, size - 1)
            img[ys, xs] = colour
            img[np.minimum(ys + 1, size - 1), xs] = colour  # 2 px wide
            img[ys, np.minimum(xs + 1, size - 1)] = colour
        cx, cy = np.clip(np.rint(track[-1]).astype(int), 3, size - 4)
        img[cy - 3 : cy + 4, cx - 3 : cx + 4] = colour
    return img


def _make_discrete(num_actions: int = 10) -> ThreeBody:
    return ThreeBody(num_actions=num_actions)


def _make_continuous() -> ThreeBodyContinuous:
    return ThreeBodyContinuous()


register("ThreeBody-v0", _make_discrete)
register("ThreeBodyContinuous-v0", _make_continuous)

__all__ = [
    "CRITERIA",
    "G_AU_MSUN_YR",
    "KMS_IN_AU_PER_YR",
    "PAPER_MU_VALUES",
    "EnvParams",
    "EnvState",
    "HermiteState",
    "ThreeBody",
    "ThreeBodyContinuous",
    "as_float64",
    "evaluation_params",
    "forces",
    "hermite_advance",
    "hermite_init",
    "hermite_substep",
    "initial_conditions",
    "integrate",
    "paper_reward",
    "render_orbits",
    "total_energy",
]
