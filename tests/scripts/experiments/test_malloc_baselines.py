"""scripts/experiments/malloc_baselines.py: ``--quick`` end to end (seconds), byte-identical
regeneration from the raw results file, outputs kept out of docs/, and the consistency check
refusing contradictory numbers."""

from __future__ import annotations

import copy
import json

import pytest
from malloc_baselines import BOUND, REPO, Args, check_record, main, render_page
from malloc_experiment import PORTFOLIO


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines") / "b.json"
    record = main(Args(quick=True, out=out))
    return out, record


def test_quick_run_tables_every_rule_the_portfolio_random_and_the_bound(quick):
    out, record = quick
    page = out.with_suffix(".md").read_text()
    assert "--quick" in page and "## Capacity 0.5 x peak live bytes" in page
    assert "| lowest offset [xla] |" in page and f"| {PORTFOLIO} |" in page and BOUND in page
    test = record["regimes"][0]["splits"]["test"]
    assert len(test["methods"]) == 14 + 2
    assert "load average" in page and len(record["host"]["load_start"]) == 3


def test_from_results_renders_the_same_page_byte_for_byte(quick, tmp_path):
    out, record = quick
    main(Args(from_results=out, page=tmp_path / "p.md"))
    assert (tmp_path / "p.md").read_bytes() == out.with_suffix(".md").read_bytes()
    assert render_page(json.loads(out.read_text())) == (tmp_path / "p.md").read_text()


def test_quick_outputs_stay_out_of_docs(tmp_path):
    with pytest.raises(ValueError, match="never write into"):
        main(Args(quick=True, out=REPO / "docs" / "results" / "b.json"))


def test_contradictory_numbers_are_refused(quick):
    _, record = quick
    bad = copy.deepcopy(record)
    group = bad["regimes"][0]["splits"]["test"]
    group["methods"][PORTFOLIO][0] -= 0.1  # no longer the best rule on program 0
    with pytest.raises(ValueError, match="portfolio is not the best greedy rule"):
        check_record(bad)
    bad = copy.deepcopy(record)
    group = bad["regimes"][0]["splits"]["validation"]
    group["bound"][0] = 0.0  # every method above its bound
    with pytest.raises(ValueError, match="exceeds the capacity LP bound"):
        render_page(bad)


def test_large_set_table_from_a_record(quick):
    _, record = quick
    rec = copy.deepcopy(record)
    regime = rec["regimes"][0]
    large = copy.deepcopy(regime["splits"]["test"])
    large["buffers"] = [1667] + [3547] * (len(large["buffers"]) - 1)
    regime["splits"]["large"] = large
    page = render_page(rec)
    assert "Large set at capacity 0.5" in page and "1,667-3,547 buffers" in page
    assert "| method | mean (large) | median | vs portfolio | seconds per placement |" in page
    large["bound"][0] = 0.0
    with pytest.raises(ValueError, match="large: .* exceeds the capacity LP bound"):
        render_page(rec)
