"""Benchmark: the vmapped ThreeBody environment against REBOUND (IAS15) one system at a time.

For every batch size B and fixed mu, the environment steps B paper initial conditions for K
decisions (each decision: to the next 0.1 yr check time or C substeps) under one jitted
``lax.scan``; REBOUND then integrates a subset of the same systems, one by one, for the same
physical time each reached. Reported per (C, mu, B):

* system-years/s of both (and their ratio), median over repeats of wall-clock time,
* useful Hermite substeps/s (substeps that advanced a system),
* lockstep imbalance = substeps executed by the batch (per device, its B/N copies x its slowest
  copy, per decision) / useful substeps,
* median |dE| of both on the compared systems, side by side.

``--devices N`` splits the batch over N devices with ``shard_map`` (each runs its own lockstep
loop on B/N systems); on a CPU the script restarts itself with
``--xla_force_host_platform_device_count=N`` so that N host devices (cores) exist. REBOUND always
runs on one core, so the per-CPU-second ratio is reported next to the wall-clock one.

Targets (the issue's, at B = 1024, mu = 1e-2 and the default C): imbalance at most 2, at least
5 M useful substeps/s, at least 10x REBOUND's system-years/s (wall clock; both measured in the
same run).

Results protocol: a run writes ``docs/results/three_body_bench_<N>dev.json`` (N = ``--devices``:
command, commit, tree state, machine, load, every row) and renders the card's block
``bench_three_body_<N>dev`` in ``docs/envs/three_body.md``; ``--from-results PATH`` re-renders
it from the file alone. A tree with uncommitted changes is refused unless ``--allow-dirty``;
``--quick`` writes under ``/tmp``.

Usage::

    python scripts/bench/bench_three_body.py --quick
    python scripts/bench/bench_three_body.py --batches 1 64 1024 8192 --caps 16 32 64
    python scripts/bench/bench_three_body.py --batches 1024 --mus 1e-2 --devices 2
    python scripts/bench/bench_three_body.py --from-results docs/results/three_body_bench_2dev.json
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from _bench import ResultsArgs, close_results, host_load, open_results, render_from_results, time_fn

from accelrl.envs import three_body as tb

GENERATOR = "scripts/bench/bench_three_body.py"
PAGE = "docs/envs/three_body.md"
TARGETS = {"imbalance": 2.0, "useful_substeps_per_s": 5e6, "speedup": 10.0}
"""At B = 1024, mu = 1e-2, default C: imbalance <= 2, useful substeps/s >= 5 M, ratio >= 10."""


@dataclass(frozen=True)
class Args(ResultsArgs):
    """Command-line options."""

    batches: tuple[int, ...] = (1, 64, 1024, 8192)
    """Batch sizes of the vmapped environment."""
    mus: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    """Fixed time-step parameters."""
    caps: tuple[int, ...] = (tb.DEFAULT_MAX_SUBSTEPS_PER_DECISION,)
    """Substep caps C per decision to measure."""
    decisions: int = 100
    """Decisions K per timed run."""
    repeats: int = 3
    """Timed repeats (the median is reported)."""
    rebound_systems: int = 128
    """Systems integrated by REBOUND per (mu, B) for the speed and error comparison (timed
    ``repeats`` times, median)."""
    seed: int = 0
    """Seed of the initial conditions."""
    quick: bool = False
    """Short run: batches (1, 64, 1024), 10 decisions, 1 repeat, 8 REBOUND systems."""
    devices: int = 1
    """Split each batch over this many devices (host cores on a CPU) with ``shard_map``."""
    out: str | None = None
    """The raw results file (default docs/results/three_body_bench_<devices>dev.json, which also
    renders the card's block; quick: under /tmp, never docs/)."""


def rebound_run(pos, vel, mass, G, t_end):
    """IAS15 on one system to ``t_end``: (|dE|, IAS15 steps, wall seconds, CPU seconds)."""
    import rebound

    sim = rebound.Simulation()
    sim.G = G
    sim.integrator = "ias15"
    for i in range(3):
        sim.add(m=float(mass[i]), x=pos[i, 0], y=pos[i, 1], vx=vel[i, 0], vy=vel[i, 1])
    sim.move_to_com()
    e0 = sim.energy()
    start, cpu = time.perf_counter(), time.process_time()
    sim.integrate(t_end, exact_finish_time=1)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return abs((sim.energy() - e0) / e0), sim.steps_done, wall, cpu


def make_runner(env: tb.ThreeBody, decisions: int, devices: int = 1):
    """jitted (state, params) -> (state, substeps [K, B]) for a fixed action 0.

    With ``devices > 1`` the batch is split over that many devices by ``shard_map``.
    """

    def one(state, params):
        def body(s, _):
            action = jnp.zeros_like(s.checks)  # batched, as an agent's actions are
            _, s, _, _, info = jax.vmap(env.step_env, in_axes=(None, 0, 0, None))(
                jax.random.PRNGKey(0), s, action, params
            )
            return s, info["substeps"]

        return jax.lax.scan(body, state, None, length=decisions)

    if devices == 1:
        return jax.jit(one)
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:devices]), ("batch",))
    sharded = jax.shard_map(
        one, mesh=mesh, in_specs=(P("batch"), P()), out_specs=(P("batch"), P(None, "batch"))
    )
    return jax.jit(sharded)


def ensure_devices(n: int) -> None:
    """Restart this script with N host devices when a CPU run asks for more than exist."""
    if n <= jax.local_device_count():
        return
    if jax.default_backend() != "cpu" or os.environ.get("_ACCELRL_BENCH_REEXEC"):
        raise SystemExit(f"--devices {n}: only {jax.local_device_count()} devices here")
    env = dict(os.environ, _ACCELRL_BENCH_REEXEC="1")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}"
    cmd = [sys.executable, __file__, *sys.argv[1:]]
    sys.stdout.flush()
    os.execve(sys.executable, cmd, env)


def bench(args: Args) -> list[dict]:
    env = tb.ThreeBody(num_actions=1)
    runners: dict[tuple[int, int], object] = {}
    rows = []
    for cap in args.caps:
        for mu in args.mus:
            params = env.default_params.replace(
                mu_values=jnp.asarray([mu], jnp.float32),
                max_substeps_per_decision=cap,
                max_decisions=10**9,
                num_checks=10**9,
            )
            for b in args.batches:
                keys = jax.random.split(jax.random.PRNGKey(args.seed), b)
                _, state0 = jax.jit(jax.vmap(env.reset_env, in_axes=(0, None)))(keys, params)
                devices = args.devices if b % args.devices == 0 else 1
                if (b, devices) not in runners:
                    runners[b, devices] = make_runner(env, args.decisions, devices)
                run = runners[b, devices]
                timing = time_fn(run, state0, params, warmup=1, repeats=args.repeats)
                compile_s, wall, cpu = timing.first_s, timing.median, timing.cpu_median
                state, subs = timing.result
                subs = np.asarray(subs)  # [K, B]
                useful = int(subs.sum())
                # each device waits for the slowest of its own B / devices systems
                per_device = subs.reshape(subs.shape[0], devices, b // devices)
                executed = int(per_device.max(axis=2).sum()) * (b // devices)
                t = np.asarray(state.hermite.t, np.float64)
                with jax.enable_x64(True):
                    err = np.abs(np.asarray(state.energy_error, np.float64))

                # REBOUND on a subset, same physical time per system
                pos0, vel0 = np.asarray(state0.hermite.pos), np.asarray(state0.hermite.vel)
                idx = np.arange(min(b, args.rebound_systems))
                reb_walls, reb_cpus = [], []
                for _ in range(args.repeats):  # the same repeats as the environment, median
                    reb = [
                        rebound_run(pos0[i], vel0[i], np.ones(3), tb.G_AU_MSUN_YR, float(t[i]))
                        for i in idx
                    ]
                    reb_walls.append(sum(r[2] for r in reb))
                    reb_cpus.append(sum(r[3] for r in reb))
                reb_err = np.array([r[0] for r in reb])
                reb_steps = np.array([r[1] for r in reb])
                reb_wall, reb_cpu = float(np.median(reb_walls)), float(np.median(reb_cpus))
                row = {
                    "C": cap,
                    "mu": mu,
                    "batch": b,
                    "devices": devices,
                    "decisions": args.decisions,
                    "compile_s": compile_s,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "system_years": float(t.sum()),
                    "env_sysyr_per_s": float(t.sum()) / wall,
                    "useful_substeps_per_s": useful / wall,
                    "executed_substeps_per_s": executed / wall,
                    "imbalance": executed / max(useful, 1),
                    "checks_per_decision": float(t.sum() / 0.1 / (b * args.decisions)),
                    "rebound_sysyr_per_s": float(t[idx].sum()) / reb_wall,
                    "env_sysyr_per_cpu_s": float(t.sum()) / cpu,
                    "rebound_sysyr_per_cpu_s": float(t[idx].sum()) / max(reb_cpu, 1e-9),
                    "rebound_steps_per_10yr": float(reb_steps.sum() / t[idx].sum() * 10),
                    "env_median_dE": float(np.median(err[idx])),
                    "rebound_median_dE": float(np.median(reb_err)),
                    "env_median_dE_all": float(np.median(err)),
                }
                row["speedup"] = row["env_sysyr_per_s"] / row["rebound_sysyr_per_s"]
                row["speedup_cpu"] = row["env_sysyr_per_cpu_s"] / row["rebound_sysyr_per_cpu_s"]
                rows.append(row)
                print(format_row(row), flush=True)
    return rows


HEADER = (
    "|  C | mu    |    B | dev | years | env sys-yr/s | REBOUND sys-yr/s | ratio | ratio (CPU s) | "
    "useful substeps/s | imbalance | env median dE | REBOUND median dE |\n"
    "|---:|:------|-----:|----:|------:|-------------:|-----------------:|------:|--------------:|"
    "------------------:|----------:|--------------:|------------------:|"
)


def format_row(r: dict) -> str:
    return (
        f"| {r['C']:>2} | {r['mu']:.0e} | {r['batch']:>4} | {r['devices']:>3} | "
        f"{r['system_years'] / r['batch']:>5.2f} | {r['env_sysyr_per_s']:>12,.0f} | "
        f"{r['rebound_sysyr_per_s']:>16,.0f} | {r['speedup']:>5.1f} | {r['speedup_cpu']:>13.1f} | "
        f"{r['useful_substeps_per_s'] / 1e6:>15.2f} M | {r['imbalance']:>9.2f} | "
        f"{r['env_median_dE']:>13.1e} | {r['rebound_median_dE']:>17.1e} |"
    )


def block_name(devices: int) -> str:
    """The card's block of a run on ``devices`` devices."""
    return f"bench_three_body_{devices}dev"


def three_body_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets judged on the row at B = 1024, mu = 1e-2, default C (not met when
    that row was not measured)."""
    row = next(
        (
            r
            for r in rows
            if r["batch"] == 1024
            and math.isclose(r["mu"], 1e-2)
            and r["C"] == tb.DEFAULT_MAX_SUBSTEPS_PER_DECISION
        ),
        None,
    )
    out = []
    for key, bound in TARGETS.items():
        value = None if row is None else row[key]
        at_most = key == "imbalance"
        met = value is not None and (value <= bound if at_most else value >= bound)
        out.append({"key": key, "value": value, "target": bound, "at_most": at_most, "met": met})
    return out


def render(record: dict) -> dict[str, str]:
    """The card's block of one run from its results record (pure: the JSON alone)."""
    from accelrl.results import provenance_line, target_line

    s, host = record["settings"], record["host"]
    names = {
        "imbalance": "lockstep imbalance",
        "useful_substeps_per_s": "useful substeps/s",
        "speedup": "system-years/s over REBOUND's",
    }
    lines = [
        f"`{record['command']}`: jax {record['versions'].get('jax')}, {s['devices']} device(s), "
        f"K = {s['decisions']} decisions from reset per batch, {s['repeats']} repeats (medians); "
        f"REBOUND IAS15 on the first {s['rebound_systems']} systems, one core. {host['cpus']} "
        f"CPUs, load average {host['load_start'][0]:.1f} at the start, "
        f"{host['load_end'][0]:.1f} at the end; {record['wall_s']:.0f} s wall.",
        "",
        HEADER,
        *(format_row(r) for r in record["rows"]),
        "",
        f"Targets at B = 1024, mu = 1e-2, C = {tb.DEFAULT_MAX_SUBSTEPS_PER_DECISION} "
        "(measured in this run):",
    ]
    for t in record["targets"]:
        bound = f"{'<=' if t['at_most'] else '>='} {t['target']:g}"
        value = "not measured" if t["value"] is None else f"{t['value']:,.2f}"
        lines.append(target_line(names[t["key"]], t["met"], f"{value}, target {bound}"))
    lines += ["", provenance_line(record)]
    return {block_name(s["devices"]): "\n".join(lines)}


def main(args: Args | None = None) -> list[dict]:
    argv = sys.argv[1:] if args is None else [f"<in-process {args!r}>"]
    args = tyro.cli(Args) if args is None else args
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return []

    ensure_devices(args.devices)
    if args.quick:
        args = replace(args, batches=(1, 64, 1024), decisions=10, repeats=1, rebound_systems=8)
    results = f"docs/results/three_body_bench_{args.devices}dev.json"
    quick_out = f"/tmp/three_body_bench_{args.devices}dev.json"
    out, record, allow_dirty = open_results(args, argv, GENERATOR, PAGE, results, quick_out)
    print(
        f"jax {jax.__version__} on {jax.local_device_count()} {jax.devices()[0].platform} "
        f"device(s); K = {args.decisions} decisions; REBOUND on one core"
    )
    print(HEADER, flush=True)
    t0, load_start = time.perf_counter(), os.getloadavg()
    rows = bench(args)
    settings = {k: getattr(args, k) for k in ("batches", "mus", "caps", "decisions", "repeats",
                                              "rebound_systems", "seed", "devices")}  # fmt: skip
    record.update(
        settings=settings,
        host=host_load(load_start),
        backend=jax.default_backend(),
        wall_s=time.perf_counter() - t0,
        quick=args.quick,
        rows=rows,
        targets=three_body_targets(rows),
    )
    close_results(out, record, allow_dirty, render, results, PAGE)
    return rows


if __name__ == "__main__":
    main()
