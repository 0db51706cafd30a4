"""Tuners as registered, typed components, and the study spec every tuner takes.

A tuner is a settings dataclass (its own knobs: trials, a sampler seed, PBT's intervals, ...)
and a function ``run(settings, spec, out) -> SearchResult`` registered under a method name
(:func:`register_tuner`); it takes nothing else. What is tuned, on which seeds and how it is
scored is the :class:`StudySpec`, the same for every tuner. A study folder's ``search.json`` is
the spec and the settings together, flat (``method``, the spec's fields, the settings' fields),
so ``accelrl-tune --resume DIR`` rebuilds both from it, whatever the method. Adding a tuner is
one module: its settings class, its run function and a ``register_tuner`` call (built-in
names are imported on first lookup, as environments and agents are).

>>> from accelrl.autotune import PBTSettings, StudySpec, pbt
>>> spec = StudySpec("Pendulum-v1", "ppo", budget=200_000,
...                  reset_strategy=StrategySpec("alp_gmm", {"task_space": "pendulum_dynamics"}))
>>> result = pbt(PBTSettings(population=8), spec, "runs/pbt_alp")
>>> tuner("pbt").run(tuner("pbt").settings({"population": 8}), spec, "runs/pbt_alp")
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from accelrl._typed import from_mapping, unknown_name
from accelrl.autotune.protocol import DEFAULT_TEST_SEEDS, DEFAULT_TUNING_SEEDS

BUILTIN_TUNERS = {
    "random": "accelrl.autotune.random_search",
    "hyperband": "accelrl.autotune.hyperband",
    "pbt": "accelrl.autotune.pbt",
    "tpe": "accelrl.autotune.tpe",
    "ray_asha": "accelrl.autotune.ray_tune",
    "ray_pbt": "accelrl.autotune.ray_tune",
}
"""Built-in method names and the modules that register them."""


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """What a study tunes, on which seeds, and how trials are scored (every tuner's input
    besides its own settings and the study folder).

    The run is an environment, an agent and what every configuration shares: fixed agent
    fields (``overrides``), ``make`` kwargs, the reset strategy with its fixed settings and a
    teacher run's measurements; the space may search agent fields and the strategy's settings
    (``teacher.random_task_ratio``: :class:`~accelrl.autotune.backend.RunnerBackend`).
    """

    env: str
    """Environment id."""
    agent: str
    """Registered agent name."""
    space: Any = None
    """The search space (:class:`~accelrl.autotune.spaces.SearchSpace`; None: the agent's
    default space without the fields ``overrides`` fixes)."""
    budget: int | None = None
    """Environment steps per configuration and seed of a full run (None: the agent's default)."""
    tuning_seeds: tuple[int, ...] = DEFAULT_TUNING_SEEDS
    """Seeds configurations are scored on (the validation set)."""
    test_seeds: tuple[int, ...] = DEFAULT_TEST_SEEDS
    """Seeds the incumbent and the default are trained and scored on once, at the end."""
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Agent config and hparams fields fixed for every configuration."""
    env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """``make`` keyword arguments."""
    reset_strategy: Any = None
    """The run's reset strategy: a :class:`~accelrl.agents.spec.StrategySpec` or its
    ``{"name", "settings"}`` mapping (None: the default resets)."""
    curriculum: Mapping[str, Any] | None = None
    """A teacher run's measurements (the fixed test set ``score="mastered"`` uses)."""
    score: str = "return"
    """``"return"`` or a score the reset strategy offers (a teacher's ``"mastered"``)."""
    score_updates: int | None = None
    """Updates averaged into a return score (default: the last 10%)."""
    eval_episodes: int | None = None
    """Evaluation episodes per test seed (default: the config's)."""
    max_members: int | None = None
    """Most members (configurations x seeds) per program (PBT: the whole population)."""
    bootstrap_reps: int = 50_000
    """Bootstrap replicates of the report's intervals."""
    progress: bool = dataclasses.field(default=False, compare=False)
    """Show the runner's progress bars (not recorded)."""
    backend: Any = dataclasses.field(default=None, compare=False)
    """What trains groups (None: a :class:`~accelrl.autotune.backend.RunnerBackend` from the
    fields above; tests pass synthetic objectives). Not recorded."""
    log: Callable[[str], None] | None = dataclasses.field(default=None, compare=False)
    """Called with progress lines (default: silent). Not recorded."""

    def __post_init__(self):
        from accelrl.autotune.protocol import check_seeds

        tuning, test = check_seeds(self.tuning_seeds, self.test_seeds)
        object.__setattr__(self, "tuning_seeds", tuple(tuning))
        object.__setattr__(self, "test_seeds", tuple(test))
        object.__setattr__(
            self, "overrides", {k.replace("-", "_"): v for k, v in dict(self.overrides).items()}
        )
        object.__setattr__(self, "env_kwargs", dict(self.env_kwargs))
        strategy = self.reset_strategy
        if strategy is not None and not isinstance(strategy, Mapping):  # a StrategySpec
            strategy = {"name": strategy.name, "settings": dict(strategy.settings)}
        if strategy is not None:
            strategy = {"name": strategy["name"], "settings": dict(strategy.get("settings") or {})}
        object.__setattr__(self, "reset_strategy", strategy)
        if self.budget is not None:
            object.__setattr__(self, "budget", int(self.budget))
        if self.bootstrap_reps < 1:
            raise ValueError(f"bootstrap_reps must be >= 1, got {self.bootstrap_reps}")

    def replace(self, **changes: Any) -> StudySpec:
        return dataclasses.replace(self, **changes)

    def make_backend(self) -> Any:
        """The backend that trains this study's groups (``backend`` when given)."""
        if self.backend is not None:
            return self.backend
        from accelrl.agents.spec import StrategySpec
        from accelrl.autotune.backend import RunnerBackend

        strategy = self.reset_strategy
        return RunnerBackend(
            self.env, self.agent, self.budget, self.overrides, self.env_kwargs,
            reset_strategy=None if strategy is None else StrategySpec(**dict(strategy)),
            curriculum=self.curriculum, score=self.score, score_updates=self.score_updates,
            eval_episodes=self.eval_episodes, max_members=self.max_members,
            progress=self.progress,
        )  # fmt: skip

    def recorded(self) -> dict[str, Any]:
        """The fields ``search.json`` records (everything but ``space``, which is written as
        ConfigSpace JSON, and the unrecorded ones); a plain run's strategy, curriculum and
        score are left out, so studies started before they existed still resume."""
        from accelrl.autotune.spaces import values_to_json

        out = {
            "env": self.env,
            "agent": self.agent,
            "budget": self.budget,
            "tuning_seeds": list(self.tuning_seeds),
            "test_seeds": list(self.test_seeds),
            "overrides": values_to_json(dict(self.overrides)),
            "env_kwargs": dict(self.env_kwargs),
            "score_updates": self.score_updates,
            "eval_episodes": self.eval_episodes,
            "bootstrap_reps": int(self.bootstrap_reps),
        }
        if self.reset_strategy is not None and dict(self.reset_strategy).get("name") != "default":
            out["reset_strategy"] = {
                "name": self.reset_strategy["name"],
                "settings": values_to_json(dict(self.reset_strategy.get("settings") or {})),
            }
        if self.curriculum is not None:
            out["curriculum"] = values_to_json(dict(self.curriculum))
        if self.score != "return":
            out["score"] = self.score
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, Any], space: Any, **unrecorded: Any) -> StudySpec:
        """The spec a ``search.json`` records (``space`` read from its ConfigSpace JSON)."""
        keys = {f.name for f in dataclasses.fields(cls)} - {"space", "progress", "backend", "log"}
        kw = {k: record[k] for k in keys if k in record and record[k] is not None}
        kw["env"], kw["agent"] = record["env"], record["agent"]
        for k in ("tuning_seeds", "test_seeds"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(space=space, **kw, **unrecorded)


@dataclasses.dataclass(frozen=True)
class RegisteredTuner:
    """A registry entry: ``run(settings, spec, out) -> SearchResult``.

    Attributes:
        name: the method name (``search.json``'s ``method``; ``accelrl-tune --method``).
        settings_cls: a frozen dataclass of the tuner's settings.
        run: the tuner.
        title: the report's title.
        growable: settings a resumed study may change (random search's ``trials``).
        recorded_as: settings recorded under another key in ``search.json`` (PBT's
            ``population`` as ``trials``, the count ``accelrl-tune --trials`` gives).
    """

    name: str
    settings_cls: type
    run: Callable[[Any, StudySpec, str | Path], Any]
    title: str = ""
    growable: tuple[str, ...] = ()
    recorded_as: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def settings(self, data: Mapping[str, Any] | Any = None) -> Any:
        """Typed settings from a mapping (unknown names refused with close matches), or a
        settings object returned as it is."""
        if isinstance(data, self.settings_cls):
            return data
        return from_mapping(self.settings_cls, dict(data or {}), f"{self.name!r} tuner")

    def recorded(self, settings: Any) -> dict[str, Any]:
        """The settings as ``search.json`` holds them."""
        return {
            self.recorded_as.get(f.name, f.name): getattr(settings, f.name)
            for f in dataclasses.fields(settings)
        }

    def from_record(self, record: Mapping[str, Any]) -> Any:
        """The settings a ``search.json`` records (absent ones take their defaults)."""
        back = {v: k for k, v in self.recorded_as.items()}
        names = {f.name for f in dataclasses.fields(self.settings_cls)}
        kw = {back.get(k, k): v for k, v in record.items() if back.get(k, k) in names}
        for f in dataclasses.fields(self.settings_cls):  # JSON lists back to tuples
            if isinstance(kw.get(f.name), list):
                kw[f.name] = tuple(kw[f.name])
        return self.settings_cls(**kw)


_REGISTRY: dict[str, RegisteredTuner] = {}


def register_tuner(
    name: str,
    settings_cls: type,
    run: Callable[[Any, StudySpec, str | Path], Any],
    *,
    title: str = "",
    growable: tuple[str, ...] = (),
    recorded_as: Mapping[str, str] | None = None,
) -> RegisteredTuner:
    """Register a tuner under ``name`` (a later registration of the name replaces it).

    Raises:
        TypeError: ``settings_cls`` is not a dataclass.
    """
    if not (dataclasses.is_dataclass(settings_cls) and isinstance(settings_cls, type)):
        raise TypeError(f"settings_cls must be a dataclass, got {settings_cls!r}")
    entry = RegisteredTuner(name, settings_cls, run, title or name, tuple(growable),
                            dict(recorded_as or {}))  # fmt: skip
    _REGISTRY[name] = entry
    return entry


def registered_tuners() -> list[str]:
    """Every method name: the built-in ones and those registered at run time."""
    return sorted(set(BUILTIN_TUNERS) | set(_REGISTRY))


def tuner(name: str) -> RegisteredTuner:
    """The registry entry of ``name``, importing its module on first use.

    Raises:
        ValueError: an unknown name (close matches named).
    """
    if name not in _REGISTRY and name in BUILTIN_TUNERS:
        importlib.import_module(BUILTIN_TUNERS[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name(name, registered_tuners(), "tuning method") from None


__all__ = [
    "BUILTIN_TUNERS",
    "RegisteredTuner",
    "StudySpec",
    "register_tuner",
    "registered_tuners",
    "tuner",
]
