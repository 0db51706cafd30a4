"""The built-in names, in a module that imports nothing heavy.

Importing JAX, flax and the environments takes seconds; a misspelt ``--env`` or ``--agent``
should fail at once, and listing ids should not import gymnax's environment zoo. This module is
the one source of the built-in environment ids (accelrl's, with the module that registers each,
and gymnax's) and agent names: ``accelrl.envs`` builds its registry from it, and
``tests/test_catalog.py`` checks it against gymnax and the agent registry. Names registered at
run time (a plugin, a test) are looked up in the live registries once those are imported
(``accelrl.scripts._names``).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

BUILTIN_ENVS: dict[str, tuple[str, bool]] = {
    "ThreeBody-v0": ("accelrl.envs.three_body", False),
    "ThreeBodyContinuous-v0": ("accelrl.envs.three_body", False),
    "MallocGame-v0": ("accelrl.envs.malloc", False),
    "CacheReplacement-v0": ("accelrl.envs.cache", False),
    "Relax-v0": ("accelrl.envs.relax", False),
    "RelaxContinuous-v0": ("accelrl.envs.relax", False),
    **{
        env_id: ("accelrl.envs.mpe", True)
        for env_id in (
            "MPE_simple_v3",
            "MPE_simple_spread_v3",
            "MPE_simple_push_v3",
            "MPE_simple_crypto_v3",
            "MPE_simple_speaker_listener_v4",
            "MPE_simple_tag_v3",
            "MPE_simple_world_comm_v3",
            "MPE_simple_reference_v3",
            "MPE_simple_adversary_v3",
        )
    },
}
"""accelrl's own ids -> (the module that registers the id when imported, multi-agent).
``accelrl.envs`` provides them from this table and imports a module on the first ``make`` of
one of its ids (adding an environment means adding its line here)."""

ACCELRL_ENV_IDS: tuple[str, ...] = tuple(BUILTIN_ENVS)
"""accelrl's own environment ids."""

GYMNAX_ENV_IDS: tuple[str, ...] = (
    "CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar", "Catch-bsuite", "DeepSea-bsuite", "MemoryChain-bsuite",
    "UmbrellaChain-bsuite", "DiscountingChain-bsuite", "MNISTBandit-bsuite", "SimpleBandit-bsuite",
    "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc", "BernoulliBandit-misc",
    "GaussianBandit-misc", "Reacher-misc", "Swimmer-misc", "Pong-misc", "FrozenLake-misc",
)  # fmt: skip
"""gymnax's ids (``gymnax.registered_envs`` of the supported gymnax versions)."""

AGENT_CLASSES: dict[str, tuple[str, str, str]] = {
    "ppo": ("ppo", "PPOConfig", "PPOHparams"),
    "sac": ("sac", "SACConfig", "SACHparams"),
    "dqn": ("dqn", "DQNConfig", "DQNHparams"),
    "gumbel_az": ("gumbel_az", "GumbelAZConfig", "GumbelAZHparams"),
    "ippo": ("marl", "MultiAgentPPOConfig", "PPOHparams"),
    "mappo": ("marl", "MultiAgentPPOConfig", "PPOHparams"),
}
"""Built-in agent name -> (its module in ``accelrl.agents``, config class, hparams class), as
registered; :func:`agent_fields` reads the classes' fields from there."""

AGENT_NAMES: tuple[str, ...] = tuple(AGENT_CLASSES)
"""Built-in agent names."""


def agent_fields(agent: str) -> tuple[str, ...] | None:
    """Config then hparams field names of a built-in agent, in dataclass order (the
    command-line options beyond the run options), or None for an agent that is not built in.

    Read from the classes' source with :mod:`ast` (the agent modules import JAX, which takes
    seconds), so a misspelt option fails at once and a new config field is written only in its
    dataclass. ``tests/test_catalog.py`` checks the result against the imported classes.
    """
    if agent not in AGENT_CLASSES:
        return None
    module, config_cls, hparams_cls = AGENT_CLASSES[agent]
    return _class_fields(module, config_cls) + _class_fields(module, hparams_cls)


def _class_fields(module: str, name: str) -> tuple[str, ...]:
    """Dataclass field names of class ``name`` as ``accelrl.agents.<module>`` has it (defined
    there, or imported with ``from accelrl.agents.<m> import <name>``): bases' fields first, a
    field declared again keeps its base's place."""
    classes, imports = _parse_agent_module(module)
    if name not in classes:
        if name not in imports:
            raise LookupError(f"no class {name} in accelrl.agents.{module}")
        return _class_fields(imports[name], name)
    fields: list[str] = []
    for base in classes[name].bases:
        if isinstance(base, ast.Name) and (base.id in classes or base.id in imports):
            fields.extend(f for f in _class_fields(module, base.id) if f not in fields)
    for stmt in classes[name].body:
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and "ClassVar" not in ast.unparse(stmt.annotation)
            and stmt.target.id not in fields
        ):
            fields.append(stmt.target.id)
    return tuple(fields)


@functools.cache
def _parse_agent_module(module: str) -> tuple[dict[str, ast.ClassDef], dict[str, str]]:
    """The top-level classes of ``accelrl.agents.<module>`` and the names it imports from
    sibling modules (name -> module)."""
    path = Path(__file__).parent / "agents" / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    imports = {
        alias.asname or alias.name: n.module.rsplit(".", 1)[1]
        for n in tree.body
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("accelrl.agents.")
        for alias in n.names
    }
    return classes, imports


TEACHER_NAMES: tuple[str, ...] = ("alp_gmm", "covar_gmm", "riac", "random")
"""Built-in task teachers (``accelrl.curricula.TEACHERS``; ``accelrl-teach --teacher``)."""

TASK_SPACE_NAMES: tuple[str, ...] = ("pendulum_dynamics", "three_body_ic", "mpe_spread_dynamics")
"""Built-in task spaces (``accelrl.curricula.registered_task_spaces()``)."""

BUILTIN_STRATEGIES: dict[str, str] = {
    "default": "accelrl.envs.strategies",
    **{name: "accelrl.curricula.teachers" for name in TEACHER_NAMES},
    "snapshot": "accelrl.curricula.snapshot",
}
"""Built-in reset strategies -> the module that registers each when imported
(``accelrl.envs.strategy``; a run spec's ``reset_strategy``)."""
