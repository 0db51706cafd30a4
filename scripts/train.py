"""``accelrl-train``: train an agent on an environment for several seeds in one program.

Usage::

    accelrl-train --env CartPole-v1 --agent ppo --seeds 0 1 2 --out runs/cartpole
    accelrl-train --env Pendulum-v1 --agent sac --seeds 0 1 --out runs/pendulum --total_timesteps 20000
    accelrl-train --env ThreeBody-v0 --env_kwargs '{"num_actions": 5}' --agent ppo --out runs/tb
    accelrl-train --env CartPole-v1 --agent ppo --help     # every field, with this env's defaults
    accelrl-train --env Pendulum-v1 --agent ppo --teacher alp_gmm --task_space pendulum_dynamics --out runs/alp
    accelrl-train --env MountainCarContinuous-v0 --agent sac --snapshots bank.npz --out runs/s3rl
    accelrl-train --config runs/cartpole/config.json --out runs/again   # a spec file, flags on top
    accelrl-train --resume runs/cartpole

The command is a thin parser: its flags make one :class:`accelrl.agents.RunSpec` (the run's
``config.json``), which :func:`accelrl.agents.train_run` trains. Every field of the agent's
config and hparams is a flag (``--total_timesteps 20000``, ``--learning_rate 1e-3``,
``--hidden_sizes 128 128``, ``--normalize_obs/--no_normalize_obs``); ``--help`` after ``--env``
and ``--agent`` lists them with their docstrings and the defaults for that environment. Names are
checked before JAX is imported, values before anything compiles, and nothing is written before
every check passed.

The run folder receives ``config.json``, ``seed_<s>/metrics.{csv,json}``,
``learning_curve.png``, ``checkpoints/step_<n>`` (orbax) and ``eval.json`` (evaluation on keys
that training never used); a teacher adds the fraction mastered, ``tasks.csv`` and heat maps.
Compiled programs are cached across processes in ``~/.cache/accelrl/jax``
(``ACCELRL_NO_COMPILE_CACHE=1`` turns that off).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Literal

from accelrl._catalog import AGENT_NAMES, TASK_SPACE_NAMES, TEACHER_NAMES
from accelrl.scripts._cli import Exit, UsageError, main_wrapper, parse
from accelrl.scripts._names import (
    check_agent,
    check_env_id,
    check_options,
    check_task_space,
    check_teacher,
)

PROG = "accelrl-train"


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """What to run and where, its reset strategy and host loop (the agent's fields follow)."""

    env: str
    """Environment id (accelrl or gymnax), e.g. CartPole-v1."""
    agent: str
    """Agent name (a registered agent, e.g. ppo, sac, dqn, ippo)."""
    out: str | None = None
    """Run folder to write (must not hold a previous run; see --resume)."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds (distinct, in [0, 2**32)), all in one vmapped program."""
    env_kwargs: str = "{}"
    """JSON object of make() keyword arguments, e.g. '{"num_actions": 5}'."""
    config: str | None = None
    """A run spec file to start from (a run folder's config.json; JSON, TOML or YAML); the
    other flags go on top."""
    segments: int = 20
    """Host-loop segments (progress, NaN checks, logging and measuring points)."""
    checkpoint_every: int = 5
    """Checkpoint every this many segments, and at the end."""
    checkpoint_seconds: float = 300.0
    """Also checkpoint when this many seconds passed since the last checkpoint."""
    progress: bool = True
    """Show a progress bar."""
    log: tuple[Literal["tensorboard", "wandb"], ...] = ()
    """Extra metric loggers: TensorBoard event files, Weights & Biases (offline mode)."""
    teacher: str | None = None
    """Task teacher (a curriculum): alp_gmm, covar_gmm, riac or random (needs --task_space)."""
    task_space: str | None = None
    """Task space of the teacher (a named box of env params), e.g. pendulum_dynamics."""
    teacher_kwargs: str = "{}"
    """JSON object of teacher settings, e.g. '{"fit_rate": 150, "refit_every": 16}'."""
    mastered_every: int = 1
    """Teacher runs: measure the fraction mastered every this many segments (and after the last)."""
    test_tasks: int = 100
    """Teacher runs: size of the fixed test set of tasks."""
    test_seed: int = 0
    """Teacher runs: seed of the test set."""
    episodes_per_task: int = 1
    """Teacher runs: evaluation episodes per test task."""
    heatmap_dims: tuple[str, ...] = ()
    """Teacher runs: two task dimensions (names or indices) of the heat map (default: first two)."""
    heatmap_moments: int = 4
    """Teacher runs: windows of training shown in the heat map."""
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
    data_parallel: int = 1
    """Devices each member's environment copies are split over (must divide the device count
    and num_envs; 1: members alone are sharded over the devices)."""
    coordinator_address: str | None = None
    """Multi-host: jax.distributed's coordinator (HOST:PORT of process 0); with --num_processes
    and --process_id, or --distributed to read them from the cluster's environment."""
    num_processes: int | None = None
    """Multi-host: the number of processes (one per host)."""
    process_id: int | None = None
    """Multi-host: this process's index (0 writes the run folder's files)."""
    distributed: bool = False
    """Multi-host: call jax.distributed.initialize() with what the cluster's environment says
    (SLURM, Open MPI, ...)."""


DISTRIBUTED_FIELDS = ("coordinator_address", "num_processes", "process_id", "distributed")


@dataclasses.dataclass
class ResumeOptions:
    """Continue a run from its newest checkpoint; its config.json fixes everything else."""

    resume: str
    """Run folder to continue."""
    progress: bool = True
    """Show a progress bar."""
    eval_episodes: int | None = None
    """Evaluation episodes per seed (default: the run's config)."""
    log: tuple[Literal["tensorboard", "wandb"], ...] | None = None
    """Extra metric loggers for the rest of the run (default: the run's)."""
    total_timesteps: int | None = None
    """Extend the run to this many environment steps per seed (at least the run's own)."""
    coordinator_address: str | None = None
    """Multi-host: jax.distributed's coordinator (a resume needs the run's process count)."""
    num_processes: int | None = None
    """Multi-host: the number of processes."""
    process_id: int | None = None
    """Multi-host: this process's index."""
    distributed: bool = False
    """Multi-host: initialise from the cluster's environment."""


CURRICULUM_FIELDS = (
    "mastered_every", "test_tasks", "test_seed", "episodes_per_task", "heatmap_dims",
    "heatmap_moments",
)  # fmt: skip
SNAPSHOT_FLAGS = {
    "snapshot_clusters": "num_clusters",
    "snapshot_horizon": "horizon",
    "snapshot_steps": "snapshot_steps",
    "snapshot_schedule": "schedule",
}


PRE_FLAGS = (
    "env", "agent", "config", "resume", "teacher", "task_space", "out", "env_kwargs",
    "coordinator_address", "num_processes", "process_id",
)  # fmt: skip


def init_distributed(argv: list[str]) -> None:
    """Start JAX's multi-controller runtime when the flags ask for it (before any backend
    starts: every later JAX call then sees all processes' devices).

    Raises:
        UsageError: an incomplete or malformed set of flags.
    """
    pre = _pre_parse(argv)
    explicit = [pre.coordinator_address, pre.num_processes, pre.process_id]
    flag = "--distributed" in argv
    if not flag and all(v is None for v in explicit):
        return
    if not flag and any(v is None for v in explicit):
        raise UsageError(
            "--coordinator_address, --num_processes and --process_id go together (or use "
            "--distributed to read them from the cluster's environment)"
        )
    import jax

    kwargs: dict[str, Any] = {}
    if not flag:
        try:
            kwargs = {
                "coordinator_address": pre.coordinator_address,
                "num_processes": int(pre.num_processes),
                "process_id": int(pre.process_id),
            }
        except ValueError:
            raise UsageError("--num_processes and --process_id must be integers") from None
        if not 0 <= kwargs["process_id"] < kwargs["num_processes"]:
            raise UsageError("--process_id must be in [0, --num_processes)")
    jax.config.update(
        "jax_cpu_collectives_implementation", "gloo"
    )  # CPU collectives; GPUs use NCCL
    jax.distributed.initialize(**kwargs)


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    """The names, ``--config``, ``--resume`` and ``--help`` only (before JAX is imported). Never
    fails: a flag without a value reads as None, and tyro reports it."""
    found: dict[str, Any] = dict.fromkeys(PRE_FLAGS)
    found["help"] = False
    for i, token in enumerate(argv):
        if token in ("-h", "--help"):
            found["help"] = True
            continue
        if not token.startswith("--"):
            continue
        name, eq, value = token[2:].partition("=")
        name = name.replace("-", "_")
        if name not in PRE_FLAGS:
            continue
        if not eq:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            value = nxt if nxt is not None and not nxt.startswith("--") else None
        found[name] = value
    return argparse.Namespace(**found)


def general_help(prog: str = PROG) -> str:
    return (
        f"usage: {prog} --env ID --agent NAME --out RUN_DIR [--seeds S ...] [FIELD OPTIONS]\n"
        f"       {prog} --env ID --agent NAME --teacher NAME --task_space NAME --out RUN_DIR\n"
        f"       {prog} --env ID --agent NAME --snapshots BANK --out RUN_DIR\n"
        f"       {prog} --config SPEC_FILE --out RUN_DIR [FIELD OPTIONS]\n"
        f"       {prog} --resume RUN_DIR\n\n"
        "Train an accelrl agent for several seeds in one vmapped program, optionally with a task\n"
        "teacher (a curriculum) or snapshot starts. With a teacher the run folder also gets the\n"
        "fraction of a fixed test set mastered ('mastered' column, mastered.png), the teacher's\n"
        "tasks (seed_<s>/tasks.csv) and their heat map (tasks.png).\n\n"
        f"agents: {', '.join(AGENT_NAMES)}\n"
        f"teachers: {', '.join(TEACHER_NAMES)}; task spaces: {', '.join(TASK_SPACE_NAMES)}\n"
        f"run `{prog} --env ID --agent NAME --help` for every option of that agent with the\n"
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


def _options_from_spec(spec: Any) -> TrainOptions:
    """The flags' defaults that reproduce ``spec`` (so a spec file's values show in --help and
    flags go on top of them)."""
    strategy = spec.reset_strategy
    settings = dict(strategy.settings)
    kw: dict[str, Any] = {}
    if strategy.name == "snapshot":
        kw["snapshots"] = settings.get("bank")
        for flag, key in SNAPSHOT_FLAGS.items():
            if key in settings and settings[key] is not None:
                kw[flag] = settings[key]
    elif strategy.name != "default":
        kw["teacher"] = strategy.name
        kw["task_space"] = settings.pop("task_space", None)
        kw["teacher_kwargs"] = json.dumps(settings)
        for key, value in dict(spec.curriculum or {}).items():
            kw[key] = tuple(map(str, value)) if key == "heatmap_dims" else value
    return TrainOptions(
        env=spec.env,
        agent=spec.agent,
        seeds=tuple(spec.seeds),
        env_kwargs=json.dumps(dict(spec.env_kwargs)),
        segments=spec.run.segments,
        checkpoint_every=spec.run.checkpoint_every,
        checkpoint_seconds=spec.run.checkpoint_seconds,
        log=tuple(spec.run.log),
        data_parallel=spec.run.data_parallel,
        **kw,
    )


def spec_from_options(run: TrainOptions, config: Any, hparams: Any, base: Any = None) -> Any:
    """The :class:`RunSpec` the parsed flags describe (``base``: a spec file's, whose bank
    hash is kept when the flags name the same bank)."""
    from accelrl.agents.configs import config_to_dict, hparams_to_dict
    from accelrl.agents.spec import RunOptions, RunSpec, StrategySpec

    if run.teacher is not None and run.snapshots is not None:
        raise UsageError("--teacher and --snapshots are two reset strategies; choose one")
    curriculum = None
    if run.snapshots is not None:
        settings = {"bank": run.snapshots}
        settings.update({key: getattr(run, flag) for flag, key in SNAPSHOT_FLAGS.items()})
        if base is not None and base.reset_strategy.name == "snapshot":
            old = dict(base.reset_strategy.settings)
            if Path(old.get("bank", "")).absolute() == Path(run.snapshots).absolute():
                settings["bank_hash"] = old.get("bank_hash")
        strategy = StrategySpec("snapshot", settings)
    elif run.teacher is not None:
        if run.task_space is None:
            raise UsageError("--teacher needs --task_space (e.g. pendulum_dynamics)")
        settings = json_object(run.teacher_kwargs, "--teacher_kwargs", '{"fit_rate": 150}')
        strategy = StrategySpec(run.teacher, {"task_space": run.task_space, **settings})
        curriculum = {name: getattr(run, name) for name in CURRICULUM_FIELDS}
        curriculum["heatmap_dims"] = list(curriculum["heatmap_dims"])
    else:
        if run.task_space is not None:
            raise UsageError("--task_space needs --teacher")
        strategy = StrategySpec()
    return RunSpec(
        env=run.env,
        agent=run.agent,
        seeds=tuple(run.seeds),
        env_kwargs=json_object(run.env_kwargs, "--env_kwargs", '{"num_actions": 5}'),
        config=config_to_dict(config),
        hparams=hparams_to_dict(hparams),
        grid=() if base is None else base.grid,
        reset_strategy=strategy,
        curriculum=curriculum,
        run=RunOptions(
            segments=run.segments,
            checkpoint_every=run.checkpoint_every,
            checkpoint_seconds=run.checkpoint_seconds,
            log=tuple(run.log),
            data_parallel=run.data_parallel,
        ),
    )


def _tyro_defaults(hparams: Any) -> Any:
    """Hparams with Python floats (as the help shows them), rounded to float32 precision."""
    return hparams.replace(
        **{k: float(f"{float(getattr(hparams, k)):.7g}") for k in hparams.__dataclass_fields__}
    )


def parse_run(argv: list[str], prog: str = PROG, require_teacher: bool = False) -> tuple[Any, Any]:
    """``argv`` -> ``(RunSpec, TrainOptions)``: the names checked before JAX is imported, the
    values by the library before anything compiles.

    Raises:
        UsageError: bad arguments; Exit: help printed.
    """
    pre = _pre_parse(argv)
    base = None
    if pre.config is not None:
        from accelrl.agents.spec import RunSpec

        try:
            base = RunSpec.from_file(pre.config)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(f"--config: {e}") from None
    env = pre.env or (base.env if base else None)
    agent = pre.agent or (base.agent if base else None)
    if require_teacher:
        missing = [f"--{n}" for n in ("teacher", "task_space") if getattr(pre, n) is None]
        if missing and not pre.help:
            raise UsageError(
                f"missing {', '.join(missing)} (or use --resume RUN_DIR); see {prog} --help"
            )
    # FAST CHECKS: names before JAX is imported
    for msg in (
        check_env_id(pre.env) if pre.env else None,
        check_teacher(pre.teacher) if pre.teacher else None,
        check_task_space(pre.task_space) if pre.task_space else None,
    ):
        if msg:
            raise UsageError(msg)
    space_kwargs = None
    if pre.task_space is not None:  # a teacher run: the task space fixes the env and kwargs
        from accelrl.curricula import task_space

        space = task_space(pre.task_space)
        if env is not None and pre.env is not None and env != space.env_id:
            raise UsageError(
                f"task space {space.name!r} is over {space.env_id}, not --env {env} "
                f"(leave --env out or give {space.env_id})"
            )
        env, space_kwargs = space.env_id, dict(space.env_kwargs)
    if env is None or agent is None:
        if pre.help:
            print(general_help(prog))
            raise Exit(0)
        missing = [f"--{n}" for n, v in (("env", env), ("agent", agent)) if v is None]
        raise UsageError(
            f"missing {', '.join(missing)} (or --config FILE, or --resume RUN_DIR); "
            f"see {prog} --help"
        )
    run_options = (*(f.name for f in dataclasses.fields(TrainOptions)), "help", "h")
    for msg in (check_env_id(env), check_agent(agent), check_options(agent, argv, run_options)):
        if msg:
            raise UsageError(msg)
    from accelrl.agents import agent_spec, build_run
    from accelrl.agents.compile_cache import enable_compilation_cache
    from accelrl.agents.spec import RunSpec, StrategySpec

    enable_compilation_cache()
    # The defaults shown and parsed: the spec file's, else the agent's for this env and kwargs.
    if base is not None and env == base.env and agent == base.agent:
        base_spec = base
    else:
        kwargs = space_kwargs
        if kwargs is None:
            text = pre.env_kwargs or (json.dumps(dict(base.env_kwargs)) if base else "{}")
            kwargs = json_object(text, "--env_kwargs", '{"num_actions": 5}')
        base_spec = RunSpec(env=env, agent=agent, env_kwargs=kwargs)
        if base is not None:
            base_spec = base_spec.replace(seeds=base.seeds, run=base.run)
    # (a snapshot bank and a teacher's settings are checked when the run is built)
    defaults = build_run(base_spec.replace(reset_strategy=StrategySpec(), curriculum=None))
    hparams0 = defaults.hparams[0] if isinstance(defaults.hparams, list) else defaults.hparams
    hparams0 = _tyro_defaults(hparams0)
    run0 = _options_from_spec(base_spec)
    spec_cls = agent_spec(agent)
    args_cls = dataclasses.make_dataclass(
        "TrainArgs",
        [
            ("run", TrainOptions, dataclasses.field(default=run0)),
            ("agent_config", spec_cls.config_cls, dataclasses.field(default=defaults.config)),
            ("agent_hparams", spec_cls.hparams_cls, dataclasses.field(default=hparams0)),
        ],
    )
    description = f"Train {agent} on {env} for several seeds in one vmapped program" + (
        " with a task teacher." if require_teacher else "."
    )
    args = parse(
        args_cls, argv, prog, default=args_cls(run0, defaults.config, hparams0),
        description=description,
    )  # fmt: skip
    run = args.run
    if require_teacher and run.teacher is None:
        raise UsageError(f"{prog} needs --teacher and --task_space")
    return spec_from_options(run, args.agent_config, args.agent_hparams, base), run


def main(argv: list[str] | None = None, prog: str = PROG, require_teacher: bool = False) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = _pre_parse(argv)
    if pre.resume:
        return resume_main(argv, prog, require_teacher)
    out_hint: list[str] = []

    def body() -> int:
        init_distributed(argv)
        spec, run = parse_run(argv, prog, require_teacher)
        if run.out is None:
            raise UsageError("missing --out RUN_DIR (or use --resume RUN_DIR)")
        out_hint.append(run.out)
        from accelrl.agents import train_run

        outcome = train_run(spec, run.out, progress=run.progress)
        _report(outcome)
        return 0

    return main_wrapper(prog, body, lambda: _resume_hint(prog, out_hint))


def _resume_hint(prog: str, out: list[str]) -> str:
    if not out or not (Path(out[0]) / "config.json").is_file():
        return "nothing was written"
    from accelrl.agents.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(Path(out[0]) / "checkpoints")
    where = f"newest checkpoint {ckpt.name}" if ckpt else "no checkpoint yet"
    return f"{where}; resume with {prog} --resume {out[0]}"


def resume_main(argv: list[str], prog: str = PROG, require_teacher: bool = False) -> int:
    out_hint: list[str] = []

    def body() -> int:
        try:
            opts = parse(ResumeOptions, argv, f"{prog} --resume")
        except UsageError as e:
            raise UsageError(
                "--resume takes the run folder only (and --no_progress, --log, --eval_episodes, "
                f"--total_timesteps); its config.json fixes the rest ({e})"
            ) from None
        out_hint.append(opts.resume)
        init_distributed(argv)
        if opts.eval_episodes is not None and opts.eval_episodes < 1:
            raise UsageError(f"--eval_episodes must be >= 1, got {opts.eval_episodes}")
        from accelrl.agents import read_spec, resume_run
        from accelrl.agents.compile_cache import enable_compilation_cache

        if require_teacher and read_spec(opts.resume).reset_strategy.name in (
            "default",
            "snapshot",
        ):
            raise UsageError(
                f"{opts.resume} was trained without a teacher; continue it with "
                f"accelrl-train --resume {opts.resume}"
            )

        enable_compilation_cache()
        outcome = resume_run(
            opts.resume,
            progress=opts.progress,
            log=opts.log,
            eval_episodes=opts.eval_episodes,
            extend_timesteps=opts.total_timesteps,
        )
        _report(outcome)
        return 0

    return main_wrapper(prog, body, lambda: _resume_hint(prog, out_hint))


def _report(outcome: Any) -> None:
    s, spec = outcome.summary, outcome.built.spec
    extra = f"; mastered {s['mastered_mean']:.3f}" if "mastered_mean" in s else ""
    print(
        f"{spec.agent} on {spec.env}: mean eval return {s['mean_return']:.2f} "
        f"(per seed {', '.join(f'{r:.1f}' for r in s['returns'])}){extra}; "
        f"trained {s['train_seconds']:.1f}s; outputs in {outcome.out}"
    )


if __name__ == "__main__":
    sys.exit(main())
