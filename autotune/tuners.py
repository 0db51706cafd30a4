"""Tuners as registered, typed components, and the study spec every tuner takes.

A tuner is a settings dataclass (its own knobs: trials, a sampler seed, PBT's intervals, ...)
and a function ``run(settings, spec, out) -> SearchResult`` registered under a method name
(:func:`register_tuner`); it takes nothing else. What is tuned, on which seeds and how it is
scored is the :class:`StudySpec`, the same for every tuner: the run every trial trains (a
:class:`~accelrl.agents.spec.RunSpec`) with the study's seeds and score. A study folder's
``search.json`` is the run spec and the settings together (``method``, ``run``, the space,
the study's seeds and score, the settings' fields),
so ``accelrl-tune --resume DIR`` rebuilds both from it, whatever the method. Adding a tuner is
one module: its settings class, its run function and a ``register_tuner`` call (built-in
names are imported on first lookup, as environments and agents are).

>>> from accelrl.agents.spec import RunSpec, StrategySpec
>>> from accelrl.autotune import PBTSettings, StudySpec, pbt
>>> run = RunSpec("Pendulum-v1", "ppo", config={"total_timesteps": 200_000},
...               reset_strategy=StrategySpec("alp_gmm", {"task_space": "pendulum_dynamics"}))
>>> spec = StudySpec(run)
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

    ``run`` is the run every trial trains (a :class:`~accelrl.agents.spec.RunSpec`, the same
    description ``accelrl-train`` runs and a run folder's ``config.json`` holds): the
    environment and its ``make`` kwargs, the agent, the config and hparams fields every
    configuration shares (``config["total_timesteps"]`` is the budget: environment steps per
    configuration and seed), the reset strategy with its fixed settings and a teacher run's
    measurements. The space searches fields of it: agent config and hparams, the strategy's
    settings (``teacher.random_task_ratio``), ``env.<make kwarg>`` and ``env_params.<field>``
    (:class:`~accelrl.autotune.backend.RunnerBackend`). Its seeds and host-loop options are not
    the study's: trials train on ``tuning_seeds``, the final step on ``test_seeds``.
    """

    run: Any
    """The run every trial trains: a :class:`~accelrl.agents.spec.RunSpec` or its
    ``to_dict()`` mapping (no ``grid``: the tuner chooses the hparams)."""
    space: Any = None
    """The search space (:class:`~accelrl.autotune.spaces.SearchSpace`; None: the agent's
    default space without the fields the run fixes)."""
    tuning_seeds: tuple[int, ...] = DEFAULT_TUNING_SEEDS
    """Seeds configurations are scored on (the validation set)."""
    test_seeds: tuple[int, ...] = DEFAULT_TEST_SEEDS
    """Seeds the incumbent and the default are trained and scored on once, at the end."""
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
    """What trains groups (None: a :class:`~accelrl.autotune.backend.RunnerBackend` of
    ``run``; tests pass synthetic objectives). Not recorded."""
    log: Callable[[str], None] | None = dataclasses.field(default=None, compare=False)
    """Called with progress lines (default: silent). Not recorded."""

    def __post_init__(self):
        from accelrl.agents.spec import RunSpec
        from accelrl.autotune.protocol import check_seeds

        run = self.run
        if isinstance(run, Mapping):
            run = RunSpec.from_dict(run, where="study run")
        if not isinstance(run, RunSpec):
            raise TypeError(f"run must be a RunSpec or its mapping, got {type(run).__name__}")
        if run.grid:
            raise ValueError(
                "a study's run has no hparams grid (the tuner chooses the hparams); give the "
                "grid's dimensions to the search space instead"
            )
        object.__setattr__(self, "run", run)
        tuning, test = check_seeds(self.tuning_seeds, self.test_seeds)
        object.__setattr__(self, "tuning_seeds", tuple(tuning))
        object.__setattr__(self, "test_seeds", tuple(test))
        if self.budget is not None and int(self.budget) < 1:
            raise ValueError(f"the budget (total_timesteps) must be >= 1, got {self.budget}")
        if self.bootstrap_reps < 1:
            raise ValueError(f"bootstrap_reps must be >= 1, got {self.bootstrap_reps}")

    # -- the run's fields, read through ----------------------------------------------------

    @property
    def env(self) -> str:
        """The environment id."""
        return self.run.env

    @property
    def agent(self) -> str:
        """The registered agent name."""
        return self.run.agent

    @property
    def budget(self) -> int | None:
        """Environment steps per configuration and seed of a full run (the run's
        ``total_timesteps``; None: the agent's default for the environment)."""
        value = self.run.config.get("total_timesteps")
        return None if value is None else int(value)

    @property
    def fixed(self) -> dict[str, Any]:
        """The agent fields every configuration shares (config and hparams, by name; the
        budget is not one of them)."""
        out = {**self.run.config, **self.run.hparams}
        out.pop("total_timesteps", None)
        return out

    def replace(self, **changes: Any) -> StudySpec:
        return dataclasses.replace(self, **changes)

    def make_backend(self) -> Any:
        """The backend that trains this study's groups (``backend`` when given)."""
        if self.backend is not None:
            return self.backend
        from accelrl.autotune.backend import RunnerBackend

        return RunnerBackend(
            self.run, score=self.score, score_updates=self.score_updates,
            eval_episodes=self.eval_episodes, max_members=self.max_members,
            progress=self.progress,
        )  # fmt: skip

    def recorded(self, budget: int | None = None) -> dict[str, Any]:
        """What ``search.json`` records of the spec: ``run`` (the run spec's fields that say
        what is trained, with the resolved ``budget`` as ``config.total_timesteps``) and the
        study's own fields; ``space`` is written as ConfigSpace JSON by the study folder."""
        run = recorded_run(self.run)
        if budget is not None:
            run["config"]["total_timesteps"] = int(budget)
        return {
            "run": run,
            "tuning_seeds": list(self.tuning_seeds),
            "test_seeds": list(self.test_seeds),
            "score": self.score,
            "score_updates": self.score_updates,
            "eval_episodes": self.eval_episodes,
            "bootstrap_reps": int(self.bootstrap_reps),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], space: Any, **unrecorded: Any) -> StudySpec:
        """The spec a ``search.json`` records (``space`` read from its ConfigSpace JSON; a
        record written before the study held a run spec is read too: :func:`upgrade_record`)."""
        record = upgrade_record(record)
        keys = {f.name for f in dataclasses.fields(cls)} - {"space", "progress", "backend", "log"}
        kw = {k: record[k] for k in keys if k in record and record[k] is not None}
        for k in ("tuning_seeds", "test_seeds"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(space=space, **kw, **unrecorded)


RUN_NOT_RECORDED = ("seeds", "grid", "run", "recorded")
"""Run spec fields a study does not record: its seeds are the study's tuning and test seeds,
there is no grid, and the host-loop options and recorded facts are not what is trained."""


def recorded_run(run: Any) -> dict[str, Any]:
    """What ``search.json`` holds of a run spec: its JSON form without
    :data:`RUN_NOT_RECORDED`, config and hparams values JSON-ready."""
    from accelrl.autotune.spaces import values_to_json

    out = run.to_dict()
    for key in RUN_NOT_RECORDED:
        out.pop(key, None)
    out["config"] = values_to_json(dict(out["config"]))
    out["hparams"] = values_to_json(dict(out["hparams"]))
    return out


_OLD_RUN_KEYS = ("env", "agent", "budget", "overrides", "env_kwargs", "reset_strategy",
                 "curriculum")  # fmt: skip


def upgrade_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``search.json`` in today's layout: one written before the study held a run spec
    (``env``, ``agent``, ``budget``, ``overrides``, ``env_kwargs``, ``reset_strategy``,
    ``curriculum`` at the top) gets them as its ``run``, the overrides sorted into config
    and hparams fields by the agent's classes; a plain run's ``score`` (``"return"``) is
    filled in. Today's records are returned as they are (a copy).

    Raises:
        ValueError: an old record naming an unknown agent field.
    """
    record = dict(record)
    if "run" not in record and "env" in record and "agent" in record:
        from accelrl.agents.build import make_spec
        from accelrl.agents.spec import StrategySpec

        old = {k: record.pop(k) for k in _OLD_RUN_KEYS if k in record}
        overrides = dict(old.get("overrides") or {})
        if old.get("budget") is not None:
            overrides["total_timesteps"] = int(old["budget"])
        strategy = old.get("reset_strategy") or {"name": "default"}
        spec = make_spec(
            old["env"], old["agent"], overrides, env_kwargs=dict(old.get("env_kwargs") or {}),
            reset_strategy=StrategySpec(strategy["name"], dict(strategy.get("settings") or {})),
            curriculum=old.get("curriculum"),
        )  # fmt: skip
        record["run"] = recorded_run(spec)
        record.setdefault("score", "return")
        keys = ["method", "run", *(k for k in record if k not in ("method", "run"))]
        record = {k: record[k] for k in keys if k in record}
    return record


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
    "upgrade_record",
]
