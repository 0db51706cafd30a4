"""Shared fixtures: one tiny CartPole PPO agent per session, so its programs compile once."""

import pytest

from accelrl.agents.ppo import PPOConfig, make_ppo
from accelrl.envs import make

# 4 envs x 8 steps, 2 minibatches, 1 epoch, 4 updates.
TINY_CONFIG = PPOConfig(
    num_envs=4, num_steps=8, num_minibatches=2, update_epochs=1, total_timesteps=128
)


@pytest.fixture(scope="session")
def tiny_cartpole_agent():
    env, params = make("CartPole-v1")
    return make_ppo(TINY_CONFIG, env, params)
