"""``accelrl-train``: train an agent on an environment for several seeds in one program.

Usage::

    accelrl-train --env CartPole-v1 --agent ppo --seeds 0 1 2 --out runs/cartpole
    accelrl-train --env Pendulum-v1 --agent sac --seeds 0 1 --out runs/pendulum --total_timesteps 20000
    accelrl-train --env ThreeBody-v0 --env_kwargs '{"num_actions": 5}' --agent ppo --out runs/tb
    accelrl-train --env CartPole-v1 --agent ppo --help     # every field, with this env's defaults
    accelrl-train --env MountainCarContinuous-v0 --agent sac --snapshots bank.npz --out runs/s3rl
    accelrl-train --resume runs/cartpole

Every field of the agent's config and hparams is an option (``--total_timesteps 20000``,
``--learning_rate 1e-3``, ``--hidden_sizes 128 128``, ``--normalize_obs/--no-normalize_obs``);
``--help`` after ``--env`` and ``--agent`` lists them with their docstrings and the defaults for
that environment. Names are checked before JAX is imported, values before anything compiles.

The run folder receives ``config.json``, ``seed_<s>/metrics.{csv,json}``,
``learning_curve.png``, ``checkpoints/step_<n>`` (orbax) and ``eval.json`` (evaluation on
keys that training never used). Compiled programs are cached across processes in
``~/.cache/accelrl/jax`` (``ACCELRL_NO_COMPILE_CACHE=1`` turns that off).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Literal

from accelrl._catalog import AGENT_NAMES
from accelrl.scripts._names import check_agent, check_env_id, check_options

PROG = "accelrl-train"


class UsageError(ValueError):
    """Bad command-line input (reported without a traceback)."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What to run and where (the agent's own fields follow)."""

    env: str
    """Environment id (accelrl or gymnax), e.g. CartPole-v1."""
    agent: str
    """Agent name (a registered agent, e.g. ppo or sac)."""
    out: str | None = None
    """Run folder to write (must not hold a previous run; see --resume)."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds, all in one vmapped program."""
    env_kwargs: str = "{}"
    """JSON object of make() keyword arguments, e.g. '{"num_actions": 5}'."""
    segments: int = 20
    """Host-loop segments (progress, NaN checks, logging points)."""
    checkpoint_every: int = 5
    """Checkpoint every this many segments, and at the end."""
    checkpoint_seconds: float = 300.0
    """Also checkpoint when this many seconds passed since the last checkpoint."""
    progress: bool = True
    """Show a progress bar."""
    log: tuple[Literal["tensorboard", "wandb"], ...] = ()
    """Extra metric loggers: TensorBoard event files, Weights & Biases (offline mode)."""
    snapshots: str | None = None
    """Snapshot bank (accelrl-snapshot) to start episodes from: S3RL snapshot starts."""
    snapshot_clusters: int | None = None
    """K, status clusters of the teacher values (default: the paper's, 4 for SAC, 6 otherwise)."""
    snapshot_horizon: int = 100
    """T, steps an episode started from a snapshot runs before it is truncated."""
    snapshot_steps: int = 100_000
    """N, environment steps of the snapshot phase (then normal resets)."""
    snapshot_schedule: Literal["constant", "linear"] = "constant"
    """Snapshot-start probability over the phase: constant, or decaying linearly to 0."""


@dataclasses.dataclass
class ResumeOptions:
    """Continue a run from its newest checkpoint; its config.json fixes everything else."""

    resume: str
    """Run folder to continue."""
    progress: bool = True
    """Show a progress bar."""
    eval_episodes: int | None = None
    """Evaluation episodes per seed (default: the run's config)."""
    log: tuple[Literal["tensorboard", "wandb"], ...] = ()
    """Extra metric loggers: TensorBoard event files, Weights & Biases (offline mode)."""


def _fail(msg: str, code: int = 2) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return code


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    """``--env``, ``--agent``, ``--env_kwargs``, ``--resume`` and ``--help`` only (light)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env")
    pre.add_argument("--agent")
    pre.add_argument("--env_kwargs", "--env-kwargs", default="{}")
    pre.add_argument("--resume")
    pre.add_argument("-h", "--help", action="store_true")
    return pre.parse_known_args(argv)[0]


def _general_help() -> str:
    return (
        f"usage: {PROG} --env ID --agent NAME --out RUN_DIR [--seeds S ...] [FIELD OPTIONS]\n"
        f"       {PROG} --resume RUN_DIR\n\n"
        "Train an accelrl agent for several seeds in one vmapped program.\n\n"
        f"agents: {', '.join(AGENT_NAMES)}\n"
        f"run `{PROG} --env ID --agent NAME --help` for every option of that agent with the\n"
        "defaults for that environment; accelrl.envs.registered_envs(include_gymnax=True) lists ids.\n"
    )


def json_object(text: str, flag: str, example: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object, or a :class:`UsageError` naming ``flag`` (with an
    ``example`` of a valid value)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{flag} must be a JSON object, e.g. '{example}' ({e})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object, got {text!r}")
    return value


def _env_kwargs(text: str) -> dict[str, Any]:
    return json_object(text, "--env_kwargs", '{"num_actions": 5}')


def check_new_run(run: Any) -> tuple[Path, list[int]]:
    """The checks every new run's options get (accelrl-train and accelrl-teach): a free run
    folder, distinct seeds, a sane host loop. Returns ``(out, seeds)``."""
    if run.out is None:
        raise UsageError("missing --out RUN_DIR (or use --resume RUN_DIR)")
    out = Path(run.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if (out / "config.json").exists():
        raise UsageError(f"{out} already holds a run; use --resume {out} or another --out")
    seeds = list(run.seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be distinct (and at least one), got {seeds}")
    if run.segments < 1 or run.checkpoint_every < 1 or run.checkpoint_seconds <= 0:
        raise UsageError("--segments and --checkpoint_every must be >= 1, --checkpoint_seconds > 0")
    return out, seeds


def _tyro_defaults(hparams: Any) -> Any:
    """Hparams with Python floats (as the help shows them), rounded to float32 precision."""
    return hparams.replace(
        **{k: float(f"{float(getattr(hparams, k)):.7g}") for k in hparams.__dataclass_fields__}
    )


def _parse_fields(
    argv: list[str],
    run: Any,
    spec: Any,
    config: Any,
    hparams: Any,
    *,
    prog: str = PROG,
    description: str | None = None,
) -> Any:
    """``tyro`` over the run options (``run``: a :class:`RunOptions`, or another dataclass of
    run options such as ``accelrl-teach``'s) and the agent's config and hparams classes."""
    import tyro

    fields = [
        ("run", type(run), dataclasses.field(default=run)),
        ("config", spec.config_cls, dataclasses.field(default=config)),
        ("hparams", spec.hparams_cls, dataclasses.field(default=hparams)),
    ]
    args_cls = dataclasses.make_dataclass("TrainArgs", fields)
    args_cls.__doc__ = description or (
        f"Train {run.agent} on {run.env} for several seeds in one vmapped program."
    )
    return tyro.cli(
        args_cls,
        args=argv,
        default=args_cls(run, config, hparams),
        prog=prog,
        config=(tyro.conf.OmitArgPrefixes,),
        use_underscores=True,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = _pre_parse(argv)
    if pre.resume:
        return _resume(argv)
    if pre.env is None or pre.agent is None:
        if pre.help:
            print(_general_help())
            return 0
        missing = [f"--{n}" for n in ("env", "agent") if getattr(pre, n) is None]
        return _fail(f"missing {', '.join(missing)} (or use --resume RUN_DIR); see {PROG} --help")
    # FAST CHECKS: names before JAX is imported
    run_options = (*(f.name for f in dataclasses.fields(RunOptions)), "help", "h")
    for msg in (
        check_env_id(pre.env),
        check_agent(pre.agent),
        check_options(pre.agent, argv, run_options),
    ):
        if msg:
            return _fail(msg)
    try:
        env_kwargs = _env_kwargs(pre.env_kwargs)
        from accelrl.agents import agent_spec, build
        from accelrl.agents.compile_cache import enable_compilation_cache
        from accelrl.agents.configs import config_to_dict, hparams_to_dict

        enable_compilation_cache()
        spec = agent_spec(pre.agent)
        _, config0, hparams0 = build(pre.env, pre.agent, None, env_kwargs)  # the defaults
        run0 = RunOptions(env=pre.env, agent=pre.agent, env_kwargs=json.dumps(env_kwargs))
        try:
            args = _parse_fields(argv, run0, spec, config0, _tyro_defaults(hparams0))
        except SystemExit as e:  # tyro printed the usage error or the help
            return int(e.code or 0)
        run = args.run
        out, seeds = check_new_run(run)
        overrides = {**config_to_dict(args.config), **hparams_to_dict(args.hparams)}
        strategy = None
        if run.snapshots is not None:
            from accelrl.scripts._runs import snapshot_env

            settings = {
                "num_clusters": run.snapshot_clusters,
                "horizon": run.snapshot_horizon,
                "snapshot_steps": run.snapshot_steps,
                "schedule": run.snapshot_schedule,
            }
            venv, params, strategy = snapshot_env(
                pre.env, env_kwargs, pre.agent, args.config.num_envs, run.snapshots, settings
            )
            agent, config, hparams = build(
                venv, pre.agent, overrides, env_params=params, env_id=pre.env
            )
        else:
            agent, config, hparams = build(pre.env, pre.agent, overrides, env_kwargs)
    except (ValueError, TypeError, FileNotFoundError) as e:  # unknown names, bad values, bad bank
        return _fail(str(e))
    from accelrl.agents.build import run_config, write_run_config

    meta = run_config(pre.env, pre.agent, seeds, config, hparams, env_kwargs, strategy)
    meta["run"] = {
        "segments": run.segments,
        "checkpoint_every": run.checkpoint_every,
        "checkpoint_seconds": run.checkpoint_seconds,
    }
    write_run_config(out, meta)
    return _train(out, meta, agent, config, hparams, run.progress, run.log, None, resume=False)


def _resume(argv: list[str]) -> int:
    import tyro

    try:
        opts = tyro.cli(ResumeOptions, args=argv, prog=f"{PROG} --resume", use_underscores=True)
    except SystemExit as e:
        if e.code:
            print(
                f"{PROG}: error: --resume takes the run folder only (its config.json fixes the rest)",
                file=sys.stderr,
            )
        return int(e.code or 0)
    out = Path(opts.resume)
    try:
        from accelrl.agents.build import build_from_config, read_run_config
        from accelrl.agents.compile_cache import enable_compilation_cache
        from accelrl.scripts._runs import env_for_run

        meta = read_run_config(out)
        enable_compilation_cache()
        agent, config, hparams = build_from_config(meta, *(env_for_run(meta) or ()))
    except (FileNotFoundError, ValueError, TypeError) as e:
        return _fail(str(e))
    if opts.eval_episodes is not None and opts.eval_episodes < 1:
        return _fail(f"--eval_episodes must be >= 1, got {opts.eval_episodes}")
    return _train(
        out, meta, agent, config, hparams, opts.progress, opts.log, opts.eval_episodes, resume=True
    )


def _train(
    out: Path,
    meta: dict,
    agent,
    config,
    hparams,
    progress: bool,
    log: tuple[str, ...],
    eval_episodes: int | None,
    *,
    resume: bool,
) -> int:
    from accelrl.agents.checkpoint import CheckpointError, latest_checkpoint
    from accelrl.agents.evaluation import evaluate_seeds
    from accelrl.agents.loggers import make_loggers
    from accelrl.agents.reporting import plot_learning_curve
    from accelrl.agents.runner import NaNError, Runner
    from accelrl.scripts._runs import run_extras

    env_id, agent_name, seeds = meta["env"], meta["agent"], meta["seeds"]
    try:
        loggers = make_loggers(log, out, meta)
    except ImportError as e:
        return _fail(str(e))
    # A curriculum run (accelrl-teach) adds its hooks (% mastered, the teacher's tasks) and
    # its report (plots); recorded in config.json, so --resume brings them back.
    hooks, report = run_extras(meta, out, resume=resume)
    if loggers.loggers:
        hooks = [*hooks, loggers]
    opts = meta.get("run", {})
    runner = Runner(
        agent,
        seeds,
        hparams,
        out_dir=out,
        metadata=meta,
        segments=opts.get("segments", 20),
        checkpoint_every=opts.get("checkpoint_every", 5),
        checkpoint_seconds=opts.get("checkpoint_seconds", 300.0),
        progress=progress,
        on_segment=_chain(hooks) if hooks else None,
    )
    state = None
    # A run killed before its first checkpoint starts over from its config.json.
    if resume and latest_checkpoint(out / "checkpoints") is not None:
        try:
            state = runner.restore()[0]
        except CheckpointError as e:
            loggers.close()
            return _fail(str(e), code=1)
    try:
        result = runner.train(state)
    except NaNError as e:
        return _fail(str(e), code=1)
    finally:
        loggers.close()
    train_s = result.train_seconds
    # REPORT: curve across seeds, evaluation on unseen keys
    plot_learning_curve(
        out / "learning_curve.png", result.metrics, f"{agent_name.upper()} on {env_id}"
    )
    episodes = eval_episodes or config.eval_episodes
    summary = evaluate_seeds(agent, result.state, seeds, episodes, deterministic=True)
    summary["train_seconds"] = round(train_s, 2)
    if report is not None:
        summary.update(report(result))
    # One convention: the checkpoint path relative to the run folder.
    summary["checkpoint"] = (
        str(result.checkpoint.relative_to(out.absolute())) if result.checkpoint else None
    )
    tmp = out / ".eval.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out / "eval.json")
    print(
        f"{agent_name} on {env_id}: mean eval return {summary['mean_return']:.2f} "
        f"(per seed {', '.join(f'{r:.1f}' for r in summary['returns'])}); "
        f"trained {train_s:.1f}s; outputs in {out}"
    )
    return 0


def _chain(hooks: list[Any]) -> Any:
    """One ``on_segment`` callback calling ``hooks`` in order; the host metrics they return are
    merged (a later hook sees the state an earlier one replaced)."""
    from accelrl.agents.runner import SegmentUpdate

    def on_segment(runner: Any, state: Any, seg: dict) -> Any:
        merged = SegmentUpdate()
        for hook in hooks:
            update = hook(runner, state, seg)
            if update is None:
                continue
            if update.state is not None:
                state = merged.state = update.state
            if update.hparams is not None:
                merged.hparams = update.hparams
            if update.metrics:
                merged.metrics = {**(merged.metrics or {}), **update.metrics}
            merged.stop = merged.stop or update.stop
        return merged

    return on_segment


if __name__ == "__main__":
    sys.exit(main())
