"""Relax-v0 speed: vmapped environment steps against the NumPy/SciPy reference solver.

One step of Relax-v0 (shift family) is one SOR solve of a 100-unknown system to relative
residual 1e-8. The JAX side steps ``VecEnv(env, B)`` under ``jit`` (omega = 1.6 for every
copy, fresh instances each step); the reference solves the same instances one after another
with ``accelrl.envs.relax.reference.sor_iterations`` (SciPy sparse triangular solves). For
batch 1024 the reference is timed on its first ``--reference-instances`` instances and scaled
to 1024 (it is a loop over instances; the scaling is stated in the output).

    python scripts/bench/bench_relax.py            # batch 1 and 1024
    python scripts/bench/bench_relax.py --quick    # batch 1 and 64, fewer repeats
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs import VecEnv, make
from accelrl.envs.relax import reference


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="batch 1 and 64, one timed step")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 1024])
    p.add_argument("--steps", type=int, default=3, help="timed vmapped steps per batch size")
    p.add_argument("--reference-instances", type=int, default=32)
    p.add_argument("--action", type=int, default=12, help="grid index (12 = omega 1.6)")
    args = p.parse_args(argv)
    if args.quick:
        args.batches, args.steps, args.reference_instances = [1, 64], 1, 4
    if min(args.batches) < 1 or args.steps < 1 or args.reference_instances < 1:
        raise SystemExit("--batches, --steps and --reference-instances must be at least 1")
    return args


def time_jax(env, params, batch: int, steps: int, action: int):
    """Seconds per vmapped step (compiled, warmed up), the last step's states and iterations."""
    vec = VecEnv(env, batch)
    reset, step = jax.jit(vec.reset), jax.jit(vec.step)
    obs, state = reset(jax.random.key(0), params)
    actions = jnp.full((batch,), action, jnp.int32)
    out = step(jax.random.key(1), state, actions, params)
    jax.block_until_ready(out)
    state = out[1]
    start = time.perf_counter()
    for i in range(steps):
        before = state
        out = step(jax.random.key(2 + i), state, actions, params)
        jax.block_until_ready(out)
        state = out[1]
    return (time.perf_counter() - start) / steps, before, np.asarray(out[5]["iterations"])


def time_reference(env_state, omega: float, count: int):
    """Seconds for the reference to solve the first ``count`` pending instances, and counts."""
    betas, bs = np.asarray(env_state.beta), np.asarray(env_state.b)
    n = bs.shape[-1]
    counts = []
    start = time.perf_counter()
    for i in range(count):
        A = reference.shifted_laplacian(n, 1.0, float(betas[i]))
        b = bs[i].reshape(-1)
        counts.append(reference.sor_iterations(A, b, np.zeros_like(b), omega)[0])
    return time.perf_counter() - start, np.asarray(counts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env, params = make("Relax-v0")
    omega = float(np.float32(params.omega_values[args.action]))
    print(f"Relax-v0 (shift, high variance, 10x10 grid), omega = {omega:.2f}; {jax.devices()[0]}")
    print("batch | jax s/step | iterations mean/max | reference s (instances) | ratio")
    for batch in args.batches:
        seconds, state, its = time_jax(env, params, batch, args.steps, args.action)
        count = min(batch, args.reference_instances)
        ref_seconds, ref_its = time_reference(_unwrap(state), omega, count)
        if not np.array_equal(ref_its, its[:count]):
            raise SystemExit(f"reference counts {ref_its} differ from the env's {its[:count]}")
        scaled = ref_seconds * batch / count
        note = f"{ref_seconds:.3f} x {batch}/{count}" if count < batch else f"{ref_seconds:.3f}"
        print(
            f"{batch:5d} | {seconds:10.4f} | {its.mean():7.1f} / {its.max():5d} | "
            f"{scaled:9.3f} ({note}) | {scaled / seconds:6.1f}x"
        )


def _unwrap(state):
    """The env state inside VecEnv's state (the innermost with ``beta`` and ``b``)."""
    while not hasattr(state, "beta"):
        state = state.inner if hasattr(state, "inner") else state.env
    return state


if __name__ == "__main__":
    main()
