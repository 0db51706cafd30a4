"""Steps/second of every registered accelrl environment at several batch sizes.

Usage: ``python scripts/bench/bench_envs.py [--batch-sizes 1 64 1024 8192] [--steps 200]
[--ids ID ...] [--max_call_s 30] [--out PATH] [--quick] [--allow_dirty] [--from_results PATH]``

Each measurement jits a ``lax.scan`` of ``steps`` batched steps with random actions
(``VecEnv``, wrapper-owned resets), compiles it once, then times ``repeats`` calls and reports
the median. Batch sizes go up; once a timed call, scaled linearly to the next batch size,
would take longer than ``--max_call_s``, that environment's larger batches are skipped and the
record and table say so (an environment whose step is costly, such as ``Relax-v0``, would
otherwise hold the run for half an hour at batch 8192). Prints a table and writes a raw results file (command, commit, tree state, load;
default ``bench_out/envs.json``). ``--out docs/results/envs.json`` (a full run from a clean
tree, or ``--allow_dirty``) also renders the README's steps/s block from it, and
``--from_results PATH`` re-renders that block from the file alone; ``--quick`` never writes
into ``docs/``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
from _bench import add_results_options, render_from_results, results_record, time_fn, write_blocks

from accelrl.envs import VecEnv, is_multi_agent, make, registered_envs


def _sampler(env, params, env_id, batch):
    if is_multi_agent(env_id):
        spaces = {a: env.action_space(a, params) for a in env.agents}
        return lambda key: {
            a: jax.vmap(sp.sample)(jax.random.split(jax.random.fold_in(key, i), batch))
            for i, (a, sp) in enumerate(spaces.items())
        }
    space = env.action_space(params)
    return lambda key: jax.vmap(space.sample)(jax.random.split(key, batch))


def bench_one(env_id: str, batch: int, steps: int, repeats: int) -> dict:
    env, params = make(env_id)
    vec = VecEnv(env, batch)
    sample = _sampler(env, params, env_id, batch)

    @jax.jit
    def rollout(key):
        obs, state = vec.reset(key, params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            _, state, reward, *_ = vec.step(ks, state, sample(ka), params)
            return state, jnp.sum(jnp.stack(jax.tree.leaves(reward)))

        state, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
        return rewards.sum()

    seeds = itertools.count()  # key 0 for the compiling call, then 1, 2, ...
    timing = time_fn(lambda: rollout(jax.random.key(next(seeds))), warmup=1, repeats=repeats)
    compile_s, med = timing.first_s, timing.median
    return {
        "env": env_id,
        "batch": batch,
        "steps_per_s": batch * steps / med,
        "median_s": med,
        "compile_s": compile_s,
        "device": str(jax.devices()[0]),
    }


GENERATOR = "scripts/bench/bench_envs.py"
PAGE = "README.md"
RESULTS = "docs/results/envs.json"
BLOCK = "bench_envs"


def _rate(x: float) -> str:
    """Steps/s as the README writes them: 49k, 1.11M."""
    return f"{x / 1e6:.3g}M" if x >= 1e6 else f"{x / 1e3:.3g}k"


def render(record: dict) -> dict[str, str]:
    """The README's steps/s block from a results record (pure: the JSON alone)."""
    from accelrl.results import provenance_line

    rows, s, host = record["rows"], record["settings"], record["host"]
    batches = sorted({r["batch"] for r in rows})
    by = {(r["env"], r["batch"]): r["steps_per_s"] for r in rows}
    lines = [
        f"`{record['command']}` (random actions, wrapper-owned resets, {s['steps']} steps per "
        f"timed call, median of {s['repeats']}; steps/s summed over the batch; "
        f"{host['cpus']} CPUs, load average {host['load_start'][0]:.1f} at the start, "
        f"{host['load_end'][0]:.1f} at the end):",
        "",
        "| env | " + " | ".join(f"batch {b}" if i == 0 else str(b) for i, b in enumerate(batches))
        + " |",
        "| --- |" + " ---: |" * len(batches),
    ]  # fmt: skip
    skipped = {(r["env"], r["batch"]) for r in record.get("skipped", [])}
    batches = sorted({*batches, *(b for _, b in skipped)})
    lines[2:4] = [
        "| env | " + " | ".join(f"batch {b}" if i == 0 else str(b) for i, b in enumerate(batches))
        + " |",
        "| --- |" + " ---: |" * len(batches),
    ]  # fmt: skip
    for env in sorted({r["env"] for r in rows}):
        cells = [
            _rate(by[env, b]) if (env, b) in by else "skipped" if (env, b) in skipped else "-"
            for b in batches
        ]
        lines.append(f"| `{env}` | " + " | ".join(cells) + " |")
    if skipped:
        limit = record["settings"]["max_call_s"]
        lines += ["", f"Skipped: a timed call scaled to the next batch size would have taken "
                  f"over {limit:g} s (`--max_call_s`): " + "; ".join(
                      f"`{r['env']}` at {r['batch']} (about {r['projected_s']:.0f} s)"
                      for r in record["skipped"]) + "."]  # fmt: skip
    lines += ["", provenance_line(record)]
    return {BLOCK: "\n".join(lines)}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 8192])
    p.add_argument("--steps", type=int, default=200, help="steps per timed call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ids", nargs="+", default=None, help="default: every registered accelrl id")
    p.add_argument(
        "--max_call_s", "--max-call-s", type=float, default=30.0,
        help="skip an env's larger batches once a timed call, scaled to the next batch size, "
        "would take longer than this (seconds; 0: never skip)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("bench_out/envs.json"))
    p.add_argument("--quick", action="store_true", help="batch 1 and 64, 50 steps, 3 repeats")
    add_results_options(p)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return []
    from accelrl.results import REPO, check_output, write_results

    check_output(args.out, args.quick)
    record = results_record(["python", GENERATOR, *argv], GENERATOR, PAGE)
    to_docs = args.out.resolve() == (REPO / RESULTS).resolve()
    allow_dirty = args.allow_dirty or not to_docs  # only the README's block needs a clean tree
    if record["clean_tree"] is False and not allow_dirty:
        p.error("the tree has uncommitted changes: commit them, or pass --allow_dirty")
    load_start = os.getloadavg()
    if args.quick:
        args.batch_sizes, args.steps, args.repeats = [1, 64], 50, 3
    ids = args.ids or registered_envs()
    if args.max_call_s < 0 or args.steps < 1 or args.repeats < 1:
        p.error("--max_call_s must be >= 0 and --steps, --repeats at least 1")
    batch_sizes = sorted(args.batch_sizes)
    rows, skipped = [], []
    print(f"{'env':34s} {'batch':>6s} {'steps/s':>14s} {'compile s':>10s}")
    for env_id in ids:
        for i, b in enumerate(batch_sizes):
            row = bench_one(env_id, b, args.steps, args.repeats)
            rows.append(row)
            print(
                f"{env_id:34s} {b:6d} {row['steps_per_s']:14,.0f} {row['compile_s']:10.1f}",
                flush=True,
            )
            larger = batch_sizes[i + 1 :]
            if larger and args.max_call_s and row["median_s"] * larger[0] / b > args.max_call_s:
                for nb in larger:
                    skipped.append({"env": env_id, "batch": nb,
                                    "projected_s": row["median_s"] * nb / b})  # fmt: skip
                    print(f"{env_id:34s} {nb:6d} skipped: a call would take about "
                          f"{skipped[-1]['projected_s']:.0f} s", flush=True)  # fmt: skip
                break
    record.update(
        settings={"batch_sizes": batch_sizes, "steps": args.steps, "repeats": args.repeats,
                  "ids": ids, "max_call_s": args.max_call_s},
        host={"cpus": os.cpu_count(), "load_start": load_start, "load_end": os.getloadavg()},
        quick=args.quick,
        rows=rows,
        skipped=skipped,
    )  # fmt: skip
    write_results(args.out, record, allow_dirty=allow_dirty)
    print(f"wrote {args.out}")
    if to_docs:
        write_blocks(REPO / PAGE, render(record))
        print(f"rendered {PAGE}")
    return rows


if __name__ == "__main__":
    main()
