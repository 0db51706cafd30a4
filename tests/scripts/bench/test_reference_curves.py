"""scripts/bench/reference_curves.py: the page blocks are pure functions of the results file."""

from __future__ import annotations

import json

import pytest
import reference_curves as C


def _ppo_record(curve):
    run = {
        "env": "CartPole-v1", "seeds": [0, 1], "total_timesteps": 100_000,
        "command": "accelrl-train --env CartPole-v1 --agent ppo --seeds 0 1",
        "eval_returns": [500.0, 480.0], "eval_mean_return": 490.0,
        "eval_episode_returns": [[500.0, 500.0, 500.0], [400.0, 480.0, 560.0]],
        "train_steps": [256.0 * (i + 1) for i in range(len(curve))], "train_curve": curve,
        "reach": 500.0, "wall_s": 43.0, "cpu_s": 30.7,
    }  # fmt: skip
    return {
        "command": "python scripts/bench/reference_curves.py --parts ppo",
        "commit": "0123456789abcdef", "clean_tree": True, "generator": C.GENERATOR,
        "page": C.PAGES["ppo"], "part": "ppo",
        "host": {"cpus": 2, "load_start": [4.0], "load_end": [5.0]}, "runs": {"cartpole": run},
    }  # fmt: skip


def test_ppo_block_reports_the_crossing_only_when_the_curve_reaches_it():
    (text,) = C.render(_ppo_record([20.0, 100.0, 500.0, 490.0, 500.0])).values()
    assert "evaluation return 490 (per seed 500, 480; 3 episodes each;" in text
    assert "median episode per seed 500, 480)" in text
    assert "it first reaches 500 at 768 steps" in text and "clean tree" in text
    (text,) = C.render(_ppo_record([20.0, 100.0, 499.0, 490.0, float("nan")])).values()
    assert "it never reaches 500" in text and "first reaches" not in text
    assert C.first_crossing([1, 2], [1.0, 2.0], None) is None


def test_sac_block_tabulates_the_points_and_a_bad_record_is_refused(tmp_path):
    record = {
        "command": "python scripts/bench/reference_curves.py --parts sac",
        "commit": "0123456789abcdef", "clean_tree": False, "generator": C.GENERATOR,
        "page": C.PAGES["sac"], "part": "sac",
        "host": {"cpus": 2, "load_start": [1.0], "load_end": [1.0]},
        "run": {"env": "Pendulum-v1", "seed": 0, "episodes": 10, "wall_s": 300.0,
                "cpu_s": 280.0, "points": [{"env_steps": 1000, "mean_return": -1664.2},
                                           {"env_steps": 20000, "mean_return": -119.4}]},
    }  # fmt: skip
    (text,) = C.render(record).values()
    assert (
        "| env steps | 1k | 20k |" in text
        and "| deterministic eval return | -1664 | -119 |" in text
    )
    assert "uncommitted changes" in text
    with pytest.raises(ValueError, match="part"):
        C.render({**record, "part": "dqn"})
    page = tmp_path / "sac.md"
    page.write_text("<!-- reference_curve_sac: begin -->\nold\n<!-- reference_curve_sac: end -->\n")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    C.render_from_results(path, C.render, page=page)
    assert "old" not in page.read_text() and "-119" in page.read_text()


def test_quick_never_writes_into_docs():
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        C.main(["--quick", "--out_dir", str(REPO / "docs" / "results")])


def test_marl_block_gives_team_returns_where_there_are_two_teams():
    def run(env, agent, mean, teams=None):
        return {"env": env, "agent": agent, "command": f"accelrl-train --env {env}",
                "eval_mean_return": mean, "eval_returns": [mean - 1, mean + 1],
                "team_returns": teams, "wall_s": 150.0}  # fmt: skip

    record = {
        "command": "python scripts/bench/reference_curves.py --parts marl",
        "commit": "0123456789abcdef", "clean_tree": True, "generator": C.GENERATOR,
        "page": C.PAGES["marl"], "part": "marl",
        "host": {"cpus": 2, "load_start": [5.0], "load_end": [9.0]},
        "runs": {"a": run("spread", "ippo", -19.0, {"agents": -19.0}),
                 "b": run("tag", "ippo", 2.0, {"adversaries": 44.6, "agents": -61.0})},
        "random": {"spread": {"episodes": 1000, "mean_return": -26.8,
                              "team_returns": {"agents": -26.8}},
                   "tag": {"episodes": 1000, "mean_return": 0.0,
                           "team_returns": {"adversaries": 4.8, "agents": -16.4}}},
    }  # fmt: skip
    (text,) = C.render(record).values()
    assert (
        "| spread | ippo | `accelrl-train --env spread` | -19.0 (-20.0, -18.0) | - | -26.8 |"
        in text
    )
    assert "| 2.0 (1.0, 3.0) | 44.6 / -61.0 | 0.0 (4.8 / -16.4) | 150 |" in text
    assert "(tag: adversaries / agents)" in text and "1000 episodes per scenario" in text
