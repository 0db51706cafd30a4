"""The learned memory mapper: PPO (flat MLP vs set network) and PPO + Gumbel MuZero search.

Protocol (issue 15, memory-mapping half):

* One game for every program: ``MallocGame`` in ``"xla"`` offering order (XLA's
  memory-boundedness order, in which the game's best-fit policy reproduces ``xla_best_fit``),
  K candidate offsets, ``max_buffers``/``max_live`` sized to cover the training, held-out and
  MiniMalloc programs, and the set observation (``set_size`` nearby placed buffers).
* PPO with action masking trains on the training programs, one program per copy
  (``MallocGame.for_workloads``), once with the flat MLP and once with the set network
  (:class:`accelrl.agents.networks.SetActorCritic`), same seed and budget, gamma = 1 (the
  return is the benefit fraction, so the value is the benefit still to come).
* Evaluation on the held-out programs (models never seen in training): the greedy policy
  (mode), and Gumbel MuZero search (:class:`accelrl.agents.search.GumbelSearch`) with the game
  as its model and the PPO network as prior and value. Every placement is checked by
  ``validate`` and scored by it.
* Baselines per program: ``xla_best_fit``, ``first_fit`` and CP-SAT (``optimal``, objective
  and bound after ``cpsat_seconds``). On MiniMalloc's 11 instances: fraction of bytes placed.

Writes a markdown report (tables, settings, wall times) and a summary plot.

    python scripts/experiments/malloc_experiment.py --quick
    python scripts/experiments/malloc_experiment.py            # the full run (docs/malloc_experiment.md)
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import tyro

from accelrl.agents.evaluation import evaluation_key, training_key
from accelrl.agents.ppo import PPOConfig, make_ppo
from accelrl.agents.search import GumbelSearch, SearchConfig
from accelrl.envs.malloc import (
    MallocGame,
    Workload,
    best_fit_policy,
    capacity_lp_bound,
    first_fit,
    load_dataset,
    offsets_in_bytes,
    optimal,
    placed_bytes_fraction,
    required_slots,
    validate,
    xla_best_fit,
)
from accelrl.envs.malloc.game import rollout

REPO = Path(__file__).resolve().parents[2]
MINIMALLOC_DIR = REPO.parent / "shared" / "data" / "minimalloc"
MINIMALLOC_CAPACITY = 1_048_576
"""Capacity (bytes) of MiniMalloc's challenging instances (the number in their file names)."""
NETWORKS = ("mlp", "set")


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of malloc_experiment."""

    quick: bool = False
    """Smoke run: small programs only (train <= 70 buffers, held-out <= 60, MiniMalloc A and
    B), 2 PPO updates, 4 simulations, 1 s of CP-SAT."""
    seed: int = 0
    """Training seed (``training_key(seed)``); evaluation uses ``evaluation_key(seed)``."""
    total_timesteps: int = 1_536_000
    """PPO environment steps per network (over all copies)."""
    num_steps: int = 64
    """PPO rollout length per copy and update."""
    num_minibatches: int = 4
    """PPO minibatches per epoch."""
    update_epochs: int = 4
    """PPO epochs per update."""
    learning_rate: float = 3e-4
    """Adam step size (annealed linearly to 0)."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    gamma: float = 1.0
    """PPO discount (1: the value is the normalised benefit still to come)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """MLP widths (the flat network, and the set network's context torso and critic)."""
    set_embed_dim: int = 32
    """Embedding width of the set network."""
    set_heads: int = 4
    """Attention heads of the set network's pooling."""
    set_size: int = 16
    """M, placed buffers in the set observation."""
    num_candidates: int = 8
    """K, candidate offsets (actions 1..K)."""
    capacity_fraction: float = 0.5
    """Fast memory as a fraction of each program's peak live bytes (dataset programs)."""
    alignment: int = 64
    """Bytes per address unit."""
    num_simulations: int = 32
    """Gumbel MuZero simulations per decision."""
    gumbel_scale: float = 0.0
    """Root Gumbel noise of the search (0: deterministic, the evaluation setting)."""
    search_networks: tuple[str, ...] = NETWORKS
    """Networks used as the search's prior and value."""
    cpsat_seconds: float = 10.0
    """CP-SAT time limit per held-out program (one worker)."""
    cpsat_max_buffers: int = 300
    """Held-out programs with more buffers get only the bounds (CP-SAT finds no solution to
    the 700-buffer programs in minutes)."""
    minimalloc_dir: Path = MINIMALLOC_DIR
    """Folder of MiniMalloc's ``*.csv`` instances (skipped when absent)."""
    out: Path = REPO / "docs" / "malloc_experiment.md"
    """Markdown report."""
    plot: Path = REPO / "docs" / "malloc_experiment.png"
    """Summary plot (png)."""
    json_out: Path | None = None
    """Also write every number as JSON here."""
    segment: int = 25
    """PPO updates per jitted segment (progress lines between segments)."""
    save_dir: Path | None = REPO / "runs" / "malloc_experiment"
    """Where the trained networks' parameters and training curves are saved (None: not saved;
    ``--quick`` never saves)."""
    from_json: Path | None = None
    """Compute nothing: rewrite the report and plot from the JSON (``--json-out``) of a run
    made with the same settings flags."""
    load_dir: Path | None = None
    """Skip training: load the networks and curves a previous run saved here (same network
    settings), e.g. to rerun the search with other settings."""


# ---------------------------------------------------------------------------------------------
# Data


def load_minimalloc(folder: Path) -> list[Workload]:
    """MiniMalloc's instances in ``folder`` (sorted by name; empty when it does not exist)."""
    if not Path(folder).is_dir():
        return []
    return [Workload.from_minimalloc_csv(p) for p in sorted(Path(folder).glob("*.csv"))]


def programs(args: Args) -> dict[str, list[Workload]]:
    """Training, held-out and MiniMalloc programs (``--quick``: small ones only)."""
    train, test = load_dataset("train"), load_dataset("test")
    mm = load_minimalloc(args.minimalloc_dir)
    if args.quick:
        train = [w for w in train if w.num_buffers <= 70]
        test = [w for w in test if w.num_buffers <= 60][:4]
        mm = mm[:2]
    return {"train": train, "test": test, "minimalloc": mm}


def make_game(args: Args, groups: dict[str, list[Workload]]) -> tuple[MallocGame, dict[str, Any]]:
    """One game sized for every program, and each group's stacked params."""
    every = [w for ws in groups.values() for w in ws]
    env = MallocGame(
        max_buffers=max(w.num_buffers for w in every),
        max_live=max(required_slots(w, w.order("xla")) for w in every),
        num_candidates=args.num_candidates,
        default_workload=groups["train"][0],
        capacity_fraction=args.capacity_fraction,
        alignment=args.alignment,
        order="xla",
        set_size=args.set_size,
    )
    params = {
        "train": env.make_params(groups["train"]),
        "test": env.make_params(groups["test"]),
    }
    if groups["minimalloc"]:
        params["minimalloc"] = env.make_params(groups["minimalloc"], capacity=MINIMALLOC_CAPACITY)
    return env, params


def capacity_bytes(params: Any, b: int) -> int:
    """Fast-memory bytes of copy ``b`` of stacked params."""
    return int(params.capacity[b]) * int(params.alignment[b])


def unstack(tree: Any, b: int) -> Any:
    return jax.tree.map(lambda x: x[b], tree)


def scores(
    workloads: list[Workload], params: Any, offsets: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``validate``d benefit fractions and fractions of bytes placed, ``f64[B]`` each."""
    benefit, placed = [], []
    for b, (w, off) in enumerate(zip(workloads, offsets, strict=True)):
        benefit.append(validate(w, capacity_bytes(params, b), off, int(params.alignment[b])))
        placed.append(placed_bytes_fraction(w, off))
    return np.asarray(benefit), np.asarray(placed)


def final_offsets(states: Any, params: Any, n: int) -> list[np.ndarray]:
    """Byte offsets of each of ``n`` copies' final states."""
    return [offsets_in_bytes(unstack(states, b), unstack(params, b)) for b in range(n)]


# ---------------------------------------------------------------------------------------------
# Training and playing


def ppo_config(args: Args, network: str, num_envs: int) -> PPOConfig:
    steps = num_envs * args.num_steps
    total = steps * 2 if args.quick else max(args.total_timesteps, steps)
    return PPOConfig(
        num_envs=num_envs,
        num_steps=args.num_steps,
        num_minibatches=args.num_minibatches,
        update_epochs=args.update_epochs,
        total_timesteps=total,
        normalize_obs=False,
        hidden_sizes=tuple(args.hidden_sizes),
        activation="relu",
        network=network,
        set_embed_dim=args.set_embed_dim,
        set_heads=args.set_heads,
    )


def train(args: Args, env: MallocGame, params: Any, network: str) -> tuple[Any, Any, dict]:
    """Train PPO with ``network`` on the training programs; returns agent, state and curve."""
    config = ppo_config(args, network, int(params.size.shape[0]))
    agent = make_ppo(config, env, params)
    hparams = agent.default_hparams().replace(
        learning_rate=jnp.float32(args.learning_rate),
        gamma=jnp.float32(args.gamma),
        gae_lambda=jnp.float32(0.95),
        ent_coef=jnp.float32(args.ent_coef),
    )
    t0 = time.perf_counter()
    state = agent.init(training_key(args.seed), hparams)
    if args.load_dir is not None:
        blob = (Path(args.load_dir) / f"params_{network}.msgpack").read_bytes()
        state = state.replace(params=flax.serialization.from_bytes(state.params, blob))
        curve = json.loads((Path(args.load_dir) / f"curve_{network}.json").read_text())
        print(f"[{network}] loaded from {args.load_dir}", flush=True)
        return agent, state, curve
    curve: dict[str, list[float]] = {"env_steps": [], "episode_return": [], "entropy": []}
    done = 0
    while done < agent.num_updates:
        n = min(args.segment, agent.num_updates - done)
        state, metrics = agent.run(state, hparams, n)
        for k in curve:
            curve[k].extend(np.asarray(metrics[k], np.float64).tolist())
        done += n
        print(
            f"[{network}] update {done}/{agent.num_updates}: env steps {curve['env_steps'][-1]:.0f}, "
            f"train return {curve['episode_return'][-1]:.3f}, entropy {curve['entropy'][-1]:.3f}, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    curve["seconds"] = time.perf_counter() - t0
    if args.save_dir is not None and not args.quick:
        Path(args.save_dir).mkdir(parents=True, exist_ok=True)
        blob = flax.serialization.to_bytes(state.params)
        (Path(args.save_dir) / f"params_{network}.msgpack").write_bytes(blob)
        (Path(args.save_dir) / f"curve_{network}.json").write_text(json.dumps(curve))
    return agent, state, curve


def play_greedy(agent: Any, state: Any, env: MallocGame, params: Any, key: jax.Array):
    """Final states of the greedy (mode) policy on every copy of ``params``."""

    def policy(k, obs):
        one = jax.tree.map(lambda x: x[None], obs)
        return agent.act(state, one, k, deterministic=True)[0]

    n = int(params.size.shape[0])
    run = jax.jit(jax.vmap(lambda p, k: rollout(env, p, policy, k)[0]))
    return run(params, jax.random.split(key, n))


def play_policy(env: MallocGame, params: Any, policy, key: jax.Array):
    """Final states of a ``policy(key, obs)`` on every copy of ``params``."""
    n = int(params.size.shape[0])
    run = jax.jit(jax.vmap(lambda p, k: rollout(env, p, policy, k)[0]))
    return run(params, jax.random.split(key, n))


def play_search(args: Args, agent: Any, state: Any, env: MallocGame, params: Any, key):
    """Final states of Gumbel MuZero search with the agent's network as prior and value."""
    sims = 4 if args.quick else args.num_simulations
    search = GumbelSearch(
        env,
        agent.network.apply,
        SearchConfig(
            num_simulations=sims,
            max_num_considered_actions=env.num_actions,
            gumbel_scale=args.gumbel_scale,
            discount=1.0,
        ),
    )
    steps = int(np.max(np.asarray(params.num_buffers)))
    run = jax.jit(lambda p, ep, k: search.episodes(p, ep, k, num_steps=steps))
    states, _ = run(state.params, params, key)
    return states


# ---------------------------------------------------------------------------------------------
# Report


def summary(
    results: dict[str, np.ndarray],
    xla: np.ndarray,
    best: np.ndarray,
    proven: np.ndarray | None = None,
    margin: float = 0.005,
) -> dict:
    """Per method: mean and median benefit, wins/ties/losses against ``xla`` (and wins and
    losses by more than ``margin``), mean gap to ``best`` (optimum or upper bound) and, where
    ``proven`` (bool per program) marks proved optima, the mean gap on those programs."""
    out = {}
    for name, r in results.items():
        d = np.asarray(r) - xla
        out[name] = {
            "mean": float(np.mean(r)),
            "median": float(np.median(r)),
            "wins_vs_xla": float(np.mean(d > 1e-9)),
            "ties_vs_xla": float(np.mean(np.abs(d) <= 1e-9)),
            "losses_vs_xla": float(np.mean(d < -1e-9)),
            "wins_by_margin": int(np.sum(d > margin)),
            "losses_by_margin": int(np.sum(d < -margin)),
            "gap_to_optimal": float(np.mean(best - r)),
        }
        if proven is not None and np.any(proven):
            out[name]["gap_proven"] = float(np.mean((best - r)[proven]))
    return out


def target_met(summ: dict, learned: list[str]) -> tuple[bool, str]:
    """The issue's target: some learned mapper beats ``xla_best_fit`` in mean benefit and
    wins on at least 60% of the held-out programs."""
    xla_mean = summ["xla_best_fit"]["mean"]
    ok = [m for m in learned if summ[m]["mean"] > xla_mean and summ[m]["wins_vs_xla"] >= 0.6]
    if ok:
        return True, f"met by {', '.join(ok)}"
    best = max(learned, key=lambda m: summ[m]["mean"])
    s = summ[best]
    return False, (
        f"not met: best learned mapper {best} has mean {s['mean']:.3f} vs xla_best_fit "
        f"{xla_mean:.3f} and beats it on {s['wins_vs_xla']:.0%} of the programs "
        f"(ties {s['ties_vs_xla']:.0%})"
    )


def make_plot(path: Path, report: dict) -> None:
    """Three panels: held-out benefit per program vs xla_best_fit, method means, and the
    training curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = report["test"]
    methods = list(test["methods"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=72)
    ax = axes[0]
    xla = np.asarray(test["methods"]["xla_best_fit"])
    others = [m for m in methods if m not in ("xla_best_fit", "first_fit", "game best fit")]
    rng = np.random.default_rng(0)
    for j, m in enumerate(others):
        d = np.asarray(test["methods"][m]) - xla
        ax.scatter(d, j + rng.uniform(-0.15, 0.15, d.size), s=12, alpha=0.7)
        ax.plot([np.mean(d)] * 2, [j - 0.3, j + 0.3], "k-", lw=1.5)
    ax.axvline(0.0, color="k", ls="--", lw=0.8)
    ax.set_yticks(range(len(others)), others, fontsize=8)
    ax.set_xlabel("benefit - xla_best_fit (per program; bar: mean)")
    ax.set_title("held-out programs")
    ax = axes[1]
    means = [report["summary"][m]["mean"] for m in methods]
    ax.barh(methods, means, color="tab:blue")
    if "optimal_bound" in test:
        ax.axvline(
            np.mean(test["optimal_bound"]), color="k", ls="--", lw=0.8, label="mean upper bound"
        )
        ax.legend(fontsize=7)
    ax.set_xlabel("mean benefit (held-out)")
    ax.set_xlim(min(means) - 0.1, 1.0)
    ax = axes[2]
    for net, curve in report["curves"].items():
        ax.plot(np.asarray(curve["env_steps"]) / 1e6, curve["episode_return"], label=f"PPO {net}")
    ax.set_xlabel("env steps (M)")
    ax.set_ylabel("return of the sampled policy")
    ax.set_title("training programs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def reading(summ: dict, n_proven: int) -> list[str]:
    """Data-driven sentences comparing the networks, search and greedy play (report lines)."""
    out = []
    if "PPO mlp" in summ and "PPO set" in summ:
        d = summ["PPO set"]["mean"] - summ["PPO mlp"]["mean"]
        out.append(
            f"- Set network vs flat MLP (greedy play): mean difference {d:+.4f} "
            f"({fmt(summ['PPO set']['mean'])} vs {fmt(summ['PPO mlp']['mean'])})."
        )
    for net in NETWORKS:
        g, srch = f"PPO {net}", f"PPO {net} + search"
        if g in summ and srch in summ:
            d = summ[srch]["mean"] - summ[g]["mean"]
            out.append(f"- Search vs greedy play with the {net} network: mean difference {d:+.4f}.")
    if "optimal (or bound)" in summ and "xla_best_fit" in summ:
        out.append(
            f"- Room above `xla_best_fit`: {fmt(summ['xla_best_fit']['gap_to_optimal'])} on "
            f"average to the optimum or bound, {fmt(summ['xla_best_fit'].get('gap_proven', float('nan')))} "
            f"on the {n_proven} programs CP-SAT solved to optimality."
        )
    return out


def command_line(args: Args) -> str:
    """The command that reproduces ``args`` (flags for the fields that differ from defaults)."""
    default, parts = Args(), ["python scripts/experiments/malloc_experiment.py"]
    for f in dataclasses.fields(Args):
        value = getattr(args, f.name)
        if value == getattr(default, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{f.name.replace('_', '-')}")
        elif isinstance(value, tuple):
            parts.append(" ".join([flag, *map(str, value)]))
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def fmt(x: float) -> str:
    return f"{x:.3f}"


def write_report(path: Path, report: dict, args: Args) -> None:
    test, summ = report["test"], report["summary"]
    methods = list(test["methods"])
    lines = [
        "# Learned memory mapping: PPO, PPO + Gumbel MuZero search and XLA's heuristic",
        "",
        "Generated by `scripts/experiments/malloc_experiment.py` (see its docstring for the protocol).",
        "",
        f"Command: `{report['command']}`; wall time {report['seconds']:.0f} s on "
        f"{report['device']}. Training seed {args.seed}, one seed per network."
        + (
            f" The networks were loaded from `{args.load_dir}`, saved by the run without "
            "`--load-dir` (its training wall times are below)."
            if args.load_dir is not None
            else ""
        ),
        "",
        "## Settings",
        "",
        f'- Game: `MallocGame` in "xla" order, K = {args.num_candidates} candidate offsets, '
        f"max_buffers = {report['env']['max_buffers']}, max_live = {report['env']['max_live']} "
        f"(covering the training, held-out and MiniMalloc programs), set observation of "
        f"M = {args.set_size} placed buffers; capacity = {args.capacity_fraction} x peak live "
        f"bytes, alignment {args.alignment} B (MiniMalloc: capacity {MINIMALLOC_CAPACITY} B).",
        f"- PPO: {report['train_programs']} training programs, one per copy, "
        f"{report['ppo_steps']:,} env steps per network, rollout {args.num_steps}, "
        f"{args.num_minibatches} minibatches x {args.update_epochs} epochs, lr "
        f"{args.learning_rate} annealed, gamma {args.gamma}, lambda 0.95, entropy "
        f"{args.ent_coef}; MLP {tuple(args.hidden_sizes)} relu; set network: context MLP "
        f"{tuple(args.hidden_sizes)}, embeddings {args.set_embed_dim}, {args.set_heads} "
        "attention heads.",
        f"- Search: Gumbel MuZero (`mctx.gumbel_muzero_policy`), "
        f"{report['num_simulations']} simulations per decision, all {args.num_candidates + 1} "
        f"actions considered at the root, root Gumbel noise scale {args.gumbel_scale}, the "
        "game's `step_env` as the model (discount 1, 0 at the end), illegal actions masked in "
        "the prior logits of every node.",
        f"- `optimal (or bound)`: CP-SAT's objective where it proves optimality within "
        f"{args.cpsat_seconds} s (one worker; run on programs with at most "
        f"{args.cpsat_max_buffers} buffers), else the smaller of its bound and the capacity "
        "LP bound (`capacity_lp_bound`: per-step capacity, fragmentation ignored), an upper "
        "bound on every method; the gap column is measured to it.",
        "- Training wall time: "
        + ", ".join(f"{n} {c['seconds']:.0f} s" for n, c in report["curves"].items())
        + "; search wall time: "
        + ", ".join(f"{n} {s:.0f} s" for n, s in report["search_seconds"].items())
        + f"; CP-SAT {report['cpsat_seconds']:.0f} s.",
        "",
        "## Held-out programs (models never seen in training)",
        "",
        "Normalised benefit (fraction of the program's total), every placement checked by "
        "`validate`.",
        "",
        "| method | mean | median | wins / ties / losses vs xla_best_fit | wins / losses by "
        "> 0.005 | mean gap to optimal or bound | mean gap where optimal is proven |",
        "|---|---|---|---|---|---|---|",
    ]
    n = len(test["names"])
    for m in methods:
        s = summ[m]
        lines.append(
            f"| {m} | {fmt(s['mean'])} | {fmt(s['median'])} | {s['wins_vs_xla']:.0%} / "
            f"{s['ties_vs_xla']:.0%} / {s['losses_vs_xla']:.0%} | {s['wins_by_margin']} / "
            f"{s['losses_by_margin']} of {n} | {fmt(s['gap_to_optimal'])} | "
            f"{fmt(s.get('gap_proven', float('nan')))} |"
        )
    lines += [
        "",
        f"Target (a learned mapper beats `xla_best_fit` in mean and on >= 60% of the "
        f"programs): **{report['target']}**.",
        "",
        *reading(summ, sum(st == "OPTIMAL" for st in test["optimal_status"])),
        "",
    ]
    lines += [
        "| program | buffers | "
        + " | ".join(methods)
        + " | CP-SAT objective (upper bound, status) |",
        "|---|---|" + "---|" * len(methods) + "---|",
    ]
    for b, name in enumerate(test["names"]):
        row = [name, str(test["buffers"][b])]
        row += [fmt(test["methods"][m][b]) for m in methods]
        obj = test["optimal"][b]
        row.append(
            f"{'-' if np.isnan(obj) else fmt(obj)} ({fmt(test['optimal_bound'][b])}, "
            f"{test['optimal_status'][b]})"
        )
        lines.append("| " + " | ".join(row) + " |")
    mm = report.get("minimalloc")
    if mm:
        mm_methods = list(mm["methods"])
        lines += [
            "",
            "## MiniMalloc's challenging instances",
            "",
            "Fraction of bytes placed (capacity 1,048,576 B; MiniMalloc places all bytes of "
            "every instance, so the optimum is 1.000).",
            "",
            "| method | " + " | ".join(mm["names"]) + " | mean |",
            "|---|" + "---|" * (len(mm["names"]) + 1),
        ]
        for m in mm_methods:
            v = mm["methods"][m]
            lines.append(f"| {m} | " + " | ".join(fmt(x) for x in v) + f" | {fmt(np.mean(v))} |")
    lines += [
        "",
        "## Training programs",
        "",
        "Mean greedy benefit on the training programs: "
        + ", ".join(f"{m} {fmt(v)}" for m, v in report["train_means"].items())
        + ".",
        "",
        f"![summary]({args.plot.name})",
        "",
    ]
    notes = report.get("notes")
    if notes:
        lines += ["## Notes", "", *notes, ""]
    path.write_text("\n".join(lines))


# ---------------------------------------------------------------------------------------------


def finish(report: dict, args: Args) -> None:
    """Summary and target from the per-program numbers, then the report, plot and JSON."""
    test = report["test"]
    methods = {m: np.asarray(v) for m, v in test["methods"].items()}
    proven = np.asarray(test["optimal_status"]) == "OPTIMAL"
    summ = summary(methods, methods["xla_best_fit"], methods["optimal (or bound)"], proven)
    learned = [m for m in methods if m.startswith("PPO")]
    report["summary"] = summ
    report["target_met"], report["target"] = target_met(summ, learned)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_plot(args.plot, report)
    write_report(args.out, report, args)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report, indent=1))
    print(f"{report['target']}; wrote {args.out} and {args.plot}")


def main(args: Args | None = None) -> dict:
    args = args or tyro.cli(Args)
    if args.from_json is not None:
        report = json.loads(Path(args.from_json).read_text())
        finish(report, args)
        return report
    t_start = time.perf_counter()
    groups = programs(args)
    env, params = make_game(args, groups)
    print(
        f"programs: {len(groups['train'])} train, {len(groups['test'])} held-out, "
        f"{len(groups['minimalloc'])} MiniMalloc; max_buffers={env.max_buffers}, "
        f"max_live={env.max_live}, K={env.num_candidates}, M={env.set_size}",
        flush=True,
    )
    eval_key = evaluation_key(args.seed)
    evals = [g for g in ("test", "minimalloc") if g in params]
    n = {g: len(groups[g]) for g in groups}
    # BASELINES
    base: dict[str, dict[str, np.ndarray]] = {g: {} for g in evals}
    for g in evals:
        p = params[g]
        for name, fn in (("xla_best_fit", xla_best_fit), ("first_fit", first_fit)):
            offs = [
                fn(w, capacity_bytes(p, b), int(p.alignment[b])) for b, w in enumerate(groups[g])
            ]
            base[g][name] = scores(groups[g], p, offs)
        states = play_policy(env, p, best_fit_policy(env), eval_key)
        base[g]["game best fit"] = scores(groups[g], p, final_offsets(states, p, n[g]))
    # OPTIMAL on the held-out programs: CP-SAT where it proves optimality, else an upper bound
    t0 = time.perf_counter()
    cpsat_limit = 1.0 if args.quick else args.cpsat_seconds
    opt, bound, status = [], [], []
    for b, w in enumerate(groups["test"]):
        p = params["test"]
        cap, align = capacity_bytes(p, b), int(p.alignment[b])
        lp = capacity_lp_bound(w, cap, align)
        objective, cp_bound, st = float("nan"), 1.0, "not run"
        if w.num_buffers <= args.cpsat_max_buffers:
            try:
                hint = xla_best_fit(w, cap, align)
                off, info = optimal(w, cap, cpsat_limit, align, return_info=True, hint=hint)
                objective, cp_bound, st = (
                    validate(w, cap, off, align),
                    info["bound"],
                    info["status"],
                )
            except RuntimeError:  # no solution within the limit; the bounds stand
                st = "no solution"
        opt.append(objective)
        bound.append(min(1.0, cp_bound, lp))
        status.append(st)
    cpsat_seconds = time.perf_counter() - t0
    print(f"CP-SAT: {cpsat_seconds:.0f} s, {status.count('OPTIMAL')} optimal", flush=True)
    # PPO
    learned: dict[str, dict[str, np.ndarray]] = {g: {} for g in evals}
    train_means: dict[str, float] = {}
    curves: dict[str, dict] = {}
    search_seconds: dict[str, float] = {}
    for net in NETWORKS:
        agent, state, curve = train(args, env, params["train"], net)
        curves[net] = curve
        states = play_greedy(agent, state, env, params["train"], eval_key)
        tr, _ = scores(
            groups["train"], params["train"], final_offsets(states, params["train"], n["train"])
        )
        train_means[f"PPO {net}"] = float(tr.mean())
        for g in evals:
            states = play_greedy(agent, state, env, params[g], eval_key)
            learned[g][f"PPO {net}"] = scores(
                groups[g], params[g], final_offsets(states, params[g], n[g])
            )
        if net in args.search_networks:
            t0 = time.perf_counter()
            for g in evals:
                states = play_search(args, agent, state, env, params[g], eval_key)
                learned[g][f"PPO {net} + search"] = scores(
                    groups[g], params[g], final_offsets(states, params[g], n[g])
                )
            search_seconds[net] = time.perf_counter() - t0
            print(f"[{net}] search: {search_seconds[net]:.0f} s", flush=True)
    # REPORT
    methods_test = {m: v[0] for m, v in learned["test"].items()}
    methods_test.update({m: v[0] for m, v in base["test"].items()})
    best = np.asarray(
        [o if s == "OPTIMAL" else bd for o, bd, s in zip(opt, bound, status, strict=True)]
    )
    methods_test["optimal (or bound)"] = best
    report: dict[str, Any] = {
        "command": command_line(args),
        "device": f"{jax.devices()[0].platform} ({len(jax.devices())} device(s))",
        "env": {"max_buffers": env.max_buffers, "max_live": env.max_live},
        "train_programs": n["train"],
        "ppo_steps": ppo_config(args, "mlp", n["train"]).num_updates
        * ppo_config(args, "mlp", n["train"]).steps_per_update,
        "num_simulations": 4 if args.quick else args.num_simulations,
        "curves": curves,
        "search_seconds": search_seconds,
        "cpsat_seconds": cpsat_seconds,
        "train_means": train_means,
        "test": {
            "names": [w.name for w in groups["test"]],
            "buffers": [w.num_buffers for w in groups["test"]],
            "methods": {m: v.tolist() for m, v in methods_test.items()},
            "optimal": opt,
            "optimal_bound": bound,
            "optimal_status": status,
        },
    }
    if "minimalloc" in evals:
        mm = {m: v[1].tolist() for m, v in learned["minimalloc"].items()}
        mm.update({m: v[1].tolist() for m, v in base["minimalloc"].items()})
        report["minimalloc"] = {"names": [w.name for w in groups["minimalloc"]], "methods": mm}
    report["seconds"] = time.perf_counter() - t_start
    finish(report, args)
    return report


if __name__ == "__main__":
    main()
