"""Run outputs: per-seed metric files and the learning-curve plot across seeds."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def write_seed_metrics(
    out_dir: str | Path,
    seeds: Sequence[int],
    metrics: dict[str, np.ndarray],
    folders: Sequence[str] | None = None,
) -> None:
    """Write ``<folder>/metrics.csv`` and ``<folder>/metrics.json`` for every member, each
    through a temporary file and a rename (a kill leaves the old file or the new one).

    Args:
        seeds: the seed of each member (recorded in the JSON).
        metrics: name -> ``f32[M, U]`` (members x updates); NaN is written as null/nan.
        folders: folder name per member (default ``seed_<s>``).
    """
    names = sorted(metrics)
    folders = [f"seed_{s}" for s in seeds] if folders is None else list(folders)
    for i, (seed, folder) in enumerate(zip(seeds, folders, strict=True)):
        d = Path(out_dir) / folder
        d.mkdir(parents=True, exist_ok=True)
        rows = np.stack([np.asarray(metrics[n][i], np.float64) for n in names], axis=1)
        buf = io.StringIO(newline="")
        w = csv.writer(buf)
        w.writerow(["update", *names])
        for u, row in enumerate(rows):
            w.writerow([u + 1, *(repr(float(x)) for x in row)])
        tmp = d / ".metrics.csv.tmp"
        tmp.write_text(buf.getvalue())
        tmp.replace(d / "metrics.csv")
        data = {
            n: [None if math.isnan(x) else float(x) for x in np.asarray(metrics[n][i], np.float64)]
            for n in names
        }
        write_json_atomic(d / "metrics.json", {"seed": int(seed), "metrics": data})


def read_seed_metrics(
    out_dir: str | Path, seeds: Sequence[int], folders: Sequence[str] | None = None
) -> dict[str, np.ndarray] | None:
    """Inverse of :func:`write_seed_metrics` (None if any member's file is missing); members
    are cut to the updates all of them have.

    Raises:
        ValueError: a member's file that is not a metrics file (empty, truncated, edited).
    """
    folders = [f"seed_{s}" for s in seeds] if folders is None else list(folders)
    per_seed = []
    for folder in folders:
        p = Path(out_dir) / folder / "metrics.json"
        if not p.exists():
            return None
        try:
            per_seed.append(json.loads(p.read_text())["metrics"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(
                f"{p} is damaged ({type(e).__name__}: {e}); restore it from a copy, or train a "
                "new run (the metrics of the updates before the checkpoint would be lost)"
            ) from None
    names = per_seed[0].keys()
    # A kill between two members' files leaves them at different lengths: keep the common part
    # (the runner writes metrics before each checkpoint, so it covers every checkpointed update).
    n_rows = min(len(s.get(n, [])) for s in per_seed for n in names)
    return {
        n: np.array(
            [[np.nan if x is None else x for x in s[n][:n_rows]] for s in per_seed], np.float32
        )
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
    """Mean episode return across seeds against environment steps, with a 95% bootstrap band
    (one seed: its curve, labelled so, without a band). Multi-agent runs with several teams
    get one curve per team (their ``team_return/<team>`` metrics)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    steps = np.asarray(metrics["env_steps"][0])
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    n_seeds = metrics[key].shape[0]
    # multi-agent runs with several teams: one curve per team ("team_return/<team>")
    teams = sorted(k for k in metrics if k.startswith("team_return/"))
    split = len(teams) > 1 and key == "episode_return"
    curves = [(k, k.split("/", 1)[1]) for k in teams] if split else [(key, None)]
    for name, label in curves:
        mean, low, high = bootstrap_ci(metrics[name])
        prefix = f"{label}: " if label else ""
        if n_seeds > 1:
            ax.plot(steps, mean, lw=1.5, label=f"{prefix}mean of {n_seeds} seeds")
            ax.fill_between(
                steps, low, high, alpha=0.3, label=None if label else "95% bootstrap CI"
            )
        else:
            ax.plot(steps, mean, lw=1.5, label=f"{prefix}1 seed")
    ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = [
    "bootstrap_ci",
    "plot_learning_curve",
    "read_seed_metrics",
    "write_json_atomic",
    "write_seed_metrics",
]
