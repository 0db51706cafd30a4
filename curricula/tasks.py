"""Task spaces: named boxes over an environment's ``EnvParams``, and their registry.

A task is a point ``f32[d]`` in a box; a :class:`TaskSpace` says how a task becomes environment
params: either through *element paths*, one per dimension (``"g"``, ``"ic_high[0]"``, or a tuple
of paths that all take the dimension's value, e.g. ``("ic_low[0]", "ic_high[0]")`` to pin a
range to one value), or through a ``to_params(task, base_params) -> params`` function. It also
carries what the teachers and the evaluation need: the mastery threshold (an episode's return
above it counts as mastered) and the return range that normalises returns to [0, 1] for
learning progress (teachDeepRL's ``np.interp(r, (-150, 350), (0, 1))``, which clips).

Task spaces refuse fields that change the agent's spaces: :meth:`TaskSpace.check` applies every
corner of the box to the default params and requires the action and observation spaces to equal
the defaults' (Pendulum's ``max_torque`` is refused: it bounds the action space). The agent is
built once for one action space; a widest-box alternative would silently rescale actions.

>>> space = task_space("pendulum_dynamics")
>>> params = apply_tasks(space, env.default_params, tasks)     # tasks f32[B, 3] -> params [B]
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.reset import broadcast_params

_PATH = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)((?:\[\d+\])*)$")


class UnknownTaskSpaceError(ValueError):
    """A task-space name that is not registered (the message lists close matches)."""


def _parse(path: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``"a.b[1][2]"`` -> ``(("a", "b"), (1, 2))``."""
    m = _PATH.match(path)
    if m is None:
        raise ValueError(f"bad element path {path!r} (expected 'field', 'field[i]', 'a.b[i][j]')")
    attrs = tuple(m.group(1).split("."))
    idx = tuple(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return attrs, idx


def _get(obj: Any, attrs: tuple[str, ...]) -> Any:
    for a in attrs:
        obj = getattr(obj, a)
    return obj


def _set(obj: Any, attrs: tuple[str, ...], idx: tuple[int, ...], value: jax.Array) -> Any:
    """``obj`` with ``obj.a.b[idx] = value`` (flax struct dataclasses all the way down)."""
    leaf = getattr(obj, attrs[0])
    if len(attrs) > 1:
        return obj.replace(**{attrs[0]: _set(leaf, attrs[1:], idx, value)})
    if idx:
        arr = jnp.asarray(leaf)
        new = arr.at[idx].set(value.astype(arr.dtype))
    else:
        dtype = jnp.asarray(leaf).dtype if hasattr(leaf, "dtype") else jnp.float32
        new = value.astype(dtype)
    return obj.replace(**{attrs[0]: new})


@dataclasses.dataclass(frozen=True)
class TaskSpace:
    """A box of tasks over an environment's params (frozen and hashable: teachers keep one).

    Exactly one of ``fields`` and ``to_params`` is given.
    """

    name: str
    """Registered name, e.g. ``"pendulum_dynamics"``."""
    env_id: str
    """The environment id (``accelrl.envs.make``)."""
    names: tuple[str, ...]
    """One name per task dimension (axis labels, plots)."""
    low: tuple[float, ...]
    """Lower corner of the box."""
    high: tuple[float, ...]
    """Upper corner of the box."""
    mastery_threshold: float
    """An evaluation episode whose return exceeds this counts as mastered."""
    return_range: tuple[float, float]
    """Returns are mapped linearly from this range to [0, 1] and clipped, for learning progress."""
    fields: tuple[str | tuple[str, ...], ...] | None = None
    """Element path(s) per dimension: ``"g"``, ``"ic_high[0]"``, or a tuple of paths that all
    take the dimension's value."""
    to_params: Callable[[jax.Array, Any], Any] | None = None
    """Alternative to ``fields``: ``(task f32[d], base_params) -> params`` for one copy."""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """``make`` keyword arguments, as ``(name, value)`` pairs."""
    description: str = ""
    """What the dimensions mean and which part of the box cannot be solved."""

    def __post_init__(self):
        d = len(self.names)
        if d == 0 or len(self.low) != d or len(self.high) != d:
            raise ValueError(
                f"task space {self.name!r}: names, low and high need the same positive length, "
                f"got {len(self.names)}, {len(self.low)}, {len(self.high)}"
            )
        if any(not lo < hi for lo, hi in zip(self.low, self.high, strict=True)):
            raise ValueError(
                f"task space {self.name!r}: need low < high, got {self.low} {self.high}"
            )
        if (self.fields is None) == (self.to_params is None):
            raise ValueError(f"task space {self.name!r}: give exactly one of fields and to_params")
        if self.fields is not None:
            if len(self.fields) != d:
                raise ValueError(
                    f"task space {self.name!r}: {len(self.fields)} fields for {d} dimensions"
                )
            for f in self.fields:
                for p in (f,) if isinstance(f, str) else f:
                    _parse(p)
        lo, hi = self.return_range
        if not lo < hi:
            raise ValueError(f"task space {self.name!r}: return_range needs lo < hi, got {lo, hi}")

    # -- the box ------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of task dimensions ``d``."""
        return len(self.names)

    @property
    def low_array(self) -> jax.Array:
        """``f32[d]``."""
        return jnp.asarray(self.low, jnp.float32)

    @property
    def high_array(self) -> jax.Array:
        """``f32[d]``."""
        return jnp.asarray(self.high, jnp.float32)

    def uniform(self, key: jax.Array, n: int) -> jax.Array:
        """``f32[n, d]`` tasks drawn uniformly from the box."""
        return jax.random.uniform(key, (n, self.dim), minval=self.low_array, maxval=self.high_array)

    def clip(self, tasks: jax.Array) -> jax.Array:
        """Tasks clipped to the box."""
        return jnp.clip(tasks, self.low_array, self.high_array)

    def normalize_return(self, returns: jax.Array) -> jax.Array:
        """Returns mapped from :attr:`return_range` to [0, 1], clipped (``np.interp``)."""
        lo, hi = self.return_range
        return (jnp.clip(returns, lo, hi) - lo) / (hi - lo)

    def corners(self) -> np.ndarray:
        """``f32[2^d, d]`` the box's corners (d <= 12)."""
        if self.dim > 12:
            raise ValueError(f"task space {self.name!r}: too many dimensions to list corners")
        return np.array(list(itertools.product(*zip(self.low, self.high, strict=True))), np.float32)

    # -- tasks to params ----------------------------------------------------------------------

    def params(self, task: jax.Array, base: Any) -> Any:
        """Params of one copy: ``base`` (unbatched) with ``task`` (``f32[d]``) applied."""
        task = jnp.asarray(task, jnp.float32)
        if self.to_params is not None:
            return self.to_params(task, base)
        for i, f in enumerate(self.fields):
            for p in (f,) if isinstance(f, str) else f:
                attrs, idx = _parse(p)
                base = _set(base, attrs, idx, task[i])
        return base

    def make(self) -> tuple[Any, Any]:
        """``accelrl.envs.make(env_id, **env_kwargs)``."""
        return _make(self.env_id, self.env_kwargs)

    def check(self, env: Any = None, params: Any = None) -> TaskSpace:
        """Raise ``ValueError`` unless every task is valid for ``env`` (default: made from the
        id): each element path names a float field (and an index within it), and every corner
        of the box leaves the action and observation spaces as they are with ``params``
        (default: the env's defaults). Returns ``self``."""
        if env is None:
            env, made = self.make()
            params = made if params is None else params
        params = env.default_params if params is None else params
        _check_space(self, env, params)
        return self


@functools.lru_cache(maxsize=32)
def _make(env_id: str, env_kwargs: tuple[tuple[str, Any], ...]) -> tuple[Any, Any]:
    from accelrl.envs import make

    return make(env_id, **dict(env_kwargs))


def _space_signature(space: Any) -> Any:
    """A comparable description of a gymnax/accelrl space (type, shape, dtype, bounds, n)."""
    inner = getattr(space, "spaces", None)
    if isinstance(inner, dict):
        return ("dict", tuple((k, _space_signature(v)) for k, v in sorted(inner.items())))
    if isinstance(inner, list | tuple):
        return ("tuple", tuple(_space_signature(v) for v in inner))
    sig = [type(space).__name__]
    for attr in ("n", "shape", "dtype", "low", "high"):
        if hasattr(space, attr):
            v = getattr(space, attr)
            if attr in ("low", "high"):
                v = tuple(np.broadcast_to(np.asarray(v, np.float64), space.shape).ravel().tolist())
            elif attr == "dtype":
                v = str(np.dtype(v))
            elif attr == "n":
                v = int(np.asarray(v))
            sig.append((attr, v))
    return tuple(sig)


def _spaces(env: Any, params: Any) -> dict[str, Any]:
    from accelrl.envs.multi_agent import MultiAgentEnv

    if isinstance(env, MultiAgentEnv):
        out = {}
        for a in env.agents:
            out[f"action space of {a}"] = _space_signature(env.action_space(a, params))
            out[f"observation space of {a}"] = _space_signature(env.observation_space(a, params))
        return out
    return {
        "action space": _space_signature(env.action_space(params)),
        "observation space": _space_signature(env.observation_space(params)),
    }


def _check_space(space: TaskSpace, env: Any, params: Any) -> None:
    if space.fields is not None:
        for f in space.fields:
            for p in (f,) if isinstance(f, str) else f:
                attrs, idx = _parse(p)
                try:
                    leaf = jnp.asarray(_get(params, attrs))
                except AttributeError:
                    raise ValueError(
                        f"task space {space.name!r}: {type(params).__name__} has no field {p!r}"
                    ) from None
                if not jnp.issubdtype(leaf.dtype, jnp.floating):
                    raise ValueError(
                        f"task space {space.name!r}: {p!r} is not a float field ({leaf.dtype})"
                    )
                if len(idx) > leaf.ndim or any(
                    i >= s for i, s in zip(idx, leaf.shape, strict=False)
                ):
                    raise ValueError(
                        f"task space {space.name!r}: {p!r} indexes past {attrs[-1]} of shape "
                        f"{leaf.shape}"
                    )
    reference = _spaces(env, params)
    for corner in space.corners():
        got = _spaces(env, space.params(jnp.asarray(corner), params))
        for what, sig in got.items():
            if sig != reference[what]:
                raise ValueError(
                    f"task space {space.name!r} changes the {what} at the corner "
                    f"{dict(zip(space.names, corner.tolist(), strict=True))}: task spaces may "
                    "only vary params that keep the agent's spaces (refusing e.g. Pendulum's "
                    "max_torque, which bounds the action space)"
                )


def apply_tasks(space: TaskSpace, base_params: Any, tasks: jax.Array, reference: Any = None) -> Any:
    """Per-copy params ``[B]`` with ``tasks`` (``f32[B, d]``) applied to ``base_params``.

    Args:
        space: the task space.
        base_params: unbatched params, or per-copy params with a leading ``[B]`` axis on some
            leaves (a reset strategy's ``params``).
        tasks: ``f32[B, d]``.
        reference: unbatched params telling which leaves of ``base_params`` are batched
            (default: the environment's default params).
    """
    tasks = jnp.asarray(tasks, jnp.float32)
    n = tasks.shape[0]
    if reference is None:
        reference = space.make()[1]
    base = broadcast_params(base_params, reference, n)
    return jax.vmap(space.params)(tasks, base)


# -- registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, TaskSpace] = {}


def register_task_space(space: TaskSpace, overwrite: bool = False) -> TaskSpace:
    """Register ``space`` under ``space.name`` (``overwrite`` to replace an existing one)."""
    if not isinstance(space, TaskSpace):
        raise TypeError(f"register_task_space takes a TaskSpace, got {type(space).__name__}")
    if space.name in _REGISTRY and not overwrite:
        raise ValueError(f"task space {space.name!r} is already registered")
    _REGISTRY[space.name] = space
    return space


def registered_task_spaces() -> tuple[str, ...]:
    """Names of the registered task spaces, sorted."""
    return tuple(sorted(_REGISTRY))


def task_space(name: str) -> TaskSpace:
    """The registered task space ``name``.

    Raises:
        UnknownTaskSpaceError: naming the close matches and the registered names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownTaskSpaceError(
            f"unknown task space {name!r}.{hint} Registered: {', '.join(registered_task_spaces())}"
        ) from None


def test_tasks(space: TaskSpace, seed: int = 0, n: int = 100) -> jax.Array:
    """The fixed evaluation set: ``f32[n, d]`` tasks drawn uniformly from the box with
    ``PRNGKey(seed)`` (the literature's protocol: 100 uniformly drawn test tasks)."""
    return space.uniform(jax.random.PRNGKey(seed), n)


test_tasks.__test__ = False  # not a pytest test


# -- the built-in spaces ----------------------------------------------------------------------

PENDULUM_DYNAMICS = register_task_space(
    TaskSpace(
        name="pendulum_dynamics",
        env_id="Pendulum-v1",
        names=("mass", "length", "gravity"),
        fields=("m", "l", "g"),
        low=(0.5, 0.5, 5.0),
        high=(3.0, 1.5, 20.0),
        mastery_threshold=-400.0,
        return_range=(-2000.0, 0.0),
        description=(
            "Pendulum-v1 mass m, length l and gravity g (defaults 1, 1, 10; max_torque stays "
            "2 because it bounds the action space). Large g, large m and short l cannot be "
            "solved: the torque cannot hold a heavy pendulum and the speed clip (8 rad/s) caps "
            "the energy a swing-up gathers. An energy-pumping controller with a PD catch, on a "
            "6 x 5 x 4 grid: in 40 of 120 cells (all with g >= 10, most with g >= 15) the "
            "median return is below -900 and at most 12% of starts end above -400."
        ),
    )
)

THREE_BODY_IC = register_task_space(
    TaskSpace(
        name="three_body_ic",
        env_id="ThreeBody-v0",
        names=("x1", "y2", "speed"),
        fields=(("ic_low[0]", "ic_high[0]"), ("ic_low[3]", "ic_high[3]"), "initial_speed_kms"),
        low=(0.5, 0.5, 2.0),
        high=(20.0, 20.0, 40.0),
        mastery_threshold=160.0,
        return_range=(-500.0, 250.0),
        description=(
            "ThreeBody-v0 initial conditions: body 1's x and body 2's y in au (each pins its "
            "ic_low/ic_high range to one value; y1 and x2 keep their default ranges [0, 10] and "
            "[-10, 0]) and the initial speed of bodies 0 and 1 in km/s (defaults: x1, y2 drawn "
            "from [5, 20], 10 km/s). Close, slow systems are bound and meet in violent "
            "encounters: in the corner x1 or y2 = 0.5 au at 2 km/s, fixed mu in {2e-4, 1e-3, "
            "1e-2} leaves 1 to 4 of 4 systems below 0 in 8 of 9 (task, mu) cells, while wide or "
            "fast systems earn 150 (mu = 1e-3) to 209 (mu = 1e-2). Mastered: return > 160 "
            "(above what mu = 1e-3 earns anywhere)."
        ),
    )
)

MPE_SPREAD_DYNAMICS = register_task_space(
    TaskSpace(
        name="mpe_spread_dynamics",
        env_id="MPE_simple_spread_v3",
        names=("accel", "damping", "capture_radius"),
        fields=(("accel[0]", "accel[1]", "accel[2]"), "damping", "capture_radius"),
        low=(1.0, 0.05, 0.05),
        high=(8.0, 0.6, 0.4),
        mastery_threshold=-20.0,
        return_range=(-60.0, 0.0),
        description=(
            "MPE_simple_spread_v3 (3 agents, 3 landmarks, 25 steps) team dynamics: every "
            "agent's acceleration multiplier (mpe2: 5; low values cannot reach far landmarks "
            "in 25 steps), the velocity damping (0.25) and the distance at which an agent "
            "covers a landmark (0.1; it ends the episode only with terminate_on_success). The "
            "return is the multi-agent agents' convention, the mean over agents of each agent's "
            "episode return (mostly the summed agent-landmark distances per step, negated): "
            "an untrained IPPO team scores about -30, one that spreads well above -20; "
            "mastered: above -20."
        ),
    )
)


__all__ = [
    "MPE_SPREAD_DYNAMICS",
    "PENDULUM_DYNAMICS",
    "THREE_BODY_IC",
    "TaskSpace",
    "UnknownTaskSpaceError",
    "apply_tasks",
    "register_task_space",
    "registered_task_spaces",
    "task_space",
    "test_tasks",
]
