"""Config (de)serialisation and overrides, and the registered agents' default configs.

``default_config(agent_name, env_id) -> (config, hparams_overrides)``: the config registered
for ``env_id`` (or its family) and the hparams that differ from the agent's defaults.
``apply_overrides`` turns ``{field: value}`` (typed values, or strings as a command line gives
them) into a new config and hparams, rejecting unknown fields with the closest names.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

from accelrl._typed import parse_text
from accelrl.agents.registry import FAMILIES, agent_spec, env_family


def default_config(agent_name: str, env_id: str) -> tuple[Any, dict[str, float]]:
    """The default ``(config, hparams_overrides)`` of a registered agent on ``env_id``.

    Looks up the id first, then its family (:func:`env_family`), then ``"generic"``.

    Raises:
        UnknownAgentError: for an unknown agent name (a ``ValueError``).
    """
    return agent_spec(agent_name).default_config(env_id)


# ----------------------------------------------------------------------------------------------
# Serialisation and overrides


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def hparams_to_dict(hparams: Any) -> dict[str, Any]:
    """JSON-ready dict of an (unbatched or batched) hparams dataclass."""
    return {f.name: _plain(getattr(hparams, f.name)) for f in dataclasses.fields(hparams)}


def _plain(x: Any) -> Any:
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from :func:`config_to_dict` output (unknown keys rejected)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}")
    kwargs = {}
    for k, v in data.items():
        if isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


def _is_tuple_type(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple


def parse_value(text: str, tp: Any, name: str) -> Any:
    """Parse a command-line string into a value of type ``tp`` (int, float, bool, str,
    ``tuple[int, ...]`` as ``"64,64"``, and ``X | None`` with ``"none"``): the shared
    :func:`accelrl._typed.parse_text`, naming the field as the flag ``--name``."""
    return parse_text(text, tp, f"--{name}")


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """A typed override value: strings are parsed (:func:`parse_value`), lists become tuples."""
    if isinstance(value, str) and tp is not str:
        return parse_value(value, tp, name)
    if isinstance(value, list):
        return tuple(value)
    return value


def apply_overrides(config: Any, hparams: Any, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """Apply ``{field: value}`` overrides to a config dataclass and an hparams dataclass.

    Values may be typed (``{"hidden_sizes": (32, 32)}``) or strings as a command line gives them
    (``{"hidden_sizes": "32,32"}``). Field names may use ``-`` for ``_``. Config fields win if a
    name exists in both.

    Raises:
        ValueError: for unknown fields (with the closest names) or unparsable values.
    """
    c_hints = typing.get_type_hints(type(config))
    h_hints = typing.get_type_hints(type(hparams))
    c_names = [f.name for f in dataclasses.fields(config)]
    h_names = [f.name for f in dataclasses.fields(hparams)]
    c_new, h_new = {}, {}
    for raw, value in overrides.items():
        name = raw.replace("-", "_")
        if name in c_names:
            c_new[name] = _coerce(value, c_hints[name], name)
        elif name in h_names:
            h_new[name] = _coerce(value, float if h_hints[name] is float else h_hints[name], name)
        else:
            close = difflib.get_close_matches(name, c_names + h_names, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join('--' + c for c in close)}?" if close else ""
            raise ValueError(
                f"unknown field --{raw} for {type(config).__name__}/{type(hparams).__name__}.{hint}"
            )
    return dataclasses.replace(config, **c_new), hparams.replace(**h_new)


__all__ = [
    "FAMILIES",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "default_config",
    "env_family",
    "hparams_to_dict",
    "parse_value",
]
