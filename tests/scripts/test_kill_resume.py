"""SIGKILL a training run at random moments, during checkpoint writes too, and resume each time:
the finished run has every update exactly once and equals an uninterrupted run bit for bit.

Budget: slow test, about 2-3 minutes on 2 cores (8 processes; programs come from the
persistent compilation cache after the first)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = [
    "--env",
    "CartPole-v1",
    "--agent",
    "ppo",
    "--seeds",
    "0",
    "1",
    "--num_envs",
    "4",
    "--num_steps",
    "16",
    "--num_minibatches",
    "2",
    "--update_epochs",
    "2",
    "--total_timesteps",
    "2560",
    "--segments",
    "40",
    "--checkpoint_every",
    "1",
    "--eval_episodes",
    "2",
    "--no-progress",
]


def _env(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("ACCELRL_NO_COMPILE_CACHE", None)
    return env


def _cmd(*args):
    return [sys.executable, "-m", "accelrl.scripts.train", *args]


def _complete(ckpt_dir: Path) -> set[str]:
    return {p.stem for p in ckpt_dir.glob("step_*.json")} if ckpt_dir.is_dir() else set()


def _writing(ckpt_dir: Path) -> bool:
    return ckpt_dir.is_dir() and any("tmp" in p.name for p in ckpt_dir.iterdir())


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    env = _env(tmp_path)
    ref = tmp_path / "ref"
    proc = subprocess.run(
        _cmd(*ARGS, "--out", str(ref)), env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    out = tmp_path / "killed"
    rng = random.Random(0)
    kills, during_write = 0, 0
    args = [*ARGS, "--out", str(out)]
    while kills < 6:
        p = subprocess.Popen(
            _cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        ckpts = out / "checkpoints"
        before = _complete(ckpts)
        in_write = kills % 2 == 0  # every other kill lands inside a checkpoint write
        deadline, fired_at = time.monotonic() + 120, None
        while p.poll() is None and time.monotonic() < deadline:
            if in_write and _writing(ckpts):
                break
            if not in_write and _complete(ckpts) - before:
                fired_at = fired_at or time.monotonic() + rng.uniform(0.0, 1.0)
                if time.monotonic() >= fired_at:
                    break
            time.sleep(0.002)
        if p.poll() is not None:  # finished before we could kill it: start again from scratch
            assert p.returncode == 0, p.stderr.read().decode()[-3000:]
            break
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        kills += 1
        during_write += in_write
        args = ["--resume", str(out), "--no-progress"]
    assert kills >= 5 and during_write >= 2, (kills, during_write)
    proc = subprocess.run(
        _cmd("--resume", str(out), "--no-progress"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for seed in (0, 1):
        got = (out / f"seed_{seed}" / "metrics.csv").read_text().splitlines()
        want = (ref / f"seed_{seed}" / "metrics.csv").read_text().splitlines()
        assert [row.split(",")[0] for row in got[1:]] == [str(u) for u in range(1, 41)]  # each once
        assert got == want  # bit for bit (repr of every float)
