"""``accelrl-eval RUN_DIR``: re-evaluate the checkpoint of a training run.

Usage::

    accelrl-eval runs/cartpole                       # deterministic policy, config's episodes
    accelrl-eval runs/cartpole --episodes 100 --stochastic --output runs/cartpole/eval_stoch.json

Rebuilds the agent and its environment (id and ``make`` kwargs) from ``RUN_DIR/config.json``
(:func:`accelrl.agents.load_run`), restores the newest checkpoint (or ``--checkpoint``) and
evaluates every seed on keys that training never used; the same arguments give the same
numbers as the ``eval.json`` written at the end of training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROG = "accelrl-eval"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Re-evaluate an accelrl run's checkpoint.")
    p.add_argument("run_dir", help="run folder written by accelrl-train")
    p.add_argument(
        "--episodes", type=int, default=None, help="episodes per seed (default: the config's)"
    )
    p.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of the policy mode"
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the newest)")
    p.add_argument("--output", default=None, help="JSON file to write (default: RUN_DIR/eval.json)")
    return p


def _fail(msg: str) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_dir = Path(args.run_dir)
    out = Path(args.output) if args.output else run_dir / "eval.json"
    if args.episodes is not None and args.episodes < 1:
        return _fail(f"--episodes must be >= 1, got {args.episodes}")
    if not out.parent.is_dir():
        return _fail(f"--output folder {out.parent} does not exist")
    try:
        from accelrl.agents.build import build_from_config, read_run_config
        from accelrl.agents.compile_cache import enable_compilation_cache
        from accelrl.scripts._runs import env_for_run

        meta = read_run_config(run_dir)
        enable_compilation_cache()
        agent, config, hparams = build_from_config(meta, *(env_for_run(meta) or ()))
    except (FileNotFoundError, ValueError, TypeError) as e:
        return _fail(str(e))
    from accelrl.agents.checkpoint import CheckpointError
    from accelrl.agents.evaluation import evaluate_seeds
    from accelrl.agents.runner import Runner

    runner = Runner(agent, meta["seeds"], hparams, out_dir=run_dir, progress=False)
    try:
        state, _ = runner.restore(args.checkpoint)
    except (FileNotFoundError, CheckpointError) as e:
        return _fail(str(e))
    episodes = args.episodes or config.eval_episodes
    summary = evaluate_seeds(
        agent, state, meta["seeds"], episodes, deterministic=not args.stochastic
    )
    if out.exists() and out == run_dir / "eval.json":
        previous = json.loads(out.read_text())
        for k in ("train_seconds", "checkpoint"):
            if k in previous:
                summary[k] = previous[k]
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out)
    shown = ("mean_return", "returns", "team_returns", "num_episodes", "deterministic")
    print(json.dumps({k: summary[k] for k in shown if k in summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
