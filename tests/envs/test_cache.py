"""CacheReplacement-v0: hit counts equal the pure-Python simulator exactly, trace families,
predictions, vmapping over program traces, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import make
from accelrl.envs.cache import (
    CacheReplacement,
    Trace,
    make_policy,
    matmul_trace,
    next_use_times,
    program_traces,
    rollout,
    s3fifo,
    simulate,
    stencil_trace,
)
from accelrl.envs.cache.reference import next_uses

RULES = ("belady", "predicted", "lru", "lfu", "fifo")


@pytest.fixture(scope="module")
def env():
    return CacheReplacement(
        num_sets=4, ways=4, line_size=64, episode_length=256, max_trace_len=1024, max_objects=512
    )


@pytest.fixture(scope="module")
def play_all(env):
    """Jitted: hits of every rule in RULES and the final state's trace window, for one params."""

    @jax.jit
    def run(params, key):
        states, hits = zip(
            *(rollout(env, params, make_policy(env, r), key) for r in RULES), strict=True
        )
        return jnp.stack(hits), states[0].line

    return run


def _params(env, kind):
    if kind == "zipf":
        return env.synthetic_params(zipf_alpha=0.8, num_objects=100, mix=(1, 0, 0))
    if kind == "mixture":
        return env.synthetic_params(num_objects=64, loop_length=20, mix=(0.5, 0.3, 0.2))
    if kind == "phases":
        return env.synthetic_params(num_objects=40, mix=(0.8, 0.2, 0), phase_length=64)
    if kind == "matmul":
        return env.params_for_trace(matmul_trace(16, 4))
    if kind == "stencil":
        return env.params_for_trace(stencil_trace(20, 8))
    return env.params_for_trace(program_traces("validation", 1024)[-1])  # an XLA program


@pytest.mark.parametrize("kind", ["zipf", "mixture", "phases", "matmul", "stencil", "xla"])
def test_rules_match_the_python_simulator_exactly(env, play_all, kind):
    params = _params(env, kind)
    hits, line = play_all(params, jax.random.key(3))
    line = np.asarray(line)
    for rule, h in zip(RULES, np.asarray(hits), strict=True):
        ref = simulate(line, env.num_sets, env.ways, "belady" if rule == "predicted" else rule)
        assert int(h) == ref, (kind, rule, int(h), ref)
    # Belady is the optimum; the window is not trivial (rules differ somewhere)
    assert hits[0] == hits.max()
    assert s3fifo(line, env.num_sets, env.ways) <= hits[0]


def test_the_comparison_can_fail(env, play_all):
    """A wrong answer (another rule's hits, or the hits of another geometry) is caught."""
    hits, line = play_all(_params(env, "mixture"), jax.random.key(3))
    line = np.asarray(line)
    lru = simulate(line, env.num_sets, env.ways, "lru")
    assert int(hits[RULES.index("fifo")]) != lru
    assert simulate(line, env.num_sets, env.ways - 1, "lru") != int(hits[RULES.index("lru")])


def test_any_victim_sequence_replays_exactly(env):
    """Random victims recorded in JAX give the same hits when replayed in Python."""
    params = _params(env, "mixture")

    @jax.jit
    def episode(key):
        k0, key = jax.random.split(key)
        _, state = env.reset_env(k0, params)
        T = env.episode_length

        def body(carry):
            state, key, acts, n = carry
            key, ka, ks = jax.random.split(key, 3)
            a = jax.random.randint(ka, (), 0, env.ways)
            _, state, _, _, _ = env.step_env(ks, state, a, params)
            return state, key, acts.at[n].set(a), n + 1

        init = (state, key, jnp.zeros(T, jnp.int32), jnp.int32(0))
        state, _, acts, n = jax.lax.while_loop(lambda c: c[0].t < T, body, init)
        return state, acts, n

    state, acts, n = episode(jax.random.key(7))
    victims = np.asarray(acts)[: int(n)]
    assert int(n) == int(state.time) > 0
    ref = simulate(np.asarray(state.line), env.num_sets, env.ways, "replay", victims=victims)
    assert int(state.hits) == ref
    wrong = (victims + 1) % env.ways
    assert simulate(np.asarray(state.line), env.num_sets, env.ways, "replay", victims=wrong) != ref


def test_rewards_add_up_to_the_hits_after_the_first_decision(env):
    params = _params(env, "zipf")
    obs, state = env.reset_env(jax.random.key(0), params)
    before = int(state.hits)
    step = jax.jit(env.step_env)
    total = 0.0
    lru = make_policy(env, "lru")
    while int(state.t) < env.episode_length:
        assert bool(env._needs_decision(state))  # every step stops at a decision
        obs, state, r, done, info = step(jax.random.key(1), state, lru(None, state), params)
        total += float(r)
        assert obs.shape == (env.num_features,) and 0 <= obs.min() and obs.max() <= 1
    assert bool(done) and total + before == int(state.hits) == int(info["hits"])


def test_reference_simulator_on_hand_computed_traces():
    # one set of 2 ways; a b c a b: LRU evicts a for c, then b for a -> 0 hits; Belady keeps a
    trace = [0, 1, 2, 0, 1]
    assert simulate(trace, 1, 2, "lru") == 0
    assert simulate(trace, 1, 2, "fifo") == 0
    assert simulate(trace, 1, 2, "belady") == 1
    # LFU keeps the frequent line a: a a b c a -> hits at t=1 and t=4
    assert simulate([0, 0, 1, 2, 0], 1, 2, "lfu") == 2
    assert simulate([0, 0, 1, 2, 0], 1, 2, "lru") == 1
    # S3-FIFO (8 ways: small queue of 1) is scan-resistant where LRU is not
    hot = [0, 1, 2, 3, 4, 5] * 2
    scanned = hot + [100 + i for i in range(10)] + hot
    assert s3fifo(scanned, 1, 8) > simulate(scanned, 1, 8, "lru")
    assert next_uses([5, 6, 5, 5]) == [2, float("inf"), 3, float("inf")]


def test_next_use_times_match_python():
    line = np.random.default_rng(0).integers(0, 30, 200)
    ref = [2 * 200 if x == float("inf") else x for x in next_uses(line.tolist())]
    np.testing.assert_array_equal(np.asarray(next_use_times(jnp.asarray(line))), ref)


def test_synthetic_families(env):
    reset = jax.jit(env.reset_env)
    key = jax.random.key(0)
    # a scan never hits; a loop that fits the cache hits after its first pass
    _, s = reset(key, env.synthetic_params(mix=(0, 0, 1)))
    assert len(np.unique(np.asarray(s.line))) == env.episode_length
    _, s = reset(key, env.synthetic_params(mix=(0, 1, 0), loop_length=12))
    line = np.asarray(s.line)
    assert np.array_equal(line[12:], line[:-12]) and len(np.unique(line)) == 12
    # Zipf: rank 1 is the most frequent, more so with a larger exponent
    counts = []
    for alpha in (0.5, 1.2):
        _, s = reset(key, env.synthetic_params(zipf_alpha=alpha, num_objects=200, mix=(1, 0, 0)))
        counts.append(np.bincount(np.asarray(s.line), minlength=200))
    assert counts[1][0] == counts[1].max() and counts[1][0] > counts[0][0]
    # phase change: no line is shared between phases
    _, s = reset(key, env.synthetic_params(mix=(1, 0, 0), num_objects=50, phase_length=128))
    line = np.asarray(s.line)
    assert not set(line[:128]) & set(line[128:])


def test_prediction_error_and_switch(env):
    exact = env.synthetic_params(pred_noise=0.0)
    noisy = env.synthetic_params(pred_noise=1.0)
    _, s0 = env.reset_env(jax.random.key(0), exact)
    _, s1 = env.reset_env(jax.random.key(0), noisy)
    t = np.arange(env.episode_length)
    nxt = np.asarray(s0.next_use)
    dist = np.where(nxt < env.episode_length, nxt, 2 * env.episode_length) - t
    np.testing.assert_allclose(np.asarray(s0.pred_next), t + dist, rtol=1e-6)
    ratio = (np.asarray(s1.pred_next) - t) / dist
    assert 0.6 < np.std(np.log(ratio)) < 1.4
    # predictions off: the predicted-arrival features are zero, nothing else changes
    off = env.synthetic_params(predictions=False)
    o_on, _ = env.reset_env(jax.random.key(0), exact)
    o_off, _ = env.reset_env(jax.random.key(0), off)
    pred_cols = np.arange(env.ways) * 5 + 3
    assert np.all(np.asarray(o_off)[pred_cols] == 0) and np.any(np.asarray(o_on)[pred_cols] > 0)
    keep = np.setdiff1d(np.arange(env.num_features), [*pred_cols, env.num_features - 1])
    np.testing.assert_array_equal(np.asarray(o_on)[keep], np.asarray(o_off)[keep])


def test_vmap_over_program_traces(env, play_all):
    traces = [matmul_trace(16, 4), stencil_trace(20, 8).repeated(1024)]
    params = env.params_for_traces(traces)
    assert params.trace_addr.shape == (2, env.max_trace_len)
    run = jax.jit(jax.vmap(lambda p, k: rollout(env, p, make_policy(env, "lru"), k)[1]))
    hits = np.asarray(run(params, jnp.stack([jax.random.key(0), jax.random.key(1)])))
    for b in range(len(traces)):
        single, _ = play_all(jax.tree.map(lambda x, b=b: x[b], params), jax.random.key(b))
        assert hits[b] == int(single[RULES.index("lru")])
        assert 0 < hits[b] < env.episode_length


def test_program_trace_splits():
    names = {s: [t.name for t in program_traces(s)] for s in ("train", "validation", "test")}
    assert all(names.values())
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not set(names[a]) & set(names[b])
    assert any(n.startswith("xla/") for n in names["test"])
    assert any(n.startswith("matmul/") for n in names["test"])


def test_make_defaults():
    env, params = make("CacheReplacement-v0")
    assert env.action_space(params).n == 8
    obs, state = jax.jit(env.reset)(jax.random.key(0), params)
    assert obs.shape == env.observation_space(params).shape and obs.dtype == jnp.float32
    assert int(state.t) < env.episode_length


def test_bad_input_is_refused(env):
    with pytest.raises(ValueError, match="ways"):
        CacheReplacement(ways=1)
    with pytest.raises(ValueError, match="num_sets"):
        CacheReplacement(num_sets=0)
    with pytest.raises(ValueError, match="max_trace_len"):
        CacheReplacement(episode_length=100, max_trace_len=10)
    with pytest.raises(ValueError, match="mix"):
        env.synthetic_params(mix=(1, 0))
    with pytest.raises(ValueError, match="num_objects"):
        env.synthetic_params(num_objects=10**6)
    with pytest.raises(ValueError, match="episode_length"):
        env.params_for_trace(Trace(np.arange(10) * 64, np.zeros(10)))
    with pytest.raises(ValueError, match="pc"):
        Trace(np.arange(4), np.full(4, 9))
    with pytest.raises(ValueError, match="split"):
        program_traces("dev")
    with pytest.raises(ValueError, match="policy"):
        make_policy(env, "mru")
    with pytest.raises(ValueError, match="policy"):
        simulate([1, 2], 1, 2, "mru")
