"""``accelrl-eval RUN_DIR``: re-evaluate the checkpoint of a training run.

Usage::

    accelrl-eval runs/cartpole                       # deterministic policy, config's episodes
    accelrl-eval runs/cartpole --episodes 100 --stochastic --output runs/cartpole/eval_stoch.json
    accelrl-eval runs/malloc_az --search 32 --output runs/malloc_az/eval_search32.json

Rebuilds the agent and its environment (id and ``make`` kwargs) from ``RUN_DIR/config.json``
(:func:`accelrl.agents.load_run`), restores the newest checkpoint (or ``--checkpoint``) and
evaluates every seed on keys that training never used; the same arguments give the same
numbers as the ``eval.json`` written at the end of training.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import tyro

from accelrl.scripts._cli import UsageError, main_wrapper, parse

PROG = "accelrl-eval"


@dataclasses.dataclass
class EvalOptions:
    """Re-evaluate an accelrl run's checkpoint."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run folder written by accelrl-train."""
    episodes: int | None = None
    """Episodes per seed (default: the config's)."""
    stochastic: bool = False
    """Sample actions instead of the policy's mode."""
    search: int | None = None
    """Agents that search (gumbel_az): simulations per step of a search without root noise
    (0: the network's greedy action; default: the run config's ``eval_simulations``)."""
    checkpoint: str | None = None
    """Checkpoint folder (default: the newest usable one)."""
    output: str | None = None
    """JSON file to write (default: RUN_DIR/eval.json); never one of the run's own files."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        args = parse(EvalOptions, argv, PROG)
        run_dir = Path(args.run_dir)
        if args.episodes is not None and args.episodes < 1:
            raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
        if args.search is not None and args.search < 0:
            raise UsageError(f"--search must be >= 0, got {args.search}")
        from accelrl.agents.folders import check_output_path

        if args.output is not None:
            out = Path(args.output)
            if not out.parent.is_dir():
                raise UsageError(f"--output folder {out.parent} does not exist")
            if out.absolute() != (run_dir / "eval.json").absolute():
                check_output_path(out, "--output")
        else:
            out = run_dir / "eval.json"
        from accelrl.agents.build import build_run, read_spec
        from accelrl.agents.compile_cache import enable_compilation_cache
        from accelrl.agents.evaluation import evaluate_seeds
        from accelrl.agents.runner import Runner
        from accelrl.agents.runs import checkpoint_name

        spec = read_spec(run_dir)
        enable_compilation_cache()
        built = build_run(spec)
        agent = built.agent
        if args.search is not None:
            if not hasattr(agent, "with_eval_search"):
                raise UsageError(f"--search needs an agent that searches; {spec.agent} does not")
            agent = agent.with_eval_search(args.search)
        runner = Runner(agent, list(spec.seeds), built.hparams, out_dir=run_dir, progress=False)
        state, _ = runner.restore(args.checkpoint)
        episodes = args.episodes or built.config.eval_episodes
        summary = evaluate_seeds(
            agent, state, runner.seeds, episodes, deterministic=not args.stochastic
        )
        # The checkpoint evaluated (the newest usable one, or --checkpoint), relative to the run.
        summary["checkpoint"] = checkpoint_name(runner.restored_from, run_dir)
        if args.search is not None:
            summary["search_simulations"] = args.search
        if out.exists() and out.absolute() == (run_dir / "eval.json").absolute():
            previous = json.loads(out.read_text())
            if "train_seconds" in previous:
                summary["train_seconds"] = previous["train_seconds"]
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(out)
        shown = (
            "mean_return",
            "returns",
            "team_returns",
            "num_episodes",
            "deterministic",
            "search_simulations",
            "checkpoint",
        )
        print(json.dumps({k: summary[k] for k in shown if k in summary}))
        return 0

    return main_wrapper(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
