"""Search spaces over an agent's config and hparams, with ConfigSpace JSON import and export.

A :class:`SearchSpace` maps field names to dimensions: :class:`Float` and :class:`Int` ranges
(linear or log-uniform) and :class:`Categorical` choices. Against an agent (a registered name,
``accelrl.agents.registered_agents()``) it splits into

* *hparams* dimensions: fields of the agent's hparams class; they keep shapes, so any number
  of configurations that differ only there run as members of one vmapped program;
* *config* dimensions: fields of the agent's frozen config class; they change shapes or the
  compiled program (``num_minibatches``, network widths), so each distinct combination of
  their values is its own program.

>>> space = SearchSpace({"learning_rate": Float(1e-5, 1e-2, log=True),
...                      "num_minibatches": Categorical((1, 2, 4))})
>>> space.split("ppo")
(('num_minibatches',), ('learning_rate',))
>>> space.sample(np.random.default_rng(0), 3, agent="ppo", base_config=config)

Constraints between fields (``num_minibatches`` must divide ``num_envs * num_steps``, SAC's
``learning_starts`` must be below ``total_timesteps``) are the agent's own
``config.validate()``: a drawn configuration whose config values fail it is rejected and the
*whole* configuration is drawn again (rejection sampling: the result is the space's prior
conditioned on validity); after ``max_tries`` rejections in a row sampling raises with the last
reason. Hparams dimensions are checked once, up front, against the ranges of
``accelrl.agents.build.HPARAM_RANGES``, so every draw passes ``check_hparams``.

Spaces travel to other AutoML tools as ConfigSpace JSON (format_version 0.4, as ConfigSpace
1.x writes it), read and written here without the ConfigSpace package: see
:func:`to_configspace_json` and :func:`from_configspace_json`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelrl.agents.build import HPARAM_RANGES
from accelrl.agents.configs import parse_value
from accelrl.agents.registry import AgentSpec, agent_spec

# Fields a space may not hold, and why.
RESERVED: dict[str, str] = {
    "total_timesteps": "the search's budget sets it (environment steps per configuration)",
}

CONFIGSPACE_FORMAT_VERSION = 0.4
# Marks a categorical whose choices are tuples, written as "64,64" strings in ConfigSpace JSON.
_TUPLE_META = "accelrl_tuple_choices"

Scalar = bool | int | float | str


# ----------------------------------------------------------------------------------------------
# Dimensions


def _check_range(kind: str, low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{kind} bounds must be finite, got [{low}, {high}]")
    if not low < high:
        raise ValueError(f"{kind} needs low < high, got [{low}, {high}] (use Categorical)")
    if log and low <= 0:
        raise ValueError(f"{kind}(log=True) needs low > 0, got {low}")


@dataclasses.dataclass(frozen=True)
class Float:
    """A real interval ``[low, high]``, drawn uniformly or, with ``log``, log-uniformly."""

    low: float
    """Lower bound (inclusive); > 0 when ``log``."""
    high: float
    """Upper bound (inclusive)."""
    log: bool = False
    """Draw ``exp(uniform(log low, log high))``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        _check_range("Float", self.low, self.high, self.log)

    def sample(self, rng: np.random.Generator) -> float:
        """One value in ``[low, high]``."""
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        return float(min(max(x, self.low), self.high))

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a number in ``[low, high]``."""
        return _is_number(value) and self.low <= float(value) <= self.high

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)``: the extreme values a draw can take."""
        return self.low, self.high


@dataclasses.dataclass(frozen=True)
class Int:
    """The integers ``low..high`` (inclusive), uniform or, with ``log``, log-uniform (integer
    ``k`` drawn with probability proportional to ``log((k + 1) / k)``)."""

    low: int
    """Lower bound (inclusive); >= 1 when ``log``."""
    high: int
    """Upper bound (inclusive)."""
    log: bool = False
    """Draw log-uniformly."""

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not float(value).is_integer():
                raise ValueError(f"Int.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        _check_range("Int", self.low, self.high, self.log)

    def sample(self, rng: np.random.Generator) -> int:
        """One integer in ``low..high``."""
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(max(math.floor(x), self.low), self.high))
        return int(rng.integers(self.low, self.high + 1))

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is an integer in ``low..high``."""
        return (
            _is_number(value) and float(value).is_integer() and self.low <= int(value) <= self.high
        )

    @property
    def bounds(self) -> tuple[int, int]:
        """``(low, high)``."""
        return self.low, self.high


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _plain_choice(value: Any) -> Any:
    """A choice as a plain hashable Python value (numpy scalars unwrapped, lists -> tuples)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple):
        return tuple(_plain_choice(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class Categorical:
    """One of ``choices``, each equally likely: booleans, numbers, strings, or tuples of
    numbers (network widths such as ``(64, 64)``)."""

    choices: tuple[Any, ...]
    """The distinct values."""

    def __post_init__(self) -> None:
        if isinstance(self.choices, str | bytes) or not isinstance(self.choices, Sequence):
            raise ValueError(f"Categorical needs a sequence of choices, got {self.choices!r}")
        choices = tuple(_plain_choice(c) for c in self.choices)
        if not choices:
            raise ValueError("Categorical needs at least one choice")
        for c in choices:
            ok = isinstance(c, bool | int | float | str) or (
                isinstance(c, tuple) and c and all(_is_number(x) for x in c)
            )
            if not ok:
                raise ValueError(
                    f"Categorical choice {c!r}: choices must be bool, int, float, str or a "
                    "non-empty tuple of numbers"
                )
        # True == 1 in Python: compare with types so {True, 1} are two choices.
        keys = [(type(c), c) for c in choices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Categorical choices must be distinct, got {list(choices)}")
        object.__setattr__(self, "choices", choices)

    def sample(self, rng: np.random.Generator) -> Any:
        """One of the choices."""
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices (with its type: ``True`` is not ``1``)."""
        value = _plain_choice(value)
        return any(type(c) is type(value) and c == value for c in self.choices)

    @property
    def bounds(self) -> tuple[Any, ...]:
        """Every choice (all of them are extreme values for a range check)."""
        return self.choices


Dimension = Float | Int | Categorical


# ----------------------------------------------------------------------------------------------
# The space


def _spec(agent: str | AgentSpec) -> AgentSpec:
    return agent if isinstance(agent, AgentSpec) else agent_spec(agent)


def _field_types(cls: type) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    return {n: hints[n] for n in names}


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce_choice(name: str, value: Any, tp: Any) -> Any:
    """``value`` as a value of the config field type ``tp`` (strings parsed as on a command
    line); raises ``ValueError`` naming the field when it is not one."""
    tp = _strip_optional(tp)
    if isinstance(value, str) and tp is not str:
        value = parse_value(value, tp, name)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if _is_number(value) and float(value).is_integer():
            return int(value)
    elif tp is float:
        if _is_number(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(tp) is tuple:
        (elem, *_rest) = typing.get_args(tp)
        if isinstance(value, tuple) and value:
            return tuple(_coerce_choice(name, v, elem) for v in value)
    raise ValueError(f"{value!r} is not a {getattr(tp, '__name__', tp)}")


class SearchSpace(Mapping[str, Dimension]):
    """Field name -> dimension; see the module docstring.

    Args:
        dims: ``{field: Float | Int | Categorical}`` over config and hparams fields of one
            agent (names as the agent's classes spell them; ``-`` is read as ``_``).
    """

    def __init__(self, dims: Mapping[str, Dimension] | None = None):
        out: dict[str, Dimension] = {}
        for raw, dim in (dims or {}).items():
            if not isinstance(raw, str) or not raw:
                raise ValueError(f"dimension names must be non-empty strings, got {raw!r}")
            if not isinstance(dim, Float | Int | Categorical):
                raise TypeError(
                    f"dimension {raw!r} must be a Float, Int or Categorical, got "
                    f"{type(dim).__name__}"
                )
            name = raw.replace("-", "_")
            if name in out:
                raise ValueError(f"dimension {name!r} is given twice")
            out[name] = dim
        self._dims = out

    # -- mapping ------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Dimension:
        return self._dims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._dims == other._dims

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._dims.items(), key=lambda kv: kv[0])))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._dims.items())
        return f"SearchSpace({{{inner}}})"

    def without(self, *names: str) -> SearchSpace:
        """A copy without ``names`` (each must be in the space)."""
        missing = [n for n in names if n not in self._dims]
        if missing:
            raise KeyError(f"not in the space: {missing}")
        return SearchSpace({k: v for k, v in self._dims.items() if k not in names})

    def updated(self, dims: Mapping[str, Dimension]) -> SearchSpace:
        """A copy with ``dims`` added or replacing those of the same name."""
        return SearchSpace({**self._dims, **{k.replace("-", "_"): v for k, v in dims.items()}})

    # -- the split and validation -------------------------------------------------------------

    def split(
        self, agent: str | AgentSpec, strategy: Any = None, env_dims: Sequence[str] = ()
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(config_names, hparams_names)`` for ``agent``, each in the space's order.

        A name in both classes counts as config (as in ``apply_overrides``). With a reset
        ``strategy`` (its registry entry, :func:`accelrl.envs.strategies.strategy`), names
        ``<prefix>.<setting>`` (``teacher.fit_rate``) are its settings: its data settings
        (``teacher.random_task_ratio``) keep shapes and count as hparams, the others as config
        (they group configurations into programs). ``env_dims`` are the environment's
        dimensions (``env.<kwarg>``, ``env_params.<field>``:
        :meth:`~accelrl.autotune.backend.RunnerBackend.env_dims`), config as well.

        Raises:
            ValueError: a name that is neither (with the closest names).
        """
        spec = _spec(agent)
        c_names = [f.name for f in dataclasses.fields(spec.config_cls)]
        h_names = [f.name for f in dataclasses.fields(spec.hparams_cls)]
        s_names: list[str] = []
        if strategy is not None and strategy.name != "default":
            s_names = [f"{strategy.prefix}.{n}" for n in strategy.setting_names]
        config, hparams = [], []
        for name in self._dims:
            if name in c_names:
                config.append(name)
            elif name in h_names:
                hparams.append(name)
            elif name in env_dims:
                config.append(name)
            elif name in s_names:
                own = name.split(".", 1)[1]
                (hparams if own in strategy.data_settings else config).append(name)
            else:
                known = c_names + h_names + s_names + list(env_dims)
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                where = f"{spec.config_cls.__name__} or {spec.hparams_cls.__name__}"
                if strategy is not None and strategy.name != "default":
                    where += f" or a setting of the {strategy.name!r} reset strategy"
                raise ValueError(
                    f"search space dimension {name!r} is not a field of {where}.{hint}"
                )
        return tuple(config), tuple(hparams)

    def validate(
        self, agent: str | AgentSpec, strategy: Any = None, env_dims: Sequence[str] = ()
    ) -> SearchSpace:
        """Check the space against ``agent`` (and the reset ``strategy``'s settings, see
        :meth:`split`) and return it with categorical choices coerced to the config fields'
        types (``"64,64"`` -> ``(64, 64)`` for a ``tuple[int, ...]`` field, as a space read
        from ConfigSpace JSON may hold). Strategy settings are checked by the strategy's
        settings class when a configuration is built.

        Raises:
            ValueError: naming the dimension: unknown field (with close matches), a reserved
                field (``total_timesteps``: the budget sets it), a dimension of the wrong kind
                for its field (a Float on an int field), a categorical choice of the wrong type,
                or an hparams range outside ``HPARAM_RANGES`` (``gamma`` in [0, 1], learning
                rates > 0, ...).
        """
        spec = _spec(agent)
        for name in self._dims:
            if name in RESERVED:
                raise ValueError(
                    f"search space dimension {name!r} is not allowed: {RESERVED[name]}"
                )
        config_names, hparams_names = self.split(spec, strategy, env_dims)
        c_types = _field_types(spec.config_cls)
        out: dict[str, Dimension] = {}
        for name, dim in self._dims.items():
            if "." in name:  # a strategy setting
                out[name] = dim
            elif name in config_names:
                out[name] = _validate_config_dim(name, dim, c_types[name], spec)
            else:
                _validate_hparams_dim(name, dim, spec)
                out[name] = dim
        return SearchSpace(out)

    # -- sampling -----------------------------------------------------------------------------

    def sample_one(self, rng: np.random.Generator) -> dict[str, Any]:
        """One unconstrained draw ``{name: value}`` (dimensions drawn in the space's order)."""
        return {name: dim.sample(rng) for name, dim in self._dims.items()}

    def sample(
        self,
        rng: np.random.Generator,
        n: int,
        *,
        agent: str | AgentSpec | None = None,
        base_config: Any = None,
        max_tries: int = 1000,
    ) -> list[dict[str, Any]]:
        """``n`` configurations ``{name: value}``, reproducible from ``rng``'s seed.

        With ``agent`` and ``base_config`` (the config the drawn config values replace fields
        of, e.g. ``build(...)[1]``), a draw whose config fails ``base_config.replace(...)
        .validate()`` is rejected and the whole configuration is drawn again.

        Raises:
            ValueError: ``max_tries`` rejections in a row (the last reason is in the message).
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        config_names: tuple[str, ...] = ()
        if base_config is not None:
            if agent is None:
                raise ValueError("base_config needs agent (to know which fields are config)")
            agent_only = SearchSpace({k: v for k, v in self._dims.items() if "." not in k})
            config_names, _ = agent_only.split(agent)
        out = []
        for _ in range(n):
            reason = ""
            for _attempt in range(max_tries):
                draw = self.sample_one(rng)
                reason = config_problem(base_config, {k: draw[k] for k in config_names})
                if not reason:
                    out.append(draw)
                    break
            else:
                raise ValueError(
                    f"no valid configuration in {max_tries} draws; the last was rejected by "
                    f"{type(base_config).__name__}.validate(): {reason}"
                )
        return out

    # -- ConfigSpace JSON ---------------------------------------------------------------------

    def to_configspace_json(self, name: str | None = None) -> str:
        """See :func:`to_configspace_json`."""
        return to_configspace_json(self, name)


def config_problem(base_config: Any, values: Mapping[str, Any]) -> str:
    """Why ``base_config`` with ``values`` is not a valid config ("" when it is, or when
    ``base_config`` is None)."""
    values = {k: v for k, v in values.items() if "." not in k}  # reset-strategy settings
    if base_config is None or not values:
        return ""
    try:
        dataclasses.replace(base_config, **values).validate()
    except (ValueError, TypeError) as e:
        return str(e)
    return ""


def _validate_config_dim(name: str, dim: Dimension, tp: Any, spec: AgentSpec) -> Dimension:
    where = f"search space dimension {name!r} ({spec.config_cls.__name__}.{name}: {_tp_name(tp)})"
    base = _strip_optional(tp)
    if isinstance(dim, Float):
        if base is not float:
            raise ValueError(f"{where}: a Float range needs a float field; use Int or Categorical")
        return dim
    if isinstance(dim, Int):
        if base not in (int, float):
            raise ValueError(f"{where}: an Int range needs an int or float field")
        return dim
    choices = []
    for c in dim.choices:
        try:
            choices.append(_coerce_choice(name, c, tp))
        except ValueError as e:
            raise ValueError(f"{where}: choice {c!r} does not fit ({e})") from None
    return Categorical(tuple(choices))


def _validate_hparams_dim(name: str, dim: Dimension, spec: AgentSpec) -> None:
    where = f"search space dimension {name!r} ({spec.hparams_cls.__name__}.{name})"
    values = dim.bounds
    if isinstance(dim, Categorical) and not all(_is_number(v) for v in values):
        raise ValueError(f"{where}: hparams are numbers, got choices {list(values)}")
    low, high, low_excl = HPARAM_RANGES.get(name, (None, None, False))
    for v in values:
        v = float(v)
        bad = (low is not None and (v <= low if low_excl else v < low)) or (
            high is not None and v > high
        )
        if bad:
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            interval = f"{'(' if low_excl else '['}{lo}, {hi}]"
            raise ValueError(
                f"{where}: {v:g} is outside the field's range {interval} (check_hparams would "
                "refuse it)"
            )


def _tp_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


# ----------------------------------------------------------------------------------------------
# Default spaces


def _ppo_space() -> SearchSpace:
    # ARLBench's benchmarked PPO space (Becktepe et al., 2024; the 9 of its 13 dimensions it
    # tunes), mapped onto accelrl's fields; see docs/autotune.md for each choice.
    return SearchSpace(
        {
            "learning_rate": Float(1e-6, 0.1, log=True),
            "num_minibatches": Categorical((1, 2, 4, 8)),
            "gae_lambda": Float(0.8, 0.9999),
            "clip_eps": Float(0.0, 0.5),
            "ent_coef": Float(0.0, 0.5),
            "vf_coef": Float(0.0, 1.0),
            "max_grad_norm": Float(0.01, 1.0),
            "normalize_advantages": Categorical((True, False)),
        }
    )


def _sac_space() -> SearchSpace:
    # The SAC example space of Eimer, Lindauer and Raileanu (ICML 2023), with its integer
    # ranges discretised on log grids (each config value is its own compiled program).
    return SearchSpace(
        {
            "actor_lr": Float(1e-6, 1e-2, log=True),
            "critic_lr": Float(1e-6, 1e-2, log=True),
            "gamma": Float(0.8, 0.9999),
            "batch_size": Categorical((64, 128, 256, 512)),
            "gradient_steps": Categorical((1, 2, 5, 10)),
            "learning_starts": Categorical((10, 100, 1_000, 10_000)),
            "buffer_size": Categorical((5_000, 50_000, 500_000, 5_000_000, 50_000_000)),
        }
    )


_DEFAULT_SPACES = {"ppo": _ppo_space, "sac": _sac_space}


def default_space(agent: str) -> SearchSpace:
    """The default search space of ``agent`` (``"ppo"``: ARLBench's benchmarked space;
    ``"sac"``: Eimer et al.'s example space; sources and deviations in docs/autotune.md).

    Raises:
        ValueError: an agent without a default space (give one explicitly).
    """
    if agent not in _DEFAULT_SPACES:
        raise ValueError(
            f"no default search space for agent {agent!r}; defaults exist for "
            f"{', '.join(sorted(_DEFAULT_SPACES))}. Pass a SearchSpace."
        )
    return _DEFAULT_SPACES[agent]()


# ----------------------------------------------------------------------------------------------
# ConfigSpace JSON


class SpaceFileError(ValueError):
    """A ConfigSpace JSON document that is not a space accelrl can read; the message names the
    file and the bad entry."""


def _default_value(dim: Dimension) -> Any:
    """ConfigSpace's own default: the centre of the range (geometric for log), the first
    choice."""
    if isinstance(dim, Categorical):
        return _encode_choice(dim.choices[0])
    lo, hi = dim.bounds
    mid = math.exp((math.log(lo) + math.log(hi)) / 2) if dim.log else (lo + hi) / 2
    if isinstance(dim, Int):
        return int(min(max(round(mid), lo), hi))
    return float(mid)


def _encode_choice(c: Any) -> Scalar:
    return ",".join(repr(x) for x in c) if isinstance(c, tuple) else c


def _dim_to_json(name: str, dim: Dimension) -> dict[str, Any]:
    if isinstance(dim, Float | Int):
        lo, hi = dim.bounds
        return {
            "type": "uniform_float" if isinstance(dim, Float) else "uniform_int",
            "name": name,
            "lower": lo,
            "upper": hi,
            "default_value": _default_value(dim),
            "log": dim.log,
            "meta": None,
        }
    tuples = any(isinstance(c, tuple) for c in dim.choices)
    if tuples and not all(isinstance(c, tuple) for c in dim.choices):
        raise ValueError(f"{name}: a categorical mixing tuples and scalars cannot be exported")
    return {
        "type": "categorical",
        "name": name,
        "choices": [_encode_choice(c) for c in dim.choices],
        "weights": None,
        "default_value": _default_value(dim),
        "meta": {_TUPLE_META: True} if tuples else None,
    }


def to_configspace_json(space: SearchSpace, name: str | None = None) -> str:
    """``space`` as a ConfigSpace JSON document (``ConfigurationSpace.from_json`` reads it).

    Float and Int become ``uniform_float``/``uniform_int`` (with ``log``), Categorical becomes
    ``categorical``; tuple choices (network widths) are written as ``"64,64"`` strings with
    ``meta: {"accelrl_tuple_choices": true}`` so :func:`from_configspace_json` restores them.
    Each ``default_value`` is ConfigSpace's default rule (range centre, first choice): a space
    has no default of its own (an agent's defaults come from ``build``).
    """
    doc = {
        "name": name,
        "hyperparameters": [_dim_to_json(k, v) for k, v in space.items()],
        "conditions": [],
        "forbiddens": [],
        "python_module_version": "1.2.0",
        "format_version": CONFIGSPACE_FORMAT_VERSION,
    }
    return json.dumps(doc, indent=2)


def _decode_tuple(text: Any, where: str) -> tuple:
    if not isinstance(text, str):
        raise SpaceFileError(f"{where}: tuple choices are written as strings, got {text!r}")
    try:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(int(p) if p.lstrip("-").isdigit() else float(p) for p in parts)
    except ValueError:
        raise SpaceFileError(f"{where}: {text!r} is not a comma-separated tuple") from None


def _need(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise SpaceFileError(f"{where}: missing {key!r}")
    return entry[key]


def _dim_from_json(entry: Any, where: str) -> tuple[str, Dimension]:
    if not isinstance(entry, dict):
        raise SpaceFileError(f"{where}: expected an object, got {type(entry).__name__}")
    name = _need(entry, "name", where)
    if not isinstance(name, str) or not name:
        raise SpaceFileError(f"{where}: 'name' must be a non-empty string, got {name!r}")
    where = f"{where} ({name!r})"
    kind = _need(entry, "type", where)
    try:
        if kind in ("uniform_float", "uniform_int"):
            lower, upper = _need(entry, "lower", where), _need(entry, "upper", where)
            log = entry.get("log", False)
            if not isinstance(log, bool):
                raise SpaceFileError(f"{where}: 'log' must be true or false, got {log!r}")
            for key, v in (("lower", lower), ("upper", upper)):
                if not _is_number(v):
                    raise SpaceFileError(f"{where}: {key!r} must be a number, got {v!r}")
            cls = Float if kind == "uniform_float" else Int
            return name, cls(lower, upper, log=log)
        if kind == "categorical":
            choices = _need(entry, "choices", where)
            if not isinstance(choices, list):
                raise SpaceFileError(f"{where}: 'choices' must be a list, got {choices!r}")
            weights = entry.get("weights")
            if weights is not None and len(set(weights)) > 1:
                raise SpaceFileError(
                    f"{where}: weighted categoricals are not supported (accelrl draws choices "
                    f"uniformly), got weights {weights}"
                )
            if (entry.get("meta") or {}).get(_TUPLE_META):
                choices = [_decode_tuple(c, where) for c in choices]
            return name, Categorical(tuple(choices))
        if kind == "ordinal":
            return name, Categorical(tuple(_need(entry, "sequence", where)))
        if kind == "constant":
            return name, Categorical((_need(entry, "value", where),))
    except SpaceFileError:
        raise
    except (ValueError, TypeError) as e:
        raise SpaceFileError(f"{where}: {e}") from None
    raise SpaceFileError(
        f"{where}: unsupported hyperparameter type {kind!r}; accelrl reads uniform_float, "
        "uniform_int, categorical, ordinal and constant"
    )


def from_configspace_json(text: str, source: str = "<string>") -> SearchSpace:
    """Read a space from a ConfigSpace JSON document (as :func:`to_configspace_json` or
    ConfigSpace's ``to_json`` write it).

    ``uniform_float``/``uniform_int`` become Float/Int, ``categorical`` (uniform weights) and
    ``ordinal`` become Categorical, ``constant`` a one-choice Categorical. Choices stay as
    written: check the space against an agent with :meth:`SearchSpace.validate`, which also
    coerces them to the fields' types.

    Raises:
        SpaceFileError: not JSON, not a ConfigSpace document, or an entry accelrl cannot read
            (normal/beta distributions, weighted categoricals, conditions, forbidden clauses,
            duplicate names, bad bounds); the message names ``source`` and the entry.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpaceFileError(f"{source}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or "hyperparameters" not in doc:
        raise SpaceFileError(f"{source}: not a ConfigSpace document (no 'hyperparameters' list)")
    entries = doc["hyperparameters"]
    if not isinstance(entries, list):
        raise SpaceFileError(f"{source}: 'hyperparameters' must be a list")
    for key in ("conditions", "forbiddens"):
        if doc.get(key):
            raise SpaceFileError(
                f"{source}: {key}[0] ({json.dumps(doc[key][0])[:80]}): {key} are not supported; "
                "accelrl spaces are unconditional boxes (constraints come from the agent's "
                "config.validate())"
            )
    dims: dict[str, Dimension] = {}
    for i, entry in enumerate(entries):
        name, dim = _dim_from_json(entry, f"{source}: hyperparameters[{i}]")
        if name in dims:
            raise SpaceFileError(f"{source}: hyperparameters[{i}] ({name!r}): duplicate name")
        dims[name] = dim
    return SearchSpace(dims)


def write_space(space: SearchSpace, path: str | Path, name: str | None = None) -> Path:
    """Write ``space`` as ConfigSpace JSON to ``path`` (through a temporary file and a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(to_configspace_json(space, name))
    tmp.replace(path)
    return path


def read_space(path: str | Path) -> SearchSpace:
    """Read a ConfigSpace JSON file (errors name the file and the bad entry)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpaceFileError(f"{path}: cannot read ({e.strerror or e})") from None
    return from_configspace_json(text, source=str(path))


def values_to_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration ``{name: value}`` as JSON-ready values (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else (v.item() if isinstance(v, np.generic) else v)
        for k, v in values.items()
    }


__all__ = [
    "RESERVED",
    "Categorical",
    "Dimension",
    "Float",
    "Int",
    "SearchSpace",
    "SpaceFileError",
    "config_problem",
    "default_space",
    "from_configspace_json",
    "read_space",
    "to_configspace_json",
    "values_to_json",
    "write_space",
]
