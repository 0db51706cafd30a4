"""Name checks the command-line tools make before JAX is imported (an error within a second).

Built-in names come from :mod:`accelrl._catalog`; names registered at run time (a plugin, a
test calling ``main`` in-process) are looked up in the live registries when those are imported.
"""

from __future__ import annotations

import difflib
import sys

from accelrl._catalog import (
    ACCELRL_ENV_IDS,
    AGENT_NAMES,
    GYMNAX_ENV_IDS,
    TASK_SPACE_NAMES,
    TEACHER_NAMES,
    agent_fields,
)


def _unknown(kind: str, name: str, known: list[str], flag: str) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r} ({flag}).{hint}"


def check_env_id(env_id: str) -> str | None:
    """An error message for an unknown environment id, or None when it is known."""
    known = [*ACCELRL_ENV_IDS, *GYMNAX_ENV_IDS]
    if env_id in known:
        return None
    if "accelrl.envs" in sys.modules:  # ids registered at run time
        from accelrl.envs import registered_envs

        known = registered_envs(include_gymnax=True)
        if env_id in known:
            return None
    return _unknown("environment", env_id, known, "--env")


def check_agent(name: str) -> str | None:
    """An error message for an unknown agent name, or None when it is known."""
    known = list(AGENT_NAMES)
    if name in known:
        return None
    if "accelrl.agents" in sys.modules:  # agents registered at run time
        from accelrl.agents import registered_agents

        known = list(registered_agents())
        if name in known:
            return None
    return _unknown("agent", name, known, "--agent")


def check_teacher(name: str) -> str | None:
    """An error message for an unknown teacher name, or None when it is known."""
    known = list(TEACHER_NAMES)
    if name in known:
        return None
    if "accelrl.curricula" in sys.modules:  # teachers added at run time
        from accelrl.curricula import TEACHERS

        known = list(TEACHERS)
        if name in known:
            return None
    return _unknown("teacher", name, known, "--teacher")


def check_task_space(name: str) -> str | None:
    """An error message for an unknown task-space name, or None when it is known."""
    known = list(TASK_SPACE_NAMES)
    if name in known:
        return None
    if "accelrl.curricula" in sys.modules:  # task spaces registered at run time
        from accelrl.curricula import registered_task_spaces

        known = list(registered_task_spaces())
        if name in known:
            return None
    return _unknown("task space", name, known, "--task_space")


def check_options(agent: str, argv: list[str], run_options: tuple[str, ...]) -> str | None:
    """An error message for an option that is neither a run option nor a field of the built-in
    ``agent`` (None when all are known, or when ``agent`` is not built in: its fields are
    only known once it is imported)."""
    fields = agent_fields(agent)
    if fields is None:
        return None
    known = set(run_options) | set(fields)
    for token in argv:
        if not token.startswith("--") or token == "--":
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        if name in known or (name.startswith("no_") and name[3:] in known):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join('--' + c for c in close)}?" if close else ""
        return f"unknown option {token.split('=', 1)[0]} for {agent}.{hint}"
    return None
