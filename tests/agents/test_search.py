"""GumbelSearch: masking at every node, discount 0 at the end, improvement over its prior."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents.distributions import masked_categorical
from accelrl.agents.search import GumbelSearch, SearchConfig
from accelrl.envs.malloc import MallocGame, Workload, offsets_in_bytes, validate

K = 3


def workloads():
    rng = np.random.default_rng(1)
    out = []
    for s, n in ((0, 9), (1, 12)):
        start = rng.integers(0, 12, n)
        out.append(
            Workload(
                size=rng.integers(1, 40, n) * 8,
                start=start,
                end=np.minimum(start + rng.integers(0, 6, n), 11),
                benefit=rng.uniform(0.1, 1.0, n),
                name=f"w{s}",
            )
        )
    return out


@pytest.fixture(scope="module")
def game():
    ws = workloads()
    env, params = MallocGame.for_workloads(
        ws, num_candidates=K, order="xla", alignment=8, capacity_fraction=0.5
    )
    return env, params, ws


def adversarial(params, obs):
    """A network whose prior puts almost all mass on the last action (illegal whenever the
    mask says so: it must never be played) and on spilling, with value 0."""
    n = obs["action_mask"].shape[0]
    logits = jnp.tile(jnp.array([5.0] + [0.0] * (K - 1) + [20.0]), (n, 1))
    return masked_categorical(logits, obs["action_mask"]), jnp.zeros(n)


def spill_loving(params, obs):
    n = obs["action_mask"].shape[0]
    logits = jnp.tile(jnp.array([3.0] + [0.0] * K), (n, 1))
    return masked_categorical(logits, obs["action_mask"]), jnp.zeros(n)


def test_illegal_actions_get_no_visit_at_any_node(game):
    env, params, _ = game
    search = GumbelSearch(env, adversarial, SearchConfig(num_simulations=24))
    node_masks = jax.jit(jax.vmap(jax.vmap(env.get_obs, in_axes=(0, None))))
    run = jax.jit(search.search)
    step = jax.jit(jax.vmap(env.step_env))
    obs, state = jax.vmap(env.reset_env)(jax.random.split(jax.random.key(0), 2), params)
    # walk a few steps in, so the root has placed buffers and some candidates are illegal
    for t in range(3):
        out = run(None, params, jax.random.key(t), obs, state)
        assert np.all(np.asarray(obs["action_mask"])[np.arange(2), np.asarray(out.action)])
        tree = out.search_tree
        # every expanded node's mask, from the env state stored in the node
        masks = np.asarray(node_masks(tree.embeddings, params)["action_mask"])
        visits = np.asarray(tree.children_visits)
        expanded = np.asarray(tree.node_visits) > 0
        assert expanded.sum() > 2 * 10
        assert np.all(np.where(masks, 0, visits)[expanded] == 0)
        assert (~masks[expanded]).any()  # some node really had illegal actions
        obs, state, *_ = step(jax.random.split(jax.random.key(9), 2), state, out.action, params)


def test_discount_is_zero_past_the_end(game):
    env, params, ws = game
    search = GumbelSearch(env, spill_loving, SearchConfig(num_simulations=8))
    obs, state = jax.vmap(env.reset_env)(jax.random.split(jax.random.key(0), 2), params)
    # move both copies to their last buffer
    last = np.asarray([w.num_buffers - 1 for w in ws])
    state = state.replace(time=jnp.asarray(last, jnp.int32))
    obs, state = jax.vmap(env._offer)(state, params)
    tree = search.search(None, params, jax.random.key(1), obs, state).search_tree
    visited = np.asarray(tree.children_visits[:, 0]) > 0
    assert visited.any()
    assert np.all(np.asarray(tree.children_discounts[:, 0])[visited] == 0.0)


def test_search_episodes_beat_their_prior_and_validate(game):
    env, params, ws = game
    search = GumbelSearch(env, spill_loving, SearchConfig(num_simulations=16, gumbel_scale=0.0))
    states, returns = jax.jit(lambda k: search.episodes(None, params, k))(jax.random.key(0))
    for b, w in enumerate(ws):
        p = jax.tree.map(lambda x, b=b: x[b], params)
        cap = int(p.capacity) * 8
        got = validate(w, cap, offsets_in_bytes(jax.tree.map(lambda x, b=b: x[b], states), p), 8)
        assert got == pytest.approx(float(returns[b]), abs=1e-5)
    # the greedy prior always spills (return 0); rewards seen in the tree make search place
    assert np.all(np.asarray(returns) > 0.3)


def test_search_config_is_validated():
    with pytest.raises(ValueError, match="num_simulations"):
        SearchConfig(num_simulations=0).validate()
    with pytest.raises(ValueError, match="discount"):
        SearchConfig(discount=1.5).validate()
    with pytest.raises(ValueError, match="gumbel_scale"):
        SearchConfig(gumbel_scale=-1.0).validate()
