"""Gumbel AlphaZero (``gumbel_az``) against every non-learned memory mapper, per capacity regime.

The entry point of issue 27's comparison (item 4), under the results protocol. For each
capacity regime (a fraction of each program's peak live bytes):

* Programs as ``malloc_experiment.py``: ``load_dataset("train")`` to train on (one program per
  environment copy), ``"validation"`` for every choice, ``"test"`` (model families never seen
  in training) evaluated once the choices are fixed. The game: ``MallocGame`` in ``"xla"``
  order, K candidate offsets, the set observation.
* Non-learned methods (``Experiment.greedy_rows``): lowest offset and best fit in every
  offering order of ``ORDERS``, and their per-program best, the ``portfolio``.
* ``gumbel_az``: trained with searches of ``--train_simulations`` simulations; played greedily
  (the network's mode) and with a search of each of ``--simulations`` simulations without root
  noise. Rows are named ``gumbel_az greedy`` / ``gumbel_az search N``.
* Choices on the validation programs only: the reported variant (greedy or a simulation count)
  by validation mean, the best single rule by validation mean. Then every row once on the test
  programs; the verdict: the reported variant against the portfolio and against the best
  single rule, paired bootstrap intervals over test programs ("beats" only when the interval
  lies above zero); the share of test programs where it beats the portfolio, among those where
  they differ; wall seconds per placement of each row.

The full comparison and how its budget was chosen:

1. The training budget, fixed on validation at capacity 0.5 (``--validation_only`` probes, seed
   0, the set network, 16 training simulations, rollouts of 64 steps), by the validation mean
   of each probe's chosen variant (portfolio 0.7228, lowest offset [xla] 0.7111):

   ============================  =======  ========  =========  ==========
   probe                          greedy   search 8  search 32  search 128
   ============================  =======  ========  =========  ==========
   300 updates, lookahead 2       0.6609   0.6851    0.6798     0.6759
   600 updates, lookahead 2       0.6671   0.6773    0.6935     0.7017
   600 updates, lookahead 8       0.6496   0.6893    0.6868     0.6958
   ============================  =======  ========  =========  ==========

   Chosen: 600 updates, lookahead 2 (the defaults of ``--updates``, ``--rollout_steps`` and
   ``--lookahead``), kept for every regime. Twice the updates gained 0.017; describing 8
   following buffers instead of 2 did not help. No probe reached the best single rule on
   validation.
2. ``python scripts/experiments/malloc_az.py`` (capacities 0.25, 0.5, 0.75; simulations 8, 32,
   128) from a clean, committed tree; the raw results file goes to
   ``docs/results/malloc_az.json`` and the page to ``docs/malloc_az.md``; the rows then join
   ``docs/malloc_experiment.md`` (its first table stays the held-out programs at 0.5) with the
   CP-SAT optimum/bound column of ``malloc_experiment.py``.
3. Targets (issue 27, :func:`targets`): the reported variant beats the portfolio (interval
   above zero) in at least two regimes, 0.5 among them; closes a third of the gap from the
   best single rule to the LP bound; beats the portfolio on >= 70% of the test programs where
   they differ. A target not met is reported as not met. Where a GPU is lent, the same run
   with more simulations there, reported beside the CPU figures.

Usage::

    python scripts/experiments/malloc_az.py --quick      # minutes; a temporary folder, never docs/
    python scripts/experiments/malloc_az.py              # the full comparison (hours on 2 cores)
    python scripts/experiments/malloc_az.py              # again after a kill: continues in
                                                         # runs/malloc_az (--work)
    python scripts/experiments/malloc_az.py --from_results docs/results/malloc_az.json
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from malloc_experiment import Args as ExperimentArgs
from malloc_experiment import (
    Experiment,
    choose,
    compare,
    fmt_share,
    greedy_policy,
    play_search,
    programs,
)

from accelrl.results import (
    check_output,
    load_results,
    options_command,
    provenance,
    provenance_line,
    target_line,
    write_results,
)

REPO = Path(__file__).resolve().parents[2]
GENERATOR = "scripts/experiments/malloc_az.py"
PAGE = "docs/malloc_az.md"
RESULTS = "docs/results/malloc_az.json"
PLOT = "docs/malloc_az_curves.png"
PORTFOLIO = "portfolio"
GREEDY = "gumbel_az greedy"
GAP_SHARE = 1 / 3
"""Target: the share of the gap from the best single rule to the bound the agent closes."""
WIN_SHARE = 0.7
"""Target: the share of test programs, where the two differ, on which it beats the portfolio."""
HEADLINE_CAPACITY = 0.5
"""The regime among the (at least two) where the agent must beat the portfolio."""


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of malloc_az."""

    quick: bool = False
    """Smoke run: small programs (train <= 70 buffers, 3 validation and 4 test programs of <= 60
    buffers), capacity 0.5 only, 2 updates, searches of 2 and 4 simulations, 200 bootstrap
    replicates; writes into a temporary folder unless ``--out`` says otherwise (never docs/)."""
    validation_only: bool = False
    """A choice-stage probe: train, then play every row on the validation programs only (no
    test program is played, no verdict or page); prints the validation means and writes the
    raw file under ``--out`` (default a temporary folder, never docs/). Plan step 1 (the
    training budget) is chosen from such probes."""
    seed: int = 0
    """Training seed (``training_key(seed)``); evaluation keys derive from it."""
    capacities: tuple[float, ...] = (0.25, 0.5, 0.75)
    """Capacity regimes (fractions of each program's peak live bytes)."""
    simulations: tuple[int, ...] = (8, 32, 128)
    """Search sizes of the evaluated ``gumbel_az search N`` rows."""
    train_simulations: int = 16
    """Simulations of every search during training."""
    updates: int = 600
    """Training updates (each: ``rollout_steps`` searched steps of every training program);
    600 chosen on validation (the module docstring's probes)."""
    rollout_steps: int = 64
    """Searched steps per copy and update (0: the longest training program's length)."""
    gradient_steps: int = 16
    """Gradient steps per update."""
    batch_size: int = 256
    """Targets per gradient step."""
    buffer_size: int = 65_536
    """Replay buffer capacity (targets)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    network: str = "set"
    """``mlp`` or ``set`` (the set network over candidates and placed buffers)."""
    num_candidates: int = 8
    """K, candidate offsets (actions 1..K)."""
    set_size: int = 16
    """M, placed buffers in the set observation."""
    lookahead: int = 2
    """Following buffers described in the observation (the game's ``lookahead``: their sizes,
    live ranges and benefits, what a value-aware spill needs to see)."""
    alignment: int = 64
    """Bytes per address unit."""
    bootstrap_reps: int = 10_000
    """Paired bootstrap replicates (resampling seed 0, 95% intervals)."""
    segment: int = 10
    """Updates per jitted segment (a progress line after each)."""
    work: Path | None = None
    """Work folder (default ``runs/malloc_az``; ``--quick``: a temporary one): per capacity
    regime, the training run folder (a checkpoint after every segment) and the finished regime's
    results. The same command run again continues there: finished regimes are kept, a cut
    training resumes from its newest checkpoint; a folder made by other settings or at another
    commit is refused."""
    out: Path | None = None
    """Raw results file (default: docs/results/malloc_az.json; ``--quick``: a temporary folder)."""
    page: Path | None = None
    """Markdown page (default: docs/malloc_az.md for a full run; else beside ``--out``)."""
    from_results: Path | None = None
    """Compute nothing: render the page from this raw results file alone."""
    allow_dirty: bool = False
    """Write results from a tree with uncommitted changes (the page then says so)."""


def command_line(args: Args) -> str:
    """The command that reproduces ``args`` (flags for the fields that differ from defaults)."""
    return options_command(GENERATOR, args)


# ---------------------------------------------------------------------------------------------
# Compute (imports JAX)


def settings(args: Args) -> dict[str, Any]:
    """What a work folder's contents depend on: every argument but where outputs go."""
    skip = {"out", "page", "from_results", "allow_dirty", "work"}
    return {k: v for k, v in _jsonable(dataclasses.asdict(args)).items() if k not in skip}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return str(x) if isinstance(x, Path) else x


def check_work(work: Path, args: Args, commit: str | None) -> None:
    """Claim ``work`` for this run (``work.json``: the settings and commit), or refuse in one
    line when it holds another run's work."""
    import json

    want = {"settings": settings(args), "commit": commit}
    claim = work / "work.json"
    if claim.is_file():
        had = json.loads(claim.read_text())
        if had != want:
            diff = sorted(k for k in ("settings", "commit") if had.get(k) != want[k])
            raise SystemExit(
                f"malloc_az: {work} holds a run with other {' and '.join(diff)}; pass another "
                "--work or remove it"
            )
        print(f"malloc_az: continuing the run in {work}", flush=True)
        return
    work.mkdir(parents=True, exist_ok=True)
    claim.write_text(json.dumps(want, indent=1))


def train_agent(args: Args, ex: Experiment, run_dir: Path) -> tuple[Any, Any, dict]:
    """Train ``gumbel_az`` on the training programs (one per copy) in the run folder
    ``run_dir`` (continuing from its newest checkpoint); agent, state, curve."""
    import jax
    import jax.numpy as jnp

    from accelrl.agents.gumbel_az import GumbelAZConfig, make_gumbel_az
    from accelrl.agents.runner import Runner

    params = ex.params["train"]
    n = int(params.size.shape[0])
    longest = max(w.num_buffers for w in ex.groups["train"])
    steps = args.rollout_steps or longest
    updates = 2 if args.quick else args.updates
    config = GumbelAZConfig(
        num_envs=n,
        rollout_steps=steps,
        total_timesteps=n * steps * updates,
        num_simulations=args.train_simulations,
        max_num_considered_actions=ex.env.num_actions,
        batch_size=args.batch_size,
        gradient_steps=args.gradient_steps,
        buffer_size=max(args.buffer_size, n * steps),
        network=args.network,
        set_embed_dim=32,
    )
    agent = make_gumbel_az(config, ex.env, params)
    hparams = agent.default_hparams().replace(learning_rate=jnp.float32(args.learning_rate))

    def progress(runner: Any, state: Any, m: dict[str, np.ndarray]) -> None:
        done = int(np.asarray(state.update_step).reshape(-1)[0])
        print(
            f"[gumbel_az] update {done}/{agent.num_updates}: train return "
            f"{m['episode_return'][0, -1]:.3f}, policy loss {m['policy_loss'][0, -1]:.3f}",
            flush=True,
        )

    runner = Runner(
        agent, [args.seed], hparams, out_dir=run_dir, progress=False, on_segment=progress,
        segments=max(1, -(-agent.num_updates // args.segment)), checkpoint_every=1,
        metadata={"settings": settings(args), "capacity": ex.args.capacity_fraction},
    )  # fmt: skip
    try:
        state, _ = runner.restore()
        print(f"[gumbel_az] resuming {run_dir}", flush=True)
    except FileNotFoundError:
        state = None
    result = runner.train(state)
    curve: dict[str, Any] = {
        k: np.asarray(result.metrics[k][0], np.float64).tolist()
        for k in ("env_steps", "episode_return", "policy_loss")
    }
    curve["seconds"] = result.train_seconds
    return agent, jax.tree.map(lambda x: x[0], result.state), curve


def play_variant(ex: Experiment, agent: Any, state: Any, group: str, variant: str, key) -> tuple:
    """``(scores, seconds per placement, compile seconds)`` of one ``gumbel_az`` variant on
    ``group``: a placement is one program's whole layout (as the greedy rules' seconds); the
    programs run as one jitted batch, compiled ahead, and its run time is split evenly."""
    timing: dict[str, float] = {}
    if variant == GREEDY:
        scores = ex.play(group, greedy_policy(agent, state), key, timing)
    else:
        sims = int(variant.rsplit(" ", 1)[1])
        scores = play_search(ex, agent, state, group, sims, 0.0, key, timing)
    return scores, timing["run"] / len(ex.groups[group]), timing["compile"]


def run_regime(args: Args, capacity: float, work: Path) -> dict[str, Any]:
    """Train and compare at one capacity regime (its work in ``work``: the training run folder
    and, once finished, ``regime.json``, which a rerun returns as it is)."""
    import json

    import jax

    from accelrl.agents.evaluation import evaluation_key
    from accelrl.agents.reporting import write_json_atomic
    from accelrl.envs.malloc import capacity_lp_bound

    ex_args = ExperimentArgs(
        quick=args.quick,
        capacity_fraction=capacity,
        num_candidates=args.num_candidates,
        set_size=args.set_size,
        lookahead=args.lookahead,
        alignment=args.alignment,
        minimalloc_dir=Path("/nonexistent"),
    )
    done = work / "regime.json"
    if done.is_file():
        print(f"malloc_az: capacity {capacity} kept from {done}", flush=True)
        return json.loads(done.read_text())
    groups, _ = programs(ex_args)
    groups["minimalloc"] = []
    ex = Experiment(ex_args, groups)
    agent, state, curve = train_agent(args, ex, work / "train")
    sims = (2, 4) if args.quick else args.simulations
    variants = [GREEDY] + [f"gumbel_az search {s}" for s in sims]
    key = evaluation_key(args.seed)
    out: dict[str, Any] = {"capacity": capacity, "curve": curve, "groups": {}}
    for group in ("validation",) if args.validation_only else ("validation", "test"):
        bound = [
            min(1.0, capacity_lp_bound(w, *ex.capacity(group, b)))
            for b, w in enumerate(ex.groups[group])
        ]
        rows, secs = ex.greedy_rows(group)
        rows[PORTFOLIO] = np.max(np.asarray(list(rows.values())), axis=0).tolist()
        secs[PORTFOLIO] = float(sum(secs.values()))
        compile_seconds = {}
        for v in variants:
            rows[v], secs[v], compile_seconds[v] = play_variant(
                ex, agent, state, group, v, jax.random.fold_in(key, 1)
            )
        out["groups"][group] = {
            "programs": [w.name for w in ex.groups[group]],
            "rows": rows,
            "seconds_per_placement": secs,
            "compile_seconds": compile_seconds,
            "bound": bound,
        }
    val = out["groups"]["validation"]["rows"]
    rules = [n for n in val if n != PORTFOLIO and not n.startswith("gumbel_az")]
    out["chosen"] = choose({v: float(np.mean(val[v])) for v in variants})
    out["best_single_rule"] = choose({r: float(np.mean(val[r])) for r in rules})
    if not args.validation_only:
        test = out["groups"]["test"]["rows"]
        reps = 200 if args.quick else args.bootstrap_reps
        out["vs_portfolio"] = compare(test[out["chosen"]], test[PORTFOLIO], reps)
        out["vs_best_rule"] = compare(test[out["chosen"]], test[out["best_single_rule"]], reps)
    write_json_atomic(done, out)
    return out


# ---------------------------------------------------------------------------------------------
# Page


def fmt_compare(c: dict[str, Any]) -> str:
    return (
        f"{c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]: {c['verdict']}; "
        f"wins where they differ: {fmt_share(c)}"
    )


def gap_closed(regime: dict[str, Any]) -> float | None:
    """The share of the gap from the best single rule to the bound that the reported variant
    closes, in means over the test programs: ``(agent - rule) / (bound - rule)``; ``None``
    where the bound is not above the rule (or the record has no bound)."""
    g = regime["groups"]["test"]
    if "bound" not in g:
        return None
    agent = float(np.mean(g["rows"][regime["chosen"]]))
    rule = float(np.mean(g["rows"][regime["best_single_rule"]]))
    gap = float(np.mean(g["bound"])) - rule
    return (agent - rule) / gap if gap > 1e-9 else None


def targets(record: dict[str, Any]) -> list[str]:
    """Issue 27's three targets, each judged per capacity regime and met when it holds in at
    least two regimes, :data:`HEADLINE_CAPACITY` among them (one target line each)."""
    regimes = record["regimes"]

    def where(test) -> list[float]:
        return [r["capacity"] for r in regimes if test(r)]

    def enough(caps: list[float]) -> bool:
        return len(caps) >= min(2, len(regimes)) and HEADLINE_CAPACITY in caps

    def held(caps: list[float]) -> str:
        return f"holds at {', '.join(f'{c:g}' for c in caps) or 'no regime'}"

    beats = where(lambda r: r["vs_portfolio"]["verdict"] == "beats")
    diffs = "; ".join(
        f"{r['capacity']:g}: {r['vs_portfolio']['diff']:+.4f} [{r['vs_portfolio']['low']:+.4f}, "
        f"{r['vs_portfolio']['high']:+.4f}]"
        for r in regimes
    )
    closed = {r["capacity"]: gap_closed(r) for r in regimes}
    gaps = where(lambda r: closed[r["capacity"]] is not None and closed[r["capacity"]] >= GAP_SHARE)
    gap_s = "; ".join(f"{c:g}: {'n/a' if v is None else f'{v:.2f}'}" for c, v in closed.items())
    wins = where(lambda r: (r["vs_portfolio"]["win_share_where_differ"] or 0.0) >= WIN_SHARE)
    two = f"in two regimes, {HEADLINE_CAPACITY:g} among them"
    win_s = "; ".join(f"{r['capacity']:g}: {fmt_share(r['vs_portfolio'])}" for r in regimes)
    return [
        target_line(
            f"beats the portfolio (paired interval above zero) {two}",
            enough(beats), f"{held(beats)}; difference per regime {diffs}",
        ),
        target_line(
            f"closes at least {GAP_SHARE:.2f} of the gap from the best single rule to the LP "
            f"bound {two}",
            enough(gaps), f"{held(gaps)}; share closed per regime {gap_s}",
        ),
        target_line(
            f"beats the portfolio on at least {WIN_SHARE:.0%} of the test programs where they "
            f"differ {two}",
            enough(wins), f"{held(wins)}; per regime {win_s}",
        ),
    ]  # fmt: skip


def seconds_note(group: dict[str, Any]) -> str:
    """What the table's seconds are: a placement is one program's whole layout. Records made
    before ``compile_seconds`` was kept timed gumbel_az per buffer placed, compiling included;
    the note says so instead of letting the two columns be compared."""
    if "compile_seconds" not in group:
        return (
            "Seconds: the greedy rules' are per program placed (numpy, one program at a time); "
            "in this record the `gumbel_az` rows' are per *buffer* placed, compiling included "
            "(the test programs as one jitted batch), so the two are not comparable. Records "
            "made since time both per program, compiling excluded."
        )
    return (
        "Seconds per placement: one program's whole layout; the greedy rules one program at a "
        "time in numpy (the portfolio: all its rules), `gumbel_az` all programs as one jitted "
        "batch, its run time over their number, compiling excluded ("
        + ", ".join(f"`{v}` {s:.0f} s" for v, s in group["compile_seconds"].items())
        + ")."
    )


def make_plot(record: dict[str, Any], path: Path) -> None:
    """Training curves per capacity regime (return of the searched training play and the
    policy loss per update), from the raw results file alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=72)
    for regime in record["regimes"]:
        curve = regime["curve"]
        x = np.arange(1, len(curve["episode_return"]) + 1)
        label = f"capacity {regime['capacity']:g}"
        axes[0].plot(x, curve["episode_return"], label=label)
        axes[1].plot(x, curve["policy_loss"], label=label)
    axes[0].set_ylabel("return of the searched training play")
    axes[1].set_ylabel("policy loss (cross-entropy to the search)")
    for ax in axes:
        ax.set_xlabel("update")
        ax.legend(fontsize=7)
    fig.suptitle("gumbel_az training on the training programs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72, metadata={"Software": None})
    plt.close(fig)


def render(record: dict[str, Any], page: Path) -> None:
    """Write the page and, beside it, its plot."""
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_page(record))
    make_plot(record, page.with_name(Path(PLOT).name))


def render_page(record: dict[str, Any]) -> str:
    """The markdown page from the raw results alone."""
    lines = [
        "# Gumbel AlphaZero on the memory-mapping game, per capacity regime",
        "",
        f"<!-- generated by {GENERATOR} from its raw results file; do not edit -->",
        "",
        provenance_line(record),
        "",
        "Every choice on the validation programs; test programs evaluated once. Intervals: paired "
        "bootstrap over test programs of the mean difference (95%). The bound is "
        "`capacity_lp_bound` per program (fragmentation ignored), an upper bound on every "
        "method.",
        "",
        "## Targets (issue 27)",
        "",
        *targets(record),
        "",
        f"![training curves]({Path(PLOT).name})",
    ]
    for regime in record["regimes"]:
        g = regime["groups"]["test"]
        lines += [
            "",
            f"## Capacity {regime['capacity']}",
            "",
            f"Reported variant (validation): `{regime['chosen']}`; best single rule "
            f"(validation): `{regime['best_single_rule']}`.",
            "",
            "| method | test mean | validation mean | s per placement |",
            "|---|---|---|---|",
        ]
        val = regime["groups"]["validation"]["rows"]
        for name, scores in sorted(g["rows"].items(), key=lambda kv: -np.mean(kv[1])):
            lines.append(
                f"| {name} | {np.mean(scores):.4f} | {np.mean(val[name]):.4f} | "
                f"{g['seconds_per_placement'][name]:.2e} |"
            )
        if "bound" in g:
            lines.append(
                f"| LP bound (not a method) | {np.mean(g['bound']):.4f} | "
                f"{np.mean(regime['groups']['validation']['bound']):.4f} | - |"
            )
        lines += ["", seconds_note(g), ""]
        lines += [
            f"- vs portfolio: {fmt_compare(regime['vs_portfolio'])}",
            f"- vs best single rule: {fmt_compare(regime['vs_best_rule'])}",
            f"- training: {len(regime['curve']['env_steps'])} updates, "
            f"{regime['curve']['seconds']:.0f} s",
        ]
    return "\n".join(lines) + "\n"


def main(args: Args | None = None) -> dict:
    args = args or tyro.cli(Args)
    if args.from_results is not None:
        record = load_results(args.from_results)
        quick = bool(record.get("quick"))
        default = Path(args.from_results).with_suffix(".md") if quick else REPO / PAGE
        page = Path(args.page) if args.page is not None else default
        render(record, check_output(page, quick))
        print(f"wrote {page} and its plot")
        return record
    probe = args.quick or args.validation_only  # never docs/
    if args.out is not None:
        out = Path(args.out)
    elif probe:
        out = Path(tempfile.mkdtemp(prefix="malloc_az_probe_")) / "malloc_az.json"
    else:
        out = REPO / RESULTS
    page = Path(args.page) if args.page is not None else None
    if page is None:
        page = REPO / PAGE if args.out is None and not probe else out.with_suffix(".md")
    check_output(out, probe)
    check_output(page, probe)
    record = provenance(command_line(args))
    record.update({"generator": GENERATOR, "page": PAGE, "quick": args.quick,
                   "validation_only": args.validation_only})  # fmt: skip
    allow_dirty = args.allow_dirty or probe
    if record["clean_tree"] is False and not allow_dirty:
        raise SystemExit(
            "malloc_az: the tree has uncommitted changes; commit them, or pass --allow_dirty "
            "(the page then says so)"
        )
    t0 = time.perf_counter()
    capacities = (0.5,) if args.quick else args.capacities
    if args.work is not None:
        work = Path(args.work)
    elif args.quick:
        work = Path(tempfile.mkdtemp(prefix="malloc_az_work_"))
    else:
        work = REPO / "runs" / "malloc_az"
    check_work(work, args, record["commit"])
    record["regimes"] = [run_regime(args, c, work / f"capacity_{c:g}") for c in capacities]
    record["wall_seconds"] = time.perf_counter() - t0
    write_results(out, record, allow_dirty=allow_dirty)
    if args.validation_only:
        for regime in record["regimes"]:
            rows = regime["groups"]["validation"]["rows"]
            print(f"capacity {regime['capacity']}: validation means (chosen "
                  f"{regime['chosen']}, best single rule {regime['best_single_rule']})")  # fmt: skip
            for name, scores in sorted(rows.items(), key=lambda kv: -np.mean(kv[1])):
                print(f"  {np.mean(scores):.4f}  {name}")
        print(f"wrote {out} (validation only: no page)")
        return record
    render(record, page)
    print(f"wrote {out}, {page} and its plot")
    return record


if __name__ == "__main__":
    main()
