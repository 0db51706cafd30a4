"""Steps per second of the MPE scenarios: accelrl vs PettingZoo's mpe2 vs JaxMARL 0.2.0.

accelrl steps ``VecEnv(env, B)`` under ``jit`` with ``lax.scan`` over steps (random actions
drawn inside the scan); mpe2 steps one ``ParallelEnv`` at a time in this process; JaxMARL runs
the same scan over ``jax.vmap``-ed ``env.step`` in its own virtual environment (created on first
use under ``~/.cache/accelrl/venvs/jaxmarl`` with ``pip install jaxmarl==0.2.0``), driven as a
subprocess that prints JSON. Compilation is excluded; the median of the repeats is reported.

    python -m accelrl.scripts.bench_mpe --quick
    python -m accelrl.scripts.bench_mpe --out bench_mpe.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tyro

JAXMARL_VERSION = "0.2.0"
DEFAULT_VENV = Path.home() / ".cache" / "accelrl" / "venvs" / "jaxmarl"


@dataclass(frozen=True)
class Args:
    """Command-line arguments of the MPE benchmark."""

    envs: tuple[str, ...] = ("MPE_simple_spread_v3", "MPE_simple_tag_v3")
    """Scenario ids (accelrl/JaxMARL ids)."""
    batches: tuple[int, ...] = (1, 64, 1024, 8192)
    """Numbers of parallel environments for accelrl and JaxMARL."""
    quick: bool = False
    """Short run: fewer steps and repeats (noisier)."""
    steps_per_run: int = 400_000
    """Environment steps per timed run (``batch * scan length``; the scan has >= 50 steps)."""
    repeats: int = 5
    """Timed runs per configuration (median reported)."""
    mpe2_steps: int = 5_000
    """Steps of the single mpe2 environment."""
    jaxmarl: bool = True
    """Benchmark JaxMARL (creates its virtual environment if missing)."""
    jaxmarl_venv: Path = DEFAULT_VENV
    """Where JaxMARL's virtual environment lives."""
    out: Path | None = None
    """Write the results as JSON here."""

    def effective(self) -> Args:
        """The settings actually run (``--quick`` shortens the runs)."""
        if not self.quick:
            return self
        return replace(self, steps_per_run=40_000, repeats=3, mpe2_steps=500)


def scan_length(batch: int, steps_per_run: int) -> int:
    return max(50, steps_per_run // batch)


# The timing loop shared by accelrl (in-process) and JaxMARL (subprocess): ``step(key, state,
# actions)`` and ``reset(key)`` act on a batch; actions are uniform random integers per agent.
TIMING_CODE = """
import time, statistics
import jax, jax.numpy as jnp

def time_scan(reset, step, agents, num_actions, batch, length, repeats):
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
    t0 = time.perf_counter()
    run(jax.random.key(0)).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        run(jax.random.key(i + 1)).block_until_ready()
        times.append(time.perf_counter() - t0)
    return {"steps_per_s": batch * length / statistics.median(times),
            "compile_s": compile_s, "times": times}
"""

JAXMARL_WORKER = """
import json, sys
import jax
import jaxmarl
cfg = json.loads(sys.argv[1])
for env_id in cfg["envs"]:
    env = jaxmarl.make(env_id)
    agents = list(env.agents)
    num_actions = [int(env.action_space(a).n) for a in agents]
    for batch in cfg["batches"]:
        length = max(50, cfg["steps_per_run"] // batch)
        def reset(key, batch=batch):
            return jax.vmap(env.reset)(jax.random.split(key, batch))
        def step(key, state, acts, batch=batch, env=env, agents=agents):
            keys = jax.random.split(key, batch)
            _, state, rew, _, _ = jax.vmap(env.step)(keys, state, acts)
            return state, rew[agents[0]].sum()
        res = time_scan(reset, step, agents, num_actions, batch, length, cfg["repeats"])
        res.update(env=env_id, batch=batch, impl="jaxmarl")
        print(json.dumps(res), flush=True)
"""


def bench_accelrl(args: Args) -> list[dict]:
    """accelrl rows: ``VecEnv`` under jit with a scanned random policy."""
    import jax

    from accelrl.envs import make
    from accelrl.envs.vec import VecEnv

    namespace: dict = {}
    exec(TIMING_CODE, namespace)  # noqa: S102 - our own constant code
    rows = []
    for env_id in args.envs:
        env, params = make(env_id)
        agents = list(env.agents)
        num_actions = [int(env.action_space(a).n) for a in agents]
        for batch in args.batches:
            venv = VecEnv(env, batch)

            def reset(key, venv=venv, params=params):
                return venv.reset(key, params)

            def step(key, state, acts, venv=venv, agents=agents, params=params):
                _, state, rew, *_ = venv.step(key, state, acts, params)
                return state, rew[agents[0]].sum()

            length = scan_length(batch, args.steps_per_run)
            res = namespace["time_scan"](
                reset, step, agents, num_actions, batch, length, args.repeats
            )
            res.update(env=env_id, batch=batch, impl="accelrl")
            print(json.dumps(res), flush=True)
            rows.append(res)
            jax.clear_caches()
    return rows


def bench_mpe2(args: Args) -> list[dict]:
    """mpe2 rows: one ParallelEnv, random actions, resets when the episode ends."""
    from accelrl.envs.mpe.parity import reference_env

    rows = []
    for env_id in args.envs:
        env = reference_env(env_id)
        rng = np.random.default_rng(0)
        n = {a: env.action_space(a).n for a in env.possible_agents}
        times = []
        for rep in range(max(1, args.repeats // 2)):
            env.reset(seed=rep)
            t0 = time.perf_counter()
            for _ in range(args.mpe2_steps):
                env.step({a: int(rng.integers(n[a])) for a in env.agents})
                if not env.agents:
                    env.reset()
            times.append(time.perf_counter() - t0)
        res = {
            "env": env_id,
            "batch": 1,
            "impl": "mpe2",
            "steps_per_s": args.mpe2_steps / statistics.median(times),
            "times": times,
        }
        print(json.dumps(res), flush=True)
        rows.append(res)
    return rows


def ensure_jaxmarl_venv(venv: Path) -> Path:
    """Python of JaxMARL's virtual environment, created with ``jaxmarl==0.2.0`` if missing."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import jaxmarl"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} with jaxmarl=={JAXMARL_VERSION} (one time)", file=sys.stderr)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"jaxmarl=={JAXMARL_VERSION}"], check=True
    )
    return python


def bench_jaxmarl(args: Args) -> list[dict]:
    """JaxMARL rows, from its own virtual environment (subprocess printing JSON lines)."""
    python = ensure_jaxmarl_venv(args.jaxmarl_venv)
    cfg = {
        "envs": list(args.envs),
        "batches": list(args.batches),
        "steps_per_run": args.steps_per_run,
        "repeats": args.repeats,
    }
    code = TIMING_CODE + textwrap.dedent(JAXMARL_WORKER)
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run(
        [str(python), "-c", code, json.dumps(cfg)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"JaxMARL worker failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    for r in rows:
        print(json.dumps(r), flush=True)
    return rows


def _fmt(x: float | None) -> str:
    return f"{x:,.0f}" if x else "-"


def table(rows: list[dict]) -> str:
    """Markdown table: steps/s per implementation and batch, with accelrl's speed-ups."""
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


def main(argv: list[str] | None = None) -> list[dict]:
    args = tyro.cli(Args, args=argv).effective()
    rows = bench_mpe2(args) + bench_accelrl(args)
    if args.jaxmarl:
        rows += bench_jaxmarl(args)
    print(table(rows))
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
