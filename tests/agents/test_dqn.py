"""DQN: losses and schedules against hand-computed numbers, double-DQN and masked bootstraps,
target updates, jit and vmap over seeds and hparams, masking, config validation, the registry;
and (slow) learning CartPole-v1. Fast tests use tiny networks and one compile per agent."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import accelrl.envs as E
from accelrl.agents import UnsupportedEnvironmentError, agent_spec, build
from accelrl.agents.dqn import (
    DQN_DEFAULTS,
    DQNConfig,
    Transition,
    bootstrap_value,
    epsilon_schedule,
    make_dqn,
    polyak,
    q_loss,
    td_target,
)
from accelrl.agents.evaluation import evaluation_key, training_key
from accelrl.agents.runner import batch_hparams, seed_vmapped
from tests.agents.toy_envs import MaskedEnv

# 2 envs x 4 steps per update, 2 gradient steps of batch 8 on an 8-unit network: 8 updates.
TINY = DQNConfig(
    num_envs=2,
    rollout_steps=4,
    gradient_steps=2,
    batch_size=8,
    buffer_size=64,
    learning_starts=16,
    total_timesteps=64,
    hidden_sizes=(8,),
)

# ------------------------------------------------------------------------------------------
# Pure maths on hand-computed numbers


def test_td_target_bootstraps_unless_terminated():
    y = td_target(jnp.array([1.0, 2.0]), jnp.array([0.0, 1.0]), jnp.array([10.0, 10.0]), 0.9)
    np.testing.assert_allclose(y, [10.0, 2.0])
    y = td_target(jnp.array([1.0]), jnp.array([True]), jnp.array([5.0]), 0.5)
    np.testing.assert_allclose(y, [1.0])


def test_huber_and_mse_losses_hand_values_and_no_gradient_into_target():
    q = jnp.array([0.5, 3.0, -2.0])
    y = jnp.array([0.0, 0.0, 0.0])
    # Huber, delta 1: 0.5 * 0.25, 1 * (3 - 0.5), 1 * (2 - 0.5) -> mean(0.125, 2.5, 1.5)
    np.testing.assert_allclose(q_loss(q, y, "huber", 1.0), (0.125 + 2.5 + 1.5) / 3, rtol=1e-6)
    # delta 2: 0.125, 2 * (3 - 1) = 4, 0.5 * 4 = 2
    np.testing.assert_allclose(q_loss(q, y, "huber", 2.0), (0.125 + 4.0 + 2.0) / 3, rtol=1e-6)
    np.testing.assert_allclose(q_loss(q, y, "mse"), (0.125 + 4.5 + 2.0) / 3, rtol=1e-6)
    g_q, g_y = jax.grad(lambda a, b: q_loss(a, b, "huber", 1.0), argnums=(0, 1))(q, y)
    np.testing.assert_allclose(g_q, [0.5 / 3, 1 / 3, -1 / 3], rtol=1e-6)
    np.testing.assert_allclose(g_y, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="unknown loss"):
        q_loss(q, y, "l1")


def test_bootstrap_value_dqn_double_dqn_and_masks():
    target = jnp.array([[1.0, 5.0, 3.0], [2.0, 0.0, 9.0]])
    online = jnp.array([[0.0, 0.0, 1.0], [7.0, 0.0, 0.0]])
    np.testing.assert_allclose(bootstrap_value(target, None), [5.0, 9.0])
    # double DQN: the online argmax (2, 0) valued by the target network
    np.testing.assert_allclose(bootstrap_value(target, online), [3.0, 2.0])
    mask = jnp.array([[True, False, True], [False, True, True]])
    np.testing.assert_allclose(bootstrap_value(target, None, mask), [3.0, 9.0])
    # the online argmax among valid actions only: row 1's best valid online action is 1 (tie
    # with 2 broken by argmax's first index)
    np.testing.assert_allclose(bootstrap_value(target, online, mask), [3.0, 0.0])


def test_epsilon_schedule_linear_then_flat():
    eps = [float(epsilon_schedule(s, 1000, 1.0, 0.1, 0.2)) for s in (0, 100, 200, 500)]
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1, 0.1], rtol=1e-5)
    np.testing.assert_allclose(float(epsilon_schedule(0, 1000, 1.0, 0.1, 0.0)), 0.1, rtol=1e-5)


def test_polyak_hand_values():
    out = polyak({"w": jnp.array([0.0, 4.0])}, {"w": jnp.array([2.0, 0.0])}, 0.25)
    np.testing.assert_allclose(out["w"], [0.5, 3.0])


# ------------------------------------------------------------------------------------------
# Agents (tiny, CartPole): jit, vmap, target updates


@pytest.fixture(scope="module")
def cartpole():
    env, params = E.make("CartPole-v1")
    return make_dqn(TINY, env, params)


def test_run_jits_and_vmaps_over_seeds_and_hparams(cartpole):
    agent = cartpole
    run, init = seed_vmapped(agent)
    hp = batch_hparams(agent.default_hparams(), 3)
    hp = hp.replace(learning_rate=jnp.array([1e-3, 1e-3, 1e-1], jnp.float32))
    keys = jax.vmap(training_key)(jnp.array([0, 1, 0]))
    state, metrics = run(init(keys, hp), hp, agent.num_updates, jnp.int32(0))
    assert metrics["loss"].shape == (3, agent.num_updates)
    assert int(state.env_steps[0]) == TINY.total_timesteps
    # gradient steps once learning_starts (16 steps) were collected: updates 2-8, 2 each
    np.testing.assert_array_equal(np.asarray(state.gradient_step), [14, 14, 14])
    np.testing.assert_array_equal(np.asarray(metrics["loss"][:, :1]), 0.0)
    assert np.all(np.asarray(metrics["loss"][:, 1:]) > 0)
    w = [np.asarray(jax.tree.leaves(state.params)[0][i]) for i in range(3)]
    assert not np.allclose(w[0], w[1])  # seeds differ
    assert not np.allclose(w[0], w[2])  # the learning rate (vmapped data) matters
    # the unbatched program gives the same numbers as member 0 of the vmapped one
    s0, _ = agent.run(
        agent.init(training_key(0), agent.default_hparams()),
        agent.default_hparams(),
        agent.num_updates,
    )
    np.testing.assert_allclose(
        np.asarray(jax.tree.leaves(s0.params)[0]), w[0], rtol=1e-5, atol=1e-6
    )
    assert 0.0 < float(state.epsilon[0]) < 1.0


def test_target_network_follows_tau_and_interval(cartpole):
    env, params = E.make("CartPole-v1")
    rare = make_dqn(dataclasses.replace(TINY, target_update_interval=100), env, params)
    for agent, tau, expect in (
        (cartpole, 1.0, "online"),
        (cartpole, 0.0, "initial"),
        (rare, 1.0, "initial"),
    ):
        hp = agent.default_hparams().replace(tau=jnp.float32(tau))
        init = agent.init(training_key(0), hp)
        state, _ = agent.run(init, hp, agent.num_updates)
        got = jax.tree.leaves(state.target_params)
        ref = jax.tree.leaves(state.params if expect == "online" else init.params)
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
        # and the online network did move
        assert not np.allclose(
            np.asarray(jax.tree.leaves(state.params)[0]),
            np.asarray(jax.tree.leaves(init.params)[0]),
        )


def test_targets_use_double_dqn_and_stop_at_termination(cartpole):
    agent = cartpole
    hp = agent.default_hparams().replace(reward_scale=jnp.float32(2.0), gamma=jnp.float32(0.5))
    state = agent.init(training_key(0), hp)
    obs = jax.random.normal(jax.random.PRNGKey(3), (4, 4))
    batch = Transition(
        obs, jnp.zeros(4, jnp.int32), jnp.ones(4), obs, jnp.array([0.0, 1.0, 0.0, 1.0])
    )
    q_online, _ = agent.q_values(state.params, obs)
    v = q_online[jnp.arange(4), jnp.argmax(q_online, -1)]  # target == online at init
    y = agent.targets(state, hp, batch)
    np.testing.assert_allclose(y, 2.0 + 0.5 * np.array([1, 0, 1, 0]) * np.asarray(v), rtol=1e-6)


def test_act_greedy_epsilon_and_value(cartpole):
    agent = cartpole
    state = agent.init(training_key(0), agent.default_hparams())
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 4))
    q, _ = agent.q_values(state.params, obs)
    greedy = agent.act(state, obs, jax.random.PRNGKey(2), deterministic=True)
    np.testing.assert_array_equal(greedy, np.argmax(np.asarray(q), -1))
    np.testing.assert_allclose(agent.value(state, obs), np.max(np.asarray(q), -1))
    # epsilon 1: uniform, so both actions appear whatever the greedy choice
    acts = agent.act(state.replace(epsilon=jnp.float32(1.0)), obs, jax.random.PRNGKey(2))
    assert set(np.asarray(acts).tolist()) == {0, 1}
    acts = agent.act(state.replace(epsilon=jnp.float32(0.0)), obs, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(acts, greedy)


def test_masked_actions_never_chosen():
    env = MaskedEnv()
    agent = make_dqn(TINY, env, env.default_params)
    hp = agent.default_hparams()
    state, metrics = agent.run(agent.init(training_key(0), hp), hp, agent.num_updates)
    # an invalid action earns -100 (valid ones their index >= 0) in 5-step episodes
    returns = np.asarray(metrics["episode_return"])
    assert np.isfinite(returns).any() and np.all(returns[np.isfinite(returns)] >= 0)
    n = 32
    mask = jnp.tile(jnp.array([False, False, True, False, True, False]), (n, 1))
    obs = {"observation": jax.random.normal(jax.random.PRNGKey(0), (n, 6)), "action_mask": mask}
    for eps in (0.0, 1.0):
        acts = np.asarray(
            agent.act(state.replace(epsilon=jnp.float32(eps)), obs, jax.random.PRNGKey(1))
        )
        assert set(acts.tolist()) <= {2, 4}
    q, _ = agent.q_values(state.params, obs)
    np.testing.assert_allclose(agent.value(state, obs), np.max(np.asarray(q)[:, [2, 4]], -1))


# ------------------------------------------------------------------------------------------
# Validation and registry


@pytest.mark.parametrize(
    "change, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"target_update_interval": 0}, "target_update_interval"),
        ({"learning_starts": -1}, "learning_starts"),
        ({"learning_starts": 64}, "never take a gradient step"),
        ({"buffer_size": 4}, "cannot hold"),
        ({"loss": "l1"}, "loss"),
        ({"activation": "sigmoid"}, "activation"),
        ({"hidden_sizes": ()}, "hidden_sizes"),
    ],
)
def test_config_validation_names_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **change).validate()


def test_continuous_environments_are_rejected():
    env, params = E.make("Pendulum-v1")
    with pytest.raises(UnsupportedEnvironmentError, match="dqn supports discrete"):
        make_dqn(TINY, env, params)


def test_registered_with_per_environment_defaults():
    spec = agent_spec("dqn")
    assert spec.defaults_key("CartPole-v1") == "CartPole-v1"
    assert spec.defaults_key("ThreeBody-v0") == "three_body"
    assert spec.defaults_key("Acrobot-v1") == "classic_discrete"
    agent, config, hp = build("CartPole-v1", "dqn", {"total_timesteps": 4096, "tau": 0.5})
    assert config == dataclasses.replace(DQN_DEFAULTS["CartPole-v1"][0], total_timesteps=4096)
    assert float(hp.tau) == 0.5 and float(hp.learning_rate) == pytest.approx(2.3e-3)


# ------------------------------------------------------------------------------------------
# Learning


@pytest.mark.slow
def test_dqn_learns_cartpole_in_50k_steps():
    """Budget: 50,000 environment steps per seed, seeds 0-7 in one vmapped program (the
    CartPole-v1 defaults: rl-zoo's settings on a 64x64 network, 195 updates of 128 gradient
    steps; about 25 s on a quiet 2-core machine, longer beside other jobs). Greedy evaluation
    over 20 episodes per seed. DQN at this budget is seed-sensitive: at commit 8fa5888 the
    seeds scored 230, 172, 500, 88, 19, 65, 500, 71 (median 130; a random policy scores about
    22), so the test asks for a median of at least 100 and at least two seeds at 195
    (gymnasium's old "solved" mark) rather than every seed."""
    n = 8
    agent, _, hp = build("CartPole-v1", "dqn")
    run, init = seed_vmapped(agent)
    hps = batch_hparams(hp, n)
    state, metrics = run(
        init(jax.vmap(training_key)(jnp.arange(n)), hps), hps, agent.num_updates, jnp.int32(0)
    )
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    means = []
    for i in range(n):
        s = jax.tree.map(lambda x, i=i: x[i], state)
        means.append(float(np.mean(agent.evaluate(s, evaluation_key(i), 20, True))))
    assert np.median(means) >= 100.0, means
    assert sum(m >= 195.0 for m in means) >= 2, means


def test_exploration_hparams_are_range_checked():
    from accelrl.agents import check_hparams
    from accelrl.agents.dqn import DQNHparams

    check_hparams(DQNHparams())  # the defaults pass
    for name, bad in (("epsilon_start", 1.5), ("epsilon_end", -0.1),
                      ("exploration_fraction", 0.0), ("huber_delta", 0.0)):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            check_hparams(DQNHparams().replace(**{name: bad}))
