"""accelrl agents: PPO and SAC as whole training runs in one jitted program.

Each agent follows the contract of :mod:`accelrl.agents.base`: a frozen ``config``, a vmappable
``hparams`` pytree, ``init(key, hparams) -> state`` and a jitted
``run(state, hparams, n_updates) -> (state, metrics)``. :data:`AGENTS` maps the command-line
names to ``(ConfigClass, make_agent)``.
"""

from accelrl.agents.base import Agent, UnsupportedEnvironmentError
from accelrl.agents.ppo import PPO, PPOConfig, PPOHparams, PPOState, make_ppo
from accelrl.agents.sac import SACConfig, make_sac

AGENTS: dict[str, tuple[type, object]] = {
    "ppo": (PPOConfig, make_ppo),
    "sac": (SACConfig, make_sac),
}

__all__ = [
    "AGENTS",
    "PPO",
    "Agent",
    "PPOConfig",
    "PPOHparams",
    "PPOState",
    "UnsupportedEnvironmentError",
    "make_ppo",
]
