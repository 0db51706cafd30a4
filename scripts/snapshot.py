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

import dataclasses
import json
import sys
from pathlib import Path

from accelrl.scripts._cli import UsageError, main_wrapper, parse

PROG = "accelrl-snapshot"


@dataclasses.dataclass
class SnapshotOptions:
    """Collect a snapshot bank (S3RL) from a trained accelrl run."""

    run: str
    """The teacher's run folder (accelrl-train output)."""
    out: str
    """Bank file to write (exactly this path; an existing file is never overwritten)."""
    episodes: int = 10
    """Best teacher episodes kept."""
    every: int = 10
    """A snapshot every this many steps."""
    seed: int = 0
    """Rollout seed."""
    teacher: int | None = None
    """Run seed to use (default: the best by evaluation return)."""
    candidates: int | None = None
    """Episodes rolled in parallel, the best --episodes kept (default: --episodes)."""
    num_steps: int | None = None
    """Rollout length (default: the env's max_steps_in_episode)."""
    deterministic: bool = False
    """Act with the policy's mode (the reference does for TD3; samples for SAC/PPO)."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        args = parse(SnapshotOptions, argv, PROG)
        for name in ("episodes", "every"):
            if getattr(args, name) < 1:
                raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
        if args.candidates is not None and args.candidates < args.episodes:
            raise UsageError(
                f"--candidates ({args.candidates}) must be >= --episodes ({args.episodes})"
            )
        if args.num_steps is not None and args.num_steps < 1:
            raise UsageError(f"--num_steps must be >= 1, got {args.num_steps}")
        if not 0 <= args.seed < 2**32:
            raise UsageError(f"--seed must be in [0, 2**32), got {args.seed}")
        out = Path(args.out)
        if out.is_dir():
            raise UsageError(f"--out {out} is a folder; give the bank file's path")
        if not out.parent.is_dir():
            raise UsageError(f"--out folder {out.parent} does not exist")
        if out.exists():
            raise UsageError(f"--out {out} exists; a bank is never overwritten (choose a new path)")
        from accelrl.agents.build import read_spec
        from accelrl.agents.folders import check_output_path

        check_output_path(out, "--out")
        read_spec(args.run)  # a run folder, before anything compiles
        from accelrl.agents.compile_cache import enable_compilation_cache
        from accelrl.curricula.snapshot import collect_from_run, save_bank

        enable_compilation_cache()
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

    return main_wrapper(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
