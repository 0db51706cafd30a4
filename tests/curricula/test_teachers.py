"""Task spaces and teachers: spaces refuse fields that change the agent's spaces, ALP on a
hand-made history, RIAC region ALP and splits, ALP-GMM concentrates on a high-ALP region, every
teacher jits and vmaps over seeds and sees exactly the returns the agent saw, and a short PPO run
records ``mastered``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.curricula import (
    ALPGMM,
    RIAC,
    CovarGMM,
    RandomTeacher,
    TaskSpace,
    UnknownTaskSpaceError,
    apply_tasks,
    mastered_fraction,
    mastered_hook,
    nearest_neighbour_alp,
    registered_task_spaces,
    task_space,
)
from accelrl.curricula import test_tasks as make_test_tasks
from accelrl.envs import EpisodeStatistics, VecEnv
from accelrl.envs.reset import StepRecord

PENDULUM = task_space("pendulum_dynamics")


# -- task spaces ----------------------------------------------------------------------------------


def test_registry_and_close_match_errors():
    assert {"pendulum_dynamics", "three_body_ic"} <= set(registered_task_spaces())
    with pytest.raises(UnknownTaskSpaceError, match="pendulum_dynamics"):
        task_space("pendulum_dynamic")


def test_apply_tasks_sets_scalar_fields_and_vector_elements():
    env, params = PENDULUM.make()
    tasks = jnp.array([[0.5, 0.75, 5.0], [3.0, 1.5, 20.0]])
    p = apply_tasks(PENDULUM, params, tasks)
    np.testing.assert_allclose(p.m, [0.5, 3.0])
    np.testing.assert_allclose(p.l, [0.75, 1.5])
    np.testing.assert_allclose(p.g, [5.0, 20.0])
    np.testing.assert_array_equal(p.max_torque, [2.0, 2.0])  # untouched fields broadcast
    tb = task_space("three_body_ic").check()
    env, params = tb.make()
    p = apply_tasks(tb, params, jnp.array([[1.0, 2.0, 30.0]]))
    np.testing.assert_allclose(p.ic_low[0], [1.0, 0.0, -10.0, 2.0])  # x1 and y2 pinned
    np.testing.assert_allclose(p.ic_high[0], [1.0, 10.0, 0.0, 2.0])
    np.testing.assert_allclose(p.initial_speed_kms, [30.0])
    test = make_test_tasks(tb)
    assert test.shape == (100, 3)
    np.testing.assert_array_equal(test, make_test_tasks(tb))  # fixed, seeded
    assert bool(jnp.all((test >= tb.low_array) & (test <= tb.high_array)))


def test_task_spaces_refuse_fields_that_change_spaces():
    def space(env_id, fields, low, high):
        return TaskSpace(
            name="bad",
            env_id=env_id,
            names=tuple(f"x{i}" for i in range(len(fields))),
            fields=fields,
            low=low,
            high=high,
            mastery_threshold=0.0,
            return_range=(0.0, 1.0),
        )

    with pytest.raises(ValueError, match="action space"):  # bounds Pendulum's actions
        space("Pendulum-v1", ("g", "max_torque"), (5.0, 1.0), (20.0, 3.0)).check()
    with pytest.raises(ValueError, match="observation space"):  # bounds its observations
        space("Pendulum-v1", ("max_speed",), (6.0,), (10.0,)).check()
    with pytest.raises(ValueError, match="action space"):  # the continuous ThreeBody's actions
        space("ThreeBodyContinuous-v0", ("log_mu_high",), (-2.0,), (-1.0,)).check()
    with pytest.raises(ValueError, match="not a float field"):
        space("Pendulum-v1", ("max_steps_in_episode",), (10.0,), (20.0,)).check()
    with pytest.raises(ValueError, match="no field"):
        space("Pendulum-v1", ("gravity",), (5.0,), (20.0,)).check()
    with pytest.raises(ValueError, match="indexes past"):
        space("ThreeBody-v0", ("ic_low[4]",), (1.0,), (2.0,)).check()
    with pytest.raises(ValueError, match="low < high"):
        space("Pendulum-v1", ("g",), (5.0,), (5.0,))
    with pytest.raises(ValueError, match="action space"):  # teachers check their space
        ALPGMM(space("Pendulum-v1", ("max_torque",), (1.0,), (3.0,)))
    PENDULUM.check()  # mass, length and gravity keep both spaces


# -- ALP on a hand-made history -------------------------------------------------------------------


def _record(done, returns):
    n = len(done)
    z = jnp.zeros(n)
    return StepRecord(z, jnp.zeros(n, bool), jnp.asarray(done), jnp.asarray(done),
                      jnp.asarray(returns, jnp.float32), jnp.ones(n, jnp.int32), None)  # fmt: skip


def test_alp_on_a_hand_made_history():
    # Tasks vary along the mass axis only; returns normalised by the space's (-2000, 0) range.
    masses = [0.5, 3.0, 0.6, 2.9, 1.7, 1.0, 2.85, 0.52, 1.1, 2.0]
    norm = [0.1, 0.9, 0.2, 0.5, 0.4, 0.3, 0.8, 0.35, 0.7, 0.05]
    # nearest earlier task: j=6 (2.85) -> j=3 (2.9); j=7 (0.52) -> j=0 (0.5); j=8 (1.1) -> j=5
    # (1.0); j=9 (2.0) -> j=4 (1.7); the first 6 episodes have ALP 0.
    expected = [0, 0, 0, 0, 0, 0, abs(0.8 - 0.5), abs(0.35 - 0.1), abs(0.7 - 0.3), abs(0.05 - 0.4)]
    tasks = jnp.array([[m, 1.0, 10.0] for m in masses])
    np.testing.assert_allclose(nearest_neighbour_alp(tasks, jnp.array(norm)), expected, atol=1e-6)

    # The same through the strategy: 2 copies finish episodes; ALP is computed at the update
    # boundary (``learn``, the first part of ``on_update``) in chunks of 3, over two updates.
    env, params = PENDULUM.make()
    teacher = ALPGMM(PENDULUM, fit_rate=50, ks=(2,), history=64, alp_chunk=3)
    state = teacher.init(jax.random.key(0), env, params, 2)
    raw = np.asarray(norm) * 2000.0 - 2000.0
    for step in range(5):
        state = state.replace(current=tasks[2 * step : 2 * step + 2])
        state = teacher.observe(state, _record([True, True], raw[2 * step : 2 * step + 2]))
        if step == 2:
            state = teacher.learn(state)
            assert int(state.alp_done) == 6
    state = teacher.learn(state)
    assert int(state.alp_done) == 10
    np.testing.assert_allclose(state.alps[:10], expected, atol=1e-5)
    np.testing.assert_allclose(state.history.returns[:10], raw)  # the raw returns are kept

    # A ring of 8: entries 0 and 1 are overwritten by 8 and 9 before the update, so 7's nearest
    # (0.52) is now entry 2 (0.6) instead of entry 0 (0.5)
    small = ALPGMM(PENDULUM, fit_rate=4, ks=(2,), history=8)
    s = small.init(jax.random.key(0), env, params, 10)
    s = small.observe(s.replace(current=tasks), _record([True] * 10, raw))
    s = small.learn(s)
    np.testing.assert_allclose(s.alps[7], abs(0.35 - 0.2), atol=1e-5)
    np.testing.assert_allclose(s.alps[1], expected[9], atol=1e-5)  # slot 1 holds entry 9


def _reference_region_alp(rewards, window):
    """teachDeepRL's ``RIAC.compute_alp`` on a region's returns (oldest first)."""
    if len(rewards) <= 2:
        return 0.0
    w = min(len(rewards), window)
    half = int(w / 2)
    return abs(np.mean(rewards[-w:-half]) - np.mean(rewards[-half:]))


def test_riac_region_alp_and_split():
    env, params = PENDULUM.make()
    teacher = RIAC(PENDULUM, max_region_size=10, nb_split_attempts=20, history=64)
    # region ALP on ring buffers: 5 and 11 pairs, the ring's start anywhere
    rng = np.random.default_rng(0)
    for size, start in ((5, 3), (11, 7), (2, 0)):
        seq = rng.uniform(size=size).astype(np.float32)
        ring = np.zeros(11, np.float32)
        ring[(start + np.arange(size)) % 11] = seq
        ages = teacher._region_ages(jnp.array([start]), jnp.array([size]))
        got = teacher._alp_by_age(jnp.asarray(ring)[None], ages, jnp.array([size]))
        np.testing.assert_allclose(float(got[0]), _reference_region_alp(seq, 10), atol=1e-6)
    # 11 episodes in the root (one more than max_region_size): the root splits in two; light
    # pendulums improve over time (high ALP), heavy ones stay flat
    masses = np.array([0.6, 2.8, 0.7, 2.9, 0.8, 2.7, 0.9, 2.6, 1.0, 2.5, 0.65])
    tasks = jnp.asarray(np.c_[masses, np.ones(11), np.full(11, 10.0)], jnp.float32)
    progress = np.where(masses < 1.5, np.linspace(-2000, 0, 11), -1000.0)
    state = teacher.init(jax.random.key(0), env, params, 11)
    state = teacher.observe(state.replace(current=tasks), _record([True] * 11, progress))
    state = jax.jit(teacher.on_update)(state, jnp.int32(0))
    assert int(state.num_regions) == 3 and int(state.splits) == 1 and int(state.processed) == 11
    np.testing.assert_array_equal(state.is_leaf[:3], [False, True, True])
    assert int(state.size[0]) == 11 and int(state.size[1]) + int(state.size[2]) == 11
    lo, hi = np.asarray(state.low[:3]), np.asarray(state.high[:3])
    dim = int(np.flatnonzero(hi[1] != hi[0])[0])  # the cut: child 1 below, child 2 above
    assert hi[1, dim] == lo[2, dim] and lo[1, dim] == lo[0, dim] and hi[2, dim] == hi[0, dim]
    below = np.asarray(tasks)[:, dim] <= hi[1, dim]
    assert int(state.size[1]) == below.sum()
    span = (PENDULUM.high_array - PENDULUM.low_array)[dim] / 15
    assert hi[1, dim] - lo[1, dim] >= span and hi[2, dim] - lo[2, dim] >= span
    assert float(teacher.metrics(state)["teacher_regions"]) == 3.0


# -- ALP-GMM concentrates on a high-ALP region ----------------------------------------------------


def test_alp_gmm_sampling_concentrates_on_a_high_alp_region():
    env, params = PENDULUM.make()
    teacher = ALPGMM(PENDULUM, fit_rate=200, ks=(2, 3, 4), history=512)
    n = 400
    key = jax.random.key(0)
    tasks = PENDULUM.uniform(key, n)
    region = (tasks[:, 0] < 1.0) & (tasks[:, 2] < 10.0)  # 1/15 of the box
    flip = jax.random.bernoulli(jax.random.key(1), 0.5, (n,))
    returns = jnp.where(region, jnp.where(flip, 0.0, -2000.0), -1000.0)  # noisy only in region
    state = teacher.init(key, env, params, n)
    state = teacher.observe(state.replace(current=tasks), _record(np.ones(n, bool), returns))
    state = jax.jit(teacher.on_update)(state, jnp.int32(0))
    assert int(state.k) >= 2 and int(state.refits) == 1
    assert float(teacher.metrics(state)["teacher_alp"]) > 0.0
    drawn = jax.jit(teacher.sample, static_argnums=2)(jax.random.key(2), state, 4000)
    assert bool(jnp.all((drawn >= PENDULUM.low_array) & (drawn <= PENDULUM.high_array)))
    inside = float(jnp.mean((drawn[:, 0] < 1.0) & (drawn[:, 2] < 10.0)))
    uniform = RandomTeacher(PENDULUM).sample(jax.random.key(2), None, 4000)
    base = float(jnp.mean((uniform[:, 0] < 1.0) & (uniform[:, 2] < 10.0)))
    assert base < 0.1 and inside > 0.35, (base, inside)


# -- every teacher inside a vmapped, jitted batched env ---------------------------------------------

B, STEPS, UPDATES = 6, 5, 6
TEACHERS = {
    "alp_gmm": lambda: ALPGMM(PENDULUM, fit_rate=12, ks=(2, 3), refit_every=2, history=128),
    "covar_gmm": lambda: CovarGMM(PENDULUM, fit_rate=12, ks=(2, 3), refit_every=2, history=128),
    "riac": lambda: RIAC(
        PENDULUM, max_region_size=10, nb_split_attempts=8, max_regions=9, history=128
    ),  # fmt: skip
    "random": lambda: RandomTeacher(PENDULUM, history=128),
}


@pytest.mark.parametrize(
    "name",
    [
        "random",
        pytest.param("alp_gmm", marks=pytest.mark.slow),
        pytest.param("covar_gmm", marks=pytest.mark.slow),
        pytest.param("riac", marks=pytest.mark.slow),
    ],
)
def test_teacher_jits_vmaps_and_sees_the_agents_returns(name):
    """2 seeds x 6 updates of 5 steps, 6 copies; episodes of 3 steps (max_steps_in_episode) so
    every update finishes some: mixtures are refitted, RIAC splits. The history must hold the
    returns EpisodeStatistics reported, in order, and each copy must step with its task.

    Mostly compilation: 7 s (Random) to 24 s (RIAC) each on the shared 2-core machine; the
    mixture teachers and RIAC are marked slow (budget 30 s each), Random runs by default (the
    shared Teacher plumbing; ALP-GMM's own logic has the two tests above)."""
    env, params = PENDULUM.make()
    params = params.replace(max_steps_in_episode=3)
    teacher = TEACHERS[name]()
    venv = EpisodeStatistics(VecEnv(env, B, teacher))

    def run(key):
        _, state = venv.reset(key, params)

        def step(carry, _):
            state, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            action = jax.random.uniform(k_act, (B, 1), minval=-2.0, maxval=2.0)
            _, state, _, _, _, info = venv.step(k_step, state, action, params)
            tasks_ok = jnp.all(state.inner.params.m == teacher_state(state).current[:, 0])
            return (state, key), (info["returned_episode"], info["returned_episode_returns"],
                                  tasks_ok)  # fmt: skip

        def update(carry, u):
            carry, episodes = jax.lax.scan(step, carry, None, STEPS)
            state, key = carry
            state = venv.on_update(state, u)  # u is unbatched under the vmap below
            return (state, key), (episodes, venv.metrics(state))

        (state, _), out = jax.lax.scan(update, (state, key), jnp.arange(UPDATES))
        return state, out

    def teacher_state(state):
        return venv.strategy_state(state)

    state, ((done, returns, tasks_ok), metrics) = jax.jit(jax.vmap(run))(
        jax.random.split(jax.random.key(0), 2)
    )
    assert bool(jnp.all(tasks_ok))
    ts = teacher_state(state)
    for seed in range(2):
        seen = np.asarray(returns[seed])[np.asarray(done[seed])]  # step-major, copy order
        n = int(ts.history.count[seed])
        assert n == seen.size == UPDATES * STEPS * B // 3
        np.testing.assert_array_equal(np.asarray(ts.history.returns[seed, :n]), seen)
        tasks = np.asarray(ts.history.tasks[seed, :n])
        assert np.all((tasks >= PENDULUM.low) & (tasks <= PENDULUM.high))
    for k, v in metrics.items():
        assert np.all(np.isfinite(np.asarray(v))), k
    np.testing.assert_array_equal(metrics["teacher_episodes"][:, -1], [60, 60])
    if name in ("alp_gmm", "covar_gmm"):
        assert np.all(np.asarray(ts.refits) >= 2) and np.all(np.asarray(ts.k) >= 2)
    if name == "riac":
        assert np.all(np.asarray(ts.num_regions) >= 3)  # split at least once
        assert np.all(np.asarray(ts.processed) == 60)


# -- evaluation -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_short_ppo_run_with_alp_gmm_records_mastered(tmp_path):
    """PPO on Pendulum with ALP-GMM through the Runner (2 seeds, 4 updates, 2 segments), the
    mastered hook on an 8-task test set every segment: a ``mastered`` column in [0, 1] at the
    segment ends, NaN elsewhere, written to the run folder; the teacher's state survives the
    checkpoint.

    Slow (budget 90 s; 55 s measured on the loaded 2-core machine, nearly all compilation of
    PPO with the teacher's refit and of the evaluation)."""
    from accelrl.agents import Runner, build

    env, params = PENDULUM.make()
    params = params.replace(max_steps_in_episode=50)
    teacher = ALPGMM(PENDULUM, fit_rate=8, ks=(2, 3), refit_every=1, history=64)
    overrides = dict(num_envs=4, num_steps=64, num_minibatches=1, update_epochs=1,
                     total_timesteps=4 * 64 * 4)  # fmt: skip
    agent, _, hparams = build(VecEnv(env, 4, teacher), "ppo", overrides, env_params=params,
                              env_id="Pendulum-v1")  # fmt: skip
    hook = mastered_hook(PENDULUM, every=1, n=8)
    runner = Runner(agent, [0, 1], hparams, out_dir=tmp_path, segments=2, progress=False,
                    on_segment=hook)  # fmt: skip
    result = runner.train()
    mastered = result.metrics["mastered"]
    assert mastered.shape == (2, 4)
    assert np.all(np.isnan(mastered[:, [0, 2]]))
    assert np.all((mastered[:, [1, 3]] >= 0) & (mastered[:, [1, 3]] <= 1))
    assert np.all(result.metrics["teacher_refits"][:, -1] >= 1)  # 5 episodes per update
    assert "mastered" in (tmp_path / "seed_0" / "metrics.csv").read_text().splitlines()[0]
    # the teacher's state (history, ALPs, mixture) is checkpointed with the agent
    restored, _ = Runner(agent, [0, 1], hparams, out_dir=tmp_path, progress=False).restore()
    for a, b in zip(
        jax.tree.leaves(agent.env.strategy_state(restored.env_state)),
        jax.tree.leaves(agent.env.strategy_state(result.state.env_state)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    # the function itself, one seed, against a hand count of the same evaluation
    one = jax.tree.map(lambda x: x[0], result.state)
    tasks = make_test_tasks(PENDULUM, n=8)
    frac = mastered_fraction(agent, one, PENDULUM, tasks, jax.random.key(3))
    returns = agent.evaluate(one, jax.random.key(3), 8, True, apply_tasks(PENDULUM, params, tasks))
    assert float(frac) == pytest.approx(float(np.mean(np.asarray(returns) > -400.0)))


# -- settings that are data -----------------------------------------------------------------------


@pytest.mark.slow
def test_population_differing_in_a_teacher_setting_compiles_once():
    """8 members (8 hparams settings x 1 seed) whose ALP-GMM ``random_task_ratio`` differs
    train in one program: the segment program compiles once (jit cache size 1) for both
    segments and a ``set_strategy_data`` in between; each member's state holds its value, and
    a value outside [0, 1] or a setting that is not data is refused on the host.

    Slow (budget 60 s: one compilation of PPO with the teacher's refit)."""
    from accelrl.agents import Runner, build
    from accelrl.agents.runner import seed_vmapped

    env, params = PENDULUM.make()
    params = params.replace(max_steps_in_episode=50)
    teacher = ALPGMM(PENDULUM, fit_rate=8, ks=(2,), history=64)
    overrides = dict(num_envs=4, num_steps=32, num_minibatches=1, update_epochs=1,
                     total_timesteps=4 * 32 * 4)  # fmt: skip
    agent, _, hparams = build(VecEnv(env, 4, teacher), "ppo", overrides, env_params=params,
                              env_id="Pendulum-v1")  # fmt: skip
    ratios = [i / 7 for i in range(8)]
    seen = []

    def hook(runner, state, seg):
        seen.append(np.asarray(agent.env.strategy_state(state.env_state).random_task_ratio))
        if len(seen) == 1:  # between segments: new values, same program
            return SegmentUpdate(
                state=runner.set_strategy_data(state, [{"random_task_ratio": 0.5}] + [None] * 7)
            )
        return None

    from accelrl.agents.runner import SegmentUpdate

    run, _ = seed_vmapped(agent)
    before = run._cache_size()
    runner = Runner(agent, [0], [hparams] * 8, segments=2, progress=False, on_segment=hook,
                    strategy_data=[{"random_task_ratio": r} for r in ratios])  # fmt: skip
    result = runner.train()
    assert run._cache_size() - before == 1
    np.testing.assert_allclose(seen[0], ratios, rtol=1e-6)
    np.testing.assert_allclose(seen[1], [0.5, *ratios[1:]], rtol=1e-6)
    assert runner.describe_members()[0]["strategy_data"] == {"random_task_ratio": 0.5}
    assert result.metrics["teacher_episodes"].shape == (8, 4)
    with pytest.raises(ValueError, match=r"random_task_ratio must be in \[0.0, 1.0\]"):
        runner.set_strategy_data(result.state, [{"random_task_ratio": 1.5}] + [None] * 7)
    with pytest.raises(ValueError, match="'fit_rate' is not a data setting"):
        Runner(agent, [0], hparams, strategy_data={"fit_rate": 10}, progress=False)
