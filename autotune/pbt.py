"""Population-based training (Jaderberg et al., 2017) in one vmapped program.

The population is ``population`` hparams settings, each trained on every tuning seed: one
:class:`~accelrl.agents.runner.Runner` grid of ``population x seeds`` members. Every
``interval`` environment steps (between runner segments, never inside the compiled program):

Nothing is exploited before ``burn_in`` environment steps (Ray Tune's ``burn_in_period``;
default 0, as the reference): early scores of slow starters are noise, and each exploit point
overwrites a quarter of the population.

1. **Rank** the settings by their score over the interval just trained (mean over tuning seeds
   of the mean ``episode_return`` of the interval's updates; a setting without a score ranks
   last).
2. **Exploit** (truncation selection, the reference default): each setting in the bottom
   ``quantile`` (25%) copies the whole train state of a setting drawn uniformly from the top
   ``quantile`` (parameters, optimiser state, environments, observation statistics), seed by
   seed (its seed-``j`` member copies the source's seed-``j`` member), and continues on a fresh
   RNG stream.
3. **Explore**: the copied hparams are perturbed, each dimension independently: with
   probability ``resample_probability`` (0.25) redrawn from the space's prior, else a float is
   multiplied by 0.8 or 1.2 (equally likely) and an int rounded after that, a categorical moves
   to a neighbouring choice; results are clipped to the dimension's bounds.

Only hparams dimensions can change between segments (they keep shapes); config dimensions of
the space take the base config's values (a warning names them).

Each setting is a trial (``trial_id`` = its index) whose row holds its *lineage's* schedule:
``schedule = [(env_steps, values)]`` (the values it started from at step 0, and the values
after each exploit that led to it), ``config`` = the schedule's first values, and its final
score (the last 10% of updates, as the other tuners). The incumbent's schedule is replayed on
the test seeds (the usual PBT evaluation): ``pbt_schedules.png`` shows every schedule.

The population is one program; its trials finish together, so a killed PBT study starts over
on resume (no finished trial is lost or repeated: there is none before the end).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelrl.autotune.random_search import score_text
from accelrl.autotune.spaces import Categorical, Dimension, Float, Int, SearchSpace, values_to_json
from accelrl.autotune.study import (
    SearchResult,
    open_study,
    trial_row,
    trial_score,
)
from accelrl.autotune.tuners import StudySpec, register_tuner

QUANTILE = 0.25
"""Fraction of the population replaced (bottom) and copied from (top) at each exploit."""
PERTURB = (0.8, 1.2)
"""Multiplicative perturbation factors of float and int dimensions."""
RESAMPLE_PROBABILITY = 0.25
"""Probability that explore redraws a dimension from the prior instead of perturbing it."""


def perturb(
    values: Mapping[str, Any],
    space: SearchSpace,
    rng: np.random.Generator,
    factors: Sequence[float] = PERTURB,
    resample_probability: float = RESAMPLE_PROBABILITY,
) -> dict[str, Any]:
    """PBT's explore step on the dimensions of ``space`` that ``values`` has (see the module
    docstring); every result lies inside its dimension."""
    out = dict(values)
    for name, value in values.items():
        if name not in space:
            continue
        dim: Dimension = space[name]
        if rng.random() < resample_probability:
            out[name] = dim.sample(rng)
            continue
        if isinstance(dim, Categorical):
            i = dim.choices.index(value) if value in dim.choices else 0
            j = int(np.clip(i + rng.choice((-1, 1)), 0, len(dim.choices) - 1))
            out[name] = dim.choices[j]
        elif isinstance(dim, Int):
            v = int(round(value * float(rng.choice(factors))))
            if v == value:  # a small int would never move: step by one instead
                v = value + int(rng.choice((-1, 1)))
            out[name] = int(np.clip(v, dim.low, dim.high))
        elif isinstance(dim, Float):
            out[name] = float(np.clip(value * float(rng.choice(factors)), dim.low, dim.high))
        else:  # pragma: no cover - every dimension kind is handled above
            raise TypeError(f"unknown dimension {dim!r}")
    return out


def truncation_pairs(
    scores: Sequence[float], rng: np.random.Generator, quantile: float = QUANTILE
) -> list[tuple[int, int]]:
    """``[(dst, src)]``: each setting in the bottom ``quantile`` of ``scores`` (NaN lowest)
    paired with one drawn uniformly from the top ``quantile``; none when the population is too
    small for one setting per quantile."""
    s = np.asarray(scores, np.float64)
    k = int(math.floor(quantile * len(s)))
    if k < 1:
        return []
    order = np.argsort(np.where(np.isfinite(s), s, -np.inf), kind="stable")
    bottom, top = order[:k], order[-k:]
    return [(int(d), int(rng.choice(top))) for d in bottom]


@dataclasses.dataclass(frozen=True)
class PBTSettings:
    """PBT's settings (``search.json`` records them beside the study spec; ``population`` as
    ``trials``, the count ``accelrl-tune --trials`` gives)."""

    population: int = 16
    """Settings trained together (each on every tuning seed)."""
    intervals: int = 10
    """Exploit/explore points: every ``budget / intervals`` steps (whole updates)."""
    quantile: float = QUANTILE
    """The fraction truncated and copied from at each exploit."""
    resample_probability: float = RESAMPLE_PROBABILITY
    """Chance that explore redraws a dimension from the prior."""
    burn_in: int = 0
    """Environment steps per member before the first exploit point (points at fewer steps
    only rank and log)."""
    seed: int = 0
    """Seed of the sampler and of the exploit/explore draws."""

    def __post_init__(self):
        if self.population < 2:
            raise ValueError(f"population must be >= 2, got {self.population}")
        if self.intervals < 1:
            raise ValueError(f"intervals must be >= 1, got {self.intervals}")
        if not 0 < self.quantile <= 0.5:
            raise ValueError(f"quantile must be in (0, 0.5], got {self.quantile}")
        if self.burn_in < 0:
            raise ValueError(f"burn_in must be >= 0, got {self.burn_in}")


def pbt(settings: PBTSettings, spec: StudySpec, out: str | Path) -> SearchResult:
    """PBT over the hparams dimensions of ``spec.space`` (agent hparams and the reset
    strategy's data settings); see the module docstring."""
    population, intervals = int(settings.population), int(settings.intervals)
    study = open_study("pbt", settings, spec, out)
    log, space = study.log, study.space
    if study.budget is None:
        raise ValueError("pbt needs a budget (the backend has none)")
    if study.config_names:
        warnings.warn(
            f"PBT changes hparams only (they keep the program's shapes); the config "
            f"dimensions {list(study.config_names)} take the base config's values",
            stacklevel=2,
        )
    hp_space = space.without(*study.config_names)
    rng = np.random.default_rng(settings.seed)
    draws = hp_space.sample(rng, population)

    if len(study.done) < population:
        _train_population(
            study,
            hp_space,
            draws,
            intervals,
            settings.quantile,
            settings.resample_probability,
            rng,
            log,
            burn_in=settings.burn_in,
        )

    rows = [study.done[i] for i in range(population)]
    return study.conclude(
        rows, rows, score_text(spec.score_updates) + " (the final lineage's)", space=hp_space,
        extra={"pbt": {"population": population, "intervals": intervals,
                       "quantile": settings.quantile,
                       "resample_probability": settings.resample_probability}},
    )  # fmt: skip


def _train_population(
    study: Any,
    space: SearchSpace,
    draws: list[dict[str, Any]],
    intervals: int,
    quantile: float,
    resample_probability: float,
    rng: np.random.Generator,
    log: Callable[[str], None],
    burn_in: int = 0,
) -> None:
    run = study.backend.open({}, draws, study.tuning_seeds)
    schedules = [[(0, dict(v))] for v in draws]
    exploits = 0
    outcome = None
    for t in range(1, intervals + 1):
        target = math.ceil(study.budget * t / intervals)
        before = run.steps
        last = t == intervals
        # rank on the interval just trained; the final score on the usual window
        window = None if last else _updates_between(run, before, target)
        outcome = run.advance(target, window=window)
        if last:
            break
        scores = [trial_score(sc) for sc in outcome.seed_scores]
        burning = outcome.env_steps < burn_in
        pairs = [] if burning else truncation_pairs(scores, rng, quantile)
        for dst, src in pairs:
            run.exploit(dst, src)
            new = perturb(run.values[src], space, rng, resample_probability=resample_probability)
            run.set_values(dst, new)
            schedules[dst] = [*schedules[src], (outcome.env_steps, dict(new))]
        exploits += len(pairs)
        finite = [s for s in scores if math.isfinite(s)]
        log(
            f"pbt interval {t}/{intervals} at {outcome.env_steps} steps: best "
            f"{max(finite) if finite else float('nan'):.4g}, median "
            f"{float(np.median(finite)) if finite else float('nan'):.4g}; "
            f"{len(pairs)} exploited" + (" (burn-in)" if burning else "")
        )
    assert outcome is not None
    for i, (sc, err) in enumerate(zip(outcome.seed_scores, outcome.errors, strict=True)):
        study.record(
            trial_row(
                i, schedules[i][0][1], study.tuning_seeds, sc, err, outcome.env_steps,
                schedule=[[st, values_to_json(v)] for st, v in schedules[i]],
                final_config=values_to_json(run.values[i]),
            )
        )  # fmt: skip
    log(f"pbt done: {exploits} exploits")


def _updates_between(run: Any, start: int, stop: int) -> int:
    """Updates from env step ``start`` to ``stop`` (at least one)."""
    spu = getattr(getattr(run, "agent", None), "steps_per_update", None)
    if not spu:
        return 1
    return max(1, math.ceil(stop / spu) - start // spu)


register_tuner("pbt", PBTSettings, pbt, title="Population-based training",
               recorded_as={"population": "trials"})  # fmt: skip


__all__ = [
    "PBTSettings",
    "PERTURB",
    "QUANTILE",
    "RESAMPLE_PROBABILITY",
    "pbt",
    "perturb",
    "truncation_pairs",
]
