"""``accelrl-eval RUN_DIR``: re-evaluate the checkpoint of a training run.

Usage::

    accelrl-eval runs/cartpole                       # deterministic policy, config's episodes
    accelrl-eval runs/cartpole --episodes 100 --stochastic --output runs/cartpole/eval_stoch.json

Rebuilds the agent from ``RUN_DIR/config.json``, restores the newest checkpoint (or
``--checkpoint``) and evaluates every seed on keys that training never used; the same
arguments give the same numbers as the ``eval.json`` written at the end of training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="accelrl-eval", description="Re-evaluate an accelrl run's checkpoint.")
    p.add_argument("run_dir", help="run folder written by accelrl-train")
    p.add_argument("--episodes", type=int, default=None, help="episodes per seed (default: the config's)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the policy mode")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the newest)")
    p.add_argument("--output", default=None, help="JSON file to write (default: RUN_DIR/eval.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from accelrl.scripts.train import build_agent

    run_dir = Path(args.run_dir)
    try:
        meta = json.loads((run_dir / "config.json").read_text())
        agent, config, hparams = build_agent(meta["env"], meta["agent"], None, meta["config"], meta["hparams"])
    except FileNotFoundError:
        print(f"accelrl-eval: error: {run_dir} has no config.json", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"accelrl-eval: error: {e}", file=sys.stderr)
        return 2
    from accelrl.agents.evaluation import evaluate_seeds
    from accelrl.agents.runner import Runner

    runner = Runner(agent, meta["seeds"], hparams, out_dir=run_dir, progress=False)
    try:
        state, _ = runner.restore(args.checkpoint)
    except FileNotFoundError as e:
        print(f"accelrl-eval: error: {e}", file=sys.stderr)
        return 2
    episodes = args.episodes or getattr(config, "eval_episodes", 32)
    summary = evaluate_seeds(agent, state, meta["seeds"], episodes, deterministic=not args.stochastic)
    out = Path(args.output) if args.output else run_dir / "eval.json"
    if out.exists() and out == run_dir / "eval.json":
        previous = json.loads(out.read_text())
        for k in ("train_seconds", "checkpoint"):
            if k in previous:
                summary[k] = previous[k]
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("mean_return", "returns", "num_episodes", "deterministic")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
