"""Hand-written mu rules against fixed mu on ThreeBody's evaluation protocol.

Is there room for an adaptive time-step controller on the paper's protocol at all? This script
evaluates simple state-feedback rules that switch between two of the env's mu values, on the
same systems (``reset_env(PRNGKey(i))``, i = 0..N-1, 300 check times, the fast default's
decision process) as ``three_body_experiment`` and compares each with every fixed mu by the
same dominance test (paired bootstrap intervals over systems of the mean log10 |dE| and log10
substeps differences, both below zero: dominates; both above: dominated):

* distance rules: mu_a while the closest pair is farther than ``d0`` au, else mu_b;
* error rules: mu_a while |dE| is below ``10 ** -thr`` (or still 0), else mu_b.

One compiled loop serves every rule (the rule's indices and threshold are traced).

Usage::

    python scripts/experiments/three_body_rules.py --out runs/three_body_rules
    python scripts/experiments/three_body_rules.py --quick
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from three_body_baselines import evaluate, make_evaluator
from three_body_experiment import (
    dominance,
    eval_params,
    fixed_baselines,
    mu_label,
    paired_comparisons,
    summarize,
)

from accelrl.envs import three_body as tb
from accelrl.results import check_output

DISTANCE, ERROR = 0, 1


@dataclass(frozen=True)
class Args:
    """Command-line options."""

    out: str = "runs/three_body_rules"
    """Output folder: ``rules.md``, ``rules.json`` and the cached fixed-mu baselines."""
    num_systems: int = 100
    """Initial conditions from seeds 0 .. num_systems-1."""
    num_checks: int = 300
    """Check times per episode (300 = the paper's evaluation)."""
    far_actions: tuple[int, ...] = (5, 6, 7)
    """Distance rules: action while the bodies are apart (5, 6, 7 = mu 4.64e-3, 1e-2, 2.15e-2)."""
    near_actions: tuple[int, ...] = (3, 4, 5, 6, 7, 8)
    """Distance rules: action during close approaches."""
    distances: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """Distance rules: thresholds d0 on the closest pair's separation, au."""
    ok_actions: tuple[int, ...] = (6, 7)
    """Error rules: action while |dE| is small."""
    bad_actions: tuple[int, ...] = (4, 5, 6)
    """Error rules: action once |dE| grew."""
    error_exponents: tuple[float, ...] = (8.0, 9.0, 10.0)
    """Error rules: thresholds thr (|dE| = 10 ** -thr)."""
    quick: bool = False
    """Smoke run: 6 systems, 10 check times, 2 rules of each kind."""


def rule_policy(args: jax.Array, obs: jax.Array) -> jax.Array:
    """``args = (kind, action_a, action_b, threshold)`` (f32[4]) -> actions ``i32[B]``.

    Observations are ThreeBody's: positions / 10 au (9), velocities (9), -log10 |dE| (0 while
    |dE| = 0)."""
    kind, a, b, threshold = args[0], args[1], args[2], args[3]
    pos = obs[:, :9].reshape(-1, 3, 3) * 10.0
    pairs = ((0, 1), (0, 2), (1, 2))
    closest = jnp.min(
        jnp.stack([jnp.linalg.norm(pos[:, i] - pos[:, j], axis=-1) for i, j in pairs], -1), -1
    )
    accuracy = obs[:, -1]
    quiet = jnp.where(
        kind == DISTANCE, closest > threshold, (accuracy == 0) | (accuracy > threshold)
    )
    return jnp.where(quiet, a, b).astype(jnp.int32)


def rules(args: Args) -> list[tuple[int, int, int, float]]:
    """``(kind, action_a, action_b, threshold)`` of every rule in the grid."""
    grid = [
        (DISTANCE, a, b, d)
        for a in args.far_actions
        for b in args.near_actions
        for d in args.distances
        if a != b
    ]
    grid += [
        (ERROR, a, b, t)
        for a in args.ok_actions
        for b in args.bad_actions
        for t in args.error_exponents
        if a != b
    ]
    return grid


def describe(rule: tuple[int, int, int, float], mu_values: np.ndarray) -> str:
    kind, a, b, threshold = rule
    if kind == DISTANCE:
        return f"{mu_label(mu_values[a])} apart, {mu_label(mu_values[b])} within {threshold:g} au"
    return f"{mu_label(mu_values[a])}, {mu_label(mu_values[b])} once \\|dE\\| > 1e-{threshold:g}"


def main(args: Args | None = None) -> dict:
    args = tyro.cli(Args) if args is None else args
    if args.quick:
        args = replace(
            args,
            num_systems=6,
            num_checks=10,
            far_actions=(6,),
            near_actions=(5, 7),
            distances=(2.0,),
            ok_actions=(6,),
            bad_actions=(5,),
            error_exponents=(9.0, 10.0),
        )
    out = check_output(args.out, args.quick)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    fixed_raw = fixed_baselines(out, args.num_systems, args.num_checks)
    fixed = [
        summarize(r["label"], r["energy_error"], r["substeps"], r["terminated"]) for r in fixed_raw
    ]
    env = tb.ThreeBody()
    params = eval_params("default", args.num_checks)
    mu_values = np.asarray(params.mu_values, np.float64)
    evaluator = make_evaluator(env, rule_policy)
    seeds = np.arange(args.num_systems)
    rows = []
    for rule in rules(args):
        res = evaluate(env, params, jnp.asarray(rule, jnp.float32), seeds, evaluator)
        row = summarize(
            describe(rule, mu_values), *(res[k] for k in ("energy_error", "substeps", "terminated"))
        )
        row["dominated_by"], row["dominates"] = dominance(paired_comparisons(res, fixed_raw))
        row["rule"] = list(rule)
        rows.append(row)
        print(
            f"{row['label']}: median |dE| {row['median_dE']:.3g}, "
            f"substeps {row['median_substeps']:,.0f}, dominates {row['dominates'] or '-'}",
            flush=True,
        )
    lines = [
        f"{len(rows)} rules on {args.num_systems} systems x {args.num_checks} check times; "
        f"{sum(bool(r['dominates']) for r in rows)} dominate a fixed mu, "
        f"{sum(not r['dominated_by'] for r in rows)} are dominated by none.",
        "",
        "| rule | median \\|dE\\| | median substeps | dominated by | dominates |",
        "|---|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['median_dE']:.3g} | {r['median_substeps']:,.0f} | "
            f"{', '.join(r['dominated_by']) or '-'} | {', '.join(r['dominates']) or '-'} |"
        )
    md = "\n".join(lines)
    (out / "rules.md").write_text(md + "\n")
    result = {"rules": rows, "fixed": fixed, "seconds": time.perf_counter() - start}
    (out / "rules.json").write_text(json.dumps(result))
    print(md)
    print(f"wrote {out / 'rules.md'} and {out / 'rules.json'} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
