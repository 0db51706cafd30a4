"""scripts/bench/relax_experiment.py and bench_relax.py: options, the card section and its verdicts
(the full runs are the results; these check the pure parts)."""

from __future__ import annotations

import bench_relax
import pytest
import relax_experiment as X

from accelrl.results import block_markers


def _record(ppo: float, cb: float) -> dict:
    rows = {
        "PPO": [ppo, ppo + 10],
        "best fixed omega (hindsight)": [100.0, 110.0],
        "best fixed omega index": [16, 16],
        "instance-optimal (golden section)": [50.0, 55.0],
        "Tsallis-INF": [150.0, 160.0],
        "Tsallis-INF-CB": [cb, cb + 10],
    }
    comp = {}
    for name in ("PPO", "instance-optimal (golden section)", "Tsallis-INF", "Tsallis-INF-CB"):
        d = rows[name][0] - 100.0
        verdict = "beats" if d < 0 else "worse"
        comp[name] = {"mean_diff": d, "low": d - 1, "high": d + 1, "verdict": verdict}
    return {
        "command": "python scripts/bench/relax_experiment.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "sequence_length": 1000,
        "test_seeds": [2000, 2001],
        "validation_seeds": [1000, 1001],
        "train_seeds": [0, 1],
        "chosen_member": 1,
        "overrides": {"total_timesteps": 4096},
        "wall_seconds": {"train": 1.0, "tables_and_baselines": 2.0},
        "omega_grid": [1.0 + 0.05 * i for i in range(19)],
        "env_rollout_check": int(ppo),
        "rows": rows,
        "comparisons_vs_best_fixed": comp,
    }


def test_card_section_states_the_verdicts_plainly():
    text = X.render(_record(ppo=80.0, cb=90.0))
    assert "**Does the agent beat the best fixed omega?** Yes" in text
    assert "on the high-variance sequence: reproduced." in text
    assert "| PPO | 85 | -20 [-21, -19] | beats it |" in text
    worse = X.render(_record(ppo=120.0, cb=130.0))
    assert "**Does the agent beat the best fixed omega?** No" in worse
    assert "sequence: not reproduced at T = 1,000" in worse
    assert "best fixed omega's: not at T = 1,000" in worse
    assert "Best fixed omega per test sequence: [1.8]" in worse


def test_card_markers_are_required(tmp_path):
    card = tmp_path / "card.md"
    card.write_text("# no markers\n")
    with pytest.raises(ValueError, match="exactly one pair"):
        X.write_card(_record(80.0, 90.0), card)
    begin, end = block_markers(X.BLOCK)
    card.write_text(f"head\n{begin}\nOLD-SECTION\n{end}\ntail\n")
    X.write_card(_record(80.0, 90.0), card)
    text = card.read_text()
    assert text.startswith("head\n") and text.endswith("tail\n") and "OLD-SECTION" not in text


def test_options_quick_stays_out_of_docs_and_bad_sizes_are_refused(tmp_path):
    args = X.parse_args(["--quick"])
    assert args.sequence_length == 40 and X.ROOT / "docs" not in args.out.parents
    with pytest.raises(ValueError, match="never write into"):
        X.check_output(X.ROOT / "docs" / "results" / "x.json", True)
    with pytest.raises(SystemExit, match="--test-sequences must be at least 1"):
        X.parse_args(["--test-sequences", "0"])
    with pytest.raises(SystemExit, match="at least 1"):
        bench_relax.parse_args(["--batches", "0"])
    assert bench_relax.parse_args(["--quick"]).batches == [1, 64]
