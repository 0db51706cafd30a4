"""Conversion of gymnax spaces to gymnasium spaces (numpy dtypes) for the adapters.

gymnax is imported inside the functions: importing it imports its whole environment zoo
(seconds), and the spaces these functions get come from an environment that imported it already.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np


def to_gymnasium_space(space: Any) -> gymnasium.spaces.Space:
    """Convert a gymnax space to the equivalent gymnasium space.

    ``Discrete(n)`` -> ``Discrete(n)`` (int64 samples); ``Box`` -> ``Box`` with a numpy dtype
    (a boolean ``Box``, e.g. an action mask, becomes ``MultiBinary`` with int8 samples);
    ``Dict``/``Tuple`` recursively.
    """
    from gymnax.environments import spaces as gx

    if isinstance(space, gx.Discrete):
        return gymnasium.spaces.Discrete(int(space.n))
    if isinstance(space, gx.Box):
        dtype = np.dtype(space.dtype)
        shape = tuple(int(s) for s in space.shape)
        if dtype == np.bool_:
            return gymnasium.spaces.MultiBinary(shape if len(shape) != 1 else shape[0])
        low = np.broadcast_to(np.asarray(space.low, dtype=np.float64), shape)
        high = np.broadcast_to(np.asarray(space.high, dtype=np.float64), shape)
        if np.issubdtype(dtype, np.integer):
            low, high = np.floor(low), np.ceil(high)
        return gymnasium.spaces.Box(low.astype(dtype), high.astype(dtype), shape, dtype)
    if isinstance(space, gx.Dict):
        return gymnasium.spaces.Dict({k: to_gymnasium_space(s) for k, s in space.spaces.items()})
    if isinstance(space, gx.Tuple):
        return gymnasium.spaces.Tuple([to_gymnasium_space(s) for s in space.spaces])
    raise TypeError(f"cannot convert space of type {type(space).__name__} to gymnasium")


def to_numpy(x: Any, space: gymnasium.spaces.Space) -> Any:
    """Convert a (possibly batched) jax value to numpy with ``space``'s dtype, recursively."""
    if isinstance(space, gymnasium.spaces.Dict):
        return {k: to_numpy(x[k], s) for k, s in space.spaces.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        return tuple(to_numpy(v, s) for v, s in zip(x, space.spaces, strict=True))
    return np.asarray(x).astype(space.dtype, copy=False)


class InvalidActionError(gymnasium.error.InvalidAction, ValueError):
    """An action of the right kind that lies outside its space: wrong shape, out of range, NaN.

    A ``ValueError`` (and gymnasium's ``InvalidAction``). Actions of the wrong *type* (a string,
    a float for a discrete space) raise ``TypeError`` instead.
    """


def _kind(x: np.ndarray) -> str:
    return "bool" if x.dtype == np.bool_ else x.dtype.kind


def _short(action: Any) -> str:
    """``repr(action)`` on one line, at most 60 characters."""
    text = " ".join(repr(action).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _as_array(action: Any, space: gymnasium.spaces.Space, what: str) -> np.ndarray:
    """``action`` as a numeric numpy array, or TypeError (strings, objects, bools, None)."""
    if isinstance(action, str | bytes) or action is None:
        raise TypeError(f"{what} must be numeric for {space}, got {_short(action)}")
    try:
        x = np.asarray(action)
    except (TypeError, ValueError) as err:  # ragged nested sequences
        raise TypeError(f"{what} must be numeric for {space}, got {_short(action)}") from err
    if x.dtype.kind not in "iuf" or x.dtype == np.bool_:
        raise TypeError(
            f"{what} must be numeric for {space}, got {_short(action)} (dtype {x.dtype})"
        )
    return x


def _check_integers(x: np.ndarray, action: Any, space: Any, what: str) -> None:
    if _kind(x) not in "iu":
        raise TypeError(f"{what} must be integers for {space}, got {_short(action)}")


def _check_shape(x: np.ndarray, action: Any, space: Any, what: str) -> None:
    if x.shape != tuple(space.shape):
        raise InvalidActionError(
            f"{what} has shape {x.shape}, {space} takes shape {tuple(space.shape)}: "
            f"{_short(action)}"
        )


def check_action(action: Any, space: gymnasium.spaces.Space, what: str = "action") -> Any:
    """Validate a host action against a gymnasium space and convert it for the jax environment.

    As gymnasium's own environments assert ``action_space.contains(action)``, but with one-line
    errors that say what is wrong, and with continuous actions outside the bounds let through
    (environments with ``Box`` actions clip them, as gymnasium's Pendulum and MountainCar do).

    * ``Discrete``: a Python/numpy integer scalar (or 0-d integer array) in
      ``[start, start + n)``; floats (even ``3.0``), strings and bools are refused.
    * ``MultiDiscrete``/``MultiBinary`` (batched discrete): integer arrays of the space's
      shape, every entry in range.
    * ``Box``: a numeric array of exactly the space's shape, no NaN or infinity; integer boxes
      also need integers within the bounds. Finite values outside a float box's bounds pass.
    * ``Dict``/``Tuple``: exactly the space's keys / length, recursively.

    Args:
        action: the action as the caller gave it.
        space: the adapter's gymnasium action space.
        what: how to name the action in messages (``"action"``, ``"action for agent_0"``).

    Returns:
        ``action`` as :func:`to_jax_action` converts it (int32 / float32 numpy).

    Raises:
        TypeError: an action of the wrong type (string, float for a discrete space, ...).
        InvalidActionError: an action of the wrong shape, out of range, NaN or infinite.
    """
    S = gymnasium.spaces
    if isinstance(space, S.Dict):
        if not isinstance(action, Mapping):
            raise TypeError(f"{what} must be a dict with keys {list(space.spaces)}")
        if set(action) != set(space.spaces):
            raise InvalidActionError(
                f"{what} has keys {sorted(action)}, {space} takes {sorted(space.spaces)}"
            )
        return {k: check_action(action[k], s, f"{what}[{k!r}]") for k, s in space.spaces.items()}
    if isinstance(space, S.Tuple):
        if not isinstance(action, tuple | list) or len(action) != len(space.spaces):
            raise InvalidActionError(f"{what} must be a tuple of {len(space.spaces)} actions")
        return tuple(
            check_action(a, s, f"{what}[{i}]")
            for i, (a, s) in enumerate(zip(action, space.spaces, strict=True))
        )
    if isinstance(space, S.Discrete):
        if isinstance(action, bool | np.bool_) or not isinstance(
            action, numbers.Integral | np.ndarray | np.generic | jax.Array
        ):
            raise TypeError(f"{what} must be an integer for {space}, got {_short(action)}")
        if isinstance(action, numbers.Integral):  # Python ints of any size, numpy scalars
            value = int(action)
        else:
            x = _as_array(action, space, what)
            if _kind(x) not in "iu":
                raise TypeError(f"{what} must be an integer for {space}, got {_short(action)}")
            _check_shape(x, action, space, what)
            value = int(x)
        low, high = int(space.start), int(space.start) + int(space.n) - 1
        if not low <= value <= high:
            raise InvalidActionError(
                f"{what} = {value} is outside {space} (valid: {low} .. {high})"
            )
        return np.asarray(value, np.int32)
    x = _as_array(action, space, what)
    _check_shape(x, action, space, what)
    if isinstance(space, S.MultiDiscrete | S.MultiBinary) or (
        isinstance(space, S.Box) and np.issubdtype(space.dtype, np.integer)
    ):
        _check_integers(x, action, space, what)
        if isinstance(space, S.MultiDiscrete):
            low, high = np.asarray(space.start), np.asarray(space.start) + space.nvec - 1
        elif isinstance(space, S.MultiBinary):
            low, high = np.zeros(space.shape, np.int64), np.ones(space.shape, np.int64)
        else:
            low, high = space.low, space.high
        bad = (x < low) | (x > high)
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            raise InvalidActionError(
                f"{what}{list(i)} = {x[i]} is outside {space} (valid: "
                f"{np.broadcast_to(low, x.shape)[i]} .. {np.broadcast_to(high, x.shape)[i]})"
            )
        return to_jax_action(x.astype(space.dtype), space)
    if isinstance(space, S.Box):
        if not np.all(np.isfinite(x)):
            i = tuple(int(j) for j in np.argwhere(~np.isfinite(x))[0])
            raise InvalidActionError(f"{what}{list(i) if i else ''} is {x[i]}, must be finite")
        return to_jax_action(x, space)
    raise TypeError(f"cannot check actions of a {type(space).__name__} space")


def to_jax_action(action: Any, space: gymnasium.spaces.Space) -> Any:
    """Numpy action -> array for the jax environment (int32 for discrete, float32 for boxes)."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return np.asarray(action, dtype=np.int32)
    if isinstance(space, gymnasium.spaces.Dict):
        return {k: to_jax_action(action[k], s) for k, s in space.spaces.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        return tuple(to_jax_action(a, s) for a, s in zip(action, space.spaces, strict=True))
    if isinstance(space, gymnasium.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return np.asarray(action, dtype=np.float32)
    return np.asarray(action)


def space_contains(space: Any, x: Any) -> Any:
    """Whether ``x`` lies in the gymnax ``space`` (a jittable bool scalar), stricter than gymnax.

    Unlike gymnax's own ``contains`` it checks shapes, works on plain dicts for ``Dict`` spaces
    (gymnax's ``Dict.contains`` uses attribute access and fails on dicts) and requires
    integer values for ``Discrete``.
    """
    from gymnax.environments import spaces as gx

    if isinstance(space, gx.Dict):
        if set(x) != set(space.spaces):
            return jnp.asarray(False)
        return jnp.all(jnp.stack([space_contains(s, x[k]) for k, s in space.spaces.items()]))
    if isinstance(space, gx.Tuple):
        if len(x) != len(space.spaces):
            return jnp.asarray(False)
        return jnp.all(
            jnp.stack([space_contains(s, v) for s, v in zip(space.spaces, x, strict=True)])
        )
    x = jnp.asarray(x)
    if tuple(x.shape) != tuple(space.shape):
        return jnp.asarray(False)
    if isinstance(space, gx.Discrete):
        integral = jnp.all(x == jnp.round(x))
        return integral & jnp.all((x >= 0) & (x < space.n))
    if isinstance(space, gx.Box):
        if x.dtype == jnp.bool_:
            return jnp.asarray(np.dtype(space.dtype) == np.bool_)
        return jnp.all((x >= space.low) & (x <= space.high)) & ~jnp.any(jnp.isnan(x))
    return jnp.asarray(space.contains(x))
