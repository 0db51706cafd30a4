"""PettingZoo adapter: api and seed tests for every multi-agent accelrl id."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

from accelrl.envs import is_multi_agent, registered_envs  # noqa: E402
from accelrl.envs.pettingzoo import parallel_env  # noqa: E402

MULTI_AGENT = [i for i in registered_envs() if is_multi_agent(i)]


@pytest.mark.parametrize("env_id", MULTI_AGENT)
def test_parallel_api(env_id):
    parallel_api_test(parallel_env(env_id, max_cycles=12), num_cycles=40)


@pytest.mark.parametrize("env_id", MULTI_AGENT)
def test_parallel_seed(env_id):
    parallel_seed_test(lambda: parallel_env(env_id, max_cycles=12))


@pytest.mark.parametrize("env_id", MULTI_AGENT)
def test_observations_lie_in_their_spaces(env_id):
    env = parallel_env(env_id, max_cycles=10)
    obs, _ = env.reset(seed=3)
    for _ in range(30):
        for a, o in obs.items():
            assert env.observation_space(a).contains(o), (a, o)
        if not env.agents:
            obs, _ = env.reset()
            continue
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, *_ = env.step(actions)


def test_agents_leave_and_max_cycles(toy_marl_id):
    env = parallel_env(toy_marl_id, max_cycles=5)
    env.reset(seed=0)
    steps = 0
    while env.agents:
        env.step({a: 1 for a in env.agents})
        steps += 1
    assert steps <= 5
    assert env.observation_space("agent_0") is env.observation_space("agent_0")  # cached
    assert isinstance(env.state(), np.ndarray)


def test_bad_input(toy_marl_id):
    with pytest.raises(ValueError, match="not a multi-agent"):
        parallel_env("CartPole-v1")
    with pytest.raises(ValueError, match="max_cycles"):
        parallel_env(toy_marl_id, max_cycles=0)
    env = parallel_env(toy_marl_id)
    env.reset(seed=0)
    with pytest.raises(KeyError):
        env.step({"nobody": 0})
