"""Benchmark accelrl's IPPO and MAPPO: training throughput, and learned returns next to JaxMARL's.

Two parts, in one process (``--parts`` picks some):

1. **Throughput**: environment steps per second of whole update loops (``agent.run(state,
   hparams, n)``: collection, GAE, epochs of minibatch updates) of IPPO and MAPPO on
   ``MPE_simple_spread_v3`` (3 agents) and of single-agent PPO on ``CartPole-v1`` with the
   same network (64x64 tanh), ``num_envs``, ``num_steps``, epochs and minibatches, at several
   numbers of environments. Compilation is excluded (reported apart); timed calls are
   interleaved (each round times every agent once, in alternating order) so that load on a
   shared machine hits all of them alike; medians over rounds. Reported: joint env steps/s,
   agent-steps/s (joint steps/s x agents) and the ratio agent-steps/s(MARL) / env-steps/s(PPO
   on CartPole), whose target is >= 0.5.
2. **Returns**: IPPO and MAPPO with accelrl's MPE defaults (``build(env_id, "ippo")``; budget
   ``--total-timesteps`` joint steps, default the defaults' 400k) for several seeds vmapped in
   one program (:class:`~accelrl.agents.runner.Runner`), evaluated with
   :func:`~accelrl.agents.evaluation.evaluate_seeds` (greedy and sampled actions), next to the
   uniform random policy and to **JaxMARL's own IPPO** (``baselines/IPPO/ippo_ff_mpe.py`` with
   its ``config/ippo_ff_mpe.yaml``: 16 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4
   annealed, tuned for 1e7 steps) run at the *same budget*, and once more with accelrl's MPE
   hyperparameters (same script, config overridden), so implementation and hyperparameters can
   be told apart.

JaxMARL publishes its MPE results only as learning-curve figures (arXiv:2311.10090), so its
IPPO is run here instead of read off a plot: in its own virtual environment (``jaxmarl==0.2.0``
plus what the baseline script imports, created on first use under ``$ACCELRL_VENVS`` or
``~/.cache/accelrl/venvs``), as a subprocess. The script and its config are not part of
accelrl: they are taken at bench time from JaxMARL's repository at a pinned commit
(:data:`JAXMARL_COMMIT`), from a local clone or bare git directory (``--jaxmarl-repo`` or
``$JAXMARL_REPO``) or else downloaded, into the venv folder. A small driver imports the script
as a module and does what its ``main`` does (``jax.vmap(jax.jit(make_train(config)))`` over
``NUM_SEEDS`` keys split from ``SEED``, wandb disabled), counting its per-update
``wandb.log`` calls for progress output.

Return conventions. accelrl's ``episode_return`` and ``mean_return`` are the mean over agents of
each agent's episode return. JaxMARL's logged ``returned_episode_returns`` comes from its
``MPELogWrapper``, which multiplies every agent's reward by the number of agents ("as per the
on-policy codebase") and is averaged over all agents, copies and steps of an update: dividing by
the number of agents gives accelrl's convention (:func:`jaxmarl_to_mean_agent_return`). Both
frameworks' *training* returns (sampled actions, episodes that ended during the last 5% of the
budget, mean per seed) are compared like for like; accelrl's evaluations on fresh episodes are
reported beside them.

Other scenarios: ``--scenarios MPE_simple_spread_v3 MPE_simple_speaker_listener_v4`` trains
accelrl's agents on both; JaxMARL's IPPO runs only where ``--jaxmarl-scenarios`` says (default
simple_spread): its feed-forward MPE script cannot train heterogeneous agents (its ``batchify``
pads with ``pad(x[a])``, a call missing its length argument, and one action head sized for the
first agent serves all).

Results protocol: each part writes its raw results file (:data:`RESULTS`,
``docs/results/marl_<part>.json``: the command, commit, tree state, machine, load, settings,
per-seed returns, every timed round) and renders its block of ``docs/marl.md``
(``<!-- marl_<part>: begin -->``); ``--from_results PATH`` re-renders a block from its file
alone. A run from a tree with uncommitted changes is refused unless ``--allow_dirty`` (the
block then says so); ``--quick`` writes under ``--out_dir`` (default ``/tmp/bench_marl``),
never into ``docs/``.

Usage::

    python scripts/bench/bench_marl.py --quick                   # a few minutes: 64 envs;
                                                                   # 48k steps, 2 seeds
    nice -n 10 python scripts/bench/bench_marl.py \\
        --jaxmarl-repo PATH/TO/JaxMARL                              # the full benchmark
    python scripts/bench/bench_marl.py --parts throughput        # one part only
    python scripts/bench/bench_marl.py --from_results docs/results/marl_returns.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from _bench import (
    PeerVenv,
    add_results_options,
    ratio,
    render_from_results,
    results_record,
    time_fn,
    venv_root,
    write_blocks,
)

PARTS = ("throughput", "returns")
GENERATOR = "scripts/bench/bench_marl.py"
PAGE = "docs/marl.md"
RESULTS = {part: f"docs/results/marl_{part}.json" for part in PARTS}
"""Each part's raw results file; it renders the page's block of the same name (``marl_<part>``)."""
MARL_AGENTS = ("ippo", "mappo")
THROUGHPUT_ENV = "MPE_simple_spread_v3"
SINGLE_AGENT_ENV = "CartPole-v1"
TARGET_THROUGHPUT_RATIO = 0.5
TAIL_FRACTION = 0.05
"""Final training return: episodes that ended in the updates of the last 5% of the budget."""

JAXMARL_VERSION = "0.2.0"
JAXMARL_COMMIT = "c793d095618c6d3edfb5632802348f57b70a4b94"
"""The JaxMARL commit whose IPPO baseline script and config are run."""
JAXMARL_FILES = {
    "script": "baselines/IPPO/ippo_ff_mpe.py",
    "config": "baselines/IPPO/config/ippo_ff_mpe.yaml",
}
JAXMARL_RAW_URL = "https://raw.githubusercontent.com/FLAIROx/JaxMARL/{commit}/{path}"
JAXMARL_SOURCE = (
    "JaxMARL (Rutherford et al., 'JaxMARL: Multi-Agent RL Environments and Algorithms in JAX', "
    "arXiv:2311.10090), baselines/IPPO/ippo_ff_mpe.py + config/ippo_ff_mpe.yaml at commit "
    f"{JAXMARL_COMMIT[:12]} (its config: 1e7 steps), run with jaxmarl=={JAXMARL_VERSION}"
)
JAXMARL_VENV = PeerVenv(
    venv_root() / "jaxmarl-ippo",
    [[f"jaxmarl=={JAXMARL_VERSION}", "jax==0.10.2", "optax", "distrax", "hydra-core", "wandb"]],
)
"""JaxMARL plus what its baseline script imports (jax pinned to accelrl's version)."""


# ---------------------------------------------------------------------------------------------
# Pure helpers


def jaxmarl_to_mean_agent_return(logged: Any, num_agents: int) -> Any:
    """JaxMARL's MPE ``returned_episode_returns`` -> accelrl's convention.

    ``MPELogWrapper`` logs every agent's return with its rewards multiplied by the number of
    agents, and the baseline script averages the log over agents (and copies and steps); the
    mean over agents of each agent's own return is that divided by the number of agents.
    Works on numbers and arrays.
    """
    if num_agents < 1:
        raise ValueError(f"num_agents must be >= 1, got {num_agents}")
    return logged / num_agents


def tail_updates(num_updates: int, fraction: float = TAIL_FRACTION) -> int:
    """How many final updates make up the last ``fraction`` of a run (at least one)."""
    return max(1, min(num_updates, round(num_updates * fraction)))


def tail_means(curves: Any, fraction: float = TAIL_FRACTION) -> list[float]:
    """Per seed, the mean of a ``[S, U]`` training-return curve over its last ``fraction`` of
    updates (NaN entries, updates in which no episode ended, are skipped)."""
    out = []
    for row in curves:
        row = [float(x) for x in row]
        tail = [x for x in row[-tail_updates(len(row), fraction) :] if math.isfinite(x)]
        out.append(statistics.fmean(tail) if tail else math.nan)
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation (NaN for no values)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.pstdev(values)


def throughput_ratios(rows: list[dict], target: float = TARGET_THROUGHPUT_RATIO) -> list[dict]:
    """Per (MARL agent, num_envs): its agent-steps/s over single-agent PPO's env steps/s at the
    same ``num_envs``, and whether that meets ``target``."""
    ppo = {r["num_envs"]: r["steps_per_s"] for r in rows if r["agent"] == "ppo"}
    out = []
    for r in rows:
        if r["agent"] == "ppo" or r["num_envs"] not in ppo:
            continue
        value = ratio(r["agent_steps_per_s"], ppo[r["num_envs"]])
        out.append(
            {
                "agent": r["agent"],
                "num_envs": r["num_envs"],
                "ratio": value,
                "meets_target": bool(math.isfinite(value) and value >= target),
            }
        )
    return out


def jaxmarl_overrides(config: Any, hparams: Any) -> dict[str, Any]:
    """JaxMARL IPPO config entries that reproduce an accelrl (MA)PPO config and hparams."""
    return {
        "NUM_ENVS": int(config.num_envs),
        "NUM_STEPS": int(config.num_steps),
        "UPDATE_EPOCHS": int(config.update_epochs),
        "NUM_MINIBATCHES": int(config.num_minibatches),
        "ACTIVATION": str(config.activation),
        "ANNEAL_LR": bool(config.anneal_lr),
        "LR": float(hparams.learning_rate),
        "GAMMA": float(hparams.gamma),
        "GAE_LAMBDA": float(hparams.gae_lambda),
        "CLIP_EPS": float(hparams.clip_eps),
        "ENT_COEF": float(hparams.ent_coef),
        "VF_COEF": float(hparams.vf_coef),
        "MAX_GRAD_NORM": float(hparams.max_grad_norm),
    }


def steady_rate(
    total_updates: int, first_updates: int, steps_per_update: int, wall_s: float, first_s: float
) -> float:
    """Env steps per second after the first logged point (which includes compilation):
    ``(total_updates - first_updates) * steps_per_update / (wall_s - first_s)``; updates are
    counted over all seeds. NaN when nothing ran after the first point."""
    if total_updates <= first_updates or wall_s <= first_s:
        return math.nan
    return (total_updates - first_updates) * steps_per_update / (wall_s - first_s)


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:,.{digits}f}"


def _pm(mean: float, std: float, digits: int = 1) -> str:
    return "-" if not math.isfinite(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def throughput_table(rows: list[dict], ratios: list[dict]) -> str:
    """Markdown table: steps/s per agent and ``num_envs``, with the per-agent-step ratio."""
    by_ratio = {(r["agent"], r["num_envs"]): r for r in ratios}
    lines = [
        "| agent | env | num_envs | env steps/s | agent-steps/s | vs PPO CartPole "
        "(agent-steps / env steps) | compile s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["num_envs"], r["agent"])):
        q = by_ratio.get((r["agent"], r["num_envs"]))
        vs = (
            "-"
            if q is None
            else f"{q['ratio']:.3f} {'(met)' if q['meets_target'] else '(not met)'}"
        )
        lines.append(
            f"| {r['agent']} | {r['env']} | {r['num_envs']} | {_fmt(r['steps_per_s'], 0)} | "
            f"{_fmt(r['agent_steps_per_s'], 0)} | {vs} | {_fmt(r['compile_s'])} |"
        )
    return "\n".join(lines)


def returns_table(results: dict[str, dict]) -> str:
    """Markdown table of the returns part (one row per scenario and method)."""
    lines = [
        "| scenario | method | hyperparameters | joint steps | seeds | training return "
        "(last 5%) | eval greedy | eval sampled | wall s | steady steps/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, methods in results.items():
        for name, m in methods.items():
            if "error" in m:
                lines.append(f"| {scenario} | {name} | - | - | - | error: {m['error'][:80]} |||")
                continue
            lines.append(
                f"| {scenario} | {name} | {m.get('hyperparameters', '-')} | "
                f"{_fmt(m.get('env_steps'), 0)} | {len(m.get('seeds', [])) or '-'} | "
                f"{_pm(*m.get('train_return', (math.nan, math.nan)))} | "
                f"{_pm(*m.get('eval_greedy', (math.nan, math.nan)))} | "
                f"{_pm(*m.get('eval_sampled', (math.nan, math.nan)))} | "
                f"{_fmt(m.get('wall_s'), 0)} | {_fmt(m.get('steady_steps_per_s'), 0)} |"
            )
    return "\n".join(lines)


def returns_targets(results: dict[str, dict], reps: int = 10_000) -> list[dict]:
    """Per scenario with a JaxMARL run in its own config: does each accelrl agent's training
    return at least match it (higher is better)?

    The seeds of the two frameworks pair nothing, so the difference of the means over seeds
    gets an unpaired bootstrap interval (``accelrl.results.unpaired_bootstrap``, seed 0).
    The target is met unless the interval lies below zero (``verdict`` "worse"); "beats" is
    said only when it lies above. Fewer than two finite seeds on a side: not judged (not met).
    """
    from accelrl.results import unpaired_bootstrap, verdict

    out = []
    for scenario, methods in results.items():
        ref = methods.get("jaxmarl_ippo", {})
        ref_seeds = [x for x in ref.get("train_return_per_seed", []) if math.isfinite(x)]
        if not ref_seeds:
            continue
        for name in MARL_AGENTS:
            seeds = [
                x
                for x in methods.get(name, {}).get("train_return_per_seed", [])
                if math.isfinite(x)
            ]
            row = {
                "scenario": scenario,
                "agent": name,
                "accelrl": statistics.fmean(seeds) if seeds else math.nan,
                "jaxmarl_ippo": statistics.fmean(ref_seeds),
                "seeds": [len(seeds), len(ref_seeds)],
            }
            if len(seeds) < 2 or len(ref_seeds) < 2:
                row.update(diff=math.nan, low=math.nan, high=math.nan, verdict="not judged")
                row["meets_target"] = False
            else:
                diff, low, high = unpaired_bootstrap(seeds, ref_seeds, reps=reps, seed=0)
                row.update(diff=diff, low=low, high=high, verdict=verdict(low, high))
                row["meets_target"] = row["verdict"] != "worse"
            out.append(row)
    return out


def target_text(t: dict) -> str:
    """One line of the returns target: met / not met, with the interval it follows."""
    if t["verdict"] == "not judged":
        reason = f"fewer than two seeds on a side ({t['seeds'][0]} and {t['seeds'][1]})"
    else:
        reason = (
            f"accelrl {t['agent']} {t['accelrl']:.1f} vs JaxMARL IPPO {t['jaxmarl_ippo']:.1f}: "
            f"difference {t['diff']:+.1f}, 95% CI [{t['low']:+.1f}, {t['high']:+.1f}] over "
            f"{t['seeds'][0]} and {t['seeds'][1]} seeds, unpaired bootstrap: {t['verdict']}"
        )
    return (
        f"- {t['scenario']}, {t['agent']}: **{'met' if t['meets_target'] else 'not met'}** "
        f"({reason})"
    )


def _load_text(host: dict) -> str:
    start, end = host.get("load_start"), host.get("load_end")
    if not start or not end:
        return "load average not recorded"
    return f"load average {start[0]:.1f} at the start, {end[0]:.1f} at the end"


def render_throughput(record: dict) -> str:
    """The page's throughput block from a ``part == "throughput"`` results record (pure)."""
    from accelrl.results import provenance_line

    s, ratios = record["settings"], record["ratios"]
    met = [r for r in ratios if r["meets_target"]]
    missed = [f"{r['agent']} at {r['num_envs']} envs ({r['ratio']:.3f})" for r in ratios]
    missed = [m for m, r in zip(missed, ratios, strict=True) if not r["meets_target"]]
    lines = [
        f"`{record['command']}`: {s['rounds']} interleaved rounds, {s['num_steps']} steps x "
        f"num_envs per update, {s['update_epochs']} epochs x {s['num_minibatches']} minibatches, "
        f"about {s['steps_per_call']:,} joint steps per timed call; medians over rounds; "
        f"{record['wall_s']:.0f} s wall on {record['host']['cpus']} CPUs, "
        f"{_load_text(record['host'])}.",
        "",
        throughput_table(record["rows"], ratios),
        "",
        f"Target: agent-steps/s at least {record['target']} x single-agent PPO's env steps/s at "
        "the same num_envs, both measured in this run: "
        + (
            "**met** at every size measured."
            if ratios and not missed
            else f"**not met** for {', '.join(missed) or 'every size (no ratio)'}; met for "
            f"{len(met)} of {len(ratios)}."
        ),
        "",
        provenance_line(record),
    ]
    return "\n".join(lines)


def render_returns(record: dict) -> str:
    """The page's returns block from a ``part == "returns"`` results record (pure)."""
    from accelrl.results import provenance_line

    s = record["settings"]
    lines = [
        f"`{record['command']}`: {s['seeds']} seeds per method, training returns of the last "
        f"{TAIL_FRACTION:.0%} of the budget (mean ± std over seeds), evaluation on "
        f"{s['eval_episodes']} fresh episodes per seed, the uniform random policy on "
        f"{s['random_episodes']} episodes (± over episodes); {record['wall_s']:.0f} s wall, "
        f"{_load_text(record['host'])} (wall s and steps/s depend on the load; the returns do "
        "not).",
        "",
        returns_table(record["scenarios"]),
        "",
        "Target: at the same budget, accelrl's training returns at least match JaxMARL's IPPO in "
        "its own config (not shown worse by the interval):",
        *(target_text(t) for t in record["targets"]),
    ]
    if not record["targets"]:
        lines.append("- **not met**: no JaxMARL run in this results file, nothing to compare.")
    for scenario, methods in record["scenarios"].items():
        curves = {
            m.get("method", name): (name, m["curve_mean"])
            for name, m in methods.items()
            if m.get("curve_mean")
        }
        if not curves:
            continue
        lines += ["", f"Mean training-return curves on {scenario} (10 points each):", ""]
        zero_start = False
        for name, (key, curve) in curves.items():
            idx = [round(i * (len(curve) - 1) / 9) for i in range(10)] if len(curve) > 1 else [0]
            points = [_fmt(curve[i]) for i in idx]
            if key.startswith("jaxmarl") and curve[0] == 0.0:  # its log before any episode ended
                points[0], zero_start = points[0] + "*", True
            lines.append(f"- {name}: {', '.join(points)}")
        if zero_start:
            lines += ["", "\\* JaxMARL logs a return of 0 until an episode has ended (its "
                      "`LogWrapper`), so a first update whose rollout ends no episode reads 0; "
                      "the tail means above are unaffected."]  # fmt: skip
    lines += ["", provenance_line(record)]
    return "\n".join(lines)


def render(record: dict) -> dict[str, str]:
    """``{block name: markdown}`` of one results record (its part's block of docs/marl.md)."""
    part = record.get("part")
    if part not in PARTS:
        raise ValueError(f"a bench_marl results record names its part ({PARTS}), got {part!r}")
    body = render_throughput(record) if part == "throughput" else render_returns(record)
    return {f"marl_{part}": body}


def _log(msg: str) -> None:
    print(f"[bench_marl {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# 1. Throughput


def _throughput_agent(name: str, num_envs: int, args: argparse.Namespace):
    """``(agent, state, hparams, n_updates)`` of one timed configuration."""
    import jax

    from accelrl.agents import build

    env_id = SINGLE_AGENT_ENV if name == "ppo" else THROUGHPUT_ENV
    per_update = num_envs * args.num_steps
    n_updates = max(1, round(args.steps_per_call / per_update))
    overrides = dict(
        num_envs=num_envs,
        num_steps=args.num_steps,
        num_minibatches=args.num_minibatches,
        update_epochs=args.update_epochs,
        hidden_sizes=(64, 64),
        activation="tanh",
        normalize_obs=False,
        total_timesteps=n_updates * per_update,
    )
    agent, _, hparams = build(env_id, name, overrides)
    state = agent.init(jax.random.PRNGKey(0), hparams)
    return env_id, agent, state, hparams, n_updates


def run_throughput(args: argparse.Namespace) -> list[dict]:
    """Steps/s of IPPO, MAPPO and PPO-on-CartPole update loops at every ``num_envs``."""
    rows = []
    for num_envs in args.num_envs:
        cases, seconds, compile_s = {}, {}, {}
        for name in (*MARL_AGENTS, "ppo"):
            env_id, agent, state, hparams, n = _throughput_agent(name, num_envs, args)
            # compile (and one warm call) untimed
            first = time_fn(agent.run, state, hparams, n, warmup=0, repeats=1).total
            warm = time_fn(agent.run, state, hparams, n, warmup=0, repeats=1).total
            compile_s[name] = max(0.0, first - warm)
            cases[name] = (env_id, agent, state, hparams, n)
            seconds[name] = []
            _log(f"throughput num_envs={num_envs} {name}: compiled ({compile_s[name]:.0f} s)")
        names = list(cases)
        for rnd in range(args.rounds):
            for name in names if rnd % 2 == 0 else names[::-1]:
                _, agent, state, hparams, n = cases[name]
                seconds[name].append(
                    time_fn(agent.run, state, hparams, n, warmup=0, repeats=1).total
                )
        for name, (env_id, agent, _, _, n) in cases.items():
            steps = n * agent.steps_per_update
            rates = [steps / s for s in seconds[name]]
            n_agents = 1 if name == "ppo" else int(agent.env.env.num_agents)
            sps = statistics.median(rates)
            rows.append(
                {
                    "agent": name,
                    "env": env_id,
                    "num_envs": num_envs,
                    "num_steps": args.num_steps,
                    "num_agents": n_agents,
                    "updates_per_call": n,
                    "steps_per_call": steps,
                    "steps_per_s": sps,
                    "agent_steps_per_s": sps * n_agents,
                    "rates": rates,
                    "compile_s": compile_s[name],
                }
            )
            _log(f"throughput num_envs={num_envs} {name}: {sps:,.0f} env steps/s")
    return rows


# ---------------------------------------------------------------------------------------------
# 2. Returns: accelrl


def random_baseline(env_id: str, episodes: int, seed: int = 0) -> dict:
    """The uniform random policy's mean return (accelrl's convention) over ``episodes``."""
    import jax
    import numpy as np

    from accelrl.agents.evaluation import (
        evaluate_policy_episodes,
        evaluation_key,
        max_episode_steps,
        uniform_policy,
    )
    from accelrl.envs import make

    env, params = make(env_id)
    run = jax.jit(
        lambda k: evaluate_policy_episodes(
            env, params, uniform_policy(env, params), k, episodes, max_episode_steps(params)
        )["return"]
    )
    returns = np.asarray(run(evaluation_key(seed)), np.float64)
    return {
        "method": "uniform random policy",
        "episodes": episodes,
        "eval_sampled": (float(returns.mean()), float(returns.std())),
        "eval_sampled_note": "mean and std over episodes (not seeds)",
    }


def train_accelrl(env_id: str, algo: str, args: argparse.Namespace) -> dict:
    """Train ``algo`` with accelrl's defaults for ``env_id`` at the budget, seeds vmapped."""
    import numpy as np

    from accelrl.agents import build
    from accelrl.agents.evaluation import evaluate_seeds
    from accelrl.agents.runner import Runner

    overrides = {} if args.total_timesteps is None else {"total_timesteps": args.total_timesteps}
    agent, config, hparams = build(env_id, algo, overrides)
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    marks = []  # (seconds since t0, updates done) after each segment

    def progress(runner, state, _metrics):
        done = int(np.asarray(state.update_step).reshape(-1)[0])
        marks.append((time.perf_counter() - t0, done))
        ret = np.asarray(state.episode_return, np.float64)
        _log(
            f"{env_id} {algo}: {done}/{agent.num_updates} updates, "
            f"training return {np.nanmean(ret):.1f} ({time.perf_counter() - t0:.0f} s)"
        )

    runner = Runner(
        agent,
        seeds,
        hparams,
        segments=5,
        progress=False,
        checkpoint_seconds=None,
        on_segment=progress,
    )
    result = runner.train()
    wall = time.perf_counter() - t0
    curves = np.asarray(result.metrics["episode_return"], np.float64)
    greedy = evaluate_seeds(agent, result.state, seeds, args.eval_episodes, deterministic=True)
    sampled = (
        None
        if args.quick
        else evaluate_seeds(agent, result.state, seeds, args.eval_episodes, deterministic=False)
    )
    train = tail_means(curves)
    return {
        "method": f"accelrl {algo}",
        "hyperparameters": "accelrl MPE defaults",
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "hparams": {k: float(getattr(hparams, k)) for k in hparams.__dataclass_fields__},
        "seeds": seeds,
        "env_steps": agent.num_updates * agent.steps_per_update,
        "steps_per_update": agent.steps_per_update,
        "num_updates": agent.num_updates,
        "train_return_per_seed": train,
        "train_return": mean_std(train),
        "eval_greedy": mean_std(greedy["returns"]),
        "eval_sampled": mean_std(sampled["returns"] if sampled else []),
        "eval_episodes": args.eval_episodes,
        "agent_returns_greedy": greedy.get("agent_returns"),
        "wall_s": wall,
        "wall_note": "training of all seeds together, compilation included; evaluation excluded",
        "steady_steps_per_s": steady_rate(
            len(seeds) * marks[-1][1],
            len(seeds) * marks[0][1],
            agent.steps_per_update,
            marks[-1][0],
            marks[0][0],
        ),
        "steady_note": "joint env steps/s summed over seeds, after the first segment (compile)",
        "curve_mean": np.nanmean(curves, axis=0).tolist(),
    }


# ---------------------------------------------------------------------------------------------
# 2. Returns: JaxMARL's IPPO in its own venv


def fetch_jaxmarl_files(dest: Path, repo: str | None) -> dict[str, Path]:
    """JaxMARL's IPPO script and config at :data:`JAXMARL_COMMIT`, under ``dest`` (fetched
    once): from the git repository ``repo`` (a clone or a bare git directory) when given, else
    downloaded from GitHub."""
    dest = dest / JAXMARL_COMMIT[:12]
    out = {}
    for kind, rel in JAXMARL_FILES.items():
        path = dest / rel
        out[kind] = path
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if repo:
            git_dir = Path(repo) / ".git" if (Path(repo) / ".git").exists() else Path(repo)
            text = subprocess.run(
                ["git", f"--git-dir={git_dir}", "show", f"{JAXMARL_COMMIT}:{rel}"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        else:
            url = JAXMARL_RAW_URL.format(commit=JAXMARL_COMMIT, path=rel)
            with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - pinned https URL
                text = resp.read().decode()
        path.write_text(text)
    return out


# Runs inside JaxMARL's venv: argv = script, config yaml, JSON overrides. Does what the
# script's hydra ``main`` does, with wandb disabled; prints progress to stderr and one JSON line.
JAXMARL_DRIVER = r"""
import importlib.util, json, os, sys, time
os.environ["WANDB_MODE"] = "disabled"
script, config_path, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
from omegaconf import OmegaConf
config = OmegaConf.to_container(OmegaConf.load(config_path))
config.update(overrides)
spec = importlib.util.spec_from_file_location("jaxmarl_ippo_ff_mpe", script)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
import jax, jaxmarl, numpy as np, wandb
wandb.init(mode="disabled", config=config)
total = config["NUM_SEEDS"] * (config["TOTAL_TIMESTEPS"] // config["NUM_STEPS"] // config["NUM_ENVS"])
calls, t0, first, log = [0], time.perf_counter(), [None], wandb.log
def counting_log(metric, *a, **k):
    if first[0] is None:
        first[0] = (time.perf_counter() - t0, int(np.size(metric["returned_episode_returns"])))
    calls[0] += int(np.size(metric["returned_episode_returns"]))
    if calls[0] * 10 // total != (calls[0] - np.size(metric["returned_episode_returns"])) * 10 // total:
        print(f"jaxmarl: {calls[0]}/{total} seed-updates ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    return log(metric, *a, **k)
mod.wandb.log = counting_log
rngs = jax.random.split(jax.random.PRNGKey(config["SEED"]), config["NUM_SEEDS"])
train = mod.make_train(config)
out = jax.block_until_ready(jax.vmap(jax.jit(train))(rngs))
wall = time.perf_counter() - t0
curve = np.asarray(out["metrics"]["returned_episode_returns"], np.float64)
print(json.dumps({
    "curve": curve.tolist(), "wall_s": wall, "config": config,
    "first_log_s": first[0][0], "first_log_seed_updates": first[0][1],
    "num_agents": int(jaxmarl.make(config["ENV_NAME"], **config["ENV_KWARGS"]).num_agents),
    "jax": jax.__version__, "jaxmarl": getattr(jaxmarl, "__version__", None),
}))
"""


def train_jaxmarl(
    env_id: str, variant: str, overrides: dict[str, Any], budget: int, args: argparse.Namespace
) -> dict:
    """JaxMARL's IPPO for ``budget`` joint steps (``overrides`` on top of its config), returns
    in accelrl's convention."""
    files = fetch_jaxmarl_files(JAXMARL_VENV.path / "baselines", args.jaxmarl_repo)
    JAXMARL_VENV.ensure()
    config = {
        "ENV_NAME": env_id,
        "SEED": 0,
        "NUM_SEEDS": args.seeds,
        "TOTAL_TIMESTEPS": int(budget),
        **overrides,
    }
    proc = JAXMARL_VENV.popen(
        str(files["script"]),
        str(files["config"]),
        json.dumps(config),
        code=JAXMARL_DRIVER,
        env={"PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3", "WANDB_SILENT": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(files["script"].parent),
    )
    err_lines = []
    for line in proc.stderr:  # progress lines as they come
        if line.startswith("jaxmarl:"):
            _log(f"{env_id} {variant}: {line[9:].strip()}")
        else:
            err_lines.append(line)
    stdout = proc.stdout.read()
    proc.wait()
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {''.join(err_lines).strip()[-800:]}"}
    res = json.loads(lines[-1])
    import numpy as np

    cfg = res["config"]
    curves = jaxmarl_to_mean_agent_return(np.asarray(res["curve"], np.float64), res["num_agents"])
    train = tail_means(curves)
    steps_per_update = cfg["NUM_ENVS"] * cfg["NUM_STEPS"]
    num_updates = curves.shape[1]
    return {
        "method": f"JaxMARL IPPO ({variant})",
        "hyperparameters": "JaxMARL ippo_ff_mpe.yaml" if not overrides else "accelrl MPE defaults",
        "source": JAXMARL_SOURCE,
        "config": cfg,
        "seeds": list(range(args.seeds)),
        "seed_note": f"keys split from PRNGKey({cfg['SEED']}) as the script's main does",
        "env_steps": num_updates * steps_per_update,
        "steps_per_update": steps_per_update,
        "num_updates": num_updates,
        "train_return_per_seed": train,
        "train_return": mean_std(train),
        "conversion": "logged returned_episode_returns / num_agents (MPELogWrapper scales "
        "rewards by num_agents)",
        "num_agents": res["num_agents"],
        "wall_s": res["wall_s"],
        "wall_note": "training of all seeds together, compilation included",
        "steady_steps_per_s": steady_rate(
            num_updates * len(curves),
            res["first_log_seed_updates"],
            steps_per_update,
            res["wall_s"],
            res["first_log_s"],
        ),
        "steady_note": "joint env steps/s summed over seeds, after the first update's log "
        "(compile)",
        "versions": {"jax": res["jax"], "jaxmarl": res["jaxmarl"]},
        "curve_mean": np.nanmean(curves, axis=0).tolist(),
    }


def run_returns(args: argparse.Namespace) -> dict[str, dict]:
    """Every scenario: random, accelrl IPPO/MAPPO and (simple_spread) JaxMARL's IPPO."""
    from accelrl.agents.marl import MARL_DEFAULTS
    from accelrl.agents.ppo import PPOHparams

    results: dict[str, dict] = {}
    for env_id in args.scenarios:
        methods: dict[str, dict] = {"random": random_baseline(env_id, args.random_episodes)}
        results[env_id] = methods
        for algo in MARL_AGENTS:
            _log(f"{env_id} {algo}: training {args.seeds} seeds")
            methods[algo] = train_accelrl(env_id, algo, args)
        if not args.jaxmarl or env_id not in args.jaxmarl_scenarios:
            continue
        budget = methods[MARL_AGENTS[0]]["env_steps"]  # JaxMARL gets accelrl's budget
        cfg, hp = MARL_DEFAULTS["mpe"]
        ours = jaxmarl_overrides(cfg, PPOHparams(**hp))
        variants = {
            "jaxmarl_ippo": ({}, "its own config"),
            "jaxmarl_ippo_accelrl_hp": (ours, "accelrl hyperparameters"),
        }
        for key in args.jaxmarl_variants:
            overrides, label = variants[key]
            _log(f"{env_id} {key}: training {args.seeds} seeds in JaxMARL's venv")
            try:
                methods[key] = train_jaxmarl(env_id, label, overrides, budget, args)
            except (OSError, subprocess.CalledProcessError) as e:
                methods[key] = {"error": f"{type(e).__name__}: {e}"}
            if "error" in methods[key]:
                _log(f"{env_id} {key}: {methods[key]['error']}")
    return results


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke sizes: a few minutes")
    p.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    p.add_argument(
        "--num-envs",
        nargs="+",
        type=int,
        default=None,
        help="throughput: numbers of envs (default 16 64 256 1024; quick 64)",
    )
    p.add_argument("--num-steps", type=int, default=25, help="throughput: rollout length")
    p.add_argument("--num-minibatches", type=int, default=4, help="throughput: minibatches")
    p.add_argument("--update-epochs", type=int, default=4, help="throughput: epochs")
    p.add_argument(
        "--steps-per-call",
        type=int,
        default=None,
        help="throughput: joint env steps per timed call (default 60000; quick 15000)",
    )
    p.add_argument("--rounds", type=int, default=None, help="throughput: timed rounds (3; quick 2)")
    p.add_argument(
        "--scenarios", nargs="+", default=["MPE_simple_spread_v3"], help="returns: scenario ids"
    )
    p.add_argument(
        "--total-timesteps",
        type=int,
        default=None,
        help="returns: joint env steps per run (default: accelrl's MPE defaults, 400k; "
        "quick 48000)",
    )
    p.add_argument("--seeds", type=int, default=None, help="returns: seeds (default 3; quick 2)")
    p.add_argument("--eval-episodes", type=int, default=32, help="returns: episodes per seed")
    p.add_argument("--random-episodes", type=int, default=512, help="random policy episodes")
    p.add_argument("--no-jaxmarl", dest="jaxmarl", action="store_false", help="skip JaxMARL's IPPO")
    p.add_argument(
        "--jaxmarl-scenarios",
        nargs="+",
        default=["MPE_simple_spread_v3"],
        help="scenarios JaxMARL's IPPO runs on (its feed-forward script needs homogeneous agents)",
    )
    p.add_argument(
        "--jaxmarl-variants",
        nargs="+",
        default=None,
        choices=["jaxmarl_ippo", "jaxmarl_ippo_accelrl_hp"],
        help="its own config and/or accelrl's hyperparameters (default both; quick: own)",
    )
    p.add_argument(
        "--jaxmarl-repo",
        default=os.environ.get("JAXMARL_REPO"),
        help="a JaxMARL clone or bare git dir holding the pinned commit (default "
        "$JAXMARL_REPO; else the files are downloaded)",
    )
    p.add_argument("--setup-only", action="store_true", help="create JaxMARL's venv and exit")
    p.add_argument(
        "--out_dir",
        type=Path,
        default=None,
        help="where each part's marl_<part>.json goes (default docs/results, which also "
        "renders docs/marl.md's blocks; quick: /tmp/bench_marl, never docs/)",
    )
    add_results_options(p)
    args = p.parse_args(argv)
    q = args.quick
    args.num_envs = args.num_envs or ([64] if q else [16, 64, 256, 1024])
    args.steps_per_call = args.steps_per_call or (15_000 if q else 60_000)
    args.rounds = args.rounds or (2 if q else 3)
    args.seeds = args.seeds or (2 if q else 3)
    if args.total_timesteps is None and q:
        args.total_timesteps = 48_000
    args.jaxmarl_variants = args.jaxmarl_variants or (
        ["jaxmarl_ippo"] if q else ["jaxmarl_ippo", "jaxmarl_ippo_accelrl_hp"]
    )
    return args


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return {}
    if args.setup_only:
        fetch_jaxmarl_files(JAXMARL_VENV.path / "baselines", args.jaxmarl_repo)
        JAXMARL_VENV.ensure()
        return {}
    from accelrl.results import REPO, check_output, write_results

    docs = REPO / "docs" / "results"
    out_dir = args.out_dir or (Path("/tmp/bench_marl") if args.quick else docs)
    check_output(out_dir, args.quick)
    allow_dirty = args.allow_dirty or args.quick
    base = results_record(["python", GENERATOR, *argv], GENERATOR, PAGE)
    if base["clean_tree"] is False and not allow_dirty:
        raise SystemExit("the tree has uncommitted changes: commit them, or pass --allow_dirty")
    settings = {
        k: getattr(args, k)
        for k in ("num_envs", "num_steps", "num_minibatches", "update_epochs", "steps_per_call")
    }
    settings.update(rounds=args.rounds)
    records: dict[str, Any] = {}
    for part in args.parts:
        t0 = time.perf_counter()
        record: dict[str, Any] = {
            **base,
            "part": part,
            "quick": args.quick,
            "host": {"cpus": os.cpu_count(), "load_start": os.getloadavg()},
            "mean_return_convention": "mean over agents of each agent's episode return",
        }
        if part == "throughput":
            rows = run_throughput(args)
            record.update(
                settings=settings,
                rows=rows,
                ratios=throughput_ratios(rows),
                target=TARGET_THROUGHPUT_RATIO,
            )
        else:
            returns = run_returns(args)
            record.update(
                settings={
                    "scenarios": args.scenarios,
                    "total_timesteps": args.total_timesteps,
                    "seeds": args.seeds,
                    "eval_episodes": args.eval_episodes,
                    "random_episodes": args.random_episodes,
                    "jaxmarl_variants": args.jaxmarl_variants if args.jaxmarl else [],
                },
                scenarios=returns,
                targets=returns_targets(returns),
                jaxmarl_source=JAXMARL_SOURCE,
            )
        record["wall_s"] = time.perf_counter() - t0
        record["host"]["load_end"] = os.getloadavg()
        path = write_results(out_dir / f"marl_{part}.json", record, allow_dirty=allow_dirty)
        blocks = render(record)
        print("\n".join(blocks.values()), flush=True)
        print(f"wrote {path}")
        if Path(out_dir).resolve() == docs.resolve():
            write_blocks(REPO / PAGE, blocks)
            print(f"rendered {PAGE}")
        records[part] = record
    return records


if __name__ == "__main__":
    main()
