"""Random search with vmapped populations, under the tuning/test-seed protocol.

``random_search(RandomSearchSettings(trials, seed), spec, out)`` draws ``trials``
configurations from the study spec's :class:`~accelrl.autotune.spaces.SearchSpace` and trains
each for ``spec.budget`` environment steps on every tuning seed:

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
from pathlib import Path

import numpy as np

from accelrl.autotune.spaces import values_to_json
from accelrl.autotune.study import (  # noqa: F401  (re-exported: the shared pieces lived here)
    INCUMBENT_FILE,
    REPORT_FILE,
    SCORE_FRACTION,
    SEARCH_FILE,
    TRIALS_FILE,
    Backend,
    GroupOutcome,
    RunnerBackend,
    SearchResult,
    Trial,
    append_row,
    best_row,
    check_resume,
    final_return_scores,
    finish,
    finite_or_none,
    group_trials,
    open_study,
    read_rows,
    search_settings,
    searched_config,
    shape_key,
    trial_row,
    trial_score,
)
from accelrl.autotune.tuners import StudySpec, register_tuner


@dataclasses.dataclass(frozen=True)
class RandomSearchSettings:
    """Random search's settings (``search.json`` records them beside the study spec)."""

    trials: int = 16
    """Configurations to draw and train, in all (a resumed study may raise it)."""
    seed: int = 0
    """Seed of the sampler (``numpy.random.default_rng(seed)``; draws are sequential, so the
    first trials stay the same for any ``trials``)."""

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")


def random_search(settings: RandomSearchSettings, spec: StudySpec, out: str | Path) -> SearchResult:
    """Random search over ``spec.space`` for ``spec.agent`` on ``spec.env``; see the module
    docstring.

    Returns:
        A :class:`SearchResult`; the same is in ``out`` (``trials.jsonl``, ``incumbent.json``,
        ``report.md``, ``search.json``).

    Raises:
        ValueError: an invalid space, a folder holding another search.
        RuntimeError: no configuration produced a score.
    """
    study = open_study("random", settings, spec, out)
    backend, space, trials, seed = study.backend, study.space, settings.trials, settings.seed
    log = study.log

    # DRAW (sequential from the seed: the first trials are the same for any `trials`)
    draws = space.sample(
        np.random.default_rng(seed), trials, agent=spec.agent, base_config=backend.base_config
    )
    all_trials = [Trial(i, v) for i, v in enumerate(draws)]
    done = {i: r for i, r in study.done.items() if i < trials}
    for i, row in done.items():
        if searched_config(row, space) != values_to_json(all_trials[i].values):
            raise ValueError(
                f"{study.trials_path}: trial {i}'s config does not match this search's draw "
                "(another space or seed wrote it)"
            )

    # TRAIN: one program per group of shared config values
    pending = [t for t in all_trials if t.trial_id not in done]
    for config_values, members in group_trials(pending, study.config_names):
        outcome = backend.train(
            config_values,
            [{n: t.values[n] for n in study.hparams_names} for t in members],
            study.tuning_seeds,
        )
        for t, seed_scores, error in zip(members, outcome.seed_scores, outcome.errors, strict=True):
            row = trial_row(
                t.trial_id, t.values, study.tuning_seeds, seed_scores, error, outcome.env_steps,
                group=values_to_json(config_values), group_size=len(members),
                group_seconds=round(outcome.seconds, 3),
            )  # fmt: skip
            study.record(row)
            done[t.trial_id] = row
        best = max((r["score"] for r in done.values() if r["score"] is not None), default=None)
        log(
            f"group {values_to_json(config_values)}: {len(members)} configurations x "
            f"{len(study.tuning_seeds)} seeds in {outcome.seconds:.1f} s; best score so far {best}"
        )

    rows = [done[i] for i in sorted(done)]
    return study.conclude(rows, rows, score_text(spec.score_updates))


register_tuner("random", RandomSearchSettings, random_search, title="Random search",
               growable=("trials",))  # fmt: skip


def score_text(score_updates: int | None) -> str:
    """How a trial's score was computed, for ``incumbent.json`` and the report."""
    return "mean over tuning seeds of the mean episode_return over the last " + (
        f"{score_updates} updates" if score_updates else "10% of updates (at least 1)"
    )


__all__ = ["RandomSearchSettings", "SearchResult", "random_search", "score_text"]
