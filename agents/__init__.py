"""accelrl agents: whole training runs in one jitted program, on one shared skeleton.

Every agent subclasses :class:`Agent` (``agents/core.py``): a frozen ``config``, a vmappable
``hparams`` pytree, ``init(key, hparams) -> state``, a jitted ``run(state, hparams, n_updates)
-> (state, metrics)``, ``act``, ``value`` and ``evaluate``. Agents are registered by name
(:func:`register_agent`); :func:`build` makes one from an env id (or an env object) with the
registered per-environment defaults.

A whole run is a :class:`RunSpec` (env, reset strategy, agent, overrides, seeds, host-loop
options): :func:`build_run` builds it, :func:`train_run` trains it into a run folder (whose
``config.json`` is the spec), :func:`resume_run` continues a folder and :func:`load_run` reloads
one, whatever its strategy or agent.

>>> agent, config, hparams = build("CartPole-v1", "ppo", {"total_timesteps": 20_000})
>>> state, metrics = agent.train(jax.random.key(0), hparams)
>>> outcome = train_run(RunSpec(env="CartPole-v1", agent="ppo", seeds=(0, 1)), "runs/cp")
"""

from accelrl.agents.base import ActionSpec, UnsupportedEnvironmentError
from accelrl.agents.build import (
    BuiltRun,
    build,
    build_run,
    check_hparams,
    load_run,
    make_spec,
    read_spec,
)
from accelrl.agents.core import Agent, AgentState, RunConfig
from accelrl.agents.dqn import DQN, DQNConfig, DQNHparams, DQNState, make_dqn
from accelrl.agents.folders import FolderBusyError, FolderLock
from accelrl.agents.gumbel_az import (
    GumbelAZ,
    GumbelAZConfig,
    GumbelAZHparams,
    GumbelAZState,
    make_gumbel_az,
)
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
from accelrl.agents.runs import ResumeError, RunOutcome, resume_run, train_run
from accelrl.agents.sac import SAC, SACConfig, SACHparams, SACState, make_sac
from accelrl.agents.spec import RunOptions, RunSpec, StrategySpec

__all__ = [
    "BuiltRun",
    "build_run",
    "make_spec",
    "FolderBusyError",
    "FolderLock",
    "GumbelAZ",
    "GumbelAZConfig",
    "GumbelAZHparams",
    "GumbelAZState",
    "ResumeError",
    "RunOutcome",
    "resume_run",
    "train_run",
    "RunOptions",
    "RunSpec",
    "StrategySpec",
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
    "make_gumbel_az",
    "make_ppo",
    "make_sac",
    "read_spec",
    "register_agent",
    "registered_agents",
]
