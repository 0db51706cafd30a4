"""PPO: losses against hand-computed values, truncation bootstrapping, masks, determinism."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents import Agent
from accelrl.agents.ppo import Batch, PPOConfig, make_ppo, policy_loss, value_loss
from accelrl.agents.runner import Runner
from accelrl.envs import EpisodeStatistics, VecEnv, make

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make toy_envs importable
from toy_envs import CounterEnv, MaskedEnv  # noqa: E402

TINY = dict(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=1, total_timesteps=128)


def test_policy_loss_hand_values():
    old = jnp.zeros(2)
    new = jnp.log(jnp.array([1.5, 0.5]))  # ratios 1.5 and 0.5
    adv = jnp.array([2.0, -1.0])
    loss, aux = policy_loss(new, old, adv, 0.2)
    # max(-2*1.5, -2*1.2) = -2.4 ; max(1*0.5, 1*0.8) = 0.8
    np.testing.assert_allclose(loss, (-2.4 + 0.8) / 2, rtol=1e-6)
    np.testing.assert_allclose(aux["clip_fraction"], 1.0)
    kl = ((1.5 - 1) - np.log(1.5) + (0.5 - 1) - np.log(0.5)) / 2
    np.testing.assert_allclose(aux["approx_kl"], kl, rtol=1e-5)
    # Inside the clip range the loss is the plain surrogate.
    loss_in, aux_in = policy_loss(jnp.log(jnp.array([1.1])), jnp.zeros(1), jnp.array([3.0]), 0.2)
    np.testing.assert_allclose(loss_in, -3.3, rtol=1e-6)
    assert float(aux_in["clip_fraction"]) == 0.0


def test_value_loss_hand_values():
    v, old, target = jnp.array([1.0, 3.0]), jnp.zeros(2), jnp.array([2.0, 2.0])
    np.testing.assert_allclose(value_loss(v, old, target, 0.5, clip=False), 0.5)
    # clipped values 0.5 and 0.5 -> squared errors 2.25 each, larger than 1 -> 0.5 * 2.25
    np.testing.assert_allclose(value_loss(v, old, target, 0.5, clip=True), 1.125)


@pytest.fixture(scope="module")
def cartpole(tiny_cartpole_agent):
    agent = tiny_cartpole_agent
    hp = agent.default_hparams()
    state, metrics = agent.run(agent.init(jax.random.PRNGKey(0), hp), hp, 2)
    return agent, hp, state, metrics


def test_agent_loss_combines_parts(cartpole):
    agent, hp, state, _ = cartpole
    n = 6
    obs = jax.random.normal(jax.random.PRNGKey(1), (n, 4))
    pi, value = agent.network.apply(state.params, obs)
    action = jnp.arange(n) % 2
    batch = Batch(
        obs, action, pi.log_prob(action) - 0.1, value + 1.0, jnp.linspace(-1, 1, n), value
    )
    total, parts = agent.loss(state.params, batch, hp)
    adv = (batch.advantage - batch.advantage.mean()) / (batch.advantage.std() + 1e-8)
    ratio = np.exp(0.1)  # new / old = e^0.1 = 1.105, inside the clip range 1 +- 0.2
    np.testing.assert_allclose(parts["policy_loss"], np.mean(-adv * ratio), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts["value_loss"], 0.0, atol=1e-10)
    ent = pi.entropy().mean()
    np.testing.assert_allclose(total, parts["policy_loss"] - hp.ent_coef * ent, rtol=1e-5)


def test_metrics_contract(cartpole):
    agent, _, state, metrics = cartpole
    assert isinstance(agent, Agent)
    for k in (
        "env_steps",
        "episode_return",
        "episode_length",
        "policy_loss",
        "value_loss",
        "entropy",
    ):
        assert metrics[k].shape == (2,) and metrics[k].dtype == jnp.float32
    np.testing.assert_array_equal(metrics["env_steps"], [32.0, 64.0])
    assert int(state.update_step) == 2 and int(state.env_steps) == 64
    lr = metrics["learning_rate"]
    np.testing.assert_allclose(lr, [2.5e-4, 2.5e-4 * (1 - 1 / 4)], rtol=1e-6)


def test_same_seed_same_metrics_and_vmap_over_seeds_and_hparams(cartpole):
    agent, hp, _, metrics = cartpole
    _, again = agent.run(agent.init(jax.random.PRNGKey(0), hp), hp, 2)
    for k in metrics:
        np.testing.assert_array_equal(metrics[k], again[k])
    # vmap over seeds and hparams through the runner (jax.vmap(agent.init), then
    # jax.vmap(agent.run, in_axes=(0, 0, None)); programs shared with test_runner.py)
    runner = Runner(agent, [3, 4], segments=2, progress=False)
    runner.hparams = runner.hparams.replace(learning_rate=jnp.array([1e-3, 0.0], jnp.float32))
    states = runner.init_state()
    res = runner.train(states)
    out, m = res.state, res.metrics
    assert m["loss"].shape == (2, 4)
    p0 = jax.tree.leaves(states.params)[0]
    p1 = jax.tree.leaves(out.params)[0]
    assert not np.allclose(p0[0], p1[0]) and np.array_equal(p0[1], p1[1])


def test_truncation_bootstraps_and_termination_does_not():
    env = CounterEnv()
    agent = make_ppo(
        PPOConfig(
            num_envs=8, num_steps=16, num_minibatches=1, update_epochs=1, total_timesteps=128
        ),
        env,
    )
    hp = agent.default_hparams().replace(gamma=jnp.float32(0.9), gae_lambda=jnp.float32(0.95))
    state = agent.init(jax.random.PRNGKey(0), hp)
    state, traj = agent.collect(state)
    adv, _ = agent.targets(state.params, traj, hp)
    terminated = np.asarray(traj.terminated)
    truncated = np.asarray(traj.done) & ~terminated
    assert terminated.any() and truncated.any()
    # final_observation is the pre-reset observation: time 3 at truncation, never the reset 0.
    np.testing.assert_array_equal(np.asarray(traj.next_obs)[truncated][:, 0], 3.0)
    v = lambda o: agent.network.apply(state.params, o)[1]  # noqa: E731
    # At an episode end the recursion is cut, so A_t = delta_t.
    r, obs, nobs = np.asarray(traj.reward), traj.obs, traj.next_obs
    a = np.asarray(adv)
    want_trunc = r + 0.9 * np.asarray(v(nobs)) - np.asarray(v(obs))
    want_term = r - np.asarray(v(obs))
    np.testing.assert_allclose(a[truncated], want_trunc[truncated], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a[terminated], want_term[terminated], rtol=1e-5, atol=1e-5)
    # ... and the two rules differ (the check can fail).
    assert np.max(np.abs(want_trunc[truncated] - want_term[truncated])) > 1e-3


def test_masked_discrete_never_takes_invalid_action():
    agent = make_ppo(PPOConfig(**TINY), MaskedEnv())
    assert agent.spec.kind == "masked_discrete"
    hp = agent.default_hparams()
    state = agent.init(jax.random.PRNGKey(0), hp)
    state, traj = agent.collect(state)
    mask = np.asarray(traj.obs["action_mask"])
    picked = np.take_along_axis(mask, np.asarray(traj.action)[..., None], -1)
    assert picked.all()
    assert (np.asarray(traj.reward) >= 0).all()  # a violation would cost -100
    ret = agent.evaluate(state, jax.random.PRNGKey(5), 4, False)  # stochastic, masked
    assert ret.shape == (4,) and bool(jnp.all(ret >= 0))
    # observation normalisation leaves the action mask untouched
    normed = make_ppo(PPOConfig(**TINY, normalize_obs=True), MaskedEnv())
    hp = normed.default_hparams()
    state, traj = normed.collect(normed.init(jax.random.PRNGKey(1), hp))
    assert traj.obs["action_mask"].dtype == jnp.bool_
    picked = np.take_along_axis(
        np.asarray(traj.obs["action_mask"]), np.asarray(traj.action)[..., None], -1
    )
    assert picked.all()


def test_continuous_pendulum_with_obs_normalisation():
    env, params = make("Pendulum-v1")
    agent = make_ppo(PPOConfig(**TINY, normalize_obs=True, clip_value_loss=True), env, params)
    assert agent.spec.kind == "continuous" and agent.spec.dim == 1
    hp = agent.default_hparams()
    state, m = agent.run(agent.init(jax.random.PRNGKey(0), hp), hp, 2)
    assert np.isfinite(np.asarray(m["loss"])).all()
    stats = state.env_state.inner.stats  # EpisodeStatistics -> NormalizeObservation
    assert float(stats.count) > 32
    ret = agent.evaluate(state, jax.random.PRNGKey(2), 2, False)
    assert ret.shape == (2,) and bool(jnp.all(ret < 0))


def test_already_batched_env_is_used_as_is():
    env, params = make("CartPole-v1")
    batched = EpisodeStatistics(VecEnv(env, 4))
    agent = make_ppo(PPOConfig(**TINY), batched, params)
    assert agent.env is batched
    with pytest.raises(ValueError, match="num_envs"):
        make_ppo(PPOConfig(**{**TINY, "num_envs": 8}), batched, params)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(num_minibatches=3), "does not divide"),
        (dict(total_timesteps=10), "smaller than one update"),
        (dict(num_envs=0), "num_envs"),
        (dict(activation="swishy"), "unknown activation"),
    ],
)
def test_config_validation(bad, match):
    env, params = make("CartPole-v1")
    with pytest.raises(ValueError, match=match):
        make_ppo(PPOConfig(**{**TINY, **bad}), env, params)


def test_env_params_are_checked_on_the_host_at_construction():
    env, params = make("ThreeBody-v0")
    config = PPOConfig(**TINY)
    with pytest.raises(ValueError, match=r"^ThreeBody-v0 params: masses\[0\] = 0, must be > 0"):
        make_ppo(config, env, params.replace(masses=jnp.zeros(3)))
    with pytest.raises(TypeError, match="params must be its EnvParams"):
        make_ppo(config, env, make("CartPole-v1")[1])
    per_copy = params.replace(masses=jnp.ones((config.num_envs, 3)))  # one task per copy
    assert make_ppo(config, env, per_copy).env_params is per_copy
