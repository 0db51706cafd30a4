"""``accelrl-tune``: clear errors for bad input, and (slow) SIGKILL during a TPE study then
``--resume`` keeps every finished trial exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from accelrl.autotune import Float, SearchSpace, write_space
from accelrl.scripts.tune import main

TINY = [
    "--tuning-seeds", "0", "1", "--test-seeds", "2", "3", "--bootstrap-reps", "100",
    "--overrides", '{"num_envs": 4, "num_steps": 32, "num_minibatches": 2, "update_epochs": 1,'
    ' "eval_episodes": 2}',
]  # fmt: skip


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_input_gets_a_clear_error_naming_it(tmp_path, capsys):
    base = ["--agent", "ppo", "--trials", "4", "--budget", "1000", "--out", str(tmp_path / "o")]
    assert "Did you mean: CartPole-v1" in _error(capsys, ["--env", "CartPol-v1", *base])
    err = _error(capsys, ["--env", "CartPole-v1", "--agent", "ppo", "--out", str(tmp_path)])
    assert "missing --budget" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hyperparameters": [{"name": "learning_rate", "type": "uniform_float",
                                                    "lower": 1e-3}]}))  # fmt: skip
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--space", str(bad)])
    assert "learning_rate" in err and "upper" in err
    space = tmp_path / "space.json"
    write_space(SearchSpace({"learnin_rate": Float(1e-4, 1e-2, log=True)}), space)
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--space", str(space)])
    assert "learnin_rate" in err and "Did you mean: learning_rate" in err
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--tuning-seeds", "0", "5"])
    assert "overlap" in err
    err = _error(capsys, ["--resume", str(tmp_path / "nothing")])
    assert "no study" in err
    err = _error(capsys, ["--env", "CartPole-v1", *base, "--method", "pbt", "--burn-in", "-5"])
    assert "--burn_in must be >= 0" in err


@pytest.mark.slow  # budget: about 2-3 minutes on 2 cores (3 processes, one program each)
def test_sigkill_during_a_tpe_study_then_resume_keeps_every_trial_once(tmp_path):
    space = tmp_path / "space.json"
    write_space(SearchSpace({"learning_rate": Float(1e-4, 1e-2, log=True),
                             "ent_coef": Float(0.0, 0.05)}), space)  # fmt: skip
    out = tmp_path / "study"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "accelrl.scripts.tune", "--env", "CartPole-v1", "--agent",
           "ppo", "--method", "tpe", "--trials", "8", "--batch", "2", "--budget", "2048",
           "--space", str(space), "--out", str(out), *TINY]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows_path = out / "trials.jsonl"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if rows_path.exists() and len(rows_path.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before the kill: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {json.loads(x)["trial_id"]: x for x in rows_path.read_text().splitlines()}
    assert 2 <= len(before) < 8
    done = subprocess.run(
        [sys.executable, "-m", "accelrl.scripts.tune", "--resume", str(out), "--quiet"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = rows_path.read_text().splitlines()
    ids = [json.loads(x)["trial_id"] for x in lines]
    assert len(ids) == len(set(ids)) == 8  # every finished trial exactly once
    after = dict(zip(ids, lines, strict=True))
    assert all(after[i] == line for i, line in before.items())  # kept as written
    inc = json.loads((out / "incumbent.json").read_text())
    assert inc["method"] == "tpe" and inc["test"]["seeds"] == [2, 3]
    assert "TPE" in done.stdout
