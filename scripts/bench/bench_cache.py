"""Benchmark CacheReplacement-v0: trace accesses/s vmapped vs the pure-Python simulator.

Both sides play LRU over the same episode windows (the default synthetic mixture). JAX: a
jitted, vmapped :func:`accelrl.envs.cache.rollout` (reset, then steps to the end of the
window; each step runs the trace to the next eviction decision) at each batch size. Python:
:func:`accelrl.envs.cache.simulate` on the windows, one at a time. Hits are checked equal on
every window timed on both sides. Medians over repeats; the ratio is JAX accesses/s over
Python accesses/s.

    python scripts/bench/bench_cache.py --quick
    python scripts/bench/bench_cache.py
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import jax
import numpy as np
import tyro

from accelrl.envs import make
from accelrl.envs.cache import make_policy, rollout, simulate


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of bench_cache."""

    batches: tuple[int, ...] = (1, 1024)
    """Batch sizes of the vmapped game."""
    episode_length: int = 4096
    """Accesses per episode window (the env's ``episode_length``)."""
    repeats: int = 5
    """Timed repeats per batch size (the median is reported)."""
    python_windows: int = 8
    """Windows simulated in pure Python per repeat."""
    quick: bool = False
    """Short run: 1024-access windows, 2 repeats, 2 Python windows."""


def main(args: Args) -> None:
    if args.quick:
        args = dataclasses.replace(args, episode_length=1024, repeats=2, python_windows=2)
    env, params = make("CacheReplacement-v0", episode_length=args.episode_length)
    lru = make_policy(env, "lru")
    T = env.episode_length

    def one(key):
        state, hits = rollout(env, params, lru, key)
        return state.line, hits

    play = jax.jit(jax.vmap(one))
    print(
        f"CacheReplacement-v0, LRU, {env.num_sets} sets x {env.ways} ways, windows of {T}; "
        f"backend {jax.default_backend()}"
    )

    # pure Python on windows the JAX side played (hits checked equal)
    lines, hits = play(jax.random.split(jax.random.key(0), args.python_windows))
    lines, hits = np.asarray(lines), np.asarray(hits)
    py_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for b in range(args.python_windows):
            ref = simulate(lines[b], env.num_sets, env.ways, "lru")
            if ref != hits[b]:
                raise SystemExit(f"hit mismatch on window {b}: JAX {hits[b]}, Python {ref}")
        py_times.append(time.perf_counter() - start)
    py_rate = args.python_windows * T / statistics.median(py_times)
    print(f"{'pure Python':>14}: {py_rate:12.3e} accesses/s")

    for batch in args.batches:
        keys = jax.random.split(jax.random.key(1), batch)
        jax.block_until_ready(play(keys))  # compile + warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            jax.block_until_ready(play(keys))
            times.append(time.perf_counter() - start)
        rate = batch * T / statistics.median(times)
        print(f"{'JAX batch ' + str(batch):>14}: {rate:12.3e} accesses/s  x{rate / py_rate:.1f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
