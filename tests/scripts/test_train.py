"""accelrl-train / accelrl-eval: subprocess smoke run with a tiny budget, bad input fails fast."""

import json
import subprocess
import sys
import time

import pytest

from accelrl.scripts.train import main, parse_overrides

TINY = ["--num_envs", "4", "--num_steps", "8", "--num_minibatches", "2", "--update_epochs", "1",
        "--total_timesteps", "128"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cartpole"
    cmd = [sys.executable, "-m", "accelrl.scripts.train", "--env", "CartPole-v1", "--agent", "ppo",
           "--seeds", "0", "1", "--out", str(out), "--segments", "2", "--eval-episodes", "4", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc


def test_smoke_run_writes_everything(run_dir):
    out, proc = run_dir
    assert "mean eval return" in proc.stdout
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["env"] == "CartPole-v1" and cfg["seeds"] == [0, 1]
    assert cfg["config"]["num_envs"] == 4 and cfg["hparams"]["learning_rate"] == pytest.approx(1e-3)
    for seed in (0, 1):
        assert (out / f"seed_{seed}" / "metrics.csv").exists()
        m = json.loads((out / f"seed_{seed}" / "metrics.json").read_text())["metrics"]
        assert len(m["env_steps"]) == 4
    assert (out / "learning_curve.png").stat().st_size > 1000
    ev = json.loads((out / "eval.json").read_text())
    assert len(ev["returns"]) == 2 and len(ev["episode_returns"][0]) == 4
    assert ev["mean_return"] == pytest.approx(sum(ev["returns"]) / 2)
    assert (out / "checkpoints" / "step_000004").is_dir()


def test_eval_reproduces_and_resume_of_finished_run(run_dir, capsys):
    from accelrl.scripts.evaluate import main as eval_main

    out, _ = run_dir
    before = json.loads((out / "eval.json").read_text())
    assert eval_main([str(out), "--episodes", "4", "--output", str(out / "again.json")]) == 0
    again = json.loads((out / "again.json").read_text())
    assert again["episode_returns"] == before["episode_returns"]
    assert main(["--resume", str(out), "--out", "x"]) == 2
    assert "--resume takes the run folder only" in capsys.readouterr().err
    # Resuming a finished run trains nothing and re-evaluates to the same numbers.
    assert main(["--resume", str(out), "--no-progress", "--eval-episodes", "4"]) == 0
    resumed = json.loads((out / "eval.json").read_text())
    assert resumed["episode_returns"] == before["episode_returns"] and resumed["update_step"] == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "CartPol-v1", "--agent", "ppo", "--out", "{tmp}"], "Did you mean: CartPole-v1"),
        (["--env", "CartPole-v1", "--agent", "dqn", "--out", "{tmp}"], "unknown agent 'dqn'"),
        (["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--lerning_rate", "1"],
         "Did you mean: --learning_rate"),
        (["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--num_minibatches", "3"],
         "does not divide"),
        (["--env", "MPE_simple_v3", "--agent", "ppo", "--out", "{tmp}"], "multi-agent"),
        (["--env", "CartPole-v1", "--agent", "ppo"], "missing --out"),
        (["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--gamma"], "needs a value"),
        (["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--seeds", "1", "1"], "distinct"),
    ],
)
def test_bad_input_fails_before_compiling(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path / "run")) for a in argv]
    t0 = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - t0 < 20  # no compilation happened
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "run" / "config.json").exists()


def test_parse_overrides():
    assert parse_overrides(["--a", "1", "--b=x", "--c", "-0.5"]) == {"a": "1", "b": "x", "c": "-0.5"}
    with pytest.raises(ValueError, match="given twice"):
        parse_overrides(["--a", "1", "--a", "2"])
    with pytest.raises(ValueError, match="unexpected argument"):
        parse_overrides(["a"])
