"""Batched env and batch-level wrappers: resets, episode statistics, observation normalisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import EpisodeStatistics, NormalizeObservation, VecEnv, as_batched, make
from accelrl.envs.vec import RunningMeanStd, params_in_axes

B = 6


def _run(wrapper, params, steps, key=0, action_fn=None):
    obs, state = wrapper.reset(jax.random.key(key), params)
    out = []
    for t in range(steps):
        action = jnp.zeros(B, jnp.int32) if action_fn is None else action_fn(t)
        obs, state, r, term, trunc, info = wrapper.step(
            jax.random.key(1000 + t), state, action, params
        )
        out.append((obs, r, term, trunc, info))
    return state, out


def test_episode_statistics_match_a_python_count():
    env, params = make("CartPole-v1")
    params = params.replace(max_steps_in_episode=15)  # truncation and termination both occur
    wrapper = EpisodeStatistics(VecEnv(env, B))
    _, out = _run(wrapper, params, 60, action_fn=lambda t: jnp.full(B, t % 3 == 0, jnp.int32))
    ret = np.zeros(B)
    length = np.zeros(B, int)
    finished = 0
    for _obs, r, term, trunc, info in out:
        ret += np.asarray(r)
        length += 1
        done = np.asarray(term | trunc)
        np.testing.assert_array_equal(np.asarray(info["returned_episode"]), done)
        for i in np.flatnonzero(done):
            assert info["returned_episode_returns"][i] == pytest.approx(ret[i])
            assert int(info["returned_episode_lengths"][i]) == length[i]
            finished += 1
        ret[done] = 0
        length[done] = 0
    assert finished >= B  # every copy finished at least one episode
    assert np.all(np.asarray(out[-1][4]["returned_episode_lengths"]) <= 15)


def test_reset_only_where_done_and_final_observation():
    env, params = make("CartPole-v1")
    vec = VecEnv(env, B)
    obs, state = vec.reset(jax.random.key(0), params)
    for t in range(40):
        obs, state, r, term, trunc, info = vec.step(
            jax.random.key(t), state, jnp.ones(B, jnp.int32), params
        )
        done = np.asarray(info["done"])
        np.testing.assert_array_equal(done, np.asarray(term | trunc))
        keep = ~done
        np.testing.assert_array_equal(
            np.asarray(obs)[keep], np.asarray(info["final_observation"])[keep]
        )
        assert np.all(np.asarray(state.time)[done] == 0)
    # the reset hook runs under a branch (run_if): not a full reset of every copy on every step
    jaxpr = str(
        jax.make_jaxpr(lambda s: vec.step(jax.random.key(0), s, jnp.ones(B, jnp.int32), params))(
            state
        )
    )
    assert "while[" in jaxpr


def test_reset_hook_can_be_overridden():
    env, params = make("CartPole-v1")

    class FixedStart(VecEnv):
        """Every reset starts at the same state (what a snapshot bank plugs in)."""

        def reset_copies(self, key, params):
            obs, state = super().reset_copies(jax.random.key(42), params)
            return obs, state

    vec = FixedStart(env, B)
    _, state = vec.reset(jax.random.key(0), params)
    starts = []
    for t in range(80):
        obs, state, r, term, trunc, info = vec.step(
            jax.random.key(t), state, jnp.zeros(B, jnp.int32), params
        )
        if bool(info["done"].any()):
            starts.append(np.asarray(obs)[np.asarray(info["done"])])
    assert starts
    ref = np.asarray(super(FixedStart, vec).reset_copies(jax.random.key(42), params)[0])
    for s in starts:
        assert any(np.allclose(s[0], r) for r in ref)


def test_per_copy_params():
    env, params = make("CartPole-v1")
    limits = jnp.array([3, 5, 7, 9, 11, 13])
    batched = params.replace(max_steps_in_episode=limits)
    axes = params_in_axes(batched, params)
    assert axes.max_steps_in_episode == 0 and axes.gravity is None
    wrapper = EpisodeStatistics(VecEnv(env, B))
    _, out = _run(wrapper, batched, 14, action_fn=lambda t: jnp.full(B, t % 2, jnp.int32))
    first_done = [next(t for t, o in enumerate(out) if bool(o[4]["done"][i])) + 1 for i in range(B)]
    assert first_done == limits.tolist()


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (16, 3)).astype(np.float32) for _ in range(5)]
    stats = RunningMeanStd.create(jnp.asarray(batches[0]))
    for b in batches:
        stats = stats.update(jnp.asarray(b))
    allx = np.concatenate(batches)
    np.testing.assert_allclose(np.asarray(stats.mean), allx.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(stats.var), allx.var(0), rtol=1e-3)


def test_normalize_observation_shares_stats_and_freezes():
    env, params = make("CartPole-v1")
    wrapper = NormalizeObservation(VecEnv(env, B), clip=5.0)
    state, out = _run(wrapper, params, 20, action_fn=lambda t: jnp.full(B, t % 2, jnp.int32))
    assert state.stats.mean.shape == (4,)  # one set of statistics for the whole batch
    assert float(state.stats.count) == pytest.approx(B * 21, rel=1e-3)
    assert all(np.abs(np.asarray(o[0])).max() <= 5.0 for o in out)
    frozen = NormalizeObservation.freeze(state)
    after = wrapper.step(jax.random.key(0), frozen, jnp.zeros(B, jnp.int32), params)[1]
    np.testing.assert_array_equal(np.asarray(after.stats.mean), np.asarray(frozen.stats.mean))


def test_wrapper_errors_and_as_batched():
    env, _ = make("CartPole-v1")
    with pytest.raises(TypeError, match="batched env"):
        EpisodeStatistics(env)
    with pytest.raises(ValueError, match="num_envs"):
        VecEnv(env, 0)
    vec = VecEnv(env, 4)
    assert as_batched(vec, 4) is vec
    with pytest.raises(ValueError, match="num_envs=4"):
        as_batched(vec, 8)
    with pytest.raises(TypeError):
        VecEnv(vec, 2)
    assert isinstance(as_batched(env, 3), VecEnv)


def test_num_envs_must_be_an_integer():
    env, _ = make("CartPole-v1")
    for bad, error in ((2.5, TypeError), ("4", TypeError), (True, TypeError), (-1, ValueError)):
        with pytest.raises(error, match="^VecEnv: num_envs must be"):
            VecEnv(env, bad)


def test_check_params_takes_shared_or_per_copy_params_and_refuses_bad_ones():
    env, params = make("ThreeBody-v0")
    venv = EpisodeStatistics(VecEnv(env, 4))  # wrappers check against the same env
    venv.check_params(params)
    per_copy = params.replace(masses=jnp.ones((4, 3)))
    venv.check_params(per_copy)
    with pytest.raises(ValueError, match=r"masses has shape \(5, 3\), expected \(3,\) or \(4, 3\)"):
        venv.check_params(params.replace(masses=jnp.ones((5, 3))))
    with pytest.raises(ValueError, match=r"^ThreeBody-v0 params: masses\[1, 0\] = 0, must be > 0"):
        venv.check_params(per_copy.replace(masses=per_copy.masses.at[1, 0].set(0.0)))
    with pytest.raises(ValueError, match=r"initial_speed_kms\[3\] is nan"):
        venv.check_params(params.replace(initial_speed_kms=jnp.full(4, 10.0).at[3].set(jnp.nan)))


def test_multi_agent_batched(toy_marl_id):
    env, params = make(toy_marl_id)
    wrapper = EpisodeStatistics(VecEnv(env, B))
    obs, state = wrapper.reset(jax.random.key(0), params)
    assert set(obs) == set(env.agents) and obs["agent_0"].shape == (B, 2)
    actions = {a: jnp.full(B, 2, jnp.int32) for a in env.agents}
    for t in range(10):
        obs, state, r, term, trunc, info = wrapper.step(jax.random.key(t), state, actions, params)
    assert set(info["returned_episode_returns"]) == set(env.agents)
    assert bool(info["returned_episode"].any())


def test_normalize_observation_leaves_action_masks_alone():
    from accelrl.envs.malloc import MallocGame  # noqa: F401  (registers MallocGame-v0)

    env, params = make("MallocGame-v0")
    wrapper = NormalizeObservation(VecEnv(env, 3))
    obs, state = wrapper.reset(jax.random.key(0), params)
    assert obs["action_mask"].dtype == jnp.bool_
    assert set(state.stats.mean) == {"observation"}
    raw, _ = VecEnv(env, 3).reset(jax.random.key(0), params)
    np.testing.assert_array_equal(np.asarray(obs["action_mask"]), np.asarray(raw["action_mask"]))


def test_strategy_starts_run_only_when_some_seed_has_a_finished_copy():
    """Vmapped over seeds, the strategy's ``starts`` runs at the steps where a copy of some
    seed finished, not at every step (a ``lax.cond`` there would become a select)."""
    from accelrl.envs.reset import ResetStrategy

    calls = []

    class Counting(ResetStrategy):
        def starts(self, key, state, env, params, mask):
            jax.debug.callback(lambda: calls.append(1))
            return super().starts(key, state, env, params, mask)

    env, params = make("Pendulum-v1")
    vec = VecEnv(env, 3, Counting())

    def roll(key, max_steps):  # episodes of 5 steps for one seed, 7 for the other
        p = params.replace(max_steps_in_episode=max_steps)
        _, state = vec.reset(key, p)

        def body(state, k):
            _, state, _, _, trunc, _ = vec.step(k, state, jnp.zeros((3, 1)), p)
            return state, trunc

        return jax.lax.scan(body, state, jax.random.split(key, 12))[1]

    keys = jax.random.split(jax.random.key(0), 2)
    trunc = jax.jit(jax.vmap(roll))(keys, jnp.array([5, 7]))
    jax.effects_barrier()
    assert np.asarray(trunc).any(axis=(0, 2)).sum() == 3  # steps 5, 7 and 10
    assert len(calls) == 1 + 3  # the reset, then one batched call per step with a finished copy
