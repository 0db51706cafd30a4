"""Random search with vmapped populations, under the tuning/test-seed protocol.

``random_search(env_id, agent, space, trials, budget, out)`` draws ``trials`` configurations
from a :class:`~accelrl.autotune.spaces.SearchSpace` and trains each for ``budget``
environment steps on every tuning seed:

1. **Grouping.** Configurations that share the values of the space's *config* dimensions
   (shape-changing: ``num_minibatches``, network widths) form a group; a group is one
   :class:`~accelrl.agents.runner.Runner` program whose members are its configurations x the
   tuning seeds (hparams stacked setting-major, so member ``i * S + j`` is configuration ``i``
   on seed ``j``). Each group is built once (``accelrl.agents.build`` with the group's config
   values and ``total_timesteps = budget``), so a search compiles one program per distinct
   combination of config values, never one per configuration. Groups run in the order of their
   first trial.
2. **Score.** A configuration's score is the mean over the tuning seeds of its final training
   return: per seed, the mean of the ``episode_return`` metric over the last
   ``score_updates`` updates (default: the last 10% of updates, at least one), where
   ``episode_return`` is the mean return of the episodes that finished in an update (carried
   forward through updates where none did). A configuration with any seed that has no score
   (no finished episode, or training diverged) gets no score and cannot be the incumbent.
3. **Divergence.** The runner marks a member whose losses turn non-finite as failed and keeps
   training the others (``Runner(nan_policy="mark")``: members are independent under the vmap);
   a configuration that diverged on any seed is recorded with ``"status": "diverged"`` and the
   seeds it diverged on.
4. **Protocol.** The incumbent (the best score; ties go to the lower ``trial_id``) and the
   agent's default configuration for the environment are trained again on the *test* seeds,
   disjoint from the tuning seeds, with the same budget, then evaluated on
   ``evaluation_key(seed)`` episodes; the report gives each one's IQM over test seeds with a
   stratified-bootstrap 95% interval (:mod:`accelrl.autotune.protocol`).

The run folder holds ``search.json`` (the settings), ``trials.jsonl`` (one line per finished
trial, appended with one ``write`` and an ``fsync``, so a kill loses at most the trial being
trained and never leaves half a line that is not skipped), ``incumbent.json`` and
``report.md``. Calling ``random_search`` again on the same folder with the same settings
resumes: finished trials (deduplicated by ``trial_id``) are kept, the rest are trained;
``trials`` may grow between calls (draws are sequential from ``seed``, so the first trials
stay the same).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from accelrl.autotune.protocol import (
    DEFAULT_TEST_SEEDS,
    DEFAULT_TUNING_SEEDS,
    check_seeds,
    summarize,
)
from accelrl.autotune.spaces import SearchSpace, default_space, values_to_json

TRIALS_FILE = "trials.jsonl"
INCUMBENT_FILE = "incumbent.json"
SEARCH_FILE = "search.json"
REPORT_FILE = "report.md"
SCORE_FRACTION = 0.1
"""Fraction of the last updates whose returns make a seed's score (default ``score_updates``)."""


# ----------------------------------------------------------------------------------------------
# Trials and groups


@dataclasses.dataclass(frozen=True)
class Trial:
    """One drawn configuration."""

    trial_id: int
    """Index of the draw (0-based, in sampling order)."""
    values: dict[str, Any]
    """``{dimension: value}`` for every dimension of the space."""


def shape_key(values: Mapping[str, Any], config_names: Sequence[str]) -> tuple:
    """The group key of a configuration: its config (shape-changing) values, by name."""
    return tuple((n, values[n]) for n in sorted(config_names))


def group_trials(
    trials: Sequence[Trial], config_names: Sequence[str]
) -> list[tuple[dict[str, Any], list[Trial]]]:
    """Trials grouped by their config values: ``[(config_values, trials)]`` in the order of
    each group's first trial (trials keep their order inside a group)."""
    groups: dict[tuple, list[Trial]] = {}
    for t in trials:
        groups.setdefault(shape_key(t.values, config_names), []).append(t)
    return [(dict(key), members) for key, members in groups.items()]


def final_return_scores(
    episode_return: np.ndarray, n_settings: int, n_seeds: int, score_updates: int | None = None
) -> np.ndarray:
    """Per configuration and seed, the mean ``episode_return`` over the last updates.

    Args:
        episode_return: ``f32[M, U]`` from a grid :class:`Runner` (``M = n_settings * n_seeds``
            members, setting-major).
        score_updates: how many of the last updates to average (default: ``SCORE_FRACTION``
            of ``U``, at least 1).

    Returns:
        ``f64[n_settings, n_seeds]``; NaN where a member finished no episode in the window.
    """
    r = np.asarray(episode_return, np.float64)
    if r.ndim != 2 or r.shape[0] != n_settings * n_seeds:
        raise ValueError(
            f"episode_return must be [{n_settings} * {n_seeds}, U], got shape {r.shape}"
        )
    updates = r.shape[1]
    k = score_updates or max(1, math.ceil(SCORE_FRACTION * updates))
    window = r[:, -min(k, updates) :]
    count = np.isfinite(window).sum(axis=1)
    total = np.where(np.isfinite(window), window, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_member = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return per_member.reshape(n_settings, n_seeds)


def trial_score(seed_scores: np.ndarray) -> float:
    """Mean over seeds, NaN if any seed has no score."""
    s = np.asarray(seed_scores, np.float64)
    return float(s.mean()) if np.all(np.isfinite(s)) else float("nan")


# ----------------------------------------------------------------------------------------------
# Backends: how a group is trained (the runner; tests plug in synthetic objectives)


@dataclasses.dataclass
class GroupOutcome:
    """What training one group on the tuning seeds gives."""

    seed_scores: np.ndarray
    """``f64[N, S]`` score of each configuration on each seed (NaN: none)."""
    errors: list[str | None]
    """Per configuration: None, or why it has no score (divergence)."""
    env_steps: int = 0
    """Environment steps each member took."""
    seconds: float = 0.0
    """Wall-clock seconds of the group (compilation included)."""


class Backend(Protocol):
    """Trains groups of configurations; :class:`RunnerBackend` is the real one."""

    base_config: Any
    """The config drawn config values replace fields of (its ``validate()`` is the space's
    constraint check); None: no constraint."""

    def defaults(self, names: Sequence[str]) -> dict[str, Any]:
        """The default configuration's value of each named field."""
        ...

    def train(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> GroupOutcome:
        """Train configurations that share ``config_values`` (``settings``: each one's hparams
        values) on ``seeds`` and score them."""
        ...

    def test(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> tuple[np.ndarray, list[str | None]]:
        """Train on the test ``seeds``, then evaluate: ``(f64[N, S] mean evaluation return,
        per-configuration error or None)``."""
        ...

    def describe(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """JSON-ready full description of a configuration (every config and hparams field)."""
        ...


class RunnerBackend:
    """Trains groups as :class:`~accelrl.agents.runner.Runner` grids built by
    :func:`accelrl.agents.build`.

    Args:
        env_id: environment id (``accelrl.envs.make``).
        agent: registered agent name.
        budget: environment steps per configuration and seed (``total_timesteps``); None: the
            agent's default for the environment.
        overrides: config and hparams fields fixed for every configuration (not searched).
        env_kwargs: ``make`` keyword arguments.
        score_updates: updates averaged into a seed's score (see :func:`final_return_scores`).
        eval_episodes: evaluation episodes per test seed (default: the config's
            ``eval_episodes``).
        max_members: most members (configurations x seeds) in one program; a larger group is
            run in chunks of whole configurations (None: no limit).
        segments: about how many host round trips a run makes (progress points).
        progress: show the runner's progress bars.
    """

    def __init__(
        self,
        env_id: str,
        agent: str,
        budget: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        *,
        score_updates: int | None = None,
        eval_episodes: int | None = None,
        max_members: int | None = None,
        segments: int = 10,
        progress: bool = False,
    ):
        from accelrl.agents import agent_spec

        self.env_id = env_id
        self.agent_name = agent
        self.overrides = dict(overrides or {})
        if "total_timesteps" in self.overrides:
            raise ValueError("give the run length as budget, not as a total_timesteps override")
        self.env_kwargs = dict(env_kwargs or {})
        if budget is None:
            budget = agent_spec(agent).default_config(env_id)[0].total_timesteps
        self.budget = int(budget)
        self.overrides["total_timesteps"] = self.budget
        self.score_updates = score_updates
        self.eval_episodes = eval_episodes
        self.max_members = max_members
        self.segments = segments
        self.progress = progress
        self._built: dict[tuple, tuple[Any, Any, Any]] = {}
        _, self.base_config, self.base_hparams = self._build({})

    def _build(self, config_values: Mapping[str, Any]) -> tuple[Any, Any, Any]:
        """``(agent, config, hparams)`` of a group, built once (one compiled program each)."""
        from accelrl.agents import build

        key = shape_key(config_values, list(config_values))
        if key not in self._built:
            overrides = {**self.overrides, **config_values}
            self._built[key] = build(self.env_id, self.agent_name, overrides, self.env_kwargs)
        return self._built[key]

    def defaults(self, names: Sequence[str]) -> dict[str, Any]:
        out = {}
        for n in names:
            source = self.base_config if hasattr(self.base_config, n) else self.base_hparams
            value = getattr(source, n)
            out[n] = _short_float(value) if source is self.base_hparams else value
        return out

    def describe(self, values: Mapping[str, Any]) -> dict[str, Any]:
        from accelrl.agents.configs import config_to_dict, hparams_to_dict

        config_part = {k: v for k, v in values.items() if hasattr(self.base_config, k)}
        _, config, hparams = self._build(config_part)
        hparams = hparams.replace(**{k: v for k, v in values.items() if k not in config_part})
        return {
            "env": self.env_id,
            "env_kwargs": self.env_kwargs,
            "agent": self.agent_name,
            "config": config_to_dict(config),
            "hparams": {k: _short_float(v) for k, v in hparams_to_dict(hparams).items()},
        }

    def _hparams(self, base: Any, settings: Sequence[Mapping[str, Any]]) -> list[Any]:
        from accelrl.agents import check_hparams
        from accelrl.agents.core import float32_tree

        out = []
        for s in settings:
            hp = float32_tree(base.replace(**dict(s)))
            check_hparams(hp)
            out.append(hp)
        return out

    def _chunks(self, n: int, n_seeds: int) -> list[range]:
        per = n if self.max_members is None else max(1, self.max_members // n_seeds)
        return [range(i, min(i + per, n)) for i in range(0, n, per)]

    def _run(self, agent: Any, hparams: list[Any], seeds: Sequence[int], idx: Sequence[int]):
        """Train configurations ``idx`` of ``hparams`` in one program; returns ``(RunResult,
        errors)`` with ``errors[k]`` naming the seeds on which configuration ``idx[k]``
        diverged (None if it did not). The runner marks a diverging member failed and keeps
        training the others (``nan_policy="mark"``)."""
        from accelrl.agents.runner import Runner

        runner = Runner(
            agent,
            list(seeds),
            [hparams[i] for i in idx],
            segments=self.segments,
            progress=self.progress,
            checkpoint_seconds=None,
            nan_policy="mark",
        )
        result = runner.train()
        failed = np.asarray(result.failed).reshape(len(idx), len(seeds))
        seeds = list(seeds)
        errors = [
            f"non-finite training metrics on seed(s) {np.asarray(seeds)[row].tolist()}"
            if row.any()
            else None
            for row in failed
        ]
        return result, errors

    def train(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> GroupOutcome:
        t0 = time.perf_counter()
        agent, _, base = self._build(config_values)
        hparams = self._hparams(base, settings)
        n, s = len(settings), len(seeds)
        scores = np.full((n, s), np.nan)
        errors: list[str | None] = [None] * n
        env_steps = 0
        for chunk in self._chunks(n, s):
            idx = list(chunk)
            result, chunk_errors = self._run(agent, hparams, seeds, idx)
            chunk_scores = final_return_scores(
                result.metrics["episode_return"], len(idx), s, self.score_updates
            )
            for k, i in enumerate(idx):
                errors[i] = chunk_errors[k]
                # a configuration that diverged on any seed gets no score
                scores[i] = np.nan if chunk_errors[k] else chunk_scores[k]
                env_steps = int(np.asarray(result.metrics["env_steps"])[0, -1])
        return GroupOutcome(scores, errors, env_steps, time.perf_counter() - t0)

    def test(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> tuple[np.ndarray, list[str | None]]:
        from accelrl.agents.evaluation import evaluate_seeds

        agent, config, base = self._build(config_values)
        hparams = self._hparams(base, settings)
        episodes = int(self.eval_episodes or config.eval_episodes)
        n, s = len(settings), len(seeds)
        returns = np.full((n, s), np.nan)
        errors: list[str | None] = [None] * n
        for chunk in self._chunks(n, s):
            idx = list(chunk)
            result, chunk_errors = self._run(agent, hparams, seeds, idx)
            member_seeds = [sd for _ in idx for sd in seeds]
            summary = evaluate_seeds(agent, result.state, member_seeds, episodes)
            chunk_returns = np.asarray(summary["returns"]).reshape(len(idx), s)
            for k, i in enumerate(idx):
                errors[i] = chunk_errors[k]
                returns[i] = np.nan if chunk_errors[k] else chunk_returns[k]
        return returns, errors


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


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False))
    tmp.replace(path)


def _short_float(x: Any) -> float:
    """A float32 hparam as the shortest float that rounds to it (1e-3, not 0.0010000000474...)."""
    return float(str(np.float32(np.asarray(x))))


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclasses.dataclass
class SearchResult:
    """What :func:`random_search` returns (also in ``out``)."""

    out: Path
    """The run folder."""
    rows: list[dict[str, Any]]
    """Every finished trial's row, by ``trial_id``."""
    incumbent: dict[str, Any]
    """The ``incumbent.json`` content."""


def _search_settings(env_id: str, agent: str, space: SearchSpace, **kw: Any) -> dict[str, Any]:
    return {
        "method": "random",
        "env": env_id,
        "agent": agent,
        "space": json.loads(space.to_configspace_json()),
        **kw,
    }


def _check_resume(out: Path, settings: dict[str, Any]) -> None:
    path = out / SEARCH_FILE
    if not path.exists():
        _write_json(path, settings)
        return
    old = json.loads(path.read_text())
    changed = sorted(
        k for k in set(old) | set(settings) if k != "trials" and old.get(k) != settings.get(k)
    )
    if changed:
        raise ValueError(
            f"{out} holds a search with other settings ({', '.join(changed)} differ); use a new "
            "folder, or the same settings to resume it"
        )
    _write_json(path, settings)


def random_search(
    env_id: str,
    agent: str,
    space: SearchSpace | None = None,
    trials: int = 16,
    budget: int | None = None,
    out: str | Path = "runs/tune",
    tuning_seeds: Sequence[int] = DEFAULT_TUNING_SEEDS,
    test_seeds: Sequence[int] = DEFAULT_TEST_SEEDS,
    *,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    score_updates: int | None = None,
    eval_episodes: int | None = None,
    max_members: int | None = None,
    bootstrap_reps: int = 50_000,
    progress: bool = False,
    backend: Backend | None = None,
    log: Callable[[str], None] | None = None,
) -> SearchResult:
    """Random search over ``space`` for ``agent`` on ``env_id``; see the module docstring.

    Args:
        env_id: environment id.
        agent: registered agent name (``"ppo"``, ``"sac"``, ...).
        space: the search space (default: :func:`default_space(agent)`).
        trials: configurations to draw and train (in all, across resumes).
        budget: environment steps per configuration and seed (the ``total_timesteps`` of every
            run; None: the agent's default for the environment).
        out: the run folder (created; an existing one with the same settings is resumed).
        tuning_seeds: seeds configurations are scored on (default 0-4).
        test_seeds: seeds the incumbent and the default are reported on (default 5-9);
            disjoint from ``tuning_seeds``.
        seed: seed of the sampler (``numpy.random.default_rng(seed)``).
        overrides: config and hparams fields fixed for every run (not searched).
        env_kwargs: ``make`` keyword arguments.
        score_updates: updates averaged into a seed's score (default: the last 10%).
        eval_episodes: evaluation episodes per test seed (default: the config's).
        max_members: most members (configurations x seeds) per program.
        bootstrap_reps: bootstrap replicates of the reported intervals.
        progress: show progress bars.
        backend: what trains groups (default: a :class:`RunnerBackend` from the arguments
            above); tests pass synthetic objectives here.
        log: called with one line per finished group and at the end (default: silent).

    Returns:
        A :class:`SearchResult`; the same is in ``out`` (``trials.jsonl``, ``incumbent.json``,
        ``report.md``, ``search.json``).

    Raises:
        ValueError: overlapping seeds, an invalid space, a folder holding another search.
        RuntimeError: no configuration produced a score.
    """
    tuning_seeds, test_seeds = check_seeds(tuning_seeds, test_seeds)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    space = (default_space(agent) if space is None else space).validate(agent)
    if backend is None:
        backend = RunnerBackend(
            env_id,
            agent,
            budget,
            overrides,
            env_kwargs,
            score_updates=score_updates,
            eval_episodes=eval_episodes,
            max_members=max_members,
            progress=progress,
        )
        budget = backend.budget
    log = log or (lambda _line: None)
    config_names, hparams_names = space.split(agent)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = _search_settings(
        env_id,
        agent,
        space,
        trials=int(trials),
        budget=budget,
        tuning_seeds=list(tuning_seeds),
        test_seeds=list(test_seeds),
        seed=int(seed),
        overrides=values_to_json(dict(overrides or {})),
        env_kwargs=dict(env_kwargs or {}),
        score_updates=score_updates,
        eval_episodes=eval_episodes,
    )
    _check_resume(out, settings)

    # DRAW (sequential from the seed: the first trials are the same for any `trials`)
    draws = space.sample(
        np.random.default_rng(seed), trials, agent=agent, base_config=backend.base_config
    )
    all_trials = [Trial(i, v) for i, v in enumerate(draws)]
    trials_path = out / TRIALS_FILE
    done = {i: r for i, r in read_rows(trials_path).items() if i < trials}
    for i, row in done.items():
        if row.get("config") != values_to_json(all_trials[i].values):
            raise ValueError(
                f"{trials_path}: trial {i}'s config does not match this search's draw "
                "(another space or seed wrote it)"
            )

    # TRAIN: one program per group of shared config values
    pending = [t for t in all_trials if t.trial_id not in done]
    for config_values, members in group_trials(pending, config_names):
        outcome = backend.train(
            config_values, [{n: t.values[n] for n in hparams_names} for t in members], tuning_seeds
        )
        for t, seed_scores, error in zip(members, outcome.seed_scores, outcome.errors, strict=True):
            score = trial_score(seed_scores)
            status = "diverged" if error else ("ok" if math.isfinite(score) else "no_score")
            row = {
                "trial_id": t.trial_id,
                "config": values_to_json(t.values),
                "seeds": list(tuning_seeds),
                "score": _finite_or_none(score),
                "seed_scores": [_finite_or_none(float(x)) for x in seed_scores],
                "status": status,
                "group": values_to_json(config_values),
                "group_size": len(members),
                "env_steps": outcome.env_steps,
                "group_seconds": round(outcome.seconds, 3),
            }
            if error:
                row["error"] = error
            append_row(trials_path, row)
            done[t.trial_id] = row
        best = max((r["score"] for r in done.values() if r["score"] is not None), default=None)
        log(
            f"group {values_to_json(config_values)}: {len(members)} configurations x "
            f"{len(tuning_seeds)} seeds in {outcome.seconds:.1f} s; best score so far {best}"
        )

    rows = [done[i] for i in sorted(done)]
    scored = [r for r in rows if r["score"] is not None]
    if not scored:
        raise RuntimeError(f"none of the {len(rows)} trials produced a score (see {trials_path})")
    inc = max(scored, key=lambda r: (r["score"], -r["trial_id"]))

    # TEST: incumbent and default, retrained on the test seeds (one program if they share
    # config values), then evaluated
    inc_values = all_trials[inc["trial_id"]].values
    default_values = backend.defaults(list(space))
    entries = {"incumbent": inc_values, "default": default_values}
    tested: dict[str, dict[str, Any]] = {}
    for config_values, members in group_trials(
        [Trial(i, v) for i, v in enumerate(entries.values())], config_names
    ):
        returns, errors = backend.test(
            config_values, [{n: t.values[n] for n in hparams_names} for t in members], test_seeds
        )
        for t, r, error in zip(members, returns, errors, strict=True):
            label = list(entries)[t.trial_id]
            if error or not np.all(np.isfinite(r)):
                tested[label] = {"error": error or "no evaluation return", "scores": None}
            else:
                tested[label] = summarize(r[:, None], reps=bootstrap_reps)

    incumbent = {
        "method": "random",
        "env": env_id,
        "agent": agent,
        "trial_id": inc["trial_id"],
        "config": inc["config"],
        "tuning": {"seeds": list(tuning_seeds), "score": inc["score"]},
        "test": {
            "seeds": list(test_seeds),
            "incumbent": tested["incumbent"],
            "default": {**tested["default"], "config": values_to_json(default_values)},
            "scores_are": "mean undiscounted return of the evaluation episodes of each test "
            "seed, after training on that seed with the same budget (runs x tasks = "
            f"{len(test_seeds)} x 1)",
        },
        "full": backend.describe(inc_values),
        "budget": {
            "env_steps_per_configuration_and_seed": budget,
            "trials": len(rows),
            "trials_scored": len(scored),
            "tuning_env_steps": int(sum(r.get("env_steps", 0) for r in rows)) * len(tuning_seeds),
        },
        "score": "mean over tuning seeds of the mean episode_return over the last "
        + (f"{score_updates} updates" if score_updates else "10% of updates (at least 1)"),
    }
    _write_json(out / INCUMBENT_FILE, incumbent)
    (out / REPORT_FILE).write_text(_report(incumbent, rows))
    log(f"incumbent: trial {inc['trial_id']} (score {inc['score']:.4g}); see {out / REPORT_FILE}")
    return SearchResult(out, rows, incumbent)


def _fmt(entry: Mapping[str, Any]) -> str:
    if entry.get("scores") is None:
        return f"failed: {entry.get('error')}"
    lo, hi = entry["ci"]
    return f"{entry['iqm']:.4g} [{lo:.4g}, {hi:.4g}]"


def _report(incumbent: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    test = incumbent["test"]
    lines = [
        f"# Random search: {incumbent['agent']} on {incumbent['env']}",
        "",
        f"- trials: {len(rows)} ({incumbent['budget']['trials_scored']} scored), "
        f"{incumbent['budget']['env_steps_per_configuration_and_seed']} environment steps per "
        f"configuration and seed",
        f"- tuning seeds {incumbent['tuning']['seeds']}, test seeds {test['seeds']}",
        f"- score: {incumbent['score']}",
        "",
        "| configuration | tuning score | test IQM [95% CI] |",
        "| --- | ---: | --- |",
        f"| incumbent (trial {incumbent['trial_id']}) | {incumbent['tuning']['score']:.4g} | "
        f"{_fmt(test['incumbent'])} |",
        f"| default | | {_fmt(test['default'])} |",
        "",
        f"Incumbent: `{json.dumps(incumbent['config'])}`",
        "",
    ]
    return "\n".join(lines)


__all__ = [
    "INCUMBENT_FILE",
    "REPORT_FILE",
    "SCORE_FRACTION",
    "SEARCH_FILE",
    "TRIALS_FILE",
    "Backend",
    "GroupOutcome",
    "RunnerBackend",
    "SearchResult",
    "Trial",
    "append_row",
    "final_return_scores",
    "group_trials",
    "random_search",
    "read_rows",
    "shape_key",
    "trial_score",
]
