"""Run outputs: per-seed metric files and the learning-curve plot across seeds."""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_seed_metrics(out_dir: str | Path, seeds: Sequence[int], metrics: dict[str, np.ndarray]) -> None:
    """Write ``seed_<s>/metrics.csv`` and ``seed_<s>/metrics.json`` for every seed.

    Args:
        metrics: name -> ``f32[S, U]`` (seeds x updates).
    """
    names = sorted(metrics)
    for i, seed in enumerate(seeds):
        d = Path(out_dir) / f"seed_{seed}"
        d.mkdir(parents=True, exist_ok=True)
        rows = np.stack([np.asarray(metrics[n][i], np.float64) for n in names], axis=1)
        with open(d / "metrics.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["update", *names])
            for u, row in enumerate(rows):
                w.writerow([u + 1, *(repr(float(x)) for x in row)])
        data = {n: [None if math.isnan(x) else float(x) for x in np.asarray(metrics[n][i], np.float64)] for n in names}
        (d / "metrics.json").write_text(json.dumps({"seed": int(seed), "metrics": data}))


def read_seed_metrics(out_dir: str | Path, seeds: Sequence[int]) -> dict[str, np.ndarray] | None:
    """Inverse of :func:`write_seed_metrics` (None if any seed's file is missing)."""
    per_seed = []
    for seed in seeds:
        p = Path(out_dir) / f"seed_{seed}" / "metrics.json"
        if not p.exists():
            return None
        per_seed.append(json.loads(p.read_text())["metrics"])
    names = per_seed[0].keys()
    return {
        n: np.array([[np.nan if x is None else x for x in s[n]] for s in per_seed], np.float32)
        for n in names
    }


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and a percentile-bootstrap interval, pointwise.

    Args:
        values: ``[S, N]`` (seeds x points); NaNs are ignored per point.

    Returns:
        ``(mean [N], low [N], high [N])``.
    """
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    s = values.shape[0]
    idx = rng.integers(0, s, size=(n_resamples, s))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points (before any episode)
        means = np.nanmean(values[idx], axis=1)  # [R, N]
        mean = np.nanmean(values, axis=0)
        alpha = (1 - confidence) / 2
        low = np.nanquantile(means, alpha, axis=0) if s > 1 else mean
        high = np.nanquantile(means, 1 - alpha, axis=0) if s > 1 else mean
    return mean, low, high


def plot_learning_curve(
    path: str | Path, metrics: dict[str, np.ndarray], title: str, key: str = "episode_return"
) -> None:
    """Mean episode return across seeds against environment steps, with a 95% bootstrap band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    steps = np.asarray(metrics["env_steps"][0])
    mean, low, high = bootstrap_ci(metrics[key])
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(steps, mean, lw=1.5, label=f"mean of {metrics[key].shape[0]} seeds")
    ax.fill_between(steps, low, high, alpha=0.3, label="95% bootstrap CI")
    ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["bootstrap_ci", "plot_learning_curve", "read_seed_metrics", "write_seed_metrics"]
