"""SetActorCritic: symmetries, masking, errors, fast_init; PPO's ``network="set"`` option."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents.base import UnsupportedEnvironmentError
from accelrl.agents.networks import ActorCritic, SetActorCritic, _init_plan, fast_init
from accelrl.agents.ppo import PPOConfig, make_ppo

K, M, B = 4, 6, 3


def set_obs(key, mask_buffers=None):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    action_mask = jnp.concatenate(
        [jnp.ones((B, 1), bool), jax.random.bernoulli(k4, 0.7, (B, K))], axis=-1
    )
    bmask = jax.random.bernoulli(k3, 0.6, (B, M)) if mask_buffers is None else mask_buffers
    return {
        "observation": jax.random.uniform(k1, (B, 10)),
        "action_mask": action_mask,
        "candidates": jax.random.uniform(k2, (B, K, 5)),
        "buffers": jax.random.normal(k3, (B, M, 8)),
        "buffer_mask": bmask,
    }


@pytest.fixture(scope="module")
def net_and_params():
    net = SetActorCritic(action_dim=K + 1, hidden_sizes=(16,), embed_dim=8, num_heads=2)
    params = net.init(jax.random.key(0), set_obs(jax.random.key(1)))
    # larger output layers so that differences are far above float noise
    params = jax.tree.map(lambda x: x * 3.0, params)
    return net, params


def test_invariant_to_buffer_order_and_to_masked_buffer_rows(net_and_params):
    net, params = net_and_params
    obs = set_obs(jax.random.key(2))
    pi, v = net.apply(params, obs)
    perm = jnp.array([3, 0, 5, 1, 4, 2])
    shuffled = dict(obs, buffers=obs["buffers"][:, perm], buffer_mask=obs["buffer_mask"][:, perm])
    pi2, v2 = net.apply(params, shuffled)
    np.testing.assert_allclose(pi.logits, pi2.logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v, v2, rtol=1e-5, atol=1e-5)
    junk = jnp.where(obs["buffer_mask"][..., None], obs["buffers"], 1e3)
    pi3, v3 = net.apply(params, dict(obs, buffers=junk))
    np.testing.assert_allclose(pi.logits, pi3.logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v, v3, rtol=1e-5, atol=1e-5)
    # ... but a real buffer's features do matter
    moved = obs["buffers"].at[:, :, 1].add(2.0)
    _, v4 = net.apply(params, dict(obs, buffers=moved))
    assert not np.allclose(v, v4, atol=1e-4)


def test_equivariant_to_candidate_order_and_masks_illegal_actions(net_and_params):
    net, params = net_and_params
    obs = set_obs(jax.random.key(3))
    obs["action_mask"] = jnp.ones((B, K + 1), bool)
    pi, _ = net.apply(params, obs)
    perm = jnp.array([2, 0, 3, 1])
    pi2, _ = net.apply(params, dict(obs, candidates=obs["candidates"][:, perm]))
    np.testing.assert_allclose(pi2.logits[:, 1:], pi.logits[:, 1:][:, perm], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pi2.logits[:, 0], pi.logits[:, 0], rtol=1e-5, atol=1e-5)
    mask = jnp.array([[True, False, True, False, False]] * B)
    pi3, _ = net.apply(params, dict(obs, action_mask=mask))
    samples = pi3.sample(seed=jax.random.key(4), sample_shape=(200,))
    assert set(np.unique(np.asarray(samples)).tolist()) <= {0, 2}


def test_empty_buffer_set_is_finite(net_and_params):
    net, params = net_and_params
    obs = set_obs(jax.random.key(5), mask_buffers=jnp.zeros((B, M), bool))
    pi, v = net.apply(params, obs)
    assert np.all(np.isfinite(np.asarray(v))) and np.all(np.isfinite(np.asarray(pi.probs)))


def test_bad_inputs_are_refused():
    net = SetActorCritic(action_dim=K + 1, embed_dim=8, num_heads=2)
    obs = set_obs(jax.random.key(6))
    with pytest.raises(ValueError, match="observation dict with keys"):
        net.init(jax.random.key(0), {"observation": obs["observation"]})
    with pytest.raises(ValueError, match="1 \\+ the number of candidates"):
        SetActorCritic(action_dim=K, embed_dim=8, num_heads=2).init(jax.random.key(0), obs)
    with pytest.raises(ValueError, match="must divide"):
        SetActorCritic(action_dim=K + 1, embed_dim=8, num_heads=3).init(jax.random.key(0), obs)


def test_fast_init_covers_every_parameter():
    net = SetActorCritic(action_dim=K + 1, hidden_sizes=(16,), embed_dim=8, num_heads=2)
    obs = set_obs(jax.random.key(7))
    abstract, plan = _init_plan(net, obs)
    paths = [tuple(k.key for k in p) for p, _ in jax.tree_util.tree_flatten_with_path(abstract)[0]]
    assert paths and all(p in plan for p in paths)
    params = fast_init(net, jax.random.key(0), obs)
    assert jax.tree.structure(params) == jax.tree.structure(net.init(jax.random.key(0), obs))


def _malloc_env(set_size):
    from accelrl.envs.malloc import MallocGame, Workload

    rng = np.random.default_rng(0)
    ws = []
    for s in range(2):
        n = 12
        start = rng.integers(0, 20, n)
        ws.append(
            Workload(
                size=rng.integers(1, 50, n) * 8,
                start=start,
                end=np.minimum(start + rng.integers(0, 8, n), 19),
                benefit=rng.uniform(0.1, 1.0, n),
                name=f"w{s}",
            )
        )
    return MallocGame.for_workloads(ws, num_candidates=3, order="xla", set_size=set_size)


def test_ppo_set_network_option_trains_and_defaults_are_unchanged():
    assert PPOConfig().network == "mlp"
    env, params = _malloc_env(set_size=4)
    cfg = PPOConfig(
        num_envs=2,
        num_steps=8,
        num_minibatches=2,
        update_epochs=1,
        total_timesteps=32,
        network="set",
        set_embed_dim=8,
        set_heads=2,
        hidden_sizes=(16,),
    )
    agent = make_ppo(cfg, env, params)
    assert isinstance(agent.network, SetActorCritic)
    state, metrics = agent.train(jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    obs, _ = jax.vmap(env.reset_env)(jax.random.split(jax.random.key(1), 2), params)
    actions = agent.act(state, obs, jax.random.key(2))
    assert np.all(np.asarray(obs["action_mask"])[np.arange(2), np.asarray(actions)])
    plain = make_ppo(PPOConfig(num_envs=2, num_steps=8, total_timesteps=32), env, params)
    assert isinstance(plain.network, ActorCritic)


def test_ppo_set_network_needs_a_set_observation_and_valid_settings():
    env, params = _malloc_env(set_size=0)
    with pytest.raises(UnsupportedEnvironmentError, match="set_size"):
        make_ppo(PPOConfig(num_envs=2, num_steps=8, total_timesteps=32, network="set"), env, params)
    with pytest.raises(ValueError, match="unknown network"):
        PPOConfig(network="transformer").validate()
    with pytest.raises(ValueError, match="must be >= 1 and divide"):
        PPOConfig(network="set", set_embed_dim=10, set_heads=4).validate()
    from accelrl.agents.marl import MultiAgentPPOConfig  # inherits the field, not the network

    with pytest.raises(ValueError, match="only PPO itself"):
        MultiAgentPPOConfig(network="set").validate()
