"""ThreeBody-v0: float64 physics in a float32 world, the capped decision loop, reward, safety."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import make
from accelrl.envs import three_body as tb
from accelrl.envs.three_body.render import BODY_COLORS
from accelrl.envs.vec import VecEnv

F64 = jnp.float64


def f64(x):
    with jax.enable_x64(True):
        return jnp.asarray(np.asarray(x, np.float64), F64)


def pythagorean():
    pos, vel, m = (
        f64([[1.0, 3.0], [-2.0, -1.0], [1.0, -1.0]]),
        f64(np.zeros((3, 2))),
        f64([3, 4, 5]),
    )
    return pos, vel, m


def figure_eight():
    r1 = np.array([0.97000436, -0.24308753])
    v3 = np.array([-0.93240737, -0.86473146])
    return f64([r1, -r1, [0, 0]]), f64([-v3 / 2, -v3 / 2, v3]), f64(np.ones(3))


def rel_energy_error(pos, vel, pos0, vel0, m, G):
    e0 = float(tb.total_energy(pos0, vel0, m, G))
    return abs((float(tb.total_energy(pos, vel, m, G)) - e0) / e0)


@pytest.fixture(scope="module")
def env_and_params():
    return make("ThreeBody-v0")


@pytest.fixture(scope="module")
def jitted(env_and_params):
    env, _ = env_and_params
    return jax.jit(env.reset_env), jax.jit(env.step_env)


def rollout(reset, step, params, key, actions):
    obs, state = reset(key, params)
    out = []
    for a in actions:
        obs, state, reward, term, info = step(key, state, jnp.int32(a), params)
        out.append((obs, state, reward, term, info))
    return out


# --- float64 inside a float32 world -----------------------------------------------------------


def test_spaces_dtypes_and_float32_world(env_and_params, jitted):
    env, params = env_and_params
    reset, step = jitted
    assert env.observation_space(params).shape == (13,)
    assert env.observation_space(params).dtype == jnp.float32
    assert env.action_space(params).n == 10
    obs, state = reset(jax.random.PRNGKey(0), params)
    assert obs.dtype == jnp.float32 and obs.shape == (13,) and obs[-1] == 0.0
    for leaf in jax.tree.leaves(state.hermite) + [state.energy0, state.energy_error]:
        assert leaf.dtype == F64
    obs, state, reward, term, info = step(jax.random.PRNGKey(1), state, jnp.int32(5), params)
    assert obs.dtype == jnp.float32 and reward.dtype == jnp.float32
    assert state.hermite.pos.dtype == F64
    # the default mode around it is untouched
    assert not jax.config.jax_enable_x64
    assert jnp.asarray(0.1).dtype == jnp.float32
    assert (jnp.ones(3) * 2.0).dtype == jnp.float32
    # a float64 energy error below float32 resolution of E is measurable
    assert 0.0 < float(info["energy_error"]) < 1e-9


def test_float64_state_survives_float32_scan_carry(env_and_params):
    """The agents' loop: VecEnv under lax.scan with float32 obs/reward in the same carry."""
    env, params = env_and_params
    venv = VecEnv(env, 4)
    obs, state = venv.reset(jax.random.PRNGKey(3), params)

    def body(carry, key):
        obs, state, ret = carry
        obs, state, reward, term, trunc, info = venv.step(key, state, jnp.full(4, 6), params)
        return (obs, state, ret + reward), info["energy_error"]

    keys = jax.random.split(jax.random.PRNGKey(4), 5)
    (obs, state, ret), errs = jax.jit(lambda c, k: jax.lax.scan(body, c, k))(
        (obs, state, jnp.zeros(4)), keys
    )
    assert obs.dtype == jnp.float32 and ret.dtype == jnp.float32
    assert state.hermite.pos.dtype == F64 and state.energy0.dtype == F64
    assert np.all(np.asarray(errs) < 1e-8) and np.all(np.isfinite(np.asarray(ret)))
    assert jnp.all(state.checks == 5)


def test_checkpoint_round_trip_keeps_float64(tmp_path, env_and_params, jitted):
    ocp = pytest.importorskip("orbax.checkpoint")
    env, params = env_and_params
    reset, step = jitted
    _, state = reset(jax.random.PRNGKey(2), params)
    _, state, *_ = step(jax.random.PRNGKey(0), state, jnp.int32(4), params)
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp_path / "s", state)
    ckpt.wait_until_finished()
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    with jax.enable_x64(True):  # orbax canonicalises to float32 outside an x64 scope
        restored = ckpt.restore(tmp_path / "s", target)
    assert restored.hermite.pos.dtype == F64 and restored.checks.dtype == jnp.int32
    assert restored.mu.dtype == jnp.float32
    assert float(restored.energy0) == float(state.energy0)
    a = step(jax.random.PRNGKey(5), state, jnp.int32(4), params)[1]
    b = step(jax.random.PRNGKey(5), restored, jnp.int32(4), params)[1]
    np.testing.assert_array_equal(np.asarray(a.hermite.pos), np.asarray(b.hermite.pos))


def test_as_float64_recovers_numpy_state(env_and_params, jitted):
    env, params = env_and_params
    reset, step = jitted
    _, state = reset(jax.random.PRNGKey(2), params)
    host = jax.tree.map(np.asarray, state)  # e.g. from a msgpack restore
    assert host.energy0.dtype == np.float64
    back = tb.as_float64(host)
    assert back.energy0.dtype == F64 and back.checks.dtype == jnp.int32
    assert float(back.energy0) == float(state.energy0)


# --- the physics --------------------------------------------------------------------------------


def test_hermite_order_is_four():
    """|dE| of the smooth early Pythagorean phase falls by ~2^4 per halving of mu."""
    pos, vel, m = pythagorean()
    run = jax.jit(lambda eta: tb.integrate(pos, vel, m, 1.0, eta, 1.0))
    errs = []
    for eta in (0.02, 0.01, 0.005):
        p, v, _ = run(f64(eta))
        errs.append(rel_energy_error(p, v, pos, vel, m, 1.0))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all((orders > 3.5) & (orders < 4.5)), orders


def test_aarseth_criterion_integrates_accurately():
    pos, vel, m = figure_eight()
    errs = []
    for eta in (0.2, 0.1):
        p, v, n = jax.jit(
            lambda e: tb.integrate(pos, vel, m, 6.32591398, e, 1.0, criterion="aarseth")
        )(f64(eta))
        errs.append(rel_energy_error(p, v, pos, vel, m, 1.0))
        assert np.abs(np.asarray(p) - np.asarray(pos)).max() < 1e-3  # back after one period
    assert errs[1] < errs[0] / 8 and errs[1] < 1e-5
    with pytest.raises(ValueError, match="criterion"):
        tb.integrate(pos, vel, m, 1.0, 0.01, 1.0, criterion="nope")


def test_integrate_lands_exactly_and_stops_at_max_substeps():
    pos, vel, m = figure_eight()
    with jax.enable_x64(True):
        h = tb.hermite_init(pos, vel, m, 1.0)
        h1, n = tb.hermite_advance(h, m, 1.0, 0.01, 0.7, 10**6)
        assert float(h1.t) == 0.7 and int(n) > 1
        h2, n2 = tb.hermite_advance(h, m, 1.0, 0.01, 0.7, 5)
        assert int(n2) == 5 and float(h2.t) < 0.7
        # the loop is the same as repeated single substeps
        hs = h
        for _ in range(5):
            hs = tb.hermite_substep(hs, m, 1.0, 0.01, 0.7)
        # same arithmetic; jit and eager round the last bit differently
        np.testing.assert_allclose(np.asarray(hs.pos), np.asarray(h2.pos), rtol=1e-13, atol=1e-15)
    _, _, n3 = tb.integrate(pos, vel, m, 0.7, 0.01, 1.0, max_substeps=7)
    assert int(n3) == 7


def test_integrate_vmaps_over_systems():
    params = tb.EnvParams()
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    pos, vel = jax.vmap(tb.initial_conditions, in_axes=(0, None))(keys, params)
    m = f64(np.ones(3))
    p, v, n = jax.jit(jax.vmap(lambda a, b: tb.integrate(a, b, m, 0.1, 1e-2, tb.G_AU_MSUN_YR)))(
        pos, vel
    )
    assert p.shape == (3, 3, 2) and p.dtype == F64 and n.shape == (3,)
    p1, _, n1 = tb.integrate(pos[1], vel[1], m, 0.1, 1e-2, tb.G_AU_MSUN_YR)
    np.testing.assert_allclose(np.asarray(p[1]), np.asarray(p1), rtol=1e-13, atol=1e-13)
    assert int(n1) == int(n[1])


def test_integrate_rejects_bad_concrete_inputs_by_name():
    """Coincident bodies (an infinite force: NaN out), masses <= 0, eta <= 0 and non-finite
    values raise a one-line ValueError before anything runs, when the inputs are concrete."""
    pos, vel, m = figure_eight()
    same = np.asarray(pos).copy()
    same[2] = same[0]
    with pytest.raises(ValueError, match=r"^integrate: bodies 0 and 2 are at the same position"):
        tb.integrate(f64(same), vel, m, 0.1, 0.01, 1.0)
    with pytest.raises(ValueError, match=r"^integrate: bodies 1 and 2 are at the same position"):
        tb.integrate(np.zeros((3, 2)) + [[1.0, 0.0], [2.0, 2.0], [2.0, 2.0]], vel, m, 0.1, 0.01, 1)
    with pytest.raises(ValueError, match=r"^integrate: mass\[1\] = 0.0, masses must be > 0$"):
        tb.integrate(pos, vel, f64([1.0, 0.0, 1.0]), 0.1, 0.01, 1.0)
    with pytest.raises(ValueError, match=r"^integrate: mass\[0\] = -1.0, masses must be > 0$"):
        tb.integrate(pos, vel, [-1.0, 1.0, 1.0], 0.1, 0.01, 1.0)
    bad_vel = np.asarray(vel).copy()
    bad_vel[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^integrate: vel\[1, 0\] is nan, inputs must be finite$"):
        tb.integrate(pos, bad_vel, m, 0.1, 0.01, 1.0)
    with pytest.raises(ValueError, match=r"^integrate: t_end is inf, inputs must be finite$"):
        tb.integrate(pos, vel, m, np.inf, 0.01, 1.0)
    with pytest.raises(ValueError, match=r"^integrate: eta = 0.0, must be > 0"):
        tb.integrate(pos, vel, m, 0.1, 0.0, 1.0)
    # a concrete (closed-over) bad input is caught while tracing, too
    same = f64(same)
    with pytest.raises(ValueError, match="bodies 0 and 2"):
        jax.jit(lambda e: tb.integrate(same, vel, m, 0.1, e, 1.0))(f64(0.01))


def test_integrate_traced_inputs_are_not_checked_and_coincident_bodies_flags_them():
    """Under jit/vmap nothing is checked (no host work on the compiled path): a coincident
    system comes back non-finite, a good one is unaffected; ``coincident_bodies`` vmaps."""
    pos, vel, m = figure_eight()
    same = np.asarray(pos).copy()
    same[1] = same[0]
    batch = f64(np.stack([np.asarray(pos), same]))
    run = jax.jit(jax.vmap(lambda a: tb.integrate(a, vel, m, 0.1, 0.01, 1.0)))
    p, v, n = run(batch)  # no raise while tracing
    assert np.all(np.isfinite(np.asarray(p[0]))) and not np.all(np.isfinite(np.asarray(p[1])))
    p0, _, n0 = jax.jit(tb.integrate)(pos, vel, m, f64(0.1), f64(0.01), f64(1.0))  # all traced
    np.testing.assert_allclose(np.asarray(p[0]), np.asarray(p0), rtol=1e-13, atol=1e-13)
    assert int(n0) == int(n[0]) > 1
    flags = jax.jit(jax.vmap(tb.coincident_bodies))(batch)
    assert flags.dtype == jnp.bool_ and flags.tolist() == [False, True]
    assert tb.coincident_bodies(batch).tolist() == [False, True]  # batch axes also broadcast
    assert not bool(tb.coincident_bodies(pos))


@pytest.mark.parametrize("criterion", ["collision", "aarseth", "traced"])
def test_lockstep_batch_is_bit_for_bit_each_system_alone(criterion):
    """The custom-vmap lockstep loop freezes finished systems exactly (acc, jerk, time scale)."""
    params = tb.EnvParams()
    keys = jax.random.split(jax.random.PRNGKey(3), 6)
    with jax.enable_x64(True):
        pos, vel = jax.vmap(tb.initial_conditions, in_axes=(0, None))(keys, params)
        m, G = f64(np.ones(3)), f64(tb.G_AU_MSUN_YR)
        # different horizons, mus and caps, so systems finish at different iterations
        t_end = f64([0.05, 0.1, 0.2, 0.1, 0.3, 0.15])
        eta = f64([1e-2, 3e-2, 1e-2, 1e-3, 1e-2, 1e-1])
        cap = jnp.asarray([10**6, 10**6, 40, 10**6, 25, 10**6], jnp.int32)
        code = jnp.asarray([0, 1, 0, 1, 1, 0], jnp.int32)

        def advance(p, v, te, e, c, k):
            crit = k if criterion == "traced" else criterion
            h = tb.hermite_init(p, v, m, G, crit)
            h = tb.hermite_advance(h, m, G, 1e-2, 0.02, 10**6, crit)[0]  # non-trivial acc/jerk
            return tb.hermite_advance(h, m, G, e, 0.02 + te, c, crit)

        args = (pos, vel, t_end, eta, cap, code)
        run = jax.jit(jax.vmap(advance))
        batched = run(*args)
        nested = jax.jit(jax.vmap(jax.vmap(advance)))(
            *(a.reshape(2, 3, *a.shape[1:]) for a in args)
        )
        nested = jax.tree.map(lambda a: a.reshape(6, *a.shape[2:]), nested)
        # the same compiled batch program with 6 copies of system i: nobody waits, nobody is
        # masked, so any drift of a finished system under masking shows as a bit difference
        same = [run(*(jnp.broadcast_to(a[i], a.shape) for a in args)) for i in range(6)]
        alone = jax.jit(advance)(*(a[4] for a in args))
    n = np.asarray(batched[1])
    assert len(set(n.tolist())) > 2  # the systems really finished at different iterations
    for i in range(6):
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(same[i]), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a[i]), np.asarray(b[0]))
    for a, b in zip(jax.tree.leaves(nested), jax.tree.leaves(batched), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # unbatched code is compiled differently (last-bit rounding; Aarseth's time scale cancels
    # digits and amplifies it)
    (h, n), (h1, n1) = batched, alone
    for a, b in [(h.pos, h1.pos), (h.vel, h1.vel), (h.t, h1.t)]:
        np.testing.assert_allclose(np.asarray(a[4]), np.asarray(b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(h.timescale[4]), np.asarray(h1.timescale), rtol=1e-6)
    assert int(n[4]) == int(n1)


def test_initial_conditions_follow_the_paper():
    params = tb.EnvParams()
    keys = jax.random.split(jax.random.PRNGKey(7), 64)
    pos, vel = jax.vmap(tb.initial_conditions, in_axes=(0, None))(keys, params)
    pos, vel = np.asarray(pos), np.asarray(vel)
    assert pos.dtype == np.float64
    np.testing.assert_allclose(pos.sum(1), 0.0, atol=1e-12)  # centre-of-mass frame (equal m)
    np.testing.assert_allclose(vel.sum(1), 0.0, atol=1e-12)
    rel = pos - pos[:, :1]  # body 0 was at the origin
    k = np.concatenate([rel[:, 1], rel[:, 2]], axis=1)
    assert np.all(k >= np.asarray(params.ic_low) - 1e-9) and np.all(k <= np.asarray(params.ic_high))
    assert np.ptp(k[:, 0]) > 10  # spread over the 15 au range
    speed = tb.KMS_IN_AU_PER_YR * 10.0
    np.testing.assert_allclose(vel[:, 0] - vel[:, 2], [[0, speed]] * 64, atol=1e-12)
    # a curriculum can shrink the ranges
    narrow = params.replace(
        ic_low=jnp.asarray([10.0, 5.0, -5.0, 10.0]), ic_high=jnp.asarray([10.0, 5.0, -5.0, 10.0])
    )
    p2, _ = tb.initial_conditions(keys[0], narrow)
    np.testing.assert_allclose(np.asarray(p2[1] - p2[0]), [10.0, 5.0], atol=1e-9)


# --- the environment ----------------------------------------------------------------------------


def test_paper_reward_matches_reference_examples():
    params = tb.EnvParams()
    with jax.enable_x64(True):
        energy = {1e-12: 3.5, 1e-8: -11.7, 1e-6: -55.6, 1e-4: -281.0, 1e-2: -3000.0}
        for de, want in energy.items():
            got = float(tb.paper_reward(de, 1.0, 1.0, params.replace(w_action=0.0)))
            assert got == pytest.approx(want, rel=0.01), (de, got)
        action = {1e-4: 1.0, 1e-2: 2.0, 1e-1: 4.0}
        for mu, want in action.items():
            got = float(tb.paper_reward(1e-10, mu, 1.0, params))
            assert got == pytest.approx(want, rel=1e-6)
        # the energy term is divided by t; |dE| = 1 stays finite (capped at reward_error_cap)
        assert float(tb.paper_reward(1e-6, 0.1, 4.0, params)) == pytest.approx(
            -55.6 / 4 + 4, rel=0.01
        )
        assert np.isfinite(float(tb.paper_reward(1.0, 0.1, 1.0, params)))


def test_episode_rewards_info_and_truncation(env_and_params, jitted):
    env, params = env_and_params
    reset, step = jitted
    params = params.replace(num_checks=3)
    steps = rollout(reset, step, params, jax.random.PRNGKey(0), [3, 6, 9])
    rewards = [float(s[2]) for s in steps]
    assert rewards[0] == 0.0  # the paper's R = 0 at the first decision
    for k, (obs, state, _, _, info) in enumerate(steps, start=1):
        assert bool(info["reached_check"]) and int(info["checks"]) == k
        assert float(state.hermite.t) == k * float(jnp.float32(0.1))
        assert int(info["total_substeps"]) == int(state.total_substeps)
        assert float(obs[-1]) == pytest.approx(-math.log10(float(info["energy_error"])), rel=1e-5)
    with jax.enable_x64(True):
        for k in (1, 2):
            _, state, reward, _, info = steps[k]
            want = tb.paper_reward(state.energy_error, float(info["mu"]), k + 1, params)
            assert float(reward) == pytest.approx(float(want), rel=1e-5)
    assert [bool(env.is_truncated(s[1], params)) for s in steps] == [False, False, True]
    assert not any(bool(s[3]) for s in steps)


def test_substep_cap_adds_decisions_without_changing_physics(env_and_params, jitted):
    env, params = env_and_params
    reset, step = jitted
    key = jax.random.PRNGKey(1)
    free = rollout(reset, step, params, key, [3, 3])
    capped_params = params.replace(max_substeps_per_decision=5, w_energy=0.0)
    obs, state = reset(key, capped_params)
    infos, rewards = [], []
    while int(state.checks) < 2:
        interval = int(state.checks) + 1
        obs, state, reward, term, info = step(key, state, jnp.int32(3), capped_params)
        infos.append(info)
        rewards.append((interval, float(reward)))
    assert len(infos) > 2 and not all(bool(i["reached_check"]) for i in infos)
    assert all(int(i["substeps"]) <= 5 for i in infos)
    assert int(state.time) == len(infos) and int(state.checks) == 2
    # same trajectory at the check time, bit for bit
    np.testing.assert_array_equal(np.asarray(state.hermite.pos), np.asarray(free[1][1].hermite.pos))
    assert int(state.total_substeps) == int(free[1][1].total_substeps)
    # extra decisions earn their share of the interval: one full action reward per interval
    second = sum(r for k, r in rewards if k == 2)
    assert second == pytest.approx(4.0 / 3.0, rel=1e-5)  # W2 / |log10 1e-3|
    assert sum(1 for k, _ in rewards if k == 2) > 1


def test_energy_limit_terminates_and_compute_term(env_and_params, jitted):
    env, params = env_and_params
    reset, step = jitted
    strict = params.replace(energy_error_limit=1e-20)
    ((_, state, _, term, _),) = rollout(reset, step, strict, jax.random.PRNGKey(0), [9])
    assert bool(term) and bool(env.is_terminated(state, strict))
    base = rollout(reset, step, params, jax.random.PRNGKey(0), [3, 3])
    costly = rollout(reset, step, params.replace(w_compute=0.01), jax.random.PRNGKey(0), [3, 3])
    n = int(base[1][4]["substeps"])
    assert float(costly[1][2]) == pytest.approx(float(base[1][2]) - 0.01 * n, rel=1e-5)


def test_near_collision_stays_finite(env_and_params, jitted):
    """Body 1 falls almost head-on onto body 0: no NaN/inf, the cap bounds each decision."""
    env, params = env_and_params
    reset, step = jitted
    _, state = reset(jax.random.PRNGKey(0), params)
    pos = f64([[0.0, 0.0], [0.3, 1e-7], [-8.0, 12.0]])
    vel = f64(np.zeros((3, 2)))
    with jax.enable_x64(True):
        m = jnp.ones(3, F64)
        h = tb.hermite_init(pos, vel, m, tb.G_AU_MSUN_YR)
        state = state.replace(hermite=h, energy0=tb.total_energy(pos, vel, m, tb.G_AU_MSUN_YR))
    p = params.replace(max_substeps_per_decision=200)
    for a in (9, 9, 0, 9):
        obs, state, reward, term, info = step(jax.random.PRNGKey(0), state, jnp.int32(a), p)
        assert np.all(np.isfinite(np.asarray(obs))) and np.isfinite(float(reward))
        assert int(info["substeps"]) <= 200
        if bool(term):
            break
    # an exact collision is flagged, terminates, and keeps the last finite state
    _, state = reset(jax.random.PRNGKey(0), params)
    with jax.enable_x64(True):
        pos = state.hermite.pos.at[1].set(state.hermite.pos[0])
        bad = tb.hermite_init(pos, state.hermite.vel, jnp.ones(3, F64), tb.G_AU_MSUN_YR)
    state = state.replace(hermite=bad, time=jnp.int32(1))
    obs, new, reward, term, info = step(jax.random.PRNGKey(0), state, jnp.int32(9), params)
    assert bool(term) and bool(info["blew_up"]) and bool(new.blew_up)
    assert float(info["energy_error"]) == 1.0
    assert np.all(np.isfinite(np.asarray(obs))) and np.isfinite(float(reward)) and float(reward) < 0


def test_continuous_variant():
    env, params = make("ThreeBodyContinuous-v0")
    space = env.action_space(params)
    assert space.shape == (1,) and float(space.low) == -4.0 and float(space.high) == -1.0
    assert float(env.action_to_mu(jnp.asarray([-2.0]), params)) == pytest.approx(1e-2, rel=1e-6)
    assert float(env.action_to_mu(jnp.asarray([5.0]), params)) == pytest.approx(0.1, rel=1e-6)
    venv = VecEnv(env, 2)
    obs, state = venv.reset(jax.random.PRNGKey(0), params)
    obs, state, reward, term, trunc, info = venv.step(
        jax.random.PRNGKey(1), state, jnp.full((2, 1), -2.5, jnp.float32), params
    )
    assert obs.shape == (2, 13) and obs.dtype == jnp.float32 and reward.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(info["mu"]), 10**-2.5, rtol=1e-6)


def test_aarseth_option_in_env(env_and_params, jitted):
    env, params = env_and_params
    reset, step = jitted
    p = params.replace(criterion=1, mu_values=params.mu_values * 20)
    steps = rollout(reset, step, p, jax.random.PRNGKey(0), [5, 5])
    assert all(bool(s[4]["reached_check"]) for s in steps)
    assert float(steps[-1][4]["energy_error"]) < 1e-6


def test_render_draws_orbits(env_and_params, jitted):
    env, params = env_and_params
    reset, step = jitted
    _, state = reset(jax.random.PRNGKey(0), params)
    states = [state] + [s[1] for s in rollout(reset, step, params, jax.random.PRNGKey(0), [6] * 4)]
    img = env.render(states, params)
    assert img.dtype == np.uint8 and img.shape == (400, 400, 3)
    for colour in BODY_COLORS:
        assert np.any(np.all(img == colour, axis=-1))
    assert np.all(tb.render_orbits([], size=32) == 255)


def test_params_as_closure_constants_or_jit_arguments_agree(env_and_params):
    """Python-float params (exact) and jit-argument params (float32) give one consistent G."""
    env, params = env_and_params
    key = jax.random.PRNGKey(0)
    _, state = jax.jit(lambda k: env.reset_env(k, params))(key)  # params as constants
    _, _, _, _, info = jax.jit(env.step_env)(key, state, jnp.int32(6), params)  # as arguments
    step_const = jax.jit(lambda k, s: env.step_env(k, s, jnp.int32(6), params))
    _, _, _, _, ref = step_const(key, state)
    assert float(ref["energy_error"]) < 1e-9  # mu = 1e-2 over 0.1 yr
    assert abs(float(info["energy_error"]) - float(ref["energy_error"])) < 1e-14


# --- the paper's formulation (preset "paper") ----------------------------------------------


def same_params(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb, strict=True))


def test_paper_preset_params_and_unknown_preset():
    env, params = make("ThreeBody-v0", preset="paper")
    assert env.preset == "paper" and env.name == "ThreeBody-v0"
    assert params.max_substeps_per_decision == tb.UNBOUNDED_SUBSTEPS
    assert params.reward_error_cap == math.inf and params.step_limit_terminates
    assert params.max_decisions == params.num_checks == 100
    assert tb.evaluation_params(params).max_decisions == 300
    # everything else is the default formulation's
    default = make("ThreeBody-v0")[1]
    assert same_params(tb.preset_params("paper", default), params)
    assert same_params(tb.preset_params("default", default), default)
    cont, cparams = make("ThreeBodyContinuous-v0", preset="paper")
    assert cparams.step_limit_terminates and cont.action_space(cparams).shape == (1,)
    # "scaled": the default's reward divided by 100, nothing else changed
    scaled = tb.preset_params("scaled", default)
    assert same_params(scaled.replace(w_energy=3000.0, w_action=4.0), default)
    assert not same_params(scaled, default)
    with jax.enable_x64(True):
        for de, mu, t in ((1e-9, 1e-2, 3.0), (0.05, 1e-1, 1.0)):
            ratio = tb.paper_reward(de, mu, t, scaled) / tb.paper_reward(de, mu, t, default)
            assert float(ratio) == pytest.approx(0.01, rel=1e-6)
    steady = tb.preset_params("steady", default)
    assert not steady.energy_term_per_time
    assert same_params(steady.replace(energy_term_per_time=True), default)
    with pytest.raises(ValueError, match="unknown ThreeBody preset 'papr'.*paper"):
        make("ThreeBody-v0", preset="papr")
    with pytest.raises(ValueError, match="unknown ThreeBody preset"):
        tb.preset_params("fast")


def test_paper_preset_one_decision_per_check_and_terminates_at_the_step_limit():
    env, params = make("ThreeBody-v0", preset="paper")
    params = params.replace(num_checks=3, max_decisions=3)
    reset, step = jax.jit(env.reset_env), jax.jit(env.step_env)
    # mu = 1e-4: the default cap C = 32 would need many decisions per interval here
    steps = rollout(reset, step, params, jax.random.PRNGKey(1), [0, 0, 0])
    for k, (_, state, _, term, info) in enumerate(steps, start=1):
        assert bool(info["reached_check"]) and int(info["checks"]) == k == int(state.time)
        assert int(info["substeps"]) > 32
        limit = k == 3
        assert bool(term) == limit and bool(env.is_terminated(state, params)) == limit
        assert not bool(env.is_truncated(state, params))  # terminated, not truncated
    # the default formulation truncates at the same limit, and reaches it in more decisions
    default = make("ThreeBody-v0")[1].replace(num_checks=3)
    obs, state = reset(jax.random.PRNGKey(1), default)
    decisions = 0
    while int(state.checks) < 3:
        obs, state, _, term, _ = step(jax.random.PRNGKey(1), state, jnp.int32(0), default)
        decisions += 1
        assert not bool(term)
    assert decisions > 3 and bool(env.is_truncated(state, default))
    # same physics at the check times
    np.testing.assert_array_equal(
        np.asarray(state.hermite.pos), np.asarray(steps[-1][1].hermite.pos)
    )


def test_paper_preset_terminal_penalty_is_unbounded():
    _, paper = make("ThreeBody-v0", preset="paper")
    _, default = make("ThreeBody-v0")
    with jax.enable_x64(True):
        clipped = float(tb.paper_reward(0.5, 1e-2, 1.0, default.replace(w_action=0.0)))
        full = float(tb.paper_reward(0.5, 1e-2, 1.0, paper.replace(w_action=0.0)))
        # the authors' penalty: 40x the clipped one at |dE| = 0.5, 3x at 0.2
        assert clipped == pytest.approx(-27_000.0, rel=1e-6)
        assert full / clipped == pytest.approx(39.5, rel=0.01)
        ratio = float(tb.paper_reward(0.2, 1e-2, 1.0, paper.replace(w_action=0.0))) / clipped
        assert ratio == pytest.approx(3.0, rel=0.02)
        # a blown-up step (non-finite |dE|) stays finite: |dE| = 1 unbounded, the cap otherwise
        blown = float(tb.paper_reward(jnp.inf, 1e-2, 1.0, paper))
        assert np.isfinite(blown) and blown < -1e20
        assert float(tb.paper_reward(jnp.inf, 1e-2, 1.0, default)) == pytest.approx(
            float(tb.paper_reward(0.1, 1e-2, 1.0, default))
        )


def test_steady_preset_does_not_divide_the_energy_term_by_t():
    env, steady = make("ThreeBody-v0", preset="steady")
    default = env.default_params.replace(energy_term_per_time=True)
    reset, step = jax.jit(env.reset_env), jax.jit(env.step_env)
    got = rollout(reset, step, steady, jax.random.PRNGKey(0), [6, 6, 6])
    ref = rollout(reset, step, default, jax.random.PRNGKey(0), [6, 6, 6])
    with jax.enable_x64(True):
        for k in (1, 2):  # decisions 2 and 3 land on t = 2, 3
            state, info = got[k][1], got[k][4]
            want = tb.paper_reward(state.energy_error, float(info["mu"]), 1.0, default)
            assert float(got[k][2]) == pytest.approx(float(want), rel=1e-5)
            assert float(got[k][2]) != pytest.approx(float(ref[k][2]), rel=1e-3)
