"""Checkpoints: orbax for the train-state pytree, a JSON side-file for what describes the run.

Layout under a run folder::

    checkpoints/step_000120/        orbax checkpoint of {"state": ..., "hparams": ...}
    checkpoints/step_000120.json    config, hparams, env id, agent, seeds, update step

Restoring into the structure of a freshly initialised state continues the run bit for bit
(params, optimizer state, environment and buffer state, RNG keys and counters are all in it).

A checkpoint counts only once its side-file exists, and the side-file is written (atomically)
after orbax has committed the state, so a process killed at any moment leaves the previous
checkpoints intact; the runner keeps two and falls back to the older one when the newest cannot
be read (:class:`CheckpointError`).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be restored (truncated or damaged files); one line."""


def _checkpointer():
    import orbax.checkpoint as ocp  # ~1 s to import: only when a checkpoint is written or read

    return ocp.StandardCheckpointer()


def save_checkpoint(
    directory: str | Path,
    step: int,
    state: Any,
    hparams: Any,
    metadata: dict[str, Any],
    keep: int = 1,
) -> Path:
    """Save ``state`` and ``hparams`` as ``directory/step_<step>`` plus its JSON side-file.

    Older checkpoints beyond the newest ``keep`` are deleted only after the new one is
    complete, so an interrupted save never loses the last good checkpoint.

    Returns:
        The checkpoint path.
    """
    directory = Path(directory).absolute()
    path = directory / f"step_{int(step):06d}"
    side_path = path.with_suffix(".json")
    # Under jax.distributed every process calls this with its shards (orbax writes them
    # together); files around the orbax folder are process 0's, between barriers.
    primary = jax.process_index() == 0
    if primary:
        directory.mkdir(parents=True, exist_ok=True)
        side_path.unlink(missing_ok=True)  # first: an unfinished rewrite is never complete
        if path.exists():
            shutil.rmtree(path)
    _barrier(f"accelrl_checkpoint_prepare_{step}")
    ckpt = _checkpointer()
    ckpt.save(path, _fill_empty({"state": state, "hparams": hparams}))
    ckpt.wait_until_finished()
    if primary:
        side = {**metadata, "update_step": int(step)}
        tmp = side_path.with_name(f".{side_path.name}.tmp")
        tmp.write_text(json.dumps(side, indent=2, default=_json_default))
        tmp.replace(side_path)
        for old in list_checkpoints(directory)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
            old.with_suffix(".json").unlink(missing_ok=True)
    _barrier(f"accelrl_checkpoint_done_{step}")
    return path


def _barrier(name: str) -> None:
    """Wait for every process of a ``jax.distributed`` run (a no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


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
    """The JSON side-file of checkpoint ``path``.

    Raises:
        CheckpointError: a side-file that is not valid JSON.
    """
    try:
        return json.loads(Path(path).with_suffix(".json").read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"damaged side-file {Path(path).with_suffix('.json').name}: {e}"
        ) from None


def restore_checkpoint(path: str | Path, state_like: Any, hparams_like: Any) -> tuple[Any, Any]:
    """Restore ``(state, hparams)`` with the structure, shapes and dtypes of the ``*_like``
    pytrees (concrete arrays or ``jax.ShapeDtypeStruct``s, e.g. from ``jax.eval_shape``).

    Raises:
        FileNotFoundError: if ``path`` is not a checkpoint.
        CheckpointError: files that orbax cannot read (truncated, damaged metadata), with the
            cause in one line.
    """
    path = Path(path).absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint at {path}")
    import orbax.checkpoint as ocp

    like = jax.tree.map(
        ocp.utils.to_shape_dtype_struct, {"state": state_like, "hparams": hparams_like}
    )
    target = _fill_empty(like)
    # Restore inside an x64 scope: outside one, orbax canonicalises float64 leaves (ThreeBody's
    # physics state) to float32. The targets' explicit dtypes keep every other leaf as saved.
    try:
        with jax.enable_x64(True), _quiet_orbax():
            restored = _checkpointer().restore(path, target)
    except Exception as e:  # orbax raises many types for damaged files; report one line
        cause = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise CheckpointError(f"cannot restore {path.name}: {type(e).__name__}: {cause}") from None
    restored = jax.tree.map(
        lambda x, ref: jnp.zeros(ref.shape, ref.dtype) if _is_empty(ref) else x, restored, like
    )
    return restored["state"], restored["hparams"]


def _is_empty(x: Any) -> bool:
    return 0 in tuple(jnp.shape(x))


def _fill_empty(tree: Any) -> Any:
    """``tree`` with every zero-size leaf (MPE's ``goals`` of scenarios without goals) replaced
    by a one-element stand-in of its dtype: orbax refuses zero-size arrays; restoring maps the
    stand-ins back to the target's empty shapes."""

    def fill(x: Any) -> Any:
        if not _is_empty(x):
            return x
        if isinstance(x, jax.ShapeDtypeStruct):
            return jax.ShapeDtypeStruct((1,), x.dtype)
        return jnp.zeros((1,), x.dtype)

    return jax.tree.map(fill, tree)


class _quiet_orbax:
    """Silence orbax's and absl's error logging while restoring (the caller reports one line)."""

    def __enter__(self):
        import logging

        self._loggers = [logging.getLogger(n) for n in ("absl", "orbax", "jax._src.distributed")]
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.CRITICAL)
        return self

    def __exit__(self, *exc):
        for lg, level in zip(self._loggers, self._levels, strict=True):
            lg.setLevel(level)
        return False


def _json_default(x: Any) -> Any:
    try:
        return x.tolist()
    except AttributeError:
        return str(x)


__all__ = [
    "CheckpointError",
    "latest_checkpoint",
    "list_checkpoints",
    "load_metadata",
    "restore_checkpoint",
    "save_checkpoint",
]
