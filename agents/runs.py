"""Train a run spec into a run folder, and continue one: the one path every CLI, experiment and
tuner shares.

>>> outcome = train_run(RunSpec(env="CartPole-v1", agent="ppo", seeds=(0, 1)), "runs/cp")
>>> outcome.summary["mean_return"]                     # also in runs/cp/eval.json
>>> resume_run("runs/cp")                             # after a kill: continue from a checkpoint

A run folder holds ``config.json`` (the resolved spec), ``seed_<s>/metrics.{csv,json}`` (or
``member_<i>/`` for a grid), ``learning_curve.png``, ``checkpoints/step_<n>`` (orbax),
``eval.json`` (deterministic evaluation on keys training never used, naming the checkpoint it
evaluated), and what the reset strategy adds (a teacher: ``tasks.csv``, ``mastered.png``,
``tasks.png``). A folder has one writer at a time (:class:`accelrl.agents.folders.FolderLock`),
and nothing is written into it before every check passed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from accelrl.agents.build import BuiltRun, build_run, read_spec, write_spec
from accelrl.agents.folders import FolderLock, check_new_folder
from accelrl.agents.spec import RunSpec

EVAL_FILE = "eval.json"


class RunOutcome(NamedTuple):
    """A trained run: ``summary`` (what ``eval.json`` holds), ``result`` (the runner's
    :class:`~accelrl.agents.runner.RunResult`), ``built`` (agent, config, hparams, spec) and
    the run folder ``out`` (absolute)."""

    summary: dict[str, Any]
    result: Any
    built: BuiltRun
    out: Path


class ResumeError(ValueError):
    """A resume that cannot continue the folder as asked (changed settings, not a run)."""


def train_run(
    spec: RunSpec,
    out: str | Path,
    *,
    progress: bool = True,
    hooks: Sequence[Callable[..., Any]] = (),
    eval_episodes: int | None = None,
) -> RunOutcome:
    """Train ``spec`` into the new run folder ``out``.

    Args:
        spec: the run.
        out: a folder that does not hold a run yet (created).
        progress: show a progress bar.
        hooks: extra ``Runner.on_segment`` callbacks (after the strategy's own).
        eval_episodes: evaluation episodes per member (default: the config's).

    Raises:
        ValueError and the errors of :func:`build_run`: before anything is written;
        FolderBusyError: another process holds the folder;
        NaNError: a loss became non-finite (the last good checkpoint is kept).
    """
    out = Path(out)
    primary = _primary()
    if primary:
        check_new_folder(out, "run")
    built = build_run(spec)  # every check before anything is written
    import jax

    recorded = {"jax_version": jax.__version__, "backend": jax.default_backend()}
    built = built._replace(spec=built.spec.replace(recorded={**built.spec.recorded, **recorded}))
    loggers = _loggers(built.spec, out)
    with _owned(out, primary):
        if primary:
            check_new_folder(out, "run")  # another process may have started it meanwhile
            write_spec(out, built.spec)
        return _train(built, out, progress, hooks, eval_episodes, loggers, resume=False)


def _primary() -> bool:
    """Whether this process writes the run folder's own files (under ``jax.distributed``
    process 0 does; every process writes its shards of the checkpoints)."""
    import jax

    return jax.process_index() == 0


def _owned(out: Path, primary: bool) -> Any:
    """The folder lock, taken by the writing process only."""
    import contextlib

    return FolderLock(out, "run") if primary else contextlib.nullcontext()


def resume_run(
    out: str | Path,
    *,
    progress: bool = True,
    log: Sequence[str] | None = None,
    eval_episodes: int | None = None,
    extend_timesteps: int | None = None,
    hooks: Sequence[Callable[..., Any]] = (),
) -> RunOutcome:
    """Continue the run folder ``out`` from its newest usable checkpoint (from the start when
    it was killed before its first checkpoint) and finish it.

    Args:
        out: the run folder.
        progress: show a progress bar.
        log: extra metric loggers for the rest of the run (default: the run's).
        eval_episodes: evaluation episodes per member (default: the config's).
        extend_timesteps: raise the run's ``total_timesteps`` to this (a longer run; the
            only change of what is trained a resume accepts; recorded in ``config.json``). An
            off-policy run keeps its replay buffer, whose capacity was capped at the old
            length: ``config.json`` records that capacity as its ``buffer_size``.
        hooks: extra ``Runner.on_segment`` callbacks.

    Raises:
        FileNotFoundError, ValueError: not a run folder, or one that cannot be rebuilt;
        ResumeError: an ``extend_timesteps`` below the run's own;
        FolderBusyError: another process holds the folder;
        CheckpointError: checkpoints exist but none can be read.
    """
    out = Path(out)
    spec = read_spec(out)
    if log is not None:
        spec = spec.replace(run=dataclasses.replace(spec.run, log=tuple(log)))
    if extend_timesteps is not None:
        current = int(spec.config.get("total_timesteps", 0))
        if extend_timesteps < current:
            raise ResumeError(
                f"--total_timesteps {extend_timesteps} is below the run's {current}; a resume "
                "can only extend a run"
            )
        config = {**spec.config, "total_timesteps": int(extend_timesteps)}
        capacity = getattr(build_run(spec).config, "buffer_capacity", None)
        if capacity is not None and "buffer_size" in config:
            # a replay buffer is allocated for min(buffer_size, total_timesteps): the longer
            # run keeps the one its checkpoints hold (recorded as its buffer_size)
            config["buffer_size"] = min(int(config["buffer_size"]), int(capacity))
        spec = spec.replace(config=config)
    built = build_run(spec)
    loggers = _loggers(built.spec, out)
    primary = _primary()
    with _owned(out, primary):
        changed = primary and built.spec != read_spec(out)
        # the longer run's spec is written once its checkpoint restored into it (a refused
        # resume leaves config.json as it was)
        restored = (lambda: write_spec(out, built.spec)) if changed else None
        return _train(built, out, progress, hooks, eval_episodes, loggers, resume=True,
                      restored=restored)  # fmt: skip


def _loggers(spec: RunSpec, out: Path) -> Any:
    """The run's metric loggers, checked before the folder is touched (an uninstalled
    package is refused here, not after ``config.json`` was written)."""
    from accelrl.agents.loggers import check_loggers

    check_loggers(spec.run.log)
    return lambda: _make_loggers(spec, out)


def _make_loggers(spec: RunSpec, out: Path) -> Any:
    from accelrl.agents.loggers import make_loggers

    return make_loggers(spec.run.log, out, spec.to_dict())


def _train(
    built: BuiltRun,
    out: Path,
    progress: bool,
    hooks: Sequence[Callable[..., Any]],
    eval_episodes: int | None,
    loggers: Callable[[], Any],
    *,
    resume: bool,
    restored: Callable[[], Any] | None = None,
) -> RunOutcome:
    from accelrl.agents.checkpoint import latest_checkpoint
    from accelrl.agents.evaluation import evaluate_seeds
    from accelrl.agents.reporting import plot_learning_curve, write_json_atomic
    from accelrl.agents.runner import Runner
    from accelrl.envs.strategies import strategy

    spec, agent = built.spec, built.agent
    out_abs = out.absolute()
    # A run killed before its first checkpoint starts over from its config.json.
    restore = resume and latest_checkpoint(out_abs / "checkpoints") is not None
    entry = strategy(spec.reset_strategy.name)
    extra_hooks, report = [], None
    if entry.extras is not None:
        extra_hooks, report = entry.extras(
            entry.settings(spec.reset_strategy.settings), spec, out_abs, restore
        )
    metric_loggers = loggers()
    all_hooks = [*extra_hooks, *hooks]
    if metric_loggers.loggers:
        all_hooks.append(metric_loggers)
    runner = Runner(
        agent,
        list(spec.seeds),
        built.hparams,
        out_dir=out_abs,
        metadata=spec.to_dict(),
        segments=spec.run.segments,
        checkpoint_every=spec.run.checkpoint_every,
        checkpoint_seconds=spec.run.checkpoint_seconds,
        progress=progress,
        on_segment=chain_hooks(all_hooks) if all_hooks else None,
        data_parallel=spec.run.data_parallel,
    )
    try:
        state = runner.restore()[0] if restore else None
        if restored is not None:
            restored()
        result = runner.train(state)
    finally:
        metric_loggers.close()
    # REPORT: curve across members, evaluation on unseen keys (one writer)
    primary = _primary()
    if primary:
        plot_learning_curve(
            out_abs / "learning_curve.png", result.metrics, f"{spec.agent.upper()} on {spec.env}"
        )
    episodes = eval_episodes or built.config.eval_episodes
    summary = evaluate_seeds(agent, result.state, runner.seeds, episodes, deterministic=True)
    summary["train_seconds"] = round(result.train_seconds, 2)
    if report is not None:
        summary.update(report(result))
    summary["checkpoint"] = checkpoint_name(result.checkpoint, out_abs)
    if primary:
        write_json_atomic(out_abs / EVAL_FILE, summary)
    return RunOutcome(summary, result, built, out_abs)


def chain_hooks(hooks: Sequence[Callable[..., Any]]) -> Callable[..., Any]:
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


def checkpoint_name(path: str | Path | None, run_dir: str | Path) -> str | None:
    """The checkpoint an ``eval.json`` names: its path relative to the run folder (``None``
    without one; the path as given when it lies outside the folder)."""
    if path is None:
        return None
    try:
        return str(Path(path).absolute().relative_to(Path(run_dir).absolute()))
    except ValueError:
        return str(path)


def read_eval(out: str | Path) -> dict[str, Any]:
    """A run folder's ``eval.json``."""
    return json.loads((Path(out) / EVAL_FILE).read_text())


__all__ = [
    "EVAL_FILE",
    "ResumeError",
    "RunOutcome",
    "chain_hooks",
    "checkpoint_name",
    "read_eval",
    "resume_run",
    "train_run",
]
