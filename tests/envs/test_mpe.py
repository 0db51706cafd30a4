"""MPE scenarios: spaces against mpe2, batching, params, world state, rendering, scripts."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import make
from accelrl.envs.mpe import MPE_SCENARIOS
from accelrl.envs.vec import VecEnv

IDS = list(MPE_SCENARIOS)
ACTION_TYPES = ["discrete", "continuous"]


@pytest.mark.parametrize("action_type", ACTION_TYPES)
@pytest.mark.parametrize("env_id", IDS)
def test_agents_and_spaces_match_mpe2(env_id, action_type):
    pytest.importorskip("mpe2")
    from accelrl.envs.mpe.parity import reference_env

    env, params = make(env_id, action_type=action_type)
    ref = reference_env(env_id, action_type)
    assert list(env.agents) == ref.possible_agents
    for a in env.agents:
        ours_obs, ref_obs = env.observation_space(a, params), ref.observation_space(a)
        assert ours_obs.shape == ref_obs.shape and ours_obs.dtype == jnp.float32
        assert np.all(np.isinf(ours_obs.low)) and np.all(np.isinf(ours_obs.high))
        ours_act, ref_act = env.action_space(a, params), ref.action_space(a)
        if action_type == "discrete":
            assert ours_act.n == ref_act.n
        else:
            assert ours_act.shape == ref_act.shape
            assert np.all(ours_act.low == 0.0) and np.all(ours_act.high == 1.0)
    ref.close()


def test_bad_arguments():
    with pytest.raises(ValueError, match="action_type"):
        make("MPE_simple_spread_v3", action_type="multi_discrete")
    with pytest.raises(ValueError, match="num_agents"):
        make("MPE_simple_spread_v3", num_agents=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        make("MPE_simple_v3", N=3)
    env, _ = make("MPE_simple_tag_v3")
    with pytest.raises(KeyError, match="unknown agent"):
        env.action_space("agent_7")


def _random_actions(env, key, batch=None):
    keys = jax.random.split(key, env.num_agents)
    shape = () if batch is None else (batch,)
    out = {}
    for a, k in zip(env.agents, keys, strict=True):
        space = env.action_space(a)
        if env.continuous:
            out[a] = jax.random.uniform(k, shape + space.shape)
        else:
            out[a] = jax.random.randint(k, shape, 0, space.n)
    return out


@pytest.fixture(scope="module")
def tag_continuous():
    env, params = make("MPE_simple_tag_v3", action_type="continuous")
    return env, params


def test_episode_contract_and_auto_reset(tag_continuous):
    env, params = tag_continuous
    params = params.replace(max_steps_in_episode=3)
    obs, state = env.reset(jax.random.key(0), params)
    for a in env.agents:
        assert obs[a].dtype == jnp.float32
        assert obs[a].shape == env.observation_space(a, params).shape
    for t in range(3):
        actions = _random_actions(env, jax.random.key(t))
        obs, state, rew, term, trunc, info = env.step(jax.random.key(t), state, actions, params)
        assert set(rew) == set(env.agents) and "__all__" in term and "__all__" in trunc
        assert not bool(term["__all__"])
    assert bool(trunc["__all__"]) and int(state.time) == 0  # truncated, then reset
    assert int(jnp.sum(jnp.abs(info["final_observation"]["agent_0"]))) != 0


def test_continuous_actions_are_clipped(tag_continuous):
    env, params = tag_continuous
    _, state = env.reset(jax.random.key(1), params)
    base = {a: jnp.array([0.0, 0.2, 1.0, 0.0, 0.7]) for a in env.agents}
    wild = {a: jnp.array([-3.0, 0.2, 4.0, -1.0, 0.7]) for a in env.agents}
    u0, _ = env.decode_actions(base, params)
    u1, _ = env.decode_actions(wild, params)
    np.testing.assert_allclose(u0, u1)
    # mpe2's directions: a[2] pushes +x, a[4] pushes +y (scaled by accel: 3 for adversaries)
    np.testing.assert_allclose(u0[0], [3.0 * 0.8, 3.0 * 0.7], rtol=1e-6)


def test_discrete_movement_and_words():
    env, params = make("MPE_simple_reference_v3")
    u, c = env.decode_actions({"agent_0": jnp.int32(5 * 7 + 3), "agent_1": 0}, params)
    np.testing.assert_allclose(u[0], [0.0, -5.0])  # move 3 = down, accel 5
    assert int(jnp.argmax(c[0])) == 7 and float(c[0].sum()) == 1.0
    np.testing.assert_allclose(u[1], [0.0, 0.0])


def test_vec_env_with_per_copy_params():
    env, params = make("MPE_simple_spread_v3", action_type="continuous")
    venv = VecEnv(env, 4)
    ratios = jnp.array([0.0, 0.25, 0.5, 1.0])
    batched = params.replace(local_ratio=ratios)
    obs, state = venv.reset(jax.random.key(0), batched)
    assert obs["agent_0"].shape == (4, 18)
    # agents overlapping in every copy: the local part (-2 per agent) is weighted per copy
    state = state.replace(p_pos=state.p_pos.at[:, :3].set(0.0))
    acts = {a: jnp.zeros((4, 5)) for a in env.agents}
    _, state, rew, *_ = venv.step(jax.random.key(1), state, acts, batched)
    glob = -jnp.sum(
        jnp.min(
            jnp.linalg.norm(state.p_pos[:, :3, None] - state.p_pos[:, None, 3:], axis=-1), axis=1
        ),
        axis=1,
    )
    expected = glob * (1 - ratios) - 2.0 * ratios
    np.testing.assert_allclose(rew["agent_0"], expected, rtol=1e-5, atol=1e-5)


def test_tag_speed_params_change_dynamics():
    env, params = make("MPE_simple_tag_v3")
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(p_pos=state.p_pos.at[3].set(jnp.array([5.0, 5.0])))  # prey far off
    acts = {a: jnp.int32(2) for a in env.agents}
    step = jax.jit(env.transition)
    for slow in (False, True):
        p = params.replace(max_speed=params.max_speed.at[3].set(0.1)) if slow else params
        s = state
        for _ in range(10):
            _, s, *_ = step(jax.random.key(0), s, acts, p)
        speed = float(jnp.linalg.norm(s.p_vel[3]))
        assert speed <= 0.1 + 1e-6 if slow else speed > 0.5


def test_world_state_is_concatenated_observations(tag_continuous):
    env, params = tag_continuous
    obs, state = env.reset(jax.random.key(2), params)
    ws = env.world_state(state, params)
    assert ws.shape == (sum(obs[a].shape[0] for a in env.agents),)
    np.testing.assert_array_equal(ws, jnp.concatenate([obs[a] for a in env.agents]))


@pytest.mark.parametrize("env_id", ["MPE_simple_crypto_v3", "MPE_simple_world_comm_v3"])
def test_render_matches_pettingzoo(env_id):
    pytest.importorskip("mpe2")
    from accelrl.envs.mpe.parity import random_actions, reference_env, state_from_reference

    env, params = make(env_id)
    ref = reference_env(env_id, render_mode="rgb_array")
    ref.reset(seed=4)
    rng = np.random.default_rng(0)
    states = [state_from_reference(env, ref)]
    for _ in range(4):
        ref.step(random_actions(env, rng))
        states.append(state_from_reference(env, ref))
    ours, theirs = env.render(states, params), ref.render()
    assert ours.shape == theirs.shape == (700, 700, 3) and ours.dtype == np.uint8
    differ = np.any(np.abs(ours.astype(int) - theirs.astype(int)) > 30, axis=2)
    assert differ.mean() < 0.03  # disc edges and the utterance text's font differ
    # every entity's centre has the reference's colour
    assert (ours != 255).any(axis=2).mean() > 0.01
    ref.close()


def test_pettingzoo_adapter_with_continuous_actions():
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    from accelrl.envs.pettingzoo import parallel_env

    for env_id in ("MPE_simple_speaker_listener_v4", "MPE_simple_world_comm_v3"):
        parallel_api_test(
            parallel_env(env_id, max_cycles=6, action_type="continuous"), num_cycles=12
        )


def test_gif_script(tmp_path):
    from mpe_gif import Args, episode_frames, main

    frames = episode_frames(Args(env_id="MPE_simple_push_v3", max_steps=3, scale=1))
    assert len(frames) == 4 and frames[0].shape == (700, 700, 3)
    out = main(
        ["--env-id", "MPE_simple_push_v3", "--out", str(tmp_path / "p.gif"), "--max-steps", "3"]
    )
    import imageio.v2 as imageio

    frames = imageio.mimread(out)  # identical consecutive frames (t=0, 1) may be merged
    assert len(frames) >= 3 and frames[0].shape[:2] == (350, 350)


def test_bench_script_smoke(tmp_path):
    pytest.importorskip("mpe2")
    from bench_mpe import main

    rows = main(
        [
            "--envs", "MPE_simple_v3",
            "--batches", "2",
            "--steps-per-run", "100",
            "--rounds", "1",
            "--mpe2-steps", "20",
            "--no-jaxmarl",
            "--allow-dirty",  # the test's own tree may have uncommitted changes
            "--out", str(tmp_path / "b.json"),
        ]
    )  # fmt: skip
    impls = {r["impl"] for r in rows}
    assert impls == {"accelrl", "mpe2"} and all(r["steps_per_s"] > 0 for r in rows)
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved["rows"] == rows and {"commit", "clean_tree", "command"} <= set(saved)
