"""bench_xla_flags: bad input is refused; one tiny A/B runs end to end (slow)."""

from __future__ import annotations

import json

import bench_xla_flags
import pytest


@pytest.mark.parametrize(
    "argv",
    [
        ["--envs", "CartPole-v1"],
        ["--repeats", "0"],
        ["--rounds", "0"],
        ["--envs"],
        ["--parts", "fit"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_xla_flags.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_two_settings_alternate_in_their_own_processes(tmp_path, capsys):
    """Budget: two child processes compiling CartPole PPO, about 40 s on 2 cores."""
    out = tmp_path / "ab.json"
    assert bench_xla_flags.main([
        "--envs", "CartPole-v1:ppo", "--repeats", "1", "--rounds", "1", "--out", str(out),
        "--allow_dirty",
        f"--setting={bench_xla_flags.SETTINGS[0]}", f"--setting={bench_xla_flags.SETTINGS[1]}",
    ]) == 0  # fmt: skip
    res = json.loads(out.read_text())
    assert set(res["runs"]) == set(bench_xla_flags.SETTINGS)
    for setting in bench_xla_flags.SETTINGS:
        assert res["median_ms"]["CartPole-v1:ppo"][setting] > 0
    assert "ratio to the first setting" in capsys.readouterr().out
    assert res["generator"] == bench_xla_flags.GENERATOR and "clean_tree" in res


def _record(a_runs, b_runs):
    s0, s1 = bench_xla_flags.SETTINGS
    runs = {s0: [{"X:ppo": v} for v in a_runs], s1: [{"X:ppo": v} for v in b_runs]}
    med = {"X:ppo": {s: sorted(r["X:ppo"] for r in runs[s])[len(runs[s]) // 2] for s in runs}}
    return {
        "command": "python scripts/bench/bench_xla_flags.py", "commit": "0123456789abcdef",
        "clean_tree": True, "generator": bench_xla_flags.GENERATOR, "page": bench_xla_flags.PAGE,
        "settings": [s0, s1], "envs": ["X:ppo"], "repeats": 3, "rounds": 5, "runs": runs,
        "median_ms": med, "wall_s": 386.0,
        "host": {"cpus": 2, "load_start": [1.0], "load_end": [1.2]},
    }  # fmt: skip


def test_block_shows_medians_ranges_and_ratios_from_the_record(tmp_path):
    text = bench_xla_flags.render(_record([10.0, 12.0, 11.0], [9.0, 15.0, 8.0]))["bench_xla_flags"]
    assert "| X:ppo | 11.0 [10.0-12.0] | 9.0 [8.0-15.0] (0.82) |" in text
    assert "scheduler flag only" in text and "clean tree" in text
    text = bench_xla_flags.render(_record([10.0, 10.0, 10.0], [20.0, 20.0, 20.0]))
    assert "20.0 [20.0-20.0] (2.00)" in text["bench_xla_flags"]
    page = tmp_path / "p.md"
    page.write_text("<!-- bench_xla_flags: begin -->\nold\n<!-- bench_xla_flags: end -->\n")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])))
    bench_xla_flags.render_from_results(path, bench_xla_flags.render, page=page)
    assert "old" not in page.read_text() and "2.0 [1.0-3.0] (1.00)" in page.read_text()


def _gmm_record(jax_a, jax_b, sk=(100.0, 110.0, 120.0)):
    s0, s1 = bench_xla_flags.SETTINGS
    jax_key, sk_key = bench_xla_flags.GMM_KEYS
    runs = {
        s0: [{jax_key: j, sk_key: k} for j, k in zip(jax_a, sk, strict=True)],
        s1: [{jax_key: j, sk_key: k} for j, k in zip(jax_b, sk, strict=True)],
    }
    med = {key: {s: sorted(r[key] for r in runs[s])[1] for s in runs} for key in (jax_key, sk_key)}
    return {**_record([1.0] * 3, [1.0] * 3), "envs": [], "gmm": [jax_key, sk_key], "runs": runs,
            "median_ms": med}  # fmt: skip


def test_mixture_fit_block_from_the_record():
    blocks = bench_xla_flags.render(_gmm_record([12.0, 15.0, 13.0], [8.0, 8.5, 7.5]))
    assert set(blocks) == {"bench_xla_flags_gmm"}  # no programs measured: no programs block
    text = blocks["bench_xla_flags_gmm"]
    assert "| scheduler flag only | 13.0 [12.0-15.0] | 110.0 [100.0-120.0] | 8.5x |" in text
    assert "| scheduler flag + `-reduce` | 8.0 [7.5-8.5] | 110.0 [100.0-120.0] | 13.8x |" in text
    assert "1.62x the speed" in text and "every process of one setting was faster" in text
    text = bench_xla_flags.render(_gmm_record([12.0, 15.0, 13.0], [8.0, 12.5, 7.5]))
    assert "the ranges over processes overlap" in text["bench_xla_flags_gmm"]
    old = bench_xla_flags.render(_record([10.0, 12.0, 11.0], [9.0, 15.0, 8.0]))
    assert set(old) == {"bench_xla_flags"}  # a record from before the mixture fit part
