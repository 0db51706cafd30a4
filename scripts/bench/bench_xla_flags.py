"""Benchmark XLA_FLAGS settings on accelrl's training programs: milliseconds per update.

Each setting runs in its own process (XLA reads ``XLA_FLAGS`` once per process), and the
settings alternate, ``--repeats`` times each, so drift on a shared machine hits them alike.
Every process builds the same seed-vmapped training programs (2 seeds, the environments'
default configs), runs two warm-up calls (compilation, buffers), then times ``--rounds``
calls of a few updates each, round robin over the programs; it reports each program's median
milliseconds per update. The parent prints, per program and setting, the median over
processes and the ratio to the first setting.

The default settings compare accelrl's CPU work-arounds (``accelrl._xla``) with and without
``--xla_cpu_experimental_ynn_fusion_type=-reduce``; ``ACCELRL_KEEP_XLA_FLAGS=1`` is set in the
children so that exactly the given flags apply.

Results protocol: a run with the default settings and programs writes
``docs/results/xla_flags.json`` (command, commit, tree state, machine, load, every process's
medians) and renders the training-programs block of ``docs/xla_flags.md``; other runs write
``--out`` only (default ``/tmp/bench_xla_flags.json``). ``--from_results PATH`` re-renders the
block from the file alone; a tree with uncommitted changes is refused unless ``--allow_dirty``.
No claim is made from the ratios: within-setting spread between processes is shown beside
them.

Usage::

    python scripts/bench/bench_xla_flags.py                      # default A/B, 3 x 2 processes
    python scripts/bench/bench_xla_flags.py --envs Pendulum-v1:sac --repeats 5 \\
        --setting= --setting=--xla_cpu_experimental_ynn_fusion_type=
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _bench import add_results_options, render_from_results, results_record, write_blocks

from accelrl._xla import CPU_SCHEDULER, YNN_REDUCE

GENERATOR = "scripts/bench/bench_xla_flags.py"
PAGE = "docs/xla_flags.md"
RESULTS = "docs/results/xla_flags.json"
BLOCK = "bench_xla_flags"

SETTINGS = (CPU_SCHEDULER.flag, f"{CPU_SCHEDULER.flag} {YNN_REDUCE.flag}")
CASES = (
    "CartPole-v1:ppo",
    "Pendulum-v1:ppo",
    "Pendulum-v1:sac",
    "ThreeBody-v0:ppo",
    "MPE_simple_spread_v3:ippo",
    "MallocGame-v0:ppo",
)


def child(cases: list[str], rounds: int) -> dict[str, float]:
    """In this process: median ms per update of each ``env:agent`` program."""
    from _bench import SeedProgram, time_round_robin

    from accelrl.agents import build

    programs = {}
    for case in cases:
        env, agent_name = case.split(":")
        agent, _, hp = build(env, agent_name)
        per = 50 if agent_name == "sac" else 4  # SAC updates are single gradient steps
        programs[case] = prog = SeedProgram(agent, hp, 2, per)
        for _ in range(2):  # compilation, then one more call
            prog.advance()
    times = time_round_robin(programs, rounds)
    return {case: statistics.median(ts) * 1e3 for case, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--setting",
        action="append",
        dest="settings",
        metavar="FLAGS",
        help="an XLA_FLAGS value to compare, repeated; values start with '--', so write "
        "--setting=--xla_... (default: the two of SETTINGS)",
    )
    p.add_argument("--envs", nargs="+", default=list(CASES), help="env:agent programs")
    p.add_argument("--repeats", type=int, default=3, help="processes per setting")
    p.add_argument("--rounds", type=int, default=5, help="timed calls per program and process")
    p.add_argument(
        "--out",
        default=None,
        help=f"raw results file (default {RESULTS} for the default A/B, which also renders "
        "the page's block; else /tmp/bench_xla_flags.json)",
    )
    add_results_options(p)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.settings = args.settings or list(SETTINGS)
    for case in args.envs:
        if case.count(":") != 1:
            p.error(f"--envs entries are env:agent, got {case!r}")
    if args.repeats < 1 or args.rounds < 1:
        p.error("--repeats and --rounds must be at least 1")
    if args.child:
        print(json.dumps(child(args.envs, args.rounds)))
        return 0
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return 0
    from accelrl.results import REPO

    default_run = args.settings == list(SETTINGS) and args.envs == list(CASES)
    path = Path(args.out or (REPO / RESULTS if default_run else "/tmp/bench_xla_flags.json"))
    record = results_record(["python", GENERATOR, *(sys.argv[1:] if argv is None else argv)],
                            GENERATOR, PAGE)  # fmt: skip
    if record["clean_tree"] is False and not args.allow_dirty:
        p.error("the tree has uncommitted changes: commit them, or pass --allow_dirty")
    load_start = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in args.settings}
    t_all = time.perf_counter()
    for r in range(args.repeats):
        for setting in args.settings:
            env = {**os.environ, "XLA_FLAGS": setting, "ACCELRL_KEEP_XLA_FLAGS": "1"}
            cmd = [sys.executable, __file__, "--child",
                   "--rounds", str(args.rounds), "--envs", *args.envs]  # fmt: skip
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"child failed ({out.returncode}) with XLA_FLAGS={setting!r}")
            runs[setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"[{r + 1}/{args.repeats}] {setting!r}: " + ", ".join(
                f"{c} {v:.1f}" for c, v in runs[setting][-1].items()), flush=True)  # fmt: skip
    base = args.settings[0]
    table = {}
    print(f"\nms per update, median over {args.repeats} processes (ratio to the first setting)")
    for case in args.envs:
        row = {s: statistics.median(run[case] for run in runs[s]) for s in args.settings}
        table[case] = row
        print(f"{case:28s} " + "  ".join(
            f"{row[s]:7.1f} ({row[s] / row[base]:.2f})" for s in args.settings))  # fmt: skip
    wall = time.perf_counter() - t_all
    print(f"settings: {args.settings}; wall {wall:.0f} s")
    from accelrl.results import write_results

    record.update(settings=args.settings, envs=args.envs, repeats=args.repeats,
                  rounds=args.rounds, runs=runs, median_ms=table, wall_s=wall,
                  host={"cpus": os.cpu_count(), "load_start": load_start,
                        "load_end": os.getloadavg()})  # fmt: skip
    write_results(path, record, allow_dirty=args.allow_dirty)
    print(f"wrote {path}")
    if path.resolve() == (REPO / RESULTS).resolve():
        write_blocks(REPO / PAGE, render(record))
        print(f"rendered {PAGE}")
    return 0


def _setting_name(setting: str) -> str:
    names = {SETTINGS[0]: "scheduler flag only", SETTINGS[1]: "scheduler flag + `-reduce`"}
    return names.get(setting, f"`{setting or '(empty)'}`")


def render(record: dict) -> dict[str, str]:
    """The page's training-programs block from a results record (pure: the JSON alone): per
    program and setting the median over processes, the range over processes, and the ratio of
    medians to the first setting."""
    from accelrl.results import provenance_line

    settings, runs, host = record["settings"], record["runs"], record["host"]
    base = settings[0]
    lines = [
        f"`{record['command']}`: {record['repeats']} processes per setting, alternating; in each, "
        f"{record['rounds']} timed calls per program after 2 warm-up calls; {host['cpus']} CPUs, "
        f"load average {host['load_start'][0]:.1f} at the start, {host['load_end'][0]:.1f} at "
        f"the end; {record['wall_s']:.0f} s wall. Milliseconds per update: median over "
        "processes [slowest-fastest process], and the ratio of medians to the first setting.",
        "",
        "| program | " + " | ".join(_setting_name(s) for s in settings) + " |",
        "|---|" + "---|" * len(settings),
    ]
    for case in record["envs"]:
        cells = []
        for s in settings:
            values = [run[case] for run in runs[s]]
            med = record["median_ms"][case][s]
            cell = f"{med:.1f} [{min(values):.1f}-{max(values):.1f}]"
            if s != base:
                cell += f" ({med / record['median_ms'][case][base]:.2f})"
            cells.append(cell)
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines += ["", provenance_line(record)]
    return {BLOCK: "\n".join(lines)}


if __name__ == "__main__":
    sys.exit(main())
