"""scripts/bench/bench_mpe.py: the speed targets and the card block from a results record."""

from __future__ import annotations

import json

import bench_mpe as M
import pytest


def _rows(accelrl_1024, jaxmarl_1):
    rows = [
        ("accelrl", 1, 30_000.0), ("accelrl", 1024, accelrl_1024),
        ("jaxmarl", 1, jaxmarl_1), ("jaxmarl", 1024, 100_000.0), ("mpe2", 1, 1_000.0),
    ]  # fmt: skip
    return [{"impl": i, "env": "MPE_simple_spread_v3", "batch": b, "steps_per_s": v}
            for i, b, v in rows]  # fmt: skip


def _record(rows):
    return {
        "command": "python scripts/bench/bench_mpe.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "generator": M.GENERATOR,
        "page": M.PAGE,
        "settings": {"steps_per_run": 200_000, "rounds": 5, "mpe2_steps": 1000},
        "host": {"cpus": 2, "load_start": [9.0], "load_end": [10.0]},
        "wall_s": 600.0,
        "rows": rows,
        "targets": M.mpe_targets(rows),
    }


def test_targets_met_and_not_met_follow_the_medians():
    text = M.render(_record(_rows(1_700_000.0, 20_000.0)))[M.BLOCK]
    assert "MPE_simple_spread_v3, vs mpe2 at batch 1024: **met** (1,700.0x" in text
    assert "vs JaxMARL, slowest batch: **met** (1.5x (batch 1)" in text
    assert "| MPE_simple_spread_v3 | 1024 | 1,700,000 | 100,000 | 1,000 | 17.0x | 1700x |" in text
    # false claims: slower than JaxMARL at batch 1, under 100x mpe2 at 1024
    text = M.render(_record(_rows(50_000.0, 60_000.0)))[M.BLOCK]
    assert "vs mpe2 at batch 1024: **not met** (50.0x, target 100x)" in text
    assert "vs JaxMARL, slowest batch: **not met** (0.5x (batch 1, target 1x)" not in text
    assert "vs JaxMARL, slowest batch: **not met** (0.5x (batch 1), target 1x)" in text
    # no JaxMARL measured: not met
    no_jm = [r for r in _rows(1_700_000.0, 1.0) if r["impl"] != "jaxmarl"]
    assert "slowest batch: **not met** (no measurement" in M.render(_record(no_jm))[M.BLOCK]


def test_from_results_and_quick(tmp_path):
    page = tmp_path / "mpe.md"
    page.write_text("<!-- bench_mpe: begin -->\nhand\n<!-- bench_mpe: end -->\n")
    path = tmp_path / "mpe.json"
    path.write_text(json.dumps(_record(_rows(1_700_000.0, 20_000.0))))
    M.render_from_results(path, M.render, page=page)
    assert "hand" not in page.read_text() and "**met**" in page.read_text()
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        M.main(["--quick", "--out", str(REPO / "docs" / "results" / "mpe.json")])
