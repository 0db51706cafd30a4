"""SAC learns Pendulum-v1 and, discrete, CartPole-v1 (slow: about 3 minutes on 2 CPU cores)."""

import dataclasses

import numpy as np
import pytest

import accelrl.envs as E
from accelrl.agents.evaluation import evaluation_key, training_key
from accelrl.agents.sac import SAC_DEFAULTS, make_sac


def train_seed0(family: str, env_id: str, **config_changes):
    """Train seed 0 with a family's SAC defaults (config fields changed as given); checks the
    critic loss stayed finite and returns ``(agent, state)``."""
    config, overrides = SAC_DEFAULTS[family]
    env, params = E.make(env_id)
    agent = make_sac(dataclasses.replace(config, **config_changes), env, params)
    hp = agent.default_hparams().replace(**overrides)
    state, metrics = agent.run(agent.init(training_key(0), hp), hp, agent.num_updates)
    assert np.all(np.isfinite(np.asarray(metrics["critic_loss"])))
    return agent, state


@pytest.mark.slow
def test_sac_reaches_minus_250_on_pendulum_in_8k_steps():
    # Budget: 8,000 environment steps, one gradient step each (rl-zoo's Pendulum-v1 settings:
    # lr 1e-3, 256x256 networks, batch 256, automatic entropy tuning).
    agent, state = train_seed0("classic_continuous", "Pendulum-v1", total_timesteps=8_000)
    returns = agent.evaluate(state, evaluation_key(0), 20, True)
    assert float(returns.mean()) >= -250.0, np.asarray(returns)
    stochastic = agent.evaluate(state, evaluation_key(1), 20, False)
    assert float(stochastic.mean()) >= -250.0, np.asarray(stochastic)


@pytest.mark.slow
def test_discrete_sac_learns_cartpole_in_20k_steps():
    # Budget: 20,000 environment steps with the classic_discrete defaults (64x64, lr 3e-4,
    # entropy target 0.5 log K). A uniformly random policy scores about 22; measured here at
    # 20k steps: 264 (seed 0) and 216 (seed 1), deterministic evaluation over 20 episodes.
    agent, state = train_seed0(
        "classic_discrete", "CartPole-v1", total_timesteps=20_000, buffer_size=20_000
    )
    returns = agent.evaluate(state, evaluation_key(0), 20, True)
    assert float(returns.mean()) >= 150.0, np.asarray(returns)
