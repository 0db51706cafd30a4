"""Smoke tests of the ThreeBody scripts with tiny budgets (in-process)."""

from __future__ import annotations

import json

import bench_three_body
import numpy as np
import pytest
import three_body_baselines


def test_baselines_script_writes_table_plot_and_gif(tmp_path):
    args = three_body_baselines.Args(
        out=str(tmp_path), num_seeds=3, num_checks=3, actions=(6, 9), gif=True, gif_checks=3
    )
    rows = three_body_baselines.main(args)
    assert [r["mu"] for r in rows] == pytest.approx([1e-2, 1e-1], rel=1e-6)
    for r in rows:
        assert r["checks"] == [3, 3, 3] and 0 < r["median_dE"] < 1e-3
    assert rows[0]["mean_substeps"] > rows[1]["mean_substeps"]  # smaller mu costs more
    saved = json.loads((tmp_path / "baselines.json").read_text())
    assert len(saved) == 2 and "| mu |" in (tmp_path / "baselines.md").read_text()
    assert (tmp_path / "baselines.png").stat().st_size > 1000
    assert (tmp_path / "episode.gif").stat().st_size > 1000


def test_bench_script_measures_both_sides(tmp_path):
    pytest.importorskip("rebound")
    args = bench_three_body.Args(
        batches=(2,), mus=(1e-1,), caps=(8,), decisions=2, repeats=1, rebound_systems=1,
        out=str(tmp_path / "bench.json"), allow_dirty=True,
    )  # fmt: skip
    (row,) = bench_three_body.main(args)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["rows"] == [row] and saved["generator"] == bench_three_body.GENERATOR
    assert not any(t["met"] for t in saved["targets"])  # B = 1024, mu = 1e-2 not measured
    assert row["batch"] == 2 and row["C"] == 8
    assert row["imbalance"] >= 1.0
    assert row["env_sysyr_per_s"] > 0 and row["rebound_sysyr_per_s"] > 0
    assert np.isfinite(row["env_median_dE"]) and row["rebound_median_dE"] < 1e-12
