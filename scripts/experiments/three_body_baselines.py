"""Fixed-mu baselines for ThreeBody-v0 on the paper's evaluation protocol.

Every fixed action (one time-step parameter mu for the whole episode) is run on the initial
conditions of seeds 0-99 for 300 check times (30 yr), stopping a system early when |dE|
exceeds the termination limit. Reported per policy: final |dE| and total Hermite substeps (the
compute cost), as a markdown table, a JSON file and a plot of error against compute.
``--gif`` also writes an animation of one episode.

Usage::

    python scripts/experiments/three_body_baselines.py --quick
    python scripts/experiments/three_body_baselines.py --out runs/three_body_baselines --gif
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from accelrl.envs import three_body as tb
from accelrl.envs.vec import params_in_axes
from accelrl.results import check_output


@dataclass(frozen=True)
class Args:
    """Command-line options."""

    out: str = "runs/three_body_baselines"
    """Output folder (table, JSON, plot, GIF)."""
    num_seeds: int = 100
    """Initial conditions from seeds 0 .. num_seeds-1 (``jax.random.PRNGKey(seed)``)."""
    num_checks: int = 300
    """Check times per episode (300 = the paper's 30 yr evaluation)."""
    actions: tuple[int, ...] = tuple(range(10))
    """Action indices (fixed policies) to evaluate."""
    max_substeps_per_decision: int = tb.DEFAULT_MAX_SUBSTEPS_PER_DECISION
    """Substep cap C (does not change the trajectories, only how work is batched)."""
    gif: bool = False
    """Also write an animation of one episode."""
    gif_seed: int = 0
    """Initial condition of the animation."""
    gif_action: int = 3
    """Fixed action of the animation (3 = mu 1e-3)."""
    gif_checks: int = 100
    """Check times shown in the animation."""
    quick: bool = False
    """Short run: 8 seeds, 20 check times, actions 3, 6, 9."""


def fixed_action(action: jax.Array, obs: jax.Array) -> jax.Array:
    """The policy of :func:`make_evaluator`'s default: ``action`` for every system."""
    return jnp.broadcast_to(jnp.asarray(action, jnp.int32), obs.shape[:1])


def make_evaluator(env: tb.ThreeBody, policy: Callable[[Any, jax.Array], jax.Array] = fixed_action):
    """jitted ``(state [B], done [B], policy_args, params) -> (state, done)``: step every system
    with ``policy(policy_args, obs f32[B, F]) -> actions [B, ...]`` until all are done.

    ``policy_args`` is traced, so one compiled loop serves every fixed action, every rule's
    thresholds or every set of agent parameters of the same shapes. A system is done when
    terminated or after ``params.num_checks`` check times; finished systems get a zero substep
    budget and keep their state, so they cost nothing in the lockstep loop.
    """

    def run(state, done, policy_args, params):
        cap = params.max_substeps_per_decision

        def cond(carry):
            _, done, k = carry
            return ~jnp.all(done) & (k < params.max_decisions)

        def body(carry):
            state, done, k = carry
            obs = jax.vmap(env.get_obs, in_axes=(0, None))(state, params)
            actions = policy(policy_args, obs)
            p = params.replace(max_substeps_per_decision=jnp.where(done, 0, cap))
            step = jax.vmap(env.step_env, in_axes=(None, 0, 0, params_in_axes(p, params)))
            _, new, _, term, _ = step(jax.random.PRNGKey(0), state, actions, p)

            def keep(a, b):
                return jnp.where(done.reshape(done.shape + (1,) * (a.ndim - 1)), b, a)

            new = jax.tree.map(keep, new, state)
            done = done | term | (new.checks >= params.num_checks)
            return new, done, k + 1

        state, done, _ = jax.lax.while_loop(cond, body, (state, done, jnp.int32(0)))
        return state, done

    return jax.jit(run)


def evaluate(env, params, policy_args, seeds, evaluator) -> dict:
    """Run ``evaluator``'s policy with ``policy_args`` on the initial conditions of ``seeds``.

    Returns:
        dict of numpy arrays over systems: ``energy_error`` (final |dE|), ``substeps`` (total),
        ``checks`` (check times reached), ``decisions``, ``terminated``.
    """
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    _, state = jax.vmap(env.reset_env, in_axes=(0, None))(keys, params)
    done = jnp.zeros(len(seeds), bool)
    state, _ = jax.block_until_ready(evaluator(state, done, policy_args, params))
    with jax.enable_x64(True):
        err = np.abs(np.asarray(state.energy_error, np.float64))
    return {
        "energy_error": err,
        "substeps": np.asarray(state.total_substeps, np.int64),
        "checks": np.asarray(state.checks),
        "decisions": np.asarray(state.time, np.int64),
        "terminated": np.asarray(state.blew_up) | (err > float(params.energy_error_limit)),
    }


def evaluate_fixed(env, params, action, seeds, evaluator=None) -> dict:
    """Run one fixed action on the initial conditions of ``seeds`` until every system is done
    (:func:`evaluate` with :func:`fixed_action`)."""
    evaluator = make_evaluator(env) if evaluator is None else evaluator
    return evaluate(env, params, jnp.int32(action), seeds, evaluator)


def summarize(mu: float, res: dict) -> dict:
    err = np.maximum(res["energy_error"], 1e-17)
    return {
        "mu": mu,
        "median_dE": float(np.median(err)),
        "mean_log10_dE": float(np.mean(np.log10(err))),
        "p90_dE": float(np.percentile(err, 90)),
        "terminated_frac": float(np.mean(res["terminated"])),
        "mean_substeps": float(np.mean(res["substeps"])),
        "median_substeps": float(np.median(res["substeps"])),
        "energy_error": res["energy_error"].tolist(),
        "substeps": res["substeps"].tolist(),
        "checks": res["checks"].tolist(),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| mu | median final dE | mean log10 dE | p90 dE | terminated | mean substeps | "
        "median substeps |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mu']:.2e} | {r['median_dE']:.1e} | {r['mean_log10_dE']:.2f} | "
            f"{r['p90_dE']:.1e} | {r['terminated_frac']:.0%} | {r['mean_substeps']:,.0f} | "
            f"{r['median_substeps']:,.0f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(rows):
        colour = cmap(i / max(len(rows) - 1, 1))
        err = np.maximum(np.asarray(r["energy_error"]), 1e-17)
        ax.scatter(r["substeps"], err, s=6, alpha=0.35, color=colour)
        ax.scatter(
            r["median_substeps"],
            r["median_dE"],
            s=60,
            color=colour,
            edgecolor="k",
            label=f"mu={r['mu']:.1e}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("total Hermite substeps per episode (compute)")
    ax.set_ylabel("final |dE|")
    ax.set_title("ThreeBody-v0 fixed-mu baselines (large: medians)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_gif(env: tb.ThreeBody, params: tb.EnvParams, args: Args, path: Path) -> None:
    """Animate one fixed-action episode: one frame per check time."""
    import imageio.v2 as imageio

    reset, step = jax.jit(env.reset_env), jax.jit(env.step_env)
    key = jax.random.PRNGKey(args.gif_seed)
    _, state = reset(key, params)
    states = [state]
    while int(state.checks) < args.gif_checks:
        _, state, _, term, info = step(key, state, jnp.int32(args.gif_action), params)
        if bool(info["reached_check"]) or bool(term):
            states.append(state)
        if bool(term):
            break
    frames = [env.render(states[: k + 1], params, size=320) for k in range(len(states))]
    imageio.mimsave(path, frames, duration=0.05)


def main(args: Args | None = None) -> list[dict]:
    args = tyro.cli(Args) if args is None else args
    if args.quick:
        args = replace(args, num_seeds=8, num_checks=20, actions=(3, 6, 9), gif_checks=20)
    out = check_output(args.out, args.quick)
    out.mkdir(parents=True, exist_ok=True)
    env = tb.ThreeBody()
    params = env.default_params.replace(
        num_checks=args.num_checks,
        max_decisions=10**8,
        max_substeps_per_decision=args.max_substeps_per_decision,
    )
    seeds = np.arange(args.num_seeds)
    evaluator = make_evaluator(env)
    rows = []
    for a in args.actions:
        mu = float(params.mu_values[a])
        start = time.perf_counter()
        res = evaluate_fixed(env, params, a, seeds, evaluator)
        rows.append(summarize(mu, res))
        print(
            f"mu={mu:.2e}: median dE {rows[-1]['median_dE']:.1e}, "
            f"mean substeps {rows[-1]['mean_substeps']:,.0f} ({time.perf_counter() - start:.1f}s)",
            flush=True,
        )
    md = table(rows)
    print(md)
    (out / "baselines.md").write_text(md + "\n")
    (out / "baselines.json").write_text(json.dumps(rows))
    plot(rows, out / "baselines.png")
    print(f"wrote {out / 'baselines.md'}, {out / 'baselines.json'}, {out / 'baselines.png'}")
    if args.gif:
        write_gif(env, params, args, out / "episode.gif")
        print(f"wrote {out / 'episode.gif'}")
    return rows


if __name__ == "__main__":
    main()
