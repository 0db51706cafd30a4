"""scripts/three_body_experiment.py: the dominance bookkeeping, the table and the document's
generated block (fast), and the whole ``--quick`` run in-process (slow: about 3-5 minutes on
the shared 2-core machine, nearly all of it compiling three agents and their evaluators)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import three_body_experiment as X

from accelrl.results import block_markers, regenerate


def test_mu_labels():
    assert X.mu_label(1e-4) == "mu = 1e-04"
    assert X.mu_label(2.154434690031884e-4) == "mu = 2.15e-04"
    assert X.mu_label(0.1) == "mu = 1e-01"


RNG = np.random.default_rng(0)
N = 40
SPREAD = 10 ** RNG.normal(0, 1, N)  # systems differ by orders of magnitude (pairing matters)


def fixed(label, de, sub):
    return {"label": label, "energy_error": (de * SPREAD).tolist(),
            "substeps": (sub * SPREAD).tolist(), "terminated": [False] * N}  # fmt: skip


def policy(de, sub, seeds=2):
    noise = lambda: 10 ** RNG.normal(0, 0.05, (seeds, N))  # noqa: E731
    return {"energy_error": (de * SPREAD * noise()).tolist(),
            "substeps": (sub * SPREAD * noise()).tolist(),
            "terminated": [[False] * N] * seeds}  # fmt: skip


FIXED = [fixed("mu = 1e-03", 1e-11, 50_000), fixed("mu = 1e-02", 1e-8, 5_000)]


def test_dominance_from_paired_intervals():
    # better than 1e-2 on both, fewer substeps than 1e-3: target met
    good = X.paired_comparisons(policy(5e-9, 4_000), FIXED)
    assert X.dominance(good) == ([], ["mu = 1e-02"]) and X.target_met(good)
    assert good[1]["dE"]["verdict"] == "beats" and good[1]["dE"]["high"] < 0
    # the claim is false: worse than 1e-2 on both, dominated
    bad = X.paired_comparisons(policy(1e-7, 6_000), FIXED)
    assert X.dominance(bad) == (["mu = 1e-02"], []) and not X.target_met(bad)
    # on the front between them: neither -> target not met
    mid = X.paired_comparisons(policy(1e-9, 20_000), FIXED)
    assert X.dominance(mid) == ([], []) and not X.target_met(mid)
    # equal to a fixed mu up to noise: no difference shown, no dominance
    tie = X.paired_comparisons(policy(1e-8, 5_000), FIXED)
    assert tie[1]["relation"] == "neither" and not X.target_met(tie)
    with pytest.raises(ValueError, match="systems"):
        X.paired_comparisons(policy(1e-8, 5_000), [fixed("mu = 1", 1.0, 1.0) | {"substeps": [1]}])


def _record(**policies):
    return {
        "command": "python scripts/experiments/three_body_experiment.py",
        "commit": "0123456789abcdef",
        "clean_tree": False,
        "generator": X.GENERATOR,
        "page": X.PAGE,
        "args": {"system0": 1000, "num_systems": N, "num_checks": 300, "seeds": [0, 1]},
        "fixed": [{**f, "seconds": 1.0} for f in FIXED],
        "policies": {
            name: {
                **p,
                "command": f"accelrl-train {name}",
                "preset": "default",
                "total_timesteps": 1000,
                "train_seconds": 10.0,
                "mean_return": 1.0,
                "eval_seconds": 2.0,
                "mean_decisions": 3.0,
            }  # fmt: skip
            for name, p in policies.items()
        },
        "wall_s": 60.0,
        "plot": "three_body_experiment.png",
    }


def test_render_says_met_and_not_met_from_the_intervals(tmp_path):
    text = X.render(_record(good=policy(5e-9, 4_000), bad=policy(1e-7, 6_000)))
    assert "- `good` dominates a fixed mu and none dominates it: **met**" in text
    assert (
        "- `bad` dominates a fixed mu and none dominates it: **not met** (dominated by 1e-02"
        in text
    )
    assert "| good | 1e-02 |" in text and "| dominates |" in text
    assert "i = 1000..1039" in text and "**uncommitted changes in the tree**" in text
    assert "training and evaluation 0 min in all; this invocation 1 min" in text
    names = [spec.name for spec in X.FULL_POLICIES]  # none of them in this record
    assert "Not run in this record: " + ", ".join(f"`{n}`" for n in names) + "." in text
    full = _record(**{n: policy(5e-9, 4_000) for n in names})
    assert "Not run in this record" not in X.render(full)
    doc = tmp_path / "x.md"
    X.write_doc(doc, "one")
    assert doc.read_text().startswith("# ThreeBody") and "one" in doc.read_text()
    begin, end = block_markers(X.BLOCK)
    doc.write_text(f"intro\n{begin}\nOLD-BLOCK\n{end}\nnotes\n")
    (tmp_path / "r.json").write_text(json.dumps(_record(good=policy(5e-9, 4_000))))
    assert regenerate(
        ["--from_results", str(tmp_path / "r.json"), "--page", str(doc)], X.write_page
    )
    new = doc.read_text()
    assert new.startswith(f"intro\n{begin}\n") and new.endswith(f"{end}\nnotes\n")
    assert "OLD-BLOCK" not in new and "**met**" in new


def test_quick_never_writes_into_docs():
    with pytest.raises(ValueError, match="never write"):
        X.main(X.Args(out=str(X.ROOT / "docs" / "tb"), quick=True))


def test_unknown_policy_names_fail(tmp_path):
    with pytest.raises(ValueError, match="unknown policies"):
        X.main(X.Args(out=str(tmp_path), quick=True, policies=("dqm",)))


@pytest.mark.slow
def test_quick_run_writes_table_plot_and_reuses_runs(tmp_path):
    record = X.main(X.Args(out=str(tmp_path), quick=True))
    fixed, learned, _ = X.summaries(record)
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
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["args"]["system0"] == 1000
    res = saved["policies"]["dqn_paper"]
    assert len(res["energy_error"]) == 2 and res["mean_decisions"] <= 20
    # a second call reuses the run folders (no training) and gives the same numbers
    again = X.main(X.Args(out=str(tmp_path), quick=True, policies=("dqn_paper",)))
    assert again["policies"]["dqn_paper"]["energy_error"] == res["energy_error"]
