"""accelrl agents: whole training runs in one jitted program, on one shared skeleton.

Every agent subclasses :class:`Agent` (``agents/core.py``): a frozen ``config``, a vmappable
``hparams`` pytree, ``init(key, hparams) -> state``, a jitted ``run(state, hparams, n_updates)
-> (state, metrics)``, ``act``, ``value`` and ``evaluate``. Agents are registered by name
(:func:`register_agent`); :func:`build` makes one from an env id (or an env object) with the
registered per-environment defaults, and :func:`load_run` reloads a run folder.

>>> agent, config, hparams = build("CartPole-v1", "ppo", {"total_timesteps": 20_000})
>>> state, metrics = agent.train(jax.random.key(0), hparams)
"""

from accelrl.agents.base import ActionSpec, UnsupportedEnvironmentError
from accelrl.agents.build import build, check_hparams, load_run, read_run_config, run_config
from accelrl.agents.core import Agent, AgentState, RunConfig
from accelrl.agents.dqn import DQN, DQNConfig, DQNHparams, DQNState, make_dqn
from accelrl.agents.marl import IPPO, MAPPO, MultiAgentPPOConfig, MultiAgentPPOState
from accelrl.agents.ppo import PPO, PPOConfig, PPOHparams, PPOState, make_ppo
from accelrl.agents.registry import (
    AgentSpec,
    UnknownAgentError,
    agent_spec,
    env_family,
    register_agent,
    registered_agents,
)
from accelrl.agents.runner import Runner, RunResult
from accelrl.agents.sac import SAC, SACConfig, SACHparams, SACState, make_sac

__all__ = [
    "DQN",
    "IPPO",
    "MAPPO",
    "MultiAgentPPOConfig",
    "MultiAgentPPOState",
    "PPO",
    "SAC",
    "ActionSpec",
    "Agent",
    "AgentSpec",
    "AgentState",
    "DQNConfig",
    "DQNHparams",
    "DQNState",
    "PPOConfig",
    "PPOHparams",
    "PPOState",
    "RunConfig",
    "RunResult",
    "Runner",
    "SACConfig",
    "SACHparams",
    "SACState",
    "UnknownAgentError",
    "UnsupportedEnvironmentError",
    "agent_spec",
    "build",
    "check_hparams",
    "env_family",
    "load_run",
    "make_dqn",
    "make_ppo",
    "make_sac",
    "read_run_config",
    "register_agent",
    "registered_agents",
    "run_config",
]
