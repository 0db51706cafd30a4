"""MallocGame-v0: parity with the pure-Python rules, placement validity, vmapping, rendering."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import VecEnv, make
from accelrl.envs.malloc import (
    MallocGame,
    Workload,
    first_fit,
    lowest_offset_policy,
    offsets_in_bytes,
    play,
    random_policy,
    required_slots,
    rollout,
    validate,
    workload_from_params,
)
from accelrl.envs.malloc.reference import ReferenceGame, reference_episode

K = 4


def random_workload(seed: int, n: int, horizon: int = 40) -> Workload:
    """Rectangles with sizes spanning two orders of magnitude and benefits not ~ size."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, horizon, n)
    end = np.minimum(start + rng.integers(0, horizon // 3, n), horizon - 1)
    size = rng.integers(1, 100, n) * rng.choice([1, 8, 64], n)
    benefit = rng.uniform(0.0, 1.0, n) * np.sqrt(size)
    return Workload(size=size, start=start, end=end, benefit=benefit, name=f"rand{seed}")


@pytest.fixture(scope="module")
def setup():
    workloads = [random_workload(s, n) for s, n in ((0, 12), (1, 20), (2, 31), (3, 25))]
    env, params = MallocGame.for_workloads(
        workloads,
        num_candidates=K,
        num_bins=4,
        lookahead=1,
        alignment=8,
        capacity_fraction=0.6,
    )
    return env, params, workloads


def _unbatch(params, b):
    return jax.tree.map(lambda x: x[b], params)


def make_runner(env):
    """Jitted episode under a fixed action sequence: final state, observations, rewards, ..."""

    @jax.jit
    def run(params, actions):
        obs, state = env.reset_env(jax.random.key(0), params)

        def body(carry, a):
            obs, state = carry
            obs2, state2, r, term, info = env.step_env(jax.random.key(0), state, a, params)
            return (obs2, state2), (obs, r, term, info["placed"], state)

        (_, final), (obs_seq, rew, term, placed, states) = jax.lax.scan(body, (obs, state), actions)
        return final, obs_seq, rew, term, placed, states

    return run


@pytest.fixture(scope="module")
def scripted(setup):
    return make_runner(setup[0])


def _ref(env, params):
    return ReferenceGame(params, env.num_candidates, env.num_bins, env.lookahead, env.max_live)


@pytest.mark.parametrize("b", [0, 1, 2, 3])
def test_parity_with_reference_random_actions(setup, scripted, b):
    env, params, _ = setup
    p = _unbatch(params, b)
    n = int(p.num_buffers)
    actions = np.random.default_rng(b).integers(0, env.num_actions, env.max_buffers)
    final, obs, rew, term, *_ = scripted(p, jnp.asarray(actions, jnp.int32))
    ref = reference_episode(_ref(env, p), actions)
    for t in range(n):
        np.testing.assert_array_equal(
            np.asarray(obs["action_mask"][t]), ref["obs"][t]["action_mask"]
        )
        np.testing.assert_allclose(
            np.asarray(obs["observation"][t]), ref["obs"][t]["observation"], atol=2e-5
        )
    np.testing.assert_allclose(np.asarray(rew[:n]), ref["rewards"], atol=1e-7)
    assert not bool(term[n - 2]) and bool(term[n - 1])
    np.testing.assert_array_equal(np.asarray(final.offset[:n]), ref["offsets"])
    assert float(rew[n:].sum()) == 0.0  # steps past the end are no-ops


def test_parity_in_xla_order_and_with_a_full_sweep_table(setup):
    """Other orders and a table too small to hold every live buffer: still the same rules."""
    _, _, workloads = setup
    w = workloads[2]
    big = MallocGame(
        max_buffers=w.num_buffers,
        max_live=w.num_buffers,
        num_candidates=3,
        num_bins=4,
        lookahead=2,
        alignment=8,
    )
    envs = {
        m: MallocGame(
            max_buffers=w.num_buffers,
            max_live=m,
            num_candidates=3,
            num_bins=4,
            lookahead=2,
            alignment=8,
        )
        for m in (w.num_buffers, 3)
    }
    runners = {m: make_runner(e) for m, e in envs.items()}
    for order, max_live in (("xla", w.num_buffers), ("size", w.num_buffers), ("start", 3)):
        p = big.params_for(w, order=order)
        env = envs[max_live]
        actions = np.random.default_rng(7).integers(0, env.num_actions, env.max_buffers)
        actions[::3] = 1  # place often, so that a small table fills up
        final, obs, rew, *_ = runners[max_live](p, jnp.asarray(actions, jnp.int32))
        ref = reference_episode(_ref(env, p), actions)
        masks = np.asarray(obs["action_mask"])
        for t in range(w.num_buffers):
            np.testing.assert_array_equal(masks[t], ref["obs"][t]["action_mask"])
        np.testing.assert_allclose(np.asarray(rew), ref["rewards"], atol=1e-7)
        np.testing.assert_array_equal(np.asarray(final.offset), ref["offsets"])
        if max_live == 3:  # the table-full rule was exercised: a fitting buffer was masked
            assert any(not m[1] for m in masks) and np.all(np.asarray(final.slot_used).sum() <= 3)


def test_reference_oracle_catches_a_wrong_game(setup, scripted):
    """The parity check can fail: a game with a different capacity disagrees."""
    env, params, _ = setup
    p = _unbatch(params, 1)
    actions = np.ones(env.max_buffers, np.int64)
    ref = reference_episode(_ref(env, p), actions)
    n = int(p.num_buffers)
    tops = np.where(np.array(ref["offsets"]) >= 0, np.array(ref["offsets"]) + p.size[:n], 0)
    wrong = p.replace(
        capacity=jnp.asarray(tops.max() - 1, jnp.int32)
    )  # the top buffer no longer fits
    final, *_ = scripted(wrong, jnp.asarray(actions, jnp.int32))
    assert not np.array_equal(np.asarray(final.offset[: int(p.num_buffers)]), ref["offsets"])


@pytest.fixture(scope="module")
def random_episodes(setup):
    env, params, workloads = setup
    keys = jax.random.split(jax.random.key(3), 8)

    @jax.jit
    def many(params):
        def per_wl(p):
            return jax.vmap(lambda k: rollout(env, p, random_policy, k))(keys)

        return jax.vmap(per_wl)(params)

    return many(params)


def test_every_random_episode_validates_and_returns_its_benefit(setup, random_episodes):
    env, params, workloads = setup
    states, returns = random_episodes
    for b, w in enumerate(workloads):
        p = _unbatch(params, b)
        cap = int(p.capacity) * 8
        for e in range(returns.shape[1]):
            st = jax.tree.map(lambda x, b=b, e=e: x[b, e], states)
            off = offsets_in_bytes(st, p)
            frac = validate(w, cap, off, alignment=8)
            assert abs(frac - float(returns[b, e])) < 1e-5
            assert abs(float(st.placed_benefit) - frac) < 1e-5
    assert float(returns.max()) > 0.0


def test_mask_is_exactly_the_feasible_canonical_offsets(setup, scripted):
    """Each legal action's offset fits; every other canonical offset (0 or a top) does not;
    an illegal action is played as a spill."""
    env, params, _ = setup
    p = _unbatch(params, 3)
    w = workload_from_params(p)
    actions = np.random.default_rng(0).integers(0, env.num_actions, env.max_buffers)
    _, obs, rew, _, placed, states = scripted(p, jnp.asarray(actions, jnp.int32))
    order, cap, units = np.asarray(p.order), int(p.capacity), w.size // 8
    offsets, cands = np.asarray(states.offset), np.asarray(states.cand)
    masks = np.asarray(obs["action_mask"])
    n_illegal = 0
    for t in range(w.num_buffers):
        i, off = order[t], offsets[t]
        ov = [
            j
            for j in np.flatnonzero(off[: w.num_buffers] >= 0)
            if w.start[j] <= w.end[i] and w.start[i] <= w.end[j]
        ]
        canon = sorted({0} | {int(off[j] + units[j]) for j in ov})
        fits = [
            c
            for c in canon
            if c + units[i] <= cap
            and all(not (c < off[j] + units[j] and off[j] < c + units[i]) for j in ov)
        ]
        assert masks[t, 0] and masks[t, 1:].sum() == min(len(fits), K)
        np.testing.assert_array_equal(cands[t, : min(len(fits), K)], fits[:K])
        a = actions[t]
        if not masks[t, a] or a == 0:
            n_illegal += a != 0
            assert not bool(placed[t]) and float(rew[t]) == 0.0
            assert offsets[t + 1, i] == -1
        else:
            assert offsets[t + 1, i] == cands[t, a - 1] and float(rew[t]) > 0
    assert n_illegal > 0


def test_lowest_offset_policy_is_first_fit(setup):
    env, params, workloads = setup
    for b, w in enumerate(workloads):
        p = _unbatch(params, b)
        off = play(env, p, lowest_offset_policy, jax.random.key(0))
        cap = int(p.capacity) * 8
        np.testing.assert_array_equal(off, first_fit(w, cap, alignment=8))
        validate(w, cap, off, alignment=8)


@pytest.mark.parametrize("order", ["xla", "benefit_per_area", "duration"])
def test_lowest_offset_policy_is_first_fit_in_any_named_order(setup, order):
    _, _, workloads = setup
    env = MallocGame(
        max_buffers=31,
        max_live=31,
        num_candidates=K,
        num_bins=4,
        lookahead=1,
        alignment=8,
        capacity_fraction=0.6,
        order=order,
        default_workload=workloads[0],
    )
    for w in workloads:
        p = env.params_for(w)
        off = play(env, p, lowest_offset_policy, jax.random.key(0))
        cap = int(p.capacity) * 8
        np.testing.assert_array_equal(off, first_fit(w, cap, alignment=8, order=order))
    # an explicit permutation plays the same as the named order it spells
    w = workloads[2]
    explicit = env.params_for(w, order=w.order(order))
    np.testing.assert_array_equal(explicit.order, env.params_for(w).order)


def test_workloads_of_different_sizes_vmap_in_a_batched_env(setup):
    env, params, workloads = setup
    venv = VecEnv(env, len(workloads))
    obs, state = venv.reset(jax.random.key(0), params)
    assert obs["observation"].shape == (4, env.num_features)
    assert obs["observation"].dtype == jnp.float32 and obs["action_mask"].dtype == jnp.bool_
    ones = jnp.ones(len(workloads), jnp.int32)
    done_at = {}
    for t in range(env.max_buffers):
        obs, state, r, term, trunc, info = venv.step(jax.random.key(t), state, ones, params)
        assert not bool(trunc.any())
        for b in np.flatnonzero(np.asarray(info["done"])):
            done_at.setdefault(int(b), t + 1)
    assert done_at == {b: w.num_buffers for b, w in enumerate(workloads)}


def test_sweep_table_bounds_and_errors():
    w = random_workload(5, 40)
    assert required_slots(w, w.order("start")) <= w.peak_live_count
    assert required_slots(w, w.order("xla")) >= required_slots(w, w.order("start"))
    env = MallocGame(max_buffers=40, max_live=2, alignment=8)
    with pytest.raises(ValueError, match="max_live=2"):
        env.params_for(w)
    with pytest.raises(ValueError, match="max_buffers=30"):
        MallocGame(max_buffers=30, max_live=40).params_for(w)
    with pytest.raises(ValueError, match="permutation"):
        MallocGame(max_buffers=40, max_live=40).params_for(w, order=np.zeros(40, int))


def test_make_spaces_and_render():
    env, params = make("MallocGame-v0", max_buffers=32, max_live=16)  # small: fast compile
    obs, state = env.reset(jax.random.key(0), params)
    space = env.observation_space(params)
    assert obs["observation"].shape == space.spaces["observation"].shape
    assert bool(space.spaces["observation"].contains(obs["observation"]))
    assert obs["action_mask"].shape == (env.num_actions,) and bool(obs["action_mask"][0])
    assert env.action_space(params).n == env.num_actions
    states = [state]
    for _ in range(3):
        obs, state, *_ = env.step(jax.random.key(1), state, 1, params)
        states.append(state)
    img = env.render(states, params)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.std() > 0
