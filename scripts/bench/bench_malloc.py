"""Benchmark MallocGame-v0: game steps/s vmapped over workloads vs the pure-Python rules.

Both sides play the same random legal policy on the shipped workloads (copy ``b`` of a batch
plays workload ``b mod W``). JAX: a jitted ``lax.scan`` of ``VecEnv.step`` (resets included)
at batch 1, 64 and 1024. Python: :class:`accelrl.envs.malloc.reference.ReferenceGame`, one
game at a time. Medians over repeats; ratios against the Python median. Target: at least
:data:`TARGET_VS_PYTHON` x the Python game at batch :data:`TARGET_BATCH`.

Results protocol: a full run writes ``docs/results/bench_malloc.json`` (command, commit, tree
state, machine, load average at the start and the end, settings, every repeat's steps/s of both
sides, medians and ratios) and renders the ``bench_malloc`` block of
``docs/envs/malloc_game.md`` from it; ``--from_results PATH`` re-renders the block from the file
alone. A tree with uncommitted changes is refused unless ``--allow_dirty``; ``--quick`` writes
under ``/tmp``. ``--baselines`` only prints a console table of a few solvers (no file).

    python scripts/bench/bench_malloc.py --quick
    python scripts/bench/bench_malloc.py            # on a quiet machine (~3 minutes)
    python scripts/bench/bench_malloc.py --from_results docs/results/bench_malloc.json
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from _bench import (
    ResultsArgs,
    close_results,
    host_load,
    median,
    median_ratio,
    open_results,
    render_from_results,
    time_fn,
)

from accelrl.envs.malloc import MallocGame, load_dataset
from accelrl.envs.malloc.reference import ReferenceGame
from accelrl.envs.vec import VecEnv

GENERATOR = "scripts/bench/bench_malloc.py"
PAGE = "docs/envs/malloc_game.md"
RESULTS = "docs/results/bench_malloc.json"
BLOCK = "bench_malloc"
TARGET_VS_PYTHON = 50.0
"""JAX steps/s at batch :data:`TARGET_BATCH` over the pure-Python game's, at least."""
TARGET_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class Args(ResultsArgs):
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
    out: Path | None = None
    """The raw results file (default docs/results/bench_malloc.json, which also renders the
    card's block; quick: /tmp/bench_malloc_quick.json, never docs/)."""

    def effective(self) -> Args:
        """The settings actually run (``--quick`` shortens the runs)."""
        if not self.quick:
            return self
        return dataclasses.replace(self, steps=64, repeats=3, python_seconds=2.0)


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


def measure(args: Args) -> dict:
    """Time both sides with ``args`` (already :meth:`Args.effective`): the Python repeats and,
    per batch size, the JAX repeats, their medians and the ratio to the Python median."""
    workloads = load_dataset(args.split)
    env, params = MallocGame.for_workloads(workloads, num_candidates=args.num_candidates)
    print(
        f"{len(workloads)} workloads, max_buffers={env.max_buffers}, max_live={env.max_live}, "
        f"K={env.num_candidates}, devices={jax.devices()}",
        flush=True,
    )
    py_rates = bench_python(env, params, args.python_seconds, args.repeats)
    print(f"pure Python: {median(py_rates):,.0f} steps/s", flush=True)
    rows = []
    for b in args.batches:
        rates = bench_jax(env, params, b, args.steps, args.repeats)
        rows.append({"batch": b, "rates": rates, "median": median(rates),
                     "vs_python": median_ratio(rates, py_rates)})  # fmt: skip
        print(f"JAX batch {b}: {median(rates):,.0f} steps/s", flush=True)
    return {
        "game": {"workloads": len(workloads), "max_buffers": env.max_buffers,
                 "max_live": env.max_live, "num_candidates": env.num_candidates},
        "python": {"rates": py_rates, "median": median(py_rates)},
        "jax": rows,
    }  # fmt: skip


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_record(record: dict) -> None:
    """Refuse a raw results file whose numbers contradict each other: a median that is not the
    median of its repeats, or a ratio that is not the JAX median over the Python median.

    Raises:
        ValueError: naming the batch.
    """
    py = record["python"]
    if not py["rates"] or not _close(py["median"], median(py["rates"])):
        raise ValueError(f"the Python median {py['median']} is not the median of its repeats")
    for row in record["jax"]:
        b = row["batch"]
        if not row["rates"] or not _close(row["median"], median(row["rates"])):
            raise ValueError(f"batch {b}: median {row['median']} is not the median of its repeats")
        if not _close(row["vs_python"], row["median"] / py["median"]):
            raise ValueError(
                f"batch {b}: ratio {row['vs_python']:.1f}x is not the median "
                f"{row['median']:,.0f} over the Python median {py['median']:,.0f}"
            )


def target(record: dict) -> tuple[bool, str]:
    """Whether the JAX game at :data:`TARGET_BATCH` is at least :data:`TARGET_VS_PYTHON` x the
    Python game in this record, and the reason (a missing batch is not met)."""
    rows = {r["batch"]: r for r in record["jax"]}
    if TARGET_BATCH not in rows:
        return False, f"batch {TARGET_BATCH} not measured, target {TARGET_VS_PYTHON:g}x"
    value = rows[TARGET_BATCH]["vs_python"]
    return value >= TARGET_VS_PYTHON, f"{value:,.1f}x, target {TARGET_VS_PYTHON:g}x"


def render(record: dict) -> dict[str, str]:
    """The card's speed block from a results record (pure: the JSON alone; checked by
    :func:`check_record` first)."""
    from accelrl.results import provenance_line, target_line

    check_record(record)
    s, g, host = record["settings"], record["game"], record["host"]
    lines = []
    if record.get("quick"):
        lines += ["**A `--quick` smoke run: not a result.**", ""]
    lines += [
        f"`{record['command']}`: {g['workloads']} shipped programs, N = {g['max_buffers']}, "
        f"L = {g['max_live']}, K = {g['num_candidates']}, random legal policy, resets included "
        f"(copy b of a JAX batch plays program b mod {g['workloads']}; Python plays whole games in "
        "program order, continuing across repeats, so its rate depends on which programs a "
        "repeat reaches); "
        f"JAX {s['steps']} scanned steps x {s['repeats']} repeats, Python "
        f"{s['python_seconds']:g} s x {s['repeats']} repeats; medians. {host['cpus']} CPUs, "
        f"load average {host['load_start'][0]:.1f} at the start, {host['load_end'][0]:.1f} at "
        f"the end; {record['wall_s']:.0f} s wall; JAX device {record['device']}.",
        "",
        "| implementation | batch | steps/s (median) | repeats (steps/s) | vs Python |",
        "|---|---|---|---|---|",
    ]

    def reps(rates: list[float]) -> str:
        return ", ".join(f"{r:,.0f}" for r in rates)

    py = record["python"]
    lines.append(
        f"| pure Python (reference) | 1 | {py['median']:,.0f} | {reps(py['rates'])} | 1.0x |"
    )
    for row in record["jax"]:
        lines.append(
            f"| JAX vmap + jit | {row['batch']} | {row['median']:,.0f} | {reps(row['rates'])} | "
            f"{row['vs_python']:,.1f}x |"
        )
    met, reason = target(record)
    lines += [
        "",
        target_line(f"JAX at batch {TARGET_BATCH} vs the pure-Python game", met, reason),
        "",
        f"{provenance_line(record)} Re-render: `python {GENERATOR} --from_results "
        f"{'PATH' if record.get('quick') else RESULTS}`.",
    ]
    return {BLOCK: "\n".join(lines)}


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = tyro.cli(Args, args=argv).effective()
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return None
    if args.baselines:
        baselines(args)
        return None
    quick_out = "/tmp/bench_malloc_quick.json"
    out, record, allow_dirty = open_results(args, argv, GENERATOR, PAGE, RESULTS, quick_out)
    t0, load_start = time.perf_counter(), os.getloadavg()
    measured = measure(args)
    record.update(
        settings={k: getattr(args, k) for k in ("batches", "steps", "repeats", "python_seconds",
                                                "split", "num_candidates")},
        host=host_load(load_start),
        device=f"{jax.devices()[0].platform} ({len(jax.devices())} device(s))",
        wall_s=time.perf_counter() - t0,
        quick=args.quick,
        **measured,
    )  # fmt: skip
    close_results(out, record, allow_dirty, render, RESULTS, PAGE, show=BLOCK)
    return record


if __name__ == "__main__":
    main()
