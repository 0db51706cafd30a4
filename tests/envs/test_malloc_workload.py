"""MallocGame workloads and solvers: CSV io, the shipped dataset, baselines, the validator."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from accelrl.envs.malloc import (
    MallocGame,
    PlacementError,
    Workload,
    dataset_index,
    first_fit,
    load_dataset,
    optimal,
    placed_bytes_fraction,
    validate,
    xla_best_fit,
)
from accelrl.envs.malloc.workload import (
    DATASET_JSON,
    DATASET_NPZ,
    ORDERS,
    benefit_seconds,
    validation_programs,
)
from accelrl.envs.malloc.xla_dump import workload_from_jaxpr

# The MiniMalloc instances live in the shared folder beside the checkout (CI lays it there too);
# ACCELRL_MINIMALLOC_DIR points elsewhere.
MINIMALLOC = Path(
    os.environ.get(
        "ACCELRL_MINIMALLOC_DIR",
        Path(__file__).resolve().parents[3] / "shared" / "data" / "minimalloc",
    )
)
CSVS = sorted(MINIMALLOC.glob("*.csv")) if MINIMALLOC.exists() else []
needs_minimalloc = pytest.mark.skipif(not CSVS, reason="MiniMalloc CSVs not available")


def tiny() -> Workload:
    # three buffers live together; 0 and 1 (60 + 50 bytes) cannot share 100 bytes
    return Workload(
        size=[60, 50, 40, 30],
        start=[0, 0, 0, 5],
        end=[4, 4, 4, 6],
        benefit=[1.0, 3.0, 1.5, 0.5],
        name="tiny",
    )


# ---- CSV ----------------------------------------------------------------------------------------
@needs_minimalloc
def test_minimalloc_instances_load_and_round_trip(tmp_path):
    for path in CSVS:
        w = Workload.from_minimalloc_csv(path)
        assert 150 <= w.num_buffers <= 460
        assert 0.9 * 2**20 <= w.peak_live_bytes <= 2**20
        w.to_minimalloc_csv(tmp_path / "x.csv")
        back = Workload.from_minimalloc_csv(tmp_path / "x.csv")
        for f in ("size", "start", "end", "benefit"):
            np.testing.assert_array_equal(getattr(back, f), getattr(w, f))
    first = (MINIMALLOC / "A.1048576.csv").read_text().splitlines()[1].split(",")
    w = Workload.from_minimalloc_csv(MINIMALLOC / "A.1048576.csv")
    assert (w.start[0], w.end[0], w.size[0]) == (int(first[1]), int(first[2]) - 1, int(first[3]))
    # fallback benefit: proportional to size
    np.testing.assert_allclose(w.benefit / w.size, w.benefit[0] / w.size[0])


@pytest.mark.parametrize(
    "body, match",
    [
        ("id,lower,size\n0,0,5\n", "missing column"),
        ("id,lower,upper,size\n0,0,4,8\n1,0,4,-3\n", r":3: negative size"),
        ("id,lower,upper,size\n0,4,4,8\n", r":2: upper=4 <= lower=4"),
        ("id,lower,upper,size\n0,0,4,8\n1,0,4.5,8\n", r":3: upper='4.5' is not an integer"),
        ("id,lower,upper,size\n0,0,4\n", r":2: expected 4 fields"),
        ("", "empty file"),
    ],
)
def test_malformed_csv_names_the_line(tmp_path, body, match):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ValueError, match=match):
        Workload.from_minimalloc_csv(path)


INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    "body, line, match",
    [
        # a size of 10^23 (was a raw OverflowError from numpy, naming neither file nor line)
        (
            b"id,lower,upper,size\n0,0,4,8\n1,0,4,100000000000000000000000\n",
            3,
            rf"size=100000000000000000000000 exceeds the int64 maximum {INT64_MAX}$",
        ),
        # one past the int64 maximum, in another column; the maximum itself is accepted below
        (
            f"id,lower,upper,size\n0,0,{INT64_MAX + 1},8\n".encode(),
            2,
            rf"upper={INT64_MAX + 1} exceeds the int64 maximum {INT64_MAX}$",
        ),
        # a 5000-digit value: no int() of it, and the message stays short
        (
            b"id,lower,upper,size\n0,0,4," + b"9" * 5000 + b"\n",
            2,
            r"size=9{40}\.\.\. \(5000 chars\) exceeds the int64 maximum",
        ),
        # binary bytes (was a raw UnicodeDecodeError)
        (
            b"id,lower,upper,size\n0,0,4,8\n1,0,4,\xff\xfe\x00\x81\n",
            3,
            r"not UTF-8 text \(byte 0xff at offset 34\)$",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 1, r"not UTF-8 text \(byte 0x89 at offset 0\)$"),
        # duplicate ids: the line, the id and the earlier line
        (
            b"id,lower,upper,size\n7,0,4,8\n3,1,5,8\n7,2,6,8\n",
            4,
            r"duplicate id '7' \(already on line 2\)$",
        ),
        # a field over csv's size limit (was a raw csv.Error)
        (b'id,lower,upper,size\n0,0,4,"' + b"1" * 200_000 + b'"\n', 2, r"malformed CSV: field"),
    ],
    ids=["size-1e23", "int64-max+1", "5000-digits", "binary", "png", "duplicate-id", "huge-field"],
)
def test_bad_csv_input_is_a_one_line_error_naming_file_and_line(tmp_path, body, line, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    with pytest.raises(ValueError) as err:
        Workload.from_minimalloc_csv(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert "\n" not in msg and len(msg) < 200 + len(str(path)), msg
    assert re.search(match, msg), msg
    # no raw OverflowError / UnicodeDecodeError / csv.Error chained onto the traceback
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_csv_accepts_int64_max_and_a_bom(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid,lower,upper,size\n"
        + f"a,0,{INT64_MAX},{INT64_MAX}\nb,+3,0004,0\n".encode()
    )
    w = Workload.from_minimalloc_csv(path)
    assert list(w.size) == [INT64_MAX, 0] and w.size.dtype == np.int64
    assert list(w.start) == [0, 3] and list(w.end) == [INT64_MAX - 1, 3]
    # no id column: nothing to check for duplicates
    path.write_text("lower,upper,size\n0,4,8\n0,4,8\n")
    assert Workload.from_minimalloc_csv(path).num_buffers == 2


def test_workload_checks_and_profile():
    with pytest.raises(ValueError, match="ends before"):
        Workload(size=[1, 2], start=[0, 3], end=[1, 2], benefit=[0, 0])
    with pytest.raises(ValueError, match="negative size"):
        Workload(size=[1, -2], start=[0, 0], end=[1, 2], benefit=[0, 0])
    w = tiny()
    assert w.peak_live_bytes == 150 and w.peak_live_count == 3 and w.horizon == 7
    assert list(w.order("start")) == [0, 1, 2, 3]
    assert w.order("xla")[0] == 1  # highest benefit / sqrt(size)
    np.testing.assert_allclose(benefit_seconds([10], 4.0, 2.0), [10 * (0.5 - 0.25)])
    with pytest.raises(ValueError):
        benefit_seconds([1], 1.0, 2.0)


# ---- validator and baselines -------------------------------------------------------------------
def test_validate_accepts_good_and_rejects_broken_placements():
    w = tiny()
    assert validate(w, 100, [0, -1, 60, 0]) == pytest.approx(3.0 / 6.0)
    broken = {
        "overlap": [0, -1, 50, 0],
        "exceeds capacity": [0, -1, 61, 0],
        "< -1": [0, -2, 60, 0],
        "not a multiple": [0, -1, 60, 3],
    }
    for match, off in broken.items():
        with pytest.raises(PlacementError, match=match):
            validate(w, 100, off, alignment=2 if match == "not a multiple" else 1)
    with pytest.raises(PlacementError, match="shape"):
        validate(w, 100, [0, 1])
    # time-disjoint buffers may share addresses; aligned sizes count
    assert validate(w, 100, [0, -1, -1, 0]) > 0
    assert validate(w, 200, [0, 64, 128, 0], alignment=64) == pytest.approx(1.0)
    assert validate(w, 170, [0, 64, 128, 0]) == pytest.approx(1.0)
    with pytest.raises(PlacementError, match="capacity"):  # 40 bytes occupy 64 when aligned
        validate(w, 170, [0, 64, 128, 0], alignment=64)


def orders_workload() -> Workload:
    # distinct keys per order: sizes, durations (end - start + 1), benefits, starts
    return Workload(
        size=[100, 25, 400, 16],
        start=[0, 1, 2, 3],
        end=[9, 2, 3, 3],
        benefit=[1.0, 2.0, 8.0, 0.1],
        name="orders",
    )


def test_every_named_order_sorts_by_its_documented_key():
    w = orders_workload()
    # duration = end - start + 1 = [10, 2, 2, 1]
    expected = {
        "xla": [2, 1, 0, 3],  # benefit / sqrt(size) = 0.1, 0.4, 0.4, 0.025; ties: larger first
        "benefit_per_size": [1, 2, 0, 3],  # 0.01, 0.08, 0.02, 0.00625
        "benefit": [2, 1, 0, 3],
        "size": [2, 0, 1, 3],
        "start": [0, 1, 2, 3],
        "duration": [0, 2, 1, 3],  # 10, 2, 2, 1; ties: larger first
        "benefit_per_area": [1, 2, 3, 0],  # 0.001, 0.04, 0.01, 0.00625
    }
    assert set(expected) == set(ORDERS) and len(ORDERS) == 7
    for order, perm in expected.items():
        assert list(w.order(order)) == perm, order
    with pytest.raises(ValueError, match="unknown order 'random'"):
        w.order("random")


def test_every_greedy_rule_is_valid_and_the_portfolio_is_their_best():
    from accelrl.envs.malloc.solvers import greedy, greedy_rules, portfolio

    assert len(greedy_rules()) == 14
    for w, cap, align in ((tiny(), 100, 1), (load_dataset("test")[6], None, 64)):
        cap = cap or int(0.5 * w.peak_live_bytes) // align * align
        values = {}
        for rule, order in greedy_rules():
            values[rule, order] = validate(w, cap, greedy(w, cap, align, order, rule), align)
        off, pair = portfolio(w, cap, align)
        assert validate(w, cap, off, align) == max(values.values()) == values[pair]
    np.testing.assert_array_equal(greedy(w, cap, align, "xla", "best"), xla_best_fit(w, cap, align))
    np.testing.assert_array_equal(
        greedy(w, cap, align, "start", "lowest"), first_fit(w, cap, align)
    )
    with pytest.raises(ValueError, match="unknown rule 'worst'"):
        greedy(w, cap, align, "xla", "worst")


def test_greedy_baselines_on_tiny():
    w = tiny()
    for solver in (xla_best_fit, first_fit):
        off = solver(w, 100)
        validate(w, 100, off)
    off = xla_best_fit(w, 100)
    assert off[1] >= 0  # the most memory-bound buffer goes first


@needs_minimalloc
def test_minimalloc_bytes_placed_by_greedy_baselines():
    fractions = {}
    for path in CSVS:
        w = Workload.from_minimalloc_csv(path)
        a, b = xla_best_fit(w, 2**20), first_fit(w, 2**20)
        validate(w, 2**20, a)
        validate(w, 2**20, b)
        fractions[w.name] = (placed_bytes_fraction(w, a), placed_bytes_fraction(w, b))
    xla = np.array([v[0] for v in fractions.values()])
    ff = np.array([v[1] for v in fractions.values()])
    # measured: best fit 0.90-0.98 of the bytes, first fit 0.43-0.97; MiniMalloc reaches 1.0
    assert 0.88 < xla.min() and xla.max() < 1.0
    assert ff.min() < 0.5 and np.median(xla) > np.median(ff)


def test_optimal_is_an_upper_bound_for_the_greedy_baselines():
    pytest.importorskip("ortools")
    w = tiny()
    off, info = optimal(w, 100, time_limit=5.0, return_info=True)
    frac = validate(w, 100, off)
    assert info["status"] == "OPTIMAL"
    assert frac == pytest.approx(5.0 / 6.0)  # buffers 1 + 2 (90 bytes) and the later 3
    rng = np.random.default_rng(0)
    for _ in range(3):
        n = 14
        start = rng.integers(0, 20, n)
        w = Workload(
            size=rng.integers(1, 40, n),
            start=start,
            end=np.minimum(start + rng.integers(0, 8, n), 19),
            benefit=rng.uniform(0, 1, n),
        )
        cap = w.peak_live_bytes // 2
        best = validate(w, cap, optimal(w, cap, time_limit=5.0))
        for solver in (xla_best_fit, first_fit):
            assert validate(w, cap, solver(w, cap)) <= best + 1e-9


# ---- the shipped dataset ----------------------------------------------------------------------
def test_shipped_dataset_is_small_real_and_split_by_model():
    assert DATASET_NPZ.stat().st_size < 1_000_000
    index = dataset_index()
    train, test = set(index["split"]["train"]), set(index["split"]["test"])
    assert not train & test and len(train | test) >= 12
    workloads = load_dataset()
    names = {w.name for w in workloads}
    assert {"fwd", "train"} <= {n.split("/")[1] for n in names}
    assert len({n.split("/")[2] for n in names}) >= 2  # several batch sizes
    assert {w.name.split("/")[0] for w in load_dataset("test")} == test
    for w in workloads:
        assert w.num_buffers >= 5 and w.bytes_moved is not None
        # not plain packing: benefit is not proportional to size
        ratio = w.benefit / np.maximum(w.size, 1)
        assert ratio.max() > 1.5 * ratio[w.benefit > 0].min()
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("valid")


def test_validation_split_comes_from_training_models_and_is_never_trained_on():
    index = dataset_index()
    train = {w.name for w in load_dataset("train")}
    val = {w.name for w in load_dataset("validation")}
    test = {w.name for w in load_dataset("test")}
    assert val == set(index["validation"]) and len(val) == len(index["split"]["train"])
    assert not val & train and not val & test and not train & test
    assert {n.split("/")[0] for n in val} == set(index["split"]["train"])
    assert {n.split("/")[1] for n in val} == {"fwd", "train"}
    assert train | val | test == {w.name for w in load_dataset()}
    assert validation_programs(["b", "a", "c"], [32, 2, 8]) == [
        "a/fwd/b8",
        "b/train/b8",
        "c/fwd/b8",
    ]


def test_validation_split_needs_an_index_that_names_it(tmp_path):
    index = dataset_index()
    del index["validation"]
    path = tmp_path / "w.json"
    path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match="names no validation programs"):
        load_dataset("validation", json_path=path)
    # without a validation list, train is every training-model program
    assert len(load_dataset("train", json_path=path)) == 6 * len(index["split"]["train"])


def test_default_env_fits_every_shipped_workload():
    env = MallocGame()
    for w in load_dataset():
        env.params_for(w)  # raises if max_buffers / max_live are too small


def test_jaxpr_fallback():
    import jax.numpy as jnp

    def f(w, x):
        h = jnp.tanh(x @ w)
        return (h * h).sum()

    w = workload_from_jaxpr(f, jnp.ones((8, 4)), jnp.ones((2, 8)))
    assert w.num_buffers >= 4
    assert w.size.max() == 8 * 4 * 4
    assert (w.end >= w.start).all() and w.bytes_moved.min() > 0


def test_offering_order_limits_reachable_placements():
    """Buffer 1 must float on buffer 2, which starts later: start order cannot reach the
    optimum, size order can (exhaustive search of the game vs CP-SAT)."""
    pytest.importorskip("ortools")
    from accelrl.envs.malloc.reference import ReferenceGame, best_reachable

    w = Workload(size=[2, 4, 3, 3], start=[0, 2, 3, 1], end=[2, 3, 3, 3], benefit=[1, 1, 1, 1])
    opt = validate(w, 7, optimal(w, 7, time_limit=5.0))
    assert opt == pytest.approx(0.75)
    env = MallocGame(max_buffers=4, max_live=4, alignment=1, default_workload=w)
    reach = {
        order: best_reachable(ReferenceGame(env.params_for(w, capacity=7, order=order), 8, 4, 0, 4))
        for order in ("start", "size")
    }
    assert reach["start"] == pytest.approx(0.5)
    assert reach["size"] == pytest.approx(opt)
    rng = np.random.default_rng(0)
    for _ in range(5):  # never above the optimum
        start = rng.integers(0, 8, 6)
        w = Workload(
            size=rng.integers(1, 9, 6),
            start=start,
            end=np.minimum(start + rng.integers(0, 4, 6), 7),
            benefit=rng.uniform(0, 1, 6),
        )
        cap = max(w.peak_live_bytes // 2, 1)
        opt = validate(w, cap, optimal(w, cap, time_limit=5.0))
        big = MallocGame(max_buffers=6, max_live=6, alignment=1, default_workload=w)
        game = ReferenceGame(big.params_for(w, capacity=cap), 8, 4, 0, 6)
        assert best_reachable(game) <= opt + 1e-6


def test_large_set_is_its_own_split_of_training_steps():
    from accelrl.envs.malloc.workload import LARGE_JSON, LARGE_NPZ

    assert LARGE_NPZ.stat().st_size < 1_000_000
    large = load_dataset("large")
    assert len(large) >= 8 and {w.name.split("/")[1] for w in large} == {"train"}
    assert 1_500 <= min(w.num_buffers for w in large) and max(w.num_buffers for w in large) <= 5_000
    main = {w.name for w in load_dataset()}
    assert not main & {w.name for w in large}  # None: the main set only, as before
    assert {w.name.split("/")[0] for w in large} == set(dataset_index(LARGE_JSON)["split"]["large"])
    with pytest.raises(ValueError, match="not a large set"):
        load_dataset("large", DATASET_NPZ, DATASET_JSON)
