"""Networks: shapes for every action kind, torso sharing, masking through the module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents.networks import MLP, ActorCritic, _init_plan, activation_fn, fast_init


def test_mlp_shapes_and_unknown_activation():
    net = MLP((16, 8), "relu", out_dim=3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((5, 4)))
    assert net.apply(params, jnp.ones((2, 5, 4))).shape == (2, 5, 3)
    assert MLP((16,)).apply(
        MLP((16,)).init(jax.random.PRNGKey(0), jnp.zeros(4)), jnp.zeros(4)
    ).shape == (16,)
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
    obs = {
        "observation": jnp.ones((3, 5)),
        "action_mask": jnp.array([[True, False, False, False]] * 3),
    }
    params = net.init(jax.random.PRNGKey(0), obs)
    pi, _ = net.apply(params, obs)
    samples = pi.sample(seed=jax.random.PRNGKey(1), sample_shape=(100,))
    assert bool(jnp.all(samples == 0))


FAST_INIT_CASES = {
    "actor_critic": (lambda: ActorCritic(action_dim=3, hidden_sizes=(32, 16)), 1),
    "continuous": (lambda: ActorCritic(action_dim=2, continuous=True, log_std_init=-0.5), 1),
    "shared_torso": (lambda: ActorCritic(action_dim=4, shared_torso=True, hidden_sizes=(8,)), 1),
    "layer_norm_mlp": (lambda: MLP((8, 8), out_dim=2, layer_norm=True), 1),
    "twin_q": (
        lambda: __import__("accelrl.agents.networks", fromlist=["TwinQNetwork"]).TwinQNetwork(
            (16, 16), "relu"
        ),
        2,
    ),
}


@pytest.mark.parametrize("case", sorted(FAST_INIT_CASES))
def test_fast_init_matches_flax_init_in_structure_and_law(case):
    """Same tree, shapes and dtypes as ``module.init``; kernels orthogonal with the module's gain;
    biases, LayerNorm and log_std at their constants; deterministic in the key."""
    make, n_inputs = FAST_INIT_CASES[case]
    net = make()
    args = (jnp.ones((1, 5)), jnp.ones((1, 2)))[:n_inputs]
    ref = net.init(jax.random.PRNGKey(0), *args)
    got = fast_init(net, jax.random.PRNGKey(0), *args)
    assert jax.tree.structure(got) == jax.tree.structure(ref)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
    _, plan = _init_plan(net, *args)
    kernels = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(got)[0]:
        kind, value = plan[tuple(k.key for k in path)]
        leaf = np.asarray(leaf, np.float64)
        if kind == "constant":
            np.testing.assert_array_equal(leaf, value)
            continue
        kernels += 1
        for k in leaf.reshape(-1, *leaf.shape[-2:]):  # twin critics: one matrix per copy
            gram = k.T @ k if k.shape[0] >= k.shape[1] else k @ k.T
            np.testing.assert_allclose(gram, value**2 * np.eye(len(gram)), atol=1e-5)
    assert kernels >= 2
    if case == "continuous":
        np.testing.assert_array_equal(np.asarray(got["params"]["log_std"]), -0.5)
    again = fast_init(net, jax.random.PRNGKey(0), *args)
    other = fast_init(net, jax.random.PRNGKey(1), *args)
    for a, b, c in zip(
        jax.tree.leaves(got), jax.tree.leaves(again), jax.tree.leaves(other), strict=True
    ):
        np.testing.assert_array_equal(a, b)
        if a.size > 1 and np.asarray(a).std() > 0:
            assert not np.array_equal(a, c)


def test_fast_init_gains_reach_the_kernels():
    """The output layer of the actor gets gain 0.01, hidden layers sqrt(2)."""
    got = fast_init(
        ActorCritic(action_dim=2, hidden_sizes=(16,)), jax.random.PRNGKey(0), jnp.ones((1, 4))
    )
    actor = got["params"]["actor"]
    hidden, head = np.asarray(actor["Dense_0"]["kernel"]), np.asarray(actor["Dense_1"]["kernel"])
    np.testing.assert_allclose(
        np.linalg.norm(head, axis=0), 0.01, rtol=1e-5
    )  # columns of a tall matrix
    np.testing.assert_allclose(
        np.linalg.norm(hidden, axis=1), np.sqrt(2.0), rtol=1e-5
    )  # rows of a wide one


def test_fast_init_falls_back_for_unknown_initialisers():
    """A parameter it cannot fill (here a lecun-normal kernel) means plain ``module.init``."""
    import flax.linen as nn

    net = nn.Dense(3)
    x = jnp.ones((1, 4))
    got = fast_init(net, jax.random.PRNGKey(0), x)
    ref = net.init(jax.random.PRNGKey(0), x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)
