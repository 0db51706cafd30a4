"""bench_xla_flags: bad input is refused; one tiny A/B runs end to end (slow)."""

from __future__ import annotations

import json

import bench_xla_flags
import pytest


@pytest.mark.parametrize(
    "argv",
    [["--envs", "CartPole-v1"], ["--repeats", "0"], ["--rounds", "0"]],
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
        f"--setting={bench_xla_flags.SETTINGS[0]}", f"--setting={bench_xla_flags.SETTINGS[1]}",
    ]) == 0  # fmt: skip
    res = json.loads(out.read_text())
    assert set(res["runs"]) == set(bench_xla_flags.SETTINGS)
    for setting in bench_xla_flags.SETTINGS:
        assert res["median_ms"]["CartPole-v1:ppo"][setting] > 0
    assert "ratio to the first setting" in capsys.readouterr().out
