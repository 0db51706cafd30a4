"""Every non-learned memory mapper at several capacity regimes, under the results protocol.

The groundwork for comparisons per capacity regime (issue 27): on the validation and held-out
programs (``load_dataset("validation")``, ``load_dataset("test")``) and the large set
(``load_dataset("large")``: training steps of 1,600-4,000 buffers), at each capacity
(a fraction of each program's peak live bytes), lowest offset and best fit in every offering
order of ``ORDERS``, their per-program best (``portfolio``), random legal play in the game
(``"xla"`` order, K candidates; the mean of several seeds) and the capacity LP bound
(``capacity_lp_bound``, an upper bound on every method; no CP-SAT here). Every placement is
checked by ``validate``. Also the wall time per placement of each greedy rule.

    python scripts/experiments/malloc_baselines.py             # ~2-5 minutes on 2 cores
    python scripts/experiments/malloc_baselines.py --quick     # into a temporary folder
    python scripts/experiments/malloc_baselines.py --from_results docs/results/malloc_baselines.json
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from malloc_experiment import (
    PORTFOLIO,
    RANDOM,
    RULE_NAMES,
    choose,
    fmt_interval,
)

from accelrl.results import (
    check_output,
    load_results,
    options_command,
    provenance,
    provenance_line,
    write_results,
)

REPO = Path(__file__).resolve().parents[2]
GENERATOR = "scripts/experiments/malloc_baselines.py"
PAGE = "docs/malloc_baselines.md"
RESULTS = "docs/results/malloc_baselines.json"
BOUND = "capacity LP bound"
SPLITS = ("validation", "test", "large")


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of malloc_baselines."""

    capacities: tuple[float, ...] = (0.25, 0.5, 0.75)
    """Capacity regimes, as fractions of each program's peak live bytes."""
    alignment: int = 64
    """Bytes per address unit."""
    num_candidates: int = 8
    """K, the game's candidate offsets (random legal play)."""
    splits: tuple[str, ...] = SPLITS
    """Program sets (``validation`` and ``test`` are required: the page's tables)."""
    random_seeds: int = 3
    """Seeds of random legal play (its row is their mean)."""
    bootstrap_reps: int = 10_000
    """Paired bootstrap replicates of the intervals (resampling seed 0)."""
    quick: bool = False
    """Smoke run: capacity 0.5 only, programs of <= 60 buffers, 2 random seeds; writes into a
    temporary folder unless ``--out`` says otherwise (never into docs/)."""
    out: Path | None = None
    """Raw results file (default: docs/results/malloc_baselines.json; ``--quick``: a temporary
    folder); the page goes beside it unless ``--page`` says where."""
    page: Path | None = None
    """Markdown page (default: docs/malloc_baselines.md for a full run)."""
    from_results: Path | None = None
    """Compute nothing: render the page from this raw results file alone."""
    allow_dirty: bool = False
    """Write results from a tree with uncommitted changes (the page then says so)."""


def command_line(args: Args) -> str:
    """The command that reproduces ``args`` (flags for the fields that differ from defaults)."""
    return options_command(GENERATOR, args)


def compute(args: Args) -> dict[str, Any]:
    """Every non-learned method's per-program scores at every capacity regime."""
    import jax

    from accelrl.envs.malloc import (
        MallocGame,
        capacity_lp_bound,
        load_dataset,
        offsets_in_bytes,
        random_policy,
        required_slots,
        rollout,
        validate,
    )
    from accelrl.envs.malloc.solvers import greedy, greedy_rules

    t_start = time.perf_counter()
    groups = {s: load_dataset(s) for s in args.splits}
    capacities = (0.5,) if args.quick else tuple(args.capacities)
    n_seeds = 2 if args.quick else args.random_seeds
    if args.quick:
        groups = {s: [w for w in ws if w.num_buffers <= 60][:4] for s, ws in groups.items()}
        groups = {s: ws for s, ws in groups.items() if ws}  # the large set has none that small

    def game(ws: list) -> tuple[Any, Any]:  # one game per set: padded to its own largest
        env = MallocGame(
            max_buffers=max(w.num_buffers for w in ws),
            max_live=max(required_slots(w, w.order("xla")) for w in ws),
            num_candidates=args.num_candidates,
            alignment=args.alignment,
            order="xla",
            default_workload=ws[0],
        )
        return env, jax.jit(jax.vmap(lambda q, k: rollout(env, q, random_policy, k)[0]))

    games = {split: game(ws) for split, ws in groups.items()}
    regimes = []
    for frac in capacities:
        regime: dict[str, Any] = {"capacity_fraction": frac, "splits": {}, "per_placement": {}}
        for split, ws in groups.items():
            env, run = games[split]
            per_placement = {}
            params = env.make_params(ws, capacity_fraction=frac)
            caps = [int(params.capacity[b]) * args.alignment for b in range(len(ws))]
            methods: dict[str, list[float]] = {}
            for rule, order in greedy_rules():
                name = f"{RULE_NAMES[rule]} [{order}]"
                t0 = time.perf_counter()
                offs = [
                    greedy(w, c, args.alignment, order, rule) for w, c in zip(ws, caps, strict=True)
                ]
                per_placement[name] = (time.perf_counter() - t0) / len(ws)  # s per program
                if split == "test":
                    regime["per_placement"][name] = per_placement[name]
                methods[name] = [
                    validate(w, c, o, args.alignment)
                    for w, c, o in zip(ws, caps, offs, strict=True)
                ]
            table = np.asarray(list(methods.values()))
            choice = [list(methods)[j] for j in table.argmax(axis=0)]
            methods[PORTFOLIO] = table.max(axis=0).tolist()
            per_seed = []
            for s in range(n_seeds):
                keys = jax.random.split(jax.random.fold_in(jax.random.key(0), s), len(ws))
                states = run(params, keys)
                per_seed.append(
                    [
                        validate(
                            w,
                            c,
                            offsets_in_bytes(*jax.tree.map(lambda x, b=b: x[b], (states, params))),
                            args.alignment,
                        )
                        for b, (w, c) in enumerate(zip(ws, caps, strict=True))
                    ]
                )
            methods[RANDOM] = np.mean(per_seed, axis=0).tolist()
            bound = [capacity_lp_bound(w, c, args.alignment) for w, c in zip(ws, caps, strict=True)]
            regime["splits"][split] = {
                "names": [w.name for w in ws],
                "buffers": [w.num_buffers for w in ws],
                "methods": methods,
                "portfolio_choice": choice,
                "random_per_seed": per_seed,
                "bound": bound,
                "per_placement": {**per_placement, PORTFOLIO: sum(per_placement.values())},
            }
        regime["per_placement"][PORTFOLIO] = sum(regime["per_placement"].values())
        regimes.append(regime)
        print(f"capacity {frac}: done, {time.perf_counter() - t_start:.0f} s", flush=True)
    return {
        "generator": GENERATOR,
        "page": PAGE,
        "quick": args.quick,
        "alignment": args.alignment,
        "num_candidates": args.num_candidates,
        "seeds": {"random_legal": list(range(n_seeds)), "bootstrap": 0},
        "bootstrap_reps": args.bootstrap_reps,
        "regimes": regimes,
        "device": f"{jax.devices()[0].platform} ({len(jax.devices())} device(s))",
        "wall_seconds": time.perf_counter() - t_start,
    }


def check_record(record: dict) -> None:
    """Refuse a raw results file whose numbers contradict each other: per regime and split, the
    portfolio must be the per-program best of the greedy rules and no method may exceed the
    capacity LP bound.

    Raises:
        ValueError: naming the regime, split and method.
    """
    for regime in record["regimes"]:
        frac = regime["capacity_fraction"]
        for split, group in regime["splits"].items():
            rules = [v for m, v in group["methods"].items() if m not in (PORTFOLIO, RANDOM)]
            if not np.allclose(np.max(rules, axis=0), group["methods"][PORTFOLIO]):
                raise ValueError(
                    f"capacity {frac}, {split}: the portfolio is not the best greedy rule per program"
                )
            bound = np.asarray(group["bound"])
            for m, v in group["methods"].items():
                if np.any(np.asarray(v) > bound + 1e-6):
                    raise ValueError(f"capacity {frac}, {split}: {m} exceeds the {BOUND}")


def large_table(group: dict, frac: float, reps: int, seed: int) -> list[str]:
    """The large set's table of one capacity regime (page lines)."""
    from accelrl.results import paired_bootstrap

    methods, port = group["methods"], group["methods"][PORTFOLIO]
    names = sorted(methods, key=lambda m: -float(np.mean(methods[m])))
    sizes = group["buffers"]
    lines = [
        f"Large set at capacity {frac} ({len(group['names'])} training steps of "
        f'{min(sizes):,}-{max(sizes):,} buffers, `load_dataset("large")`; no choice is made '
        "on it):",
        "",
        "| method | mean (large) | median | vs portfolio | seconds per placement |",
        "|---|---|---|---|---|",
    ]
    for m in names:
        v = methods[m]
        vs = "-" if m == PORTFOLIO else fmt_interval(paired_bootstrap(v, port, reps, seed))
        per = group.get("per_placement", {}).get(m)
        lines.append(
            f"| {m} | {np.mean(v):.3f} | {np.median(v):.3f} | {vs} | "
            f"{'-' if per is None else f'{per:.4f}'} |"
        )
    b = group["bound"]
    lines += [f"| {BOUND} | {np.mean(b):.3f} | {np.median(b):.3f} | - | - |", ""]
    return lines


def render_page(record: dict) -> str:
    """The page, from the raw results file alone (checked by :func:`check_record` first)."""
    from accelrl.results import paired_bootstrap

    check_record(record)

    reps, seed = int(record["bootstrap_reps"]), int(record["seeds"]["bootstrap"])
    lines = [
        "# Non-learned memory mappers at several capacity regimes",
        "",
        f"Generated by `{GENERATOR}` from its raw results file `{RESULTS}`; regenerate with "
        f"`python {GENERATOR} --from_results {RESULTS}`.",
        "",
        provenance_line(record),
        "",
    ]
    if record["quick"]:
        lines += ["**A `--quick` smoke run: not a result.**", ""]
    lines += [
        "Normalised benefit (fraction of the program's total), every placement checked by "
        f"`validate`, alignment {record['alignment']} B. Methods: lowest offset (first fit) and "
        "best fit in each offering order of `accelrl.envs.malloc.workload.ORDERS`, their "
        f"per-program best (`{PORTFOLIO}`), `{RANDOM}` play in the game (xla order, K = "
        f"{record['num_candidates']}, mean of seeds {record['seeds']['random_legal']}), and the "
        f"`{BOUND}` (`capacity_lp_bound`: per-step capacity, fragmentation ignored; an upper "
        "bound on every method). Intervals: mean of the per-program difference to the portfolio, "
        f"95% paired bootstrap ({reps:,} resamples, seed {seed}). The learned mappers at capacity "
        "0.5: [malloc_experiment.md](malloc_experiment.md).",
        "",
    ]
    for regime in record["regimes"]:
        test, val = regime["splits"]["test"], regime["splits"]["validation"]
        frac = regime["capacity_fraction"]
        names = sorted(test["methods"], key=lambda m: -float(np.mean(test["methods"][m])))
        port = test["methods"][PORTFOLIO]
        rules = [m for m in names if m not in (PORTFOLIO, RANDOM)]
        best_rule = choose({m: float(np.mean(test["methods"][m])) for m in rules})
        lines += [
            f"## Capacity {frac} x peak live bytes",
            "",
            f"Held-out programs ({len(test['names'])}); the validation column is the mean on the "
            f"{len(val['names'])} validation programs. Best single rule: "
            f"`{best_rule}`.",
            "",
            "| method | mean (held-out) | median | vs portfolio | validation mean | "
            "seconds per placement |",
            "|---|---|---|---|---|---|",
        ]
        for m in names:
            v = test["methods"][m]
            vs = "-" if m == PORTFOLIO else fmt_interval(paired_bootstrap(v, port, reps, seed))
            vmean = f"{np.mean(val['methods'][m]):.3f}"
            per = regime["per_placement"].get(m)
            lines.append(
                f"| {m} | {np.mean(v):.3f} | {np.median(v):.3f} | {vs} | {vmean} | "
                f"{'-' if per is None else f'{per:.4f}'} |"
            )
        lines.append(
            f"| {BOUND} | {np.mean(test['bound']):.3f} | {np.median(test['bound']):.3f} | - | "
            f"{np.mean(val['bound']):.3f} | - |"
        )
        lines.append("")
        if "large" in regime["splits"]:
            lines += large_table(regime["splits"]["large"], frac, reps, seed)
    lines += [
        f"Machine: {record['machine'].get('cpu_count')} CPUs; JAX device {record.get('device')}; "
        f"wall time {record['wall_seconds']:.0f} s"
        + (
            f"; load average {record['host']['load_start'][0]:.1f} at the start, "
            f"{record['host']['load_end'][0]:.1f} at the end (the seconds per placement depend "
            "on it)"
            if "host" in record
            else ""
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(args: Args | None = None) -> dict:
    args = args or tyro.cli(Args)
    if args.from_results is not None:
        record = load_results(args.from_results)
        quick = bool(record.get("quick"))
        if args.page is not None:
            page = Path(args.page)
        elif quick:
            page = Path(args.from_results).with_suffix(".md")
        else:
            page = REPO / record.get("page", PAGE)
        check_output(page, quick).write_text(render_page(record))
        print(f"wrote {page}")
        return record
    if args.out is not None:
        out = Path(args.out)
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="malloc_baselines_quick_")) / "malloc_baselines.json"
    else:
        out = REPO / RESULTS
    if args.page is not None:
        page = Path(args.page)
    elif args.out is None and not args.quick:
        page = REPO / PAGE
    else:
        page = out.with_suffix(".md")
    check_output(out, args.quick)
    check_output(page, args.quick)
    record = provenance(command_line(args))
    allow_dirty = args.allow_dirty or args.quick
    if record["clean_tree"] is False and not allow_dirty:
        raise SystemExit(
            "malloc_baselines: the tree has uncommitted changes; commit them, or pass "
            "--allow_dirty (the page then says so)"
        )
    load_start = os.getloadavg()
    record.update(compute(args))
    record["host"] = {"load_start": list(load_start), "load_end": list(os.getloadavg())}
    write_results(out, record, allow_dirty=allow_dirty)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_page(record))
    print(f"wrote {out} and {page}")
    return record


if __name__ == "__main__":
    main()
