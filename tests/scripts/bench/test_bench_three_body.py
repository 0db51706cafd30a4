"""scripts/bench/bench_three_body.py: the issue's targets and the card block from a record."""

from __future__ import annotations

import json

import bench_three_body as T
import pytest


def _row(imbalance=1.68, useful=12.7e6, speedup=10.2, mu=1e-2, batch=1024, C=32):
    return {
        "C": C, "mu": mu, "batch": batch, "devices": 2, "system_years": 1024 * 10.0,
        "env_sysyr_per_s": 45_957.0, "rebound_sysyr_per_s": 45_957.0 / speedup,
        "speedup": speedup, "speedup_cpu": speedup / 2, "useful_substeps_per_s": useful,
        "imbalance": imbalance, "env_median_dE": 1e-9, "rebound_median_dE": 1e-15,
    }  # fmt: skip


def _record(rows):
    return {
        "command": "python scripts/bench/bench_three_body.py --devices 2",
        "commit": "0123456789abcdef",
        "clean_tree": False,
        "generator": T.GENERATOR,
        "page": T.PAGE,
        "versions": {"jax": "0.10.2"},
        "settings": {"devices": 2, "decisions": 100, "repeats": 3, "rebound_systems": 128},
        "host": {"cpus": 2, "load_start": [3.0], "load_end": [4.0]},
        "wall_s": 300.0,
        "rows": rows,
        "targets": T.three_body_targets(rows),
    }


def test_targets_follow_the_reference_row():
    (text,) = T.render(_record([_row(), _row(mu=1e-1, imbalance=9.0)])).values()
    assert "- lockstep imbalance: **met** (1.68, target <= 2)" in text
    assert "- useful substeps/s: **met** (12,700,000.00, target >= 5e+06)" in text
    assert "- system-years/s over REBOUND's: **met** (10.20, target >= 10)" in text
    assert "uncommitted changes" in text  # a dirty run says so
    # false claims: 9.7x REBOUND, imbalance 2.65 -> not met
    (text,) = T.render(_record([_row(imbalance=2.65, speedup=9.7)])).values()
    assert "- lockstep imbalance: **not met** (2.65" in text
    assert "- system-years/s over REBOUND's: **not met** (9.70" in text
    # the reference row missing (another C): nothing is met
    (text,) = T.render(_record([_row(C=64)])).values()
    assert text.count("**not met** (not measured") == 3


def test_from_results_renders_the_block_of_its_device_count(tmp_path):
    page = tmp_path / "card.md"
    page.write_text("<!-- bench_three_body_2dev: begin -->\n<!-- bench_three_body_2dev: end -->\n")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record([_row()])))
    T.render_from_results(path, T.render, page=page)
    assert "**met** (1.68" in page.read_text()
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        T.main(T.Args(quick=True, out=str(REPO / "docs" / "results" / "x.json")))
