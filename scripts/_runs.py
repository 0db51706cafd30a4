"""Environments with a reset strategy for the command-line tools: built from options for a new
run, rebuilt from ``config.json`` for ``--resume`` and ``accelrl-eval`` (agents never import
curricula; the scripts bring the two together), and the extra hooks of curriculum runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def snapshot_env(
    env_id: str,
    env_kwargs: dict[str, Any],
    agent: str,
    num_envs: int,
    bank_path: str,
    settings: dict[str, Any],
    expected_hash: str | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """``(VecEnv with SnapshotStarts, env params, reset_strategy record for config.json)``.

    Raises:
        ValueError: a bank that cannot be used (``BankError``: wrong env, structure, damaged),
            or whose content differs from ``expected_hash`` (a resumed run's bank changed).
        FileNotFoundError: no bank at ``bank_path``.
    """
    from accelrl.curricula.snapshot import SnapshotStarts, load_bank
    from accelrl.envs import VecEnv, make

    path = Path(bank_path).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"no snapshot bank at {path} (write one with accelrl-snapshot)")
    env, params = make(env_id, **env_kwargs)
    bank = load_bank(path, env_id, env_kwargs, env=env)
    if expected_hash is not None and bank.content_hash != expected_hash:
        raise ValueError(
            f"snapshot bank {path} changed since the run started (hash {bank.content_hash[:12]}, "
            f"recorded {expected_hash[:12]})"
        )
    strategy = SnapshotStarts.for_agent(
        bank, agent, **{k: v for k, v in settings.items() if v is not None}
    )
    record = {**strategy.describe(), "name": "snapshot", "bank": str(path), "settings": settings}
    return VecEnv(env, num_envs, strategy), params, record


def teacher_env(
    name: str, space_name: str, num_envs: int, settings: dict[str, Any]
) -> tuple[Any, Any, dict[str, Any]]:
    """``(VecEnv with the teacher, env params, reset_strategy record for config.json)``.

    The record is the teacher's ``describe()`` (its name, task space and every setting), from
    which :func:`env_for_run` rebuilds an equal teacher.

    Raises:
        ValueError: an unknown teacher or task space (close matches named), or a bad setting;
        TypeError: a setting the teacher does not take.
    """
    from accelrl.curricula import make_teacher, task_space
    from accelrl.envs import VecEnv

    space = task_space(space_name)
    teacher = make_teacher(name, space, **settings)
    env, params = space.make()
    return VecEnv(env, num_envs, teacher), params, teacher.describe()


def env_for_run(meta: dict[str, Any]) -> tuple[Any, Any] | None:
    """The environment (and params) a run folder's ``config.json`` recorded, when it used a
    reset strategy; None for the default."""
    record = meta.get("reset_strategy")
    if not record:
        return None
    if record.get("name") == "snapshot":
        venv, params, _ = snapshot_env(
            meta["env"],
            meta.get("env_kwargs") or {},
            meta["agent"],
            meta["config"]["num_envs"],
            record["bank"],
            record.get("settings", {}),
            expected_hash=record.get("bank_hash"),
        )
        return venv, params
    if "task_space" in record:  # a teacher (accelrl-teach)
        settings = {k: v for k, v in record.items() if k not in ("name", "task_space")}
        venv, params, _ = teacher_env(
            record["name"], record["task_space"], meta["config"]["num_envs"], settings
        )
        return venv, params
    raise ValueError(f"config.json names an unknown reset strategy {record.get('name')!r}")


def run_extras(
    meta: dict[str, Any], out: Path, resume: bool = False
) -> tuple[list[Any], Any | None]:
    """The ``on_segment`` hooks and the end-of-run report a run's ``config.json`` asks for:
    a curriculum run (``"curriculum"`` key, written by ``accelrl-teach``) measures the fraction
    mastered, logs the teacher's tasks and plots both; other runs have none (``[], None``)."""
    if not meta.get("curriculum"):
        return [], None
    from accelrl.scripts.teach import curriculum_extras

    return curriculum_extras(meta, out, resume=resume)
