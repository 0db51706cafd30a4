"""scripts/three_body_experiment.py: the dominance bookkeeping, the table and the document's
generated block (fast), and the whole ``--quick`` run in-process (slow: about 3-5 minutes on
the shared 2-core machine, nearly all of it compiling three agents and their evaluators)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import three_body_experiment as X


def row(label, de, sub):
    r = X.summarize(label, [de * 0.5, de, de * 2], [sub - 1, sub, sub + 1], [False] * 3)
    assert r["median_dE"] == pytest.approx(de) and r["median_substeps"] == sub
    return r


def test_mu_labels():
    assert X.mu_label(1e-4) == "mu = 1e-04"
    assert X.mu_label(2.154434690031884e-4) == "mu = 2.15e-04"
    assert X.mu_label(0.1) == "mu = 1e-01"


def test_dominance_and_target():
    fixed = [row("mu = 1e-03", 1e-11, 50_000), row("mu = 1e-02", 1e-8, 5_000)]
    # better than 1e-2 on both, not beaten by 1e-3 (fewer substeps): target met
    good = row("a", 5e-9, 4_000)
    assert X.dominance(good, fixed) == ([], ["mu = 1e-02"]) and X.target_met(good, fixed)
    # worse than 1e-2 on both: dominated
    bad = row("b", 1e-7, 6_000)
    assert X.dominance(bad, fixed) == (["mu = 1e-02"], []) and not X.target_met(bad, fixed)
    # on the front between them: neither dominated nor dominating -> target not met
    mid = row("c", 1e-9, 20_000)
    assert X.dominance(mid, fixed) == ([], []) and not X.target_met(mid, fixed)
    # ties are not dominance
    tie = row("d", 1e-8, 5_000)
    assert X.dominance(tie, fixed) == ([], [])


def test_table_lists_fixed_and_learned_rows():
    fixed = [row("mu = 1e-02", 1e-8, 5_000)]
    learned = [row("dqn", 5e-9, 4_000)]
    learned[0]["dominated_by"], learned[0]["dominates"] = X.dominance(learned[0], fixed)
    learned[0]["target_met"] = X.target_met(learned[0], fixed)
    lines = X.table(fixed, learned).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| mu = 1e-02 | 1.00e-08")
    assert lines[3].startswith("| dqn | 5.00e-09") and lines[3].endswith("| - | 1e-02 | met |")


def test_write_doc_replaces_only_the_generated_block(tmp_path):
    doc = tmp_path / "x.md"
    X.write_doc(doc, f"{X.START}\none\n{X.END}")
    assert doc.read_text().startswith("# ThreeBody") and "one" in doc.read_text()
    doc.write_text("intro\n" + f"{X.START}\none\n{X.END}" + "\nnotes\n")
    X.write_doc(doc, f"{X.START}\ntwo\n{X.END}")
    assert doc.read_text() == "intro\n" + f"{X.START}\ntwo\n{X.END}" + "\nnotes\n"


def test_unknown_policy_names_fail(tmp_path):
    with pytest.raises(ValueError, match="unknown policies"):
        X.main(X.Args(out=str(tmp_path), quick=True, policies=("dqm",)))


@pytest.mark.slow
def test_quick_run_writes_table_plot_and_reuses_runs(tmp_path):
    summary = X.main(X.Args(out=str(tmp_path), quick=True))
    fixed, learned = summary["fixed"], summary["learned"]
    assert [r["label"] for r in fixed][:2] == ["mu = 1e-04", "mu = 2.15e-04"] and len(fixed) == 10
    assert [r["label"] for r in learned] == [s.name for s in X.QUICK_POLICIES]
    for r in learned:
        assert r["n"] == 2 * 8 and np.isfinite(r["median_dE"]) and r["median_substeps"] > 0
    # smaller mu costs more compute
    subs = [r["median_substeps"] for r in fixed]
    assert subs == sorted(subs, reverse=True)
    doc = (tmp_path / "three_body_experiment.md").read_text()
    assert "| mu = 1e-04 |" in doc and "| dqn_paper |" in doc and "accelrl-train --env" in doc
    assert 1_000 < (tmp_path / "three_body_experiment.png").stat().st_size < 200_000
    # the paper formulation decides once per check time: 20 decisions unless terminated early
    res = json.loads((tmp_path / "results.json").read_text())["results"]["dqn_paper"]
    assert len(res["per_seed"]) == 2 and res["mean_decisions"] <= 20
    # a second call reuses the run folders (no training) and gives the same numbers
    again = X.main(X.Args(out=str(tmp_path), quick=True, policies=("dqn_paper",)))
    assert again["learned"][0]["median_dE"] == learned[-1]["median_dE"]
