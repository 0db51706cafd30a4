"""scripts/bench/bench_malloc.py: the speed block and its target from a hand-made results
record (and refused for contradictory numbers), a byte-identical ``--from_results`` re-render,
a tiny measurement, and ``--quick`` kept out of docs/."""

from __future__ import annotations

import copy
import json

import _bench
import bench_malloc as M
import pytest

from accelrl.results import REPO, replace_block

PAGE = "intro\n<!-- bench_malloc: begin -->\nold\n<!-- bench_malloc: end -->\ntail\n"


def _record(rates_1024=(20_000.0, 22_000.0, 30_000.0), python=(100.0, 200.0, 400.0)):
    py_med = sorted(python)[1]
    jax = []
    for b, rates in ((1, (30_000.0, 31_000.0, 32_000.0)), (1024, rates_1024)):
        med = sorted(rates)[1]
        jax.append({"batch": b, "rates": list(rates), "median": med, "vs_python": med / py_med})
    return {
        "command": "python scripts/bench/bench_malloc.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "generator": M.GENERATOR,
        "page": M.PAGE,
        "settings": {"batches": [1, 1024], "steps": 256, "repeats": 3, "python_seconds": 10.0,
                     "split": None, "num_candidates": 8},
        "game": {"workloads": 84, "max_buffers": 721, "max_live": 361, "num_candidates": 8},
        "host": {"cpus": 2, "load_start": [1.0, 1.0, 1.0], "load_end": [1.5, 1.0, 1.0]},
        "device": "cpu (1 device(s))",
        "wall_s": 150.0,
        "quick": False,
        "python": {"rates": list(python), "median": py_med},
        "jax": jax,
    }  # fmt: skip


def test_block_and_target_from_a_hand_made_record():
    text = M.render(_record())[M.BLOCK]
    assert "| pure Python (reference) | 1 | 200 | 100, 200, 400 | 1.0x |" in text
    assert "| JAX vmap + jit | 1024 | 22,000 | 20,000, 22,000, 30,000 | 110.0x |" in text
    assert "batch 1024 vs the pure-Python game: **met** (110.0x, target 50x)" in text
    assert "load average 1.0 at the start, 1.5 at the end" in text
    assert "commit `0123456789` (clean tree)" in text and "smoke run" not in text
    # a false claim: under 50x at batch 1024
    slow = M.render(_record(rates_1024=(5_000.0, 6_000.0, 7_000.0)))[M.BLOCK]
    assert "**not met** (30.0x, target 50x)" in slow
    # no batch 1024 measured: not met
    rec = _record()
    rec["jax"] = rec["jax"][:1]
    assert "**not met** (batch 1024 not measured" in M.render(rec)[M.BLOCK]


def test_contradictory_numbers_are_refused(tmp_path):
    bad = _record()
    bad["jax"][1]["vs_python"] = 500.0  # not 22,000 / 200
    with pytest.raises(ValueError, match="batch 1024: ratio 500.0x is not the median 22,000"):
        M.render(bad)
    bad = _record()
    bad["jax"][0]["median"] = 32_000.0  # not the median of its repeats
    with pytest.raises(ValueError, match="batch 1: median 32000.0 is not the median"):
        M.check_record(bad)
    bad = _record()
    bad["python"]["median"] = 400.0
    with pytest.raises(ValueError, match="Python median"):
        M.check_record(bad)
    # through --from_results: one line, the page left as it was
    path, page = tmp_path / "bad.json", tmp_path / "page.md"
    bad["python"]["median"] = 400.0
    path.write_text(json.dumps(bad))
    page.write_text(PAGE)
    with pytest.raises(SystemExit, match="--from_results: the Python median"):
        M.main(["--from_results", str(path), "--page", str(page)])
    assert page.read_text() == PAGE


def test_from_results_renders_the_block_byte_for_byte(tmp_path):
    record = _record()
    path, page = tmp_path / "r.json", tmp_path / "page.md"
    path.write_text(json.dumps(record))
    page.write_text(PAGE)
    M.main(["--from_results", str(path), "--page", str(page)])
    first = page.read_bytes()
    assert first.decode() == replace_block(PAGE, M.BLOCK, M.render(record)[M.BLOCK])
    M.main(["--from_results", str(path), "--page", str(page)])
    assert page.read_bytes() == first


def test_a_tiny_measurement_is_a_consistent_record():
    args = M.Args(split="validation", batches=(2,), steps=4, repeats=2, python_seconds=0.05)
    measured = M.measure(args)
    assert measured["game"]["workloads"] == 10
    assert len(measured["python"]["rates"]) == 2 and measured["python"]["median"] > 0
    (row,) = measured["jax"]
    assert row["batch"] == 2 and len(row["rates"]) == 2 and row["vs_python"] > 0
    record = {**copy.deepcopy(_record()), **measured}
    M.check_record(record)


def test_quick_never_writes_into_docs(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="never write"):
        M.main(["--quick", "--out", str(REPO / "docs" / "results" / "bench_malloc.json")])
    dirty = _record()
    dirty["clean_tree"] = False
    monkeypatch.setattr(_bench, "results_record", lambda *a, **k: dirty)  # open_results' record
    with pytest.raises(SystemExit, match="uncommitted changes"):
        M.main(["--out", str(tmp_path / "r.json")])
    assert not (tmp_path / "r.json").exists()
