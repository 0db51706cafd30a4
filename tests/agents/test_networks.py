"""Networks: shapes for every action kind, torso sharing, masking through the module."""

import jax
import jax.numpy as jnp
import pytest

from accelrl.agents.networks import MLP, ActorCritic, activation_fn


def test_mlp_shapes_and_unknown_activation():
    net = MLP((16, 8), "relu", out_dim=3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((5, 4)))
    assert net.apply(params, jnp.ones((2, 5, 4))).shape == (2, 5, 3)
    assert MLP((16,)).apply(MLP((16,)).init(jax.random.PRNGKey(0), jnp.zeros(4)), jnp.zeros(4)).shape == (16,)
    with pytest.raises(ValueError, match="unknown activation"):
        activation_fn("sigmoidish")


@pytest.mark.parametrize("shared", [False, True])
def test_actor_critic_discrete_and_continuous(shared):
    key = jax.random.PRNGKey(0)
    obs = jnp.ones((6, 4))
    disc = ActorCritic(action_dim=3, shared_torso=shared, hidden_sizes=(32,))
    params = disc.init(key, obs)
    pi, v = disc.apply(params, obs)
    assert pi.logits.shape == (6, 3) and v.shape == (6,)
    assert ("torso" in params["params"]) == shared
    cont = ActorCritic(action_dim=2, continuous=True, shared_torso=shared, log_std_init=-0.5)
    params = cont.init(key, obs)
    pi, v = cont.apply(params, obs)
    assert pi.sample(seed=key).shape == (6, 2) and v.shape == (6,)
    assert jnp.allclose(params["params"]["log_std"], -0.5)


def test_actor_critic_masked_obs_dict():
    net = ActorCritic(action_dim=4)
    obs = {"observation": jnp.ones((3, 5)), "action_mask": jnp.array([[True, False, False, False]] * 3)}
    params = net.init(jax.random.PRNGKey(0), obs)
    pi, _ = net.apply(params, obs)
    samples = pi.sample(seed=jax.random.PRNGKey(1), sample_shape=(100,))
    assert bool(jnp.all(samples == 0))
