"""ThreeBody-v0 card: the fixed-mu baselines table, generated from a raw results file.

Every fixed action (one time-step parameter mu for the whole episode) runs on the initial
conditions of seeds 0-99 for 300 check times (30 yr, the paper's evaluation protocol), a
system stopping when |dE| exceeds the termination limit; the episode's compute is its total
Hermite substeps. The evaluation is ``scripts/experiments/three_body_baselines.py``'s
(:func:`three_body_baselines.evaluate_fixed`); this script records it under the results
protocol (``docs/results/three_body_baselines.json``: per-system final |dE|, substeps and
terminations, the command, commit and tree state) and renders the card's block from it. The
numbers do not depend on the machine's load (no timing is reported).

    python scripts/bench/fixed_mu_baselines.py            # the card's run (a few minutes)
    python scripts/bench/fixed_mu_baselines.py --quick    # 8 seeds, 20 checks; under /tmp
    python scripts/bench/fixed_mu_baselines.py --from_results docs/results/three_body_baselines.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _bench import add_results_options, render_from_results, results_record, write_blocks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

GENERATOR = "scripts/bench/fixed_mu_baselines.py"
PAGE = "docs/envs/three_body.md"
RESULTS = "docs/results/three_body_baselines.json"
PLOT = "docs/envs/three_body_baselines.png"
BLOCK = "fixed_mu_baselines"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="8 seeds, 20 checks; never docs/")
    p.add_argument("--num_seeds", type=int, default=100, help="initial conditions 0..N-1")
    p.add_argument("--num_checks", type=int, default=300, help="check times per episode")
    p.add_argument("--out", type=Path, default=None, help=f"results JSON (default {RESULTS})")
    add_results_options(p)
    args = p.parse_args(argv)
    if args.quick:
        args.num_seeds, args.num_checks = 8, 20
    if args.num_seeds < 2 or args.num_checks < 1:
        p.error("--num_seeds must be at least 2 and --num_checks at least 1")
    return args


def run(args: argparse.Namespace, argv: list[str]) -> dict:
    """Every fixed action on seeds ``0..num_seeds-1``: the raw results record."""
    import jax
    import numpy as np
    from three_body_baselines import evaluate_fixed, make_evaluator, summarize

    from accelrl.envs import three_body as tb

    record = results_record(["python", GENERATOR, *argv], GENERATOR, PAGE)
    env = tb.ThreeBody()
    params = env.default_params.replace(num_checks=args.num_checks, max_decisions=10**8)
    seeds = np.arange(args.num_seeds)
    evaluator = make_evaluator(env)
    rows, t0 = [], time.perf_counter()
    for action in range(int(params.mu_values.shape[0])):
        mu = float(params.mu_values[action])
        start = time.perf_counter()
        res = evaluate_fixed(env, params, action, seeds, evaluator)
        row = summarize(mu, res)
        row["terminated"] = res["terminated"].astype(bool).tolist()
        row["wall_s"] = time.perf_counter() - start
        rows.append(row)
        print(f"mu={mu:.2e}: median dE {row['median_dE']:.1e} ({row['wall_s']:.0f} s)", flush=True)
    return {
        **record,
        "env": "ThreeBody-v0",
        "seeds": seeds.tolist(),
        "num_checks": args.num_checks,
        "max_substeps_per_decision": int(params.max_substeps_per_decision),
        "energy_error_limit": float(params.energy_error_limit),
        "rows": rows,
        "wall_s": time.perf_counter() - t0,
        "backend": jax.default_backend(),
        "quick": args.quick,
    }


def render(record: dict) -> dict[str, str]:
    """The card's block from a results record (pure: the JSON alone)."""
    import numpy as np
    from three_body_baselines import table

    from accelrl.results import provenance_line

    rows, seeds = record["rows"], record["seeds"]
    term = np.asarray([r["terminated"] for r in rows], bool)  # [actions, systems]
    never = float(np.mean(term.all(axis=0)))
    best = min(rows, key=lambda r: r["median_dE"])
    years = record["num_checks"] * 0.1
    lines = [
        f"Every fixed action on the initial conditions of seeds {seeds[0]}-{seeds[-1]} "
        f"({len(seeds)} systems) for {record['num_checks']} check times ({years:g} yr), a system "
        f"stopping when |dE| > {record['energy_error_limit']:g} (terminated); compute = total "
        f"Hermite substeps of the episode; substep cap C = {record['max_substeps_per_decision']}.",
        "",
        table(rows),
        "",
        f"The lowest median final |dE| is {best['median_dE']:.1e}, at mu = {best['mu']:.2e} "
        f"(mean {best['mean_substeps']:,.0f} substeps per episode, median "
        f"{best['median_substeps']:,.0f}); {never:.0%} of the systems are terminated under "
        "every fixed mu.",
        "",
        provenance_line(record),
    ]
    return {BLOCK: "\n".join(lines)}


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    from accelrl.results import REPO, DirtyTreeError, check_output, write_results

    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return None
    out = args.out or (
        Path("/tmp/three_body_baselines_quick.json") if args.quick else REPO / RESULTS
    )
    check_output(out, args.quick)
    record = run(args, argv)
    print(render(record)[BLOCK], flush=True)
    try:
        write_results(out, record, allow_dirty=args.allow_dirty or args.quick)
    except DirtyTreeError as e:
        raise SystemExit(f"{e} (nothing written)") from None
    print(f"wrote {out}")
    if not args.quick and out.resolve() == (REPO / RESULTS).resolve():
        from three_body_baselines import plot

        write_blocks(REPO / PAGE, render(record))
        plot(record["rows"], REPO / PLOT)
        print(f"wrote {REPO / PAGE} and {REPO / PLOT}")
    return record


if __name__ == "__main__":
    main()
