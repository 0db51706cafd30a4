"""Typed values from untyped input (JSON, a command line): strict checks against annotations.

Used wherever settings enter from outside: agent config and hparams overrides, reset-strategy
settings, run specs. An integer field refuses ``5.5``, ``True`` and ``"5"`` given as JSON; a
string from a command line is parsed (``"5"`` -> 5, ``"64,64"`` -> ``(64, 64)``, ``"none"`` ->
None). Imports nothing heavy (no JAX), so a bad value fails before anything compiles.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _bad(name: str, value: Any, tp: Any) -> ValueError:
    return ValueError(f"{name} must be {_type_name(tp)}, got {value!r}")


def parse_text(text: str, tp: Any, name: str) -> Any:
    """Parse a command-line string into ``tp`` (int, float, bool, str, Literal, tuples as
    ``"64,64"``, ``X | None`` with ``"none"``)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if text.lower() == "none" and len(args) < len(typing.get_args(tp)):
            return None
        errors = []
        for a in args:
            try:
                return parse_text(text, a, name)
            except ValueError as e:
                errors.append(e)
        raise _bad(name, text, tp)
    if origin is tuple:
        elem = typing.get_args(tp)[0]
        parts = [p for p in text.replace(" ", ",").split(",") if p]
        return tuple(parse_text(p, elem, name) for p in parts)
    if origin is Literal:
        if text in typing.get_args(tp):
            return text
        raise _bad(name, text, tp)
    try:
        if tp is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if tp is int:
            value = float(text) if "e" in text.lower() else int(text)
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # 1e5
        elif tp is float:
            value = float(text)
        elif tp is str:
            return text
        else:
            value = None
    except ValueError:
        raise _bad(name, text, tp) from None
    if tp in (int, float):
        return check_value(value, tp, name)
    raise ValueError(f"{name}: unsupported field type {_type_name(tp)}")


def check_value(value: Any, tp: Any, name: str) -> Any:
    """``value`` checked (and normalised: lists become tuples, integral floats in an ``int``
    field from ``1e5`` notation become ints) against the annotation ``tp``.

    Raises:
        ValueError: a value of another type (``5.5`` or ``True`` for an int, a string for a
            number, a non-finite float, a Literal outside its choices), naming ``name``.
    """
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        for a in typing.get_args(tp):
            if a is type(None):
                continue
            try:
                return check_value(value, a, name)
            except ValueError:
                continue
        raise _bad(name, value, tp)
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) in {type(a) for a in typing.get_args(tp)}:
            return value
        raise _bad(name, value, tp)
    if origin is tuple or tp is tuple:
        if not isinstance(value, list | tuple):
            raise _bad(name, value, tp)
        args = typing.get_args(tp)
        elem = args[0] if args else Any
        return tuple(check_value(v, elem, f"{name}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _bad(name, value, tp)
    if tp is int:
        if isinstance(value, bool):
            raise _bad(name, value, tp)
        if isinstance(value, int):
            return int(value)
        if (
            hasattr(value, "dtype")
            and getattr(value, "shape", None) == ()
            and value.dtype.kind in "iu"
        ):
            return int(value)
        raise _bad(name, value, tp)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            if not (hasattr(value, "dtype") and getattr(value, "shape", None) == ()):
                raise _bad(name, value, tp)
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        raise _bad(name, value, tp)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise _bad(name, value, tp)
    return value


def coerce(value: Any, tp: Any, name: str) -> Any:
    """A command-line string parsed (:func:`parse_text`), anything else checked
    (:func:`check_value`)."""
    if isinstance(value, str) and tp is not str and typing.get_origin(tp) is not Literal:
        origin = typing.get_origin(tp)
        if not (origin in (typing.Union, types.UnionType) and str in typing.get_args(tp)):
            return parse_text(value, tp, name)
    return check_value(value, tp, name)


def unknown_name(name: str, known: list[str], what: str) -> ValueError:
    """An error for an unknown field ``name`` naming the closest ``known`` ones."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(f"unknown {what} {name!r}.{hint} Known: {', '.join(known)}")


def from_mapping(cls: type, data: Mapping[str, Any], what: str) -> Any:
    """An instance of the dataclass ``cls`` from ``data``: unknown keys refused with close
    matches, missing required fields named, every value checked against its annotation
    (``-`` in keys read as ``_``)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a mapping of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for raw, value in data.items():
        key = str(raw).replace("-", "_")
        if key not in fields:
            raise unknown_name(key, list(fields), f"{what} setting")
        kwargs[key] = coerce(value, hints[key], f"{what} {key}")
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{what} needs {', '.join(missing)}")
    return cls(**kwargs)


def to_plain(value: Any) -> Any:
    """JSON-ready: dataclasses to dicts, tuples to lists, numpy/JAX scalars and arrays to lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


__all__ = ["check_value", "coerce", "from_mapping", "parse_text", "to_plain", "unknown_name"]
