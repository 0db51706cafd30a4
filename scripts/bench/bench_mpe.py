"""Steps per second of the MPE scenarios: accelrl vs PettingZoo's mpe2 vs JaxMARL 0.2.0.

accelrl steps ``VecEnv(env, B)`` under ``jit`` with ``lax.scan`` over steps (random actions
drawn inside the scan); mpe2 steps one ``ParallelEnv`` at a time in this process; JaxMARL runs
the same scan over ``jax.vmap``-ed ``env.step`` in its own virtual environment (created on first
use under ``~/.cache/accelrl/venvs/jaxmarl``, or ``$ACCELRL_VENVS/jaxmarl``, with
``pip install jaxmarl==0.2.0``), driven as a subprocess that answers timing requests with JSON
lines.

Timings are interleaved: every round times each configuration once for every implementation,
so load changes on a shared machine hit all of them alike; the median over rounds is reported.
Compilation is excluded (and reported separately). Targets, ratios of medians of one run: at
least :data:`TARGET_VS_MPE2` x mpe2 at batch 1024, and not slower than JaxMARL at any batch.

Results protocol: a full run writes ``docs/results/mpe.json`` (command, commit, tree state,
machine, load, settings, every round's rate) and renders the speed block of
``docs/envs/mpe.md``; ``--from_results PATH`` re-renders it from the file alone. A tree with
uncommitted changes is refused unless ``--allow_dirty``; ``--quick`` writes under ``/tmp``.

    python scripts/bench/bench_mpe.py --quick
    python scripts/bench/bench_mpe.py
    python scripts/bench/bench_mpe.py --from_results docs/results/mpe.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tyro
from _bench import (
    PeerVenv,
    ResultsArgs,
    close_results,
    host_load,
    open_results,
    render_from_results,
    time_fn,
    venv_root,
)

JAXMARL_VERSION = "0.2.0"
GENERATOR = "scripts/bench/bench_mpe.py"
PAGE = "docs/envs/mpe.md"
RESULTS = "docs/results/mpe.json"
BLOCK = "bench_mpe"
TARGET_VS_MPE2 = 100.0
"""accelrl steps/s at batch :data:`TARGET_BATCH` over one mpe2 environment's, at least."""
TARGET_BATCH = 1024
DEFAULT_VENV = venv_root() / "jaxmarl"


@dataclass(frozen=True)
class Args(ResultsArgs):
    """Command-line arguments of the MPE benchmark."""

    envs: tuple[str, ...] = ("MPE_simple_spread_v3", "MPE_simple_tag_v3")
    """Scenario ids (accelrl and JaxMARL share them)."""
    batches: tuple[int, ...] = (1, 64, 1024, 8192)
    """Numbers of parallel environments for accelrl and JaxMARL."""
    quick: bool = False
    """Short run: fewer steps and rounds (noisier)."""
    steps_per_run: int = 200_000
    """Environment steps per timed run (``batch * scan length``; the scan has >= 50 steps)."""
    rounds: int = 5
    """Timed runs per configuration and implementation (median reported)."""
    mpe2_steps: int = 1_000
    """Steps of the single mpe2 environment per round."""
    jaxmarl: bool = True
    """Benchmark JaxMARL (creates its virtual environment if missing)."""
    jaxmarl_venv: Path = DEFAULT_VENV
    """Where JaxMARL's virtual environment lives."""
    out: Path | None = None
    """The raw results file (default docs/results/mpe.json, which also renders the card's
    block; quick: /tmp/bench_mpe_quick.json, never docs/)."""

    def effective(self) -> Args:
        """The settings actually run (``--quick`` shortens the runs)."""
        if not self.quick:
            return self
        return replace(self, steps_per_run=30_000, rounds=3, mpe2_steps=300)


def scan_length(batch: int, steps_per_run: int) -> int:
    """Steps of the scan for one timed run."""
    return max(50, steps_per_run // batch)


# Shared by accelrl (in-process) and JaxMARL (subprocess): ``reset(key) -> (obs, state)`` and
# ``step(key, state, actions) -> (state, reward_sum)`` act on a batch; the policy draws uniform
# random integers per agent inside the scan. ``time_fn`` (scripts/bench/_bench.py) is in the namespace.
TIMING_CODE = '''
import jax

def make_runner(reset, step, agents, num_actions, batch, length):
    """(jitted run(key) -> scalar, compile seconds)."""
    def run(key):
        key, k0 = jax.random.split(key)
        _, state = reset(k0)
        def body(carry, _):
            key, state = carry
            key, ka, ks = jax.random.split(key, 3)
            kas = jax.random.split(ka, len(agents))
            acts = {a: jax.random.randint(k, (batch,), 0, n)
                    for a, k, n in zip(agents, kas, num_actions)}
            state, rew = step(ks, state, acts)
            return (key, state), rew
        (_, state), rews = jax.lax.scan(body, (key, state), None, length=length)
        return rews.sum()
    run = jax.jit(run)
    return run, time_fn(run, jax.random.key(0), warmup=0, repeats=1).total

def time_once(run, seed):
    return time_fn(run, jax.random.key(seed), warmup=0, repeats=1).total
'''

# JaxMARL worker: one JSON request per stdin line ({"env", "batch", "length", "seed"}), one
# JSON answer per stdout line ({"seconds", "compile_s"}); runners are compiled once and cached.
JAXMARL_WORKER = """
import json, sys
from _bench import time_fn
import jaxmarl
runners = {}
for line in sys.stdin:
    req = json.loads(line)
    k = (req["env"], req["batch"])
    compile_s = 0.0
    if k not in runners:
        env = jaxmarl.make(req["env"])
        agents = list(env.agents)
        num_actions = [int(env.action_space(a).n) for a in agents]
        batch = req["batch"]
        def reset(key, env=env, batch=batch):
            return jax.vmap(env.reset)(jax.random.split(key, batch))
        def step(key, state, acts, env=env, batch=batch, agents=agents):
            _, state, rew, _, _ = jax.vmap(env.step)(jax.random.split(key, batch), state, acts)
            return state, rew[agents[0]].sum()
        runners[k] = make_runner(reset, step, agents, num_actions, batch, req["length"])
        compile_s = runners[k][1]
    seconds = time_once(runners[k][0], req["seed"])
    print(json.dumps({"seconds": seconds, "compile_s": compile_s}), flush=True)
"""


def _timing_namespace() -> dict:
    namespace: dict = {"time_fn": time_fn}
    exec(TIMING_CODE, namespace)  # noqa: S102 - our own constant code
    return namespace


class AccelrlRunner:
    """accelrl timings: ``VecEnv`` under jit with a scanned random policy (compiled once)."""

    def __init__(self, args: Args):
        self.args = args
        self.ns = _timing_namespace()
        self.runners: dict = {}

    def time(self, env_id: str, batch: int, seed: int) -> dict:
        from accelrl.envs import make
        from accelrl.envs.vec import VecEnv

        compile_s = 0.0
        if (env_id, batch) not in self.runners:
            env, params = make(env_id)
            venv = VecEnv(env, batch)
            agents = list(env.agents)
            num_actions = [int(env.action_space(a).n) for a in agents]

            def reset(key):
                return venv.reset(key, params)

            def step(key, state, acts):
                _, state, rew, *_ = venv.step(key, state, acts, params)
                return state, rew[agents[0]].sum()

            length = scan_length(batch, self.args.steps_per_run)
            run, compile_s = self.ns["make_runner"](reset, step, agents, num_actions, batch, length)
            self.runners[env_id, batch] = run
        seconds = self.ns["time_once"](self.runners[env_id, batch], seed)
        return {"seconds": seconds, "compile_s": compile_s}


class JaxmarlRunner:
    """JaxMARL timings from its own virtual environment (a persistent worker subprocess)."""

    def __init__(self, args: Args):
        self.args = args
        peer = jaxmarl_venv(args.jaxmarl_venv)
        peer.ensure()
        self.proc = peer.popen(
            code=TIMING_CODE + JAXMARL_WORKER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def time(self, env_id: str, batch: int, seed: int) -> dict:
        length = scan_length(batch, self.args.steps_per_run)
        req = {"env": env_id, "batch": batch, "length": length, "seed": seed}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"JaxMARL worker exited (code {self.proc.poll()})")
            if line.startswith("{"):
                return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Mpe2Runner:
    """mpe2 timings: one ParallelEnv, random actions, reset when the episode ends."""

    def __init__(self, args: Args):
        from accelrl.envs.mpe.parity import reference_env

        self.args = args
        self.envs = {}
        for env_id in args.envs:
            env = reference_env(env_id)
            env.reset(seed=0)
            self.envs[env_id] = env
        self.rng = np.random.default_rng(0)

    def time(self, env_id: str) -> dict:
        env = self.envs[env_id]
        n = {a: env.action_space(a).n for a in env.possible_agents}
        t0 = time.perf_counter()
        for _ in range(self.args.mpe2_steps):
            env.step({a: int(self.rng.integers(n[a])) for a in env.agents})
            if not env.agents:
                env.reset()
        return {"seconds": time.perf_counter() - t0, "compile_s": 0.0}


def jaxmarl_venv(path: Path) -> PeerVenv:
    """JaxMARL's virtual environment at ``path`` (``jaxmarl==0.2.0``; made by ``.ensure()``).

    One made before marker files existed counts as ready if it imports jaxmarl.
    """
    return PeerVenv(path, [[f"jaxmarl=={JAXMARL_VERSION}"]], probe="jaxmarl")


def run_benchmark(args: Args) -> list[dict]:
    """Interleaved rounds over every (implementation, env, batch); one row per configuration."""
    impls: dict = {"accelrl": AccelrlRunner(args)}
    if args.jaxmarl:
        impls["jaxmarl"] = JaxmarlRunner(args)
    mpe2 = Mpe2Runner(args)
    seconds: dict[tuple, list[float]] = {}
    steps: dict[tuple, int] = {}
    compile_s: dict[tuple, float] = {}
    try:
        for rnd in range(args.rounds + 1):  # round 0 compiles (untimed)
            for env_id in args.envs:
                if rnd > 0:
                    key = ("mpe2", env_id, 1)
                    seconds.setdefault(key, []).append(mpe2.time(env_id)["seconds"])
                    steps[key] = args.mpe2_steps
                for batch in args.batches:
                    order = list(impls) if rnd % 2 else list(impls)[::-1]
                    for name in order:
                        key = (name, env_id, batch)
                        res = impls[name].time(env_id, batch, seed=rnd)
                        if rnd == 0:
                            compile_s[key] = res["compile_s"]
                        else:
                            seconds.setdefault(key, []).append(res["seconds"])
                            steps[key] = batch * scan_length(batch, args.steps_per_run)
            print(f"round {rnd}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        if "jaxmarl" in impls:
            impls["jaxmarl"].close()
    rows = []
    for key, secs in seconds.items():
        rates = [steps[key] / s for s in secs]
        impl, env_id, batch = key
        rows.append(
            {
                "impl": impl,
                "env": env_id,
                "batch": batch,
                "steps_per_s": statistics.median(rates),
                "rates": rates,
                "compile_s": compile_s.get(key, 0.0),
            }
        )
    return rows


def _fmt(x: float | None) -> str:
    return f"{x:,.0f}" if x else "-"


def table(rows: list[dict]) -> str:
    """Markdown table: median steps/s per implementation and batch, with accelrl's speed-ups."""
    by = {(r["impl"], r["env"], r["batch"]): r["steps_per_s"] for r in rows}
    envs = sorted({r["env"] for r in rows})
    batches = sorted({r["batch"] for r in rows if r["impl"] == "accelrl"})
    lines = [
        "| env | batch | accelrl steps/s | JaxMARL steps/s | mpe2 steps/s (1 env) "
        "| accelrl / JaxMARL | accelrl / mpe2 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for env in envs:
        mpe2 = by.get(("mpe2", env, 1))
        for b in batches:
            ours, jm = by.get(("accelrl", env, b)), by.get(("jaxmarl", env, b))
            vs_jm = f"{ours / jm:.1f}x" if ours and jm else "-"
            vs_mpe2 = f"{ours / mpe2:.0f}x" if ours and mpe2 else "-"
            lines.append(
                f"| {env} | {b} | {_fmt(ours)} | {_fmt(jm)} | {_fmt(mpe2)} | {vs_jm} | {vs_mpe2} |"
            )
    return "\n".join(lines)


def mpe_targets(rows: list[dict]) -> list[dict]:
    """The speed targets judged on one run's medians: per env, accelrl over mpe2 at
    :data:`TARGET_BATCH` (at least :data:`TARGET_VS_MPE2`) and the slowest accelrl/JaxMARL
    ratio over batches (at least 1). A missing measurement is not met."""
    by = {(r["impl"], r["env"], r["batch"]): r["steps_per_s"] for r in rows}
    out = []
    for env in sorted({r["env"] for r in rows}):
        ours = by.get(("accelrl", env, TARGET_BATCH))
        mpe2 = by.get(("mpe2", env, 1))
        value = ours / mpe2 if ours and mpe2 else None
        out.append({"env": env, "name": f"vs mpe2 at batch {TARGET_BATCH}", "value": value,
                    "target": TARGET_VS_MPE2,
                    "met": value is not None and value >= TARGET_VS_MPE2})  # fmt: skip
        ratios = {
            b: by[("accelrl", env, b)] / by[("jaxmarl", env, b)]
            for (impl, e, b) in by
            if impl == "accelrl" and e == env and by.get(("jaxmarl", env, b))
        }
        worst = min(ratios, key=ratios.get) if ratios else None
        out.append({"env": env, "name": "vs JaxMARL, slowest batch", "batch": worst,
                    "value": ratios.get(worst), "target": 1.0,
                    "met": bool(ratios) and ratios[worst] >= 1.0})  # fmt: skip
    return out


def render(record: dict) -> dict[str, str]:
    """The card's speed block from a results record (pure: the JSON alone)."""
    from accelrl.results import provenance_line, target_line

    s, host = record["settings"], record["host"]
    lines = [
        f"`{record['command']}`: {s['steps_per_run']:,} env steps per timed run, {s['rounds']} "
        f"interleaved rounds, medians; mpe2 {s['mpe2_steps']:,} steps of one environment per "
        f"round; compilation excluded. {host['cpus']} CPUs, load average "
        f"{host['load_start'][0]:.1f} at the start, {host['load_end'][0]:.1f} at the end; "
        f"{record['wall_s']:.0f} s wall.",
        "",
        table(record["rows"]),
        "",
        "Targets (ratios of the medians above, measured in this run):",
    ]
    for t in record["targets"]:
        where = f" (batch {t['batch']})" if t.get("batch") is not None else ""
        value = "no measurement" if t["value"] is None else f"{t['value']:,.1f}x{where}"
        lines.append(
            target_line(f"{t['env']}, {t['name']}", t["met"], f"{value}, target {t['target']:g}x")
        )
    lines += ["", provenance_line(record)]
    return {BLOCK: "\n".join(lines)}


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = tyro.cli(Args, args=argv).effective()
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return []
    quick_out = "/tmp/bench_mpe_quick.json"
    out, record, allow_dirty = open_results(args, argv, GENERATOR, PAGE, RESULTS, quick_out)
    t0, load_start = time.perf_counter(), os.getloadavg()
    rows = run_benchmark(args)
    record.update(
        settings={k: getattr(args, k) for k in ("envs", "batches", "steps_per_run", "rounds",
                                                "mpe2_steps", "jaxmarl")},
        jaxmarl_version=JAXMARL_VERSION if args.jaxmarl else None,
        host=host_load(load_start),
        wall_s=time.perf_counter() - t0,
        quick=args.quick,
        rows=rows,
        targets=mpe_targets(rows),
    )  # fmt: skip
    close_results(out, record, allow_dirty, render, RESULTS, PAGE, show=BLOCK)
    return rows


if __name__ == "__main__":
    main()
