"""A study folder: ``search.json`` (the settings; a second call on the folder with the same
settings resumes it), ``trials.jsonl`` (one line per finished trial, appended with one ``write``
and an ``fsync``, deduplicated by ``trial_id`` when read), ``incumbent.json``, ``report.md`` and
plots (:mod:`accelrl.autotune.report`); :func:`open_study`, every tuner's first step, checks the
seeds and the space, makes the backend and takes the folder (one writer at a time).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelrl.autotune.backend import (
    Backend,
    finite_or_none,
    trial_score,
)
from accelrl.autotune.spaces import SearchSpace, values_to_json

TRIALS_FILE = "trials.jsonl"
INCUMBENT_FILE = "incumbent.json"
SEARCH_FILE = "search.json"
REPORT_FILE = "report.md"

# ----------------------------------------------------------------------------------------------
# The run folder


def append_row(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one JSON line to ``path`` durably: a single ``O_APPEND`` write of the whole line,
    then ``fsync`` (a kill leaves the file without the line or with all of it, except a torn
    last line on a crash mid-write, which :func:`read_rows` skips)."""
    data = (json.dumps(dict(row), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: str | Path) -> dict[int, dict[str, Any]]:
    """``trial_id -> row`` of a ``trials.jsonl`` (first row per id kept; an unparsable last
    line, a write torn by a crash, is skipped with a warning).

    Raises:
        ValueError: an unparsable line that is not the last one (a damaged file).
    """
    path = Path(path)
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    rows: dict[int, dict[str, Any]] = {}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            tid = int(row["trial_id"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if i == len(lines) - 1:
                warnings.warn(f"{path}: skipping a torn last line", stacklevel=2)
                continue
            raise ValueError(f"{path}: line {i + 1} is not a trial row: {line[:80]!r}") from None
        rows.setdefault(tid, row)
    return rows


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False))
    tmp.replace(path)


@dataclasses.dataclass
class SearchResult:
    """What :func:`random_search` returns (also in ``out``)."""

    out: Path
    """The run folder."""
    rows: list[dict[str, Any]]
    """Every finished trial's row, by ``trial_id``."""
    incumbent: dict[str, Any]
    """The ``incumbent.json`` content."""


RECORDED_LATER: dict[str, Any] = {"bootstrap_reps": ..., "burn_in": 0, "max_rejections": 1000}
"""Settings that ``search.json`` records since a later version, with the value an older study
that lacks them ran with (``...``: any value: it changes the report, not the trials)."""


def check_resume(
    out: Path, settings: dict[str, Any], growable: Sequence[str] = ("trials",)
) -> None:
    """Write ``search.json``, or check that the one in ``out`` holds the same settings (the
    ``growable`` keys may change between calls; an older layout is read in today's, and
    rewritten so, when the settings match).

    Raises:
        ValueError: ``out`` holds a search with other settings.
    """
    path = out / SEARCH_FILE
    if not path.exists():
        write_json(path, settings)
        return
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is damaged (not valid JSON: {e})") from None
    if not isinstance(old, dict):
        raise ValueError(f"{path} is damaged (not a JSON object)")
    from accelrl.autotune.tuners import upgrade_record

    old = upgrade_record(old)  # a study started before search.json held a run spec
    changed = sorted(
        k
        for k in set(old) | set(settings)
        if k not in growable
        and old.get(k) != settings.get(k)
        and not (  # a study started before it was kept
            k in RECORDED_LATER and k not in old and RECORDED_LATER[k] in (..., settings.get(k))
        )
    )
    if changed:
        raise ValueError(
            f"{out} holds a search with other settings ({', '.join(changed)} differ); use a new "
            "folder, or the same settings to resume it"
        )
    write_json(path, settings)


def values_from_json(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`~accelrl.autotune.spaces.values_to_json` for ``space``'s dimensions
    (lists back to the tuple choices they were; other keys, such as the reset strategy's
    settings a row records without searching them, are left out)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in space}


def searched_config(row: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
    """A row's ``config`` restricted to the space's dimensions (rows also list the reset
    strategy's settings a trial ran with, searched or not)."""
    return {k: v for k, v in (row.get("config") or {}).items() if k in space}


def best_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The scored row with the highest score (ties: the lower ``trial_id``), or None."""
    scored = [r for r in rows if r.get("score") is not None]
    if not scored:
        return None
    return max(scored, key=lambda r: (r["score"], -r["trial_id"]))


def search_settings(
    method: str, run: Mapping[str, Any], space: SearchSpace, **kw: Any
) -> dict[str, Any]:
    """The ``search.json`` content, what a resume must match: the method, the run spec every
    trial trains (``StudySpec.recorded``'s ``run``), the space as ConfigSpace JSON, then the
    study's seeds and score and the tuner's settings (``kw``)."""
    return {
        "method": method,
        "run": dict(run),
        "space": json.loads(space.to_configspace_json()),
        **kw,
    }


# ----------------------------------------------------------------------------------------------
# Setting up a study (every tuner's first step)


@dataclasses.dataclass
class Study:
    """A tuner's view of its study folder and backend (:func:`open_study`)."""

    out: Path
    method: str
    """The method name ``search.json`` records."""
    spec: Any
    """The :class:`~accelrl.autotune.tuners.StudySpec`."""
    space: SearchSpace
    backend: Backend
    budget: int | None
    """Environment steps per configuration and seed of a full run (None: unknown to a
    synthetic backend)."""
    config_names: tuple[str, ...]
    hparams_names: tuple[str, ...]
    done: dict[int, dict[str, Any]]
    """Finished trials' rows already in ``trials.jsonl`` (by ``trial_id``)."""

    @property
    def trials_path(self) -> Path:
        return self.out / TRIALS_FILE

    @property
    def tuning_seeds(self) -> tuple[int, ...]:
        return self.spec.tuning_seeds

    @property
    def test_seeds(self) -> tuple[int, ...]:
        return self.spec.test_seeds

    @property
    def agent(self) -> str:
        return self.spec.agent

    def log(self, line: str) -> None:
        """A progress line (to the spec's ``log``; silent without one)."""
        if self.spec.log is not None:
            self.spec.log(line)

    def record(self, row: Mapping[str, Any]) -> None:
        """Append a finished trial's row (once per ``trial_id``)."""
        if row["trial_id"] in self.done:
            return
        full = getattr(self.backend, "full_settings", None)
        if full is not None:  # every strategy setting the trial ran with, searched or not
            row = {**row, "config": {**values_to_json(full(row["config"])), **row["config"]}}
        append_row(self.trials_path, row)
        self.done[int(row["trial_id"])] = dict(row)

    def rows(self) -> list[dict[str, Any]]:
        """Every finished trial's row, in the order they were written."""
        return list(read_rows(self.trials_path).values())

    def conclude(
        self,
        rows: Sequence[Mapping[str, Any]],
        candidates: Sequence[Mapping[str, Any]],
        score: str,
        *,
        method: str | None = None,
        extra: Mapping[str, Any] | None = None,
        space: SearchSpace | None = None,
    ) -> SearchResult:
        """The best of ``candidates`` is the incumbent; :func:`~accelrl.autotune.report.finish`
        tests and reports it (``method``: the report's, default the study's).

        Raises:
            RuntimeError: no candidate has a score.
        """
        strategy_score = getattr(self.backend, "score", "return")
        if strategy_score != "return":
            score = (
                f"the reset strategy's {strategy_score!r} score of each tuning seed's state at "
                "the end of the trial, mean over the tuning seeds"
            )
        inc = best_row(candidates)
        if inc is None:
            raise RuntimeError(
                f"none of the {len(candidates)} candidate trials produced a score "
                f"(see {self.trials_path})"
            )
        from accelrl.autotune.report import finish

        incumbent = finish(
            self.out,
            method=method or self.method,
            env_id=self.spec.env,
            agent=self.spec.agent,
            space=self.space if space is None else space,
            backend=self.backend,
            rows=rows,
            incumbent_row=inc,
            tuning_seeds=self.tuning_seeds,
            test_seeds=self.test_seeds,
            budget=self.budget,
            score=score,
            bootstrap_reps=self.spec.bootstrap_reps,
            log=self.log,
            extra=extra,
        )
        return SearchResult(self.out, [dict(r) for r in rows], incumbent)


def _only_value(dim: Any, value: Any) -> bool:
    """Whether ``dim`` can take ``value`` and nothing else (a one-choice Categorical)."""
    from accelrl.autotune.spaces import Categorical

    plain = tuple(value) if isinstance(value, list) else value
    return isinstance(dim, Categorical) and set(dim.choices) == {plain}


_HELD_LOCKS: list[Any] = []
"""Study folder locks this process holds (released at exit; ``release_studies`` earlier)."""


def release_studies() -> None:
    """Release every study folder lock this process holds."""
    while _HELD_LOCKS:
        _HELD_LOCKS.pop().__exit__(None, None, None)


atexit.register(release_studies)


def open_study(
    method: str, settings: Any, spec: Any, out: str | Path, *, shared: bool = False
) -> Study:
    """Every tuner's first step: check the space against the run, make the backend, take
    ``out`` (a lock: one writer at a time, unless ``shared``), create or check its
    ``search.json`` (:func:`search_settings`: the run spec, the study's seeds and score and
    the tuner's ``settings``; a folder holding the same search resumes, the tuner's
    ``growable`` settings may change) and read the finished trials.

    Args:
        method: the registered tuner's name (:func:`accelrl.autotune.tuners.tuner`).
        settings: its settings object.
        spec: the :class:`~accelrl.autotune.tuners.StudySpec`.
        shared: several processes work on the study together (TPE on a journal storage,
            which coordinates them), so no folder lock is taken.

    Raises:
        ValueError: an invalid space, a folder holding another search.
        FolderBusyError: another live process holds the study folder.
    """
    from accelrl.autotune.spaces import default_space
    from accelrl.autotune.tuners import tuner

    entry = tuner(method)
    agent, fixed, space = spec.agent, spec.fixed, spec.space
    if space is None:  # the agent's default space searches what the run leaves free
        space = default_space(agent)
        space = space.without(*sorted(set(fixed) & set(space)))
    else:  # a field the run fixes that is searched must be the only value the dimension takes
        clash = sorted(n for n in set(fixed) & set(space) if not _only_value(space[n], fixed[n]))
        if clash:
            raise ValueError(
                f"the run fixes {', '.join(clash)} (--overrides), which the search space also "
                "searches; drop it from one of them"
            )
    if not len(space):
        raise ValueError("the search space is empty: give it at least one dimension")
    backend = spec.make_backend()
    strategy = getattr(backend, "strategy_entry", None)
    env_dims = backend.env_dims() if hasattr(backend, "env_dims") else ()
    space = space.validate(agent, strategy, env_dims)
    budget = spec.budget if spec.budget is not None else getattr(backend, "budget", None)
    budget = None if budget is None else int(budget)
    config_names, hparams_names = space.split(agent, strategy, env_dims)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    if not shared:  # held until the process ends (a dead holder's lock is taken over)
        from accelrl.agents.folders import FolderLock

        _HELD_LOCKS.append(FolderLock(out, "study").__enter__())
    out.mkdir(parents=True, exist_ok=True)
    recorded = {**spec.recorded(budget), **entry.recorded(settings)}
    run = recorded.pop("run")
    check_resume(out, search_settings(method, run, space, **recorded), entry.growable)
    return Study(
        out, method, spec, space, backend, budget, config_names, hparams_names,
        read_rows(out / TRIALS_FILE),
    )  # fmt: skip


def trial_row(
    trial_id: int,
    values: Mapping[str, Any],
    seeds: Sequence[int],
    seed_scores: np.ndarray,
    error: str | None,
    env_steps: int,
    **extra: Any,
) -> dict[str, Any]:
    """A ``trials.jsonl`` row: ``trial_id``, ``config``, ``seeds``, ``score`` (mean over seeds,
    None when a seed has none), ``seed_scores``, ``status`` (``ok``, ``no_score``,
    ``diverged``, or ``extra["status"]``), ``env_steps`` (per seed) and ``extra``."""
    score = trial_score(seed_scores)
    status = "diverged" if error else ("ok" if math.isfinite(score) else "no_score")
    row = {
        "trial_id": int(trial_id),
        "config": values_to_json(values),
        "seeds": [int(s) for s in seeds],
        "score": finite_or_none(score),
        "seed_scores": [finite_or_none(float(x)) for x in seed_scores],
        "status": status,
        "env_steps": int(env_steps),
    }
    row.update(extra)
    if error:
        row["status"], row["error"] = "diverged", error
    return row
