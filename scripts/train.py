"""``accelrl-train``: train an agent on an environment for several seeds in one program.

Usage::

    accelrl-train --env CartPole-v1 --agent ppo --seeds 0 1 2 --out runs/cartpole
    accelrl-train --env Pendulum-v1 --agent sac --seeds 0 1 --out runs/pendulum --total_timesteps 20000
    accelrl-train --resume runs/cartpole

Any ``--field value`` (or ``--field=value``) after the named options overrides a field of the
agent's config (``num_envs``, ``total_timesteps``, ``hidden_sizes 64,64``, ...) or hparams
(``learning_rate``, ``gamma``, ...). Everything is validated before compilation.

The run folder receives ``config.json``, ``seed_<s>/metrics.{csv,json}``,
``learning_curve.png``, ``checkpoints/step_<n>`` (orbax) and ``eval.json`` (evaluation on
keys that training never used).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

OUTPUT_FILES = ("config.json", "learning_curve.png", "eval.json")


class UsageError(ValueError):
    """Bad command-line input (reported without a traceback)."""


def parse_overrides(rest: list[str]) -> dict[str, str]:
    """``["--a", "1", "--b=2"] -> {"a": "1", "b": "2"}``; raises on anything else."""
    out: dict[str, str] = {}
    i = 0
    while i < len(rest):
        tok = rest[i]
        if not tok.startswith("--") or tok == "--":
            raise UsageError(f"unexpected argument {tok!r}; overrides are written --field value")
        if "=" in tok:
            name, value = tok[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(rest) or (rest[i + 1].startswith("--") and not _is_number(rest[i + 1])):
                raise UsageError(f"{tok} needs a value")
            name, value = tok[2:], rest[i + 1]
            i += 2
        if name in out:
            raise UsageError(f"--{name} given twice")
        out[name] = value
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def build_agent(
    env_id: str,
    agent_name: str,
    overrides: dict[str, str] | None = None,
    config_dict: dict[str, Any] | None = None,
    hparams_dict: dict[str, Any] | None = None,
):
    """Validate everything and build ``(agent, config, hparams)`` without compiling.

    ``config_dict``/``hparams_dict`` (from a run's ``config.json``) replace the defaults;
    ``overrides`` are applied on top.

    Raises:
        UsageError: unknown agent; ValueError subclasses for unknown envs, fields, bad sizes,
        or an environment the agent cannot act in.
    """
    import jax.numpy as jnp

    from accelrl.agents import AGENTS
    from accelrl.agents.configs import apply_overrides, config_from_dict, default_config
    from accelrl.envs import make

    if agent_name not in AGENTS:
        raise UsageError(f"unknown agent {agent_name!r}; choose from {', '.join(sorted(AGENTS))}")
    config_cls, make_agent = AGENTS[agent_name]
    env, env_params = make(env_id)
    if config_dict is not None:
        config, hp_over = config_from_dict(config_cls, config_dict), {}
    else:
        config, hp_over = default_config(agent_name, env_id)
    config.validate()  # the defaults themselves, before overrides mix in
    # Build once with the config to get the default hparams (no compilation happens here).
    overrides = dict(overrides or {})
    probe_config, _ = apply_overrides(config, _hparams_template(agent_name), overrides)
    agent = make_agent(probe_config, env, env_params)
    hparams = agent.default_hparams()
    base = hparams_dict if hparams_dict is not None else hp_over
    unknown = sorted(set(base) - set(hparams.__dataclass_fields__))
    if unknown:
        raise UsageError(f"unknown hparams {unknown} in the stored/default hparams")
    hparams = hparams.replace(**{k: jnp.float32(v) for k, v in base.items()})
    config, hparams = apply_overrides(probe_config, hparams, overrides)
    hparams = hparams.replace(**{k: jnp.float32(getattr(hparams, k)) for k in hparams.__dataclass_fields__})
    return agent, config, hparams


def _hparams_template(agent_name: str):
    """An hparams instance of ``agent_name`` (for override name checks before building)."""
    if agent_name == "ppo":
        from accelrl.agents.ppo import PPOHparams

        return PPOHparams()
    from accelrl.agents import sac

    return sac.SACHparams()


def run_metadata(env_id: str, agent_name: str, seeds: list[int], config: Any, hparams: Any, overrides: dict[str, str]) -> dict[str, Any]:
    import jax

    from accelrl.agents.configs import config_to_dict, hparams_to_dict

    return {
        "env": env_id,
        "agent": agent_name,
        "seeds": seeds,
        "config": config_to_dict(config),
        "hparams": hparams_to_dict(hparams),
        "overrides": overrides,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="accelrl-train",
        description="Train an accelrl agent for several seeds in one vmapped program.",
        epilog="Extra --field value pairs override config/hparams fields (e.g. --total_timesteps 50000).",
    )
    p.add_argument("--env", help="environment id (accelrl or gymnax), e.g. CartPole-v1")
    p.add_argument("--agent", help="agent name: ppo or sac")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    p.add_argument("--out", help="run folder to write (must not contain a previous run)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--segments", type=int, default=20, help="host-loop segments (progress, NaN checks)")
    p.add_argument("--checkpoint-every", type=int, default=5, help="checkpoint every N segments and at the end")
    p.add_argument("--eval-episodes", type=int, default=None, help="evaluation episodes per seed")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    return p


def _fail(msg: str, code: int = 2) -> int:
    print(f"accelrl-train: error: {msg}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    try:
        overrides = parse_overrides(rest)
        if args.resume:
            if args.env or args.agent or args.out or overrides:
                raise UsageError("--resume takes the run folder only (its config.json fixes the rest)")
            out = Path(args.resume)
            if not (out / "config.json").exists():
                raise UsageError(f"{out} has no config.json to resume")
            meta = json.loads((out / "config.json").read_text())
            env_id, agent_name, seeds = meta["env"], meta["agent"], meta["seeds"]
            agent, config, hparams = build_agent(env_id, agent_name, None, meta["config"], meta["hparams"])
            overrides = meta.get("overrides", {})
        else:
            missing = [n for n in ("env", "agent", "out") if getattr(args, n) is None]
            if missing:
                raise UsageError(f"missing {', '.join('--' + m for m in missing)} (or use --resume RUN_DIR)")
            env_id, agent_name, seeds = args.env, args.agent, list(args.seeds)
            out = Path(args.out)
            if (out / "config.json").exists():
                raise UsageError(f"{out} already holds a run; use --resume {out} or another --out")
            agent, config, hparams = build_agent(env_id, agent_name, overrides)
        if len(set(seeds)) != len(seeds):
            raise UsageError(f"seeds must be distinct, got {seeds}")
    except ValueError as e:  # UsageError, unknown env/field, validation, unsupported env
        return _fail(str(e))
    return _train(args, out, env_id, agent_name, seeds, agent, config, hparams, overrides)


def _train(args, out: Path, env_id, agent_name, seeds, agent, config, hparams, overrides) -> int:
    from accelrl.agents.evaluation import evaluate_seeds
    from accelrl.agents.reporting import plot_learning_curve
    from accelrl.agents.runner import NaNError, Runner

    meta = run_metadata(env_id, agent_name, seeds, config, hparams, overrides)
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        (out / "config.json").write_text(json.dumps(meta, indent=2))
    runner = Runner(
        agent,
        seeds,
        hparams,
        out_dir=out,
        metadata=meta,
        segments=args.segments,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
    )
    state = runner.restore()[0] if args.resume else None
    t0 = time.perf_counter()
    try:
        result = runner.train(state)
    except NaNError as e:
        return _fail(str(e), code=1)
    train_s = time.perf_counter() - t0
    # REPORT: curve across seeds, evaluation on unseen keys
    plot_learning_curve(out / "learning_curve.png", result.metrics, f"{agent_name.upper()} on {env_id}")
    episodes = args.eval_episodes or getattr(config, "eval_episodes", 32)
    summary = evaluate_seeds(agent, result.state, seeds, episodes, deterministic=True)
    summary["train_seconds"] = round(train_s, 2)
    summary["checkpoint"] = str(result.checkpoint) if result.checkpoint else None
    (out / "eval.json").write_text(json.dumps(summary, indent=2))
    print(
        f"{agent_name} on {env_id}: mean eval return {summary['mean_return']:.2f} "
        f"(per seed {', '.join(f'{r:.1f}' for r in summary['returns'])}); "
        f"trained {train_s:.1f}s; outputs in {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
