"""PPO on CacheReplacement-v0 against the baselines: hit rate vs LRU and Belady, and the
robustness to prediction error (issue 28; results protocol in DESIGN.md).

Protocol, fixed before the run:

* Geometry: 32 sets x 8 ways, 64-byte lines, episodes of ``episode_length`` accesses.
* Training: PPO (``accelrl.agents.build`` + ``Runner``) on the *train* program traces
  (:func:`accelrl.envs.cache.program_traces`), one trace per copy, copy ``b`` playing trace
  ``b mod n`` with prediction noise ``NOISES[b mod 4]`` (log-normal sigma), predictions shown.
* Validation (the only choices): PPO's discount (``GAMMAS``, trained side by side in one
  vmapped run, same seed) and greedy (mode) or sampled actions: the pair with the higher mean
  hit rate on the *validation* traces over the noise levels.
* Test, once: every *test* trace, ``windows`` windows each (window keys fixed:
  ``key(10_000 + w)``), at each noise level and with the predictions hidden. Units of the paired
  bootstrap: the test traces (hit rate averaged over their windows). Baselines on the same
  windows: Belady, LRU, LFU, FIFO, random, S3-FIFO (pure Python) and "predicted" (evict the
  largest predicted next arrival: Belady with the noisy predictions).

Writes ``docs/results/cache_replacement.json`` and regenerates the results section of
``docs/envs/cache_replacement.md`` from it (``--from_results`` regenerates from the JSON alone).

    python scripts/bench/cache_learning.py --quick
    python scripts/bench/cache_learning.py
    python scripts/bench/cache_learning.py --from_results docs/results/cache_replacement.json
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from accelrl.agents import Runner, build
from accelrl.envs.cache import (
    CacheReplacement,
    make_policy,
    program_traces,
    rollout,
    s3fifo,
)
from accelrl.results import (
    check_output,
    options_command,
    paired_bootstrap,
    provenance_line,
    regenerate,
    results_record,
    verdict,
    write_blocks,
    write_results,
)

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "docs" / "envs" / "cache_replacement.md"
NOISES = (0.0, 0.5, 1.0, 2.0)
"""Prediction-noise levels (log-normal sigma) of training copies and of the evaluation."""
RULES = ("belady", "lru", "lfu", "fifo", "random")
GAMMAS = (0.9, 0.99)
"""PPO discount factors trained side by side (one vmapped run); validation picks one."""
BLOCK = "cache_learning"
"""The card's generated block (``<!-- cache_learning: begin/end -->``)."""


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of cache_learning."""

    seed: int = 0
    """Training seed (the same for every gamma)."""
    total_timesteps: int = 400_000
    """PPO environment steps (eviction decisions) in all."""
    num_envs: int = 64
    """Training copies."""
    episode_length: int = 1024
    """Accesses per episode window."""
    windows: int = 4
    """Evaluation windows per validation/test trace."""
    out: Path = REPO / "docs" / "results" / "cache_replacement.json"
    """Raw results file (--quick: ``runs/cache_learning_quick.json`` in place of this default;
    a --quick run refuses any path inside docs/)."""
    quick: bool = False
    """Smoke run: 20k steps, 8 copies, 256-access windows, 1 window, 4 traces per split."""
    allow_dirty: bool = False
    """Write the results file from a tree with uncommitted changes."""


def env_for(args: Args) -> CacheReplacement:
    return CacheReplacement(
        episode_length=args.episode_length, max_trace_len=max(4 * args.episode_length, 4096)
    )


def split_traces(split: str, args: Args) -> list:
    traces = program_traces(split, args.episode_length)
    return traces[:2] + traces[-2:] if args.quick else traces


def player(env, factory):
    """Jitted ``play(extra, params[B], keys[B]) -> (final states, hits[B])`` for a policy
    ``factory(extra, params) -> policy(key, state)`` (``extra``: the agent state, or None)."""

    def one(extra, p, k):
        return rollout(env, p, factory(extra, p), k)

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))


def evaluate(env, traces, players, noises, windows, hidden=True):
    """Hit rates ``{policy: {noise label: [n_traces] mean over windows}}`` (+ ``"s3fifo"``).

    ``players`` maps a name to ``(play, extra, noise_dependent)`` (see :func:`player`); rules
    that ignore predictions run once (label ``"any"``); ``"predicted"`` is not run with the
    predictions hidden (it reads them from the state).
    """
    n = len(traces)
    keys = jnp.stack([jax.random.key(10_000 + w) for w in range(windows)] * n)
    out: dict[str, dict[str, list[float]]] = {}
    labels = [(f"{s:g}", s, True) for s in noises] + ([("hidden", 0.0, False)] if hidden else [])
    for label, sigma, shown in labels:
        params = env.params_for_traces(traces, pred_noise=sigma, predictions=shown)
        params = jax.tree.map(lambda x: jnp.repeat(x, windows, axis=0), params)
        for name, (play, extra, noise_dependent) in players.items():
            if (not noise_dependent and label != labels[0][0]) or (
                name == "predicted" and not shown
            ):
                continue
            state, hits = play(extra, params, keys)
            rate = (np.asarray(hits).reshape(n, windows) / env.episode_length).mean(1)
            out.setdefault(name, {})[label if noise_dependent else "any"] = rate.tolist()
            if name == "lru":  # S3-FIFO in pure Python on the same windows
                lines = np.asarray(state.line)
                s3 = [s3fifo(w, env.num_sets, env.ways) / env.episode_length for w in lines]
                out["s3fifo"] = {"any": np.reshape(s3, (n, windows)).mean(1).tolist()}
    return out


def main(args: Args) -> None:
    command = options_command("scripts/bench/cache_learning.py", args)  # before quick sizes
    if args.quick and args.out == Args.out:
        args = dataclasses.replace(args, out=REPO / "runs" / "cache_learning_quick.json")
    check_output(args.out, args.quick)
    if args.quick:
        args = dataclasses.replace(
            args, total_timesteps=20_000, num_envs=8, episode_length=256, windows=1
        )
    record = results_record(
        command, "scripts/bench/cache_learning.py", "docs/envs/cache_replacement.md"
    )
    env = env_for(args)
    train = split_traces("train", args)
    n = len(train)
    params = jax.tree.map(
        lambda *x: jnp.stack(x),
        *(
            env.params_for_trace(train[b % n], pred_noise=NOISES[b % len(NOISES)])
            for b in range(args.num_envs)
        ),
    )
    overrides = {
        "num_envs": args.num_envs,
        "total_timesteps": args.total_timesteps,
        "normalize_obs": False,
        "num_steps": 64,
    }
    agent, config, hparams = build(env, "ppo", overrides, env_params=params)
    settings = [hparams.replace(gamma=jnp.float32(g)) for g in GAMMAS]
    start = time.time()
    result = Runner(agent, [args.seed], settings, progress=False).train()
    train_seconds = time.time() - start
    returns = result.metrics.get("episode_return")

    def agent_factory(deterministic):
        def factory(agent_state, p):
            def policy(key, st):
                obs = env.get_obs(st, p)[None]
                return agent.act(agent_state, obs, key, deterministic=deterministic)[0]

            return policy

        return factory

    greedy, sampled = player(env, agent_factory(True)), player(env, agent_factory(False))

    # VALIDATION: gamma and greedy/sampled actions
    start = time.time()
    val_traces = split_traces("validation", args)
    candidates = {}
    for m, gamma in enumerate(GAMMAS):
        member = jax.tree.map(lambda x, m=m: x[m], result.state)
        candidates[f"gamma {gamma:g}, greedy"] = (greedy, member, True)
        candidates[f"gamma {gamma:g}, sampled"] = (sampled, member, True)
    val = evaluate(env, val_traces, candidates, NOISES, args.windows, hidden=False)
    val_means = {k: float(np.mean([np.mean(v) for v in val[k].values()])) for k in val}
    choice = max(val_means, key=val_means.get)

    # TEST, once
    test_traces = split_traces("test", args)
    players = {"agent": candidates[choice]}
    players["predicted"] = (player(env, lambda _, p: make_policy(env, "predicted")), None, True)
    for r in RULES:
        players[r] = (player(env, lambda _, p, r=r: make_policy(env, r)), None, False)
    test = evaluate(env, test_traces, players, NOISES, args.windows)
    eval_seconds = time.time() - start

    comparisons = {}
    for label, agent_rates in test["agent"].items():
        for base in ("lru", "belady", "s3fifo"):
            diff, low, high = paired_bootstrap(agent_rates, test[base]["any"], seed=0)
            comparisons[f"{label}|{base}"] = {
                "diff": diff,
                "low": low,
                "high": high,
                "verdict": verdict(low, high),
            }
        if label not in test["predicted"]:
            continue
        pdiff = paired_bootstrap(agent_rates, test["predicted"][label], seed=0)
        comparisons[f"{label}|predicted"] = {
            "diff": pdiff[0],
            "low": pdiff[1],
            "high": pdiff[2],
            "verdict": verdict(pdiff[1], pdiff[2]),
        }
    record.update(
        {
            "seeds": {
                "train": [args.seed],
                "window_keys": [10_000 + w for w in range(args.windows)],
            },
            "budgets": {
                "total_timesteps": args.total_timesteps,
                "num_envs": args.num_envs,
                "ppo": {k: _plain(v) for k, v in dataclasses.asdict(config).items()},
                "hparams": {k: float(v) for k, v in dataclasses.asdict(hparams).items()},
                "gammas": list(GAMMAS),
            },
            "geometry": {
                "num_sets": env.num_sets,
                "ways": env.ways,
                "line_size": env.line_size,
                "episode_length": env.episode_length,
            },
            "noises": list(NOISES),
            "train_traces": [t.name for t in train],
            "test_traces": [t.name for t in test_traces],
            "validation": {"means": val_means, "choice": choice},
            "test": test,
            "comparisons": comparisons,
            "train_return_last": None if returns is None else float(np.nanmean(returns[0, -5:])),
            "wall_seconds": {"train": train_seconds, "evaluate": eval_seconds},
            "quick": args.quick,
        }
    )
    write_results(args.out, record, allow_dirty=args.allow_dirty or args.quick)
    print(table(record))
    if not args.quick:
        render(record)


def _plain(v):
    return v if isinstance(v, int | float | str | bool | type(None)) else str(v)


def table(record: dict) -> str:
    """The card's results section (Markdown) from a raw results record."""
    test, comp = record["test"], record["comparisons"]
    labels = list(test["agent"])
    n = len(record["test_traces"])
    mean = lambda xs: 100 * float(np.mean(xs))  # noqa: E731
    lines = [
        f"Test split: {n} program traces x {len(record['seeds']['window_keys'])} windows of "
        f"{record['geometry']['episode_length']} accesses; hit rate in % (mean over traces).",
        "",
        "| policy | "
        + " | ".join(f"noise {x}" if x != "hidden" else "predictions hidden" for x in labels)
        + " |",
        "| --- |" + " --- |" * len(labels),
    ]
    lines.append(
        "| PPO agent | " + " | ".join(f"{mean(test['agent'][x]):.1f}" for x in labels) + " |"
    )
    lines.append(
        "| predicted (Belady on predictions) | "
        + " | ".join(
            f"{mean(test['predicted'][x]):.1f}" if x in test["predicted"] else "-" for x in labels
        )
        + " |"
    )
    for base in ("belady", "lru", "lfu", "fifo", "random", "s3fifo"):
        lines.append(
            f"| {base} | " + " | ".join(f"{mean(test[base]['any']):.1f}" for _ in labels) + " |"
        )
    lines += [
        "",
        "Paired bootstrap (units: test traces) of the agent's hit rate minus each baseline's, percentage points, 95% interval:",
        "",
    ]
    lines.append("| noise | vs LRU | vs Belady | vs S3-FIFO | vs predicted |")
    lines.append("| --- | --- | --- | --- | --- |")
    for x in labels:
        cells = []
        for base in ("lru", "belady", "s3fifo", "predicted"):
            c = comp.get(f"{x}|{base}")
            if c is None:
                cells.append("-")
                continue
            cells.append(
                f"{100 * c['diff']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}] {c['verdict']}"
            )
        lines.append(f"| {x} | " + " | ".join(cells) + " |")
    beats = [x for x in labels if comp[f"{x}|lru"]["verdict"] == "beats"]
    spread = [mean(test["agent"][x]) for x in labels]
    if beats:
        answer = f"Yes, at {', '.join(beats)} (of {', '.join(labels)})"
    else:
        answer = "No, at no noise level and not with the predictions hidden"
    lines += [
        "",
        f"**Does the agent beat LRU on the test split?** {answer}. The agent's hit rate spans "
        f"{min(spread):.1f}-{max(spread):.1f}% over the noise levels (predictions hidden "
        f"included); Belady on the predictions spans "
        f"{min(mean(v) for v in test['predicted'].values()):.1f}-"
        f"{max(mean(v) for v in test['predicted'].values()):.1f}%.",
    ]
    wall = record["wall_seconds"]
    lines += [
        "",
        f"Training: PPO, {record['budgets']['total_timesteps']} decisions, {record['budgets']['num_envs']} copies, gamma in {record['budgets']['gammas']} side by side, seed {record['seeds']['train'][0]}, {wall['train']:.0f} s; evaluation {wall['evaluate']:.0f} s; validation chose {record['validation']['choice']} actions (mean validation hit rates {', '.join(f'{k} {100 * v:.1f}%' for k, v in record['validation']['means'].items())}). Machine: {_machine(record)}, shared with other jobs.",
        "",
        provenance_line(record),
    ]
    return "\n".join(lines)


def _machine(record: dict) -> str:
    m = record["machine"]
    return f"{m.get('cpu_count')} CPU cores ({m.get('machine')}), JAX backend {m.get('backend')}"


def render(record: dict, card: Path = CARD) -> None:
    """Replace the card's generated block with :func:`table`."""
    write_blocks(card, {BLOCK: table(record)})


if __name__ == "__main__":
    if not regenerate(sys.argv[1:], render, prog="cache_learning"):
        main(tyro.cli(Args))
