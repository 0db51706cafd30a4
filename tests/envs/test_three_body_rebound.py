"""ThreeBody physics against REBOUND's IAS15 (accurate to about machine precision).

Position tolerances (max |x - x_ref| / max |x_ref|) shrink as mu^4 down to a floor:
- figure-eight over one period (G = 1): 10 mu^4 + 1e-12 (measured 0.35 mu^4),
- Pythagorean problem to t = 10 (G = 1): 100 mu^4 + 1e-8 (measured 17 mu^4 at mu = 1e-2; below
  mu = 3e-3 chaos amplifies round-off to ~1e-10),
- paper initial conditions over 1 yr: mu^4 + 1e-12 (measured over seeds 0-19: median 0.019 mu^4,
  max 0.36 mu^4).
Energies from ``total_energy`` agree with ``sim.energy()`` to 1e-12 relative.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import three_body as tb

rebound = pytest.importorskip("rebound")

F64 = jnp.float64


def f64(x):
    with jax.enable_x64(True):
        return jnp.asarray(np.asarray(x, np.float64), F64)


def figure_eight():
    r1 = np.array([0.97000436, -0.24308753])
    v3 = np.array([-0.93240737, -0.86473146])
    return np.array([r1, -r1, [0, 0]]), np.array([-v3 / 2, -v3 / 2, v3]), np.ones(3)


def pythagorean():
    return (
        np.array([[1.0, 3.0], [-2.0, -1.0], [1.0, -1.0]]),
        np.zeros((3, 2)),
        np.array([3.0, 4, 5]),
    )


def paper_ic(seed):
    pos, vel = tb.initial_conditions(jax.random.PRNGKey(seed), tb.EnvParams())
    return np.asarray(pos), np.asarray(vel), np.ones(3)


def simulation(pos, vel, m, G):
    sim = rebound.Simulation()
    sim.G = G
    sim.integrator = "ias15"
    for i in range(3):
        sim.add(m=m[i], x=pos[i, 0], y=pos[i, 1], vx=vel[i, 0], vy=vel[i, 1])
    sim.move_to_com()
    return sim


def ias15(pos, vel, m, G, t_end):
    """REBOUND reference: (pos (3, 2), vel (3, 2)) at t_end, in the centre-of-mass frame."""
    sim = simulation(pos, vel, m, G)
    sim.integrate(t_end, exact_finish_time=1)
    p = np.array([[q.x, q.y] for q in sim.particles])
    v = np.array([[q.vx, q.vy] for q in sim.particles])
    return p, v


def com(pos, vel, m):
    mm = m[:, None]
    return pos - (mm * pos).sum(0) / m.sum(), vel - (mm * vel).sum(0) / m.sum()


def position_error(ours, ref):
    """Max position deviation relative to the system's size."""
    return float(np.abs(np.asarray(ours) - ref).max() / np.abs(ref).max())


def assert_positions_agree(ours, ref, tol):
    err = position_error(ours, ref)
    assert err <= tol, f"position error {err:.3e} > tolerance {tol:.3e}"


_integrate = jax.jit(
    lambda p, v, m, t, eta, G: tb.integrate(p, v, m, t, eta, G),
)


def ours(pos, vel, m, G, t_end, mu):
    pos, vel = com(pos, vel, m)
    p, v, n = _integrate(f64(pos), f64(vel), f64(m), f64(t_end), f64(mu), f64(G))
    return np.asarray(p), np.asarray(v), int(n)


def test_position_checker_rejects_a_wrong_answer():
    pos, vel, m = figure_eight()
    ref, _ = ias15(pos, vel, m, 1.0, 1.0)
    assert_positions_agree(ref, ref, 1e-15)
    with pytest.raises(AssertionError, match="position error"):
        assert_positions_agree(ref + 1e-6, ref, 1e-8)


@pytest.mark.parametrize("mu", [1e-2, 3e-3])
def test_figure_eight_one_period(mu):
    pos, vel, m = figure_eight()
    ref, _ = ias15(pos, vel, m, 1.0, 6.32591398)
    p, _, _ = ours(pos, vel, m, 1.0, 6.32591398, mu)
    assert_positions_agree(p, ref, 10 * mu**4 + 1e-12)


def test_pythagorean_to_t10():
    pos, vel, m = pythagorean()
    ref, _ = ias15(pos, vel, m, 1.0, 10.0)
    mu = 1e-2
    p, _, _ = ours(pos, vel, m, 1.0, 10.0, mu)
    assert_positions_agree(p, ref, 100 * mu**4 + 1e-8)


def test_paper_initial_conditions_one_year():
    for seed in (0, 1):
        pos, vel, m = paper_ic(seed)
        ref, _ = ias15(pos, vel, m, tb.G_AU_MSUN_YR, 1.0)
        for mu in (1e-2, 1e-3):
            p, _, _ = ours(pos, vel, m, tb.G_AU_MSUN_YR, 1.0, mu)
            assert_positions_agree(p, ref, mu**4 + 1e-12)


def test_total_energy_matches_rebound():
    cases = [figure_eight() + (1.0,), pythagorean() + (1.0,)]
    cases += [paper_ic(s) + (tb.G_AU_MSUN_YR,) for s in range(3)]
    rng = np.random.default_rng(0)
    cases.append((rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), rng.uniform(0.5, 2, 3), 2.0))
    for pos, vel, m, G in cases:
        pos, vel = com(pos, vel, m)
        want = simulation(pos, vel, m, G).energy()
        got = float(tb.total_energy(f64(pos), f64(vel), f64(m), G))
        assert got == pytest.approx(want, rel=1e-12)
    # and a wrong state is told apart
    pos, vel, m, G = cases[0]
    got = float(tb.total_energy(f64(pos * 1.001), f64(vel), f64(m), G))
    assert got != pytest.approx(simulation(pos, vel, m, G).energy(), rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("mu", [1e-1, 3e-2, 1e-2, 3e-3, 1e-3])
def test_figure_eight_sweep(mu):
    pos, vel, m = figure_eight()
    ref, _ = ias15(pos, vel, m, 1.0, 6.32591398)
    p, _, _ = ours(pos, vel, m, 1.0, 6.32591398, mu)
    assert_positions_agree(p, ref, 10 * mu**4 + 1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("mu", [1e-2, 3e-3, 1e-3, 3e-4])
def test_pythagorean_sweep(mu):
    pos, vel, m = pythagorean()
    ref, _ = ias15(pos, vel, m, 1.0, 10.0)
    p, _, _ = ours(pos, vel, m, 1.0, 10.0, mu)
    assert_positions_agree(p, ref, 100 * mu**4 + 1e-8)


@pytest.mark.slow
def test_paper_initial_conditions_sweep():
    for seed in range(20):
        pos, vel, m = paper_ic(seed)
        ref, _ = ias15(pos, vel, m, tb.G_AU_MSUN_YR, 1.0)
        for mu in (1e-1, 1e-2, 1e-3, 1e-4):
            p, _, _ = ours(pos, vel, m, tb.G_AU_MSUN_YR, 1.0, mu)
            assert_positions_agree(p, ref, mu**4 + 1e-12)
