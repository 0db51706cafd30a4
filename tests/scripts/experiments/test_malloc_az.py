"""scripts/experiments/malloc_az.py: the comparison's verdicts from given numbers (a worse agent
is never called better), the page from a raw record alone, docs/ refused to quick runs, and
(slow) the ``--quick`` run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from malloc_az import GREEDY, PORTFOLIO, REPO, Args, compare, main, render_page, targets


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


def fake_regime(
    capacity=0.5, agent=(0.5, 0.6), portfolio=(0.55, 0.6), bound=(0.7, 0.7), rule=(0.5, 0.6)
):
    rule = list(rule)
    rows = {"lowest offset [xla]": rule, PORTFOLIO: list(portfolio), GREEDY: list(agent)}
    group = {
        "programs": ["a", "b"],
        "rows": rows,
        "seconds_per_placement": dict.fromkeys(rows, 1e-5),
        "bound": list(bound),
    }
    return {
        "capacity": capacity,
        "curve": {
            "env_steps": [1.0, 2.0],
            "episode_return": [0.4, 0.5],
            "policy_loss": [1.0, 0.9],
            "seconds": 3.0,
        },  # fmt: skip
        "groups": {"validation": group, "test": group},
        "chosen": GREEDY,
        "best_single_rule": "lowest offset [xla]",
        "vs_portfolio": compare(rows[GREEDY], rows[PORTFOLIO], 100),
        "vs_best_rule": compare(rows[GREEDY], rows["lowest offset [xla]"], 100),
    }


def fake_record(regimes=None):
    return {
        "command": "python scripts/experiments/malloc_az.py --quick",
        "commit": "abc",
        "clean_tree": True,
        "quick": True,
        "regimes": regimes or [fake_regime()],
    }


def test_page_renders_from_the_record_alone(tmp_path):
    page = render_page(fake_record())
    assert "## Capacity 0.5" in page and f"| {GREEDY} | 0.5500 | 0.5500 |" in page
    assert f"| {PORTFOLIO} | 0.5750 | 0.5750 |" in page
    assert "vs portfolio: -0.0250" in page and ": beats" not in page
    raw = tmp_path / "r.json"
    raw.write_text(json.dumps(fake_record()))
    main(Args(from_results=raw))
    assert raw.with_suffix(".md").read_text() == page
    assert (tmp_path / "malloc_az_curves.png").stat().st_size > 5_000
    assert "| LP bound (not a method) | 0.7000 |" in page


def test_targets_are_not_met_by_an_agent_that_only_ties_or_wins_in_one_regime():
    lines = targets(fake_record())  # ties the best rule, loses to the portfolio
    assert len(lines) == 3 and all("**not met**" in line for line in lines)
    # far ahead at 0.25 only: one regime is not two, and 0.5 is not among them
    ahead = [0.5 + 0.1 + 0.001 * i for i in range(12)]
    base = [0.5 + 0.001 * i for i in range(12)]
    one = fake_regime(0.25, agent=ahead, portfolio=base, bound=[0.7] * 12, rule=base)
    lines = targets(fake_record([one, fake_regime(0.5)]))
    assert all("**not met**" in line for line in lines) and "holds at 0.25;" in lines[0]


def test_targets_are_met_when_the_agent_wins_in_two_regimes_with_0_5():
    base = [0.5 + 0.001 * i for i in range(12)]
    ahead = [b + 0.1 for b in base]
    regimes = [
        fake_regime(c, agent=ahead, portfolio=base, bound=[0.75] * 12, rule=base)
        for c in (0.5, 0.75)
    ]
    lines = targets(fake_record(regimes))
    assert all("**met**" in line for line in lines), lines
    # the same win with a bound far above: less than a third of the gap closed
    for r in regimes:
        r["groups"]["test"]["bound"] = [1.0] * 12
    assert "**not met**" in targets(fake_record(regimes))[1]


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
    assert (tmp_path / "malloc_az_curves.png").is_file()
    test = regime["groups"]["test"]
    assert len(test["bound"]) == len(test["programs"])
    assert np.all(np.asarray(test["bound"]) >= np.asarray(test["rows"][PORTFOLIO]) - 1e-6)


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


def test_the_seconds_note_tells_old_records_per_buffer_timing_apart():
    from malloc_az import seconds_note

    old = seconds_note({"rows": {}, "seconds_per_placement": {}})
    assert "per *buffer* placed, compiling included" in old and "not comparable" in old
    new = seconds_note({"compile_seconds": {"gumbel_az greedy": 3.4, "gumbel_az search 8": 20.0}})
    assert "compiling excluded (`gumbel_az greedy` 3 s, `gumbel_az search 8` 20 s)" in new
    assert "not comparable" not in new
