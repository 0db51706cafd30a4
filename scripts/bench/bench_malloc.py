"""Benchmark MallocGame-v0: game steps/s vmapped over workloads vs the pure-Python rules.

Both sides play the same random legal policy on the shipped workloads (copy ``b`` of a batch
plays workload ``b mod W``). JAX: a jitted ``lax.scan`` of ``VecEnv.step`` (resets included)
at batch 1, 64 and 1024. Python: :class:`accelrl.envs.malloc.reference.ReferenceGame`, one
game at a time. Medians over repeats; ratios against the Python median.

    python scripts/bench/bench_malloc.py --quick
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from _bench import median, median_ratio, time_fn

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
    baselines: bool = False
    """Instead of timing: normalised benefit of the solvers on the test split (and CP-SAT on
    programs with at most ``optimal_max_buffers`` buffers)."""
    capacity_fraction: float = 0.5
    """Capacity as a fraction of each program's peak live bytes (baselines)."""
    optimal_max_buffers: int = 60
    """Largest program solved with CP-SAT (baselines)."""
    optimal_seconds: float = 5.0
    """CP-SAT time limit per program (baselines)."""


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
    out = (key, obs, state)

    def segment():  # continues from the previous call's key, observation and state
        nonlocal out
        out = run(*out[:3])
        return out

    return time_fn(segment, warmup=1, repeats=repeats).rates(batch * steps)  # warm-up compiles


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


def baselines(args: Args) -> None:
    """Markdown table: normalised benefit per solver on the test split."""
    from accelrl.envs.malloc import first_fit, optimal, random_policy, validate, xla_best_fit
    from accelrl.envs.malloc.game import play

    workloads = load_dataset(args.split or "test")
    env, params = MallocGame.for_workloads(workloads, num_candidates=args.num_candidates)
    align = env.alignment
    print("| program | buffers | xla_best_fit | first_fit | random (game) | CP-SAT (bound) |")
    print("|---|---|---|---|---|---|")
    rows = []
    for b, w in enumerate(workloads):
        p = jax.tree.map(lambda x, b=b: x[b], params)
        cap = int(p.capacity) * align
        xla = validate(w, cap, xla_best_fit(w, cap, align), align)
        ff = validate(w, cap, first_fit(w, cap, align), align)
        rnd = np.mean(
            [
                validate(w, cap, play(env, p, random_policy, jax.random.key(s)), align)
                for s in range(4)
            ]
        )
        opt = "-"
        if w.num_buffers <= args.optimal_max_buffers:
            off, info = optimal(w, cap, args.optimal_seconds, align, return_info=True)
            opt = f"{validate(w, cap, off, align):.3f} ({info['bound']:.3f})"
        rows.append((xla, ff, rnd))
        print(
            f"| {w.name} | {w.num_buffers} | {xla:.3f} | {ff:.3f} | {rnd:.3f} | {opt} |", flush=True
        )
    med = np.median(np.asarray(rows), axis=0)
    print(f"| median | | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.3f} | |")


def main(args: Args | None = None) -> None:
    args = args or tyro.cli(Args)
    if args.baselines:
        baselines(args)
        return
    steps, repeats, py_s = args.steps, args.repeats, args.python_seconds
    if args.quick:
        steps, repeats, py_s = 64, 3, 2.0
    workloads = load_dataset(args.split)
    env, params = MallocGame.for_workloads(workloads, num_candidates=args.num_candidates)
    print(
        f"{len(workloads)} workloads, max_buffers={env.max_buffers}, max_live={env.max_live}, "
        f"K={env.num_candidates}, devices={jax.devices()}"
    )
    py_rates = bench_python(env, params, py_s, repeats)
    print("| implementation | batch | steps/s (median) | vs Python |\n|---|---|---|---|")
    print(f"| pure Python (reference) | 1 | {median(py_rates):,.0f} | 1.0x |")
    for b in args.batches:
        rates = bench_jax(env, params, b, steps, repeats)
        r, vs_py = median(rates), median_ratio(rates, py_rates)
        print(f"| JAX vmap + jit | {b} | {r:,.0f} | {vs_py:,.1f}x |", flush=True)


if __name__ == "__main__":
    main()
