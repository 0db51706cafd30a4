"""Opt-in experiment loggers fed by the runner between segments.

``accelrl-train ... --log tensorboard wandb`` adds them; in Python pass
``Runner(..., on_segment=MetricLoggers([...]))``. Both write every per-update metric of every
seed, at the environment step of that update:

* :class:`TensorBoardLogger`: event files under ``RUN_DIR/tensorboard/seed_<s>/`` (the light
  ``tensorboardX`` writer, ``pip install 'accelrl[tensorboard]'``); ``tensorboard --logdir
  RUN_DIR/tensorboard``.
* :class:`WandbLogger`: Weights & Biases in offline mode (``pip install 'accelrl[wandb]'``),
  one run per seed under ``RUN_DIR/wandb``; ``wandb sync`` uploads them later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

LOGGERS = ("tensorboard", "wandb")


def _rows(runner: Any, state: Any, seg: dict[str, np.ndarray]):
    """``(seed index, seed, env step, {metric: value})`` for every update of a segment."""
    n = next(iter(seg.values())).shape[1]
    for i, seed in enumerate(runner.seeds):
        for u in range(n):
            values = {k: float(v[i, u]) for k, v in seg.items()}
            yield i, seed, int(values.get("env_steps", 0)), values


class TensorBoardLogger:
    """TensorBoard event files, one folder per seed."""

    def __init__(self, run_dir: str | Path):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError(
                "--log tensorboard needs tensorboardX: pip install 'accelrl[tensorboard]'"
            ) from None
        self._writer_cls = SummaryWriter
        self.root = Path(run_dir) / "tensorboard"
        self._writers: dict[int, Any] = {}

    def __call__(self, runner: Any, state: Any, seg: dict[str, np.ndarray]) -> None:
        for _, seed, step, values in _rows(runner, state, seg):
            if seed not in self._writers:
                self._writers[seed] = self._writer_cls(str(self.root / f"seed_{seed}"))
            for name, value in values.items():
                if name != "env_steps" and math.isfinite(value):
                    self._writers[seed].add_scalar(name, value, step)
        for w in self._writers.values():
            w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()


class WandbLogger:
    """Weights & Biases runs in offline mode (``wandb sync`` uploads them)."""

    def __init__(self, run_dir: str | Path, config: dict[str, Any], project: str = "accelrl"):
        try:
            import wandb
        except ImportError:
            raise ImportError("--log wandb needs wandb: pip install 'accelrl[wandb]'") from None
        self._wandb = wandb
        self.dir = Path(run_dir) / "wandb"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.project = project
        self._runs: dict[int, Any] = {}

    def __call__(self, runner: Any, state: Any, seg: dict[str, np.ndarray]) -> None:
        for _, seed, step, values in _rows(runner, state, seg):
            if seed not in self._runs:
                self._runs[seed] = self._wandb.init(
                    project=self.project,
                    dir=str(self.dir),
                    mode="offline",
                    reinit="create_new",
                    name=f"{Path(self.dir).parent.name}-seed{seed}",
                    config={**self.config, "seed": seed},
                )
            finite = {k: v for k, v in values.items() if math.isfinite(v)}
            self._runs[seed].log(finite, step=step)

    def close(self) -> None:
        for run in self._runs.values():
            run.finish()


class MetricLoggers:
    """Several loggers as one ``on_segment`` callback; :meth:`close` at the end of a run."""

    def __init__(self, loggers: Sequence[Any]):
        self.loggers = list(loggers)

    def __call__(self, runner: Any, state: Any, seg: dict[str, np.ndarray]) -> None:
        for logger in self.loggers:
            logger(runner, state, seg)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


_PACKAGES = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}


def check_loggers(names: Sequence[str]) -> None:
    """Refuse unknown logger names and loggers whose package is not installed (before a run
    folder is touched).

    Raises:
        ValueError: an unknown name; ImportError: a missing package (naming the extra).
    """
    import importlib.util

    for name in names:
        if name not in _PACKAGES:
            raise ValueError(f"unknown logger {name!r}; choose from {', '.join(LOGGERS)}")
        module, extra = _PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"--log {name} needs {module}: pip install 'accelrl[{extra}]'")


def make_loggers(
    names: Sequence[str], run_dir: str | Path, config: dict[str, Any]
) -> MetricLoggers:
    """Loggers by name (:data:`LOGGERS`)."""
    made = []
    for name in names:
        if name == "tensorboard":
            made.append(TensorBoardLogger(run_dir))
        elif name == "wandb":
            made.append(WandbLogger(run_dir, config))
        else:
            raise ValueError(f"unknown logger {name!r}; choose from {', '.join(LOGGERS)}")
    return MetricLoggers(made)


__all__ = [
    "LOGGERS",
    "MetricLoggers",
    "check_loggers",
    "TensorBoardLogger",
    "WandbLogger",
    "make_loggers",
]
