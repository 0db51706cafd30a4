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

Restoring is strict: the checkpoint must hold exactly the leaves of the target, with its shapes
(:class:`CheckpointMismatchError` otherwise, one line naming what differs). The one exception is
a field added to the state after the checkpoint was written whose value the run's spec still
gives (a reset strategy's data settings, added to the strategy state after runs existed): the
caller names such leaves in ``optional`` with their values, and a checkpoint lacking them is
restored with those values filled in.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be restored (truncated or damaged files); one line."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint whose structure or shapes differ from the run's state (another
    version's layout or another config); one line naming the run folder and what differs.
    Older checkpoints of the same run share the layout, so the runner tries none of them."""


LeafPath = tuple[str, ...]
"""A leaf's path as orbax names it: attribute, dict key or index names, outermost first."""


def leaf_path(keypath: tuple[Any, ...]) -> LeafPath:
    """The :data:`LeafPath` of a ``jax.tree_util`` key path (as ``tree_flatten_with_path``
    gives it)."""
    from orbax.checkpoint import tree as ocp_tree

    return tuple(ocp_tree.str_keypath(keypath))


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


def restore_checkpoint(
    path: str | Path,
    state_like: Any,
    hparams_like: Any,
    optional: Mapping[LeafPath, Any] | None = None,
) -> tuple[Any, Any]:
    """Restore ``(state, hparams)`` with the structure, shapes and dtypes of the ``*_like``
    pytrees (concrete arrays or ``jax.ShapeDtypeStruct``s, e.g. from ``jax.eval_shape``).

    Args:
        path: the checkpoint folder (``.../checkpoints/step_<n>``).
        state_like, hparams_like: the target pytrees.
        optional: leaves of ``state_like`` (by :data:`LeafPath` relative to the state) that a
            checkpoint written before they existed lacks, each with the value to fill in
            (an array of the leaf's shape). Every other leaf must be in the checkpoint.

    Raises:
        FileNotFoundError: if ``path`` is not a checkpoint.
        CheckpointMismatchError: a checkpoint whose leaves or shapes differ from the targets'
            (beyond missing ``optional`` leaves), naming the run folder and the differences.
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
    fill = {("state", *p): v for p, v in (optional or {}).items()}
    # Restore inside an x64 scope: outside one, orbax canonicalises float64 leaves (ThreeBody's
    # physics state) to float32. The targets' explicit dtypes keep every other leaf as saved.
    try:
        with jax.enable_x64(True), _quiet_orbax():
            missing = _check_layout(path, target, fill)
            if missing:  # an older layout: restore what it holds, fill in the rest
                tree = ocp.tree.serialize_tree(target)
                tree_like = ocp.tree.serialize_tree(target)
                for p in missing:
                    _pop(tree, p)
                restored = _checkpointer().restore(path, tree)
                for p in missing:
                    ref = _leaf_at(tree_like, p)
                    value = jnp.asarray(fill[p], ref.dtype)
                    if value.shape != tuple(ref.shape):
                        raise ValueError(f"fill value of {'.'.join(p)} has shape {value.shape}")
                    _put(restored, p, value)
                restored = ocp.tree.deserialize_tree(restored, target)
            else:
                restored = _checkpointer().restore(path, target)
    except CheckpointError:
        raise
    except Exception as e:  # orbax raises many types for damaged files; report one line
        cause = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise CheckpointError(f"cannot restore {path.name}: {type(e).__name__}: {cause}") from None
    restored = jax.tree.map(
        lambda x, ref: jnp.zeros(ref.shape, ref.dtype) if _is_empty(ref) else x, restored, like
    )
    return restored["state"], restored["hparams"]


def _shape(leaf: Any) -> tuple[int, ...]:
    """A leaf's shape: arrays, shape structs and orbax metadata carry one; Python scalars
    (hparams given as floats) have shape ()."""
    shape = getattr(leaf, "shape", None)
    return tuple(jnp.shape(leaf) if shape is None else shape)


def _check_layout(path: Path, target: Any, fill: Mapping[LeafPath, Any]) -> list[LeafPath]:
    """The ``fill`` leaves the checkpoint at ``path`` lacks (to be filled in).

    Raises:
        CheckpointMismatchError: any other leaf missing, a leaf the target has not, or a shape
            that differs, in a checkpoint that orbax restores as saved.
        CheckpointError: a metadata file that lists no arrays (damaged); orbax's own errors
            from a checkpoint it cannot restore as saved propagate.
    """
    from orbax.checkpoint import tree as ocp_tree

    saved = {
        tuple(map(str, k)): v
        for k, v in ocp_tree.to_flat_dict(_checkpointer().metadata(path).item_metadata).items()
    }
    wanted = {tuple(map(str, k)): v for k, v in ocp_tree.to_flat_dict(target).items()}
    missing = [p for p in wanted if p not in saved]
    problems = []
    strict_missing = [p for p in missing if p not in fill]
    if strict_missing:
        problems.append(f"missing from the checkpoint: {_names(strict_missing)}")
    unexpected = [p for p in saved if p not in wanted]
    if unexpected:
        problems.append(f"not in this run's state: {_names(unexpected)}")
    shapes = [
        f"{'.'.join(p)} {_shape(saved[p])} saved, {_shape(wanted[p])} expected"
        for p in wanted
        if p in saved and _shape(saved[p]) != _shape(wanted[p])
    ]
    if shapes:
        problems.append(f"shapes differ: {_names(shapes)}")
    if problems:
        # Damaged files can read as a partial layout: a mismatch is only one that orbax can
        # restore as saved (anything it raises here is reported as damage by the caller).
        if not saved:
            raise CheckpointError(f"cannot restore {path.name}: its metadata lists no arrays")
        _checkpointer().restore(path)
        run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        raise CheckpointMismatchError(
            f"run folder {run}: checkpoint {path.name} does not match the state this run's "
            f"config.json builds ({'; '.join(problems)})"
        )
    return missing


def _names(items: list[Any], shown: int = 4) -> str:
    """The first ``shown`` of ``items`` (paths joined with dots), and how many more."""
    names = [".".join(i) if isinstance(i, tuple) else str(i) for i in items]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _leaf_at(tree: Any, path: LeafPath) -> Any:
    for k in path:
        tree = tree[int(k)] if isinstance(tree, list) else tree[k]
    return tree


def _pop(tree: Any, path: LeafPath) -> None:
    """Remove the leaf at ``path`` from a serialised tree (nested dicts; a leaf inside a list
    cannot be left out, so an ``optional`` leaf is always a named field)."""
    parent = _leaf_at(tree, path[:-1])
    if not isinstance(parent, dict):
        raise CheckpointError(f"optional leaf {'.'.join(path)} is not a named field")
    del parent[path[-1]]


def _put(tree: Any, path: LeafPath, value: Any) -> None:
    _leaf_at(tree, path[:-1])[path[-1]] = value


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
    "CheckpointMismatchError",
    "LeafPath",
    "leaf_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_metadata",
    "restore_checkpoint",
    "save_checkpoint",
]
