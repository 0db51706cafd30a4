"""scripts/bench_marl.py: its pure helpers (nothing trained, no JaxMARL venv)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import bench_marl as B
import numpy as np
import pytest


def test_jaxmarl_return_conversion_undoes_the_log_wrappers_scaling():
    # MPELogWrapper logs each agent's return with rewards x num_agents; the script averages
    # over agents. Three agents whose own returns are -20, -21, -22 (mean -21):
    own = np.array([-20.0, -21.0, -22.0])
    logged = (own * 3).mean()
    assert B.jaxmarl_to_mean_agent_return(logged, 3) == pytest.approx(-21.0)
    curve = np.full((2, 4), -60.0)
    assert np.allclose(B.jaxmarl_to_mean_agent_return(curve, 3), -20.0)
    with pytest.raises(ValueError):
        B.jaxmarl_to_mean_agent_return(logged, 0)


def test_tail_means_average_the_last_updates_per_seed():
    assert B.tail_updates(250) == 12 and B.tail_updates(10) == 1 and B.tail_updates(3, 0.9) == 3
    curves = np.array([[0.0] * 90 + [1.0] * 5 + [3.0] * 5, [np.nan] * 95 + [2.0] * 5])
    assert B.tail_means(curves) == pytest.approx([3.0, 2.0])
    assert B.tail_means(curves, fraction=0.1) == pytest.approx([2.0, 2.0])
    assert math.isnan(B.tail_means([[np.nan, np.nan]])[0])


def test_mean_std_skips_missing_values():
    assert B.mean_std([1.0, 3.0, math.nan]) == pytest.approx((2.0, 1.0))
    assert all(math.isnan(x) for x in B.mean_std([]))


def _row(agent, num_envs, sps, n_agents):
    return {
        "agent": agent,
        "env": "X",
        "num_envs": num_envs,
        "steps_per_s": sps,
        "agent_steps_per_s": sps * n_agents,
        "compile_s": 1.0,
    }


def test_throughput_ratio_is_per_agent_step_against_ppo_at_the_same_num_envs():
    rows = [
        _row("ppo", 64, 30_000.0, 1),
        _row("ippo", 64, 6_000.0, 3),  # 18k agent-steps/s: 0.6
        _row("mappo", 64, 4_000.0, 3),  # 12k: 0.4
        _row("ippo", 16, 1_000.0, 3),  # no PPO row at 16 envs: no ratio
    ]
    ratios = {(r["agent"], r["num_envs"]): r for r in B.throughput_ratios(rows)}
    assert set(ratios) == {("ippo", 64), ("mappo", 64)}
    assert ratios["ippo", 64]["ratio"] == pytest.approx(0.6)
    assert ratios["ippo", 64]["meets_target"] is True
    assert ratios["mappo", 64]["ratio"] == pytest.approx(0.4)
    assert ratios["mappo", 64]["meets_target"] is False
    table = B.throughput_table(rows, list(ratios.values()))
    assert "0.600 (met)" in table and "0.400 (not met)" in table


def test_steady_rate_leaves_out_the_first_point():
    # 10 updates of 100 steps in all; the first 2 (with compilation) took 50 s, the rest 8 s
    assert B.steady_rate(10, 2, 100, 58.0, 50.0) == pytest.approx(100.0)
    assert math.isnan(B.steady_rate(2, 2, 100, 58.0, 50.0))


def _method(per_seed):
    return {"train_return_per_seed": per_seed, "train_return": B.mean_std(per_seed)}


def test_returns_targets_follow_the_interval_against_jaxmarl_in_its_own_config():
    results = {
        "spread": {
            "ippo": _method([-20.0, -20.2, -19.9]),  # clearly above: beats
            "mappo": _method([-26.0, -26.1, -25.9]),  # clearly below: worse, not met
            "jaxmarl_ippo": _method([-25.0, -25.2, -24.9]),
            "jaxmarl_ippo_accelrl_hp": _method([-10.0, -10.0]),  # not the reference
        },
        "listener": {"ippo": _method([-20.0, -21.0])},  # no JaxMARL run: no target
    }
    targets = {t["agent"]: t for t in B.returns_targets(results, reps=2000)}
    assert targets["ippo"]["meets_target"] is True and targets["ippo"]["verdict"] == "beats"
    assert targets["mappo"]["meets_target"] is False and targets["mappo"]["verdict"] == "worse"
    assert targets["ippo"]["low"] > 0 > targets["mappo"]["high"]
    assert all(t["scenario"] == "spread" for t in targets.values())
    # overlapping seeds: no difference shown, which still "at least matches"
    close = {"s": {"ippo": _method([-20.0, -25.0, -22.0]), "mappo": _method([-21.0]),
                   "jaxmarl_ippo": _method([-21.0, -24.0, -23.0])}}  # fmt: skip
    t = {t["agent"]: t for t in B.returns_targets(close, reps=2000)}
    assert t["ippo"]["verdict"] == "no difference shown" and t["ippo"]["meets_target"] is True
    assert t["mappo"]["verdict"] == "not judged" and t["mappo"]["meets_target"] is False
    table = B.returns_table(
        {"spread": {"random": {"eval_sampled": (-26.3, 8.1)}, "x": {"error": "boom"}}}
    )
    assert "-26.3 ± 8.1" in table and "error: boom" in table


def _record(part, **extra):
    return {
        "command": f"python scripts/bench/bench_marl.py --parts {part}",
        "commit": "0123456789abcdef",
        "clean_tree": True,
        "generator": B.GENERATOR,
        "page": B.PAGE,
        "part": part,
        "host": {"cpus": 2, "load_start": [5.0, 5.0, 5.0], "load_end": [6.0, 6.0, 6.0]},
        "wall_s": 100.0,
        **extra,
    }


def _throughput_record(mappo_rate):
    rows = [_row("ppo", 64, 30_000.0, 1), _row("ippo", 64, 6_000.0, 3),
            _row("mappo", 64, mappo_rate, 3)]  # fmt: skip
    settings = dict(num_envs=[64], num_steps=25, num_minibatches=4, update_epochs=4,
                    steps_per_call=60_000, rounds=3)  # fmt: skip
    return _record("throughput", settings=settings, rows=rows,
                   ratios=B.throughput_ratios(rows), target=0.5)  # fmt: skip


def test_throughput_block_says_not_met_when_a_ratio_misses():
    (text,) = B.render(_throughput_record(4_000.0)).values()  # mappo 0.4
    assert "**not met** for mappo at 64 envs (0.400); met for 1 of 2" in text
    assert "load average 5.0 at the start, 6.0 at the end" in text and "clean tree" in text
    (text,) = B.render(_throughput_record(6_000.0)).values()
    assert "**met** at every size measured" in text and "not met" not in text


def _returns_record(accelrl_seeds):
    scenarios = {
        "MPE_simple_spread_v3": {
            "random": {"eval_sampled": (-26.3, 8.1)},
            "ippo": {**_method(accelrl_seeds), "method": "accelrl ippo",
                     "curve_mean": [-26.0 + i for i in range(12)]},
            "mappo": _method(accelrl_seeds),
            "jaxmarl_ippo": _method([-23.0, -23.5, -22.6]),
        }
    }  # fmt: skip
    settings = dict(seeds=3, eval_episodes=32, random_episodes=512)
    return _record("returns", settings=settings, scenarios=scenarios,
                   targets=B.returns_targets(scenarios, reps=2000))  # fmt: skip


def test_returns_block_says_not_met_when_accelrl_is_worse():
    (text,) = B.render(_returns_record([-18.1, -18.3, -17.9])).values()
    assert "MPE_simple_spread_v3, ippo: **met**" in text and ": beats)" in text
    assert "- accelrl ippo: -26.0, -25.0" in text  # curve points from the file
    (text,) = B.render(_returns_record([-30.1, -30.3, -29.9])).values()
    assert "MPE_simple_spread_v3, ippo: **not met**" in text and ": worse)" in text
    (text,) = B.render({**_returns_record([-18.0, -18.2]), "targets": []}).values()
    assert "**not met**: no JaxMARL run" in text
    with pytest.raises(ValueError, match="part"):
        B.render(_record("other"))


def test_a_jaxmarl_curve_starting_at_its_logged_zero_is_marked():
    record = _returns_record([-18.1, -18.3, -17.9])
    methods = record["scenarios"]["MPE_simple_spread_v3"]
    methods["jaxmarl_ippo"]["curve_mean"] = [0.0, -24.0, -23.0]
    (text,) = B.render(record).values()
    assert "- jaxmarl_ippo: 0.0*, 0.0, 0.0, -24.0" in text and "logs a return of 0" in text
    methods["jaxmarl_ippo"]["curve_mean"] = [-25.0, -24.0, -23.0]
    methods["ippo"]["curve_mean"] = [0.0, -24.0, -23.0]  # accelrl's zero is a real return
    (text,) = B.render(record).values()
    assert "0.0*" not in text and "logs a return of 0" not in text


def test_from_results_renders_the_block_of_its_part(tmp_path):
    page = tmp_path / "marl.md"
    page.write_text("x\n<!-- marl_throughput: begin -->\n<!-- marl_throughput: end -->\n"
                    "<!-- marl_returns: begin -->\nhand\n<!-- marl_returns: end -->\n")  # fmt: skip
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_throughput_record(4_000.0)))
    B.render_from_results(path, B.render, page=page)
    text = page.read_text()
    assert "(0.400 (not met)" not in text and "0.400 (not met)" in text and "\nhand\n" in text


def test_quick_never_writes_into_docs_and_dirty_runs_are_refused(monkeypatch):
    from accelrl.results import REPO

    with pytest.raises(ValueError, match="never write"):
        B.main(["--quick", "--out_dir", str(REPO / "docs" / "results")])
    monkeypatch.setattr(B, "results_record", lambda *a: {"clean_tree": False})
    with pytest.raises(SystemExit, match="uncommitted"):
        B.main(["--parts", "throughput"])


def test_jaxmarl_overrides_map_accelrl_settings():
    config = SimpleNamespace(
        num_envs=64,
        num_steps=25,
        update_epochs=4,
        num_minibatches=4,
        activation="tanh",
        anneal_lr=True,
    )
    hparams = SimpleNamespace(
        learning_rate=2.5e-3, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01,
        vf_coef=0.5, max_grad_norm=0.5,
    )  # fmt: skip
    out = B.jaxmarl_overrides(config, hparams)
    assert out["NUM_ENVS"] == 64 and out["NUM_STEPS"] == 25 and out["LR"] == pytest.approx(2.5e-3)
    assert out["ANNEAL_LR"] is True and out["ACTIVATION"] == "tanh"
    assert set(out) <= {
        "LR",
        "NUM_ENVS",
        "NUM_STEPS",
        "UPDATE_EPOCHS",
        "NUM_MINIBATCHES",
        "GAMMA",
        "GAE_LAMBDA",
        "CLIP_EPS",
        "ENT_COEF",
        "VF_COEF",
        "MAX_GRAD_NORM",
        "ACTIVATION",
        "ANNEAL_LR",
    }  # fmt: skip  (keys of JaxMARL's ippo_ff_mpe.yaml)


def test_quick_and_full_settings():
    quick = B.parse_args(["--quick"])
    assert quick.num_envs == [64] and quick.seeds == 2 and quick.total_timesteps == 48_000
    assert quick.jaxmarl_variants == ["jaxmarl_ippo"]
    full = B.parse_args([])
    assert full.num_envs == [16, 64, 256, 1024] and full.seeds == 3
    assert full.total_timesteps is None  # accelrl's MPE defaults' budget
    assert set(full.jaxmarl_variants) == {"jaxmarl_ippo", "jaxmarl_ippo_accelrl_hp"}
