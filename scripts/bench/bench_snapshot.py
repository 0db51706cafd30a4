"""Benchmark snapshot starts (S3RL) against plain resets, with PPO and SAC students (issue 13).

For every environment the bench first builds its teacher, reproducibly from seeds, the way a
user would: a PPO run of several seeds trained longer than the students (``accelrl-train``'s
path: :func:`accelrl.agents.build`, a :class:`~accelrl.agents.Runner` writing a run folder),
then a bank from its best seed (:func:`accelrl.curricula.snapshot.collect_from_run`, what
``accelrl-snapshot`` does: 10 sampled episodes, a snapshot every 10 steps), written and read
back with :func:`save_bank`/:func:`load_bank`. Then every student (agent x variant) trains all
its seeds in one vmapped program:

* ``s3rl``: :meth:`SnapshotStarts.for_agent` (status classification with K = 6, 4 for SAC;
  trajectory truncation T = 100);
* ``snapshots``: snapshot starts without classification or truncation (``num_clusters=None``,
  ``horizon=None``: uniform over all snapshots, the env's own step limit);
* ``none``: the environment's own resets.

Both snapshot variants start every episode from the bank for the first ``snapshot_fraction`` of
the student's budget (the paper: the first 100k steps), then reset normally. Between segments
every seed is evaluated on fresh episodes from the environment's own resets (deterministic
policy, :func:`accelrl.agents.evaluation.evaluate_seeds`: keys training never draws, the same
starts for every variant and evaluation point).

Protocol (DESIGN.md, Results protocol): the settings (budgets, the MountainCarContinuous PPO
settings, the snapshot fraction) were chosen on student seeds 0-4 (the validation split); the
reported run uses the test seeds ``seed0 .. seed0 + seeds - 1`` (default 1000-1009), named on
the page before the run. Reported per env x agent x variant:

* steps to threshold: the environment steps (per seed, snapshot-phase steps included) at the
  first of ``sustain`` (3) consecutive evaluations whose mean return reaches the task's
  threshold (a sustained crossing); a seed without one counts as its budget (censored);
* the snapshot variants' total: those steps plus the teacher's own environment steps (every
  teacher seed's training and the bank's collection episodes);
* final return: the last evaluation's mean return;
* paired bootstrap intervals over seeds (seed ``s`` of a variant against seed ``s`` of
  ``none``) of the difference in total steps, of the ratio (geometric mean of per-seed ratios)
  and of the difference in final return; "beats" only when an interval excludes zero.

Usage::

    python scripts/bench/bench_snapshot.py --quick --out /tmp/bench_snapshot_quick
    nice -n 10 python scripts/bench/bench_snapshot.py     # docs/results/snapshot.json + page
    nice -n 10 python scripts/bench/bench_snapshot.py --resume  # after a kill: goes on
    python scripts/bench/bench_snapshot.py --from_results docs/results/snapshot.json

``--out`` (default ``runs/bench_snapshot``) receives ``results.json``, ``curves.png``,
``table.md`` and the teachers' run folders and banks; the full run also writes the raw results
file ``docs/results/snapshot.json`` and the generated block of ``docs/snapshot.md``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from _bench import ratio

from accelrl.results import (
    DirtyTreeError,
    check_output,
    options_command,
    paired_bootstrap,
    provenance_line,
    regenerate,
    results_record,
    target_line,
    verdict,
    write_blocks,
    write_results,
)

VARIANTS = ("s3rl", "snapshots", "none")
"""Student variants: S3RL, snapshot starts without classification/truncation, no snapshots."""
VARIANT_LABELS = {
    "s3rl": "S3RL (SC + STT)",
    "snapshots": "snapshots, no SC/STT",
    "none": "no snapshots",
}
BASELINE = "none"
ROOT = Path(__file__).resolve().parents[2]
GENERATOR = "scripts/bench/bench_snapshot.py"
PAGE = "docs/snapshot.md"
RESULTS = ROOT / "docs" / "results" / "snapshot.json"
BLOCK = "bench_snapshot"
"""The page's generated block (``<!-- bench_snapshot: begin/end -->``)."""
SUSTAIN = 3
"""Consecutive evaluations at or above the threshold that make a crossing."""
VALIDATION_SEEDS = (0, 1, 2, 3, 4)
"""Student seeds the bench's settings were chosen on (its runs before the protocol)."""
TEST_SEED0 = 1000
"""First test seed of the reported run (named on the page before the run)."""
SAC_TARGET = 0.6
"""Issue 13: S3RL reaches the threshold in at most 60% of the baseline's steps (median), SAC."""
PPO_STEPS_TOLERANCE = 1.1
"""PPO is "not hurt" when S3RL's median steps to threshold are at most 1.1x the baseline's..."""
PPO_RETURN_TOLERANCE = 0.05
"""...and its median final return is at least the baseline's minus 5% of |threshold|."""


@dataclass(frozen=True)
class Task:
    """One environment of the bench: its threshold, teacher and students."""

    threshold: float
    """Evaluation return that counts as solved (gymnasium's ``reward_threshold`` of the id)."""
    teacher: Mapping[str, Any]
    """PPO overrides of the teacher run (``total_timesteps`` included)."""
    students: Mapping[str, Mapping[str, Any]]
    """Agent name -> overrides of the student (``total_timesteps`` is the budget per seed)."""
    quick: Mapping[str, int] = field(default_factory=dict)
    """``{"teacher": steps, agent: steps}`` budgets of ``--quick``."""


# PPO on MountainCarContinuous needs a far horizon and wide initial exploration to find the
# goal at all (the registered Pendulum-style defaults, gamma 0.9, never do); with gamma 0.99
# and log-std 0 it does, so teacher and PPO student use those. SAC uses rl-zoo's MCC network
# (64x64) and the registered classic-control settings otherwise; it explores with independent
# per-step noise (no gSDE here), the hard case for reaching the goal.
MCC_PPO = {
    "gamma": 0.99,
    "log_std_init": 0.0,
    "num_envs": 16,
    "num_steps": 128,
    "num_minibatches": 8,
    "update_epochs": 4,
}
# SAC on MountainCarContinuous: rl-baselines3-zoo's tuned settings (hyperparams/sac.yml,
# "MountainCarContinuous-v0", marked "# Tuned") as far as accelrl's SAC expresses them: lr 3e-4,
# buffer 50,000, batch 512, fixed entropy coefficient 0.1, 32 env steps then 32 gradient steps
# (train_freq 32, gradient_steps 32), gamma 0.9999, tau 0.01, learning_starts 0, 64x64 networks.
# Not expressible: gSDE (use_sde) and its log_std_init -3.67; exploration here is independent
# per-step Gaussian noise. Acrobot has no tuned SAC reference (rl-zoo's SAC is continuous only);
# it keeps the registered classic_discrete defaults.
MCC_SAC_ZOO = {
    "actor_lr": 3e-4,
    "critic_lr": 3e-4,
    "alpha_lr": 3e-4,
    "buffer_size": 50_000,
    "batch_size": 512,
    "autotune_alpha": False,
    "alpha": 0.1,
    "rollout_steps": 32,
    "gradient_steps": 32,
    "gamma": 0.9999,
    "tau": 0.01,
    "learning_starts": 0,
    "actor_hidden_sizes": (64, 64),
    "critic_hidden_sizes": (64, 64),
}
TASKS: dict[str, Task] = {
    "MountainCarContinuous-v0": Task(
        threshold=90.0,
        teacher={**MCC_PPO, "total_timesteps": 122_880},
        students={
            "ppo": {**MCC_PPO, "total_timesteps": 122_880},
            "sac": {**MCC_SAC_ZOO, "total_timesteps": 20_000},
        },
        quick={"teacher": 4_096, "ppo": 4_096, "sac": 384},
    ),
    # Registered classic_discrete defaults for both agents (PPO: 16 x 256 steps, normalised
    # observations; SAC: 64x64, target entropy 0.5 log 3, learning starts 1000).
    "Acrobot-v1": Task(
        threshold=-100.0,
        teacher={"total_timesteps": 409_600},
        students={"ppo": {"total_timesteps": 307_200}, "sac": {"total_timesteps": 20_000}},
        quick={"teacher": 8_192, "ppo": 8_192, "sac": 1_200},
    ),
}


@dataclass(frozen=True)
class Args:
    """Command-line options (every budget and seed is here, so a run is reproducible)."""

    out: str = "runs/bench_snapshot"
    """Folder for results.json, curves.png, table.md, the teachers' runs and banks."""
    envs: tuple[str, ...] = tuple(TASKS)
    """Environments (keys of ``TASKS``)."""
    agents: tuple[str, ...] = ("ppo", "sac")
    """Student agents."""
    variants: tuple[str, ...] = VARIANTS
    """Student variants (``none`` is the baseline of the ratios)."""
    seeds: int = 10
    """Student seeds ``seed0 .. seed0 + seeds - 1`` (vmapped; the same for every variant)."""
    seed0: int = TEST_SEED0
    """First student seed (the test split starts at 1000; 0 gives the validation seeds)."""
    sustain: int = SUSTAIN
    """Consecutive evaluations at or above the threshold that make a crossing."""
    teacher_seeds: tuple[int, ...] = (100, 101, 102, 103)
    """Seeds of each teacher run; the bank comes from the best by evaluation return."""
    bank_seed: int = 0
    """Rollout seed of the bank collection."""
    evals: int = 20
    """Evaluation points per student run (segments of the host loop)."""
    eval_episodes: int = 10
    """Fresh episodes per seed and evaluation point (deterministic policy)."""
    snapshot_fraction: float = 0.25
    """Snapshot phase as a fraction of each student's budget (the paper: 100k steps)."""
    scale: float = 1.0
    """Multiply every student budget by this (a longer or shorter bench)."""
    quick: bool = False
    """Tiny budgets (``Task.quick``), 2 seeds, 1 teacher seed, 3 evaluation points, 4 episodes:
    checks the whole path (narrow it with ``--envs``/``--agents``), measures nothing."""
    report_only: str | None = None
    """A ``results.json`` to re-make the table, targets and plot from (into ``--out``),
    without training (``--from_results`` re-renders the page's block instead)."""
    allow_dirty: bool = False
    """Write the raw results file from a tree with uncommitted changes (the page says so)."""
    resume: bool = False
    """Continue the run whose ``results.json`` is in ``--out`` (killed or stopped part way):
    its teachers (banks checked by hash) and finished students are kept, the rest is trained.
    Refused unless it was made by the same command at the same commit."""


# ---------------------------------------------------------------------------------------------
# Pure helpers: thresholds, summaries, the table and the targets (unit-tested)


def steps_to_threshold(
    steps: Sequence[float],
    returns: np.ndarray,
    threshold: float,
    budget: float,
    sustain: int = SUSTAIN,
) -> tuple[np.ndarray, np.ndarray]:
    """Environment steps at which each seed's evaluation crosses ``threshold`` for good: the
    first of ``sustain`` consecutive evaluations that all reach it.

    Args:
        steps: ``[E]`` environment steps (per seed) of the evaluation points, increasing.
        returns: ``f[S, E]`` mean evaluation return of each seed at each point (NaN: none).
        threshold: the return to reach (``>=``).
        budget: what a seed without a sustained crossing counts as (its run's budget).
        sustain: consecutive evaluations needed (1: the first single crossing); a crossing in
            the last ``sustain - 1`` evaluations cannot be confirmed and does not count.

    Returns:
        ``(f64[S] steps, bool[S] reached)``.
    """
    steps = np.asarray(steps, np.float64)
    returns = np.atleast_2d(np.asarray(returns, np.float64))
    if returns.shape[1] != steps.shape[0]:
        raise ValueError(f"returns {returns.shape} do not match {steps.shape[0]} steps")
    if isinstance(sustain, bool) or not isinstance(sustain, int) or sustain < 1:
        raise ValueError(f"sustain must be an int >= 1, got {sustain!r}")
    hit = np.nan_to_num(returns, nan=-np.inf) >= threshold
    windows = returns.shape[1] - sustain + 1
    if windows < 1:
        return np.full(returns.shape[0], float(budget)), np.zeros(returns.shape[0], bool)
    held = np.stack([hit[:, i : i + sustain].all(axis=1) for i in range(windows)], axis=1)
    reached = held.any(axis=1)
    first = np.argmax(held, axis=1)
    return np.where(reached, steps[first], float(budget)), reached


def quartiles(values: Sequence[float]) -> dict[str, float]:
    """``{"median", "q25", "q75"}`` of ``values`` (NaN for none)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"median": math.nan, "q25": math.nan, "q75": math.nan}
    q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75)}


def summarise_run(
    steps: Sequence[float],
    returns: np.ndarray,
    threshold: float,
    budget: float,
    sustain: int = SUSTAIN,
) -> dict[str, Any]:
    """Summary of one run (``returns``: ``f[S, E]``): per-seed steps to a sustained crossing
    (:func:`steps_to_threshold`) and final return, their quartiles, how many seeds reached the
    threshold, and whether the median is censored (more than half the seeds never reached it:
    the median is the budget)."""
    to, reached = steps_to_threshold(steps, returns, threshold, budget, sustain)
    final = np.asarray(returns, np.float64)[:, -1]
    return {
        "budget": float(budget),
        "steps_to_threshold": to.tolist(),
        "reached": reached.tolist(),
        "num_reached": int(reached.sum()),
        "steps": quartiles(to),
        "censored": bool(reached.sum() <= len(reached) // 2),
        "final_return": final.tolist(),
        "final": quartiles(final),
    }


def compare(run: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """Ratio of median steps to threshold of ``run`` over ``base`` (summaries of
    :func:`summarise_run`), and what it means when medians are censored: ``"exact"``,
    ``"upper bound"`` (only the baseline's median is the budget: the true ratio is lower),
    ``"lower bound"`` (only ``run``'s is) or ``"undetermined"`` (both never reached)."""
    value = ratio(run["steps"]["median"], base["steps"]["median"])
    kind = {
        (False, False): "exact",
        (False, True): "upper bound",
        (True, False): "lower bound",
        (True, True): "undetermined",
    }[(run["censored"], base["censored"])]
    return {"ratio": value, "kind": kind}


def _fmt_steps(summary: Mapping[str, Any]) -> str:
    s = summary["steps"]
    text = f"{s['median']:,.0f} [{s['q25']:,.0f}, {s['q75']:,.0f}]"
    return ">= " + text if summary["censored"] else text


def _fmt_ratio(cmp: Mapping[str, Any] | None) -> str:
    if cmp is None:
        return "-"
    if not math.isfinite(cmp["ratio"]):
        return "n/a"
    prefix = {"exact": "", "upper bound": "<= ", "lower bound": ">= ", "undetermined": "? "}
    return f"{prefix[cmp['kind']]}{cmp['ratio']:.2f}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of result rows (``env``, ``agent``, ``variant``, ``summary`` from
    :func:`summarise_run`, ``compare`` from :func:`compare` or None for the baseline)."""
    lines = [
        "| env | agent | variant | reached | steps to threshold, median [IQR] "
        "| final return, median [IQR] | steps ratio vs none |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["summary"]
        f = s["final"]
        lines.append(
            f"| {r['env']} | {r['agent'].upper()} | {VARIANT_LABELS.get(r['variant'], r['variant'])} "
            f"| {s['num_reached']}/{len(s['reached'])} | {_fmt_steps(s)} "
            f"| {f['median']:.1f} [{f['q25']:.1f}, {f['q75']:.1f}] | {_fmt_ratio(r.get('compare'))} |"
        )
    return "\n".join(lines)


def paired_comparisons(
    runs: Sequence[Mapping[str, Any]], teachers: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each snapshot variant against ``none`` of its env and agent, paired over seeds.

    Per comparison: ``total`` (the variant's steps to threshold plus its teacher's own
    environment steps, minus the baseline's: mean difference with its 95% paired bootstrap
    interval and verdict, lower is better), ``ratio`` (geometric mean over seeds of total /
    baseline steps, with the interval of the same bootstrap on log steps), ``student`` (the
    same difference without the teacher's steps) and ``final`` (final return difference, higher
    is better). Seeds without a sustained crossing count as their budget (``reached`` says how
    many did).

    Raises:
        ValueError: a variant and its baseline ran different seeds.
    """
    by_key = {(r["env"], r["agent"], r["variant"]): r for r in runs}
    out = []
    for (env, agent, variant), r in by_key.items():
        base = by_key.get((env, agent, BASELINE))
        if variant == BASELINE or base is None:
            continue
        if list(r["seeds"]) != list(base["seeds"]):
            raise ValueError(f"{env} {agent}: {variant} seeds {r['seeds']} != {base['seeds']}")
        teacher = float(teachers.get(env, {}).get("env_steps", 0))
        student = np.asarray(r["summary"]["steps_to_threshold"], np.float64)
        b = np.asarray(base["summary"]["steps_to_threshold"], np.float64)
        total = student + teacher

        def interval(x, y, higher_is_better):
            d, lo, hi = paired_bootstrap(x, y)
            return {"diff": d, "low": lo, "high": hi,
                    "verdict": verdict(lo, hi, higher_is_better)}  # fmt: skip

        lr, llo, lhi = paired_bootstrap(np.log(total), np.log(b))
        out.append({
            "env": env, "agent": agent, "variant": variant, "teacher_steps": teacher,
            "seeds": len(b), "reached": r["summary"]["num_reached"],
            "base_reached": base["summary"]["num_reached"],
            "total": interval(total, b, False),
            "student": interval(student, b, False),
            "ratio": {"ratio": math.exp(lr), "low": math.exp(llo), "high": math.exp(lhi)},
            "final": interval(r["summary"]["final_return"], base["summary"]["final_return"], True),
        })  # fmt: skip
    return out


def check_targets(
    comparisons: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float]
) -> list[str]:
    """One target line per (env, agent) S3RL comparison (:func:`paired_comparisons`), the
    teacher's steps counted. SAC: met when the whole interval of the steps ratio lies at or
    below :data:`SAC_TARGET`. PPO "not hurt": met when the ratio's interval lies at or below
    :data:`PPO_STEPS_TOLERANCE` and the final-return difference's interval lies above
    ``-PPO_RETURN_TOLERANCE * |threshold|``."""
    lines = []
    for c in comparisons:
        if c["variant"] != "s3rl":
            continue
        rat = c["ratio"]
        text = (f"ratio {rat['ratio']:.2f} [{rat['low']:.2f}, {rat['high']:.2f}] with the "
                f"teacher's {c['teacher_steps']:,.0f} steps counted; {c['reached']}/{c['seeds']} "
                f"S3RL and {c['base_reached']}/{c['seeds']} baseline seeds crossed")  # fmt: skip
        if c["agent"] == "sac":
            met = rat["high"] <= SAC_TARGET
            name = f"{c['env']} SAC: S3RL reaches the threshold in <= {SAC_TARGET:g}x the steps"
        else:
            slack = PPO_RETURN_TOLERANCE * abs(thresholds[c["env"]])
            f = c["final"]
            met = rat["high"] <= PPO_STEPS_TOLERANCE and f["low"] >= -slack
            name = (f"{c['env']} PPO: S3RL does not hurt (steps ratio <= {PPO_STEPS_TOLERANCE:g}, "
                    f"final return within {slack:g})")  # fmt: skip
            text += f"; final return {f['diff']:+.1f} [{f['low']:+.1f}, {f['high']:+.1f}]"
        lines.append(target_line(name, met, text))
    return lines


def format_paired(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of :func:`paired_comparisons` (means over seeds, 95% paired intervals)."""
    lines = [
        "| env | agent | variant | total steps - none's (teacher counted) | ratio of total "
        "steps (geometric mean) | student steps - none's | final return - none's |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(c, digits):
        return (f"{c['diff']:+,.{digits}f} [{c['low']:+,.{digits}f}, {c['high']:+,.{digits}f}] "
                f"{c['verdict']}")  # fmt: skip

    for c in comparisons:
        r = c["ratio"]
        lines.append(
            f"| {c['env']} | {c['agent'].upper()} | {VARIANT_LABELS.get(c['variant'], c['variant'])} "
            f"| {cell(c['total'], 0)} | {r['ratio']:.2f} [{r['low']:.2f}, {r['high']:.2f}] "
            f"| {cell(c['student'], 0)} | {cell(c['final'], 1)} |"
        )
    return "\n".join(lines)


def render(results: Mapping[str, Any]) -> str:
    """The page's generated block from a raw results file: teachers, students (medians and
    IQR), the paired comparisons, the target lines and the provenance line."""
    args = results["args"]
    seeds = results["runs"][0]["seeds"] if results["runs"] else []
    lines = [
        f"Student seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} per variant), "
        f"{args['evals']} evaluation points of {args['eval_episodes']} episodes, sustained "
        f"crossing = {args['sustain']} consecutive evaluations at or above the threshold, "
        f"snapshot phase {args['snapshot_fraction']:g} of each budget, teacher seeds "
        f"{list(args['teacher_seeds'])}.",
        "",
        "| env | teacher | teacher eval return (per seed) | teacher env steps (training + "
        "bank episodes) | bank |",
        "|---|---|---|---|---|",
    ]
    for env, t in results["teachers"].items():
        rets = ", ".join(f"{x:.1f}" for x in t["eval_returns"])
        lines.append(
            f"| {env} | PPO, {t['overrides'].get('total_timesteps', 0):,} steps per seed "
            f"| {rets} | {t['env_steps']:,} | {t['num_snapshots']} snapshots from seed "
            f"{t['teacher_seed']} |"
        )
    comparisons = paired_comparisons(results["runs"], results["teachers"])
    lines += [
        "",
        "Students (steps to a sustained crossing per seed, teacher not counted; `>=`: the "
        "median is a seed's budget):",
        "",
        format_table(table_rows(results["runs"])),
        "",
        "Paired over seeds (seed s of a variant against seed s without snapshots), mean "
        "differences with 95% bootstrap intervals; lower steps are better:",
        "",
        format_paired(comparisons),
        "",
        *check_targets(comparisons, results["thresholds"]),
    ]
    if results.get("plot"):
        lines += ["", f"![S3RL benchmark curves, median and IQR over seeds]({results['plot']})"]
    lines += ["", provenance_line(results)]
    return "\n".join(lines)


def write_page(results: Mapping[str, Any], page: Path = ROOT / PAGE) -> None:
    """Replace the page's generated block with :func:`render` of ``results``."""
    write_blocks(page, {BLOCK: render(results)})


# ---------------------------------------------------------------------------------------------
# Runs


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def student_budget(task: Task, agent: str, args: Args) -> int:
    """Environment steps per seed of a student run."""
    if args.quick:
        return int(task.quick[agent])
    return int(round(task.students[agent]["total_timesteps"] * args.scale))


def build_teacher(env_id: str, task: Task, args: Args, out: Path) -> tuple[Any, dict[str, Any]]:
    """Train the teacher (a PPO run folder under ``out/teachers``) and collect, save and reload
    its bank. Returns ``(bank, record)``."""
    from accelrl.agents import RunOptions, build, make_spec, train_run
    from accelrl.curricula.snapshot import collect_from_run, load_bank, save_bank

    t0 = time.perf_counter()
    overrides = dict(task.teacher)
    seeds = list(args.teacher_seeds[:1] if args.quick else args.teacher_seeds)
    if args.quick:
        overrides["total_timesteps"] = task.quick["teacher"]
    run_dir = out / "teachers" / env_id
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh teacher each time: the bench builds it from seeds
    spec = make_spec(env_id, "ppo", overrides, seeds=tuple(seeds), run=RunOptions(segments=4))
    _, teacher_config, _ = build(env_id, "ppo", overrides)
    per_seed = teacher_config.num_updates * teacher_config.steps_per_update
    _log(
        f"{env_id}: teacher PPO, seeds {seeds}, {overrides.get('total_timesteps', 'default')} steps"
    )
    ev = train_run(spec, run_dir, progress=False).summary
    bank = collect_from_run(run_dir, seed=args.bank_seed)
    path = save_bank(bank, out / "teachers" / f"{env_id}.bank")
    bank = load_bank(path, env_id=env_id, env_kwargs={})
    record = {
        "run": str(run_dir),
        "overrides": overrides,
        "seeds": seeds,
        "eval_returns": ev["returns"],
        "teacher_seed": bank.info["teacher_seed"],
        "bank": str(path),
        "bank_hash": bank.content_hash,
        "num_snapshots": bank.size,
        "bank_episode_returns": bank.info["episode_returns"],
        "bank_episode_lengths": bank.info["episode_lengths"],
        "train_env_steps": per_seed * len(seeds),
        "env_steps": per_seed * len(seeds) + int(sum(bank.info["episode_lengths"])),
        "wall_s": time.perf_counter() - t0,
    }
    _log(
        f"{env_id}: teacher eval returns {np.round(ev['returns'], 1).tolist()}, bank of "
        f"{bank.size} snapshots from seed {record['teacher_seed']} (episode returns "
        f"{np.round(record['bank_episode_returns'], 1).tolist()}), {record['wall_s']:.0f} s"
    )
    return bank, record


def reload_teacher(env_id: str, record: Mapping[str, Any]) -> Any:
    """The bank of a teacher ``record`` kept by an earlier (resumed) run, checked against the
    hash the record holds."""
    from accelrl.curricula.snapshot import load_bank

    bank = load_bank(record["bank"], env_id=env_id, env_kwargs={})
    if bank.content_hash != record["bank_hash"]:
        raise SystemExit(
            f"bench_snapshot: {record['bank']} changed since the run began (hash "
            f"{bank.content_hash} != {record['bank_hash']}); start again without --resume"
        )
    _log(f"{env_id}: teacher and bank of {bank.size} snapshots kept from the earlier run")
    return bank


def previous_results(path: Path, results: Mapping[str, Any], args: Args) -> dict[str, Any]:
    """The partial ``results.json`` a ``--resume`` continues, refused (one line) when it is
    missing or was made by other arguments or at another commit than ``results``'s."""
    if not path.is_file():
        raise SystemExit(f"bench_snapshot: --resume: no {path} to continue")
    previous = json.loads(path.read_text())
    want = {**_jsonable(asdict(args)), "resume": False}
    had = {**previous.get("args", {}), "resume": False}
    if had != want:
        diff = sorted(k for k in want.keys() | had.keys() if want.get(k) != had.get(k))
        raise SystemExit(f"bench_snapshot: --resume: {path} was made with other {', '.join(diff)}")
    for key in ("commit", "clean_tree"):
        if previous.get(key) != results[key]:
            raise SystemExit(
                f"bench_snapshot: --resume: {path} was made at {key} {previous.get(key)!r}, "
                f"this tree has {results[key]!r}"
            )
    return previous


def make_strategy(bank: Any, agent: str, variant: str, snapshot_steps: int) -> Any:
    """The reset strategy of a variant (None: the environment's own resets)."""
    from accelrl.curricula.snapshot import SnapshotStarts

    if variant == "s3rl":
        return SnapshotStarts.for_agent(bank, agent, snapshot_steps=snapshot_steps)
    if variant == "snapshots":
        return SnapshotStarts.for_agent(
            bank, agent, num_clusters=None, horizon=None, snapshot_steps=snapshot_steps
        )
    if variant == "none":
        return None
    raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")


def run_student(
    env_id: str, task: Task, agent_name: str, variant: str, bank: Any, args: Args
) -> dict[str, Any]:
    """Train one student variant for all seeds in one vmapped program, evaluating between
    segments. Returns the run's record: ``steps`` ``[E]``, ``eval_returns`` ``[S, E]``, the
    settings and timings."""
    from accelrl.agents import Runner, build
    from accelrl.agents.evaluation import evaluate_seeds
    from accelrl.agents.runner import SegmentUpdate
    from accelrl.envs import VecEnv, make

    budget = student_budget(task, agent_name, args)
    overrides = {**task.students[agent_name], "total_timesteps": budget}
    seeds = list(range(args.seed0, args.seed0 + (2 if args.quick else args.seeds)))
    episodes = 4 if args.quick else args.eval_episodes
    evals = 3 if args.quick else args.evals
    snapshot_steps = int(args.snapshot_fraction * budget)
    t0 = time.perf_counter()
    _, plain_config, _ = build(env_id, agent_name, overrides)  # validates; gives num_envs
    strategy = make_strategy(bank, agent_name, variant, snapshot_steps)
    env, params = make(env_id)
    if strategy is not None:
        env = VecEnv(env, plain_config.num_envs, strategy)
    agent, config, hparams = build(env, agent_name, overrides, env_params=params, env_id=env_id)
    eval_s = 0.0

    def evaluate(runner: Any, state: Any, seg: dict) -> Any:
        nonlocal eval_s
        t = time.perf_counter()
        ev = evaluate_seeds(runner.agent, state, seeds, episodes, deterministic=True)
        eval_s += time.perf_counter() - t
        _log(
            f"  {env_id} {agent_name} {variant}: {ev['env_steps']:,}/{budget:,} steps, "
            f"evaluation return median {np.median(ev['returns']):.1f}"
        )
        return SegmentUpdate(metrics={"eval_return": np.asarray(ev["returns"], np.float32)})

    runner = Runner(agent, seeds, hparams, segments=evals, progress=False, on_segment=evaluate)
    result = runner.train()
    m = result.metrics
    at = np.flatnonzero(np.isfinite(m["eval_return"][0]))
    steps = m["env_steps"][0, at].astype(np.int64)
    returns = m["eval_return"][:, at].astype(np.float64)
    wall = time.perf_counter() - t0
    record = {
        "env": env_id,
        "agent": agent_name,
        "variant": variant,
        "seeds": seeds,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "strategy": None if strategy is None else strategy.describe(),
        "eval_episodes": episodes,
        "steps": steps.tolist(),
        "eval_returns": returns.tolist(),
        "final_snapshot_fraction": (
            m["snapshot_fraction"][:, -1].tolist() if "snapshot_fraction" in m else None
        ),
        "wall_s": wall,
        "train_s": result.train_seconds,
        "eval_s": eval_s,
        "summary": summarise_run(steps, returns, task.threshold, budget, args.sustain),
    }
    s = record["summary"]
    _log(
        f"{env_id} {agent_name} {variant}: reached {s['num_reached']}/{len(seeds)}, median steps "
        f"{_fmt_steps(s)}, final return {s['final']['median']:.1f}; {wall:.0f} s "
        f"({result.train_seconds:.0f} s training, {eval_s:.0f} s evaluation)"
    )
    return record


# ---------------------------------------------------------------------------------------------
# Report


def table_rows(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows for :func:`format_table`, with each variant compared to ``none`` of its env and
    agent."""
    base = {(r["env"], r["agent"]): r["summary"] for r in runs if r["variant"] == BASELINE}
    rows = []
    for r in runs:
        b = base.get((r["env"], r["agent"]))
        cmp = None if r["variant"] == BASELINE or b is None else compare(r["summary"], b)
        rows.append({**{k: r[k] for k in ("env", "agent", "variant", "summary")}, "compare": cmp})
    return rows


def plot_curves(path: Path, runs: Sequence[Mapping[str, Any]], thresholds: Mapping) -> None:
    """One panel per env x agent: median evaluation return over seeds against environment
    steps, with the interquartile band, per variant; the threshold dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = list(dict.fromkeys((r["env"], r["agent"]) for r in runs))  # in run order
    envs = list(dict.fromkeys(p[0] for p in panels))
    agents = list(dict.fromkeys(p[1] for p in panels))
    fig, axes = plt.subplots(
        len(envs), len(agents), figsize=(4.6 * len(agents), 3.0 * len(envs)), dpi=80, squeeze=False
    )
    colors = {"s3rl": "tab:red", "snapshots": "tab:orange", "none": "tab:blue"}
    for r in runs:
        ax = axes[envs.index(r["env"]), agents.index(r["agent"])]
        x = np.asarray(r["steps"])
        y = np.asarray(r["eval_returns"])
        q25, med, q75 = np.quantile(y, [0.25, 0.5, 0.75], axis=0)
        c = colors.get(r["variant"])
        ax.plot(x, med, color=c, lw=1.5, label=VARIANT_LABELS.get(r["variant"], r["variant"]))
        ax.fill_between(x, q25, q75, color=c, alpha=0.2, lw=0)
        ax.set_title(f"{r['agent'].upper()} on {r['env']} ({len(y)} seeds)", fontsize=9)
    for env, agent in panels:
        ax = axes[envs.index(env), agents.index(agent)]
        ax.axhline(thresholds[env], color="k", ls="--", lw=0.8, label="threshold")
        ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
        ax.set_xlabel("environment steps per seed", fontsize=8)
        ax.set_ylabel("evaluation return", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle("median over seeds, band: interquartile range", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(args: Args, command: str | None = None) -> dict[str, Any]:
    """Run the bench and write its outputs; returns the results (as written to JSON).
    ``command``: the command line, recorded in the results. The full run (not ``--quick``,
    not ``--report_only``) also writes :data:`RESULTS` and the page's block; a tree with
    uncommitted changes is refused before training unless ``allow_dirty``."""
    from accelrl.agents.compile_cache import enable_compilation_cache
    from accelrl.agents.reporting import write_json_atomic

    if args.report_only is not None:
        results = json.loads(Path(args.report_only).read_text())
        check_output(args.out, True)  # a re-made report never lands in docs/
        Path(args.out).mkdir(parents=True, exist_ok=True)
        report(results, Path(args.out))
        return results
    unknown = [e for e in args.envs if e not in TASKS]
    if unknown:
        raise SystemExit(f"unknown env(s) {unknown}; choose from {list(TASKS)}")
    if BASELINE not in args.variants:
        raise SystemExit(f"the variants must include the baseline {BASELINE!r}")
    if args.seeds < 2 or args.sustain < 1:
        raise SystemExit("--seeds must be at least 2 (paired intervals) and --sustain at least 1")
    try:
        check_output(args.out, args.quick)
    except ValueError as e:
        raise SystemExit(f"bench_snapshot: {e}") from None
    command = command or options_command(GENERATOR, args)  # in-process: the args themselves
    results: dict[str, Any] = results_record(command, GENERATOR, PAGE)
    if results["clean_tree"] is False and not (args.quick or args.allow_dirty):
        raise SystemExit(
            "bench_snapshot: the tree has uncommitted changes; commit first or pass --allow_dirty"
        )
    enable_compilation_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    thresholds = {e: TASKS[e].threshold for e in args.envs}
    results.update({
        "args": {**asdict(args), "resume": False},  # a resumed run is the same run
        "tasks": {e: _jsonable(asdict(TASKS[e])) for e in args.envs},
        "thresholds": thresholds,
        "validation_seeds": list(VALIDATION_SEEDS),
        "teachers": {},
        "runs": [],
        "host": {"cpus": os.cpu_count(), "platform": sys.platform},
    })  # fmt: skip
    if not args.quick:
        results["plot"] = "snapshot_curves.png"

    wall_before = 0.0
    previous: dict[str, Any] = {"teachers": {}, "runs": []}
    if args.resume:
        previous = previous_results(out / "results.json", results, args)
        wall_before = previous["wall_s"]
        results["command"], results["started_utc"] = previous["command"], previous["started_utc"]
        results["resumed_utc"] = [
            *previous.get("resumed_utc", []),
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        ]
        _log(f"resuming {out / 'results.json'}: {len(previous['runs'])} student run(s) kept")
    done = {(r["env"], r["agent"], r["variant"]): r for r in previous["runs"]}

    def write() -> None:
        results["wall_s"] = wall_before + time.perf_counter() - t0
        write_json_atomic(out / "results.json", results)  # a kill never leaves half a file

    for env_id in args.envs:
        task = TASKS[env_id]
        bank = None
        if any(v != BASELINE for v in args.variants):
            kept = previous["teachers"].get(env_id)
            if kept is not None:
                bank, results["teachers"][env_id] = reload_teacher(env_id, kept), kept
            else:
                bank, results["teachers"][env_id] = build_teacher(env_id, task, args, out)
            write()
        for agent_name in args.agents:
            for variant in args.variants:
                run = done.get((env_id, agent_name, variant))
                if run is None:
                    run = run_student(env_id, task, agent_name, variant, bank, args)
                results["runs"].append(run)
                write()
    write()
    report(results, out)
    write()
    if not args.quick:
        record = {k: v for k, v in results.items() if k not in ("table", "targets")}
        try:
            write_results(RESULTS, record, allow_dirty=args.allow_dirty)
        except DirtyTreeError as e:
            raise SystemExit(f"bench_snapshot: {e}") from None
        shutil.copy(out / "curves.png", ROOT / "docs" / results["plot"])
        write_page(record)
        _log(f"wrote {RESULTS.relative_to(ROOT)}, {PAGE} and docs/{results['plot']}")
    _log(f"done in {results['wall_s'] / 60:.1f} min; outputs in {out}")
    return results


def report(results: dict[str, Any], out: Path) -> None:
    """Add the table and the target lines to ``results``; write ``table.md`` and
    ``curves.png`` to ``out`` and print both."""
    rows = table_rows(results["runs"])
    comparisons = paired_comparisons(results["runs"], results["teachers"])
    results["table"] = format_table(rows) + "\n\n" + format_paired(comparisons)
    results["targets"] = check_targets(comparisons, results["thresholds"])
    plot_curves(out / "curves.png", results["runs"], results["thresholds"])
    (out / "table.md").write_text(results["table"] + "\n\n" + "\n".join(results["targets"]) + "\n")
    print(results["table"])
    print("\n".join(results["targets"]))


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return [_jsonable(v) for v in x]
    return x


if __name__ == "__main__":
    if not regenerate(sys.argv[1:], write_page, prog="bench_snapshot"):
        main(tyro.cli(Args, use_underscores=True), " ".join(["python", GENERATOR, *sys.argv[1:]]))
