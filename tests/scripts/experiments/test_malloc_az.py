"""scripts/experiments/malloc_az.py: the comparison's verdicts from given numbers (a worse agent
is never called better), the page from a raw record alone, docs/ refused to quick runs, and
(slow) the ``--quick`` run end to end."""

from __future__ import annotations

import json

import pytest
from malloc_az import GREEDY, PORTFOLIO, REPO, Args, compare, main, render_page


def test_compare_says_beats_only_when_the_interval_is_above_zero():
    base = [0.5, 0.6, 0.7, 0.4, 0.55, 0.65]
    better = [b + 0.02 for b in base]
    assert compare(better, base, 500)["verdict"] == "beats"
    worse = [b - 0.02 for b in base]
    c = compare(worse, base, 500)
    assert c["verdict"] == "worse" and c["win_share_where_differ"] == 0.0
    mixed = [b + (0.01 if i % 2 else -0.01) for i, b in enumerate(base)]
    assert compare(mixed, base, 500)["verdict"] == "no difference shown"
    same = compare(base, base, 50)
    assert same["programs_differ"] == 0 and same["win_share_where_differ"] is None


def fake_record():
    rows = {"lowest offset [xla]": [0.5, 0.6], PORTFOLIO: [0.55, 0.6], GREEDY: [0.5, 0.6]}
    group = {
        "programs": ["a", "b"],
        "rows": rows,
        "seconds_per_placement": dict.fromkeys(rows, 1e-5),
    }
    regime = {
        "capacity": 0.5,
        "curve": {"env_steps": [1.0, 2.0], "seconds": 3.0},
        "groups": {"validation": group, "test": group},
        "chosen": GREEDY,
        "best_single_rule": "lowest offset [xla]",
        "vs_portfolio": compare(rows[GREEDY], rows[PORTFOLIO], 100),
        "vs_best_rule": compare(rows[GREEDY], rows["lowest offset [xla]"], 100),
    }
    return {
        "command": "python scripts/experiments/malloc_az.py --quick",
        "commit": "abc",
        "clean_tree": True,
        "quick": True,
        "regimes": [regime],
    }


def test_page_renders_from_the_record_alone(tmp_path):
    page = render_page(fake_record())
    assert "## Capacity 0.5" in page and f"| {GREEDY} | 0.5500 | 0.5500 |" in page
    assert f"| {PORTFOLIO} | 0.5750 | 0.5750 |" in page
    assert "vs portfolio: -0.0250" in page and "beats" not in page
    raw = tmp_path / "r.json"
    raw.write_text(json.dumps(fake_record()))
    main(Args(from_results=raw))
    assert raw.with_suffix(".md").read_text() == page


def test_quick_runs_refuse_docs():
    with pytest.raises(ValueError, match="docs"):
        main(Args(quick=True, out=REPO / "docs" / "results" / "x.json"))


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    record = main(Args(quick=True, out=tmp_path / "q.json"))
    regime = record["regimes"][0]
    assert regime["chosen"].startswith("gumbel_az")
    assert {GREEDY, "gumbel_az search 2", "gumbel_az search 4", PORTFOLIO} <= set(
        regime["groups"]["test"]["rows"]
    )
    assert (tmp_path / "q.md").read_text().startswith("# Gumbel AlphaZero")


def test_validation_only_probes_refuse_docs():
    with pytest.raises(ValueError, match="docs"):
        main(Args(validation_only=True, out=REPO / "docs" / "results" / "x.json"))


@pytest.mark.slow
def test_a_validation_only_probe_plays_no_test_program(tmp_path, capsys):
    record = main(Args(quick=True, validation_only=True, out=tmp_path / "v.json"))
    regime = record["regimes"][0]
    assert list(regime["groups"]) == ["validation"] and "vs_portfolio" not in regime
    assert regime["chosen"].startswith("gumbel_az") and record["validation_only"] is True
    assert not (tmp_path / "v.md").exists()
    assert "validation only: no page" in capsys.readouterr().out


@pytest.mark.slow  # budget: one --quick run (two tiny updates), then three that train nothing
def test_a_rerun_continues_its_work_folder(tmp_path, monkeypatch):
    import dataclasses

    import malloc_az

    args = Args(quick=True, out=tmp_path / "q.json", work=tmp_path / "w")
    first = main(args)
    regime = tmp_path / "w" / "capacity_0.5"
    assert (regime / "regime.json").is_file() and any((regime / "train").rglob("*checkpoint*"))

    def no_training(*a, **k):
        raise AssertionError("a finished regime was trained again")

    with monkeypatch.context() as m:
        m.setattr(malloc_az, "train_agent", no_training)
        again = main(args)  # the finished regime is kept as it is
    assert again["regimes"] == first["regimes"]
    (regime / "regime.json").unlink()  # cut after training: the checkpoint is the whole run
    resumed = main(args)
    assert resumed["regimes"][0]["curve"]["policy_loss"] == first["regimes"][0]["curve"][
        "policy_loss"]  # fmt: skip
    for group, g in first["regimes"][0]["groups"].items():  # the same scores (not timings)
        assert resumed["regimes"][0]["groups"][group]["rows"] == g["rows"]
    with pytest.raises(SystemExit, match="holds a run with other settings"):
        main(dataclasses.replace(args, seed=1))
