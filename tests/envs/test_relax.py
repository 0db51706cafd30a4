"""Relax-v0: SOR and SSOR-PCG iteration counts against the NumPy/SciPy reference, the spectral
optimum of the pure Laplacian, the episode contract and the baselines."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import make
from accelrl.envs.checks import check_params
from accelrl.envs.relax import Relax, baselines, reference, spectral_omega
from accelrl.envs.relax.instances import heat_system


@pytest.fixture(scope="module")
def shift():
    env, params = make("Relax-v0")
    return env, params, jax.jit(jax.vmap(env.reset, in_axes=(0, None)))


def _instances(shift, seeds):
    env, params, reset = shift
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    return reset(keys, params)[1]


@pytest.fixture(scope="module")
def solve_many(shift):
    env, params, _ = shift

    @jax.jit
    def solve(states, omegas):
        return jax.vmap(lambda s, w: baselines.solve_iterations(env, s, w, params))(states, omegas)

    return solve


def _reference_counts(states, omegas, n=10, ordering=None):
    out = []
    for i, w in enumerate(omegas):
        A = reference.shifted_laplacian(n, 1.0, float(states.beta[i]))
        b = np.asarray(states.b[i]).reshape(-1)
        if ordering is not None:  # a permuted (non-natural) ordering of the same system
            A, b = A[ordering][:, ordering], b[ordering]
        out.append(reference.sor_iterations(A, b, np.zeros_like(b), float(np.float32(w)))[0])
    return np.asarray(out)


def test_sor_counts_equal_the_reference_on_random_instances(shift, solve_many):
    states = _instances(shift, range(8))
    omegas = np.float32([1.0, 1.15, 1.3, 1.45, 1.55, 1.7, 1.85, 1.9])
    got = np.asarray(solve_many(states, jnp.asarray(omegas)))
    np.testing.assert_array_equal(got, _reference_counts(states, omegas))
    assert len(set(got.tolist())) > 4  # the instances and omegas really differ


def test_the_count_comparison_can_fail(shift, solve_many):
    # A wrong answer (red-black ordering of the same systems) is told apart from the env's.
    states = _instances(shift, range(3))
    omegas = np.float32([1.3, 1.6, 1.8])
    got = np.asarray(solve_many(states, jnp.asarray(omegas)))
    idx = np.arange(100).reshape(10, 10)
    red_black = np.concatenate([idx[(idx // 10 + idx % 10) % 2 == p] for p in (0, 1)])
    assert not np.array_equal(got, _reference_counts(states, omegas, ordering=red_black))


def test_pure_laplacian_optimum_matches_the_spectral_omega(shift):
    env, params, reset = shift
    state = reset(jnp.stack([jax.random.key(5)]), params)[1]
    state = jax.tree.map(lambda x: x[0], state)
    with jax.enable_x64(True):
        state = state.replace(beta=jnp.zeros((), jnp.float64))
    grid = jnp.arange(1.40, 1.80, 0.0025, dtype=jnp.float32)
    costs = np.asarray(
        jax.jit(jax.vmap(lambda w: baselines.solve_iterations(env, state, w, params)))(grid)
    )
    with jax.enable_x64(True):
        star = float(spectral_omega(10, 1.0, 0.0))
    assert star == pytest.approx(2 / (1 + np.sin(np.pi / 11)), rel=1e-12)
    best = np.asarray(grid)[costs == costs.min()]
    assert np.min(np.abs(best - star)) <= 0.02, (best, star)
    assert costs[0] > 1.5 * costs.min()  # the grid covers a real optimum


def test_heat_family_pcg_counts_equal_the_reference():
    env, params = make("Relax-v0", family="heat", num_instances=10)
    step = jax.jit(env.step_env)
    _, state = env.reset_env(jax.random.key(0), params)
    with jax.enable_x64(True):  # start mid-simulation, where kappa is large
        state = state.replace(sim_time=jnp.asarray(0.7, jnp.float64))
        a, bt, b, kappa = jax.jit(heat_system)(state.u, state.sim_time, params)
        state = state.replace(alpha=a, beta=bt, b=b, context=kappa)
    counts = []
    for action in (0, 6, 12, 18):
        A = reference.shifted_laplacian(24, float(state.alpha), float(state.beta))
        w = float(np.float32(params.omega_values[action]))
        ref, _ = reference.ssor_pcg_iterations(
            A, np.asarray(state.b).reshape(-1), np.asarray(state.u).reshape(-1), w
        )
        _, new, reward, _, info = step(jax.random.key(1), state, action, params)
        assert int(info["iterations"]) == ref
        counts.append(ref)
        state = new
    assert max(counts) > 3 and float(state.context) > 1.0


def test_episode_contract_dtypes_and_sequence_from_the_reset_key(shift):
    env, params, _ = shift
    params = params.replace(num_instances=3)
    obs, state = env.reset(jax.random.key(3), params)
    assert obs.dtype == jnp.float32 and obs.shape == (2,) and float(obs[1]) == 0.0
    assert state.b.dtype == jnp.float64 and state.context.dtype == jnp.float64
    contexts = []
    for actions in ([0, 0, 0], [18, 5, 9]):
        obs, state = env.reset(jax.random.key(3), params)
        seen = [float(obs[0])]
        for a in actions:
            obs, state, reward, term, trunc, info = env.step(jax.random.key(a), state, a, params)
            seen.append(float(info["final_observation"][0]))
            assert float(reward) == pytest.approx(-(int(info["iterations"]) - 1) / 100)
        assert bool(trunc) and not bool(term)
        contexts.append(seen)
    assert contexts[0] == contexts[1]  # the actions do not change the instances


def test_continuous_variant_matches_the_grid_and_clips():
    env, params = make("Relax-v0")
    cenv, cparams = make("RelaxContinuous-v0")
    _, s = env.reset_env(jax.random.key(2), params)
    _, cs = cenv.reset_env(jax.random.key(2), cparams)
    d = env.step_env(jax.random.key(0), s, 10, params)[4]["iterations"]
    w = params.omega_values[10]
    c = cenv.step_env(jax.random.key(0), cs, jnp.asarray([w]), cparams)[4]["iterations"]
    assert int(c) == int(d)
    assert float(cenv.action_to_omega(jnp.asarray([3.0]), cparams)) == pytest.approx(1.9)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"family": "wave"}, ValueError, "family must be one of"),
        ({"variance": "mid"}, ValueError, "variance must be one of"),
        ({"grid_size": 1}, ValueError, "grid_size must be >= 2"),
        ({"grid_size": 5.5}, TypeError, "grid_size must be an integer"),
        ({"num_instances": 0}, ValueError, "num_instances must be >= 1"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        Relax(**kwargs)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("omega_high", 2.5, "omega_high = 2.5, must be < 2"),
        ("omega_low", 1.95, "omega_high = 1.9, must be >= omega_low"),
        ("num_instances", 0, "num_instances = 0, must be an integer >= 1"),
        ("beta_a", 0.0, "beta_a = 0, must be > 0"),
    ],
)
def test_params_checks_name_the_field(field, value, match):
    env, params = make("Relax-v0")
    check_params(env, params)  # the defaults pass
    with pytest.raises(ValueError, match=match):
        check_params(env, params.replace(**{field: value}))
    grid = params.omega_values.at[3].set(2.0)
    with pytest.raises(ValueError, match=r"omega_values\[3\] = 2, must be < 2"):
        check_params(env, params.replace(omega_values=grid))


def test_best_fixed_and_tsallis_on_a_synthetic_table():
    costs = jnp.asarray([[5, 3, 9], [6, 2, 9], [4, 4, 9]] * 200, jnp.int32)
    idx, total = baselines.best_fixed(costs)
    assert int(idx) == 1 and int(total) == 200 * 9
    p0 = baselines.tsallis_probs(baselines.tsallis_init(3))
    np.testing.assert_allclose(np.asarray(p0), 1 / 3, rtol=1e-5)
    actions, its = baselines.run_tsallis(jax.random.key(0), costs)
    assert np.mean(np.asarray(actions)[-200:] == 1) > 0.8  # concentrates on the best column
    assert int(its.sum()) < int(jnp.sum(costs[:, 0]))


def test_tsallis_cb_learns_a_context_dependent_best_action():
    t = 1200
    contexts = jnp.where(jnp.arange(t) % 2 == 0, -0.1, 0.6)
    good = jnp.where(contexts < 0.2, 0, 2)
    costs = jnp.where(jnp.arange(3)[None, :] == good[:, None], 2, 10).astype(jnp.int32)
    actions, _ = baselines.run_tsallis_cb(jax.random.key(1), costs, contexts)
    tail = np.asarray(actions[-300:] == good[-300:])
    assert tail.mean() > 0.8
    _, best = baselines.best_fixed(costs)
    assert int(jnp.sum(costs[jnp.arange(t), actions])) < int(best)  # beats any fixed action


def test_instance_optimal_is_at_most_the_grid_minimum(shift, solve_many):
    env, params, _ = shift
    state = jax.tree.map(lambda x: x[0], _instances(shift, [11]))
    omegas = params.omega_values
    grid = jax.vmap(lambda w: baselines.solve_iterations(env, state, w, params))(omegas)
    its, omega = jax.jit(
        lambda s, g: baselines.instance_optimal(env, params, s, g, omegas, evaluations=8)
    )(state, grid)
    assert int(its) <= int(grid.min())
    assert int(baselines.solve_iterations(env, state, omega, params)) == int(its)


def test_cost_table_matches_direct_solves_and_the_env_sequence(shift, solve_many):
    env, params, _ = shift
    states = jax.jit(lambda k: baselines.instance_sequence(env, params, k, 3))(jax.random.key(4))
    omegas = params.omega_values[::6]
    table = baselines.cost_table(env, params, states, omegas, batch=5)  # several padded batches
    direct = solve_many(
        jax.tree.map(lambda x: jnp.repeat(x, len(omegas), axis=0), states),
        jnp.tile(omegas, 3),
    )
    np.testing.assert_array_equal(table, np.asarray(direct).reshape(3, len(omegas)))
    # the same instances as an episode reset with that key
    obs, state = env.reset(jax.random.key(4), params)
    contexts = [float(obs[0])]
    for _ in range(2):
        obs, state, *_ = env.step(jax.random.key(9), state, 0, params)
        contexts.append(float(obs[0]))
    np.testing.assert_allclose(contexts, np.asarray(states.context, np.float32))


@pytest.mark.slow
def test_ppo_trains_on_relax_under_the_runner():
    # the runner vmaps the whole update over seeds: float64 solves must survive that batching
    from accelrl.agents import Runner, build

    overrides = {"num_envs": 4, "num_steps": 4, "total_timesteps": 32, "num_minibatches": 1}
    agent, _, hparams = build("Relax-v0", "ppo", overrides)
    result = Runner(agent, [0, 1], hparams, progress=False, segments=1, checkpoint_seconds=None)
    assert np.all(np.isfinite(result.train().metrics["loss"]))
