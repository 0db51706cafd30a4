"""Benchmark the tuners: the tuned incumbent against the default on new test seeds, and vmapped
populations.

Protocol (DESIGN.md, Results protocol). Two parts, in one process (``--parts`` picks some):

1. **Tuning**: random search, Hyperband, PBT and TPE (``accelrl.autotune``, the same code as
   ``accelrl-tune``) on CartPole-v1 (PPO), Pendulum-v1 (SAC) and ThreeBody-v0 (PPO).

   * **Validation set** (:data:`TUNING_SEEDS`, :data:`VALIDATION_SEEDS`): each tuner scores its
     configurations and picks its incumbent on the tuning seeds 0-4; every choice of the bench
     itself (the budgets in :data:`CASES`, 24 trials, the methods, PBT's burn-in per
     environment) was made from earlier runs on seeds 0-24 (the old "test" seeds 5-24 are
     validation seeds now).
   * **Test set** (:data:`TEST_SEEDS`, 1000-1019, never used by this bench before): the
     incumbent and the default configuration are each retrained on every test seed with the
     same budget and scored once, after the choices above are fixed.

   Every method gets the same budget: the case's steps per configuration and seed, and
   ``--trials`` full-budget runs' worth of tuning steps (random, TPE: that many
   configurations; PBT: that population; Hyperband: as many configurations as its brackets can
   start within the same tuning steps). The verdict per (environment, method) is the **paired
   bootstrap interval over test seeds** of incumbent - default (the same seed trained under
   both): "tuned beats default" only when it lies above zero. The page also shows both test
   IQMs with their stratified-bootstrap intervals (the default's own interval included).
2. **Speed**: 16 PPO configurations on CartPole-v1 as one vmapped program (a 16 x 1 runner
   grid) against the same 16 trained one after another in one process (one compiled program
   reused), both after compiling; environment steps per second and their ratio (median of
   ``--rounds``).

The spaces are the agents' default spaces restricted to their hparams (shape-keeping)
dimensions, so every method trains one program per stage on this 2-core machine (config
dimensions such as ``num_minibatches`` each add a compile of 10-30 s here).

Usage::

    nice -n 10 python scripts/bench/bench_autotune.py     # writes docs/results/autotune.json
                                                          # and docs/autotune.md's block
    python scripts/bench/bench_autotune.py --quick        # smoke sizes, writes under /tmp
    python scripts/bench/bench_autotune.py --from_results docs/results/autotune.json
                                                          # the page's block from the JSON alone

The results file is rewritten after every (environment, method) row (``"finished": false``
until the last), so a cut run keeps its finished rows.

A page may show several runs: a results file ``docs/results/autotune_NAME.json`` renders the
block ``bench_autotune_NAME`` (``autotune.json``: ``bench_autotune``), e.g. ThreeBody's rows
or the speed part on their own::

    nice -n 10 python scripts/bench/bench_autotune.py --envs ThreeBody-v0 --parts tuning \
        --out docs/results/autotune_three_body.json
    python scripts/bench/bench_autotune.py --parts speed --out docs/results/autotune_speed.json
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _bench import add_results_options

from accelrl.results import (
    DirtyTreeError,
    check_output,
    paired_bootstrap,
    provenance_line,
    regenerate,
    results_record,
    target_line,
    verdict,
    write_blocks,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results" / "autotune.json"
PAGE = ROOT / "docs" / "autotune.md"
BLOCK = "bench_autotune"
"""The page's generated block (``<!-- bench_autotune: begin -->`` ... ``end``)."""
GENERATOR, PAGE_NAME = "scripts/bench/bench_autotune.py", "docs/autotune.md"

METHODS = ("random", "hyperband", "pbt", "tpe")
PARTS = ("tuning", "speed")

TUNING_SEEDS = (0, 1, 2, 3, 4)
"""Validation: the seeds every tuner scores its configurations on and picks its incumbent by."""
VALIDATION_SEEDS = tuple(range(25))
"""Validation: the seeds of the earlier runs (0-4 tuning, 5-24 the old test seeds) from which
the bench's own choices were made: budgets, trial count, methods, PBT burn-in."""
TEST_SEEDS = tuple(range(1000, 1020))
"""Test: new seeds, never used by this bench before this declaration; the incumbent and the
default are trained and scored on each once per reported run."""
TRIALS = 24
"""Full-budget runs' worth of tuning steps per method (chosen on the validation seeds: at 6,
ThreeBody's draws rarely held a configuration that learns within its budget)."""
BOOTSTRAP = {"reps": 10_000, "seed": 0}
"""The paired bootstrap of incumbent - default (mean over test seeds)."""

# Per environment: agent, fixed overrides, budget per configuration and seed (full, quick),
# PBT's burn-in (a fraction of the budget). Every value was chosen on the validation seeds:
# CartPole at 16,384 steps (at 32,768 the default already scores 500 on most seeds), Pendulum
# at 12,000 (at 6,000 nothing learns, at 18,000 the default has converged), ThreeBody at
# 40,960 (short of the 2M its reference PPO needs, to fit the hour); PBT's burn-in of half the
# budget on Pendulum (without it PBT's exploits removed SAC's late learners), none elsewhere
# (on ThreeBody it made PBT worse).
CASES: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        agent="ppo", overrides={}, budget=16_384, quick_budget=8_192, pbt_burn_in=0.0
    ),
    "Pendulum-v1": dict(
        agent="sac",
        overrides={
            "actor_hidden_sizes": [64, 64],
            "critic_hidden_sizes": [64, 64],
            "batch_size": 128,
            "num_envs": 4,
        },
        budget=12_000,
        quick_budget=1_200,
        pbt_burn_in=0.5,
    ),  # fmt: skip
    "ThreeBody-v0": dict(
        agent="ppo", overrides={}, budget=40_960, quick_budget=4_096, pbt_burn_in=0.0
    ),
}

QUICK = {"trials": 2, "test_seeds": TEST_SEEDS[:2], "tuning_seeds": TUNING_SEEDS[:2],
         "speed_steps": 16_384, "rounds": 1}  # fmt: skip
"""Smoke sizes of ``--quick`` (budgets: each case's ``quick_budget``)."""


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


def method_label(method: str, burn_in: float) -> str:
    """The row's name: PBT with a burn-in says so."""
    return f"pbt, burn-in {burn_in:g}" if method == "pbt" and burn_in else method


def run_tuning(work: Path, envs: list[str], methods: list[str], trials: int, quick: bool,
               seeds: tuple[tuple[int, ...], tuple[int, ...]],
               pbt_burn_in: float | None = None,
               on_row: Any = None) -> list[dict[str, Any]]:  # fmt: skip
    """Tune every (environment, method) and test its incumbent and the default.

    Args:
        work: the study folders' parent (``<work>/<env>/<method>``).
        envs, methods: what to run (keys of :data:`CASES`, members of :data:`METHODS`).
        trials: full-budget runs' worth of tuning steps per method.
        quick: the cases' quick budgets.
        seeds: ``(tuning seeds, test seeds)``.
        pbt_burn_in: PBT's burn-in fraction for every case (None: each case's own).
        on_row: called with the rows so far after each row (the caller saves them).

    Returns:
        One row per (environment, method): the study's settings, the incumbent's and the
        default's test entries (``scores``: ``[len(test seeds)]``, in test-seed order) and the
        paired comparison (:func:`compare`).
    """
    import accelrl.autotune as at
    from accelrl.agents.build import make_spec

    rows: list[dict[str, Any]] = []
    for env_id in envs:
        case = CASES[env_id]
        budget = case["quick_budget"] if quick else case["budget"]
        space = bench_space(case["agent"])
        burn = case["pbt_burn_in"] if pbt_burn_in is None else pbt_burn_in
        for method in methods:
            label = method_label(method, burn)
            folder = work / env_id / label.replace(", ", "_").replace(" ", "_")
            run = make_spec(env_id, case["agent"], {**case["overrides"], "total_timesteps": budget})
            spec = at.StudySpec(
                run, space, tuning_seeds=tuple(seeds[0]), test_seeds=tuple(seeds[1]),
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
                                          burn_in=math.ceil(burn * budget))  # fmt: skip
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
                "tuning_score": inc["tuning"]["score"],
            }
            row["paired"] = compare(row["incumbent"], row["default"])
            rows.append(row)
            print(_tuning_line(row), flush=True)
            if on_row is not None:
                on_row(rows)
    return rows


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    """A test entry of ``incumbent.json`` as the record keeps it: IQM, its interval and the
    ``[seeds]`` scores (or the error)."""
    if e.get("scores") is None:
        return {"iqm": None, "ci": None, "scores": None, "error": e.get("error")}
    scores = [float(np.ravel(s)[0]) for s in e["scores"]]
    return {"iqm": e["iqm"], "ci": e["ci"], "scores": scores}


def compare(incumbent: dict[str, Any], default: dict[str, Any]) -> dict[str, Any] | None:
    """The paired bootstrap interval over test seeds of incumbent - default (mean of the
    per-seed differences) and its verdict; None when either failed.

    Args:
        incumbent, default: entries with ``scores``: ``[seeds]`` in the same seed order.
    """
    if incumbent.get("scores") is None or default.get("scores") is None:
        return None
    diff, low, high = paired_bootstrap(incumbent["scores"], default["scores"], **BOOTSTRAP)
    return {"mean_diff": diff, "low": low, "high": high, "verdict": verdict(low, high)}


def old_rule(incumbent: dict[str, Any], default: dict[str, Any]) -> bool | None:
    """The superseded rule (issue 24): "beats" when the incumbent's IQM interval lies above the
    default's IQM, ignoring the default's own interval. The page only counts where it disagrees
    with the paired interval; None when either failed."""
    if incumbent.get("iqm") is None or default.get("iqm") is None:
        return None
    return bool(incumbent["iqm"] > default["iqm"] and incumbent["ci"][0] > default["iqm"])


def run_speed(rounds: int, steps: int) -> dict[str, Any]:
    """16 PPO configurations, vmapped against one after another (both after compiling)."""
    from accelrl.agents import build
    from accelrl.agents.runner import Runner

    agent, _, hp = build("CartPole-v1", "ppo", {"total_timesteps": steps})
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
    total = 16 * agent.num_updates * agent.steps_per_update
    result = {
        "configurations": 16,
        "env_steps_per_configuration": agent.num_updates * agent.steps_per_update,
        "vmapped_seconds": v,
        "sequential_seconds": q,
        "vmapped_steps_per_s": total / statistics.median(v),
        "sequential_steps_per_s": total / statistics.median(q),
        "speedup_median": statistics.median(b / a for a, b in zip(v, q, strict=True)),
        "rounds": rounds,
    }
    print(speed_line(result), flush=True)
    return result


def speed_line(sp: dict[str, Any]) -> str:
    """The speed part as one sentence."""
    return (
        f"Speed: 16 PPO configurations x {sp['env_steps_per_configuration']:,} steps on "
        f"CartPole-v1: vmapped {sp['vmapped_steps_per_s']:,.0f} env steps/s, one after "
        f"another {sp['sequential_steps_per_s']:,.0f}; speedup {sp['speedup_median']:.2f}x "
        f"(median of {sp['rounds']} rounds, after compiling)."
    )


def _fmt(e: dict[str, Any]) -> str:
    if e.get("iqm") is None:
        return f"failed ({e.get('error')})"
    return f"{e['iqm']:.4g} [{e['ci'][0]:.4g}, {e['ci'][1]:.4g}]"


SAID = {
    "beats": "**tuned beats default**",
    "worse": "default better",
    "no difference shown": "no difference shown (interval includes 0)",
}
"""The verdict column's words for :func:`accelrl.results.verdict`'s answers."""


def _tuning_line(r: dict[str, Any]) -> str:
    p = r["paired"]
    paired = "n/a" if p is None else f"{p['mean_diff']:+.4g} [{p['low']:+.4g}, {p['high']:+.4g}]"
    return (
        f"{r['env']} {r['method']}: incumbent {_fmt(r['incumbent'])} vs default "
        f"{_fmt(r['default'])}; incumbent - default {paired} ({'n/a' if p is None else p['verdict']}); "
        f"{r['tuning_env_steps']} tuning steps, {r['wall_seconds']} s"
    )


def block_name(out: Path) -> str | None:
    """The page block a results file renders: ``docs/results/autotune.json`` ->
    ``bench_autotune``, ``docs/results/autotune_NAME.json`` -> ``bench_autotune_NAME``; None
    for a file elsewhere (written, never rendered)."""
    out = Path(out).resolve()
    stem = out.stem
    if out.parent != RESULTS.parent.resolve() or out.suffix != ".json":
        return None
    if stem != RESULTS.stem and not stem.startswith(f"{RESULTS.stem}_"):
        return None
    return f"bench_{stem}"


def render(record: dict[str, Any]) -> str:
    """The docs/autotune.md block (markdown) from a results record alone; every verdict is
    recomputed from the per-seed scores (never read from a stored word). A record of the speed
    part alone renders its speed line and provenance."""
    rows = record.get("tuning", [])
    if "tuning" not in record.get("parts", ["tuning"]):
        sp = record.get("speed")
        speed = speed_line(sp) if sp else "Speed: not measured in this run."
        return "\n".join([speed, "", provenance_line(record)])
    n = len(record["test_seeds"])
    run_envs = list(dict.fromkeys(r["env"] for r in rows))
    lines = [
        f"Validation: tuning seeds {_seeds(record['tuning_seeds'])} (each tuner's choices); "
        f"the bench's own choices (budgets, {record['trials']} trials, methods, PBT burn-in) "
        f"were made on earlier runs with seeds {_seeds(record['validation_seeds'])}. "
        f"Test: seeds {_seeds(record['test_seeds'])}, named before the run, each trained "
        f"once under the incumbent and under the default. Budgets per configuration and seed: "
        + ", ".join(f"{e} {record['cases'][e]['budget']:,}" for e in run_envs)
        + f". Wall time {record.get('wall_seconds', 0):,.0f} s on "
        f"{record['machine'].get('cpu_count', '?')} CPU cores"
        + (" (a quick run: smoke sizes)" if record.get("quick") else "")
        + ".",
    ]
    missing = [e for e in record["cases"] if e not in run_envs]
    if missing:
        lines.append(f"Not run in this record: {', '.join(missing)}.")
    if not record.get("finished", False):
        lines.append(
            "**This run did not finish**: the rows below are the (environment, method) pairs "
            "it completed."
        )
    lines += [
        "",
        "| environment (agent) | method | trials | tuning env steps | incumbent test IQM [95% CI] "
        f"| default test IQM [95% CI] | incumbent - default, mean of {n} seeds [95% paired CI] "
        "| verdict | wall s |",
        "| --- | --- | ---: | ---: | --- | --- | --- | --- | ---: |",
    ]
    wins: dict[str, list[str]] = {e: [] for e in run_envs}
    disagree = 0
    for r in rows:
        c = compare(r["incumbent"], r["default"])
        if c is None:
            paired, said = "n/a", "n/a (a run failed)"
        else:
            paired = f"{c['mean_diff']:+.4g} [{c['low']:+.4g}, {c['high']:+.4g}]"
            said = SAID[c["verdict"]]
            if c["verdict"] == "beats":
                wins[r["env"]].append(r["method"])
            if old_rule(r["incumbent"], r["default"]) and c["verdict"] != "beats":
                disagree += 1
        lines.append(
            f"| {r['env']} ({r['agent']}) | {r['method']} | {r['trials']} | "
            f"{r['tuning_env_steps']:,} | {_fmt(r['incumbent'])} | {_fmt(r['default'])} | "
            f"{paired} | {said} | {r['wall_seconds']:.0f} |"
        )
    lines.append("")
    for env in run_envs:
        lines.append(
            target_line(
                f"{env}: a tuned incumbent beats the default",
                bool(wins[env]),
                (
                    f"paired interval above 0 for {', '.join(wins[env])}"
                    if wins[env]
                    else "no method's paired interval lies above 0"
                )
                + f", over {n} test seeds",
            )
        )
    defaults = {}
    for r in rows:
        defaults.setdefault(r["env"], set()).add(tuple(r["default"]["scores"] or ()))
    same = all(len(v) == 1 for v in defaults.values())
    lines += [
        "",
        f"{len(record['methods'])} methods per environment; the intervals are not adjusted for "
        "the multiple comparisons. The old rule (the incumbent's IQM interval above the "
        f"default's IQM) would have said \"beats\" in {disagree} row(s) where the paired "
        "interval does not. The default, retrained by every method's study on the same test "
        "seeds, scored "
        + ("the same in each (runs are deterministic)." if same else
           "**differently** between studies (runs are not repeatable).")
    ]  # fmt: skip
    sp = record.get("speed")
    lines += ["", speed_line(sp) if sp else "Speed: not measured in this run."]
    lines += ["", provenance_line(record)]
    return "\n".join(lines)


def _seeds(seeds: list[int]) -> str:
    """``[0, 1, 2, 3]`` as ``0-3`` (a consecutive run), else listed."""
    s = list(seeds)
    if len(s) > 2 and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}-{s[-1]}"
    return ", ".join(str(x) for x in s)


def write_page(record: dict[str, Any], page: Path = PAGE) -> None:
    """Rewrite the page's generated block (``record["block"]``, else :data:`BLOCK`) from
    ``record`` alone."""
    write_blocks(page, {record.get("block", BLOCK): render(record)})


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_autotune", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None,
                   help=f"results file (default {RESULTS.relative_to(ROOT)}; --quick: /tmp)")  # fmt: skip
    p.add_argument("--work", type=Path, default=None, help="study folders (default: a temp dir)")
    p.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS))
    p.add_argument("--envs", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--trials", type=int, default=TRIALS, help="full-budget runs' worth per method")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--speed-steps", type=int, default=32_768, help="steps per configuration")
    p.add_argument("--quick", action="store_true", help="smoke sizes (minutes); writes under /tmp")
    add_results_options(p)
    p.add_argument(
        "--pbt-burn-in", type=float, default=None, metavar="F",
        help="PBT: no exploit before this fraction of the budget (default: each case's)",
    )  # fmt: skip
    a = p.parse_args(argv)
    if a.pbt_burn_in is not None and not 0.0 <= a.pbt_burn_in < 1.0:
        p.error(f"--pbt-burn-in must be in [0, 1), got {a.pbt_burn_in}")
    if a.trials < 1:
        p.error(f"--trials must be >= 1, got {a.trials}")
    if a.out is None:
        a.out = Path(tempfile.gettempdir()) / "bench_autotune_quick.json" if a.quick else RESULTS
    check_output(a.out, a.quick)
    return a


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if regenerate(argv, write_page, prog="bench_autotune.py"):
        return 0
    a = parse_args(argv)
    trials = QUICK["trials"] if a.quick else a.trials
    test_seeds = QUICK["test_seeds"] if a.quick else TEST_SEEDS
    tuning_seeds = QUICK["tuning_seeds"] if a.quick else TUNING_SEEDS
    record: dict[str, Any] = {
        **results_record(["python", GENERATOR, *argv], GENERATOR, PAGE_NAME),
        "quick": a.quick,
        "finished": False,
        "tuning_seeds": list(tuning_seeds),
        "validation_seeds": list(VALIDATION_SEEDS),
        "test_seeds": list(test_seeds),
        "trials": trials,
        "methods": a.methods,
        "parts": a.parts,
        "cases": {
            e: {**c, "budget": c["quick_budget"] if a.quick else c["budget"]}
            for e, c in CASES.items()
        },
        "bootstrap": BOOTSTRAP,
        "tuning": [],
    }
    block = None if a.quick else block_name(a.out)
    if block is not None:
        record["block"] = block
    if not a.quick and record["clean_tree"] is False and not a.allow_dirty:
        raise SystemExit(
            "bench_autotune: the tree has uncommitted changes; commit first or pass --allow_dirty"
        )
    allow = a.allow_dirty or a.quick
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_autotune_"))
    t0 = time.perf_counter()

    def save(rows: list[dict[str, Any]]) -> None:
        record["tuning"] = list(rows)
        record["wall_seconds"] = round(time.perf_counter() - t0, 1)
        write_results(a.out, record, allow_dirty=allow)

    if "tuning" in a.parts:
        run_tuning(work, a.envs, a.methods, trials, a.quick, (tuning_seeds, test_seeds),
                   a.pbt_burn_in, on_row=save)  # fmt: skip
    if "speed" in a.parts:
        record["speed"] = run_speed(
            QUICK["rounds"] if a.quick else a.rounds,
            QUICK["speed_steps"] if a.quick else a.speed_steps,
        )
    record["finished"] = True
    try:
        save(record["tuning"])
    except DirtyTreeError as e:  # pragma: no cover - refused above
        raise SystemExit(f"bench_autotune: {e}") from None
    print(render(record))
    if block is not None:
        write_page(record)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
