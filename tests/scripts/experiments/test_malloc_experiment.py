"""scripts/experiments/malloc_experiment.py: the verdict and page generator on synthetic raw
results (fast), output paths, and ``--quick`` end to end by file path (slow: a few minutes on
the 2 shared development cores, mostly compiling the networks, searches and rollouts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from malloc_experiment import (
    BOUND,
    GENERATOR,
    LOWEST_XLA,
    PORTFOLIO,
    RANDOM,
    REPO,
    Args,
    best_non_learned,
    main,
    output_paths,
    render_page,
    target,
)

from accelrl.results import write_results


def synthetic_record(shift: float, n: int = 12, seed: int = 0, minimalloc: bool = False) -> dict:
    """A raw results file of the experiment's shape: the learned variants are the portfolio's
    per-program values plus ``shift`` plus noise."""
    rng = np.random.default_rng(seed)

    def group(names: list[str]) -> dict:
        k = len(names)
        low = rng.uniform(0.4, 0.8, k)
        best = low - rng.uniform(0.0, 0.02, k)
        port = np.maximum(low, best) + rng.uniform(0.0, 0.01, k)
        learned = np.clip(port + shift + rng.normal(0.0, 0.004, k), 0.0, 1.0)
        methods = {
            "PPO mlp": learned.tolist(),
            "PPO mlp + search": (learned - 0.001).tolist(),
            LOWEST_XLA: low.tolist(),
            "best fit [xla]": best.tolist(),
            PORTFOLIO: port.tolist(),
            RANDOM: (low / 2).tolist(),
        }
        kind = {m: "learned" if m.startswith("PPO") else "non-learned" for m in methods}
        return {
            "names": names,
            "buffers": [20 + i for i in range(k)],
            "methods": methods,
            "kind": kind,
            "portfolio_choice": [LOWEST_XLA] * k,
            "random_per_seed": [(low / 2).tolist()],
        }

    test = group([f"m{i}/fwd/b2" for i in range(n)])
    upper = np.minimum(1.0, np.asarray(test["methods"][PORTFOLIO]) + 0.05)
    test["cpsat"] = {
        "objective": [None] * n,
        "bound": upper.tolist(),
        "status": ["not run"] * n,
        "upper": upper.tolist(),
    }
    groups = {"validation": group(["v/fwd/b8", "w/train/b8", "x/fwd/b8"]), "test": test}
    if minimalloc:
        groups["minimalloc"] = group(["A", "B"])
    return {
        "command": "python scripts/experiments/malloc_experiment.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "versions": {"jax": "0.0"},
        "machine": {"cpu_count": 2},
        "generator": GENERATOR,
        "page": "docs/malloc_experiment.md",
        "plot": "docs/malloc_experiment.png",
        "quick": False,
        "settings": {
            "num_steps": 64,
            "num_minibatches": 4,
            "update_epochs": 4,
            "learning_rate": 3e-4,
            "gamma": 1.0,
            "ent_coef": 0.01,
            "hidden_sizes": [128, 128],
            "set_embed_dim": 32,
            "set_heads": 4,
        },
        "seeds": {"training": 0, "evaluation": 0, "random_legal": [0], "bootstrap": 0},
        "budgets": {
            "ppo_env_steps_per_network": 1000,
            "search_grid": [[8, 0.0]],
            "cpsat_seconds": 1.0,
            "cpsat_max_buffers": 300,
            "bootstrap_reps": 2000,
        },
        "env": {
            "order": "xla",
            "max_buffers": 40,
            "max_live": 40,
            "num_candidates": 8,
            "set_size": 16,
            "capacity_fraction": 0.5,
            "alignment": 64,
            "minimalloc_capacity": 1_048_576,
        },
        "train_programs": ["t/fwd/b2"],
        "train_means": {"PPO mlp": 0.7},
        "curves": {"mlp": {"env_steps": [1.0, 2.0], "episode_return": [0.5, 0.6], "seconds": 3.0}},
        "search_grid": [
            {
                "network": "mlp",
                "simulations": 8,
                "gumbel_scale": 0.0,
                "validation": [0.5, 0.5, 0.5],
                "validation_mean": 0.5,
                "seconds": 1.0,
            }
        ],
        "chosen_search": {"mlp": {"simulations": 8, "gumbel_scale": 0.0}},
        "reported_variant": "PPO mlp",
        "groups": groups,
        "minimalloc_note": None if minimalloc else "MiniMalloc skipped: no instances in /nowhere",
        "seconds": {"cpsat": 1.0, "per_placement": {LOWEST_XLA: 0.001, PORTFOLIO: 0.02}},
        "wall_seconds": 10.0,
    }


def first_table(page: str) -> list[list[str]]:
    block = page.split("## Held-out programs", 1)[1].split("## Verdict", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[1:]]


def test_a_learned_mapper_below_the_best_non_learned_one_is_not_met():
    record = synthetic_record(shift=-0.02)
    met, reason = target(record)
    assert not met and "worse" in reason
    page = render_page(record)
    assert "**not met**" in page and "**met**" not in page
    # higher on half the programs, lower by as much on the others: still not met
    record = synthetic_record(shift=0.0)
    test = record["groups"]["test"]
    port = np.asarray(test["methods"][PORTFOLIO])
    test["methods"]["PPO mlp"] = (port + 0.003 * (-1) ** np.arange(port.size)).tolist()
    met, reason = target(record)
    assert not met and "does not lie above zero" in reason and "higher on 6, lower on 6" in reason


def test_a_learned_mapper_above_with_an_interval_above_zero_is_met():
    record = synthetic_record(shift=0.03)
    met, reason = target(record)
    assert met and "beats" in reason
    assert "**met**" in render_page(record)


def test_the_best_non_learned_method_is_chosen_by_mean_portfolio_included():
    record = synthetic_record(shift=0.0)
    assert best_non_learned(record["groups"]["test"]) == PORTFOLIO
    test = record["groups"]["test"]
    test["methods"][RANDOM] = [1.0] * len(test["names"])  # a stronger non-learned method
    assert best_non_learned(test) == RANDOM


def test_first_table_is_the_held_out_programs_with_bare_means():
    record = synthetic_record(shift=0.01)
    page = render_page(record)
    assert "## Held-out programs: capacity 0.5 x peak live bytes, alignment 64" in page
    rows = first_table(page)
    names = [r[0].strip("*") for r in rows]
    assert LOWEST_XLA in names and PORTFOLIO in names and BOUND in names
    test = record["groups"]["test"]
    for row in rows:
        name = row[0].strip("*")
        values = test["cpsat"]["upper"] if name == BOUND else test["methods"][name]
        assert row[1] == f"{np.mean(values):.3f}"  # column 2: the mean as a bare number
    learned = [r for r in rows if r[3] == "learned"]
    assert len(learned) == 2 and all("[" in r[4] and "[" in r[5] for r in learned)
    # the last column: seconds per placement where measured, "-" elsewhere
    per = {r[0].strip("*"): r[-1] for r in rows}
    assert per[LOWEST_XLA] == "1.00e-03" and per["PPO mlp"] == "-" and per[BOUND] == "-"
    assert "(not recorded for the learned methods in this run)" in page
    record["seconds"] = {**record["seconds"], "compile": {"PPO mlp": 12.3}}
    record["seconds"]["per_placement"] = {**record["seconds"]["per_placement"], "PPO mlp": 0.25}
    page = render_page(record)
    assert {r[0].strip("*"): r[-1] for r in first_table(page)}["PPO mlp"] == "2.50e-01"
    assert "compiling excluded (`PPO mlp` compiled in 12 s)" in page


def test_missing_minimalloc_is_said_on_the_page_and_present_instances_are_tabled():
    page = render_page(synthetic_record(shift=0.0))
    assert "MiniMalloc skipped: no instances in /nowhere." in page
    page = render_page(synthetic_record(shift=0.0, minimalloc=True))
    section = page.split("## MiniMalloc's challenging instances", 1)[1]
    assert "| PPO mlp | learned |" in section and "skipped" not in section


def test_a_dirty_tree_is_said_on_the_page():
    record = dict(synthetic_record(shift=0.0), clean_tree=False)
    assert "**uncommitted changes in the tree**" in render_page(record)


def test_another_regime_names_its_own_raw_file_and_the_load_beside_the_seconds():
    record = synthetic_record(shift=0.0)
    record["env"] = dict(record["env"], capacity_fraction=0.25)
    record["host"] = {"load_start": [2.04, 1.0, 1.0], "load_end": [1.5, 1.0, 1.0]}
    page = render_page(record)
    assert "--from_results docs/results/malloc_experiment_capacity_0.25.json" in page
    assert "(1-min load average 2.0 at the start, 1.5 at the end" in page
    assert "load average" not in render_page(synthetic_record(shift=0.0))
    # it points at the headline page, and the headline page's withdrawn claim is not repeated
    assert "beside the [headline page](malloc_experiment.md) (capacity 0.5)" in page
    assert "earlier version" not in page and "earlier version" in render_page(synthetic_record(0.0))


def test_from_results_renders_the_same_page_byte_for_byte(tmp_path):
    record = synthetic_record(shift=0.01, minimalloc=True)
    raw = write_results(tmp_path / "r.json", record)
    pages = []
    for k in range(2):
        page, plot = tmp_path / f"p{k}.md", tmp_path / f"p{k}.png"
        main(Args(from_results=raw, page=page, plot=plot))
        pages.append(page.read_bytes())
        assert plot.stat().st_size > 0
    from malloc_experiment import companions

    again = render_page(json.loads(raw.read_text()), companions(raw.parent))
    assert pages[0] == pages[1] == again.encode()


def test_quick_outputs_stay_out_of_docs(tmp_path):
    with pytest.raises(ValueError, match="never write into"):
        output_paths(Args(quick=True, out=REPO / "docs" / "results" / "x.json"), quick=True)
    with pytest.raises(ValueError, match="never write into"):
        output_paths(Args(quick=True, out=tmp_path / "x.json", page=REPO / "docs" / "x.md"), True)
    out, page, plot = output_paths(Args(quick=True), quick=True)
    assert REPO / "docs" not in out.parents and page.parent == out.parent == plot.parent
    full = output_paths(Args(), quick=False)
    assert full == (
        REPO / "docs" / "results" / "malloc_experiment.json",
        REPO / "docs" / "malloc_experiment.md",
        REPO / "docs" / "malloc_experiment.png",
    )
    # another capacity regime never overwrites the headline page: a page of its own
    assert output_paths(Args(capacity_fraction=0.25), quick=False) == (
        REPO / "docs" / "results" / "malloc_experiment_capacity_0.25.json",
        REPO / "docs" / "malloc_experiment_capacity_0.25.md",
        REPO / "docs" / "malloc_experiment_capacity_0.25.png",
    )


def test_a_full_run_from_a_dirty_tree_is_refused_before_any_work(monkeypatch, tmp_path):
    import malloc_experiment

    def dirty(command):
        return {"command": command, "commit": "0" * 40, "clean_tree": False}

    def never(args):
        raise AssertionError("the experiment ran")

    monkeypatch.setattr(malloc_experiment, "provenance", dirty)
    monkeypatch.setattr(malloc_experiment, "run_experiment", never)
    with pytest.raises(SystemExit, match="uncommitted changes.*--allow_dirty"):
        main(Args(out=tmp_path / "r.json"))
    assert not (tmp_path / "r.json").exists()


def test_command_line_reproduces_the_arguments():
    import shlex

    import tyro
    from malloc_experiment import command_line

    args = Args(quick=True, search_simulations=(4, 64), networks=("set",), out=Path("r/x.json"))
    cmd = command_line(args)
    assert cmd.startswith(f"python {GENERATOR} --quick")
    assert tyro.cli(Args, args=shlex.split(cmd)[2:]) == args
    assert command_line(Args()) == f"python {GENERATOR}"


def _status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.slow
def test_quick_run_by_file_path_leaves_the_tree_untouched(tmp_path):
    before = _status()
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / GENERATOR),
            "--quick",
            "--minimalloc_dir",
            str(tmp_path / "no_minimalloc"),
            "--out",
            str(tmp_path / "run" / "m.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MiniMalloc skipped" in proc.stdout
    assert _status() == before
    record = json.loads((tmp_path / "run" / "m.json").read_text())
    assert record["quick"] and record["generator"] == GENERATOR
    test = record["groups"]["test"]
    upper = np.asarray(test["cpsat"]["upper"])
    for name, values in test["methods"].items():
        assert np.all(np.asarray(values) <= upper + 1e-6), name
    assert (
        test["methods"][PORTFOLIO]
        == np.max([v for m, v in test["methods"].items() if "[" in m], axis=0).tolist()
    )
    page = (tmp_path / "run" / "m.md").read_text()
    assert "--quick" in page and "MiniMalloc skipped" in page
    assert render_page(record) == page


def test_the_lookahead_setting_reaches_the_game():
    from malloc_experiment import Experiment, programs

    args = Args(quick=True, lookahead=5, minimalloc_dir=Path("/nonexistent"))
    groups, _ = programs(args)
    ex = Experiment(args, groups)
    assert ex.env.lookahead == 5
    shallow = Experiment(Args(quick=True, lookahead=0), groups).env
    assert ex.env.num_features > shallow.num_features  # five more buffers described


def synthetic_az(record: dict, capacities: tuple[float, ...], shift: float) -> dict:
    """A ``malloc_az.py`` raw results file on the same test programs: the greedy rules as in
    ``record`` (at every capacity), ``gumbel_az search 8`` = the portfolio plus ``shift``."""
    from malloc_az import compare

    test = record["groups"]["test"]
    rules = {m: list(v) for m, v in test["methods"].items() if m in (LOWEST_XLA, "best fit [xla]")}
    port = np.asarray(test["methods"][PORTFOLIO])
    agent = np.clip(port + shift, 0.0, 1.0).tolist()
    regimes = []
    for cap in capacities:
        rows = {**rules, PORTFOLIO: port.tolist(), "gumbel_az search 8": agent}
        group = {"programs": test["names"], "rows": rows, "bound": test["cpsat"]["upper"]}
        regimes.append({
            "capacity": cap,
            "groups": {"test": group},
            "chosen": "gumbel_az search 8",
            "best_single_rule": LOWEST_XLA,
            "vs_portfolio": compare(agent, rows[PORTFOLIO], 200),
            "vs_best_rule": compare(agent, rows[LOWEST_XLA], 200),
        })  # fmt: skip
    return {"command": "python scripts/experiments/malloc_az.py", "commit": "0" * 40,
            "clean_tree": True, "regimes": regimes}  # fmt: skip


def regime_block(page: str) -> str:
    return page.split("## Every capacity regime", 1)[1].split("The earlier version", 1)[0]


def test_the_headline_page_joins_every_regime_side_by_side():
    record = synthetic_record(shift=0.0)
    other = synthetic_record(shift=-0.01)
    other["env"] = dict(other["env"], capacity_fraction=0.25)
    other["reported_variant"] = "PPO mlp + search"
    joined = {"regimes": {0.25: other}, "az": synthetic_az(record, (0.5, 0.75), shift=0.02)}
    block = regime_block(render_page(record, joined))
    assert "| method | capacity 0.25 | capacity 0.5 | capacity 0.75 |" in block
    mean = np.mean(record["groups"]["test"]["methods"]["PPO mlp"])
    # the 0.5 run's reported variant in bold; PPO has no run at 0.75
    assert f"| PPO mlp | {np.mean(other['groups']['test']['methods']['PPO mlp']):.3f} | " \
           f"**{mean:.3f}** | - |" in block  # fmt: skip
    az = np.mean(joined["az"]["regimes"][0]["groups"]["test"]["rows"]["gumbel_az search 8"])
    assert f"| gumbel_az search 8 | - | **{az:.3f}** | **{az:.3f}** |" in block
    assert "| 0.25 | `PPO mlp + search` |" in block and "| 0.75 | `gumbel_az search 8` |" in block
    # the az targets: a +0.02 win at 0.5 and 0.75 meets the interval target
    assert "beats the portfolio (paired interval above zero) in two regimes, 0.5 among them: " \
           "**met**" in block  # fmt: skip
    assert "- - " not in block
    # without an az record the page says so; without joined files no section at all
    assert "no `docs/results/malloc_az.json` on record yet" in regime_block(
        render_page(record, {"regimes": {}, "az": None})
    )
    assert "## Every capacity regime" not in render_page(record)


def test_joined_files_of_other_programs_or_other_rule_scores_are_refused():
    record = synthetic_record(shift=0.0)
    az = synthetic_az(record, (0.5,), shift=0.0)
    az["regimes"][0]["groups"]["test"]["programs"] = ["other"] * 12
    with pytest.raises(ValueError, match="other test programs"):
        render_page(record, {"regimes": {}, "az": az})
    az = synthetic_az(record, (0.5,), shift=0.0)
    az["regimes"][0]["groups"]["test"]["rows"][LOWEST_XLA][0] -= 0.01
    with pytest.raises(ValueError, match=r"`lowest offset \[xla\]` differs .* 0.5"):
        render_page(record, {"regimes": {}, "az": az})
    other = synthetic_record(shift=0.0, n=5)
    other["env"] = dict(other["env"], capacity_fraction=0.25)
    with pytest.raises(ValueError, match="capacity 0.25 has other test programs"):
        render_page(record, {"regimes": {0.25: other}, "az": None})


def test_companions_are_read_from_the_headline_files_folder(tmp_path):
    from malloc_experiment import companions

    record = synthetic_record(shift=0.0)
    other = dict(synthetic_record(shift=0.0))
    other["env"] = dict(other["env"], capacity_fraction=0.75)
    write_results(tmp_path / "malloc_experiment.json", record)
    write_results(tmp_path / "malloc_experiment_capacity_0.75.json", other)
    found = companions(tmp_path)
    assert list(found["regimes"]) == [0.75] and found["az"] is None
    write_results(tmp_path / "malloc_az.json", synthetic_az(record, (0.5,), 0.0))
    assert companions(tmp_path)["az"]["regimes"][0]["capacity"] == 0.5
