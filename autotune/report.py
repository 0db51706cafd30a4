"""The protocol's last step and the report: the incumbent and the default retrained on the test
seeds (:func:`finish`), ``incumbent.json``, ``report.md`` and the plots.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelrl.autotune.backend import Backend, Trial, group_trials
from accelrl.autotune.folder import INCUMBENT_FILE, REPORT_FILE, values_from_json, write_json
from accelrl.autotune.protocol import summarize
from accelrl.autotune.spaces import SearchSpace, values_to_json


def finish(
    out: Path,
    *,
    method: str,
    env_id: str,
    agent: str,
    space: SearchSpace,
    backend: Backend,
    rows: Sequence[Mapping[str, Any]],
    incumbent_row: Mapping[str, Any],
    tuning_seeds: Sequence[int],
    test_seeds: Sequence[int],
    budget: int,
    score: str,
    bootstrap_reps: int = 50_000,
    log: Callable[[str], None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The protocol's last step, shared by every tuner: retrain the incumbent (following its
    ``schedule`` when the row has one, as PBT's do) and the agent's default configuration on
    the test seeds with the same budget, evaluate both, and write ``incumbent.json``,
    ``report.md`` and the plots.

    Returns:
        The ``incumbent.json`` content.
    """
    log = log or (lambda _line: None)
    config_names, hparams_names = space.split(
        agent,
        getattr(backend, "strategy_entry", None),
        backend.env_dims() if hasattr(backend, "env_dims") else (),
    )
    inc_values = values_from_json(space, incumbent_row["config"])
    schedule = incumbent_row.get("schedule")
    inc_schedule = (
        [(int(st), values_from_json(space, v)) for st, v in schedule] if schedule else None
    )
    default_values = backend.defaults(list(space))
    entries = {"incumbent": (inc_values, inc_schedule), "default": (default_values, None)}
    tested: dict[str, dict[str, Any]] = {}
    trials = [Trial(i, v) for i, (v, _) in enumerate(entries.values())]
    for config_values, members in group_trials(trials, config_names):
        labels = [list(entries)[t.trial_id] for t in members]
        returns, errors = backend.test(
            config_values,
            [{n: t.values[n] for n in hparams_names} for t in members],
            test_seeds,
            [
                None
                if entries[lab][1] is None
                else [(st, {n: v[n] for n in hparams_names if n in v}) for st, v in entries[lab][1]]
                for lab in labels
            ],
        )
        for label, r, error in zip(labels, returns, errors, strict=True):
            if error or not np.all(np.isfinite(r)):
                tested[label] = {"error": error or "no evaluation return", "scores": None}
            else:
                tested[label] = summarize(r[:, None], reps=bootstrap_reps)

    scored = [r for r in rows if r.get("score") is not None]
    incumbent = {
        "method": method,
        "env": env_id,
        "agent": agent,
        "trial_id": incumbent_row["trial_id"],
        "config": incumbent_row["config"],
        **({"schedule": incumbent_row["schedule"]} if schedule else {}),
        "tuning": {"seeds": list(tuning_seeds), "score": incumbent_row["score"]},
        "test": {
            "seeds": list(test_seeds),
            "incumbent": tested["incumbent"],
            "default": {**tested["default"], "config": values_to_json(default_values)},
            "scores_are": (
                "mean undiscounted return of the evaluation episodes of each test seed"
                if getattr(backend, "score", "return") == "return"
                else f"the reset strategy's {backend.score!r} score of each test seed's final "
                "state (a teacher's mastered: the fraction of its fixed test set of tasks "
                "mastered)"
            )
            + ", after training on that seed with the same budget"
            + (" following the incumbent's hparams schedule" if schedule else "")
            + f" (runs x tasks = {len(test_seeds)} x 1)",
        },
        "full": backend.describe(inc_values),
        "budget": {
            "env_steps_per_configuration_and_seed": budget,
            "trials": len(rows),
            "trials_scored": len(scored),
            "tuning_env_steps": tuning_env_steps(rows),
        },
        "score": score,
        **dict(extra or {}),
    }
    write_json(out / INCUMBENT_FILE, incumbent)
    plots = write_plots(out, rows, incumbent)
    (out / REPORT_FILE).write_text(report(incumbent, rows, plots))
    log(
        f"incumbent: trial {incumbent_row['trial_id']} (score {incumbent_row['score']:.4g}); "
        f"see {out / REPORT_FILE}"
    )
    return incumbent


def tuning_env_steps(rows: Sequence[Mapping[str, Any]]) -> int:
    """Environment steps the rows' trials took, summed over trials and their seeds."""
    return int(sum(int(r.get("env_steps") or 0) * len(r.get("seeds") or [1]) for r in rows))


def anytime_curve(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Best tuning score so far against tuning environment steps spent, in the order the rows
    were written: ``(f64[R] cumulative steps, f64[R] best score so far, NaN before any)``."""
    steps = np.cumsum([int(r.get("env_steps") or 0) * len(r.get("seeds") or [1]) for r in rows])
    best, out = -np.inf, []
    for r in rows:
        if r.get("score") is not None:
            best = max(best, float(r["score"]))
        out.append(best if np.isfinite(best) else np.nan)
    return steps.astype(np.float64), np.asarray(out, np.float64)


def write_plots(
    out: Path, rows: Sequence[Mapping[str, Any]], incumbent: Mapping[str, Any]
) -> list[str]:
    """``incumbent_over_budget.png`` (best tuning score against tuning steps) and, for rows
    with schedules (PBT), ``pbt_schedules.png`` (each hparam over steps; the incumbent's
    lineage drawn bold). Returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    x, y = anytime_curve(rows)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.step(x, y, where="post", color="C0")
    ax.set_xlabel("tuning environment steps (all trials x seeds)")
    ax.set_ylabel("best tuning score so far")
    ax.set_title(f"{incumbent['method']}: {incumbent['agent']} on {incumbent['env']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "incumbent_over_budget.png", dpi=100)
    plt.close(fig)
    written.append("incumbent_over_budget.png")

    with_schedules = [r for r in rows if r.get("schedule")]
    if with_schedules:
        names = [
            n
            for n, v in with_schedules[0]["schedule"][0][1].items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if names:
            fig, axes = plt.subplots(
                len(names), 1, figsize=(5, 1.8 * len(names)), sharex=True, squeeze=False
            )
            for ax, name in zip(axes[:, 0], names, strict=True):
                for r in with_schedules:
                    bold = r["trial_id"] == incumbent["trial_id"]
                    xs = [st for st, _ in r["schedule"]] + [int(r.get("env_steps") or 0)]
                    ys = [v[name] for _, v in r["schedule"]]
                    ax.step(
                        xs, ys + ys[-1:], where="post",
                        color="C3" if bold else "0.6", lw=2 if bold else 0.7,
                        zorder=3 if bold else 1,
                    )  # fmt: skip
                ax.set_ylabel(name, fontsize=8)
                values = [v[name] for r in with_schedules for _, v in r["schedule"]]
                if min(values) > 0 and max(values) / min(values) > 50:
                    ax.set_yscale("log")
            axes[-1, 0].set_xlabel("environment steps per seed")
            axes[0, 0].set_title("PBT schedules (bold: the incumbent)", fontsize=9)
            fig.tight_layout()
            fig.savefig(out / "pbt_schedules.png", dpi=100)
            plt.close(fig)
            written.append("pbt_schedules.png")
    return written


def _fmt(entry: Mapping[str, Any]) -> str:
    if entry.get("scores") is None:
        return f"failed: {entry.get('error')}"
    lo, hi = entry["ci"]
    return f"{entry['iqm']:.4g} [{lo:.4g}, {hi:.4g}]"


def method_title(method: str) -> str:
    """The report's title of a method: the registered tuner's title (``register_tuner``), or
    the method name for one not registered in this process. Hyperband run as successive
    halving records its own method name."""
    if method == "successive_halving":
        return "Successive halving"
    from accelrl.autotune.tuners import registered_tuners, tuner

    return tuner(method).title if method in registered_tuners() else method


def report(
    incumbent: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], plots: Sequence[str] = ()
) -> str:
    """``report.md``: settings, the incumbent against the default on the test seeds, plots."""
    test = incumbent["test"]
    budget = incumbent["budget"]
    title = method_title(incumbent["method"])
    lines = [
        f"# {title}: {incumbent['agent']} on {incumbent['env']}",
        "",
        f"- trials: {len(rows)} ({budget['trials_scored']} scored), at most "
        f"{budget['env_steps_per_configuration_and_seed']} environment steps per "
        f"configuration and seed; {budget['tuning_env_steps']} tuning environment steps in all",
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
    if incumbent.get("schedule"):
        lines += [
            f"Its schedule (PBT lineage, replayed on the test seeds): "
            f"`{json.dumps(incumbent['schedule'])}`",
            "",
        ]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
