"""The host-side measurements of a curriculum run: the fraction mastered, the teacher's task log,
and their plots.

A run with a teacher (``accelrl-train --teacher ...``, ``accelrl-teach``) gets two
``Runner.on_segment`` hooks and a report, built here from its settings (:class:`Measurements`):

* ``mastered`` (:func:`accelrl.curricula.mastered_hook`): the fraction of a fixed, seeded test set
  of tasks mastered, every ``mastered_every`` segments and after the last (NaN between);
* :class:`TaskLog`: every task the teacher gave, per member, in ``<member>/tasks.csv``;
* the report: ``mastered.png``, ``tasks.png`` (heat maps of the tasks over two dimensions in
  windows of training) and the final fraction per seed for ``eval.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

TASKS_FILE = "tasks.csv"


@dataclasses.dataclass(frozen=True)
class Measurements:
    """What a curriculum run measures besides training (a run spec's ``curriculum``)."""

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

    def __post_init__(self):
        for name in ("mastered_every", "test_tasks", "episodes_per_task", "heatmap_moments"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.test_seed < 0:
            raise ValueError(f"test_seed must be >= 0, got {self.test_seed}")


def heatmap_dims(dims: tuple[str, ...], names: tuple[str, ...]) -> list[int]:
    """Indices of the two heat-map dimensions, given by name or index (default: 0 and 1).

    Raises:
        ValueError: not two distinct known dimensions (close matches named).
    """
    if len(names) < 2:
        raise ValueError("the heat map needs a task space of at least two dimensions")
    if not dims:
        return [0, 1]
    if len(dims) != 2:
        raise ValueError(f"heatmap_dims takes two dimensions, got {len(dims)}")
    out = []
    for d in map(str, dims):
        if d in names:
            out.append(names.index(d))
        elif d.isdigit() and int(d) < len(names):
            out.append(int(d))
        else:
            import difflib

            close = difflib.get_close_matches(d, names, n=2, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown task dimension {d!r} (heatmap_dims).{hint} "
                f"Dimensions: {', '.join(names)} (or 0..{len(names) - 1})"
            )
    if out[0] == out[1]:
        raise ValueError(f"heatmap_dims needs two different dimensions, got {list(dims)}")
    return out


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
        if resume:  # continuing from a checkpoint: every member's log must be there
            check_task_logs(self.out, self.folders, self.names)
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


def check_task_logs(out: str | Path, folders: list[str], names: tuple[str, ...]) -> None:
    """Refuse to continue a run whose task logs are missing or damaged (a resumed run appends to
    them; an emptied file would be refilled with wrong update numbers).

    Raises:
        ValueError: naming the first bad file.
    """
    header = ",".join(["episode", "update", "env_steps", *names, "return"])
    for f in folders:
        path = Path(out) / f / TASKS_FILE
        first = path.read_text().split("\n", 1)[0] if path.is_file() else ""
        if first != header:
            raise ValueError(
                f"{path} is missing or damaged (no header line); the task log cannot be "
                "continued: restore the file or train a new run"
            )


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


def curriculum_extras(
    space: Any,
    teacher: str,
    measurements: Measurements,
    agent: str,
    out: str | Path,
    resume: bool = False,
    folders: list[str] | None = None,
):
    """``(hooks, report)`` of a curriculum run.

    Args:
        space: the task space (:class:`~accelrl.curricula.tasks.TaskSpace`).
        teacher: the teacher's name (plot titles).
        measurements: what to measure (:class:`Measurements`).
        agent: the agent's name (plot titles).
        out: the run folder.
        resume: continue the task logs of a resumed run.
        folders: the members' folders, checked at once on a resume (default: checked when the
            first segment ends).

    Returns:
        ``hooks``: the ``mastered`` measurement (:func:`accelrl.curricula.mastered_hook`) and
        the :class:`TaskLog`, as ``on_segment`` callbacks; ``report(result) -> dict``: writes
        ``mastered.png`` and ``tasks.png`` and returns the final fraction mastered per member
        for ``eval.json``. Built lazily: the runner is known only once the first hook runs.
    """
    import numpy as np

    from accelrl.curricula.evaluation import mastered_hook

    out = Path(out)
    dims = heatmap_dims(measurements.heatmap_dims, space.names)
    if resume and folders is not None:
        check_task_logs(out, folders, space.names)
    mastered = mastered_hook(
        space,
        every=measurements.mastered_every,
        n=measurements.test_tasks,
        seed=measurements.test_seed,
        episodes_per_task=measurements.episodes_per_task,
    )
    log: list[TaskLog] = []

    def tasks(runner: Any, state: Any, seg: dict[str, Any]) -> None:
        if not log:
            log.append(
                TaskLog(out, runner.folders, space.names, runner.agent.steps_per_update, resume)
            )
        log[0](runner, state, seg)

    def report(result: Any) -> dict[str, Any]:
        name = f"{agent.upper()} on {space.name}"
        summary: dict[str, Any] = {}
        if "mastered" in result.metrics:
            plot_mastered(out / "mastered.png", result.metrics, f"{name}, {teacher} teacher")
            last = np.asarray(result.metrics["mastered"])[:, -1]
            summary = {"mastered": [float(x) for x in last],
                       "mastered_mean": float(np.mean(last))}  # fmt: skip
        folders = log[0].folders if log else []
        width = 4 + space.dim
        rows = [read_tasks(out / f / TASKS_FILE, width) for f in folders]
        updates = int(np.asarray(result.state.update_step).reshape(-1)[0])
        plot_task_heatmap(
            out / "tasks.png",
            rows,
            space,
            dims,
            measurements.heatmap_moments,
            updates,
            f"tasks given by {teacher} ({name}, {len(folders)} seed(s) pooled)",
        )
        return summary

    return [mastered, tasks], report
