"""Networks: shapes for every action kind, torso sharing, masking through the module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents.networks import (
    MLP,
    ActorCritic,
    Orthogonal,
    _init_plan,
    activation_fn,
    fast_init,
    householder_q,
)


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


@pytest.mark.parametrize("shape", [(7, 3), (16, 16), (2, 40, 9)])
def test_householder_q_is_lapacks_q_with_a_non_negative_r_diagonal(shape):
    """Same factor as ``numpy.linalg.qr`` once its columns are signed by ``diag(R)``; a wrong
    sign convention or a missing reflection fails the comparison."""
    a = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    got = np.asarray(jax.jit(householder_q)(jnp.asarray(a)))
    for g, m in zip(got.reshape(-1, *shape[-2:]), a.reshape(-1, *shape[-2:]), strict=True):
        q, r = np.linalg.qr(m.astype(np.float64))
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        np.testing.assert_allclose(g, q, atol=2e-5)
        np.testing.assert_allclose(g.T @ g, np.eye(shape[-1]), atol=2e-5)
    assert not np.allclose(got, -got)  # not trivially zero


def test_householder_q_edge_cases():
    """A zero column is passed over (no NaN) and a wide matrix is refused."""
    a = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    a[:, 1] = 0.0
    q = np.asarray(householder_q(jnp.asarray(a)))
    assert np.isfinite(q).all()
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=2e-5)
    with pytest.raises(ValueError, match="tall matrix"):
        householder_q(jnp.ones((2, 5)))


def test_orthogonal_initialiser_has_flax_layout_and_gain():
    kernel = Orthogonal(2.0)(jax.random.PRNGKey(0), (4, 3, 5))
    assert kernel.shape == (4, 3, 5)
    flat = np.asarray(kernel).reshape(12, 5)
    np.testing.assert_allclose(flat.T @ flat, 4.0 * np.eye(5), atol=1e-4)


@pytest.mark.parametrize(
    ("env_id", "agent_name", "overrides"),
    [
        ("CartPole-v1", "ppo", {}),
        ("Pendulum-v1", "sac", {}),
        ("CartPole-v1", "dqn", {}),
        ("MPE_simple_spread_v3", "ippo", {"recurrent": True}),
    ],
)
def test_vmapped_init_calls_no_lapack_kernel(env_id, agent_name, overrides):
    """jaxlib 0.10-0.11 can deadlock when batched LAPACK calls run at once on the CPU pool (a
    vmapped PPO init with 16+ members never returned): the members' init has none."""
    from accelrl.agents import build
    from accelrl.agents.runner import seed_vmapped, training_key

    agent, _, _ = build(env_id, agent_name, {"total_timesteps": 2048, **overrides})
    _, init = seed_vmapped(agent)
    keys = jnp.stack([training_key(s) for s in range(3)])
    hparams = jax.tree.map(lambda x: jnp.stack([x] * 3), agent.default_hparams())
    text = init.lower(keys, hparams).as_text()
    assert "lapack" not in text.lower()
    # the check can fail: the same lowering with LAPACK's QR names it
    qr = jax.jit(jax.vmap(jnp.linalg.qr)).lower(jnp.ones((3, 4, 4))).as_text()
    assert "lapack" in qr.lower()
