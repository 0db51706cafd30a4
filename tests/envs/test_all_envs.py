"""Every registered accelrl id and a curated list of gymnax passthroughs, under jit and vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import GYMNAX_KNOWN_FAULTS, VecEnv, is_multi_agent, make, registered_envs
from accelrl.envs.spaces import space_contains

CURATED_GYMNAX = [
    "CartPole-v1",
    "Pendulum-v1",
    "Acrobot-v1",
    "MountainCarContinuous-v0",
    "Breakout-MinAtar",
    "DeepSea-bsuite",
]
ENV_IDS = registered_envs() + CURATED_GYMNAX
assert not set(CURATED_GYMNAX) & set(GYMNAX_KNOWN_FAULTS)
B, T = 4, 24


def _spaces(env, params, env_id):
    if is_multi_agent(env_id):
        return (
            {a: env.observation_space(a, params) for a in env.agents},
            {a: env.action_space(a, params) for a in env.agents},
        )
    return env.observation_space(params), env.action_space(params)


def _sample(act_space, key, multi):
    keys = jax.random.split(key, B)
    if multi:
        return {
            a: jax.vmap(sp.sample)(jax.random.split(jax.random.fold_in(key, i), B))
            for i, (a, sp) in enumerate(act_space.items())
        }
    return jax.vmap(act_space.sample)(keys)


def _contains(obs_space, obs, multi):
    if multi:
        return jnp.all(
            jnp.stack(
                [
                    jax.vmap(lambda o, s=obs_space[a]: space_contains(s, o))(obs[a])
                    for a in obs_space
                ]
            )
        )
    return jnp.all(jax.vmap(lambda o: space_contains(obs_space, o))(obs))


def _make_rollout(env_id):
    env, params = make(env_id)
    multi = is_multi_agent(env_id)
    obs_space, act_space = _spaces(env, params, env_id)
    vec = VecEnv(env, B)

    @jax.jit
    def rollout(key, params):
        obs, state = vec.reset(key, params)
        ok0 = _contains(obs_space, obs, multi)

        def body(carry, k):
            obs, state, ok = carry
            ka, ks = jax.random.split(k)
            action = _sample(act_space, ka, multi)
            obs, state, reward, term, trunc, info = vec.step(ks, state, action, params)
            done = info["done"]
            ok = (
                ok
                & _contains(obs_space, obs, multi)
                & _contains(obs_space, info["final_observation"], multi)
            )
            # copies that did not finish continue from their final observation
            same = jax.tree.map(
                lambda a, b: jnp.all(
                    jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), True, a == b)
                ),
                obs,
                info["final_observation"],
            )
            ok = ok & jnp.all(jnp.stack(jax.tree.leaves(same)))
            # copies that finished start a fresh episode
            ok = ok & jnp.all(jnp.where(done, state.time == 0, True))
            r = jnp.stack(jax.tree.leaves(reward)).astype(jnp.float32)
            return (obs, state, ok), (r, done, jnp.all(jnp.isfinite(r)))

        (obs, state, ok), (rewards, dones, finite) = jax.lax.scan(
            body, (obs, state, ok0), jax.random.split(key, T)
        )
        return ok, rewards, dones, jnp.all(finite), obs

    return env, params, rollout


@pytest.fixture(scope="module", params=ENV_IDS)
def env_case(request):
    return request.param, *_make_rollout(request.param)


def test_rollout_valid_and_deterministic(env_case):
    env_id, env, params, rollout = env_case
    ok, rewards, dones, finite, obs = rollout(jax.random.key(0), params)
    assert bool(ok), f"{env_id}: observation outside space or wrong reset/final_observation"
    assert bool(finite), f"{env_id}: non-finite reward"
    ok2, rewards2, dones2, _, obs2 = rollout(jax.random.key(0), params)
    np.testing.assert_array_equal(np.asarray(rewards), np.asarray(rewards2))
    jax.tree.map(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), obs, obs2
    )
    # a different key gives a different trajectory (sanity check that keys are used)
    _, rewards3, _, _, obs3 = rollout(jax.random.key(1), params)
    leaves = jax.tree.leaves(obs)
    leaves3 = jax.tree.leaves(obs3)
    assert any(
        not np.array_equal(a, b) for a, b in zip(leaves, leaves3, strict=True)
    ) or not np.array_equal(rewards, rewards3)


def test_second_call_does_not_recompile(env_case):
    env_id, env, params, rollout = env_case
    rollout(jax.random.key(2), params)
    n = rollout._cache_size()
    rollout(jax.random.key(3), params)
    assert rollout._cache_size() == n


def test_vmapped_params_match_shared(env_case):
    env_id, env, params, rollout = env_case
    batched = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (B,) + jnp.shape(x)), params)
    ok_s, r_s, *_ = rollout(jax.random.key(4), params)
    ok_b, r_b, *_ = rollout(jax.random.key(4), batched)
    assert bool(ok_b)
    np.testing.assert_allclose(np.asarray(r_s), np.asarray(r_b), rtol=1e-5, atol=1e-6)


def test_known_faults_still_reachable():
    for env_id in GYMNAX_KNOWN_FAULTS:
        if env_id == "MNISTBandit-bsuite":
            continue  # its constructor downloads MNIST
        env, params = make(env_id)
        obs, state = env.reset(jax.random.key(0), params)
        assert obs is not None
