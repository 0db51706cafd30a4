"""Checkpoints: orbax for the train-state pytree, a JSON side-file for what describes the run.

Layout under a run folder::

    checkpoints/step_000120/        orbax checkpoint of {"state": ..., "hparams": ...}
    checkpoints/step_000120.json    config, hparams, env id, agent, seeds, update step

Restoring into the structure of a freshly initialised state continues the run bit for bit
(params, optimizer state, environment and buffer state, RNG keys and counters are all in it).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

_STEP_DIR = re.compile(r"^step_(\d+)$")


def _checkpointer() -> ocp.StandardCheckpointer:
    return ocp.StandardCheckpointer()


def save_checkpoint(
    directory: str | Path, step: int, state: Any, hparams: Any, metadata: dict[str, Any], keep: int = 1
) -> Path:
    """Save ``state`` and ``hparams`` as ``directory/step_<step>`` plus its JSON side-file.

    Older checkpoints beyond the newest ``keep`` are deleted only after the new one is
    complete, so an interrupted save never loses the last good checkpoint.

    Returns:
        The checkpoint path.
    """
    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{int(step):06d}"
    if path.exists():
        shutil.rmtree(path)
    ckpt = _checkpointer()
    ckpt.save(path, {"state": state, "hparams": hparams})
    ckpt.wait_until_finished()
    side = {**metadata, "update_step": int(step)}
    path.with_suffix(".json").write_text(json.dumps(side, indent=2, default=_json_default))
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
        old.with_suffix(".json").unlink(missing_ok=True)
    return path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory`` (orbax folder and side-file present), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and p.with_suffix(".json").exists():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON side-file of checkpoint ``path``."""
    return json.loads(Path(path).with_suffix(".json").read_text())


def restore_checkpoint(path: str | Path, state_like: Any, hparams_like: Any) -> tuple[Any, Any]:
    """Restore ``(state, hparams)`` with the structure, shapes and dtypes of the ``*_like``
    pytrees (concrete arrays or ``jax.ShapeDtypeStruct``s, e.g. from ``jax.eval_shape``).

    Raises:
        FileNotFoundError: if ``path`` is not a checkpoint.
    """
    path = Path(path).absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint at {path}")
    target = jax.tree.map(
        ocp.utils.to_shape_dtype_struct, {"state": state_like, "hparams": hparams_like}
    )
    # Restore inside an x64 scope: outside one, orbax canonicalises float64 leaves (ThreeBody's
    # physics state) to float32. The targets' explicit dtypes keep every other leaf as saved.
    with jax.enable_x64(True):
        restored = _checkpointer().restore(path, target)
    return restored["state"], restored["hparams"]


def _json_default(x: Any) -> Any:
    try:
        return x.tolist()
    except AttributeError:
        return str(x)


__all__ = [
    "latest_checkpoint",
    "list_checkpoints",
    "load_metadata",
    "restore_checkpoint",
    "save_checkpoint",
]
