"""capacity_lp_bound (an upper bound on every placement) and CP-SAT's solution hint."""

from __future__ import annotations

import numpy as np
import pytest

from accelrl.envs.malloc import Workload, capacity_lp_bound, optimal, validate, xla_best_fit


def test_capacity_lp_bound_by_hand():
    # two buffers live together, 6 + 6 units under a capacity of 10: all of the better one
    # and 4/6 of the other fit in the relaxation
    w = Workload(size=[6, 6], start=[0, 1], end=[2, 3], benefit=[1.0, 3.0])
    assert capacity_lp_bound(w, 10) == pytest.approx((3.0 + 4.0 / 6.0) / 4.0, abs=1e-6)
    # disjoint lifetimes: both fit
    w2 = Workload(size=[6, 6], start=[0, 3], end=[2, 4], benefit=[1.0, 3.0])
    assert capacity_lp_bound(w2, 10) == pytest.approx(1.0, abs=1e-6)
    # alignment rounds sizes up: 2 x 8 units > 10
    assert capacity_lp_bound(w, 10, alignment=8) < capacity_lp_bound(w, 16, alignment=8)
    assert capacity_lp_bound(Workload(size=[4], start=[0], end=[0], benefit=[0.0]), 1) == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_capacity_lp_bound_bounds_the_optimum(seed):
    pytest.importorskip("ortools")
    rng = np.random.default_rng(seed)
    n = 10
    start = rng.integers(0, 12, n)
    w = Workload(
        size=rng.integers(1, 20, n),
        start=start,
        end=np.minimum(start + rng.integers(0, 5, n), 11),
        benefit=rng.uniform(0.0, 1.0, n),
    )
    cap = int(0.5 * w.peak_live_bytes)
    hint = xla_best_fit(w, cap)
    off, info = optimal(w, cap, 5.0, return_info=True, hint=hint)
    assert info["status"] == "OPTIMAL"
    best = validate(w, cap, off)
    assert best >= validate(w, cap, hint) - 1e-6
    assert capacity_lp_bound(w, cap) >= best - 1e-6
    with pytest.raises(ValueError, match="hint has shape"):
        optimal(w, cap, 1.0, hint=hint[:-1])
