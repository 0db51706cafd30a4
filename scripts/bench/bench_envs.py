"""Steps/second of every registered accelrl environment at several batch sizes.

Usage: ``python scripts/bench/bench_envs.py [--batch-sizes 1 64 1024 8192] [--steps 200]
[--ids ID ...] [--out bench_out/envs.json] [--quick]``

Each measurement jits a ``lax.scan`` of ``steps`` batched steps with random actions
(``VecEnv``, wrapper-owned resets), compiles it once, then times ``repeats`` calls and reports
the median. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
from _bench import time_fn

from accelrl.envs import VecEnv, is_multi_agent, make, registered_envs
from accelrl.results import check_output


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


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 8192])
    p.add_argument("--steps", type=int, default=200, help="steps per timed call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ids", nargs="+", default=None, help="default: every registered accelrl id")
    p.add_argument("--out", type=Path, default=Path("bench_out/envs.json"))
    p.add_argument("--quick", action="store_true", help="batch 1 and 64, 50 steps, 3 repeats")
    args = p.parse_args(argv)
    check_output(args.out, args.quick)
    if args.quick:
        args.batch_sizes, args.steps, args.repeats = [1, 64], 50, 3
    ids = args.ids or registered_envs()
    rows = []
    print(f"{'env':34s} {'batch':>6s} {'steps/s':>14s} {'compile s':>10s}")
    for env_id in ids:
        for b in args.batch_sizes:
            row = bench_one(env_id, b, args.steps, args.repeats)
            rows.append(row)
            print(
                f"{env_id:34s} {b:6d} {row['steps_per_s']:14,.0f} {row['compile_s']:10.1f}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
