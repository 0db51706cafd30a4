"""SAC: losses against hand-computed numbers, truncation vs termination, UTD and learning starts,
vmap over seeds and hparams, masking, config validation. Tiny networks, one compile per agent."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import accelrl.envs as E
from accelrl.agents.checkpoint import restore_checkpoint, save_checkpoint
from accelrl.agents.evaluation import training_key
from accelrl.agents.sac import (
    SACConfig,
    SACHparams,
    Transition,
    actor_loss,
    alpha_loss,
    critic_loss,
    discrete_actor_loss,
    discrete_soft_value,
    make_sac,
    polyak,
    soft_td_target,
)

TINY = dict(actor_hidden_sizes=(8,), critic_hidden_sizes=(8,), batch_size=8)

# ------------------------------------------------------------------------------------------
# Losses on tiny inputs


def test_soft_td_target_bootstraps_unless_terminated():
    y = soft_td_target(
        jnp.array([1.0, 2.0, -1.0]), jnp.array([0.0, 1.0, 0.0]), jnp.array([10.0, 10.0, -4.0]), 0.9
    )
    np.testing.assert_allclose(y, [1.0 + 9.0, 2.0, -1.0 - 3.6], rtol=1e-6)
    # booleans work too
    y = soft_td_target(jnp.array([1.0]), jnp.array([True]), jnp.array([5.0]), 0.5)
    np.testing.assert_allclose(y, [1.0])


def test_critic_loss_hand_values_and_no_gradient_into_target():
    q = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    y = jnp.array([1.0, 1.0])
    # critic 1: (0 + 1) / 2 = 0.5; critic 2: (4 + 9) / 2 = 6.5; loss = 0.5 * 7
    np.testing.assert_allclose(critic_loss(q, y), 3.5)
    g_q, g_y = jax.grad(critic_loss, argnums=(0, 1))(q, y)
    np.testing.assert_allclose(g_q, [[0.0, 0.5], [1.0, 1.5]])  # 0.5 * 2 * (q - y) / B
    np.testing.assert_allclose(g_y, [0.0, 0.0])


def test_actor_loss_hand_values():
    logp = jnp.array([-1.0, 0.5])
    min_q = jnp.array([2.0, 3.0])
    # mean(0.5 * -1 - 2, 0.5 * 0.5 - 3) = mean(-2.5, -2.75)
    np.testing.assert_allclose(actor_loss(logp, min_q, jnp.float32(0.5)), -2.625)


def test_alpha_loss_value_and_direction():
    log_alpha = jnp.log(0.5)
    logp = jnp.array([-1.0, 0.5])  # entropy estimate 0.25
    target = -1.0
    # -mean(log 0.5 * (logp - 1)) = -log 0.5 * mean(-2, -0.5) = 1.25 log 0.5
    np.testing.assert_allclose(alpha_loss(log_alpha, logp, target), 1.25 * math.log(0.5), rtol=1e-6)
    # entropy 0.25 above target -1: gradient descent must lower alpha (positive gradient) ...
    assert float(jax.grad(alpha_loss)(log_alpha, logp, target)) == pytest.approx(1.25)
    # ... and raise it when the entropy is below target (target 2 > 0.25)
    assert float(jax.grad(alpha_loss)(log_alpha, logp, 2.0)) == pytest.approx(-1.75)
    # no gradient into the policy's log-probabilities
    np.testing.assert_allclose(jax.grad(alpha_loss, argnums=1)(log_alpha, logp, target), [0.0, 0.0])


def test_discrete_soft_value_and_actor_loss_hand_values():
    p = jnp.array([[0.25, 0.75], [1.0, 0.0]])
    logp = jnp.log(jnp.array([[0.25, 0.75], [1.0, 1e-30]]))
    min_q = jnp.array([[1.0, 2.0], [3.0, 100.0]])
    a = jnp.float32(0.1)
    v0 = 0.25 * (1 - 0.1 * math.log(0.25)) + 0.75 * (2 - 0.1 * math.log(0.75))
    v1 = 3.0  # probability-0 action contributes nothing
    np.testing.assert_allclose(discrete_soft_value(p, logp, min_q, a), [v0, v1], rtol=1e-6)
    l0 = 0.25 * (0.1 * math.log(0.25) - 1) + 0.75 * (0.1 * math.log(0.75) - 2)
    np.testing.assert_allclose(discrete_actor_loss(p, logp, min_q, a), (l0 - 3.0) / 2, rtol=1e-6)


def test_polyak():
    out = polyak({"w": jnp.array([0.0, 10.0])}, {"w": jnp.array([1.0, 0.0])}, 0.1)
    np.testing.assert_allclose(out["w"], [0.1, 9.0], rtol=1e-6)


# ------------------------------------------------------------------------------------------
# Truncation vs termination, through the agent


@struct.dataclass
class CounterState(environment.EnvState):
    pass


@struct.dataclass
class CounterParams(environment.EnvParams):
    terminate_at: int = 100
    max_steps_in_episode: int = 3


class Counter(environment.Environment):
    """obs = [time], reward 1 per step; terminates at ``terminate_at``, truncates at max steps."""

    @property
    def default_params(self):
        return CounterParams()

    def step_env(self, key, state, action, params):
        state = CounterState(time=state.time + 1)
        obs = jnp.array([state.time], jnp.float32)
        return obs, state, jnp.float32(1.0), state.time >= params.terminate_at, {}

    def reset_env(self, key, params):
        return jnp.zeros(1, jnp.float32), CounterState(time=jnp.int32(0))

    def observation_space(self, params):
        return spaces.Box(0.0, 10.0, (1,), jnp.float32)

    def action_space(self, params):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


@pytest.fixture(scope="module")
def counter_agent():
    # copy 0 terminates at time 3, copy 1 is truncated at time 3 (per-copy params)
    params = CounterParams(terminate_at=jnp.array([3, 100]), max_steps_in_episode=3)
    cfg = SACConfig(total_timesteps=64, num_envs=2, learning_starts=8, autotune_alpha=False, **TINY)
    return make_sac(cfg, Counter(), params)


@pytest.fixture(scope="module")
def counter_run(counter_agent):
    hp = counter_agent.default_hparams().replace(alpha=0.2)
    state, metrics = counter_agent.run(counter_agent.init(training_key(0), hp), hp, 7)
    return hp, state, metrics


def test_truncation_bootstraps_termination_does_not(counter_agent, counter_run):
    agent = counter_agent
    hp, state, metrics = counter_run
    np.testing.assert_allclose(metrics["episode_return"][-1], 3.0)
    n = int(state.buffer.size)
    assert n == 14
    data = jax.tree.map(lambda x: x[:n], state.buffer.data)
    obs, next_obs, term = data.obs[:, 0], data.next_obs[:, 0], data.terminated
    copy = np.arange(n) % 2  # the buffer stores [copy 0, copy 1] per step
    last = np.asarray(obs == 2.0)
    assert last[copy == 0].sum() >= 2 and last[copy == 1].sum() >= 2
    # the stored next observation of a finished episode is the pre-reset one, not the reset 0
    np.testing.assert_array_equal(next_obs, obs + 1.0)
    np.testing.assert_array_equal(term[last & (copy == 0)], 1.0)  # terminated
    np.testing.assert_array_equal(term[last & (copy == 1)], 0.0)  # truncated
    np.testing.assert_array_equal(term[~last], 0.0)

    # targets: the terminated transition is the reward alone, the truncated one bootstraps
    key = jax.random.key(1)
    y = np.asarray(agent.td_target(state, hp, data, key))
    free = data._replace(reward=0 * data.reward, terminated=0 * data.terminated)
    v = np.asarray(agent.td_target(state, hp.replace(gamma=1.0), free, key))
    ended_term = last & (copy == 0)
    np.testing.assert_array_equal(y[ended_term], 1.0)
    np.testing.assert_allclose(y[~ended_term], 1.0 + hp.gamma * v[~ended_term], rtol=1e-5)
    assert np.all(np.abs(v) > 0)


def test_fixed_alpha_stays(counter_run):
    _, _, m = counter_run
    assert float(m["critic_loss"][-1]) > 0  # the last updates learned
    np.testing.assert_allclose(m["alpha"], 0.2, rtol=1e-6)
    np.testing.assert_array_equal(m["alpha_loss"], 0.0)


def test_checkpoint_round_trip_continues_bit_for_bit(counter_agent, counter_run, tmp_path):
    agent = counter_agent
    hp, state, metrics = counter_run
    init = agent.init(training_key(0), hp)
    path = save_checkpoint(tmp_path, 0, init, hp, {"agent": "sac"})
    restored, hp2 = restore_checkpoint(path, init, hp)
    _, again = agent.run(restored, hp2, 7)  # same compiled program, restored inputs
    for name in metrics:
        np.testing.assert_array_equal(again[name], metrics[name], err_msg=name)
    path = save_checkpoint(tmp_path, 7, state, hp, {"agent": "sac"})
    back, _ = restore_checkpoint(path, state, hp)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(back), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_evaluate_counts_whole_episodes():
    cfg = SACConfig(total_timesteps=64, num_envs=2, learning_starts=8, **TINY)
    agent = make_sac(cfg, Counter())
    state = agent.init(jax.random.key(0), agent.default_hparams())
    returns = agent.evaluate(state, jax.random.key(5), num_episodes=3)
    np.testing.assert_array_equal(returns, [3.0, 3.0, 3.0])  # 3 steps of reward 1, then truncated


# ------------------------------------------------------------------------------------------
# Learning starts, update-to-data ratio, vmap, determinism (Pendulum, tiny networks)


@pytest.fixture(scope="module")
def pendulum_agent():
    env, params = E.make("Pendulum-v1")
    cfg = SACConfig(
        total_timesteps=40, num_envs=2, rollout_steps=2, gradient_steps=3, learning_starts=8, **TINY
    )
    return make_sac(cfg, env, params)


def test_learning_starts_and_utd(pendulum_agent):
    agent = pendulum_agent
    assert agent.steps_per_update == 4 and agent.num_updates == 10
    assert agent.config.utd_ratio == pytest.approx(0.75)
    hp = agent.default_hparams()
    state0 = agent.init(jax.random.key(0), hp)
    state, m = agent.run(state0, hp, 10)
    np.testing.assert_array_equal(m["env_steps"], np.arange(4, 44, 4))
    # update 1 ends at 4 env steps < learning_starts: no gradient step, zero losses
    assert float(m["critic_loss"][0]) == 0.0 and np.all(np.asarray(m["critic_loss"][1:]) > 0)
    # updates 2..10 learn, 3 gradient steps each: 27 Adam steps on every optimiser
    for opt in (state.critic_opt_state, state.actor_opt_state, state.alpha_opt_state):
        assert int(opt.count) == 27
    assert not np.allclose(
        state.actor_params["params"]["MLP_0"]["Dense_0"]["kernel"],
        state0.actor_params["params"]["MLP_0"]["Dense_0"]["kernel"],
    )
    # targets move slowly towards the online critics
    leaf = lambda p: p["params"]["q"]["MLP_0"]["Dense_0"]["kernel"]  # noqa: E731
    d_target = np.abs(leaf(state.target_critic_params) - leaf(state0.critic_params)).max()
    d_online = np.abs(leaf(state.critic_params) - leaf(state0.critic_params)).max()
    assert 0 < d_target < d_online
    assert np.all(np.isfinite(np.asarray(m["episode_return"]))) or np.isnan(m["episode_return"][0])


def test_vmap_over_seeds_and_hparams_and_determinism(pendulum_agent):
    agent = pendulum_agent
    hp = jax.tree.map(lambda x: jnp.full((2,), x, jnp.float32), agent.default_hparams())
    hp = hp.replace(actor_lr=jnp.array([1e-3, 0.0]))
    keys = jax.random.split(jax.random.key(3), 2)
    s0 = jax.vmap(agent.init)(keys, hp)
    run = jax.jit(jax.vmap(agent.run, in_axes=(0, 0, None)), static_argnums=2)
    s1, m1 = run(s0, hp, 5)
    assert m1["critic_loss"].shape == (2, 5)
    k = lambda s: s.actor_params["params"]["MLP_0"]["Dense_0"]["kernel"]  # noqa: E731
    assert not np.allclose(k(s1)[0], k(s0)[0])
    np.testing.assert_array_equal(k(s1)[1], k(s0)[1])  # actor_lr 0 for the second member
    assert not np.allclose(m1["critic_loss"][0], m1["critic_loss"][1])  # seeds differ
    _, m2 = run(s0, hp, 5)
    for name in m1:
        np.testing.assert_array_equal(m1[name], m2[name])  # same seed, same numbers


# ------------------------------------------------------------------------------------------
# Discrete SAC and action masks


@pytest.fixture(scope="module")
def cartpole_agent():
    env, params = E.make("CartPole-v1")
    cfg = SACConfig(total_timesteps=64, num_envs=4, learning_starts=16, **TINY)
    return make_sac(cfg, env, params)


def test_discrete_sac_runs(cartpole_agent):
    agent = cartpole_agent
    assert not agent.continuous
    hp = agent.default_hparams()
    assert hp.target_entropy_scale == pytest.approx(0.89)
    np.testing.assert_allclose(agent.target_entropy(hp), 0.89 * math.log(2), rtol=1e-6)
    state, m = agent.run(agent.init(jax.random.key(0), hp), hp, agent.num_updates)
    for name in ("critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy"):
        assert np.all(np.isfinite(np.asarray(m[name]))), name
    assert float(m["critic_loss"][-1]) > 0
    actions = agent.act(state, jnp.zeros((5, 4)), jax.random.key(1), deterministic=False)
    assert actions.shape == (5,) and actions.dtype == jnp.int32


def test_masked_actions_never_chosen(cartpole_agent):
    agent = cartpole_agent
    state = agent.init(jax.random.key(0), agent.default_hparams())
    n = 512
    obs = {
        "observation": jax.random.normal(jax.random.key(2), (n, 4)),
        "action_mask": jnp.tile(jnp.array([False, True]), (n, 1)),
    }
    for det in (False, True):
        np.testing.assert_array_equal(agent.act(state, obs, jax.random.key(3), det), 1)
    obs4 = jax.tree.map(lambda x: x[:4], obs)
    np.testing.assert_array_equal(agent.random_action(obs4, jax.random.key(4)), 1)
    # the soft value ignores masked actions even when their Q is huge
    p, logp = agent._discrete_log_probs(state.actor_params, obs["observation"], obs["action_mask"])
    np.testing.assert_array_equal(p[:, 0], 0.0)
    q = jnp.tile(jnp.array([1e6, 1.0]), (n, 1))
    np.testing.assert_allclose(discrete_soft_value(p, logp, q, 0.5), 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------------------
# Validation before compiling


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learning_starts=100, total_timesteps=100), "never take a gradient step"),
        (dict(num_envs=8, buffer_size=4), "cannot hold"),
        (dict(total_timesteps=4, num_envs=8), "smaller than one update"),
        (dict(batch_size=0), "batch_size"),
        (dict(activation="nope"), "unknown activation"),
        (dict(log_std_min=2.0, log_std_max=-2.0), "log_std_min"),
    ],
)
def test_config_validation(kwargs, match):
    env, params = E.make("Pendulum-v1")
    with pytest.raises(ValueError, match=match):
        make_sac(SACConfig(**kwargs), env, params)


def test_hparams_are_a_pytree():
    leaves = jax.tree.leaves(SACHparams())
    assert len(leaves) == 7
    assert Transition._fields == ("obs", "action", "reward", "next_obs", "terminated")
