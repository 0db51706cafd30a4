"""Benchmark the tuners: incumbent against default on test seeds, and vmapped populations.

Two parts, in one process (``--parts`` picks some):

1. **Tuning**: random search, Hyperband, PBT and TPE (``accelrl.autotune``, the same code as
   ``accelrl-tune``) on CartPole-v1 (PPO), Pendulum-v1 (SAC) and ThreeBody-v0 (PPO), tuning
   seeds 0-4, test seeds 5-9. Every method gets the same budget: ``--budget`` environment steps
   per configuration and seed, and ``--trials`` full-budget runs' worth of tuning steps
   (random, TPE: that many configurations; PBT: that population; Hyperband: as many
   configurations as its brackets can start within the same tuning steps). Reported per
   (environment, method): the incumbent's and the default configuration's test IQM with 95%
   stratified-bootstrap intervals, whether the incumbent's interval lies above the default's
   IQM, the tuning steps used and the wall time.
2. **Speed**: 16 PPO configurations on CartPole-v1 as one vmapped program (a 16 x 1 runner
   grid) against the same 16 trained one after another in one process (one compiled program
   reused), both after compiling; environment steps per second and their ratio (median of
   ``--rounds``).

The spaces are the agents' default spaces restricted to their hparams (shape-keeping)
dimensions, so every method trains one program per stage on this 2-core machine (config
dimensions such as ``num_minibatches`` each add a compile of 10-30 s here); the ranges are the
defaults' (docs/autotune.md).

Usage::

    python scripts/bench/bench_autotune.py --quick                 # minutes: smoke sizes
    nice -n 10 python scripts/bench/bench_autotune.py --out runs/bench_autotune
    python scripts/bench/bench_autotune.py --out runs/bench_autotune --parts   # table again

Writes ``<out>/results.json`` (and each study's run folder under ``<out>/<env>/<method>``);
prints the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

METHODS = ("random", "hyperband", "pbt", "tpe")
PARTS = ("tuning", "speed")

# Per environment: agent, fixed overrides, budget per configuration and seed (full, quick).
CASES: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(agent="ppo", overrides={}, budget=32_768, quick_budget=8_192),
    "Pendulum-v1": dict(
        agent="sac",
        overrides={
            "actor_hidden_sizes": [64, 64],
            "critic_hidden_sizes": [64, 64],
            "batch_size": 128,
            "num_envs": 4,
        },
        budget=6_000,
        quick_budget=1_200,
    ),  # fmt: skip
    # 2 tuning seeds keep the ThreeBody part inside the bench's hour on 2 cores (the tuning
    # steps scale with the seeds). They were first chosen because programs of more than 17
    # members deadlocked; that was jaxlib's parallel batched QR in the networks' orthogonal
    # init, since replaced (agents/networks.py, householder_q).
    "ThreeBody-v0": dict(
        agent="ppo", overrides={}, budget=40_960, quick_budget=4_096, tuning_seeds=[0, 1]
    ),
}


def bench_space(agent: str) -> Any:
    """The agent's default space without its config (shape-changing) dimensions."""
    from accelrl.autotune import default_space

    space = default_space(agent)
    config_names, _ = space.split(agent)
    return space.without(*config_names)


def hyperband_trials(full_runs: int, eta: int = 3, brackets: int = 3) -> int:
    """The most configurations whose Hyperband plan costs at most ``full_runs`` full-budget
    runs' worth of steps (a configuration stopped at a rung costs that rung's steps)."""
    from accelrl.autotune.hyperband import bracket_sizes, rung_plan

    # rung_plan rounds its steps to integers (at least 1), so plan on a budget large enough
    # that the rounding cannot matter and count in units of it.
    unit = 1_000 * eta**brackets

    def cost(trials: int) -> float:
        total = 0
        for s, n in bracket_sizes(trials, brackets, eta):
            prev = 0
            for alive, steps in rung_plan(n, s, eta, unit):
                total += alive * (steps - prev)
                prev = steps
        return total / unit

    best = brackets
    for trials in range(brackets, 50 * full_runs):
        if cost(trials) <= full_runs:
            best = trials
    return best


def tpe_settings(trials: int) -> tuple[int, int]:
    """TPE's ``(batch, n_startup_trials)`` for ``trials`` configurations: half the trials (at
    most 8, Optuna's default is 10) drawn at random, then batches of at most 4, so a larger
    study fits its model several times (6 trials: 3 + 3, as before; 24 trials: 8 random, then
    four batches of 4) instead of once for a whole second half asked at once."""
    startup = max(1, min(8, trials // 2))
    return max(1, min(4, trials // 2)), startup


def run_tuning(out: Path, envs: list[str], methods: list[str], trials: int, quick: bool,
               seeds: tuple[list[int], list[int]],
               pbt_burn_in: float = 0.0) -> list[dict[str, Any]]:  # fmt: skip
    import accelrl.autotune as at

    rows = []
    for env_id in envs:
        case = CASES[env_id]
        budget = case["quick_budget"] if quick else case["budget"]
        space = bench_space(case["agent"])
        for method in methods:
            # a PBT with a burn-in is its own row and study folder, beside a plain one
            label, folder = method, out / env_id / method
            if method == "pbt" and pbt_burn_in:
                label = f"pbt, burn-in {pbt_burn_in:g}"
                folder = out / env_id / f"pbt_burn_in_{pbt_burn_in:g}"
            spec = at.StudySpec(
                env_id, case["agent"], space, budget,
                tuning_seeds=tuple(seeds[0] or case.get("tuning_seeds", [0, 1, 2, 3, 4])),
                test_seeds=tuple(seeds[1]), overrides=case["overrides"],
                log=lambda line, m=method, e=env_id: print(f"  [{e} {m}] {line}", flush=True),
            )  # fmt: skip
            t0 = time.perf_counter()
            if method == "random":
                result = at.random_search(at.RandomSearchSettings(trials=trials), spec, folder)
            elif method == "tpe":
                batch, startup = tpe_settings(trials)
                settings = at.TPESettings(trials=trials, batch=batch, n_startup_trials=startup)
                result = at.tpe(settings, spec, folder)
            elif method == "pbt":
                settings = at.PBTSettings(population=trials, intervals=8,
                                          burn_in=math.ceil(pbt_burn_in * budget))  # fmt: skip
                result = at.pbt(settings, spec, folder)
            else:
                settings = at.HyperbandSettings(trials=hyperband_trials(trials))
                result = at.hyperband(settings, spec, folder)
            wall = time.perf_counter() - t0
            inc = result.incumbent
            row = {
                "env": env_id,
                "agent": case["agent"],
                "method": label,
                "budget": budget,
                "trials": len(result.rows),
                "tuning_env_steps": inc["budget"]["tuning_env_steps"],
                "incumbent": _entry(inc["test"]["incumbent"]),
                "default": _entry(inc["test"]["default"]),
                "wall_seconds": round(wall, 1),
                "incumbent_config": inc["config"],
                "tuning_seeds": list(inc["tuning"]["seeds"]),
            }
            row["tuned_beats_default"] = _beats(row["incumbent"], row["default"])
            rows.append(row)
            print(_tuning_line(row), flush=True)
            previous = _read(out)
            merged = [
                r for r in previous.get("tuning", [])
                if (r["env"], r["method"]) != (env_id, label)
            ] + [row]  # fmt: skip
            (out / "results.json").write_text(json.dumps({**previous, "tuning": merged}, indent=2))
    return rows


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    if e.get("scores") is None:
        return {"iqm": None, "ci": None, "error": e.get("error")}
    return {"iqm": e["iqm"], "ci": e["ci"], "scores": e["scores"]}


def _beats(inc: dict[str, Any], default: dict[str, Any]) -> bool | None:
    """True when the incumbent's test IQM is above the default's and its interval's lower end
    is above the default's IQM; None when either failed."""
    if inc.get("iqm") is None or default.get("iqm") is None:
        return None
    return bool(inc["iqm"] > default["iqm"] and inc["ci"][0] > default["iqm"])


def run_speed(rounds: int, quick: bool, steps: int | None = None) -> dict[str, Any]:
    """16 PPO configurations, vmapped against one after another (both after compiling)."""
    import numpy as np

    from accelrl.agents import build
    from accelrl.agents.runner import Runner

    budget = steps or (16_384 if quick else 131_072)
    agent, _, hp = build("CartPole-v1", "ppo", {"total_timesteps": budget})
    rng = np.random.default_rng(0)
    settings = [
        hp.replace(learning_rate=float(10 ** rng.uniform(-4, -2.5)),
                   ent_coef=float(rng.uniform(0, 0.02)))
        for _ in range(16)
    ]  # fmt: skip

    def vmapped() -> float:
        t = time.perf_counter()
        Runner(agent, [0], settings, progress=False, segments=1, checkpoint_seconds=None).train()
        return time.perf_counter() - t

    def sequential() -> float:
        t = time.perf_counter()
        for s in settings:
            Runner(agent, [0], [s], progress=False, segments=1, checkpoint_seconds=None).train()
        return time.perf_counter() - t

    vmapped(), sequential()  # compile both programs
    v, q = [], []
    for _ in range(rounds):
        v.append(vmapped())
        q.append(sequential())
    steps = 16 * agent.num_updates * agent.steps_per_update
    result = {
        "configurations": 16,
        "env_steps_per_configuration": agent.num_updates * agent.steps_per_update,
        "vmapped_seconds": v,
        "sequential_seconds": q,
        "vmapped_steps_per_s": steps / statistics.median(v),
        "sequential_steps_per_s": steps / statistics.median(q),
        "speedup_median": statistics.median(b / a for a, b in zip(v, q, strict=True)),
        "rounds": rounds,
    }
    print(
        f"speed: 16 PPO configurations x {result['env_steps_per_configuration']} steps on "
        f"CartPole-v1: vmapped {result['vmapped_steps_per_s']:.3g} steps/s, one after another "
        f"{result['sequential_steps_per_s']:.3g} steps/s, speedup {result['speedup_median']:.2f}x "
        f"(median of {rounds})",
        flush=True,
    )
    return result


def _read(out: Path) -> dict[str, Any]:
    path = out / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _fmt(e: dict[str, Any]) -> str:
    if e.get("iqm") is None:
        return f"failed ({e.get('error')})"
    return f"{e['iqm']:.4g} [{e['ci'][0]:.4g}, {e['ci'][1]:.4g}]"


def _tuning_line(r: dict[str, Any]) -> str:
    return (
        f"{r['env']} {r['method']}: incumbent {_fmt(r['incumbent'])} vs default "
        f"{_fmt(r['default'])}; beats: {r['tuned_beats_default']}; "
        f"{r['tuning_env_steps']} tuning steps, {r['wall_seconds']} s"
    )


def table(results: dict[str, Any]) -> str:
    """The markdown table of ``results.json``."""
    lines = [
        "| environment (agent) | method | trials | tuning env steps | incumbent test IQM [95% CI] "
        "| default test IQM [95% CI] | tuned beats default | wall s |",
        "| --- | --- | ---: | ---: | --- | --- | --- | ---: |",
    ]
    for r in results.get("tuning", []):
        beats = {True: "yes", False: "no", None: "n/a"}[r["tuned_beats_default"]]
        lines.append(
            f"| {r['env']} ({r['agent']}) | {r['method']} | {r['trials']} | "
            f"{r['tuning_env_steps']:,} | {_fmt(r['incumbent'])} | {_fmt(r['default'])} | "
            f"{beats} | {r['wall_seconds']:.0f} |"
        )
    sp = results.get("speed")
    if sp:
        lines += [
            "",
            f"Speed: 16 PPO configurations x {sp['env_steps_per_configuration']:,} steps on "
            f"CartPole-v1: vmapped {sp['vmapped_steps_per_s']:,.0f} env steps/s, one after "
            f"another {sp['sequential_steps_per_s']:,.0f}; speedup {sp['speedup_median']:.2f}x "
            f"(median of {sp['rounds']} rounds, after compiling).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_autotune", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/bench_autotune")
    p.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS))
    p.add_argument("--envs", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--trials", type=int, default=8, help="full-budget runs' worth per method")
    p.add_argument("--budget-scale", type=float, default=1.0,
                   help="multiply every environment's budget")  # fmt: skip
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--speed-steps", type=int, help="steps per configuration (default 131072)")
    p.add_argument("--quick", action="store_true", help="smoke sizes (minutes)")
    p.add_argument(
        "--tuning-seeds", type=int, nargs="+", default=None,
        help="tuning seeds of every environment (default: 0-4, ThreeBody 0-1)",
    )  # fmt: skip
    p.add_argument("--test-seeds", type=int, nargs="+", default=[5, 6, 7, 8, 9])
    p.add_argument(
        "--pbt-burn-in",
        type=float,
        default=0.0,
        metavar="F",
        help="PBT: no exploit before this fraction of the budget (default 0)",
    )
    a = p.parse_args(argv)
    if not 0.0 <= a.pbt_burn_in < 1.0:
        p.error(f"--pbt-burn-in must be in [0, 1), got {a.pbt_burn_in}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.budget_scale != 1.0:
        for case in CASES.values():
            for k in ("budget", "quick_budget"):
                case[k] = max(1, math.ceil(case[k] * a.budget_scale))
    t0 = time.perf_counter()
    if "tuning" in a.parts:
        run_tuning(out, a.envs, a.methods, 2 if a.quick else a.trials, a.quick,
                   (a.tuning_seeds, a.test_seeds), a.pbt_burn_in)  # fmt: skip
    if "speed" in a.parts:
        speed = run_speed(1 if a.quick else a.rounds, a.quick, a.speed_steps)
        (out / "results.json").write_text(json.dumps({**_read(out), "speed": speed}, indent=2))
    results = _read(out)
    results["wall_seconds_this_call"] = round(time.perf_counter() - t0, 1)
    results["command"] = " ".join(["python scripts/bench/bench_autotune.py", *sys.argv[1:]])
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
