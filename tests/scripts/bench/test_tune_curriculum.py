"""scripts/bench/tune_curriculum.py: the docs section and its verdicts from a results record (the
full run is the result; these check the pure parts), and --quick never writes into docs/."""

from __future__ import annotations

import pytest
import tune_curriculum as X


def _record(joint: list[float], default: list[float], hparams: list[float]) -> dict:
    comps = {}
    for name, (a, b) in {
        "joint - default": (joint, default),
        "hparams - default": (hparams, default),
        "joint - hparams": (joint, hparams),
    }.items():
        comps[name] = X.compare(a, b)
    arm = {"tuning_score": 0.1, "incumbent_trial": 0, "incumbent_config": {}, "schedule": None,
           "wall_s": 1.0}  # fmt: skip
    return {
        "command": "python scripts/bench/tune_curriculum.py",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "machine": {"cpu_count": 2},
        "task_space": "pendulum_dynamics",
        "budget": 327_680,
        "population": 8,
        "intervals": 8,
        "tuning_seeds": [0, 1],
        "test_seeds": list(range(100, 100 + len(joint))),
        "curriculum": X.CURRICULUM,
        "spaces": {
            "joint": ["learning_rate", "teacher.random_task_ratio"],
            "hparams": ["learning_rate"],
        },  # fmt: skip
        "arms": {"joint": {**arm, "test": joint}, "hparams": {**arm, "test": hparams}},
        "default_test": default,
        "default_repeatable": True,
        "comparisons": comps,
        "speed": {
            "members": 8,
            "updates": 5,
            "env_steps_per_member": 10240,
            "vmapped_s": [1.0],
            "sequential_s": [4.0],
            "vmapped_median_s": 1.0,
            "sequential_median_s": 4.0,
            "ratio_sequential_over_vmapped": 4.0,
        },  # fmt: skip
        "wall_seconds": {"total": 100.0},
    }


def test_a_false_claim_is_reported_not_met():
    """The joint arm ahead on some seeds and behind on others (interval includes zero): not met,
    whatever a record's stored verdict word says."""
    record = _record([0.2, 0.0, 0.3, 0.0], [0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1])
    record["comparisons"]["joint - default"]["verdict"] = "beats"  # a wrong stored word
    text = X.render(record)
    assert "beats the default PPO + ALP-GMM: **not met**" in text
    assert "includes zero" in text


def test_a_true_claim_is_reported_met_and_the_ratio_stated():
    record = _record([0.3, 0.32, 0.31, 0.35], [0.1, 0.12, 0.1, 0.11], [0.3, 0.32, 0.31, 0.35])
    text = X.render(record)
    assert "beats the default PPO + ALP-GMM: **met**" in text
    assert "beats tuning the hparams alone: **not met**" in text  # identical scores
    assert "**4.00x**" in text


def test_render_is_repeatable_and_replaces_only_its_section(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# head\n\n<!-- tune_curriculum: begin -->\nold\n<!-- tune_curriculum: end -->\n\ntail\n"
    )
    record = _record([0.2, 0.1], [0.1, 0.1], [0.1, 0.2])
    X.write_page(record, page)
    once = page.read_text()
    X.write_page(record, page)
    assert page.read_text() == once
    assert once.startswith("# head\n") and once.endswith("\ntail\n") and "old" not in once


def test_quick_never_writes_into_docs():
    with pytest.raises(ValueError, match="never write into"):
        X.parse_args(["--quick", "--out", str(X.RESULTS)])
