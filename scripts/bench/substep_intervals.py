"""ThreeBody-v0 card: substeps per check interval at fixed mu, and what a substep cap C costs.

With no cap (one decision per 0.1 yr check interval), every system of a batch runs fixed
actions for ``--num_checks`` intervals; the substeps each interval took are recorded (a system
stops counting once terminated). From them, per mu: the median, p90, p99 and maximum substeps
per interval and, for each cap C, the lockstep imbalance a large batch would see,
``C / mean(min(n, C))``, and the decisions per interval it costs, ``mean(ceil(n / C))``.
The numbers do not depend on the machine's load (nothing is timed).

Results protocol: ``docs/results/three_body_intervals.json`` (per-interval substeps of every
system, command, commit, tree state) renders the card's block ``substep_intervals``;
``--from_results PATH`` re-renders it from the file alone; ``--quick`` writes under ``/tmp``.

    python scripts/bench/substep_intervals.py           # 128 systems x 100 intervals (minutes)
    python scripts/bench/substep_intervals.py --quick
    python scripts/bench/substep_intervals.py --from_results docs/results/three_body_intervals.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _bench import add_results_options, render_from_results, results_record, write_blocks

GENERATOR = "scripts/bench/substep_intervals.py"
PAGE = "docs/envs/three_body.md"
RESULTS = "docs/results/three_body_intervals.json"
BLOCK = "substep_intervals"
ACTIONS = (9, 6, 3)
"""mu = 1e-1, 1e-2, 1e-3 (indices into the default ``mu_values``)."""
CAPS = (16, 64, 128, 256)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="16 systems, 10 intervals; never docs/")
    p.add_argument("--num_seeds", type=int, default=128, help="initial conditions 0..N-1")
    p.add_argument("--num_checks", type=int, default=100, help="intervals (0.1 yr each)")
    p.add_argument("--out", type=Path, default=None, help=f"results JSON (default {RESULTS})")
    add_results_options(p)
    args = p.parse_args(argv)
    if args.quick:
        args.num_seeds, args.num_checks = 16, 10
    if args.num_seeds < 1 or args.num_checks < 1:
        p.error("--num_seeds and --num_checks must be at least 1")
    return args


def interval_substeps(action: int, num_seeds: int, num_checks: int):
    """Substeps of each interval ``i32[num_checks, num_seeds]`` and whether it counts
    (``bool[num_checks, num_seeds]``: the system had not terminated before it), no cap."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from accelrl.envs import three_body as tb
    from accelrl.envs.vec import params_in_axes

    env = tb.ThreeBody()
    params = env.default_params.replace(
        max_substeps_per_decision=tb.UNBOUNDED_SUBSTEPS, num_checks=num_checks, max_decisions=10**8
    )
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(num_seeds))
    _, state = jax.vmap(env.reset_env, in_axes=(0, None))(keys, params)

    @jax.jit
    def run(state):
        def body(carry, _):
            state, done = carry
            # a terminated system gets no substeps (it would hold up the lockstep loop)
            p = params.replace(max_substeps_per_decision=jnp.where(done, 0, tb.UNBOUNDED_SUBSTEPS))
            step = jax.vmap(env.step_env, in_axes=(None, 0, None, params_in_axes(p, params)))
            _, new, _, term, info = step(jax.random.PRNGKey(0), state, jnp.int32(action), p)
            new = jax.tree.map(
                lambda a, b: jnp.where(done.reshape(done.shape + (1,) * (a.ndim - 1)), b, a),
                new,
                state,
            )
            return (new, done | term), (info["substeps"], ~done)

        init = (state, jnp.zeros(num_seeds, bool))
        return jax.lax.scan(body, init, None, length=num_checks)[1]

    substeps, counts = run(state)
    return np.asarray(substeps, np.int64), np.asarray(counts, bool)


def summarize(substeps, counts, caps=CAPS) -> dict:
    """Statistics of the counted intervals' substeps ``n``: median, p90, p99, max, and per cap
    C the imbalance ``C / mean(min(n, C))`` and decisions per interval ``mean(ceil(n / C))``."""
    import numpy as np

    n = np.asarray(substeps)[np.asarray(counts)]
    if n.size == 0:
        raise ValueError("no counted interval (every system terminated at once)")
    return {
        "intervals": int(n.size),
        "median": float(np.median(n)),
        "p90": float(np.percentile(n, 90)),
        "p99": float(np.percentile(n, 99)),
        "max": int(n.max()),
        "caps": {
            str(c): {
                "imbalance": float(c / np.mean(np.minimum(n, c))),
                "decisions": float(np.mean(np.ceil(n / c))),
            }
            for c in caps
        },
    }


def run(args: argparse.Namespace, record: dict) -> dict:
    """``record`` (provenance) completed with, per mu, the substeps of every interval and
    their statistics."""
    import jax

    from accelrl.envs import three_body as tb

    mu_values = tb.ThreeBody().default_params.mu_values
    rows, t0 = [], time.perf_counter()
    for action in ACTIONS:
        start = time.perf_counter()
        substeps, counts = interval_substeps(action, args.num_seeds, args.num_checks)
        row = {"mu": float(mu_values[action]), **summarize(substeps, counts)}
        row.update(substeps=substeps.tolist(), counted=counts.tolist())
        row["wall_s"] = time.perf_counter() - start
        rows.append(row)
        print(f"mu={row['mu']:.0e}: median {row['median']:g} ({row['wall_s']:.0f} s)", flush=True)
    return {
        **record,
        "env": "ThreeBody-v0",
        "seeds": list(range(args.num_seeds)),
        "num_checks": args.num_checks,
        "caps": list(CAPS),
        "rows": rows,
        "wall_s": time.perf_counter() - t0,
        "backend": jax.default_backend(),
        "quick": args.quick,
    }


def render(record: dict) -> dict[str, str]:
    """The card's block from a results record (pure: the JSON alone)."""
    from accelrl.results import provenance_line

    caps = [str(c) for c in record["caps"]]
    seeds = record["seeds"]
    lines = [
        f"Substeps per 0.1 yr interval ({len(seeds)} paper initial conditions, seeds "
        f"{seeds[0]}-{seeds[-1]}, {record['num_checks'] / 10:g} yr, fixed mu, no cap; intervals "
        "after a termination are not counted), and the lockstep imbalance a cap C implies for a "
        "large batch (C / mean(min(n, C))), with the decisions per interval it costs:",
        "",
        "| mu | median | p90 | p99 | max | "
        + " | ".join(
            f"C={c}: imbalance / decisions" if i == 0 else f"C={c}" for i, c in enumerate(caps)
        )
        + " |",
        "|---:|" + "---:|" * (4 + len(caps)),
    ]
    for r in record["rows"]:
        cells = [f"{r['caps'][c]['imbalance']:.3g} / {r['caps'][c]['decisions']:.2f}" for c in caps]
        lines.append(
            f"| {r['mu']:.0e} | {r['median']:,.0f} | {r['p90']:,.0f} | {r['p99']:,.0f} | "
            f"{r['max']:,} | " + " | ".join(cells) + " |"
        )
    lines += ["", provenance_line(record)]
    return {BLOCK: "\n".join(lines)}


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return None
    from accelrl.results import REPO, check_output, write_results

    out = args.out or (
        Path("/tmp/three_body_intervals_quick.json") if args.quick else REPO / RESULTS
    )
    check_output(out, args.quick)
    allow_dirty = args.allow_dirty or args.quick
    record = results_record(["python", GENERATOR, *argv], GENERATOR, PAGE)
    if record["clean_tree"] is False and not allow_dirty:
        raise SystemExit("the tree has uncommitted changes: commit them, or pass --allow_dirty")
    record = run(args, record)
    write_results(out, record, allow_dirty=allow_dirty)
    print(render(record)[BLOCK])
    print(f"wrote {out}")
    if out.resolve() == (REPO / RESULTS).resolve():
        write_blocks(REPO / PAGE, render(record))
        print(f"rendered {PAGE}")
    return record


if __name__ == "__main__":
    main()
