"""Composition result: PBT over PPO hparams and ALP-GMM settings together on pendulum_dynamics.

Protocol (DESIGN.md, Results protocol). Three arms, each PPO with an ALP-GMM teacher on
``pendulum_dynamics`` (Pendulum-v1, mass/length/gravity):

* **joint**: PBT over PPO hparams (learning rate, gamma, GAE lambda, clip) and the teacher's
  ``random_task_ratio`` together; the teacher setting is data, so the whole population is one
  vmapped program and PBT's exploit copies a member's teacher state (history, mixture) with its
  parameters;
* **hparams**: PBT over the same PPO hparams, the teacher at its defaults;
* **default**: PPO's and ALP-GMM's defaults (what both PBT studies test against).

PBT chooses on the tuning seeds (the validation set); every trial is scored by the fraction
mastered of the teacher's fixed test set of tasks (``--score mastered``: 100 tasks drawn with
the seed in :data:`CURRICULUM`). The chosen lineage's schedule is then replayed on the test
seeds (:data:`TEST_SEEDS`, fixed here before any run) and the default trained on the same
seeds, once (pbt's protocol step); the page compares the arms by paired bootstrap intervals over
test seeds (:func:`accelrl.results.paired_bootstrap`), "beats" only when the interval excludes
zero. Both studies retrain the default on the same seeds: their two default scores must agree
(a determinism check the page reports).

Speed: the joint population's initial members (one seed each) trained as one vmapped program
against the same members trained one after another (each its own single-member program, one
compile shared by all), seconds for the same updates, compilation excluded (reported apart).

    python scripts/bench/tune_curriculum.py            # writes docs/results/tune_curriculum.json
    python scripts/bench/tune_curriculum.py --quick    # tiny budgets, writes under /tmp
    python scripts/bench/tune_curriculum.py --from_results docs/results/tune_curriculum.json
                                                       # the docs/autotune.md section, JSON only
"""

from __future__ import annotations

import argparse
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
RESULTS = ROOT / "docs" / "results" / "tune_curriculum.json"
PAGE = ROOT / "docs" / "autotune.md"
BLOCK = "tune_curriculum"
"""The page's generated block (``<!-- tune_curriculum: begin -->`` ... ``end``)."""
GENERATOR, PAGE_NAME = "scripts/bench/tune_curriculum.py", "docs/autotune.md"

ENV, AGENT, TASK_SPACE = "Pendulum-v1", "ppo", "pendulum_dynamics"
TUNING_SEEDS = (0, 1)
"""The validation seeds: every PBT choice is made on them."""
TEST_SEEDS = (100, 101, 102, 103, 104, 105)
"""The test seeds, named before the run: each arm is trained and scored on them once."""
CURRICULUM = {"test_tasks": 100, "test_seed": 7, "episodes_per_task": 1}
TEACHER = {"name": "alp_gmm", "settings": {"task_space": TASK_SPACE}}
"""The fixed test set of tasks the mastered score uses."""
FULL = {"budget": 327_680, "population": 8, "intervals": 8, "test_seeds": TEST_SEEDS,
        "overrides": {}, "speed_updates": 5, "speed_repeats": 3}  # fmt: skip
QUICK = {"budget": 2048 * 4, "population": 4, "intervals": 2, "test_seeds": TEST_SEEDS[:2],
         "overrides": {"num_minibatches": 4, "update_epochs": 1}, "speed_updates": 2,
         "speed_repeats": 1, "test_tasks": 8}  # fmt: skip


def spaces() -> dict[str, Any]:
    """The two PBT search spaces: PPO hparams, and the same with the teacher's data setting."""
    from accelrl.autotune.spaces import Float, SearchSpace

    hparams = SearchSpace(
        {
            "learning_rate": Float(1e-4, 3e-3, log=True),
            "gamma": Float(0.85, 0.99),
            "gae_lambda": Float(0.9, 0.99),
            "clip_eps": Float(0.1, 0.3),
        }
    )
    return {
        "joint": hparams.updated({"teacher.random_task_ratio": Float(0.0, 0.5)}),
        "hparams": hparams,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny budgets; never writes into docs/")
    p.add_argument("--out", type=Path, default=None, help=f"results file (default {RESULTS})")
    p.add_argument("--work", type=Path, default=None, help="study folders (default: a temp dir)")
    add_results_options(p)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command recorded
    if args.out is None:
        args.out = (
            Path(tempfile.gettempdir()) / "tune_curriculum_quick.json" if args.quick else RESULTS
        )
    check_output(args.out, args.quick)
    return args


def curriculum(plan: dict[str, Any]) -> dict[str, Any]:
    """The fixed test set of tasks of a plan (a quick run's is smaller)."""
    return {**CURRICULUM, **({"test_tasks": plan["test_tasks"]} if "test_tasks" in plan else {})}


def run_spec(plan: dict[str, Any]) -> Any:
    """The run every trial of a plan's studies trains (PPO + ALP-GMM, the plan's budget)."""
    from accelrl.agents.build import make_spec

    return make_spec(
        ENV, AGENT, {**plan["overrides"], "total_timesteps": plan["budget"]},
        reset_strategy=TEACHER, curriculum=curriculum(plan),
    )  # fmt: skip


def backend(plan: dict[str, Any]) -> Any:
    """The backend the studies train with (the speed part builds its members from it)."""
    from accelrl.autotune.backend import RunnerBackend

    return RunnerBackend(run_spec(plan), score="mastered")


def speed(plan: dict[str, Any], space: Any) -> dict[str, Any]:
    """Seconds for ``speed_updates`` updates of the population's initial members (seed 0):
    one vmapped program against one member after another; medians over repeats."""
    from accelrl.agents.runner import Runner

    be = backend(plan)
    draws = space.sample(np.random.default_rng(0), plan["population"])  # pbt's first draws
    agent, _, base = be._build({})
    hps = [be.hparams(base, v) for v in draws]
    data = [be.strategy_data(v) for v in draws]
    u = plan["speed_updates"]

    def runner(idx: list[int]) -> Any:
        return Runner(agent, [0], [hps[i] for i in idx], progress=False, checkpoint_seconds=None,
                      segments=agent.num_updates, strategy_data=[data[i] for i in idx])  # fmt: skip

    def timed(idx: list[int]) -> tuple[float, float]:
        r = runner(idx)
        t0 = time.perf_counter()
        warm = r.train(until=1)  # compiles (once per program shape)
        t1 = time.perf_counter()
        r.train(warm.state, warm.metrics, until=1 + u)
        return t1 - t0, time.perf_counter() - t1

    out: dict[str, list[float]] = {"vmapped_s": [], "sequential_s": [], "first_call_s": []}
    everyone = list(range(len(draws)))
    for _ in range(plan["speed_repeats"]):
        first, vm = timed(everyone)
        seq = [timed([i]) for i in everyone]
        out["vmapped_s"].append(vm)
        out["sequential_s"].append(sum(s for _, s in seq))
        out["first_call_s"].append(first + sum(f for f, _ in seq))
    vm_med, seq_med = statistics.median(out["vmapped_s"]), statistics.median(out["sequential_s"])
    return {
        "members": len(draws),
        "updates": u,
        "env_steps_per_member": u * agent.steps_per_update,
        **out,
        "vmapped_median_s": vm_med,
        "sequential_median_s": seq_med,
        "ratio_sequential_over_vmapped": seq_med / vm_med,
    }


def compare(a: list[float], b: list[float]) -> dict[str, Any]:
    diff, low, high = paired_bootstrap(a, b, reps=10_000, seed=0)
    return {"mean_diff": diff, "low": low, "high": high, "verdict": verdict(low, high)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from accelrl.autotune import PBTSettings, StudySpec, pbt

    plan = QUICK if args.quick else FULL
    record: dict[str, Any] = {
        **results_record(["python", GENERATOR, *args.argv], GENERATOR, PAGE_NAME),
        "quick": args.quick,
    }
    record.update(
        env=ENV, agent=AGENT, task_space=TASK_SPACE, tuning_seeds=list(TUNING_SEEDS),
        test_seeds=list(plan["test_seeds"]), budget=plan["budget"],
        population=plan["population"], intervals=plan["intervals"],
        overrides=plan["overrides"], curriculum=curriculum(plan),
        spaces={k: list(v) for k, v in spaces().items()},
    )  # fmt: skip
    work = args.work or Path(tempfile.mkdtemp(prefix="tune_curriculum_"))
    arms: dict[str, Any] = {}
    t_all = time.perf_counter()
    for name, space in spaces().items():
        t0 = time.perf_counter()
        spec = StudySpec(
            run_spec(plan), space, TUNING_SEEDS, plan["test_seeds"], score="mastered",
            bootstrap_reps=10_000,
            log=lambda line, n=name: print(f"[{n}] {line}", flush=True),
        )  # fmt: skip
        settings = PBTSettings(population=plan["population"], intervals=plan["intervals"])
        result = pbt(settings, spec, work / name)
        inc = result.incumbent
        test = inc["test"]
        arms[name] = {
            "incumbent_trial": inc["trial_id"],
            "incumbent_config": inc["config"],
            "schedule": inc.get("schedule"),
            "tuning_score": inc["tuning"]["score"],
            "test": [float(x[0]) for x in test["incumbent"]["scores"]],
            "default_test": [float(x[0]) for x in test["default"]["scores"]],
            "wall_s": time.perf_counter() - t0,
        }
    record["arms"] = arms
    default = arms["joint"]["default_test"]
    record["default_test"] = default
    record["default_repeatable"] = default == arms["hparams"]["default_test"]
    record["comparisons"] = {
        "joint - default": compare(arms["joint"]["test"], default),
        "hparams - default": compare(arms["hparams"]["test"], default),
        "joint - hparams": compare(arms["joint"]["test"], arms["hparams"]["test"]),
    }
    t0 = time.perf_counter()
    record["speed"] = speed(plan, spaces()["joint"])
    record["wall_seconds"] = {
        "studies": sum(a["wall_s"] for a in arms.values()),
        "speed": time.perf_counter() - t0,
        "total": time.perf_counter() - t_all,
    }
    return record


_WHERE = {"beats": "lies above zero", "worse": "lies below zero (worse)",
          "no difference shown": "includes zero"}  # fmt: skip
"""How a verdict's interval sits, in the target lines."""


def render(record: dict[str, Any]) -> str:
    """The docs/autotune.md section (markdown) from a results record."""
    arms, comp, sp = record["arms"], record["comparisons"], record["speed"]
    n = len(record["test_seeds"])
    cur = record["curriculum"]

    def mean(xs: list[float]) -> str:
        return f"{np.mean(xs):.3f}"

    lines = [
        f"PPO with an ALP-GMM teacher on `{record['task_space']}`, {record['budget']:,} "
        f"environment steps per member; PBT: population {record['population']}, "
        f"{record['intervals']} exploit points, tuning (validation) seeds "
        f"{record['tuning_seeds']}; every arm trained and scored once on the test seeds "
        f"{record['test_seeds']} (named before the run). Score: fraction mastered of "
        f"{cur['test_tasks']} fixed test tasks (seed {cur['test_seed']}) at the end of "
        f"training. Wall time {record['wall_seconds']['total']:,.0f} s on "
        f"{record['machine'].get('cpu_count', '?')} CPU cores"
        + (" (a quick run: tiny budgets)" if record.get("quick") else "")
        + ".",
        "",
        f"| arm | searched | tuning score | test mastered, mean of {n} seeds | per test seed |",
        "|---|---|---:|---:|---|",
    ]
    searched = {name: ", ".join(f"`{d}`" for d in dims) for name, dims in record["spaces"].items()}
    for name, label in (("joint", "PBT: PPO hparams + teacher"), ("hparams", "PBT: PPO hparams")):
        a = arms[name]
        lines.append(
            f"| {label} | {searched[name]} | {a['tuning_score']:.3f} | {mean(a['test'])} | "
            f"{', '.join(f'{x:.2f}' for x in a['test'])} |"
        )
    lines.append(
        f"| default PPO + ALP-GMM | | | {mean(record['default_test'])} | "
        f"{', '.join(f'{x:.2f}' for x in record['default_test'])} |"
    )
    lines += [
        "",
        "| difference (test seeds paired) | mean [95% paired bootstrap CI] | verdict |",
        "|---|---:|---|",
    ]
    # verdicts from the intervals themselves (never from a stored word)
    said = {name: verdict(c["low"], c["high"]) for name, c in comp.items()}
    for name, c in comp.items():
        lines.append(
            f"| {name} | {c['mean_diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] | {said[name]} |"
        )
    joint, both = comp["joint - default"], comp["joint - hparams"]
    lines += [
        "",
        target_line(
            "PBT over PPO hparams and ALP-GMM settings together beats the default PPO + ALP-GMM",
            said["joint - default"] == "beats",
            f"interval [{joint['low']:+.3f}, {joint['high']:+.3f}] "
            + f"over {n} test seeds {_WHERE[said['joint - default']]}",
        ),
        target_line(
            "tuning the teacher with the hparams beats tuning the hparams alone",
            said["joint - hparams"] == "beats",
            f"interval [{both['low']:+.3f}, {both['high']:+.3f}] "
            + f"over {n} test seeds {_WHERE[said['joint - hparams']]}",
        ),
        "- the default retrained by both studies on the same seeds scored "
        + ("the same (runs are deterministic)" if record["default_repeatable"] else
           "**differently** (runs are not repeatable)")
        + ".",
        "",
        f"Speed: the joint population's {sp['members']} initial members (seed 0), "
        f"{sp['updates']} updates each ({sp['env_steps_per_member']:,} environment steps): "
        f"one vmapped program {sp['vmapped_median_s']:.2f} s, the same members one after "
        f"another {sp['sequential_median_s']:.2f} s (medians of {len(sp['vmapped_s'])} "
        f"repeat(s); compilation excluded). Ratio one-after-another / vmapped: "
        f"**{sp['ratio_sequential_over_vmapped']:.2f}x**.",
        "",
        provenance_line(record),
    ]  # fmt: skip
    return "\n".join(lines)


def write_page(record: dict[str, Any], page: Path = PAGE) -> None:
    """Rewrite the page's generated block from ``record`` alone."""
    write_blocks(page, {BLOCK: render(record)})


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if regenerate(argv, write_page, prog="tune_curriculum.py"):
        return
    args = parse_args(argv)
    record = run(args)
    print(render(record), flush=True)
    try:
        write_results(args.out, record, allow_dirty=args.allow_dirty or args.quick)
    except DirtyTreeError:
        spare = write_results(Path(tempfile.gettempdir()) / "tune_curriculum_unsaved.json",
                              record, True)  # fmt: skip
        raise SystemExit(f"the tree was dirty when the run started; record in {spare}") from None
    if not args.quick:
        write_page(record)


if __name__ == "__main__":
    main()
