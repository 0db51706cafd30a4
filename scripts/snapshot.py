"""``accelrl-snapshot``: collect a snapshot bank (S3RL) from a trained run.

Usage::

    accelrl-snapshot --run runs/mcc --out runs/mcc.bank
    accelrl-snapshot --run runs/mcc --out mcc.bank --episodes 10 --every 10 --seed 1 --deterministic

Reloads the run (:func:`accelrl.agents.load_run`), takes the seed with the best evaluation
return (``eval.json``; ``--teacher`` picks another), rolls it and keeps the best episodes by
return, storing the environment state every ``--every`` steps with its raw observation and the
teacher's value (:func:`accelrl.curricula.snapshot.collect_from_run`). ``--out`` is exactly the
file written (a ``.npz`` with a JSON header; no suffix is added); ``accelrl-train --snapshots``
takes the same path back. See ``docs/snapshot.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROG = "accelrl-snapshot"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Collect a snapshot bank (S3RL) from a trained accelrl run."
    )
    p.add_argument("--run", required=True, help="the teacher's run folder (accelrl-train output)")
    p.add_argument("--out", required=True, help="bank file to write (exactly this path)")
    p.add_argument("--episodes", type=int, default=10, help="best teacher episodes kept (10)")
    p.add_argument("--every", type=int, default=10, help="a snapshot every this many steps (10)")
    p.add_argument("--seed", type=int, default=0, help="rollout seed (0)")
    p.add_argument(
        "--teacher", type=int, default=None, help="run seed to use (default: best by eval return)"
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="episodes rolled in parallel, the best --episodes kept (default: --episodes)",
    )
    p.add_argument(
        "--num-steps",
        type=int,
        default=None,
        help="rollout length (default: the env's max_steps_in_episode)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="act with the policy's mode (the reference does for TD3; samples for SAC/PPO)",
    )
    return p


def _fail(msg: str) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    for name in ("episodes", "every"):
        if getattr(args, name) < 1:
            return _fail(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.candidates is not None and args.candidates < args.episodes:
        return _fail(f"--candidates ({args.candidates}) must be >= --episodes ({args.episodes})")
    if args.num_steps is not None and args.num_steps < 1:
        return _fail(f"--num-steps must be >= 1, got {args.num_steps}")
    if not out.parent.is_dir():
        return _fail(f"--out folder {out.parent} does not exist")
    if out.is_dir():
        return _fail(f"--out {out} is a folder; give the bank file's path")
    try:
        from accelrl.agents.build import read_run_config

        read_run_config(args.run)
    except (FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    from accelrl.agents.compile_cache import enable_compilation_cache
    from accelrl.curricula.snapshot import collect_from_run, save_bank

    enable_compilation_cache()
    try:
        bank = collect_from_run(
            args.run,
            seed=args.seed,
            teacher=args.teacher,
            episodes=args.episodes,
            every=args.every,
            candidates=args.candidates,
            num_steps=args.num_steps,
            deterministic=args.deterministic,
        )
    except (FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    save_bank(bank, out)
    summary = {
        "bank": str(out),
        "content_hash": bank.content_hash,
        "env": bank.env_id,
        "num_snapshots": bank.size,
        "teacher_seed": bank.info["teacher_seed"],
        "episode_returns": bank.info["episode_returns"],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
