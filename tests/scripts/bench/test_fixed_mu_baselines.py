"""scripts/bench/fixed_mu_baselines.py: the card block is a pure function of the results file."""

from __future__ import annotations

import json

import fixed_mu_baselines as F
import pytest


def _row(mu, errors, substeps, terminated):
    import numpy as np
    from three_body_baselines import summarize

    res = {
        "energy_error": np.asarray(errors),
        "substeps": np.asarray(substeps),
        "checks": np.asarray([3] * len(errors)),
        "terminated": np.asarray(terminated),
    }
    return {**summarize(mu, res), "terminated": list(terminated)}


def _record(second_never_survives):
    return {
        "command": "python scripts/bench/fixed_mu_baselines.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "generator": F.GENERATOR,
        "page": F.PAGE,
        "seeds": [0, 1, 2],
        "num_checks": 300,
        "max_substeps_per_decision": 32,
        "energy_error_limit": 0.1,
        "rows": [
            _row(1e-3, [1e-11, 2e-11, 0.5], [900, 1000, 50], [False, second_never_survives, True]),
            _row(1e-1, [1e-3, 2e-3, 0.9], [9, 10, 5], [False, True, True]),
        ],
    }


def test_block_states_the_table_and_the_systems_no_fixed_mu_survives():
    text = F.render(_record(False))[F.BLOCK]
    assert "seeds 0-2 (3 systems) for 300 check times (30 yr)" in text
    assert "| 1.00e-03 | 2.0e-11 |" in text and "| 1.00e-01 | 2.0e-03 |" in text
    assert "The lowest median final |dE| is 2.0e-11, at mu = 1.00e-03" in text
    assert "33% of the systems are terminated under every fixed mu" in text
    assert "clean tree" in text
    # another record, another sentence: the numbers come from the file
    assert "67% of the systems" in F.render(_record(True))[F.BLOCK]
    dirty = F.render({**_record(False), "clean_tree": False})[F.BLOCK]
    assert "uncommitted changes" in dirty


def test_from_results_rewrites_only_the_block(tmp_path, monkeypatch):
    page = tmp_path / "three_body.md"
    page.write_text("before\n<!-- fixed_mu_baselines: begin -->\nold\n"
                    "<!-- fixed_mu_baselines: end -->\nafter\n")  # fmt: skip
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record(False)))
    F.render_from_results(path, F.render, page=page)
    text = page.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert F.render(_record(False))[F.BLOCK] in text


def test_quick_never_writes_into_docs():
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        F.main(["--quick", "--out", str(REPO / "docs" / "results" / "x.json")])
    with pytest.raises(SystemExit):
        F.parse_args(["--num_seeds", "1"])
