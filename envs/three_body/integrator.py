"""4th-order Hermite integrator (Hut-Makino) with a shared adaptive step, and its batched loop.

A substep has length ``dt = eta * timescale`` (the collision time, or Aarseth's time scale),
shortened to land exactly on a target time. :func:`hermite_advance` loops substeps until the
target is reached or a substep cap is hit; under ``vmap`` (any nesting) the whole batch runs in
one lockstep ``while_loop`` (a ``custom_vmap`` rule), finished systems taking masked
zero-length substeps, so a system's result does not depend on the rest of its batch.

The batched maths works on :class:`~accelrl.envs.three_body.physics.BodyArrays` (body axis
first, batch axes trailing); :class:`HermiteState` is the per-system (3, 2) view.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from accelrl.envs.three_body.physics import (
    F64,
    PAIRS,
    BodyArrays,
    aarseth_timescale,
    forces,
    forces_flat,
    x64,
)

CRITERIA: dict[str, int] = {"collision": 0, "aarseth": 1}
"""Step criteria by name; the int is what ``EnvParams.criterion`` holds."""


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


class Systems(NamedTuple):
    """What a substep advances: :class:`HermiteState` in the body-first batched layout."""

    bodies: BodyArrays
    """Positions, velocities, accelerations, jerks, each (3, *S)."""
    t: jax.Array
    """Time reached, shape S."""
    timescale: jax.Array
    """Time scale of the next substep, shape S."""


def _systems(h: HermiteState) -> Systems:
    bodies = BodyArrays(*(a[:, k] for a in (h.pos, h.vel, h.acc, h.jerk) for k in (0, 1)))
    return Systems(bodies, h.t, h.timescale)


def _hermite_state(s: Systems) -> HermiteState:
    def join(cx, cy):
        return jnp.stack([cx, cy], axis=1)

    b = s.bodies
    return HermiteState(
        pos=join(b.x, b.y),
        vel=join(b.vx, b.vy),
        acc=join(b.ax, b.ay),
        jerk=join(b.jx, b.jy),
        t=s.t,
        timescale=s.timescale,
    )


def _criterion_code(criterion: Any) -> Any:
    if isinstance(criterion, str):
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
        return CRITERIA[criterion]
    return criterion


def _is_static(code: Any) -> bool:
    return isinstance(code, int | np.integer)


def _select_criterion(criterion, collision_fn, aarseth_fn):
    """Static choice for a Python int; for a traced one a ``lax.cond`` when it is shared by the
    whole batch (one size-1 value: only the chosen branch runs), else an elementwise select."""
    if _is_static(criterion):
        return aarseth_fn() if int(criterion) == 1 else collision_fn()
    criterion = jnp.asarray(criterion)
    if criterion.size == 1:
        return jax.lax.cond(criterion.reshape(()) == 1, aarseth_fn, collision_fn)
    return jnp.where(criterion == 1, aarseth_fn(), collision_fn())


@x64
def hermite_init(
    pos: jax.Array, vel: jax.Array, mass: jax.Array, G: float, criterion: Any = "collision"
) -> HermiteState:
    """Integrator state at t = 0 for one system (pos, vel (3, 2); mass (3,)).

    ``criterion`` is ``"collision"``/``"aarseth"`` or its int code (may be traced).
    """
    pos, vel, mass = (jnp.asarray(a, F64) for a in (pos, vel, mass))
    acc, jerk, coll = forces(pos, vel, mass, G)
    _criterion_code(criterion)  # validate only: both criteria start from the collision time
    return HermiteState(pos=pos, vel=vel, acc=acc, jerk=jerk, t=jnp.zeros((), F64), timescale=coll)


def _substep(s: Systems, mass, G, eta, t_end, criterion, active=None) -> Systems:
    """One predictor-corrector substep; the step is shortened to land exactly on ``t_end``.

    ``s.t``, ``s.timescale``, ``eta``, ``t_end`` have the batch shape S (or broadcast to it),
    the fields of ``s.bodies`` and ``mass`` (3, *S). ``active`` (bool, shape S) masks systems
    that must not move: they take a step of length 0 (an exact identity for positions and
    velocities) and keep their acceleration, jerk, time and time scale. This is how a batch runs
    in lockstep without a select on every carried value (see :func:`hermite_advance`).
    """
    f, t, timescale = s.bodies, s.t, s.timescale
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
    ax1, ay1, jx1, jy1, coll = forces_flat(xp, yp, vxp, vyp, mass, G)
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
        tau = aarseth_timescale(f.ax, f.ay, ax1, ay1, f.jx, f.jy, jx1, jy1, dt)
        return jnp.where(last | ~(tau > 0.0) | ~jnp.isfinite(tau), timescale, tau)

    new_timescale = _select_criterion(criterion, lambda: coll, aarseth)
    t1 = jnp.where(last, t_end, t + dt)
    if active is not None:
        new_timescale = jnp.where(active, new_timescale, timescale)
        t1 = jnp.where(active, t1, t)
    return Systems(BodyArrays(x1, y1, vx1, vy1, ax1, ay1, jx1, jy1), t1, new_timescale)


@x64
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
    s = _substep(
        _systems(h),
        jnp.asarray(mass, F64),
        jnp.asarray(G, F64),
        jnp.asarray(eta, F64),
        jnp.asarray(t_end, F64),
        _criterion_code(criterion),
    )
    return _hermite_state(s)


# ---------------------------------------------------------------------------------------------
# Lockstep loop over a batch
# ---------------------------------------------------------------------------------------------


class LockstepInputs(NamedTuple):
    """Arguments of the lockstep loop, batch axes S trailing (float64 unless stated).

    Shared values may have size-1 axes instead of S (they stay small and the compiler sees them
    as such).
    """

    systems: Systems
    """Start of the loop: body arrays (3, *S), ``t`` and ``timescale`` (S)."""
    mass: jax.Array
    """Masses, shape (3, *S)."""
    G: jax.Array
    """Gravitational constant, shape S."""
    eta: jax.Array
    """Time-step parameter, shape S."""
    t_end: jax.Array
    """Time to land on, shape S."""
    max_substeps: jax.Array
    """Substep cap, int32, shape S."""
    criterion: jax.Array | None
    """Step criterion code, int32, shape S; ``None`` when it is static (a Python int)."""


class LockstepCarry(NamedTuple):
    """Carry and result of the lockstep loop."""

    systems: Systems
    """Body arrays (3, *S), ``t`` and ``timescale`` (S) reached."""
    n_substeps: jax.Array
    """Substeps each system took (not counting masked ones), int32, shape S."""


def _advance_lockstep(criterion: int | None, inputs: LockstepInputs) -> LockstepCarry:
    """Substep loop over a batch with trailing axes S, every system advanced in lockstep.

    ``criterion`` is the static criterion code, or ``None`` when ``inputs.criterion`` holds a
    traced one. Systems that are done take masked zero-length steps (``_substep(active=...)``)
    until the slowest is done: no per-leaf select of the whole carry, which is what a vmapped
    per-system ``while_loop`` would add.
    """
    start = inputs.systems
    code = criterion if inputs.criterion is None else inputs.criterion
    body_first = (*start.bodies, inputs.mass)
    per_system = (start.t, start.timescale, inputs.G, inputs.eta, inputs.t_end, inputs.max_substeps)
    if inputs.criterion is not None:
        per_system += (inputs.criterion,)
    shape = jnp.broadcast_shapes(*(a.shape for a in per_system), *(a.shape[1:] for a in body_first))
    bodies = BodyArrays(*(jnp.broadcast_to(a, (3, *shape)) for a in start.bodies))
    t, tau = (jnp.broadcast_to(a, shape) for a in (start.t, start.timescale))

    def running(c: LockstepCarry):
        return (c.systems.t < inputs.t_end) & (c.n_substeps < inputs.max_substeps)

    def cond(c: LockstepCarry):
        return jnp.any(running(c))

    def body(c: LockstepCarry) -> LockstepCarry:
        active = running(c)
        systems = _substep(c.systems, inputs.mass, inputs.G, inputs.eta, inputs.t_end, code, active)
        return LockstepCarry(systems, c.n_substeps + active.astype(c.n_substeps.dtype))

    n0 = jnp.zeros_like(t, inputs.max_substeps.dtype)  # like t: shard_map-varying
    return jax.lax.while_loop(cond, body, LockstepCarry(Systems(bodies, t, tau), n0))


_LOCKSTEP_CORES: dict[Any, Any] = {}


def _lockstep_core(criterion):
    """``_advance_lockstep`` as a ``custom_vmap`` function (one per static criterion).

    Under ``vmap`` it is not vmapped primitive by primitive: the batch axis moves to the end
    (a size-1 axis for unbatched leaves) and the inputs go straight into the same loop, one
    level up. Nested vmaps (seeds x envs) apply the rule once per level.
    """
    key = int(criterion) if _is_static(criterion) else "traced"
    if key not in _LOCKSTEP_CORES:
        static = criterion if key != "traced" else None

        @jax.custom_batching.custom_vmap
        def core(inputs: LockstepInputs) -> LockstepCarry:
            return _advance_lockstep(static, inputs)

        @core.def_vmap
        def _rule(axis_size, in_batched, inputs):
            del axis_size
            (batched,) = in_batched
            with jax.enable_x64(True):
                inputs = jax.tree.map(
                    lambda a, b: jnp.moveaxis(a, 0, -1) if b else a[..., None], inputs, batched
                )
                out = jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0), core(inputs))
            return out, jax.tree.map(lambda _: True, out)

        _LOCKSTEP_CORES[key] = core
    return _LOCKSTEP_CORES[key]


@x64
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

    def f64(a):  # float64 throughout, whatever the caller's state holds (fixed carry types)
        return jnp.asarray(a, F64)

    start = _systems(h)
    inputs = LockstepInputs(
        systems=Systems(BodyArrays(*map(f64, start.bodies)), f64(start.t), f64(start.timescale)),
        mass=f64(mass),
        G=f64(G),
        eta=f64(eta),
        t_end=f64(t_end),
        max_substeps=jnp.asarray(max_substeps, jnp.int32),
        criterion=None if _is_static(code) else jnp.asarray(code, jnp.int32),
    )
    out = _lockstep_core(code)(inputs)
    return _hermite_state(out.systems), out.n_substeps


def coincident_bodies(pos: jax.Array) -> jax.Array:
    """Whether two bodies share a position exactly (their force is infinite): bool, shape ``...``.

    ``pos`` has shape ``(..., 3, 2)``; works on traced values (``jit``/``vmap``), so a caller that
    integrates traced initial conditions can mask or resample the systems :func:`integrate`
    would turn into NaN.
    """
    pos = jnp.asarray(pos)
    same = [jnp.all(pos[..., i, :] == pos[..., j, :], axis=-1) for i, j in PAIRS]
    return same[0] | same[1] | same[2]


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_concrete_inputs(pos, vel, mass, t_end, eta, G) -> None:
    """Eager checks of :func:`integrate`'s inputs, on the host, for the ones that are concrete.

    Traced inputs (inside ``jit``/``vmap``) are skipped: a compiled call costs nothing more.
    """
    args = {"pos": pos, "vel": vel, "mass": mass, "t_end": t_end, "eta": eta, "G": G}
    host = {k: np.asarray(v, np.float64) for k, v in args.items() if _is_concrete(v)}

    def first(name: str, bad: np.ndarray) -> tuple[str, float] | None:
        """``("name[i, j]", value)`` of the first True entry of ``bad``, or None."""
        if not np.any(bad):
            return None
        idx = np.unravel_index(int(np.argmax(bad)), bad.shape)
        where = f"{name}[{', '.join(map(str, idx))}]" if idx else name
        return where, host[name][idx]

    for name, a in host.items():
        if hit := first(name, ~np.isfinite(a)):
            raise ValueError(f"integrate: {hit[0]} is {hit[1]}, inputs must be finite")
    if "mass" in host and (hit := first("mass", host["mass"] <= 0)):
        raise ValueError(f"integrate: {hit[0]} = {hit[1]}, masses must be > 0")
    if "eta" in host and np.any(host["eta"] <= 0):
        raise ValueError(f"integrate: eta = {host['eta']}, must be > 0 (dt = eta * time scale)")
    if "pos" in host and host["pos"].shape[-2:] == (3, 2):
        for i, j in PAIRS:
            same = np.all(host["pos"][..., i, :] == host["pos"][..., j, :], axis=-1)
            if np.any(same):
                xy = host["pos"][..., i, :][same][0]
                raise ValueError(
                    f"integrate: bodies {i} and {j} are at the same position "
                    f"({float(xy[0])}, {float(xy[1])}); their force is infinite, "
                    "the result would be NaN"
                )


@x64
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

    Raises:
        ValueError: for concrete (not traced) inputs only, checked on the host before anything
            is computed: a non-finite value, a mass <= 0, ``eta <= 0``, or two bodies at the
            same position (named in the message). Inside ``jit``/``vmap`` the traced inputs are
            not checked (no cost on the compiled path) and such a system comes back NaN; use
            :func:`coincident_bodies` (vmappable) to mask or resample traced initial conditions.

    Pass float64 ``jax.Array``s (numpy float64 entering a jit outside an x64 scope is
    canonicalised to float32 at that boundary).
    """
    _check_concrete_inputs(pos, vel, mass, t_end, eta, G)
    h = hermite_init(pos, vel, mass, G, criterion)
    h, n = hermite_advance(h, mass, G, eta, t_end, max_substeps, criterion)
    return h.pos, h.vel, n
