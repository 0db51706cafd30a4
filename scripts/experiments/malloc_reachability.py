"""What each offering order lets MallocGame reach: exhaustive search of the game vs CP-SAT.

A buffer can only sit at offset 0 or directly on a buffer offered before it, and only the K
lowest such offsets are actions, so the offering order limits the placements the game can
reach. This script measures by how much, on small random instances drawn from a seed: per
instance, CP-SAT's optimum (``solvers.optimal``, alignment 1) and, per order of
``workload.ORDERS``, the best return of any action sequence in the game
(``reference.best_reachable``: exhaustive search of the pure-Python twin, K candidates). The
table counts the instances where the order reaches the optimum, the mean and worst of best
reachable / optimum, and the share reaching the optimum against start order (the game's
default) with paired bootstrap intervals. Instances where CP-SAT does not prove the optimum
within its time limit are counted on the page and left out of the table (their best found
value and bound are in the raw results file).

Results protocol: a full run writes ``docs/results/malloc_reachability.json`` (the instances,
CP-SAT's status, value and bound, every order's best reachable return, command, commit, tree
state, machine) and renders the ``malloc_reachability`` block of ``docs/envs/malloc_game.md``
from it; ``--from_results PATH [--page PAGE]`` re-renders the block from the file alone. A tree
with uncommitted changes is refused unless ``--allow_dirty``; ``--quick`` writes under /tmp.

    python scripts/experiments/malloc_reachability.py            # ~1 minute on one core
    python scripts/experiments/malloc_reachability.py --quick    # 10 instances, /tmp
    python scripts/experiments/malloc_reachability.py --from_results docs/results/malloc_reachability.json
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from accelrl.envs.malloc.workload import ORDERS, Workload
from accelrl.results import (
    REPO,
    check_output,
    options_command,
    paired_bootstrap,
    provenance_line,
    regenerate,
    results_record,
    write_blocks,
    write_results,
)

GENERATOR = "scripts/experiments/malloc_reachability.py"
PAGE = "docs/envs/malloc_game.md"
RESULTS = "docs/results/malloc_reachability.json"
BLOCK = "malloc_reachability"
DEFAULT_ORDER = "start"
TOL = 1e-5
"""Best reachable within this of the optimum counts as reaching it (CP-SAT maximises benefits
rounded to 1e-6 of the total each, so its optimum is exact to a few 1e-6)."""


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of malloc_reachability (``--from_results PATH [--page PAGE]`` re-renders the
    page block from a raw results file instead, see the module doc)."""

    instances: int = 200
    """Random instances."""
    buffers: int = 8
    """Buffers per instance (the search is exponential in it)."""
    horizon: int = 8
    """Schedule steps: starts are uniform on 0..horizon-1, ends clipped to horizon-1."""
    max_size: int = 8
    """Sizes are uniform on 1..max_size bytes."""
    max_duration: int = 4
    """Durations (end - start + 1) are uniform on 1..max_duration before clipping."""
    capacity_fraction: float = 0.6
    """Capacity = floor(fraction x peak live bytes); an instance where no buffer fits is drawn
    again."""
    num_candidates: int = 8
    """K, the game's placement actions."""
    orders: tuple[str, ...] = ORDERS
    """Offering orders searched (named orders of ``workload.ORDERS``)."""
    seed: int = 0
    """Instance ``i`` is drawn from ``numpy.random.default_rng([seed, i])``."""
    time_limit: float = 10.0
    """CP-SAT seconds per instance (one worker)."""
    bootstrap_reps: int = 10_000
    """Paired bootstrap replicates of the intervals (resampling seed 0)."""
    quick: bool = False
    """Smoke run: 10 instances, written under /tmp unless ``--out`` says otherwise (never into
    docs/)."""
    out: Path | None = None
    """The raw results file (default docs/results/malloc_reachability.json, which also renders
    the page block; quick: /tmp/malloc_reachability_quick.json)."""
    allow_dirty: bool = False
    """Run from a tree with uncommitted changes (the block then says so)."""

    def effective(self) -> Args:
        """The settings actually run (``--quick`` shortens the run)."""
        return dataclasses.replace(self, instances=10) if self.quick else self


def draw_instance(args: Args, i: int) -> tuple[Workload, int]:
    """Instance ``i``: a random workload of ``args.buffers`` buffers and its capacity in bytes.

    Draws from ``default_rng([args.seed, i])`` until at least one buffer fits the capacity
    (``floor(capacity_fraction x peak live bytes)``), so the optimum is positive.

    Raises:
        ValueError: settings that cannot give an instance (no buffer, empty ranges).
    """
    if args.buffers < 1 or args.horizon < 1 or args.max_size < 1 or args.max_duration < 1:
        raise ValueError("buffers, horizon, max_size and max_duration must all be >= 1")
    if not 0.0 < args.capacity_fraction <= 1.0:
        raise ValueError(f"capacity_fraction must be in (0, 1], got {args.capacity_fraction}")
    rng = np.random.default_rng([args.seed, i])
    n = args.buffers
    for _ in range(1000):
        start = rng.integers(0, args.horizon, n)
        w = Workload(
            size=rng.integers(1, args.max_size + 1, n),
            start=start,
            end=np.minimum(start + rng.integers(0, args.max_duration, n), args.horizon - 1),
            benefit=rng.uniform(0.0, 1.0, n),
            name=f"instance {i}",
        )
        cap = int(args.capacity_fraction * w.peak_live_bytes)
        if cap >= int(w.size.min()):
            return w, cap
    raise ValueError(f"instance {i}: no draw in 1000 had a buffer that fits the capacity")


def solve_instance(args: Args, w: Workload, cap: int) -> dict[str, Any]:
    """CP-SAT's answer and every order's best reachable return on one instance (normalised
    benefits, fractions of the instance's total)."""
    from accelrl.envs.malloc import MallocGame, validate
    from accelrl.envs.malloc.reference import ReferenceGame, best_reachable
    from accelrl.envs.malloc.solvers import optimal

    offsets, info = optimal(w, cap, args.time_limit, alignment=1, return_info=True)
    n = w.num_buffers
    env = MallocGame(max_buffers=n, max_live=n, alignment=1, default_workload=w)
    reach = {}
    for order in args.orders:
        params = env.params_for(w, capacity=cap, order=order)
        reach[order] = best_reachable(ReferenceGame(params, args.num_candidates, 4, 0, n))
    return {
        "size": w.size,
        "start": w.start,
        "end": w.end,
        "benefit": w.benefit,
        "capacity": cap,
        "status": info["status"],
        "optimum": validate(w, cap, offsets),
        "bound": float(info["bound"]),
        "reachable": reach,
    }


def compute(args: Args) -> dict[str, Any]:
    """The raw results of a run (without provenance)."""
    unknown = sorted(set(args.orders) - set(ORDERS))
    if unknown or not args.orders:
        raise ValueError(f"orders must be named orders of {ORDERS}, got {list(args.orders)}")
    t0, rows = time.perf_counter(), []
    for i in range(args.instances):
        rows.append(solve_instance(args, *draw_instance(args, i)))
        if (i + 1) % 20 == 0:
            print(
                f"{i + 1}/{args.instances} instances, {time.perf_counter() - t0:.0f} s", flush=True
            )
    from importlib import metadata

    return {
        "settings": {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(args)
            if f.name not in ("out", "allow_dirty")
        },
        "ortools": metadata.version("ortools"),
        "tolerance": TOL,
        "instances": rows,
        "wall_s": time.perf_counter() - t0,
    }


def check_record(record: dict) -> None:
    """Refuse a raw results file whose numbers cannot be right: a return outside [0, 1], a
    best found value above its bound, an order reaching more than a proven optimum (or than
    the bound), or instances that do not all search the settings' orders.

    Raises:
        ValueError: naming the instance and order.
    """
    orders = list(record["settings"]["orders"])
    if not record["instances"]:
        raise ValueError("the results record holds no instance")
    for i, inst in enumerate(record["instances"]):
        if sorted(inst["reachable"]) != sorted(orders):
            raise ValueError(f"instance {i}: searched orders {sorted(inst['reachable'])}, "
                             f"the settings name {sorted(orders)}")  # fmt: skip
        opt, bound = inst["optimum"], inst["bound"]
        if not (0.0 <= opt <= 1.0 + TOL) or opt > bound + TOL:
            raise ValueError(f"instance {i}: CP-SAT value {opt} is outside [0, bound {bound}]")
        for order, r in inst["reachable"].items():
            if not 0.0 <= r <= 1.0 + TOL:
                raise ValueError(f"instance {i}, order {order}: best reachable {r} outside [0, 1]")
            limit, what = (opt, "the proven optimum") if inst["status"] == "OPTIMAL" else (
                bound, "CP-SAT's bound")  # fmt: skip
            if r > limit + TOL:
                raise ValueError(
                    f"instance {i}, order {order}: best reachable {r:.6f} > {what} {limit:.6f}"
                )


def summary(record: dict) -> dict[str, Any]:
    """Per order (and the best order per instance), over the instances CP-SAT proved: the
    share reaching the optimum, mean and worst best reachable / optimum, and the share against
    start order's (paired bootstrap)."""
    check_record(record)
    proven = [x for x in record["instances"] if x["status"] == "OPTIMAL"]
    orders = list(record["settings"]["orders"])
    if not proven:
        return {"proven": 0, "rows": {}}
    opt = np.array([x["optimum"] for x in proven])
    reach = {o: np.array([x["reachable"][o] for x in proven]) for o in orders}
    reach = {o: reach[o] for o in sorted(reach, key=lambda o: o != DEFAULT_ORDER)}
    reach["best order per instance"] = np.max(np.stack([reach[o] for o in orders]), axis=0)
    reps = int(record["settings"]["bootstrap_reps"])
    rows = {}
    for name, r in reach.items():
        ratio = np.where(opt > 0, r / np.where(opt > 0, opt, 1.0), 1.0)
        hit = (r >= opt - TOL).astype(np.float64)
        row = {"share": hit.mean(), "mean": ratio.mean(), "worst": ratio.min(), "vs": None}
        if name != DEFAULT_ORDER and DEFAULT_ORDER in reach and len(proven) >= 2:
            base = (reach[DEFAULT_ORDER] >= opt - TOL).astype(np.float64)
            row["vs"] = paired_bootstrap(hit, base, reps, seed=0)
        rows[name] = row
    return {"proven": len(proven), "rows": rows}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _pp(interval: tuple[float, float, float] | None) -> str:
    if interval is None:
        return "-"
    point, low, high = (100 * v for v in interval)
    return f"{point:+.1f} pp [{low:+.1f}, {high:+.1f}]"


def render(record: dict) -> str:
    """The page block, from the raw results file alone (checked by :func:`check_record`)."""
    s = record["settings"]
    total = len(record["instances"])
    summ = summary(record)
    unproven = total - summ["proven"]
    lines = []
    if record.get("quick"):
        lines += ["**A `--quick` smoke run: not a result.**", ""]
    lines += [
        f"Measured by exhaustive search of the game (`reference.best_reachable`, K = "
        f"{s['num_candidates']}: every legal action sequence) against CP-SAT (`solvers.optimal`, "
        f"{s['time_limit']:g} s per instance, one worker, ortools {record['ortools']}) on {total} "
        f"random {s['buffers']}-buffer instances drawn from seed {s['seed']} (instance `i` from "
        f"`numpy.random.default_rng([{s['seed']}, i])`: sizes 1-{s['max_size']} bytes, starts "
        f"0-{s['horizon'] - 1}, durations 1-{s['max_duration']} clipped to the {s['horizon']} "
        f"steps, benefits uniform on [0, 1), alignment 1; capacity floor({s['capacity_fraction']}"
        f" x peak live bytes), drawn again when no buffer fits). An order reaches the optimum "
        f"when its best return is within {record['tolerance']:g} of it. "
        + (
            f"CP-SAT proved the optimum on all {total} instances."
            if unproven == 0
            else f"**CP-SAT did not prove the optimum on {unproven} of the {total} instances** "
            f"within its time limit; they are left out of the table (their best found value "
            f"and bound are in the raw results file), which covers the other {summ['proven']}."
        ),
        "",
    ]
    if not summ["rows"]:
        lines += ["No instance was solved to optimality: no table.", ""]
    else:
        lines += [
            "| order | instances where the optimum is reachable | mean best reachable / optimum "
            f"| worst | reachable share vs {DEFAULT_ORDER} (95% paired bootstrap) |",
            "|---|---|---|---|---|",
        ]
        for name, row in summ["rows"].items():
            label = f"{name} (default)" if name == DEFAULT_ORDER else name
            lines.append(
                f"| {label} | {_pct(row['share'])} | {row['mean']:.3f} | {row['worst']:.3f} | "
                f"{_pp(row['vs'])} |"
            )
        shares = {o: summ["rows"][o]["share"] for o in s["orders"]}

        def named(value: float) -> str:
            return ", ".join(f"`{o}`" for o in shares if shares[o] == value)

        top, bottom = max(shares.values()), min(shares.values())
        lines += [
            "",
            f"Reach the optimum most often: {named(top)} ({_pct(top)}); least often: "
            f"{named(bottom)} ({_pct(bottom)}). An order differs from {DEFAULT_ORDER} order "
            "beyond noise only where its interval excludes zero. The best order per instance "
            "takes, on each instance, whichever order reaches the most.",
        ]
    where = "PATH" if record.get("quick") else RESULTS
    lines += [
        "",
        f"{provenance_line(record)} {record['wall_s']:.0f} s wall on "
        f"{record['machine'].get('cpu_count')} CPUs. Re-render: `python {GENERATOR} "
        f"--from_results {where}`.",
    ]
    return "\n".join(lines)


def write_page(record: dict, page: Path) -> Path:
    """Replace ``page``'s block with :func:`render` of ``record`` (one-line error on a record
    that :func:`check_record` refuses)."""
    try:
        return write_blocks(page, {BLOCK: render(record)})
    except ValueError as e:
        raise SystemExit(f"malloc_reachability: {e}") from None


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if regenerate(argv, write_page, prog="malloc_reachability"):
        return None
    given = tyro.cli(Args, args=argv)
    args = given.effective()
    default_out = Path("/tmp/malloc_reachability_quick.json") if args.quick else REPO / RESULTS
    out = check_output(args.out or default_out, args.quick)
    record = results_record(options_command(GENERATOR, given), GENERATOR, PAGE)
    allow_dirty = args.allow_dirty or args.quick
    if record["clean_tree"] is False and not allow_dirty:
        raise SystemExit(
            "malloc_reachability: the tree has uncommitted changes; commit them, or pass "
            "--allow_dirty (the block then says so)"
        )
    record.update(quick=args.quick, **compute(args))
    block = render(record)
    write_results(out, record, allow_dirty=allow_dirty)
    print(block)
    print(f"wrote {out}")
    if out == (REPO / RESULTS).resolve():
        write_blocks(REPO / PAGE, {BLOCK: block})
        print(f"rendered {PAGE}")
    return record


if __name__ == "__main__":
    main()
