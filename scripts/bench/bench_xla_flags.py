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

``--parts gmm`` (on by default) also times, in the same processes, the curricula's mixture
fit (``gmm.fit_best`` for k = 2..10 on 250 points, ALP-GMM's setting, ``bench_curricula``'s
``bench_gmm``) against scikit-learn on one thread: the computation ``-reduce`` was kept for.

Results protocol: a run with the default settings, programs and parts writes
``docs/results/xla_flags.json`` (command, commit, tree state, machine, load, every process's
medians) and renders the training-programs and mixture-fit blocks of ``docs/xla_flags.md``;
other runs write
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
GMM_BLOCK = "bench_xla_flags_gmm"
PARTS = ("programs", "gmm")
GMM_KEYS = ("gmm:jax", "gmm:sklearn_1_thread")
"""Keys of a process's mixture-fit medians (ms per fit) beside its programs'."""

SETTINGS = (CPU_SCHEDULER.flag, f"{CPU_SCHEDULER.flag} {YNN_REDUCE.flag}")
CASES = (
    "CartPole-v1:ppo",
    "Pendulum-v1:ppo",
    "Pendulum-v1:sac",
    "ThreeBody-v0:ppo",
    "MPE_simple_spread_v3:ippo",
    "MallocGame-v0:ppo",
)


def child(cases: list[str], rounds: int, gmm: bool = False) -> dict[str, float]:
    """In this process: median ms per update of each ``env:agent`` program, and with ``gmm``
    the median ms per mixture fit of JAX and of single-threaded scikit-learn (``GMM_KEYS``)."""
    from _bench import SeedProgram, time_round_robin

    from accelrl.agents import build

    result = {}
    if gmm:
        from bench_curricula import bench_gmm

        g = bench_gmm()
        result = {key: g[key.split(":")[1]]["median_s"] * 1e3 for key in GMM_KEYS}
    programs = {}
    for case in cases:
        env, agent_name = case.split(":")
        agent, _, hp = build(env, agent_name)
        per = 50 if agent_name == "sac" else 4  # SAC updates are single gradient steps
        programs[case] = prog = SeedProgram(agent, hp, 2, per)
        for _ in range(2):  # compilation, then one more call
            prog.advance()
    times = time_round_robin(programs, rounds) if programs else {}
    return {**result, **{case: statistics.median(ts) * 1e3 for case, ts in times.items()}}


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
    p.add_argument("--envs", nargs="*", default=list(CASES), help="env:agent programs")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="training programs, the mixture fit, or both")  # fmt: skip
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
    if "programs" not in args.parts:
        args.envs = []
    elif not args.envs:
        p.error("--envs needs at least one env:agent program (or --parts gmm)")
    if args.child:
        print(json.dumps(child(args.envs, args.rounds, "gmm" in args.parts)))
        return 0
    if args.from_results is not None:
        render_from_results(args.from_results, render, page=args.page)
        return 0
    from accelrl.results import REPO

    default_run = (args.settings == list(SETTINGS) and args.envs == list(CASES)
                   and sorted(args.parts) == sorted(PARTS))  # fmt: skip
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
            cmd = [sys.executable, __file__, "--child", "--rounds", str(args.rounds),
                   "--parts", *args.parts, "--envs", *args.envs]  # fmt: skip
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
    gmm_keys = list(GMM_KEYS) if "gmm" in args.parts else []
    for case in [*args.envs, *gmm_keys]:
        row = {s: statistics.median(run[case] for run in runs[s]) for s in args.settings}
        table[case] = row
        print(f"{case:28s} " + "  ".join(
            f"{row[s]:7.1f} ({row[s] / row[base]:.2f})" for s in args.settings))  # fmt: skip
    wall = time.perf_counter() - t_all
    print(f"settings: {args.settings}; wall {wall:.0f} s")
    from accelrl.results import write_results

    record.update(settings=args.settings, envs=args.envs, gmm=gmm_keys, repeats=args.repeats,
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
    """The page's blocks from a results record (pure: the JSON alone). Training programs: per
    program and setting the median over processes, the range over processes, and the ratio of
    medians to the first setting. Mixture fit (a record with ``gmm`` keys): per setting the
    JAX and scikit-learn medians with their ranges and the ratio scikit-learn / JAX."""
    from accelrl.results import provenance_line

    settings, runs, host = record["settings"], record["runs"], record["host"]
    base = settings[0]

    def cell(case: str, s: str) -> str:
        values = [run[case] for run in runs[s]]
        return f"{record['median_ms'][case][s]:.1f} [{min(values):.1f}-{max(values):.1f}]"

    blocks = {}
    if record["envs"]:
        lines = [
            f"`{record['command']}`: {record['repeats']} processes per setting, alternating; in "
            f"each, {record['rounds']} timed calls per program after 2 warm-up calls; "
            f"{host['cpus']} CPUs, load average {host['load_start'][0]:.1f} at the start, "
            f"{host['load_end'][0]:.1f} at the end; {record['wall_s']:.0f} s wall. Milliseconds "
            "per update: median over processes [slowest-fastest process], and the ratio of "
            "medians to the first setting.",
            "",
            "| program | " + " | ".join(_setting_name(s) for s in settings) + " |",
            "|---|" + "---|" * len(settings),
        ]
        for case in record["envs"]:
            cells = [cell(case, s) for s in settings]
            for i, s in enumerate(settings[1:], 1):
                cells[i] += (
                    f" ({record['median_ms'][case][s] / record['median_ms'][case][base]:.2f})"
                )
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
        blocks[BLOCK] = "\n".join([*lines, "", provenance_line(record)])
    if record.get("gmm"):
        jax_key, sk_key = GMM_KEYS
        med = record["median_ms"]
        lines = [
            f"`{record['command']}`: in the same {record['repeats']} processes per setting, "
            "`gmm.fit_best` for k = 2..10 on 250 points (`n_init=1`, ALP-GMM's setting), median "
            "of 11 fits after compilation, against scikit-learn's `GaussianMixture` over the "
            "same k on one thread. Milliseconds per fit: median over processes "
            "[slowest-fastest process].",
            "",
            "| `XLA_FLAGS` | JAX fit | scikit-learn, 1 thread | scikit-learn / JAX |",
            "|---|---|---|---|",
        ]
        for s in settings:
            lines.append(f"| {_setting_name(s)} | {cell(jax_key, s)} | {cell(sk_key, s)} | "
                         f"{med[sk_key][s] / med[jax_key][s]:.1f}x |")  # fmt: skip
        for s in settings[1:]:
            lo = [run[jax_key] for run in runs[s]]
            hi = [run[jax_key] for run in runs[base]]
            apart = max(lo) < min(hi) or min(lo) > max(hi)
            lines += ["", (
                f"JAX fit under {_setting_name(s)} against {_setting_name(base)}: "
                f"{med[jax_key][base] / med[jax_key][s]:.2f}x the speed (ratio of medians); "
                + ("every process of one setting was faster than every process of the other."
                   if apart else "the ranges over processes overlap.")
            )]  # fmt: skip
        blocks[GMM_BLOCK] = "\n".join([*lines, "", provenance_line(record)])
    return blocks


if __name__ == "__main__":
    sys.exit(main())
