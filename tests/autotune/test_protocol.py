"""The protocol: disjoint seeds; IQM and stratified-bootstrap intervals against rliable's
definitions (``aggregate_iqm`` = ``scipy.stats.trim_mean(x, 0.25, axis=None)``; runs resampled
with replacement within each task; percentile interval)."""

import numpy as np
import pytest
from scipy import stats

from accelrl.autotune.protocol import (
    DEFAULT_TEST_SEEDS,
    DEFAULT_TUNING_SEEDS,
    check_seeds,
    iqm,
    stratified_bootstrap_ci,
    summarize,
)


def test_default_seeds_are_eimer_et_al_and_disjoint():
    assert DEFAULT_TUNING_SEEDS == (0, 1, 2, 3, 4) and DEFAULT_TEST_SEEDS == (5, 6, 7, 8, 9)
    assert check_seeds(DEFAULT_TUNING_SEEDS, DEFAULT_TEST_SEEDS) == (
        DEFAULT_TUNING_SEEDS,
        DEFAULT_TEST_SEEDS,
    )


@pytest.mark.parametrize(
    ("tuning", "test", "message"),
    [
        ([0, 1, 2], [2, 3], r"overlap in \[2\]"),
        ([0, 0], [1], "tuning seeds must be distinct"),
        ([0], [], "at least one test seed"),
        ([0.5], [1], "integers"),
    ],
)
def test_bad_seeds_are_refused(tuning, test, message):
    with pytest.raises(ValueError, match=message):
        check_seeds(tuning, test)


def iqm_by_definition(x):
    """The middle 50% of the sorted scores when their number is divisible by 4."""
    v = np.sort(np.ravel(x))
    n = len(v)
    assert n % 4 == 0
    return v[n // 4 : 3 * n // 4].mean()


@pytest.mark.parametrize("shape", [(4, 1), (8, 3), (5, 4), (5, 1), (7, 2), (1, 1), (3, 3)])
def test_iqm_is_rliables_trim_mean(shape):
    x = np.random.default_rng(sum(shape)).normal(size=shape) ** 3  # heavy tails
    expected = stats.trim_mean(x, proportiontocut=0.25, axis=None)  # rliable.aggregate_iqm
    assert iqm(x) == pytest.approx(expected, rel=1e-12)
    if x.size % 4 == 0:
        assert iqm(x) == pytest.approx(iqm_by_definition(x), rel=1e-12)


def test_iqm_of_five_keeps_the_middle_three():
    # trim_mean cuts floor(5 / 4) = 1 from each end: no fractional weights
    assert iqm([0.0, 1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.0)


def test_a_wrong_iqm_fails_the_check():
    """The checks above can fail: a plain mean, and the fractional-weight variant, are caught."""
    x = np.random.default_rng(0).normal(size=(8, 3)) ** 3
    expected = stats.trim_mean(x, 0.25, axis=None)
    assert x.mean() != pytest.approx(expected, rel=1e-6)
    five = np.array([0.0, 1.0, 2.0, 4.0, 100.0])
    fractional = (0.75 * 1.0 + 2.0 + 0.75 * 4.0) / 2.5  # middle 50% with weighted edges
    assert iqm(five) == pytest.approx(7 / 3) and fractional != pytest.approx(iqm(five))
    with pytest.raises(AssertionError):
        assert x.mean() == pytest.approx(iqm(x), rel=1e-12)


def test_scores_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        iqm([1.0, np.nan])


def brute_stratified_bootstrap(x, reps, seed):
    """rliable's StratifiedBootstrap replicate by replicate: for every task independently,
    runs drawn with replacement; statistic = trim_mean(0.25) over the resampled matrix."""
    rng = np.random.default_rng(seed)
    runs, tasks = x.shape
    out = []
    for _ in range(reps):
        idx = rng.integers(0, runs, size=(runs, tasks))
        out.append(stats.trim_mean(x[idx, np.arange(tasks)], 0.25, axis=None))
    return np.quantile(out, [0.025, 0.975])


def test_bootstrap_interval_matches_the_replicate_by_replicate_definition():
    x = np.random.default_rng(1).normal(size=(6, 3))
    lo, hi = stratified_bootstrap_ci(x, reps=400, seed=3, chunk=400)
    np.testing.assert_allclose([lo, hi], brute_stratified_bootstrap(x, 400, 3), rtol=1e-12)
    assert lo <= iqm(x) <= hi


def test_bootstrap_is_stratified_by_task():
    # Task 0 scores ~0, task 1 scores ~1000: resampling runs within each task keeps every
    # replicate's task-1 column near 1000 (pooling the tasks' runs would not).
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(0, 1, 10), rng.normal(1000, 1, 10)], axis=1)
    lo, _ = stratified_bootstrap_ci(x, statistic=lambda b: b[:, :, 1].min(axis=1), reps=2000)
    _, hi = stratified_bootstrap_ci(x, statistic=lambda b: b[:, :, 0].max(axis=1), reps=2000)
    assert lo > 990 and hi < 10


def test_bootstrap_interval_shrinks_with_more_runs_and_is_reproducible():
    rng = np.random.default_rng(2)
    few, many = rng.normal(size=(5, 1)), rng.normal(size=(200, 1))
    w_few = np.diff(stratified_bootstrap_ci(few, reps=2000))[0]
    w_many = np.diff(stratified_bootstrap_ci(many, reps=2000))[0]
    assert w_many < w_few / 2
    assert stratified_bootstrap_ci(few, reps=500, seed=1) == stratified_bootstrap_ci(
        few, reps=500, seed=1
    )


def test_summarize_reports_iqm_interval_and_scores():
    s = summarize([[1.0], [2.0], [3.0], [4.0]], reps=1000)
    assert s["iqm"] == pytest.approx(2.5) and s["mean"] == pytest.approx(2.5)
    assert s["ci"][0] <= 2.5 <= s["ci"][1] and s["scores"] == [[1.0], [2.0], [3.0], [4.0]]
