"""scripts/experiments/malloc_reachability.py: the instances, the block rendered from a
hand-made record (and refused for an impossible one), ``--quick`` end to end with a
byte-identical ``--from_results`` re-render, and outputs kept out of docs/."""

from __future__ import annotations

import copy
import json

import malloc_reachability as M
import numpy as np
import pytest

from accelrl.results import REPO, replace_block

PAGE = "intro\n<!-- malloc_reachability: begin -->\nold\n<!-- malloc_reachability: end -->\ntail\n"


def _instance(opt, reach, status="OPTIMAL", bound=None):
    return {"size": [1, 2], "start": [0, 1], "end": [1, 1], "benefit": [0.5, 0.5],
            "capacity": 2, "status": status, "optimum": opt,
            "bound": opt if bound is None else bound, "reachable": reach}  # fmt: skip


def _record(instances, quick=False):
    return {
        "command": "python scripts/experiments/malloc_reachability.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "generator": M.GENERATOR,
        "page": M.PAGE,
        "machine": {"cpu_count": 2},
        "settings": {**{k: getattr(M.Args(), k) for k in ("buffers", "horizon", "max_size",
                     "max_duration", "capacity_fraction", "num_candidates", "seed",
                     "time_limit", "bootstrap_reps")}, "orders": ["start", "size"]},
        "ortools": "9.15",
        "tolerance": M.TOL,
        "quick": quick,
        "wall_s": 12.0,
        "instances": instances,
    }  # fmt: skip


def _hand_made():
    return _record(
        [
            _instance(0.8, {"start": 0.8, "size": 0.8}),
            _instance(0.5, {"start": 0.4, "size": 0.5}),
            _instance(0.6, {"start": 0.6, "size": 0.6}, status="FEASIBLE", bound=0.9),
        ]
    )


def test_instances_are_drawn_from_the_seed_and_fit():
    args = M.Args()
    w, cap = M.draw_instance(args, 3)
    w2, cap2 = M.draw_instance(args, 3)
    assert cap == cap2 and np.array_equal(w.size, w2.size) and np.array_equal(w.end, w2.end)
    assert w.num_buffers == 8 and w.end.max() <= 7 and (w.end - w.start).max() <= 3
    assert cap == int(0.6 * w.peak_live_bytes) and cap >= w.size.min()
    other, _ = M.draw_instance(M.Args(seed=1), 3)
    assert not np.array_equal(w.benefit, other.benefit)
    with pytest.raises(ValueError, match="capacity_fraction"):
        M.draw_instance(M.Args(capacity_fraction=0.0), 0)


def test_block_from_a_hand_made_record():
    text = M.render(_hand_made())
    assert "**CP-SAT did not prove the optimum on 1 of the 3 instances**" in text
    assert "covers the other 2" in text
    # start reaches the optimum on 1 of 2 proven instances: ratios 1.0 and 0.8
    assert "| start (default) | 50% | 0.900 | 0.800 | - |" in text
    assert "| size | 100% | 1.000 | 1.000 | +50.0 pp [+0.0, +100.0] |" in text
    assert "| best order per instance | 100% | 1.000 | 1.000 |" in text
    assert "most often: `size` (100%); least often: `start` (50%)" in text
    assert "commit `0123456789` (clean tree)" in text and "12 s wall on 2 CPUs" in text
    assert "--quick" not in text
    assert "`--quick` smoke run" in M.render(_record(_hand_made()["instances"], quick=True))


def test_impossible_records_are_refused(tmp_path):
    bad = _hand_made()
    bad["instances"][1]["reachable"]["size"] = 0.7  # above the proven optimum 0.5
    with pytest.raises(ValueError, match=r"instance 1, order size: best reachable 0.700000 > the"):
        M.render(bad)
    bad = _hand_made()
    bad["instances"][2]["reachable"]["start"] = 0.95  # unproven: above CP-SAT's bound 0.9
    with pytest.raises(ValueError, match="CP-SAT's bound"):
        M.check_record(bad)
    bad = _hand_made()
    del bad["instances"][0]["reachable"]["size"]
    with pytest.raises(ValueError, match="searched orders"):
        M.check_record(bad)
    # through --from_results: one line, the page left as it was
    path, page = tmp_path / "bad.json", tmp_path / "page.md"
    path.write_text(json.dumps(_record(_hand_made()["instances"][:1] + [
        _instance(0.5, {"start": 0.6, "size": 0.5})])))  # fmt: skip
    page.write_text(PAGE)
    with pytest.raises(SystemExit, match="malloc_reachability: instance 1, order start"):
        M.main(["--from_results", str(path), "--page", str(page)])
    assert page.read_text() == PAGE


def test_from_results_renders_the_block_byte_for_byte(tmp_path):
    record = _hand_made()
    path, page = tmp_path / "r.json", tmp_path / "page.md"
    path.write_text(json.dumps(record))
    page.write_text(PAGE)
    M.main(["--from_results", str(path), "--page", str(page)])
    first = page.read_bytes()
    assert first.decode() == replace_block(PAGE, M.BLOCK, M.render(record))
    M.main(["--from_results", str(path), "--page", str(page)])
    assert page.read_bytes() == first


def test_quick_run_end_to_end_and_its_re_render(tmp_path):
    pytest.importorskip("ortools")
    out = tmp_path / "quick.json"
    record = M.main(["--quick", "--out", str(out)])
    assert len(record["instances"]) == 10 and record["quick"] and record["commit"]
    for inst in record["instances"]:
        assert sorted(inst["reachable"]) == sorted(M.Args().orders)
        assert inst["status"] == "OPTIMAL"  # 8 buffers: proven well within 10 s
        assert max(inst["reachable"].values()) <= inst["optimum"] + M.TOL
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    M.main(["--from_results", str(out), "--page", str(page)])
    assert page.read_text() == replace_block(PAGE, M.BLOCK, M.render(json.loads(out.read_text())))
    assert "`--quick` smoke run" in page.read_text()


def test_quick_never_writes_into_docs_and_a_dirty_tree_is_refused(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="never write"):
        M.main(["--quick", "--out", str(REPO / "docs" / "results" / "r.json")])
    dirty = copy.deepcopy(_hand_made())
    dirty["clean_tree"] = False
    monkeypatch.setattr(M, "results_record", lambda *a, **k: dirty)
    with pytest.raises(SystemExit, match="uncommitted changes"):
        M.main(["--out", str(tmp_path / "r.json")])
    assert not (tmp_path / "r.json").exists()
