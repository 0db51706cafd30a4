"""One registry of agents, modelled on the environment registry.

An agent is one module that defines its config and hparams classes and an :class:`Agent`
subclass, and calls :func:`register_agent` once::

    register_agent("ppo", AgentSpec(PPOConfig, PPOHparams, make_ppo, defaults=PPO_DEFAULTS))

``accelrl.agents.build``, ``accelrl-train`` and ``accelrl-eval`` look agents up here; nothing
else switches on agent names. Per-environment defaults are keyed by environment id (most
specific) or by family (:func:`env_family`), with ``"generic"`` as the fallback.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any

# Environment families: ids (or id prefixes) mapped to the family whose defaults they use.
FAMILIES: dict[str, str] = {
    "CartPole-v1": "classic_discrete",
    "Acrobot-v1": "classic_discrete",
    "MountainCar-v0": "classic_discrete",
    "Pendulum-v1": "classic_continuous",
    "MountainCarContinuous-v0": "classic_continuous",
    "ThreeBody": "three_body",
    "MallocGame": "malloc",
    "MPE_": "mpe",
}


def env_family(env_id: str) -> str:
    """Family name of ``env_id`` (``"generic"`` when none matches)."""
    if env_id in FAMILIES:
        return FAMILIES[env_id]
    for prefix, family in FAMILIES.items():
        if env_id.startswith(prefix):
            return family
    return "generic"


class UnknownAgentError(ValueError):
    """An agent name that is not registered (the message lists the close matches)."""


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """What the registry knows about an agent."""

    config_cls: type
    """Frozen config dataclass (shapes and compilation)."""
    hparams_cls: type
    """Hparams ``flax.struct.dataclass`` (vmappable numbers)."""
    builder: Callable[..., Any]
    """``builder(config, env, env_params=None) -> agent``; validates before compiling."""
    defaults: Mapping[str, tuple[Any, Mapping[str, float]]] = dataclasses.field(
        default_factory=dict
    )
    """Env id or family -> ``(config, hparams overrides)``; ``"generic"`` if absent is
    ``(config_cls(), {})``."""
    description: str = ""
    """One line for ``--help`` and listings."""

    def default_config(self, env_id: str) -> tuple[Any, dict[str, float]]:
        """``(config, hparams overrides)`` for ``env_id``: its own entry, its family's, or
        the generic one."""
        for key in (env_id, env_family(env_id), "generic"):
            if key in self.defaults:
                config, hp = self.defaults[key]
                return config, dict(hp)
        return self.config_cls(), {}

    def defaults_key(self, env_id: str) -> str:
        """Which defaults entry ``env_id`` uses (id, family or ``"generic"``)."""
        for key in (env_id, env_family(env_id)):
            if key in self.defaults:
                return key
        return "generic"


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(name: str, spec: AgentSpec, *, overwrite: bool = False) -> None:
    """Register an agent under ``name`` (``accelrl-train --agent name``).

    Raises:
        ValueError: empty name, a name already taken (unless ``overwrite``), or a spec whose
            defaults are not instances of its config class.
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        raise ValueError(f"agent name must be a non-empty identifier, got {name!r}")
    if not isinstance(spec, AgentSpec):
        raise TypeError(f"spec for {name!r} must be an AgentSpec, got {type(spec).__name__}")
    if name in _AGENTS and not overwrite:
        raise ValueError(f"agent {name!r} is already registered")
    for key, (config, _) in spec.defaults.items():
        if not isinstance(config, spec.config_cls):
            raise ValueError(f"{name} defaults[{key!r}] is not a {spec.config_cls.__name__}")
    _AGENTS[name] = spec


def registered_agents() -> tuple[str, ...]:
    """Names of all registered agents, sorted."""
    return tuple(sorted(_AGENTS))


def agent_spec(name: str) -> AgentSpec:
    """The :class:`AgentSpec` of ``name``.

    Raises:
        UnknownAgentError: with the closest registered names.
    """
    try:
        return _AGENTS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_AGENTS), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownAgentError(
            f"unknown agent {name!r}; registered: {', '.join(registered_agents())}.{hint}"
        ) from None


__all__ = [
    "FAMILIES",
    "AgentSpec",
    "UnknownAgentError",
    "agent_spec",
    "env_family",
    "register_agent",
    "registered_agents",
]
