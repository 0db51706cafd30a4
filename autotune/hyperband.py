"""Successive halving and Hyperband on the environment-step budget.

Hyperband (Li et al., JMLR 2018) runs several *brackets* of successive halving (Jamieson and
Talwalkar, 2016). Bracket ``s`` (``s = s_max .. 0``) starts ``n_s`` configurations at
``budget * eta**-s`` environment steps, keeps the best ``1/eta`` of them at each rung and
multiplies their steps by ``eta``, until the survivors reach the whole ``budget``; the
brackets hedge between many configurations on small budgets and few on large ones.
``successive_halving=True`` runs only the most aggressive bracket (``s = s_max``) with every
trial; ``brackets=1`` trains every configuration for the whole budget (random search).

How the rungs meet accelrl's runs:

* **Continue, never restart.** Every group is built once at the whole budget
  (``total_timesteps = budget``) and trained to a rung's update count; promoted
  configurations continue from their train state (:meth:`GroupRun.select`), eliminated ones
  are dropped from the program (the next rung compiles for the smaller member count, once per
  size: the persistent compilation cache serves later brackets).
* **Schedules.** A run stopped at a rung is the *prefix* of a full-budget run: PPO's learning
  rate anneals over the whole budget (at the first rung of an aggressive bracket it has barely
  started to decay) and SAC's buffer is sized for the whole budget. Rung scores therefore
  rank the early part of the run each configuration will actually continue, not a shorter
  run with its own schedule.
* **Scores.** At a rung a configuration's score is the mean over tuning seeds of the mean
  ``episode_return`` over the last 10% of the updates done so far (``score_updates`` to fix
  the window); configurations without a score rank last.
* **Trials.** ``trials`` configurations in all, split over the brackets in Hyperband's
  proportions (``n_s`` proportional to ``eta**s / (s + 1)``; at least one each), drawn in
  sequence from ``seed`` (bracket ``s_max`` first). A trial's row is written when it stops:
  ``status`` ``stopped`` (eliminated at a rung) or ``ok``/``no_score``/``diverged``, its
  ``rungs`` (``[{env_steps, score}]``), ``bracket`` and the steps it reached.
* **Incumbent.** The best score among the trials that reached the whole budget.
* **Resume.** Brackets whose trials all have rows are skipped; an interrupted bracket is
  trained again from its start (deterministic on one machine, so the rows already written
  stay right) and only its missing rows are written.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from accelrl.autotune.random_search import score_text
from accelrl.autotune.spaces import values_to_json
from accelrl.autotune.study import (
    GroupRun,
    SearchResult,
    Trial,
    group_trials,
    open_study,
    searched_config,
    trial_row,
    trial_score,
)
from accelrl.autotune.tuners import StudySpec, register_tuner


def bracket_sizes(
    trials: int, brackets: int, eta: int, successive_halving: bool = False
) -> list[tuple[int, int]]:
    """``[(s, n_s)]`` for ``s = brackets - 1 .. 0``: Hyperband's starting configurations per
    bracket, scaled so they sum to ``trials`` (largest remainders; at least one each); with
    ``successive_halving`` only ``[(brackets - 1, trials)]``.

    Raises:
        ValueError: fewer trials than brackets, ``eta < 2`` or ``brackets < 1``.
    """
    if eta < 2:
        raise ValueError(f"eta must be >= 2, got {eta}")
    if brackets < 1:
        raise ValueError(f"brackets must be >= 1, got {brackets}")
    if trials < brackets:
        raise ValueError(f"need at least one trial per bracket: trials {trials} < {brackets}")
    s_max = brackets - 1
    if successive_halving:
        return [(s_max, int(trials))]
    weights = np.array([(s_max + 1) / (s + 1) * eta**s for s in range(s_max, -1, -1)])
    ideal = 1 + (trials - brackets) * weights / weights.sum()
    n = np.floor(ideal).astype(int)
    for i in np.argsort(-(ideal - n), kind="stable")[: trials - int(n.sum())]:
        n[i] += 1
    return [(s_max - i, int(k)) for i, k in enumerate(n)]


def rung_plan(n: int, s: int, eta: int, budget: int) -> list[tuple[int, int]]:
    """``[(configurations, env_steps)]`` of the ``s + 1`` rungs of a bracket that starts ``n``
    configurations: ``max(1, n // eta**k)`` at ``budget * eta**(k - s)`` steps (at least 1)."""
    return [(max(1, n // eta**k), max(1, round(budget * eta ** (k - s)))) for k in range(s + 1)]


@dataclasses.dataclass(frozen=True)
class HyperbandSettings:
    """Hyperband's settings (``search.json`` records them beside the study spec)."""

    trials: int = 27
    """Configurations in all brackets together."""
    eta: int = 3
    """The halving rate (keep ``1/eta`` at each rung)."""
    brackets: int = 3
    """How many brackets (``s_max + 1``); the smallest rung is ``budget * eta**-(brackets -
    1)`` steps; 1 trains every configuration for the whole budget (random search)."""
    successive_halving: bool = False
    """Run only the most aggressive bracket, with every trial."""
    seed: int = 0
    """Seed of the sampler."""

    def __post_init__(self):
        bracket_sizes(int(self.trials), int(self.brackets), int(self.eta), self.successive_halving)


def hyperband(settings: HyperbandSettings, spec: StudySpec, out: str | Path) -> SearchResult:
    """Hyperband (or successive halving) over ``spec.space``; see the module docstring.

    Returns:
        A :class:`SearchResult`; the run folder as random search's, with rung scores per row.
    """
    trials, eta, seed = int(settings.trials), int(settings.eta), int(settings.seed)
    plan = bracket_sizes(trials, int(settings.brackets), eta, settings.successive_halving)
    study = open_study("hyperband", settings, spec, out)
    log = study.log
    backend, space = study.backend, study.space
    if study.budget is None:
        raise ValueError("hyperband needs a budget (the backend has none)")
    draws = space.sample(
        np.random.default_rng(seed), trials, agent=spec.agent, base_config=backend.base_config
    )
    first = 0
    for s, n in plan:
        bracket = [Trial(first + i, draws[first + i]) for i in range(n)]
        first += n
        for t in bracket:
            row = study.done.get(t.trial_id)
            if row is not None and searched_config(row, space) != values_to_json(t.values):
                raise ValueError(
                    f"{study.trials_path}: trial {t.trial_id}'s config does not match this "
                    "search's draw (another space or seed wrote it)"
                )
        if all(t.trial_id in study.done for t in bracket):
            continue
        _run_bracket(study, bracket, s, eta, log)

    rows = [study.done[i] for i in sorted(study.done) if i < trials]
    full = [r for r in rows if r["env_steps"] >= max(r2["env_steps"] for r2 in rows)]
    return study.conclude(
        study.rows(), full,
        score_text(spec.score_updates) + " reached; incumbent among the trials that reached "
        "the whole budget",
        method="successive_halving" if settings.successive_halving else "hyperband",
        extra={"hyperband": {"eta": eta, "brackets": [[s, n] for s, n in plan]}},
    )  # fmt: skip


def _run_bracket(study: Any, bracket: list[Trial], s: int, eta: int, log: Callable) -> None:
    """Successive halving over ``bracket`` (see the module docstring); writes the rows of the
    trials that do not have one yet."""
    rungs = rung_plan(len(bracket), s, eta, study.budget)
    groups: list[tuple[GroupRun, list[Trial]]] = [
        (
            study.backend.open(
                config_values,
                [{n: t.values[n] for n in study.hparams_names} for t in members],
                study.tuning_seeds,
            ),
            members,
        )
        for config_values, members in group_trials(bracket, study.config_names)
    ]
    history: dict[int, list[dict[str, Any]]] = {t.trial_id: [] for t in bracket}
    for k, (_, steps) in enumerate(rungs):
        results: dict[int, tuple[np.ndarray, str | None, int]] = {}
        for run, members in groups:
            outcome = run.advance(steps)
            for t, sc, err in zip(members, outcome.seed_scores, outcome.errors, strict=True):
                results[t.trial_id] = (sc, err, outcome.env_steps)
                score = trial_score(sc)
                history[t.trial_id].append(
                    {
                        "env_steps": outcome.env_steps,
                        "score": score if math.isfinite(score) else None,
                    }
                )
        alive = [t for _, members in groups for t in members]
        last = k == len(rungs) - 1
        if last:
            keep_ids: set[int] = {t.trial_id for t in alive}
        else:
            ranked = sorted(
                alive,
                key=lambda t: (
                    -trial_score(results[t.trial_id][0])
                    if math.isfinite(trial_score(results[t.trial_id][0]))
                    else math.inf,
                    t.trial_id,
                ),
            )
            keep_ids = {t.trial_id for t in ranked[: rungs[k + 1][0]]}
        for t in alive:
            if t.trial_id in keep_ids and not last:
                continue
            sc, err, env_steps = results[t.trial_id]
            extra = {"bracket": s, "rung": k, "rungs": history[t.trial_id]}
            if not last and not err:
                extra["status"] = "stopped"
            study.record(
                trial_row(t.trial_id, t.values, study.tuning_seeds, sc, err, env_steps, **extra)
            )
        best = max(
            (
                trial_score(results[i][0])
                for i in keep_ids
                if math.isfinite(trial_score(results[i][0]))
            ),
            default=float("nan"),
        )
        log(
            f"bracket {s} rung {k}: {len(alive)} configurations at {rungs[k][1]} steps; "
            f"{'done' if last else f'{len(keep_ids)} continue'} (best score {best:.4g})"
        )
        if not last:
            new_groups = []
            for run, members in groups:
                idx = [i for i, t in enumerate(members) if t.trial_id in keep_ids]
                if idx:
                    run.select(idx)
                    new_groups.append((run, [members[i] for i in idx]))
            groups = new_groups


register_tuner("hyperband", HyperbandSettings, hyperband, title="Hyperband")


__all__ = ["HyperbandSettings", "bracket_sizes", "hyperband", "rung_plan"]
