"""Host-side checks of what enters an environment from the host: constructor arguments and params.

Constructor arguments fix shapes, so environments check them in ``__init__`` (and therefore in
:func:`accelrl.envs.make`) with :func:`check_int`, :func:`check_real` and :func:`check_choice`:
integer fields refuse floats, strings and bools (``TypeError``), out-of-range values raise a
``ValueError``; both name the argument in one line.

Params are data that jitted code reads, and jitted code cannot raise. :func:`check_params` is
called where params enter from the host (the gymnasium and PettingZoo adapters' construction
and reset, the agents' construction through :meth:`accelrl.envs.BatchedEnv.check_params`): it
checks that the params have the environment's structure and shapes (with an optional leading
batch axis), contain no NaN, and then runs the environment's own ``check_params(params)`` (the
ranges that would otherwise produce NaN or nonsense: masses <= 0, a zero time step, ...).
Inside jitted code nothing is checked: params a curriculum or a tuner produces on the device
are the caller's responsibility, and each environment documents what it clips.

The environment-specific checks are written with :class:`ParamChecker`, which reports the first
offending element with its index (``masses[1] = 0.0, must be > 0``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as a Python int, refusing anything that is not an integer.

    Args:
        name: the argument's name, for the message (e.g. ``"ThreeBody: num_actions"``).
        value: a Python or numpy integer (``bool`` is refused).
        minimum, maximum: inclusive bounds (``None``: unbounded).

    Raises:
        TypeError: for floats (also integral ones such as ``5.0``), strings, bools and the like.
        ValueError: for an integer outside ``[minimum, maximum]``.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a Python float, refusing strings, bools, NaN and values out of range.

    Args:
        name: the argument's name, for the message.
        value: a Python or numpy real number (integers are accepted).
        low, high: bounds, inclusive unless ``low_open`` (``None``: unbounded).
        low_open: whether ``low`` itself is excluded (``> low`` rather than ``>= low``).
        finite: whether infinities are refused.

    Raises:
        TypeError: for strings, bools, complex numbers and other non-reals.
        ValueError: for NaN, an infinity when ``finite``, or a value out of range.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of the strings ``choices``.

    Raises:
        TypeError: for a non-string.
        ValueError: for a string not among ``choices`` (the message lists them).
    """
    choices = list(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices}, got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _name(env: Any) -> str:
    name = getattr(env, "name", None)
    return name if isinstance(name, str) else type(env).__name__


def _path(keypath: tuple) -> str:
    return jax.tree_util.keystr(keypath).lstrip(".")


def check_params(env: Any, params: Any, *, batch_size: int | None = None) -> None:
    """Refuse params that do not fit ``env`` or would produce NaN, on the host, before jit.

    Checks, in order: the params have the pytree structure of ``env.default_params`` (the same
    dataclass and static fields); every leaf has its default's shape, or that shape with a
    leading axis of length ``batch_size`` when one is given (one task per copy, as
    :class:`~accelrl.envs.VecEnv` takes them); no leaf is NaN;
    then ``env.check_params(params)`` when the environment defines it (ranges, such as
    ThreeBody's masses > 0). gymnax environments have only the generic checks.

    Args:
        env: a single (unbatched) environment.
        params: its params, e.g. ``env.default_params.replace(...)``.
        batch_size: the number of copies when leaves may carry a leading batch axis (``None``:
            unbatched params only).

    Raises:
        TypeError: params of another structure (another params class, a dict, ...).
        ValueError: a leaf of the wrong shape, a NaN, or a value the environment refuses; one
            line naming the field and, for arrays, the first offending index.
    """
    name = _name(env)
    ref = env.default_params
    ref_def, got_def = jax.tree.structure(ref), jax.tree.structure(params)
    if ref_def != got_def:
        raise TypeError(
            f"{name} params must be its {type(ref).__name__} (the structure of "
            f"env.default_params), got {type(params).__name__} of another structure"
        )
    ref_leaves = jax.tree.leaves(ref)
    got_leaves = jax.tree_util.tree_leaves_with_path(params)
    for (path, leaf), default in zip(got_leaves, ref_leaves, strict=True):
        shape, want = np.shape(leaf), np.shape(default)
        if shape == want or (batch_size is not None and shape == (batch_size, *want)):
            continue
        allowed = f"{want}" if batch_size is None else f"{want} or {(batch_size, *want)}"
        raise ValueError(f"{name} params: {_path(path)} has shape {shape}, expected {allowed}")
    for path, leaf in got_leaves:
        value = np.asarray(leaf)
        if np.issubdtype(value.dtype, np.floating) and np.isnan(value).any():
            idx = _first(np.isnan(value))
            raise ValueError(f"{name} params: {_path(path)}{idx} is nan")
    own = getattr(env, "check_params", None)
    if callable(own):
        own(params)


def _first(bad: np.ndarray) -> str:
    """``"[i, j]"`` of the first True in ``bad`` ("" for a scalar)."""
    if bad.ndim == 0:
        return ""
    return "[" + ", ".join(str(int(i)) for i in np.argwhere(bad)[0]) + "]"


class ParamChecker:
    """Range checks of one environment's params, each reporting the first offending element.

    >>> c = ParamChecker("ThreeBody-v0", params)
    >>> c.require("masses", lambda m: m > 0, "must be > 0")

    Values are read on the host as float64 numpy arrays (any leading batch axes allowed).
    """

    def __init__(self, env_name: str, params: Any):
        self.env_name = env_name
        self.params = params

    def value(self, field: str) -> np.ndarray:
        """The field's value as a float64 numpy array."""
        return np.asarray(getattr(self.params, field), np.float64)

    def require(self, field: str, ok: Callable[[np.ndarray], Any], text: str) -> None:
        """Raise ``ValueError("<env> params: field[i] = v, <text>")`` where ``ok`` is False."""
        value = self.value(field)
        bad = ~np.asarray(ok(value), bool)
        bad = np.broadcast_to(bad, np.broadcast_shapes(bad.shape, value.shape))
        if bad.any():
            first = tuple(np.argwhere(bad)[0])
            at = np.broadcast_to(value, bad.shape)[first]
            raise ValueError(f"{self.env_name} params: {field}{_first(bad)} = {at:g}, {text}")

    def positive(self, *fields: str, finite: bool = True) -> None:
        """Each field > 0 (and finite unless ``finite=False``: ``inf`` allowed)."""
        for f in fields:
            self.require(f, lambda v: (v > 0) & (np.isfinite(v) | (not finite)), _pos(finite))

    def nonnegative(self, *fields: str, finite: bool = True) -> None:
        """Each field >= 0 (and finite unless ``finite=False``)."""
        for f in fields:
            text = "must be >= 0" + (" and finite" if finite else "")
            self.require(f, lambda v: (v >= 0) & (np.isfinite(v) | (not finite)), text)

    def finite(self, *fields: str) -> None:
        """Each field finite."""
        for f in fields:
            self.require(f, np.isfinite, "must be finite")

    def integer(self, *fields: str, minimum: int | None = None) -> None:
        """Each field integral (a float field holding 100.0 is fine), >= ``minimum``."""
        for f in fields:
            lo = -np.inf if minimum is None else minimum
            text = "must be an integer" + ("" if minimum is None else f" >= {minimum}")
            self.require(f, lambda v, lo=lo: np.isfinite(v) & (v == np.round(v)) & (v >= lo), text)

    def flag(self, *fields: str) -> None:
        """Each field a boolean (0 or 1)."""
        for f in fields:
            self.require(f, lambda v: (v == 0) | (v == 1), "must be a bool (0 or 1)")

    def trailing_shape(self, field: str, shape: tuple[int, ...]) -> None:
        """The field's trailing axes are ``shape`` (leading batch axes allowed)."""
        got = self.value(field).shape
        if len(got) < len(shape) or got[len(got) - len(shape) :] != shape:
            want = ", ".join(map(str, shape))
            raise ValueError(
                f"{self.env_name} params: {field} has shape {got}, expected (..., {want})"
            )


def _pos(finite: bool) -> str:
    return "must be > 0" + (" and finite" if finite else "")


__all__ = ["ParamChecker", "check_choice", "check_int", "check_params", "check_real"]
