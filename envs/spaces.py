"""Conversion of gymnax spaces to gymnasium spaces (numpy dtypes) for the adapters.

gymnax is imported inside the functions: importing it imports its whole environment zoo
(seconds), and the spaces these functions get come from an environment that imported it already.
"""

from __future__ import annotations

from typing import Any

import gymnasium
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
