"""The learned memory mapper against every non-learned method, under the results protocol.

Protocol (issue 24, memory-mapping part):

* Programs: ``load_dataset("train")`` to train on, ``load_dataset("validation")`` (programs of
  the training models held out of training) for every choice, ``load_dataset("test")`` (models
  never seen in training) evaluated once with the choices fixed; MiniMalloc's instances as a
  second test (skipped, with a printed note and a line on the page, when the folder is absent).
* One game for every program: ``MallocGame`` in ``"xla"`` offering order, K candidate offsets,
  ``max_buffers``/``max_live`` sized to cover every program, the set observation.
* Non-learned methods, every placement checked by ``validate``: lowest offset (first fit) and
  best fit in each offering order of ``ORDERS`` (:func:`accelrl.envs.malloc.solvers.greedy`),
  the per-program best of them (``portfolio``), random legal play in the game (several seeds,
  their mean), and CP-SAT's optimum where it proves one, else an upper bound (a reference, not
  a method: on most programs it is a bound, not a placement).
* PPO with action masking, once with the flat MLP and once with the set network, same seed and
  budget; each played greedily and with Gumbel MuZero search (the game as its model, the
  network as prior and value). The search settings (simulations x root noise) and the reported
  variant are chosen by their mean on the validation programs.
* Verdict: the reported variant against the best non-learned method by test mean (portfolio
  included), a paired bootstrap interval over programs of the difference; "met" only when the
  interval lies above zero.

The run writes a raw results file (every per-program number, seeds, budgets, wall times,
provenance) and renders the page and plot from it alone. A run at another capacity regime
(``--capacity_fraction``) has a page of its own (:func:`default_paths`); the headline page (at
0.5) joins those runs' files and ``malloc_az.py``'s (gumbel_az), found beside its own, in a
section of every regime (:func:`regime_section`):

    python scripts/experiments/malloc_experiment.py                   # the full run (~9 min on 2 quiet cores, 35 busy)
    python scripts/experiments/malloc_experiment.py --capacity_fraction 0.25 --minimalloc_dir /no
                  # another regime; MiniMalloc's instances have a fixed capacity, so they are
                  # played by the headline run only (a folder that does not exist skips them)
    python scripts/experiments/malloc_experiment.py --quick           # smoke run into a temp folder
    python scripts/experiments/malloc_experiment.py --from_results docs/results/malloc_experiment.json
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from accelrl.results import (
    check_output,
    load_results,
    options_command,
    paired_bootstrap,
    provenance,
    provenance_line,
    target_line,
    verdict,
    write_results,
)

REPO = Path(__file__).resolve().parents[2]
GENERATOR = "scripts/experiments/malloc_experiment.py"
PAGE = "docs/malloc_experiment.md"
PLOT = "docs/malloc_experiment.png"
RESULTS = "docs/results/malloc_experiment.json"
HEADLINE_CAPACITY = 0.5
"""The capacity regime of the page's first table (``PAGE``); every other regime's run has a
page of its own (:func:`default_paths`)."""
MINIMALLOC_DIR = REPO.parent / "shared" / "data" / "minimalloc"
MINIMALLOC_CAPACITY = 1_048_576
"""Capacity (bytes) of MiniMalloc's challenging instances (the number in their file names)."""
NETWORKS = ("mlp", "set")
BOUND = "optimal (or bound)"
PORTFOLIO = "portfolio"
RANDOM = "random legal"
LOWEST_XLA = "lowest offset [xla]"
RULE_NAMES = {"lowest": "lowest offset", "best": "best fit"}


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of malloc_experiment."""

    quick: bool = False
    """Smoke run: small programs only (train <= 70 buffers, 3 validation and 4 held-out programs
    of <= 60 buffers, MiniMalloc A), the first network of ``--networks`` only, 2 PPO updates,
    searches of 2 and 4 simulations at the first root noise scale, 2 random seeds, 1 s of CP-SAT; writes into a temporary folder unless ``--out`` says otherwise (never
    into docs/)."""
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
    lookahead: int = 2
    """Following buffers described in the observation (size, live range, benefit of each)."""
    capacity_fraction: float = 0.5
    """Fast memory as a fraction of each program's peak live bytes (dataset programs)."""
    alignment: int = 64
    """Bytes per address unit."""
    networks: tuple[str, ...] = NETWORKS
    """PPO networks to train (``mlp``, ``set``)."""
    search_simulations: tuple[int, ...] = (8, 32)
    """Simulation counts tried on the validation programs (``--quick``: 2 and 4)."""
    search_gumbel_scales: tuple[float, ...] = (0.0, 1.0)
    """Root Gumbel noise scales tried on the validation programs (each with every count)."""
    random_seeds: int = 5
    """Seeds of random legal play (its row is their mean; ``--quick``: 2)."""
    cpsat_seconds: float = 10.0
    """CP-SAT time limit per held-out program (one worker)."""
    cpsat_max_buffers: int = 300
    """Held-out programs with more buffers get only the bounds (CP-SAT finds no solution to
    the 700-buffer programs in minutes)."""
    bootstrap_reps: int = 10_000
    """Paired bootstrap replicates of every interval (resampling seed 0, 95% intervals)."""
    minimalloc_dir: Path = MINIMALLOC_DIR
    """Folder of MiniMalloc's ``*.csv`` instances (skipped, with a note, when absent)."""
    out: Path | None = None
    """Raw results file (default: docs/results/malloc_experiment.json; ``--quick``: a temporary
    folder). The page and plot are written beside it unless ``--page``/``--plot`` say where."""
    page: Path | None = None
    """Markdown page (default: docs/malloc_experiment.md for a full run or ``--from_results``
    of a full run; else beside ``--out``)."""
    plot: Path | None = None
    """Summary plot, png (default: beside the page, named as in docs/)."""
    from_results: Path | None = None
    """Compute nothing: render the page and plot from this raw results file alone."""
    allow_dirty: bool = False
    """Write results from a tree with uncommitted changes (the page then says so; ``--quick``
    runs always may, outside docs/)."""
    segment: int = 25
    """PPO updates per jitted segment (progress lines between segments)."""
    save_dir: Path | None = REPO / "runs" / "malloc_experiment"
    """Where the trained networks' parameters and curves are saved (None: not saved; ``--quick``
    never saves)."""
    load_dir: Path | None = None
    """Skip training: load the networks and curves a previous run saved here (same settings)."""


# ---------------------------------------------------------------------------------------------
# Outputs


def default_paths(capacity_fraction: float) -> tuple[str, str, str]:
    """``(raw results, page, plot)`` of a full run at ``capacity_fraction``, from the repository
    root: ``RESULTS``, ``PAGE`` and ``PLOT`` at the headline regime, else the same names with
    ``_capacity_<fraction>`` (``docs/malloc_experiment_capacity_0.25.md``)."""
    if capacity_fraction == HEADLINE_CAPACITY:
        return RESULTS, PAGE, PLOT
    tag = f"_capacity_{capacity_fraction:g}"
    return tuple(  # type: ignore[return-value]
        str(Path(p).with_stem(Path(p).stem + tag)) for p in (RESULTS, PAGE, PLOT)
    )


def output_paths(args: Args, quick: bool) -> tuple[Path, Path, Path]:
    """``(raw results, page, plot)`` paths; quick runs default to a fresh temporary folder and
    are refused inside docs/ (:func:`accelrl.results.check_output`)."""
    results, default_page, default_plot = default_paths(args.capacity_fraction)
    if args.out is not None:
        out = Path(args.out)
    elif quick:
        out = Path(tempfile.mkdtemp(prefix="malloc_experiment_quick_")) / "malloc_experiment.json"
    else:
        out = REPO / results
    if args.page is not None:
        page = Path(args.page)
    elif args.out is None and not quick:
        page = REPO / default_page
    else:
        page = out.with_suffix(".md")
    plot = Path(args.plot) if args.plot is not None else page.with_name(Path(default_plot).name)
    return tuple(check_output(p, quick) for p in (out, page, plot))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Data


def load_minimalloc(folder: Path) -> list:
    """MiniMalloc's instances in ``folder`` (sorted by name; empty when it does not exist)."""
    from accelrl.envs.malloc import Workload

    if not Path(folder).is_dir():
        return []
    return [Workload.from_minimalloc_csv(p) for p in sorted(Path(folder).glob("*.csv"))]


def programs(args: Args) -> tuple[dict[str, list], str | None]:
    """Training, validation, held-out and MiniMalloc programs (``--quick``: small ones only),
    and the note to print and record when MiniMalloc is skipped (None when it is not)."""
    from accelrl.envs.malloc import load_dataset

    groups = {s: load_dataset(s) for s in ("train", "validation", "test")}
    mm = load_minimalloc(args.minimalloc_dir)
    note = None
    if not mm:
        why = (
            "the shared data folder is absent from this checkout"
            if Path(args.minimalloc_dir) == MINIMALLOC_DIR
            else "the folder given by --minimalloc_dir"
        )
        note = f"MiniMalloc skipped: no instances in {args.minimalloc_dir} ({why})"
        print(note, flush=True)
    if args.quick:
        groups["train"] = [w for w in groups["train"] if w.num_buffers <= 70]
        groups["validation"] = [w for w in groups["validation"] if w.num_buffers <= 60][:3]
        groups["test"] = [w for w in groups["test"] if w.num_buffers <= 60][:4]
        mm = mm[:1]
    groups["minimalloc"] = mm
    return groups, note


# ---------------------------------------------------------------------------------------------
# Compute (imports JAX)


class Experiment:
    """The game, the programs and their stacked params; methods that play and score them."""

    def __init__(self, args: Args, groups: dict[str, list]):
        from accelrl.envs.malloc import MallocGame, required_slots

        self.args, self.groups = args, groups
        every = [w for ws in groups.values() for w in ws]
        self.env = MallocGame(
            max_buffers=max(w.num_buffers for w in every),
            max_live=max(required_slots(w, w.order("xla")) for w in every),
            num_candidates=args.num_candidates,
            default_workload=groups["train"][0],
            capacity_fraction=args.capacity_fraction,
            alignment=args.alignment,
            order="xla",
            set_size=args.set_size,
            lookahead=args.lookahead,
        )
        self.params = {
            g: self.env.make_params(ws, capacity=MINIMALLOC_CAPACITY)
            if g == "minimalloc"
            else self.env.make_params(ws)
            for g, ws in groups.items()
            if ws
        }
        self.evals = [g for g in ("validation", "test", "minimalloc") if g in self.params]
        self._runners: dict[Any, Any] = {}

    def capacity(self, group: str, b: int) -> tuple[int, int]:
        """``(capacity bytes, alignment)`` of program ``b`` of ``group``."""
        p = self.params[group]
        return int(p.capacity[b]) * int(p.alignment[b]), int(p.alignment[b])

    def score(self, group: str, offsets: list[np.ndarray]) -> list[float]:
        """Per program: the ``validate``d benefit fraction (MiniMalloc: fraction of bytes
        placed, after validating)."""
        from accelrl.envs.malloc import placed_bytes_fraction, validate

        out = []
        for b, (w, off) in enumerate(zip(self.groups[group], offsets, strict=True)):
            cap, align = self.capacity(group, b)
            value = validate(w, cap, off, align)
            out.append(placed_bytes_fraction(w, off) if group == "minimalloc" else value)
        return out

    def final_offsets(self, group: str, states: Any) -> list[np.ndarray]:
        import jax

        from accelrl.envs.malloc import offsets_in_bytes

        p = self.params[group]
        return [
            offsets_in_bytes(*jax.tree.map(lambda x, b=b: x[b], (states, p)))
            for b in range(len(self.groups[group]))
        ]

    def play(self, group: str, policy, key, timing: dict | None = None) -> list[float]:
        """Scores of ``policy(key, obs)`` played through the game on every program; with
        ``timing``, its compile and run wall seconds are stored there (:func:`timed_call`)."""
        import jax

        from accelrl.envs.malloc import rollout

        p = self.params[group]
        n = len(self.groups[group])
        if policy not in self._runners:  # one jitted runner per policy (compiled per shape)
            self._runners[policy] = jax.jit(
                jax.vmap(lambda q, k: rollout(self.env, q, policy, k)[0])
            )
        states = timed_call(self._runners[policy], (p, jax.random.split(key, n)), timing)
        return self.score(group, self.final_offsets(group, states))

    def greedy_rows(self, group: str) -> tuple[dict[str, list[float]], dict[str, float]]:
        """Every greedy rule's scores and its wall seconds per placement (one program's whole
        layout, numpy)."""
        from accelrl.envs.malloc.solvers import greedy, greedy_rules

        rows, secs = {}, {}
        for rule, order in greedy_rules():
            t0 = time.perf_counter()
            offs = [
                greedy(w, *self.capacity(group, b), order=order, rule=rule)
                for b, w in enumerate(self.groups[group])
            ]
            name = f"{RULE_NAMES[rule]} [{order}]"
            secs[name] = (time.perf_counter() - t0) / len(offs)
            rows[name] = self.score(group, offs)
        return rows, secs

    def cpsat(self, hints: list[np.ndarray]) -> dict[str, list]:
        """CP-SAT on the held-out programs (hinted with the portfolio's placement): objective
        where it ran, its bound, status, and the upper reference (optimum if proven, else the
        smaller of the CP-SAT and capacity LP bounds)."""
        from accelrl.envs.malloc import capacity_lp_bound, optimal, validate

        args = self.args
        limit = 1.0 if args.quick else args.cpsat_seconds
        objective, bound, status, upper = [], [], [], []
        for b, w in enumerate(self.groups["test"]):
            cap, align = self.capacity("test", b)
            lp = capacity_lp_bound(w, cap, align)
            obj, cp_bound, st = None, 1.0, "not run"
            if w.num_buffers <= args.cpsat_max_buffers:
                try:
                    off, info = optimal(w, cap, limit, align, return_info=True, hint=hints[b])
                    obj, cp_bound, st = validate(w, cap, off, align), info["bound"], info["status"]
                except RuntimeError:  # no solution within the limit; the bounds stand
                    st = "no solution"
            objective.append(obj)
            bound.append(min(1.0, cp_bound, lp))
            status.append(st)
            upper.append(obj if st == "OPTIMAL" else min(1.0, cp_bound, lp))
        return {"objective": objective, "bound": bound, "status": status, "upper": upper}


def ppo_config(args: Args, network: str, num_envs: int):
    from accelrl.agents.ppo import PPOConfig

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


def train(args: Args, ex: Experiment, network: str) -> tuple[Any, Any, dict]:
    """Train PPO with ``network`` on the training programs; returns agent, state and curve."""
    import flax.serialization
    import jax.numpy as jnp

    from accelrl.agents.evaluation import training_key
    from accelrl.agents.ppo import make_ppo

    params = ex.params["train"]
    agent = make_ppo(ppo_config(args, network, int(params.size.shape[0])), ex.env, params)
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
    curve: dict[str, Any] = {"env_steps": [], "episode_return": [], "entropy": []}
    done = 0
    while done < agent.num_updates:
        n = min(args.segment, agent.num_updates - done)
        state, metrics = agent.run(state, hparams, n)
        for k in ("env_steps", "episode_return", "entropy"):
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
        (Path(args.save_dir) / f"params_{network}.msgpack").write_bytes(
            flax.serialization.to_bytes(state.params)
        )
        (Path(args.save_dir) / f"curve_{network}.json").write_text(json.dumps(curve))
    return agent, state, curve


def greedy_policy(agent: Any, state: Any):
    """The network's mode action as a ``policy(key, obs)``."""
    import jax

    def policy(k, obs):
        one = jax.tree.map(lambda x: x[None], obs)
        return agent.act(state, one, k, deterministic=True)[0]

    return policy


def play_search(
    ex: Experiment,
    agent: Any,
    state: Any,
    group: str,
    sims: int,
    noise: float,
    key,
    timing: dict | None = None,
):
    """Scores of Gumbel MuZero search with the agent's network as prior and value (``timing``:
    as :meth:`Experiment.play`)."""
    import jax

    from accelrl.agents.search import GumbelSearch, SearchConfig

    search = GumbelSearch(
        ex.env,
        agent.network.apply,
        SearchConfig(
            num_simulations=int(sims),
            max_num_considered_actions=ex.env.num_actions,
            gumbel_scale=float(noise),
            discount=1.0,
        ),
    )
    p = ex.params[group]
    steps = int(np.max(np.asarray(p.num_buffers)))
    run = jax.jit(lambda q, ep, k: search.episodes(q, ep, k, num_steps=steps))
    states, _ = timed_call(run, (state.params, p, key), timing)
    return ex.score(group, ex.final_offsets(group, states))


def timed_call(fn: Any, args: tuple, timing: dict | None) -> Any:
    """``fn(*args)`` of a jitted ``fn``; with ``timing``, compiled ahead of the call and the
    wall seconds stored as ``timing["compile"]`` and ``timing["run"]`` (the run waited for)."""
    import jax

    if timing is None:
        return fn(*args)
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    t1 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    timing.update(compile=t1 - t0, run=time.perf_counter() - t1)
    return out


def record_timing(seconds: dict, name: str, timing: dict, programs: int) -> None:
    """Store a played method's run seconds per placement (per program: all programs run as
    one batch, so the batch's wall time over their number) and its compile seconds."""
    seconds["per_placement"][name] = timing["run"] / programs
    seconds.setdefault("compile", {})[name] = timing["compile"]


def choose(candidates: dict[str, float]) -> str:
    """The name with the highest value (the first listed on ties)."""
    best = max(candidates.values())
    return next(k for k, v in candidates.items() if v == best)


def run_experiment(args: Args) -> dict[str, Any]:
    """Every number of the page: baselines, training, validation choices, test evaluation."""
    import jax

    from accelrl.agents.evaluation import evaluation_key
    from accelrl.envs.malloc import random_policy
    from accelrl.envs.malloc.solvers import greedy, greedy_rules

    t_start, load_start = time.perf_counter(), os.getloadavg()
    groups, mm_note = programs(args)
    ex = Experiment(args, groups)
    print(
        "programs: "
        + ", ".join(f"{len(ws)} {g}" for g, ws in groups.items())
        + f"; max_buffers={ex.env.max_buffers}, max_live={ex.env.max_live}",
        flush=True,
    )
    eval_key = evaluation_key(args.seed)
    data: dict[str, dict[str, Any]] = {
        g: {
            "names": [w.name for w in groups[g]],
            "buffers": [w.num_buffers for w in groups[g]],
            "methods": {},
            "kind": {},
        }
        for g in ex.evals
    }
    seconds: dict[str, Any] = {"per_placement": {}}
    # NON-LEARNED METHODS
    n_random = 2 if args.quick else args.random_seeds
    random_seeds = list(range(n_random))
    hints = None
    for g in ex.evals:
        rows, secs = ex.greedy_rows(g)
        for name, v in rows.items():
            data[g]["methods"][name], data[g]["kind"][name] = v, "non-learned"
        table = np.asarray(list(rows.values()))
        data[g]["methods"][PORTFOLIO] = table.max(axis=0).tolist()
        data[g]["kind"][PORTFOLIO] = "non-learned"
        names = list(rows)
        data[g]["portfolio_choice"] = [names[j] for j in table.argmax(axis=0)]
        per_seed = [
            ex.play(g, random_policy, jax.random.fold_in(eval_key, s)) for s in random_seeds
        ]
        data[g]["random_per_seed"] = per_seed
        data[g]["methods"][RANDOM] = np.mean(per_seed, axis=0).tolist()
        data[g]["kind"][RANDOM] = "non-learned"
        if g == "test":
            seconds["per_placement"] = secs
            seconds["per_placement"][PORTFOLIO] = sum(secs.values())
            pairs = greedy_rules()
            hints = []
            for b, w in enumerate(groups[g]):
                j = names.index(data[g]["portfolio_choice"][b])
                rule, order = pairs[j]
                hints.append(greedy(w, *ex.capacity(g, b), order=order, rule=rule))
    # REFERENCE: CP-SAT optimum or bound on the held-out programs
    t0 = time.perf_counter()
    data["test"]["cpsat"] = ex.cpsat(hints)
    seconds["cpsat"] = time.perf_counter() - t0
    print(f"CP-SAT: {seconds['cpsat']:.0f} s", flush=True)
    # PPO: train, play greedily, search settings on validation
    sims_grid = (2, 4) if args.quick else tuple(args.search_simulations)
    scales = args.search_gumbel_scales[:1] if args.quick else args.search_gumbel_scales
    grid = [(s, z) for s in sims_grid for z in scales]
    networks = args.networks[:1] if args.quick else args.networks
    curves, train_means, search_grid, chosen = {}, {}, [], {}
    trained = {}
    for net in networks:
        agent, state, curve = train(args, ex, net)
        curves[net], trained[net] = curve, (agent, state)
        policy = greedy_policy(agent, state)
        train_means[f"PPO {net}"] = float(np.mean(ex.play("train", policy, eval_key)))
        for g in ex.evals:
            timing = {} if g == "test" else None
            data[g]["methods"][f"PPO {net}"] = ex.play(g, policy, eval_key, timing)
            data[g]["kind"][f"PPO {net}"] = "learned"
            if timing is not None:
                record_timing(seconds, f"PPO {net}", timing, len(groups[g]))
        for sims, noise in grid:
            t0 = time.perf_counter()
            v = play_search(ex, agent, state, "validation", sims, noise, eval_key)
            search_grid.append(
                {
                    "network": net,
                    "simulations": sims,
                    "gumbel_scale": noise,
                    "validation": v,
                    "validation_mean": float(np.mean(v)),
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(f"[{net}] search {sims} sims, noise {noise}: validation {np.mean(v):.4f}")
        mine = {
            f"{r['simulations']}:{r['gumbel_scale']}": r for r in search_grid if r["network"] == net
        }
        key = choose({k: r["validation_mean"] for k, r in mine.items()})
        chosen[net] = {
            "simulations": mine[key]["simulations"],
            "gumbel_scale": mine[key]["gumbel_scale"],
        }
        data["validation"]["methods"][f"PPO {net} + search"] = mine[key]["validation"]
        data["validation"]["kind"][f"PPO {net} + search"] = "learned"
    # THE REPORTED VARIANT, chosen on validation
    learned = [m for m, k in data["validation"]["kind"].items() if k == "learned"]
    reported = choose({m: float(np.mean(data["validation"]["methods"][m])) for m in learned})
    # TEST: search with the chosen settings, once
    for net in networks:
        agent, state = trained[net]
        t0 = time.perf_counter()
        for g in ex.evals:
            if g == "validation":
                continue
            timing = {} if g == "test" else None
            data[g]["methods"][f"PPO {net} + search"] = play_search(
                ex,
                agent,
                state,
                g,
                chosen[net]["simulations"],
                chosen[net]["gumbel_scale"],
                eval_key,
                timing,
            )
            data[g]["kind"][f"PPO {net} + search"] = "learned"
            if timing is not None:
                record_timing(seconds, f"PPO {net} + search", timing, len(groups[g]))
        seconds[f"search {net} (test + MiniMalloc)"] = time.perf_counter() - t0
    n_train = len(groups["train"])
    cfg = ppo_config(args, networks[0], n_train)
    settings = {
        f.name: (
            str(getattr(args, f.name))
            if isinstance(getattr(args, f.name), Path)
            else getattr(args, f.name)
        )
        for f in dataclasses.fields(Args)
        if f.name
        not in ("out", "page", "plot", "from_results", "save_dir", "load_dir", "minimalloc_dir")
    }
    _, page, plot = default_paths(args.capacity_fraction)
    record = {
        "generator": GENERATOR,
        "page": page,
        "plot": plot,
        "quick": args.quick,
        "settings": settings,
        "loaded_networks_from": None if args.load_dir is None else str(args.load_dir),
        "seeds": {
            "training": args.seed,
            "evaluation": args.seed,
            "random_legal": random_seeds,
            "bootstrap": 0,
        },
        "budgets": {
            "ppo_env_steps_per_network": cfg.num_updates * cfg.steps_per_update,
            "search_grid": [list(x) for x in grid],
            "cpsat_seconds": 1.0 if args.quick else args.cpsat_seconds,
            "cpsat_max_buffers": args.cpsat_max_buffers,
            "bootstrap_reps": args.bootstrap_reps,
        },
        "env": {
            "order": "xla",
            "max_buffers": ex.env.max_buffers,
            "max_live": ex.env.max_live,
            "num_candidates": ex.env.num_candidates,
            "set_size": ex.env.set_size,
            "lookahead": ex.env.lookahead,
            "capacity_fraction": args.capacity_fraction,
            "alignment": args.alignment,
            "minimalloc_capacity": MINIMALLOC_CAPACITY,
        },
        "train_programs": [w.name for w in groups["train"]],
        "train_means": train_means,
        "curves": curves,
        "search_grid": search_grid,
        "chosen_search": chosen,
        "reported_variant": reported,
        "groups": data,
        "minimalloc_note": mm_note,
        "seconds": seconds,
        "device": f"{jax.devices()[0].platform} ({len(jax.devices())} device(s))",
    }
    record["wall_seconds"] = time.perf_counter() - t_start
    record["host"] = {"load_start": list(load_start), "load_end": list(os.getloadavg())}
    return record


# ---------------------------------------------------------------------------------------------
# Analysis and page: pure functions of the raw results file


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def methods_of(group: dict, kind: str) -> list[str]:
    """The group's methods of one kind (``"learned"`` or ``"non-learned"``), in record order."""
    return [m for m, k in group["kind"].items() if k == kind]


def best_non_learned(group: dict) -> str:
    """The non-learned method with the highest mean (the first listed on ties)."""
    return choose(
        {m: float(np.mean(group["methods"][m])) for m in methods_of(group, "non-learned")}
    )


def interval(record: dict, group: dict, a: str, b: str) -> tuple[float, float, float]:
    """Paired bootstrap ``(mean diff, low, high)`` of ``a - b`` over the group's programs."""
    return paired_bootstrap(
        group["methods"][a],
        group["methods"][b],
        reps=int(record["budgets"]["bootstrap_reps"]),
        seed=int(record["seeds"]["bootstrap"]),
    )


def compare(a: list[float], b: list[float], reps: int, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap of mean(a - b) over programs (``reps`` resamples, ``seed``), its verdict
    and the win share where the two differ."""
    point, low, high = paired_bootstrap(a, b, reps=reps, seed=seed)
    diff = np.asarray(a) - np.asarray(b)
    differ = np.abs(diff) > 1e-9
    share = float(np.mean(diff[differ] > 0)) if differ.any() else None
    return {
        "diff": point,
        "low": low,
        "high": high,
        "verdict": verdict(low, high),
        "win_share_where_differ": share,
        "programs_differ": int(differ.sum()),
    }


def fmt_share(c: dict[str, Any]) -> str:
    share = c["win_share_where_differ"]
    return "n/a" if share is None else f"{share:.0%} of {c['programs_differ']}"


def fmt_interval(ci: tuple[float, float, float]) -> str:
    d, lo, hi = ci
    return f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}] {verdict(lo, hi)}"


def target(record: dict) -> tuple[bool, str]:
    """The target: the learned variant reported (chosen on validation) beats the best
    non-learned method on the held-out programs, the 95% paired bootstrap interval of the mean
    difference over programs lying above zero. Returns ``(met, reason)``."""
    test = record["groups"]["test"]
    reported, best = record["reported_variant"], best_non_learned(test)
    d, lo, hi = interval(record, test, reported, best)
    diff = np.asarray(test["methods"][reported]) - np.asarray(test["methods"][best])
    wins, losses = int(np.sum(diff > 1e-9)), int(np.sum(diff < -1e-9))
    says = verdict(lo, hi)
    reason = (
        f"`{reported}` (chosen on the validation programs) minus `{best}` (the best non-learned "
        f"method by held-out mean): {d:+.4f}, 95% paired bootstrap interval [{lo:+.4f}, "
        f"{hi:+.4f}] over {diff.size} programs, {says}; higher on {wins}, lower on {losses}"
    )
    if says != "beats":
        reason += (
            "; the interval does not lie above zero"
            if says == "no difference shown"
            else "; the learned mapper is worse"
        )
    return says == "beats", reason


def table_rows(record: dict, group: dict, with_bound: bool) -> list[str]:
    """The first table's rows: learned methods, then non-learned ones by mean, then the bound."""
    best = best_non_learned(group)
    names = methods_of(group, "learned") + sorted(
        methods_of(group, "non-learned"), key=lambda m: -float(np.mean(group["methods"][m]))
    )
    upper = np.asarray(group["cpsat"]["upper"], np.float64) if with_bound else None
    per = record["seconds"].get("per_placement", {})
    b = np.asarray(group["methods"][best])
    rows = []
    for m in names:
        v = np.asarray(group["methods"][m])
        d = v - b
        label = f"**{m}**" if m == record["reported_variant"] else m
        vs_best = (
            "(best non-learned)" if m == best else fmt_interval(interval(record, group, m, best))
        )
        vs_low = "-" if m == LOWEST_XLA else fmt_interval(interval(record, group, m, LOWEST_XLA))
        wtl = (
            "-"
            if m == best
            else f"{np.sum(d > 1e-9)} / {np.sum(np.abs(d) <= 1e-9)} / {np.sum(d < -1e-9)}"
        )
        gap = fmt(float(np.mean(upper - v))) if upper is not None else "-"
        sec = per.get(m)
        rows.append(
            f"| {label} | {np.mean(v):.3f} | {np.median(v):.3f} | {group['kind'][m]} | {vs_best} | "
            f"{vs_low} | {wtl} | {gap} | {'-' if sec is None else f'{sec:.2e}'} |"
        )
    if upper is not None:
        rows.append(
            f"| {BOUND} | {np.mean(upper):.3f} | {np.median(upper):.3f} | reference (upper bound) "
            "| - | - | - | 0.000 | - |"
        )
    return rows


def readings(record: dict) -> list[str]:
    """Data-driven sentences under the first table."""
    test = record["groups"]["test"]
    out = []
    low = np.asarray(test["methods"][LOWEST_XLA])
    for m in methods_of(test, "learned"):
        d = np.asarray(test["methods"][m]) - low
        same = int(np.sum(np.abs(d) <= 1e-3))
        out.append(
            f"- `{m}` is within 0.001 of `{LOWEST_XLA}` (always action 1 in the game's xla order) "
            f"on {same} of {d.size} held-out programs (largest difference {np.max(np.abs(d)):.3f})."
        )
    rules = [m for m in methods_of(test, "non-learned") if m not in (PORTFOLIO, RANDOM)]
    best_rule = best_single_rule(test)
    choice = test["portfolio_choice"]
    counts = {m: choice.count(m) for m in dict.fromkeys(choice)}
    out.append(
        f"- Best single greedy rule: `{best_rule}` ({np.mean(test['methods'][best_rule]):.3f}); the "
        f"portfolio takes per program the best of {len(rules)} rules ("
        + ", ".join(f"`{m}` on {c}" for m, c in sorted(counts.items(), key=lambda x: -x[1]))
        + ", the first listed rule on ties)."
    )
    upper = np.asarray(test["cpsat"]["upper"], np.float64)
    proven = np.asarray(test["cpsat"]["status"]) == "OPTIMAL"
    best = best_non_learned(test)
    gap = upper - np.asarray(test["methods"][best])
    out.append(
        f"- Room above `{best}`: {np.mean(gap):.3f} on average to the optimum or bound; "
        + (
            f"{np.mean(gap[proven]):.3f} on the {int(proven.sum())} programs CP-SAT solved to "
            "optimality."
            if proven.any()
            else "CP-SAT proved no optimum."
        )
    )
    return out


AZ_RESULTS = "docs/results/malloc_az.json"
"""The raw results file of ``malloc_az.py`` (gumbel_az per capacity regime), joined on the page."""


def companions(folder: Path) -> dict[str, Any]:
    """The raw results files the headline page joins, read from ``folder`` (the headline file's
    own): ``{"regimes": {capacity: record}}`` of this script's runs at other capacities
    (``malloc_experiment_capacity_*.json``) and ``{"az": record}`` of ``malloc_az.json``, each
    only when present."""
    folder = Path(folder)
    out: dict[str, Any] = {"regimes": {}, "az": None}
    for path in sorted(folder.glob(f"{Path(RESULTS).stem}_capacity_*.json")):
        rec = load_results(path)
        out["regimes"][float(rec["env"]["capacity_fraction"])] = rec
    if (folder / Path(AZ_RESULTS).name).is_file():
        out["az"] = load_results(folder / Path(AZ_RESULTS).name)
    return out


def best_single_rule(group: dict) -> str:
    """The greedy rule (portfolio and random play excluded) with the highest mean."""
    rules = [m for m in methods_of(group, "non-learned") if m not in (PORTFOLIO, RANDOM)]
    return choose({m: float(np.mean(group["methods"][m])) for m in rules})


def regime_section(record: dict, joined: dict[str, Any]) -> list[str]:
    """The page's section of every capacity regime: test means of the non-learned methods, PPO
    (this script, one run per regime) and gumbel_az (``malloc_az.py``) side by side, and each
    learned family's variant chosen on validation against the portfolio.

    Raises:
        ValueError: the joined files' test programs differ from the headline run's, or a greedy
            rule scores differently in two files at the same capacity (they must agree: the
            rules are deterministic).
    """
    names = record["groups"]["test"]["names"]
    ppo = {float(record["env"]["capacity_fraction"]): record, **joined.get("regimes", {})}
    az_record = joined.get("az")
    az = {float(r["capacity"]): r for r in (az_record or {}).get("regimes", [])}
    for cap, rec in ppo.items():
        if rec["groups"]["test"]["names"] != names:
            raise ValueError(f"the run at capacity {cap:g} has other test programs")
    for cap, reg in az.items():
        if reg["groups"]["test"]["programs"] != names:
            raise ValueError(f"malloc_az's regime {cap:g} has other test programs")
        rec = ppo.get(cap)
        for m, v in reg["groups"]["test"]["rows"].items():
            if rec is not None and m in rec["groups"]["test"]["methods"]:
                if not np.allclose(v, rec["groups"]["test"]["methods"][m], atol=1e-6):
                    raise ValueError(f"`{m}` differs between the two runs at capacity {cap:g}")
    caps = sorted(set(ppo) | set(az))
    means: dict[str, dict[float, float]] = {}
    bold: set[tuple[str, float]] = set()
    for cap in caps:
        rows: dict[str, Any] = {}
        if cap in az:
            rows.update(az[cap]["groups"]["test"]["rows"])
            bold.add((az[cap]["chosen"], cap))
        if cap in ppo:
            rows.update(ppo[cap]["groups"]["test"]["methods"])
            bold.add((ppo[cap]["reported_variant"], cap))
        for m, v in rows.items():
            means.setdefault(m, {})[cap] = float(np.mean(v))
    order = [LOWEST_XLA, PORTFOLIO, RANDOM]
    learned = [m for m in means if m.startswith(("PPO", "gumbel_az"))]
    others = sorted(
        (m for m in means if m not in order and m not in learned),
        key=lambda m: -np.mean(list(means[m].values())),
    )

    def row(m: str) -> str:
        cells = [
            "-" if cap not in means[m] else
            f"**{means[m][cap]:.3f}**" if (m, cap) in bold else f"{means[m][cap]:.3f}"
            for cap in caps
        ]  # fmt: skip
        return f"| {m} | {' | '.join(cells)} |"

    def bound_row(label: str, values: dict[float, Any]) -> str:
        cells = ["-" if c not in values else f"{np.mean(values[c]):.3f}" for c in caps]
        return f"| {label} | {' | '.join(cells)} |"

    lines = [
        "## Every capacity regime: PPO and gumbel_az beside the non-learned methods",
        "",
        f"Mean normalised benefit on the same {len(names)} held-out programs at each capacity "
        "(a fraction of each program's peak live bytes). PPO is trained anew at each capacity "
        f"by this script (`{RESULTS}` at {HEADLINE_CAPACITY:g}, `{Path(RESULTS).stem}_capacity_"
        f"<fraction>.json` at the others, each with its own page); `gumbel_az` and the LP bound "
        f"come from `{AZ_RESULTS}` (its page, `docs/malloc_az.md`, has the validation choices, "
        "the seconds per placement and the training curves). Bold: each learned family's "
        "variant chosen on the validation programs. `-`: no run on record.",
        "",
        f"| method | {' | '.join(f'capacity {c:g}' for c in caps)} |",
        f"|---|{'---|' * len(caps)}",
        *[row(m) for m in [*learned, *(m for m in order if m in means), *others]],
        bound_row(
            f"{BOUND} (CP-SAT, this script)",
            {c: r["groups"]["test"]["cpsat"]["upper"] for c, r in ppo.items()},
        ),
        bound_row(
            "LP bound (`malloc_az.py`)",
            {
                c: r["groups"]["test"]["bound"]
                for c, r in az.items()
                if "bound" in r["groups"]["test"]
            },
        ),
        "",
        "| capacity | learned variant (chosen on validation) | vs `portfolio` | wins where they "
        "differ | vs the best single rule (chosen on validation) |",
        "|---|---|---|---|---|",
    ]

    def ci(c: dict[str, Any]) -> tuple[float, float, float]:
        return c["diff"], c["low"], c["high"]

    for cap in caps:
        compared = []  # (variant, vs portfolio, best single rule, vs that rule)
        if cap in ppo:
            rec = ppo[cap]
            test, m = rec["groups"]["test"]["methods"], rec["reported_variant"]
            rule = best_single_rule(rec["groups"]["validation"])
            reps, seed = int(rec["budgets"]["bootstrap_reps"]), int(rec["seeds"]["bootstrap"])
            compared.append((m, compare(test[m], test[PORTFOLIO], reps, seed), rule,
                             compare(test[m], test[rule], reps, seed)))  # fmt: skip
        if cap in az:
            reg = az[cap]
            compared.append((reg["chosen"], reg["vs_portfolio"], reg["best_single_rule"],
                             reg["vs_best_rule"]))  # fmt: skip

        for m, vp, rule, vr in compared:
            lines.append(
                f"| {cap:g} | `{m}` | {fmt_interval(ci(vp))} | {fmt_share(vp)} | `{rule}`: "
                f"{fmt_interval(ci(vr))} |"
            )
    lines.append("")
    if az_record is not None:
        from malloc_az import targets  # malloc_az builds on this script: imported when needed

        lines += [
            "Issue 27's targets for `gumbel_az` (from `malloc_az.py`; each must hold in two "
            f"regimes, {HEADLINE_CAPACITY:g} among them):",
            "",
            *targets(az_record),
            "",
        ]
    else:
        lines += [f"`gumbel_az`: no `{AZ_RESULTS}` on record yet.", ""]
    return lines


def render_page(record: dict, joined: dict[str, Any] | None = None) -> str:
    """The page, from the raw results file alone (no clock, no machine reads), and at the
    headline capacity the section of every regime from ``joined`` (:func:`companions`; None:
    no section)."""
    test, val = record["groups"]["test"], record["groups"]["validation"]
    env, budgets = record["env"], record["budgets"]
    settings = record["settings"]
    met, reason = target(record)
    best = best_non_learned(test)
    results = default_paths(env["capacity_fraction"])[0]
    regenerate = f"python {GENERATOR} --from_results {results}"
    lines = [
        "# Learned memory mapping against every non-learned method",
        "",
        f"Generated by `{GENERATOR}` from its raw results file `{results}` (every per-program "
        f"number, seeds, budgets, wall times); regenerate this page with `{regenerate}`.",
        "",
        provenance_line(record),
        "",
    ]
    if record["quick"]:
        lines += ["**A `--quick` smoke run (tiny programs and budgets): not a result.**", ""]
    if env["capacity_fraction"] != HEADLINE_CAPACITY:
        lines += [
            f"One capacity regime beside the [headline page]({Path(PAGE).name}) (capacity "
            f"{HEADLINE_CAPACITY:g}), whose section of every regime joins this page's numbers.",
            "",
        ]
    lines += [
        f"## Held-out programs: capacity {env['capacity_fraction']} x peak live bytes, alignment "
        f"{env['alignment']}",
        "",
        f'{len(test["names"])} programs of models never seen in training (`load_dataset("test")`); '
        "normalised benefit (fraction of the program's total), every placement checked by "
        "`validate`. Intervals: mean of the per-program difference, 95% paired bootstrap "
        f"({budgets['bootstrap_reps']:,} resamples of the programs, seed "
        f"{record['seeds']['bootstrap']}); wins / ties / losses count programs. The reported "
        "learned variant (chosen on the validation programs) is in bold.",
        "",
        f"| method | mean | median | kind | vs best non-learned (`{best}`) | vs `{LOWEST_XLA}` | "
        "wins / ties / losses vs best non-learned | mean gap to optimal or bound | s per "
        "placement |",
        "|---|---|---|---|---|---|---|---|---|",
        *table_rows(record, test, with_bound=True),
        "",
        "## Verdict",
        "",
        target_line(
            "A learned mapper beats the best non-learned method (portfolio included) on the "
            "held-out programs",
            met,
            reason,
        ),
        "",
        *readings(record),
        "",
        *([] if joined is None else regime_section(record, joined)),
        *(
            [
                'The earlier version of this page reported the target "met by PPO mlp + search" '
                "against `xla_best_fit` alone, with the search settings and the reported variant "
                "picked on the held-out programs; that claim is withdrawn: the table above is the "
                "verdict.",
                "",
            ]
            if env["capacity_fraction"] == HEADLINE_CAPACITY
            else []
        ),
        "## Choices made on the validation programs",
        "",
        f"{len(val['names'])} programs of the training models held out of training "
        f'(`load_dataset("validation")`: {", ".join(val["names"])}). The search settings of '
        "each network and the reported variant are the ones with the highest validation mean "
        "(the first listed on ties); the held-out programs were played once, afterwards.",
        "",
        "| network | simulations | root Gumbel noise | validation mean | seconds | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for r in record["search_grid"]:
        c = record["chosen_search"][r["network"]]
        is_chosen = c["simulations"] == r["simulations"] and c["gumbel_scale"] == r["gumbel_scale"]
        lines.append(
            f"| {r['network']} | {r['simulations']} | {r['gumbel_scale']} | "
            f"{r['validation_mean']:.4f} | {r['seconds']:.0f} | {'yes' if is_chosen else ''} |"
        )
    lines += [
        "",
        "| method (validation programs) | mean | kind |",
        "|---|---|---|",
    ]
    for m in methods_of(val, "learned") + sorted(
        methods_of(val, "non-learned"), key=lambda m: -float(np.mean(val["methods"][m]))
    ):
        label = f"**{m}** (reported)" if m == record["reported_variant"] else m
        lines.append(f"| {label} | {np.mean(val['methods'][m]):.4f} | {val['kind'][m]} |")
    # per program
    learned = methods_of(test, "learned")
    cols = learned + [LOWEST_XLA, "best fit [xla]", PORTFOLIO, RANDOM]
    cp = test["cpsat"]
    lines += [
        "",
        "## Per held-out program",
        "",
        "`portfolio` names the rule it took; CP-SAT ran on programs of at most "
        f"{budgets['cpsat_max_buffers']} buffers for {budgets['cpsat_seconds']} s, hinted with "
        "the portfolio's placement.",
        "",
        "| program | buffers | " + " | ".join(cols) + " | CP-SAT objective (bound, status) | "
        f"{BOUND} |",
        "|---|---|" + "---|" * len(cols) + "---|---|",
    ]
    for b, name in enumerate(test["names"]):
        row = [name, str(test["buffers"][b])]
        for m in cols:
            v = fmt(test["methods"][m][b])
            row.append(f"{v} ({test['portfolio_choice'][b]})" if m == PORTFOLIO else v)
        row.append(f"{fmt(cp['objective'][b])} ({fmt(cp['bound'][b])}, {cp['status'][b]})")
        row.append(fmt(cp["upper"][b]))
        lines.append("| " + " | ".join(row) + " |")
    # MiniMalloc
    lines += ["", "## MiniMalloc's challenging instances", ""]
    mm = record["groups"].get("minimalloc")
    if mm is None:
        lines.append(f"{record['minimalloc_note']}.")
    else:
        mbest = best_non_learned(mm)
        lines += [
            f"Fraction of bytes placed (capacity {env['minimalloc_capacity']:,} B; MiniMalloc "
            "places every byte of every instance, so the optimum is 1.000). The learned "
            f"mappers were chosen as above (no choice is made here). Best non-learned: `{mbest}`.",
            "",
            "| method | kind | " + " | ".join(mm["names"]) + " | mean |",
            "|---|---|" + "---|" * (len(mm["names"]) + 1),
        ]
        for m in methods_of(mm, "learned") + sorted(
            methods_of(mm, "non-learned"), key=lambda m: -float(np.mean(mm["methods"][m]))
        ):
            v = mm["methods"][m]
            lines.append(
                f"| {m} | {mm['kind'][m]} | "
                + " | ".join(fmt(x) for x in v)
                + f" | {np.mean(v):.3f} |"
            )
        if len(mm["names"]) >= 2:
            for m in methods_of(mm, "learned"):
                lines.append("")
                lines.append(
                    f"`{m}` - `{mbest}` over the instances: "
                    + fmt_interval(interval(record, mm, m, mbest))
                    + "."
                )
    # settings
    secs = record["seconds"]
    curves = record["curves"]
    lines += [
        "",
        "## Settings, budgets and wall times",
        "",
        f'- Game: `MallocGame` in "{env["order"]}" order, K = {env["num_candidates"]} candidate '
        f"offsets, max_buffers = {env['max_buffers']}, max_live = {env['max_live']} (covering "
        f"every program), set observation of M = {env['set_size']} placed buffers"
        + (f", {env['lookahead']} following buffers described" if "lookahead" in env else "")
        + ".",
        f"- Offering orders of the greedy rules (`accelrl.envs.malloc.workload.ORDERS`, keys and "
        "tie-breaks in `Workload.order`): xla = benefit/sqrt(size), benefit_per_size = "
        "benefit/size, benefit, size, start, duration, benefit_per_area = benefit/(size x "
        "duration), each descending except start; `lowest offset` is first fit (the lowest "
        "offset that fits, the game's action 1), `best fit` the smallest gap that fits "
        "(`best fit [xla]` is `xla_best_fit`); `lowest offset [start]` is the former "
        "`first_fit` row. `random legal`: uniform over the game's legal actions (spilling "
        f"included), mean of seeds {record['seeds']['random_legal']}.",
        f"- PPO: {len(record['train_programs'])} training programs, one per copy, "
        f"{budgets['ppo_env_steps_per_network']:,} env steps per network (fixed before the "
        f"run, not chosen on any programs), seed {record['seeds']['training']}, one seed "
        f"per network; rollout {settings['num_steps']}, {settings['num_minibatches']} "
        f"minibatches x {settings['update_epochs']} epochs, lr {settings['learning_rate']} "
        f"annealed, gamma {settings['gamma']}, lambda 0.95, entropy {settings['ent_coef']}; MLP "
        f"{tuple(settings['hidden_sizes'])} relu; set network: context MLP "
        f"{tuple(settings['hidden_sizes'])}, embeddings {settings['set_embed_dim']}, "
        f"{settings['set_heads']} attention heads. Greedy return on the training programs: "
        + ", ".join(f"{m} {v:.3f}" for m, v in record["train_means"].items())
        + ".",
        "- Search: Gumbel MuZero (`mctx.gumbel_muzero_policy`), all actions considered at the "
        "root, the game's `step_env` as the model (discount 1), settings from the grid "
        f"{budgets['search_grid']} (simulations, root noise) chosen on validation: "
        + ", ".join(
            f"{n} {c['simulations']} simulations, noise {c['gumbel_scale']}"
            for n, c in record["chosen_search"].items()
        )
        + ".",
        f"- `{BOUND}`: CP-SAT's objective where it proves optimality, else the smaller of its "
        "bound and the capacity LP bound (`capacity_lp_bound`); an upper bound on every method, "
        "not a method (on most programs it is not a placement), so it is not a candidate for "
        "the best non-learned method.",
        "- Wall time: "
        + ", ".join(f"training {n} {c['seconds']:.0f} s" for n, c in curves.items())
        + ", "
        + ", ".join(
            f"{k} {v:.0f} s" for k, v in secs.items() if k not in ("per_placement", "compile")
        )
        + f"; the whole run {record['wall_seconds']:.0f} s"
        + (
            f" (1-min load average {record['host']['load_start'][0]:.1f} at the start, "
            f"{record['host']['load_end'][0]:.1f} at the end: the seconds depend on it)"
            if "host" in record
            else ""
        )
        + ". Seconds per placement (the first table's last column): the wall time of placing "
        "one held-out program's whole layout; the greedy rules one program at a time in numpy "
        "(the portfolio: all its rules), the learned methods all programs as one jitted batch, "
        "its run time over their number"
        + (
            ", compiling excluded ("
            + ", ".join(f"`{m}` compiled in {v:.0f} s" for m, v in secs["compile"].items())
            + ")"
            if "compile" in secs
            else " (not recorded for the learned methods in this run)"
        )
        + ".",
        f"- Machine: {record['machine'].get('cpu_count')} CPUs; JAX device "
        f"{record.get('device', 'not recorded')}; jax {record['versions'].get('jax')}.",
        "",
        f"![summary]({Path(record['plot']).name})",
        "",
    ]
    return "\n".join(lines)


def make_plot(record: dict, path: Path) -> None:
    """Three panels: held-out benefit minus the best non-learned method per program, method
    means, and the training curves (from the raw results file alone)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = record["groups"]["test"]
    best = best_non_learned(test)
    b = np.asarray(test["methods"][best])
    shown = methods_of(test, "learned") + [LOWEST_XLA, "best fit [xla]", RANDOM]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=72)
    ax = axes[0]
    rng = np.random.default_rng(0)
    for j, m in enumerate(shown):
        d = np.asarray(test["methods"][m]) - b
        ax.scatter(d, j + rng.uniform(-0.15, 0.15, d.size), s=12, alpha=0.7)
        ax.plot([np.mean(d)] * 2, [j - 0.3, j + 0.3], "k-", lw=1.5)
    ax.axvline(0.0, color="k", ls="--", lw=0.8)
    ax.set_yticks(range(len(shown)), shown, fontsize=8)
    ax.set_xlabel(f"benefit - {best} (per program; bar: mean)")
    ax.set_title("held-out programs")
    ax = axes[1]
    means = {m: float(np.mean(v)) for m, v in test["methods"].items()}
    order = sorted(means, key=means.get)
    ax.barh(order, [means[m] for m in order], color="tab:blue")
    ax.tick_params(axis="y", labelsize=6)
    ax.axvline(float(np.mean(test["cpsat"]["upper"])), color="k", ls="--", lw=0.8, label="bound")
    ax.legend(fontsize=7)
    ax.set_xlabel("mean benefit (held-out)")
    ax.set_xlim(max(0.0, min(means.values()) - 0.05), 1.0)
    ax = axes[2]
    for net, curve in record["curves"].items():
        ax.plot(np.asarray(curve["env_steps"]) / 1e6, curve["episode_return"], label=f"PPO {net}")
    ax.set_xlabel("env steps (M)")
    ax.set_ylabel("return of the sampled policy")
    ax.set_title("training programs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72, metadata={"Software": None})
    plt.close(fig)


def render(record: dict, page: Path, plot: Path, folder: Path | None = None) -> None:
    """Write the page and plot of a raw results file; a full run at the headline capacity
    joins the other regimes' files found in ``folder`` (:func:`companions`)."""
    headline = record["env"]["capacity_fraction"] == HEADLINE_CAPACITY and not record["quick"]
    joined = companions(folder) if headline and folder is not None else None
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_page(record, joined))
    make_plot(record, plot)


def command_line(args: Args) -> str:
    """The command that reproduces ``args`` (flags for the fields that differ from defaults)."""
    return options_command(GENERATOR, args)


def main(args: Args | None = None) -> dict:
    args = args or tyro.cli(Args)
    if args.from_results is not None:
        record = load_results(args.from_results)
        quick = bool(record.get("quick"))
        if args.page is None and not quick:
            page = REPO / record.get("page", PAGE)
        else:
            page = (
                Path(args.page)
                if args.page is not None
                else Path(args.from_results).with_suffix(".md")
            )
        plot_name = Path(record.get("plot", PLOT)).name
        plot = Path(args.plot) if args.plot is not None else page.with_name(plot_name)
        check_output(page, quick)
        check_output(plot, quick)
        render(record, page, plot, Path(args.from_results).parent)
        print(f"wrote {page} and {plot}")
        return record
    out, page, plot = output_paths(args, args.quick)
    record = {**provenance(command_line(args))}
    allow_dirty = args.allow_dirty or args.quick  # a quick run writes no result into docs/
    if record["clean_tree"] is False and not allow_dirty:
        raise SystemExit(
            "malloc_experiment: the tree has uncommitted changes; commit them, or pass "
            "--allow_dirty (the page then says so)"
        )
    record.update(run_experiment(args))
    write_results(out, record, allow_dirty=allow_dirty)
    render(record, page, plot, out.parent)
    met, reason = target(record)
    print(f"target {'met' if met else 'not met'}: {reason}\nwrote {out}, {page} and {plot}")
    return record


if __name__ == "__main__":
    main()
