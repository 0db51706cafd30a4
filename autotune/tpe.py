"""A model-based tuner: Optuna's TPE sampler over accelrl runs, with a study that survives
crashes and can be shared by several processes.

* **Sampler.** ``optuna.samplers.TPESampler(seed=, multivariate=True, constant_liar=True)``:
  ``batch`` configurations are asked at once (the constant liar keeps them apart while they
  train), grouped by config values and trained as vmapped programs like random search's, then
  told. Configurations whose config values the agent's ``config.validate()`` refuses are told
  as failed and asked again (they are not trials of the study's count).
* **Storage** in the run folder: ``storage="sqlite"`` (``study.db``, one process) or
  ``storage="journal"`` (``study.journal``: Optuna's journal file, which several processes on
  one machine may share; Optuna advises against SQLite for parallel workers).
* **Counting and resume.** ``trials`` counts *finished* trials across calls and processes:
  the rows of ``trials.jsonl``. A trial's row is written (one atomic append) *before* it is
  told to the study, so a kill between the two leaves a row and a RUNNING trial; on the next
  call such trials are told their row's score, and RUNNING trials without a row whose process
  (``pid`` and ``host`` user attributes) is gone are told FAIL. Rows are deduplicated by
  ``trial_id`` (Optuna's trial number). Optuna's ``optimize(n_trials=)`` counts per call;
  this loop counts rows instead. The sampler of a resumed call is seeded with ``seed`` plus the
  number of trials in the study, so it does not replay the first call's random startup draws;
  ``seed``, ``trials`` and ``batch`` may differ between calls and processes (give processes
  that start together different seeds).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accelrl.autotune.random_search import score_text
from accelrl.autotune.spaces import (
    Categorical,
    Float,
    Int,
    SearchSpace,
    config_problem,
    values_to_json,
)
from accelrl.autotune.study import (
    SearchResult,
    Trial,
    best_row,
    group_trials,
    open_study,
    read_rows,
    trial_row,
)
from accelrl.autotune.tuners import StudySpec, register_tuner

STORAGES = ("sqlite", "journal")
STUDY_NAME = "accelrl"


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the TPE tuner needs Optuna: pip install 'accelrl[optuna]' (or 'optuna>=4.0')"
        ) from None
    return optuna


def storage_for(out: Path, storage: str) -> Any:
    """The Optuna storage of a run folder: SQLite ``study.db`` or journal ``study.journal``."""
    _optuna()
    if storage == "sqlite":
        return f"sqlite:///{(out / 'study.db').resolve()}"
    if storage == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str((out / "study.journal").resolve())))
    raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")


def _choice_label(c: Any) -> Any:
    """An Optuna-storable categorical choice (tuples become ``"64,64"``)."""
    return ",".join(str(x) for x in c) if isinstance(c, tuple) else c


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """``{name: value}`` drawn through an Optuna trial's ``suggest_*`` for every dimension."""
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, Float):
            out[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Int):
            out[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Categorical):
            labels = [_choice_label(c) for c in dim.choices]
            out[name] = dim.choices[labels.index(trial.suggest_categorical(name, labels))]
        else:  # pragma: no cover - every dimension kind is handled above
            raise TypeError(f"unknown dimension {dim!r}")
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tell(study: Any, trial: Any, value: float | None = None) -> None:
    """Tell ``trial`` its ``value`` (FAIL when None), unless another process told it first
    (a settler reading its row, or its owner): both tell the same row, so that is no error."""
    optuna = _optuna()
    state = optuna.trial.TrialState.FAIL if value is None else None
    values = None if value is None else float(value)
    try:
        study.tell(trial, values, state=state, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:  # told between the check and the write
        pass


def settle_interrupted(study: Any, rows: Mapping[int, Mapping[str, Any]]) -> tuple[int, int]:
    """Tell the study what a killed call left RUNNING: trials with a row get its score (or
    FAIL), those without one whose process is gone on this host get FAIL. A trial whose
    process is alive on this host is left to it (another worker on the same journal, mid
    trial). Returns ``(told from rows, failed)``."""
    optuna = _optuna()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    host = socket.gethostname()
    told = failed = 0
    for t in running:
        here = t.user_attrs.get("host") == host
        if here and _alive(int(t.user_attrs.get("pid", -1))):
            continue
        row = rows.get(t.number)
        if row is not None:
            _tell(study, t.number, row.get("score"))
            told += 1
        elif here:
            _tell(study, t.number, None)
            failed += 1
    return told, failed


@dataclasses.dataclass(frozen=True)
class TPESettings:
    """TPE's settings (``search.json`` records them beside the study spec)."""

    trials: int = 32
    """Finished trials to reach (counted across calls and processes; a resume may raise it)."""
    batch: int = 4
    """Configurations asked and trained together per round."""
    storage: str = "sqlite"
    """``"sqlite"`` or ``"journal"`` (several processes)."""
    n_startup_trials: int = 8
    """Random trials before TPE's model is used."""
    seed: int = 0
    """Seed of the sampler (offset by the trials already in the study on a resume)."""
    max_rejections: int = 1000
    """Invalid configurations in a row before giving up."""

    def __post_init__(self):
        if self.trials < 1 or self.batch < 1:
            raise ValueError(f"trials and batch must be >= 1, got {self.trials} and {self.batch}")
        if self.storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {self.storage!r}")


def tpe(settings: TPESettings, spec: StudySpec, out: str | Path) -> SearchResult:
    """TPE over ``spec.space``; see the module docstring."""
    optuna = _optuna()
    trials, batch, storage = settings.trials, settings.batch, settings.storage
    max_rejections = settings.max_rejections
    study = open_study("tpe", settings, spec, out, shared=storage == "journal")
    log = study.log
    backend, space = study.backend, study.space
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ostudy = optuna.create_study(
            study_name=STUDY_NAME,
            storage=storage_for(study.out, storage),
            direction="maximize",
            load_if_exists=True,
        )
        told, failed = settle_interrupted(ostudy, read_rows(study.trials_path))
        if told or failed:
            log(f"resumed: {told} interrupted trials told from their rows, {failed} failed")
        ostudy.sampler = optuna.samplers.TPESampler(
            seed=int(settings.seed) + len(ostudy.trials),
            multivariate=True,
            constant_liar=True,
            n_startup_trials=settings.n_startup_trials,
        )

    me = {"pid": os.getpid(), "host": socket.gethostname()}
    while True:
        rows = read_rows(study.trials_path)  # other processes may have added rows
        left = trials - len(rows)
        if left <= 0:
            break
        asked: list[tuple[Any, dict[str, Any]]] = []
        rejections = 0
        while len(asked) < min(batch, left):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                trial = ostudy.ask()
            for k, v in me.items():
                trial.set_user_attr(k, v)
            values = suggest(trial, space)
            reason = config_problem(backend.base_config, {k: values[k] for k in study.config_names})
            if reason:
                ostudy.tell(trial, state=optuna.trial.TrialState.FAIL)
                rejections += 1
                if rejections >= max_rejections:
                    raise ValueError(
                        f"no valid configuration in {max_rejections} asks; the last was "
                        f"rejected by {type(backend.base_config).__name__}.validate(): {reason}"
                    )
                continue
            asked.append((trial, values))
        t0 = time.perf_counter()
        by_number = {t.number: (t, v) for t, v in asked}
        for config_values, members in group_trials(
            [Trial(t.number, v) for t, v in asked], study.config_names
        ):
            outcome = backend.train(
                config_values,
                [{n: m.values[n] for n in study.hparams_names} for m in members],
                study.tuning_seeds,
            )
            for m, sc, err in zip(members, outcome.seed_scores, outcome.errors, strict=True):
                row = trial_row(
                    m.trial_id, m.values, study.tuning_seeds, sc, err, outcome.env_steps,
                    group=values_to_json(config_values), group_size=len(members),
                )  # fmt: skip
                study.record(row)  # the row first: a kill before tell is settled on resume
                # a worker on another host may have settled it from the row already
                _tell(ostudy, by_number[m.trial_id][0], row["score"])
        best = best_row(list(read_rows(study.trials_path).values()))
        log(
            f"tpe: {len(asked)} trials in {time.perf_counter() - t0:.1f} s; "
            f"{len(read_rows(study.trials_path))}/{trials} finished, best score "
            f"{best['score'] if best else None}"
        )

    rows = study.rows()
    return study.conclude(
        rows, rows, score_text(spec.score_updates),
        extra={"tpe": {"batch": batch, "storage": storage,
                       "n_startup_trials": settings.n_startup_trials}},
    )  # fmt: skip


register_tuner("tpe", TPESettings, tpe, title="TPE (Optuna)",
               growable=("trials", "batch", "seed"))  # fmt: skip


__all__ = ["STORAGES", "TPESettings", "settle_interrupted", "storage_for", "suggest", "tpe"]
