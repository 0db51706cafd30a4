"""The tuning protocol: disjoint tuning and test seeds, and how results are reported.

Eimer, Lindauer and Raileanu ("Hyperparameters in RL and How To Tune Them", ICML 2023) tune on
several seeds and report the incumbent on *other* seeds (their checklist shows tuning seeds
0-4 and test seeds 5-9, the defaults here). Results are aggregated as rliable does (Agarwal et
al., "Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021): the interquartile mean
(IQM) over a ``runs x tasks`` score matrix with a stratified-bootstrap percentile interval.

The statistics are written here rather than taken from the ``rliable`` package (which pulls in
``arch``, ``statsmodels``, ``pandas`` and ``seaborn``); they follow its definitions exactly:

* ``aggregate_iqm(scores) = scipy.stats.trim_mean(scores, 0.25, axis=None)``: sort all
  ``n = runs * tasks`` scores, drop ``floor(n / 4)`` from each end, average the rest. For ``n``
  divisible by 4 that is the mean of the middle 50%; otherwise slightly more than 50% is kept
  (``n = 5`` keeps the middle 3), with no fractional weights.
* ``StratifiedBootstrap``: each replicate resamples, independently for every task (column), the
  runs of that task with replacement; the interval is the percentile interval of the statistic
  over the replicates (rliable's default ``method="percentile"``, 95%).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DEFAULT_TUNING_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
"""Seeds configurations are trained on while searching (Eimer et al.'s example)."""
DEFAULT_TEST_SEEDS: tuple[int, ...] = (5, 6, 7, 8, 9)
"""Seeds the incumbent and the default configuration are retrained and evaluated on."""


def check_seeds(
    tuning_seeds: Sequence[int], test_seeds: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate the protocol's seeds and return them as tuples of ints.

    Raises:
        ValueError: an empty list, a repeated seed, a non-integer, or a seed in both lists
            (the incumbent would be reported on seeds it was selected on).
    """
    out = []
    for label, seeds in (("tuning", tuning_seeds), ("test", test_seeds)):
        seeds = list(seeds)
        if not seeds:
            raise ValueError(f"need at least one {label} seed")
        bad = [s for s in seeds if isinstance(s, bool) or not float(s).is_integer()]
        if bad:
            raise ValueError(f"{label} seeds must be integers, got {bad}")
        seeds = [int(s) for s in seeds]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{label} seeds must be distinct, got {seeds}")
        out.append(tuple(seeds))
    overlap = sorted(set(out[0]) & set(out[1]))
    if overlap:
        raise ValueError(
            f"tuning and test seeds overlap in {overlap}: the incumbent must be reported on "
            f"seeds it was not selected on (tuning {list(out[0])}, test {list(out[1])})"
        )
    return out[0], out[1]


def _score_matrix(scores: Any) -> np.ndarray:
    """``scores`` as a finite ``f64[runs, tasks]`` (a 1-D input is one task)."""
    x = np.asarray(scores, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"scores must be a non-empty [runs, tasks] matrix, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(
            "scores must be finite (score a failed run explicitly before aggregating it)"
        )
    return x


def iqm(scores: Any) -> float:
    """Interquartile mean over all entries of a ``[runs, tasks]`` matrix (or ``[runs]``).

    Equal to rliable's ``metrics.aggregate_iqm``: ``scipy.stats.trim_mean(scores, 0.25,
    axis=None)`` (``floor(n / 4)`` scores cut from each end of the sorted ``n`` scores).
    """
    return float(_trimmed_rows(_score_matrix(scores).reshape(1, -1))[0])


def _trimmed_rows(x: np.ndarray, proportion: float = 0.25) -> np.ndarray:
    """Trimmed mean of each row of ``x`` ``[R, n]``: ``int(proportion * n)`` values cut from
    each end (scipy's ``trim_mean`` rule) -> ``[R]``."""
    n = x.shape[-1]
    cut = int(proportion * n)
    return np.sort(x, axis=-1)[..., cut : n - cut].mean(axis=-1)


def stratified_bootstrap_ci(
    scores: Any,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    confidence: float = 0.95,
    reps: int = 50_000,
    seed: int = 0,
    chunk: int = 5_000,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` under rliable's stratified bootstrap.

    Args:
        scores: ``[runs, tasks]`` (or ``[runs]``: one task).
        statistic: batched statistic ``[R, runs, tasks] -> [R]`` (default: the IQM).
        confidence: interval coverage (rliable: 0.95).
        reps: bootstrap replicates (rliable's default 50 000).
        seed: seed of the numpy Generator that draws the replicates.
        chunk: replicates drawn at a time (bounds memory at ``chunk * runs * tasks``).

    Returns:
        ``(low, high)``.
    """
    x = _score_matrix(scores)
    runs, tasks = x.shape
    if statistic is None:
        statistic = lambda b: _trimmed_rows(b.reshape(b.shape[0], -1))  # noqa: E731
    rng = np.random.default_rng(seed)
    cols = np.arange(tasks)
    values = []
    for start in range(0, reps, chunk):
        r = min(chunk, reps - start)
        idx = rng.integers(0, runs, size=(r, runs, tasks))  # per task, runs drawn with replacement
        values.append(np.asarray(statistic(x[idx, cols]), np.float64))
    stats = np.concatenate(values)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarize(
    scores: Any, *, confidence: float = 0.95, reps: int = 50_000, seed: int = 0
) -> dict[str, Any]:
    """The report entry of one configuration: IQM, its interval, mean, and the scores.

    Args:
        scores: ``[runs, tasks]`` (or ``[runs]``), e.g. test seeds x environments.

    Returns:
        JSON-ready ``{"iqm", "ci": [low, high], "confidence", "mean", "scores", "reps"}``.
    """
    x = _score_matrix(scores)
    low, high = stratified_bootstrap_ci(x, confidence=confidence, reps=reps, seed=seed)
    return {
        "iqm": iqm(x),
        "ci": [low, high],
        "confidence": confidence,
        "mean": float(x.mean()),
        "scores": x.tolist(),
        "reps": int(reps),
        "interval": "stratified bootstrap over runs within each task, percentile (rliable)",
    }


__all__ = [
    "DEFAULT_TEST_SEEDS",
    "DEFAULT_TUNING_SEEDS",
    "check_seeds",
    "iqm",
    "stratified_bootstrap_ci",
    "summarize",
]
