"""scripts/bench/substep_intervals.py: the statistics and the card block from a record."""

from __future__ import annotations

import json

import pytest
import substep_intervals as S


def test_summarize_counts_only_intervals_before_a_termination():
    substeps = [[1, 3], [100, 5000]]  # [intervals, systems]
    counted = [[True, True], [True, False]]  # the second system terminated in interval 0
    out = S.summarize(substeps, counted, caps=(16,))
    assert out["intervals"] == 3 and out["median"] == 3 and out["max"] == 100
    # min(n, 16) = 1, 3, 16: imbalance 16 / (20 / 3); ceil(n / 16) = 1, 1, 7
    assert out["caps"]["16"]["imbalance"] == pytest.approx(2.4)
    assert out["caps"]["16"]["decisions"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no counted"):
        S.summarize([[1]], [[False]])


def _record():
    row = {"mu": 1e-2, **S.summarize([[9, 39], [2222, 330]], [[True, True], [True, True]])}
    return {
        "command": "python scripts/bench/substep_intervals.py", "commit": "0123456789abcdef",
        "clean_tree": True, "generator": S.GENERATOR, "page": S.PAGE,
        "seeds": list(range(128)), "num_checks": 100, "caps": list(S.CAPS), "rows": [row],
    }  # fmt: skip


def test_block_from_the_record(tmp_path):
    (text,) = S.render(_record()).values()
    assert "(128 paper initial conditions, seeds 0-127, 10 yr," in text
    assert "| 1e-02 | 184 |" in text and "| 2,222 |" in text
    page = tmp_path / "card.md"
    page.write_text("<!-- substep_intervals: begin -->\nx\n<!-- substep_intervals: end -->\n")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record()))
    S.render_from_results(path, S.render, page=page)
    assert text in page.read_text()
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        S.main(["--quick", "--out", str(REPO / "docs" / "results" / "x.json")])
