"""``accelrl-teach``: train an agent with a task teacher (a curriculum) for several seeds.

Usage::

    accelrl-teach --env Pendulum-v1 --agent ppo --teacher alp_gmm --task_space pendulum_dynamics \\
        --seeds 0 1 2 --out runs/alp_gmm
    accelrl-teach --env ThreeBody-v0 --agent ppo --teacher random --task_space three_body_ic \\
        --out runs/tb_random --total_timesteps 200000 --mastered_every 2
    accelrl-teach --agent ppo --teacher riac --task_space pendulum_dynamics --help   # every field
    accelrl-teach --resume runs/alp_gmm

The teacher (``alp_gmm``, ``covar_gmm``, ``riac``, ``random``; settings as a JSON object in
``--teacher_kwargs``) chooses the task of every episode from the task space (a named box of
environment params, ``accelrl.curricula.registered_task_spaces()``); the student is the agent,
unchanged. ``--env`` may be left out: it must be the task space's environment.

The run folder is ``accelrl-train``'s (``config.json``, ``seed_<s>/metrics.{csv,json}``,
``learning_curve.png``, ``checkpoints/``, ``eval.json``: the same code writes it) plus:

* a ``mastered`` column in the metrics: the fraction of a fixed, seeded test set of
  ``--test_tasks`` tasks whose deterministic evaluation return exceeds the task space's
  mastery threshold, every ``--mastered_every`` segments and after the last (NaN between);
  ``mastered.png`` plots it; ``eval.json`` gets the final fraction per seed;
* ``seed_<s>/tasks.csv``: every task the teacher gave (episode, update, env step, one column
  per dimension, the episode's return);
* ``tasks.png``: heat maps of those tasks over two dimensions (``--heatmap_dims``, default the
  first two) in ``--heatmap_moments`` windows of training, pooled over seeds.

``config.json`` records the teacher (``reset_strategy``) and these settings (``curriculum``),
so ``accelrl-teach --resume DIR`` (or ``accelrl-train --resume DIR``) continues a run with its
teacher, its measurements and its task log.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Literal

from accelrl._catalog import AGENT_NAMES, TASK_SPACE_NAMES, TEACHER_NAMES
from accelrl.scripts._names import check_agent, check_env_id, check_options, check_task_space
from accelrl.scripts._names import check_teacher as check_teacher_name
from accelrl.scripts.train import UsageError, check_new_run, json_object

PROG = "accelrl-teach"
TASKS_FILE = "tasks.csv"


@dataclasses.dataclass(frozen=True)
class TeachOptions:
    """What to run and where, the teacher and the measurements (the agent's own fields follow)."""

    agent: str
    """Agent name (a registered agent, e.g. ppo or sac)."""
    teacher: str
    """Task teacher: alp_gmm, covar_gmm, riac or random."""
    task_space: str
    """Task space (a named box of env params), e.g. pendulum_dynamics or three_body_ic."""
    env: str | None = None
    """Environment id; must be the task space's (default: the task space's)."""
    out: str | None = None
    """Run folder to write (must not hold a previous run; see --resume)."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds, all in one vmapped program."""
    teacher_kwargs: str = "{}"
    """JSON object of teacher settings, e.g. '{"fit_rate": 150, "refit_every": 16}'."""
    mastered_every: int = 1
    """Measure the fraction mastered every this many segments (and after the last)."""
    test_tasks: int = 100
    """Size of the fixed test set (uniform draws from the box; the literature's 100)."""
    test_seed: int = 0
    """Seed of the test set."""
    episodes_per_task: int = 1
    """Evaluation episodes per test task (mastered: their mean return above the threshold)."""
    heatmap_dims: tuple[str, ...] = ()
    """Two task dimensions (names or indices) of the heat map (default: the first two)."""
    heatmap_moments: int = 4
    """Windows of training shown in the heat map."""
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


def _fail(msg: str, code: int = 2) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return code


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    """The names and ``--resume``/``--help`` only (before JAX is imported)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env")
    pre.add_argument("--agent")
    pre.add_argument("--teacher")
    pre.add_argument("--task_space", "--task-space")
    pre.add_argument("--resume")
    pre.add_argument("-h", "--help", action="store_true")
    return pre.parse_known_args(argv)[0]


def _general_help() -> str:
    return (
        f"usage: {PROG} --agent NAME --teacher NAME --task_space NAME --out RUN_DIR\n"
        f"       {' ' * len(PROG)} [--env ID] [--seeds S ...] [--teacher_kwargs JSON] "
        "[FIELD OPTIONS]\n"
        f"       {PROG} --resume RUN_DIR\n\n"
        "Train an accelrl agent with a task teacher (a curriculum) for several seeds in one\n"
        "vmapped program. The teacher picks each episode's task (a point in the task space, a\n"
        "box of environment params) and learns from the returns. The run folder is\n"
        "accelrl-train's plus the fraction of a fixed test set mastered ('mastered' column,\n"
        "mastered.png), the teacher's tasks (seed_<s>/tasks.csv) and their heat map (tasks.png).\n\n"
        f"teachers: {', '.join(TEACHER_NAMES)}\n"
        f"task spaces: {', '.join(TASK_SPACE_NAMES)} "
        "(pendulum_dynamics: Pendulum-v1; three_body_ic: ThreeBody-v0)\n"
        f"agents: {', '.join(AGENT_NAMES)}\n"
        f"run `{PROG} --agent NAME --teacher NAME --task_space NAME --help` for every option\n"
        "with the defaults for that environment; docs/curricula.md describes the teachers.\n"
    )


def _heatmap_dims(dims: tuple[str, ...], names: tuple[str, ...]) -> list[int]:
    """Indices of the two heat-map dimensions, given by name or index (default: 0 and 1)."""
    if len(names) < 2:
        raise UsageError("the heat map needs a task space of at least two dimensions")
    if not dims:
        return [0, 1]
    if len(dims) != 2:
        raise UsageError(f"--heatmap_dims takes two dimensions, got {len(dims)}")
    out = []
    for d in dims:
        if d in names:
            out.append(names.index(d))
        elif d.isdigit() and int(d) < len(names):
            out.append(int(d))
        else:
            import difflib

            close = difflib.get_close_matches(d, names, n=2, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UsageError(
                f"unknown task dimension {d!r} (--heatmap_dims).{hint} "
                f"Dimensions: {', '.join(names)} (or 0..{len(names) - 1})"
            )
    if out[0] == out[1]:
        raise UsageError(f"--heatmap_dims needs two different dimensions, got {list(dims)}")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = _pre_parse(argv)
    if pre.resume:
        from accelrl.scripts.train import _resume

        return _resume(argv)
    missing = [f"--{n}" for n in ("agent", "teacher", "task_space") if getattr(pre, n) is None]
    if missing:
        if pre.help:
            print(_general_help())
            return 0
        return _fail(f"missing {', '.join(missing)} (or use --resume RUN_DIR); see {PROG} --help")
    # FAST CHECKS: names before JAX is imported
    run_options = (*(f.name for f in dataclasses.fields(TeachOptions)), "help", "h")
    for msg in (
        check_agent(pre.agent),
        check_teacher_name(pre.teacher),
        check_task_space(pre.task_space),
        check_env_id(pre.env) if pre.env is not None else None,
        check_options(pre.agent, argv, run_options),
    ):
        if msg:
            return _fail(msg)
    try:
        from accelrl.agents import agent_spec, build
        from accelrl.agents.compile_cache import enable_compilation_cache
        from accelrl.agents.configs import config_to_dict, hparams_to_dict
        from accelrl.curricula import task_space
        from accelrl.scripts.train import _parse_fields, _tyro_defaults

        space = task_space(pre.task_space)
        if pre.env is not None and pre.env != space.env_id:
            raise UsageError(
                f"task space {space.name!r} is over {space.env_id}, not --env {pre.env} "
                f"(leave --env out or give {space.env_id})"
            )
        enable_compilation_cache()
        spec = agent_spec(pre.agent)
        env_kwargs = dict(space.env_kwargs)
        _, config0, hparams0 = build(space.env_id, pre.agent, None, env_kwargs)  # the defaults
        run0 = TeachOptions(
            agent=pre.agent, teacher=pre.teacher, task_space=space.name, env=space.env_id
        )
        description = (
            f"Train {pre.agent} on {space.env_id} with the {pre.teacher} teacher over the task "
            f"space {space.name} ({', '.join(space.names)}), several seeds in one program."
        )
        try:
            args = _parse_fields(
                argv, run0, spec, config0, _tyro_defaults(hparams0), prog=PROG,
                description=description,
            )  # fmt: skip
        except SystemExit as e:  # tyro printed the usage error or the help
            return int(e.code or 0)
        run = args.run
        out, seeds = check_new_run(run)
        for name in ("mastered_every", "test_tasks", "episodes_per_task", "heatmap_moments"):
            if getattr(run, name) < 1:
                raise UsageError(f"--{name} must be >= 1, got {getattr(run, name)}")
        dims = _heatmap_dims(run.heatmap_dims, space.names)
        settings = json_object(run.teacher_kwargs, "--teacher_kwargs", '{"fit_rate": 150}')
        from accelrl.scripts._runs import teacher_env

        try:
            venv, params, record = teacher_env(
                pre.teacher, space.name, args.config.num_envs, settings
            )
        except TypeError as e:  # a setting the teacher does not take
            raise UsageError(f"--teacher_kwargs: {e}") from None
        overrides = {**config_to_dict(args.config), **hparams_to_dict(args.hparams)}
        agent, config, hparams = build(
            venv, pre.agent, overrides, env_params=params, env_id=space.env_id
        )
    except (ValueError, TypeError, FileNotFoundError) as e:  # unknown names, bad values
        return _fail(str(e))
    from accelrl.agents.build import run_config, write_run_config
    from accelrl.scripts.train import _train

    meta = run_config(space.env_id, pre.agent, seeds, config, hparams, env_kwargs, record)
    meta["run"] = {
        "segments": run.segments,
        "checkpoint_every": run.checkpoint_every,
        "checkpoint_seconds": run.checkpoint_seconds,
    }
    meta["curriculum"] = {
        "teacher": pre.teacher,
        "task_space": space.name,
        "mastered_every": run.mastered_every,
        "test_tasks": run.test_tasks,
        "test_seed": run.test_seed,
        "episodes_per_task": run.episodes_per_task,
        "heatmap_dims": dims,
        "heatmap_moments": run.heatmap_moments,
    }
    write_run_config(out, meta)
    return _train(out, meta, agent, config, hparams, run.progress, run.log, None, resume=False)


# -- the hooks and the report of a curriculum run ---------------------------------------------


class TaskLog:
    """``on_segment`` hook: every task the teacher gave, per member, into ``<folder>/tasks.csv``.

    After each segment it reads the teacher's episode history (a ring in the batched env
    state) and appends the episodes that finished since the last segment, each with the update
    in which it finished (from the ``teacher_episodes`` metric). A segment with more episodes
    than the ring holds loses its oldest ones (the ring's capacity is the teacher's
    ``history``). On a resumed run, rows logged after the checkpoint it continues from are
    dropped first (a killed run may have logged past it).

    Args:
        out: the run folder.
        folders: metrics folder of each member (``Runner.folders``).
        names: the task dimensions' names.
        steps_per_update: environment steps per update and member.
        resume: read the existing files first.
    """

    def __init__(
        self,
        out: Path,
        folders: list[str],
        names: tuple[str, ...],
        steps_per_update: int,
        resume: bool = False,
    ):
        import numpy as np

        self.out, self.folders, self.names = Path(out), list(folders), tuple(names)
        self.steps_per_update = int(steps_per_update)
        width = 3 + len(self.names) + 1
        self.rows = [np.zeros((0, width)) for _ in self.folders]
        self._fresh = True
        if resume:
            self.rows = [read_tasks(self.out / f / TASKS_FILE, width) for f in self.folders]

    @property
    def header(self) -> list[str]:
        return ["episode", "update", "env_steps", *self.names, "return"]

    def __call__(self, runner: Any, state: Any, seg: dict[str, Any]) -> None:
        import jax
        import numpy as np

        history = jax.device_get(runner.agent.env.strategy_state(state.env_state).history)
        counts = np.asarray(seg["teacher_episodes"]).astype(np.int64)  # [M, n] after each update
        done = int(np.asarray(state.update_step).reshape(-1)[0])
        start = done - counts.shape[1]
        cap = history.returns.shape[-1]
        for m in range(len(self.folders)):
            rows = self.rows[m]
            if self._fresh:  # a resumed run continues from update `start`
                rows = rows[rows[:, 1] <= start]
            count = int(history.count[m])
            first = max(int(rows[-1, 0]) + 1 if len(rows) else 0, count - cap)
            idx = np.arange(first, count)
            if idx.size:
                update = start + np.searchsorted(counts[m], idx, side="right") + 1
                slots = idx % cap
                new = np.column_stack(
                    [
                        idx,
                        update,
                        update * self.steps_per_update,
                        history.tasks[m][slots],
                        history.returns[m][slots],
                    ]
                )
                rows = np.concatenate([rows, new])
            self.rows[m] = rows
            self._write(m)
        self._fresh = False

    def _write(self, m: int) -> None:
        import numpy as np

        path = self.out / self.folders[m] / TASKS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fmt = ["%d", "%d", "%d", *["%.6g"] * len(self.names), "%.6g"]
        np.savetxt(tmp, self.rows[m], fmt=fmt, delimiter=",", header=",".join(self.header),
                   comments="")  # fmt: skip
        tmp.replace(path)


def read_tasks(path: Path, width: int | None = None):
    """The rows ``f64[N, 3 + d + 1]`` (episode, update, env_steps, task..., return) of a
    ``tasks.csv`` (empty when there is none)."""
    import numpy as np

    if not Path(path).is_file():
        return np.zeros((0, width or 0))
    rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return rows if rows.size else np.zeros((0, width or rows.shape[1]))


def plot_mastered(path: Path, metrics: dict[str, Any], title: str) -> None:
    """Fraction mastered at its measurements (mean over seeds, 95% bootstrap band, each seed
    faint) against environment steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from accelrl.agents.reporting import bootstrap_ci

    values = np.asarray(metrics["mastered"], np.float64)
    cols = np.where(np.isfinite(values).all(axis=0))[0]
    steps = np.asarray(metrics["env_steps"][0])[cols]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    if cols.size:
        mean, low, high = bootstrap_ci(values[:, cols])
        for row in values[:, cols]:
            ax.plot(steps, row, lw=0.7, alpha=0.35, color="C0")
        ax.plot(steps, mean, "o-", lw=1.5, ms=3, color="C0", label=f"mean of {len(values)} seeds")
        if len(values) > 1:
            ax.fill_between(steps, low, high, alpha=0.25, color="C0", label="95% bootstrap CI")
        ax.legend(fontsize=8, loc="best")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("fraction of test tasks mastered")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_task_heatmap(
    path: Path,
    rows: list[Any],
    space: Any,
    dims: list[int],
    moments: int,
    total_updates: int,
    title: str,
    bins: int = 24,
) -> None:
    """Heat maps of the tasks the teacher gave over dimensions ``dims``, one panel per window
    of ``total_updates / moments`` updates, pooled over the members' ``rows`` (as
    :func:`read_tasks`); each panel's colours are shares of that window's tasks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in rows if len(r)]
    allrows = np.concatenate(rows) if rows else np.zeros((0, 4 + space.dim))
    edges = np.linspace(0, max(total_updates, 1), moments + 1)
    (i, j), lo, hi = dims, space.low, space.high
    fig, axes = plt.subplots(1, moments, figsize=(2.6 * moments + 0.8, 2.9), dpi=90, squeeze=False)
    image = None
    for w, ax in enumerate(axes[0]):
        inside = (allrows[:, 1] > edges[w]) & (allrows[:, 1] <= edges[w + 1])
        pts = allrows[inside][:, 3:-1]
        hist, _, _ = np.histogram2d(
            pts[:, i], pts[:, j], bins=bins, range=[[lo[i], hi[i]], [lo[j], hi[j]]]
        )
        share = hist.T / max(len(pts), 1)
        image = ax.imshow(share, origin="lower", aspect="auto", cmap="viridis",
                          extent=(lo[i], hi[i], lo[j], hi[j]))  # fmt: skip
        ax.set_title(f"updates {int(edges[w]) + 1}-{int(edges[w + 1])}\n{len(pts)} tasks",
                     fontsize=8)  # fmt: skip
        ax.set_xlabel(space.names[i], fontsize=8)
        if w == 0:
            ax.set_ylabel(space.names[j], fontsize=8)
        ax.tick_params(labelsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), fraction=0.03, pad=0.02, label="share of tasks")
    fig.suptitle(title, fontsize=9, y=1.04)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def curriculum_extras(meta: dict[str, Any], out: Path, resume: bool = False):
    """``(hooks, report)`` of a curriculum run, from its ``config.json`` (``meta``).

    ``hooks``: the ``mastered`` measurement (:func:`accelrl.curricula.mastered_hook`) and the
    :class:`TaskLog`, as ``on_segment`` callbacks; ``report(result) -> dict``: writes
    ``mastered.png`` and ``tasks.png`` and returns the final fraction mastered per seed for
    ``eval.json``. Built lazily: the runner is known only once the first hook runs.
    """
    import numpy as np

    from accelrl.curricula import mastered_hook, task_space

    cur = meta["curriculum"]
    space = task_space(cur["task_space"])
    mastered = mastered_hook(
        space,
        every=int(cur["mastered_every"]),
        n=int(cur["test_tasks"]),
        seed=int(cur["test_seed"]),
        episodes_per_task=int(cur["episodes_per_task"]),
    )
    log: list[TaskLog] = []

    def tasks(runner: Any, state: Any, seg: dict[str, Any]) -> None:
        if not log:
            log.append(
                TaskLog(out, runner.folders, space.names, runner.agent.steps_per_update, resume)
            )
        log[0](runner, state, seg)

    def report(result: Any) -> dict[str, Any]:
        teacher, name = cur["teacher"], f"{meta['agent'].upper()} on {space.name}"
        summary: dict[str, Any] = {}
        if "mastered" in result.metrics:
            plot_mastered(out / "mastered.png", result.metrics, f"{name}, {teacher} teacher")
            last = np.asarray(result.metrics["mastered"])[:, -1]
            summary = {"mastered": [float(x) for x in last],
                       "mastered_mean": float(np.mean(last))}  # fmt: skip
        folders = [f"seed_{s}" for s in meta["seeds"]]
        width = 4 + space.dim
        rows = [read_tasks(out / f / TASKS_FILE, width) for f in folders]
        updates = int(np.asarray(result.state.update_step).reshape(-1)[0])
        plot_task_heatmap(
            out / "tasks.png",
            rows,
            space,
            list(cur["heatmap_dims"]),
            int(cur["heatmap_moments"]),
            updates,
            f"tasks given by {teacher} ({name}, {len(folders)} seed(s) pooled)",
        )
        return summary

    return [mastered, tasks], report


if __name__ == "__main__":
    sys.exit(main())
