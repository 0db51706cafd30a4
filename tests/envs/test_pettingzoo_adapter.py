"""PettingZoo adapter: api and seed tests for every multi-agent accelrl id; actions and params
checked on the host (with a hypothesis fuzz of action dicts)."""

from __future__ import annotations

import re
from functools import lru_cache

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("pettingzoo")
from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

from accelrl.envs import is_multi_agent, registered_envs  # noqa: E402
from accelrl.envs.pettingzoo import parallel_env  # noqa: E402
from accelrl.envs.spaces import InvalidActionError  # noqa: E402

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


# ---- input checks (issue 25): actions in the adapter's own step, params at reset -------------


def test_mpe_discrete_actions_are_not_taken_modulo():
    env = parallel_env("MPE_simple_spread_v3")
    env.reset(seed=0)
    good = {a: 1 for a in env.agents}
    for value, error, match in [
        (17, InvalidActionError, r"^action for agent_1 = 17 is outside Discrete\(5\)"),
        (-3, InvalidActionError, r"^action for agent_1 = -3 is outside Discrete\(5\)"),
        (2.0, TypeError, r"^action for agent_1 must be an integer"),
        ("2", TypeError, r"must be an integer"),
    ]:
        with pytest.raises(error, match=match) as err:
            env.step({**good, "agent_1": value})
        assert "\n" not in str(err.value)
    env.step(good)


def test_action_keys_must_be_exactly_the_live_agents(toy_marl_id):
    env = parallel_env("MPE_simple_spread_v3")
    env.reset(seed=0)
    good = {a: 0 for a in env.agents}
    with pytest.raises(KeyError, match=r"unknown agents \['agent_3'\]"):
        env.step({**good, "agent_3": 0})
    with pytest.raises(KeyError, match=r"no actions for live agents \['agent_2'\]"):
        env.step({"agent_0": 0, "agent_1": 0})
    with pytest.raises(TypeError, match="must be a dict"):
        env.step([0, 0, 0])
    # an agent that left may not act any more
    toy = parallel_env(toy_marl_id, max_cycles=50)
    toy.reset(seed=0)
    while len(toy.agents) == len(toy.possible_agents):
        toy.step({a: 2 for a in toy.agents})  # agent 0 reaches the goal and leaves first
        assert toy.agents, "the toy episode should let agent_0 leave before the others"
    gone = sorted(set(toy.possible_agents) - set(toy.agents))
    with pytest.raises(ValueError, match=re.escape(f"actions for agents that are done: {gone}")):
        toy.step({a: 1 for a in toy.possible_agents})


def test_mpe_continuous_actions_need_their_shape():
    env = parallel_env("MPE_simple_spread_v3", action_type="continuous")
    env.reset(seed=0)
    good = {a: np.full(5, 0.5, np.float32) for a in env.agents}
    with pytest.raises(InvalidActionError, match=r"^action for agent_0 has shape \(3,\)"):
        env.step({**good, "agent_0": np.zeros(3, np.float32)})
    with pytest.raises(InvalidActionError, match=r"action for agent_2\[4\] is nan"):
        env.step({**good, "agent_2": np.array([0, 0, 0, 0, np.nan])})
    env.step({**good, "agent_0": np.full(5, 3.0)})  # out of [0, 1]: clipped, as mpe2 does


def test_params_and_max_cycles_are_checked(toy_marl_id):
    from accelrl.envs import make

    for bad, error in ((2.5, TypeError), ("5", TypeError), (0, ValueError)):
        with pytest.raises(error, match="^max_cycles must be"):
            parallel_env(toy_marl_id, max_cycles=bad)
    _, params = make("MPE_simple_spread_v3")
    with pytest.raises(ValueError, match=r"^MPE_simple_spread_v3 params: dt = 0, must be > 0"):
        parallel_env("MPE_simple_spread_v3", env_params=params.replace(dt=0.0))
    env = parallel_env("MPE_simple_spread_v3")
    env.params = params.replace(contact_margin=0.0)
    with pytest.raises(ValueError, match=r"contact_margin = 0, must be > 0"):
        env.reset(seed=0)


_VALUES = st.one_of(
    st.integers(-3, 8),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=2),
    st.none(),
    hnp.arrays(
        st.sampled_from([np.int32, np.int64, np.float32, bool]),
        hnp.array_shapes(min_dims=0, max_dims=1, max_side=6),
    ),
)
_GOOD = {
    "discrete": st.integers(0, 4),
    "continuous": hnp.arrays(np.float32, (5,), elements=st.floats(-1, 2, width=32)),
}
_NEAR = {  # near misses: just out of range, or the wrong length / a NaN
    "discrete": st.integers(-3, 8),
    "continuous": hnp.arrays(
        np.float32, st.sampled_from([(4,), (5,), (6,)]), elements=st.floats(-1, 2, width=32)
    )
    | st.tuples(_GOOD["continuous"], st.integers(0, 4), st.sampled_from([np.nan, np.inf])).map(
        lambda t: np.where(np.arange(5) == t[1], t[2], t[0]).astype(np.float32)
    ),
}


@lru_cache
def _fuzz_env(action_type: str):
    return parallel_env("MPE_simple_spread_v3", max_cycles=1000, action_type=action_type)


@pytest.mark.parametrize("action_type", ["discrete", "continuous"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_actions_give_a_clean_error_or_a_valid_step(action_type, data):
    """Random action dicts: valid ones with at most one corruption (a near miss, any value, an
    extra or a missing key). A valid dict steps with finite rewards; anything else raises
    KeyError, TypeError or InvalidActionError in one line."""
    env = _fuzz_env(action_type)
    if not env.agents:
        env.reset(seed=0)
    actions = data.draw(st.fixed_dictionaries({a: _GOOD[action_type] for a in env.agents}))
    agent = data.draw(st.sampled_from(env.agents))
    corruption = data.draw(st.sampled_from(["none", "near", "near", "any", "add", "drop"]))
    if corruption == "near":
        actions[agent] = data.draw(_NEAR[action_type])
    elif corruption == "any":
        actions[agent] = data.draw(_VALUES)
    elif corruption == "add":
        actions[data.draw(st.sampled_from(["agent_9", "nobody"]))] = 0
    elif corruption == "drop":
        del actions[agent]
    ok = set(actions) == set(env.agents) and all(
        _valid(v, env.action_space(a)) for a, v in actions.items()
    )
    if ok:
        obs, rewards, *_ = env.step(actions)
        assert all(np.isfinite(r) for r in rewards.values())
        assert all(env.observation_space(a).contains(o) for a, o in obs.items())
    else:
        with pytest.raises((KeyError, TypeError, InvalidActionError)) as err:
            env.step(actions)
        assert "\n" not in str(err.value)


def _valid(value, space) -> bool:
    """Independent oracle: an integer scalar in range (discrete) or a finite numeric array of
    the space's shape (continuous: values outside [0, 1] are clipped by the environment)."""
    if isinstance(value, str | bool | np.bool_) or value is None:
        return False
    x = np.asarray(value)
    if isinstance(space, gymnasium.spaces.Discrete):
        integer = isinstance(value, int) or x.dtype.kind in "iu"
        return integer and x.shape == () and 0 <= int(value) < space.n
    return x.dtype.kind in "iuf" and x.shape == space.shape and bool(np.all(np.isfinite(x)))
