"""Reset strategies by name: what a fresh start is, as a registered, typed component.

A run names its reset strategy (``"default"``, a teacher such as ``"alp_gmm"``, ``"snapshot"``)
and gives its settings as a mapping; the registry turns them into a typed settings object (unknown
names refused with close matches, values checked against their annotations) and builds the
single environment, its params and the strategy the batched env runs. The agents' ``build`` wraps
them in ``VecEnv(env, config.num_envs, strategy)``, so the number of copies has one owner.

Built-in names map to the modules that register them (:data:`accelrl._catalog.BUILTIN_STRATEGIES`),
imported on first lookup as environment ids are: the teachers and snapshot starts live in
:mod:`accelrl.curricula`, which imports ``envs``, never the other way round.

>>> entry = strategy("alp_gmm")
>>> settings = entry.settings({"task_space": "pendulum_dynamics", "fit_rate": 150})
>>> built = entry.build(settings, StrategyContext("Pendulum-v1", {}, "ppo"))
>>> built.env, built.params, built.strategy       # VecEnv(built.env, n, built.strategy)
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from accelrl._catalog import BUILTIN_STRATEGIES
from accelrl._typed import from_mapping, to_plain, unknown_name


class UnknownStrategyError(ValueError):
    """A reset-strategy name that is not registered."""


@dataclasses.dataclass(frozen=True)
class StrategyContext:
    """What a strategy is built for: the run's environment id and ``make`` kwargs, and the
    agent's name (some strategies' defaults depend on it)."""

    env_id: str
    env_kwargs: Mapping[str, Any]
    agent: str


class StrategyBuild(NamedTuple):
    """A built strategy: the single environment and params to batch, the strategy (None: the
    default resets), and the settings with every default filled in (recorded in the run's
    spec, so a rebuild is exact)."""

    env: Any
    params: Any
    strategy: Any
    settings: Any


@dataclasses.dataclass(frozen=True)
class RegisteredStrategy:
    """A registry entry.

    Attributes:
        name: the registered name.
        settings_cls: a frozen dataclass of the strategy's settings.
        builder: ``(settings, StrategyContext) -> StrategyBuild``.
        extras: optional ``(settings, spec, out, resume) -> (hooks, report)``: the host-side
            hooks of a run with this strategy (``Runner.on_segment`` callbacks) and a report
            ``(RunResult) -> dict`` merged into ``eval.json`` (a teacher's fraction mastered,
            its task log and plots).
        resolve: optional ``(settings, spec) -> spec``: checks the parts of a run spec that
            belong to this strategy (a teacher run's measurements) and fills in their
            defaults, before anything is written.
        description: one line for help texts.
        kind: the prefix a search space names the settings with (``teacher`` for every
            teacher: ``teacher.fit_rate``; ``snapshot``); default the name.
        data_settings: the settings that keep shapes (the built strategy's
            ``data_settings``: vmapped per member, copied and perturbed by PBT); the others
            change the program.
        scores: optional ``{name: (settings, spec) -> score}``: what a tuner may score a run
            with besides its return; ``score(agent, state) -> f32[M]`` for a state batched
            over ``M`` members (a teacher's ``mastered``: the fraction of its fixed test set
            of tasks mastered).
    """

    name: str
    settings_cls: type
    builder: Callable[[Any, StrategyContext], StrategyBuild]
    extras: Callable[..., tuple[list[Any], Any]] | None = None
    description: str = ""
    resolve: Callable[[Any, Any], Any] | None = None
    kind: str = ""
    data_settings: tuple[str, ...] = ()
    scores: Mapping[str, Callable[[Any, Any], Callable[[Any, Any], Any]]] = dataclasses.field(
        default_factory=dict
    )

    @property
    def prefix(self) -> str:
        """``kind`` or the name: search spaces name the settings ``<prefix>.<setting>``."""
        return self.kind or self.name

    @property
    def setting_names(self) -> tuple[str, ...]:
        """Every setting's name (the settings class's fields)."""
        return tuple(f.name for f in dataclasses.fields(self.settings_cls))

    def settings(self, data: Mapping[str, Any] | Any = None) -> Any:
        """Typed settings from a mapping (or a settings object, returned as is)."""
        if isinstance(data, self.settings_cls):
            return data
        return from_mapping(self.settings_cls, dict(data or {}), f"{self.name!r} strategy")

    def build(self, settings: Any, context: StrategyContext) -> StrategyBuild:
        return self.builder(self.settings(settings), context)


_REGISTRY: dict[str, RegisteredStrategy] = {}


def register_strategy(
    name: str,
    settings_cls: type,
    builder: Callable[[Any, StrategyContext], StrategyBuild],
    *,
    extras: Callable[..., tuple[list[Any], Any]] | None = None,
    description: str = "",
    resolve: Callable[[Any, Any], Any] | None = None,
    kind: str = "",
    data_settings: tuple[str, ...] = (),
    scores: Mapping[str, Callable[[Any, Any], Callable[[Any, Any], Any]]] | None = None,
) -> RegisteredStrategy:
    """Register a reset strategy under ``name`` (a later registration of the name replaces it).

    Raises:
        TypeError: ``settings_cls`` is not a dataclass.
    """
    if not (dataclasses.is_dataclass(settings_cls) and isinstance(settings_cls, type)):
        raise TypeError(f"settings_cls must be a dataclass, got {settings_cls!r}")
    names = {f.name for f in dataclasses.fields(settings_cls)}
    unknown = sorted(set(data_settings) - names)
    if unknown:
        raise ValueError(f"data_settings {unknown} are not settings of {settings_cls.__name__}")
    entry = RegisteredStrategy(
        name, settings_cls, builder, extras, description, resolve, kind,
        tuple(data_settings), dict(scores or {}),
    )  # fmt: skip
    _REGISTRY[name] = entry
    return entry


def registered_strategies() -> list[str]:
    """Every strategy name: the built-in ones and those registered at run time."""
    return sorted(set(BUILTIN_STRATEGIES) | set(_REGISTRY))


def strategy(name: str) -> RegisteredStrategy:
    """The registry entry of ``name``, importing its module on first use.

    Raises:
        UnknownStrategyError: an unknown name (close matches named).
    """
    if name not in _REGISTRY and name in BUILTIN_STRATEGIES:
        importlib.import_module(BUILTIN_STRATEGIES[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        err = unknown_name(name, registered_strategies(), "reset strategy")
        raise UnknownStrategyError(str(err)) from None


def settings_dict(settings: Any) -> dict[str, Any]:
    """JSON-ready settings (for a run's ``config.json``)."""
    return to_plain(settings)


# -- the default: make(env_id) and the environment's own resets ----------------------------------


@dataclasses.dataclass(frozen=True)
class DefaultSettings:
    """The default reset strategy has no settings: ``reset_env`` with the copy's params."""


def _build_default(settings: DefaultSettings, context: StrategyContext) -> StrategyBuild:
    from accelrl.envs.registry import make

    env, params = make(context.env_id, **dict(context.env_kwargs))
    return StrategyBuild(env, params, None, settings)


register_strategy(
    "default",
    DefaultSettings,
    _build_default,
    description="the environment's own reset (reset_env with the copy's params)",
)


__all__ = [
    "DefaultSettings",
    "RegisteredStrategy",
    "StrategyBuild",
    "StrategyContext",
    "UnknownStrategyError",
    "register_strategy",
    "registered_strategies",
    "settings_dict",
    "strategy",
]
