"""Benchmark MallocGame-v0: game steps/s vmapped over workloads vs the pure-Python rules.

Both sides play the same random legal policy on the shipped workloads (copy ``b`` of a batch
plays workload ``b mod W``). JAX: a jitted ``lax.scan`` of ``VecEnv.step`` (resets included)
at batch 1, 64 and 1024. Python: :class:`accelrl.envs.malloc.reference.ReferenceGame`, one
game at a time. Medians over repeats; ratios against the Python median.

    python -m accelrl.scripts.bench_malloc --quick
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from accelrl.envs.malloc import MallocGame, load_dataset
from accelrl.envs.malloc.reference import ReferenceGame
from accelrl.envs.vec import VecEnv


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of bench_malloc."""

    batches: tuple[int, ...] = (1, 64, 1024)
    """Batch sizes of the vmapped game."""
    steps: int = 256
    """Steps per timed JAX call (one scan)."""
    repeats: int = 5
    """Timed repeats per configuration (the median is reported)."""
    python_seconds: float = 10.0
    """Wall-clock budget per repeat of the pure-Python game."""
    split: str | None = None
    """Workloads: "train", "test" or None (all shipped workloads)."""
    num_candidates: int = 8
    """K, placement actions."""
    quick: bool = False
    """Short run: 64 steps, 3 repeats, 2 s of Python per repeat."""


def bench_jax(env: MallocGame, params, batch: int, steps: int, repeats: int) -> list[float]:
    """Steps/s of ``batch`` copies over ``steps`` scanned steps, per repeat."""
    w = params.size.shape[0]
    idx = np.arange(batch) % w
    p = jax.tree.map(lambda x: x[idx], params)
    venv = VecEnv(env, batch)

    @jax.jit
    def run(key, obs, state):
        def body(carry, _):
            key, obs, state = carry
            key, k_act, k_step = jax.random.split(key, 3)
            logits = jnp.where(obs["action_mask"], 0.0, -jnp.inf)
            action = jax.random.categorical(k_act, logits)
            obs, state, reward, *_ = venv.step(k_step, state, action, p)
            return (key, obs, state), reward.sum()

        (key, obs, state), r = jax.lax.scan(body, (key, obs, state), None, length=steps)
        return key, obs, state, r.sum()

    key = jax.random.key(0)
    obs, state = venv.reset(key, p)
    out = run(key, obs, state)  # compile
    jax.block_until_ready(out)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run(*out[:3])
        jax.block_until_ready(out)
        rates.append(batch * steps / (time.perf_counter() - t0))
    return rates


def bench_python(env: MallocGame, params, seconds: float, repeats: int) -> list[float]:
    """Steps/s of the reference game, one game at a time, cycling through the workloads."""
    w = params.size.shape[0]
    games = [
        ReferenceGame(
            jax.tree.map(lambda x, b=b: x[b], params),
            env.num_candidates,
            env.num_bins,
            env.lookahead,
            env.max_live,
        )
        for b in range(w)
    ]
    rng = np.random.default_rng(0)
    rates = []
    g = 0
    for _ in range(repeats):
        steps, t0 = 0, time.perf_counter()
        game = games[g % w]
        obs = game.reset()
        while time.perf_counter() - t0 < seconds:
            legal = np.flatnonzero(obs["action_mask"])
            obs, _, done = game.step(int(rng.choice(legal)))
            steps += 1
            if done:
                g += 1
                game = games[g % w]
                obs = game.reset()
        rates.append(steps / (time.perf_counter() - t0))
    return rates


def main(args: Args | None = None) -> None:
    args = args or tyro.cli(Args)
    steps, repeats, py_s = args.steps, args.repeats, args.python_seconds
    if args.quick:
        steps, repeats, py_s = 64, 3, 2.0
    workloads = load_dataset(args.split)
    env, params = MallocGame.for_workloads(workloads, num_candidates=args.num_candidates)
    print(
        f"{len(workloads)} workloads, max_buffers={env.max_buffers}, max_live={env.max_live}, "
        f"K={env.num_candidates}, devices={jax.devices()}"
    )
    py = float(np.median(bench_python(env, params, py_s, repeats)))
    print("| implementation | batch | steps/s (median) | vs Python |\n|---|---|---|---|")
    print(f"| pure Python (reference) | 1 | {py:,.0f} | 1.0x |")
    for b in args.batches:
        r = float(np.median(bench_jax(env, params, b, steps, repeats)))
        print(f"| JAX vmap + jit | {b} | {r:,.0f} | {r / py:,.1f}x |", flush=True)


if __name__ == "__main__":
    main()
