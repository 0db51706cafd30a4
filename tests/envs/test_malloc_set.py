"""MallocGame's set observation (``set_size``) and the game's best-fit policy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs.malloc import (
    MallocGame,
    Workload,
    best_fit_policy,
    offsets_in_bytes,
    random_policy,
    rollout,
    validate,
    xla_best_fit,
)
from accelrl.envs.malloc.game import CANDIDATE_FEATURES, SET_FEATURES


def random_workload(seed: int, n: int, horizon: int = 30) -> Workload:
    rng = np.random.default_rng(seed)
    start = rng.integers(0, horizon, n)
    end = np.minimum(start + rng.integers(0, horizon // 2, n), horizon - 1)
    size = rng.integers(1, 60, n) * rng.choice([1, 8], n)
    benefit = rng.uniform(0.0, 1.0, n) * np.sqrt(size)
    return Workload(size=size, start=start, end=end, benefit=benefit, name=f"rand{seed}")


def test_default_observation_has_no_set_keys_and_bad_set_size_is_refused():
    env, params = MallocGame.for_workloads([random_workload(0, 10)], num_candidates=3)
    obs, _ = env.reset_env(jax.random.key(0), jax.tree.map(lambda x: x[0], params))
    assert set(obs) == {"observation", "action_mask"}
    assert set(env.observation_space().spaces) == {"observation", "action_mask"}
    for bad, error in ((-1, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="set_size"):
            MallocGame(max_buffers=10, max_live=10, set_size=bad)


def _reference_set(env, state, params):
    """numpy recomputation of the set observation from the state (the docstring's rules)."""
    K = env.num_candidates
    t = int(state.time)
    n = int(params.num_buffers)
    i = int(params.order[min(t, env.max_buffers - 1)])
    size, cap = int(params.size[i]), max(int(params.capacity), 1)
    real = (np.arange(K) < int(state.num_cand)) & bool(state.can_place)
    cand, gap = np.asarray(state.cand), np.asarray(state.cand_gap)
    used = np.asarray(state.slot_used)
    s, e = np.asarray(state.slot_start), np.asarray(state.slot_end)
    ov = used & (s <= int(params.end[i])) & (e >= int(params.start[i])) & (t < n)
    lo = np.asarray(state.slot_off)
    hi = lo + np.asarray(state.slot_size)
    ranges = [(c, c + size) for c in cand[real]] or [(0, size)]
    dist = np.array(
        [min(max(a - d, 0) + max(c - b, 0) for c, d in ranges) for a, b in zip(lo, hi, strict=True)]
    )
    return real, cand / cap, gap / cap, ov, dist, lo, cap


def test_set_observation_describes_the_candidates_and_the_nearest_placed_buffers():
    w = random_workload(3, 40)
    M = 5
    env, params = MallocGame.for_workloads(
        [w], num_candidates=4, order="xla", set_size=M, alignment=1, capacity_fraction=0.7
    )
    p = jax.tree.map(lambda x: x[0], params)
    space = env.observation_space(p)
    step = jax.jit(env.step_env)
    obs, state = env.reset_env(jax.random.key(0), p)
    key = jax.random.key(1)
    seen_truncated = False
    for _ in range(w.num_buffers):
        assert obs["candidates"].shape == (4, CANDIDATE_FEATURES)
        assert obs["buffers"].shape == (M, SET_FEATURES) and obs["buffer_mask"].shape == (M,)
        assert all(bool(space.spaces[k].contains(obs[k])) for k in obs)
        real, c_off, c_gap, ov, dist, lo, cap = _reference_set(env, state, p)
        cands = np.asarray(obs["candidates"])
        np.testing.assert_array_equal(cands[:, 0] > 0, real)
        np.testing.assert_array_equal(real, np.asarray(obs["action_mask"][1:]))
        np.testing.assert_allclose(cands[real, 1], c_off[real], rtol=1e-6)
        np.testing.assert_allclose(cands[real, 2], c_gap[real], rtol=1e-6)
        assert np.all(cands[~real] == 0)
        # the buffers: min(M, overlapping) of them, the nearest ones, in offset order
        mask = np.asarray(obs["buffer_mask"])
        bufs = np.asarray(obs["buffers"])
        assert mask.sum() == min(M, ov.sum())
        seen_truncated |= ov.sum() > M
        if mask.any():
            picked_dist = np.sort(np.rint(bufs[mask, 7] * cap).astype(int))
            want = np.sort(dist[ov])[: mask.sum()]
            np.testing.assert_array_equal(picked_dist, want)
            offs = np.rint(bufs[mask, 1] * cap).astype(int)
            assert np.all(np.diff(offs) >= 0) and set(offs) <= set(lo[ov].tolist())
        assert np.all(bufs[~mask] == 0)
        key, k = jax.random.split(key)
        obs, state, *_ = step(k, state, random_policy(k, obs), p)
    assert seen_truncated  # the instance exercises the nearest-M selection


def test_set_observation_does_not_change_play():
    w = random_workload(5, 30)
    plain, pp = MallocGame.for_workloads([w], num_candidates=4)
    with_set, ps = MallocGame.for_workloads([w], num_candidates=4, set_size=8)
    a, ra = rollout(plain, jax.tree.map(lambda x: x[0], pp), random_policy, jax.random.key(2))
    b, rb = rollout(with_set, jax.tree.map(lambda x: x[0], ps), random_policy, jax.random.key(2))
    np.testing.assert_array_equal(np.asarray(a.offset), np.asarray(b.offset))
    assert float(ra) == float(rb)


@pytest.mark.parametrize("seed", range(6))
def test_best_fit_policy_in_xla_order_is_xla_best_fit(seed):
    w = random_workload(seed, 25)
    env, params = MallocGame.for_workloads(
        [w], num_candidates=25, order="xla", alignment=8, capacity_fraction=0.6
    )
    p = jax.tree.map(lambda x: x[0], params)
    state, ret = jax.jit(rollout, static_argnums=(0, 2))(
        env, p, best_fit_policy(env), jax.random.key(0)
    )
    cap = int(p.capacity) * 8
    got = offsets_in_bytes(state, p)
    np.testing.assert_array_equal(got, xla_best_fit(w, cap, 8))
    assert validate(w, cap, got, 8) == pytest.approx(float(ret), abs=1e-5)


def test_best_fit_policy_picks_the_smallest_gap_and_spills_without_candidates():
    env = MallocGame(max_buffers=4, max_live=4, num_candidates=3, lookahead=0)
    gap_at = 6 + 3
    obs = {
        "observation": jnp.zeros(env.num_features)
        .at[gap_at : gap_at + 3]
        .set(jnp.array([0.5, 0.2, 0.1])),
        "action_mask": jnp.array([True, True, True, False]),
    }
    policy = best_fit_policy(env)
    assert int(policy(jax.random.key(0), obs)) == 2  # candidate 3 (gap 0.1) is illegal
    none = dict(obs, action_mask=jnp.array([True, False, False, False]))
    assert int(policy(jax.random.key(0), none)) == 0
