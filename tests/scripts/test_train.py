"""accelrl-train / accelrl-eval: subprocess smoke run with a tiny budget, bad input fails fast."""

import json
import subprocess
import sys
import time

import pytest

from accelrl.scripts.train import main

TINY = [
    "--num_envs",
    "4",
    "--num_steps",
    "8",
    "--num_minibatches",
    "2",
    "--update_epochs",
    "1",
    "--total_timesteps",
    "128",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cartpole"
    cmd = [
        sys.executable,
        "-m",
        "accelrl.scripts.train",
        "--env",
        "CartPole-v1",
        "--agent",
        "ppo",
        "--seeds",
        "0",
        "1",
        "--out",
        str(out),
        "--segments",
        "2",
        "--eval-episodes",
        "4",
        *TINY,
    ]
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
    # cumulative training time (not the resumed part's 0 s) and one path convention
    assert resumed["train_seconds"] == before["train_seconds"] > 0
    assert resumed["checkpoint"] == before["checkpoint"] == "checkpoints/step_000004"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "CartPol-v1", "--agent", "ppo", "--out", "{tmp}"], "Did you mean: CartPole-v1"),
        (["--env", "CartPole-v1", "--agent", "dqm", "--out", "{tmp}"], "unknown agent 'dqm'"),
        (
            ["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--lerning_rate", "1"],
            "--learning_rate",
        ),
        (
            ["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--num_minibatches", "3"],
            "does not divide",
        ),
        (["--env", "MPE_simple_v3", "--agent", "ppo", "--out", "{tmp}"], "multi-agent"),
        (["--env", "CartPole-v1", "--agent", "ppo"], "missing --out"),
        (["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--gamma"], "--gamma"),
        (
            ["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--gamma", "5"],
            "gamma must be in [0, 1]",
        ),
        (
            ["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--env_kwargs", "[1]"],
            "JSON object",
        ),
        (
            [
                "--env",
                "ThreeBody-v0",
                "--agent",
                "ppo",
                "--out",
                "{tmp}",
                "--env_kwargs",
                '{"num_acts": 5}',
            ],
            "unexpected keyword argument",
        ),
        (
            ["--env", "CartPole-v1", "--agent", "ppo", "--out", "{tmp}", "--seeds", "1", "1"],
            "distinct",
        ),
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


@pytest.mark.parametrize(
    "env, agent, expected",
    [
        (
            "CartPole-v1",
            "ppo",
            [
                "--learning_rate FLOAT",
                "(default: 0.001)",
                "--num_minibatches INT",
                "--normalize_obs, --no-normalize_obs",
                "--seeds",
            ],
        ),
        (
            "Pendulum-v1",
            "sac",
            ["--actor_lr FLOAT", "--gradient_steps INT", "--target_entropy_scale"],
        ),
    ],
)
def test_help_lists_every_field_with_family_defaults(env, agent, expected, capsys):
    assert main(["--env", env, "--agent", agent, "--help"]) == 0
    text = capsys.readouterr().out
    for fragment in expected:
        assert fragment.replace("-", "_").replace("__", "--") in text.replace("-", "_").replace(
            "__", "--"
        ), fragment


def test_general_help_and_fast_name_errors(capsys):
    assert main(["--help"]) == 0
    assert "--env ID --agent NAME" in capsys.readouterr().out
    code = (
        "import sys, time; t = time.perf_counter(); from accelrl.scripts.train import main; "
        "rc = main(['--env', 'CartPol-v1', '--agent', 'ppo', '--out', 'x']); "
        "print(rc, 'jax' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["2", "False"], (
        proc.stdout + proc.stderr
    )  # failed before importing JAX
    assert "Did you mean: CartPole-v1" in proc.stderr


@pytest.mark.slow  # budget: ~30 s here (compiles a ThreeBody PPO program)
def test_env_kwargs_round_trip_into_resume_and_eval(tmp_path, capsys):
    from accelrl.agents import load_run
    from accelrl.scripts.evaluate import main as eval_main

    out = tmp_path / "tb"
    argv = [
        "--env",
        "ThreeBody-v0",
        "--agent",
        "ppo",
        "--env_kwargs",
        '{"num_actions": 3}',
        "--out",
        str(out),
        "--num_envs",
        "2",
        "--num_steps",
        "4",
        "--num_minibatches",
        "1",
        "--update_epochs",
        "1",
        "--total_timesteps",
        "16",
        "--hidden_sizes",
        "8",
        "--eval_episodes",
        "1",
        "--no-progress",
        "--segments",
        "1",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["env_kwargs"] == {"num_actions": 3} and cfg["config"]["hidden_sizes"] == [8]
    agent, state, _, _ = load_run(out)
    assert agent.spec.dim == 3 and int(state.update_step[0]) == 2
    before = json.loads((out / "eval.json").read_text())
    assert main(["--resume", str(out), "--no-progress"]) == 0
    assert eval_main([str(out), "--output", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["episode_returns"] == before["episode_returns"]


@pytest.mark.slow  # budget: ~60 s here (two CLI runs in subprocesses)
def test_second_identical_run_compiles_nothing(tmp_path):
    """JAX's persistent compilation cache: the second run records no cache misses."""
    code = (
        "import sys, jax.monitoring as m\n"
        "misses = []\n"
        "m.register_event_listener(lambda name, **kw: misses.append(name) "
        "if name == '/jax/compilation_cache/cache_misses' else None)\n"
        "from accelrl.scripts.train import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('MISSES', rc, len(misses))\n"
    )
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("ACCELRL_NO_COMPILE_CACHE", None)
    counts = []
    for run in ("a", "b"):
        argv = [
            "--env",
            "CartPole-v1",
            "--agent",
            "ppo",
            "--out",
            str(tmp_path / run),
            "--no-progress",
            "--eval_episodes",
            "2",
            "--segments",
            "2",
            *TINY,
        ]
        proc = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MISSES")]
        assert line, proc.stderr[-2000:]
        counts.append(int(line[0].split()[2]))
    assert counts[0] > 0 and counts[1] == 0, counts
    assert (tmp_path / "cache" / "accelrl" / "jax").is_dir()


def test_damaged_run_folders_and_bad_paths_fail_in_one_line(run_dir, tmp_path, capsys):
    import shutil

    from accelrl.scripts.evaluate import main as eval_main

    out, _ = run_dir
    # --out naming a file; accelrl-eval --output into a missing folder or --episodes 0
    (tmp_path / "afile").write_text("x")
    assert main(["--env", "CartPole-v1", "--agent", "ppo", "--out", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert eval_main([str(out), "--output", str(tmp_path / "missing" / "e.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert eval_main([str(out), "--episodes", "0"]) == 2
    assert "--episodes must be >= 1" in capsys.readouterr().err
    # a copy whose every checkpoint is damaged: one line, exit 1, nothing lost
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    for f in (broken / "checkpoints").rglob("*"):
        if f.is_file() and not f.name.endswith(".json"):
            f.write_bytes(b"\0garbage")
    assert main(["--resume", str(broken), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("accelrl-train: error: no usable checkpoint") and len(err[-1]) < 2000
    assert (broken / "config.json").exists()


@pytest.mark.slow  # budget: ~15 s here
def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path, capsys):
    from accelrl.agents import RunSpec, build_run
    from accelrl.agents.build import write_spec

    out = tmp_path / "early"
    overrides = {k.lstrip("-"): v for k, v in zip(TINY[::2], TINY[1::2], strict=True)}
    write_spec(out, build_run(RunSpec(env="CartPole-v1", agent="ppo", config=overrides)).spec)
    assert main(["--env", "CartPole-v1", "--agent", "ppo", "--out", str(out)]) == 2  # not over it
    assert "already holds a run" in capsys.readouterr().err
    assert main(["--resume", str(out), "--no-progress", "--eval_episodes", "2"]) == 0
    assert json.loads((out / "eval.json").read_text())["update_step"] == 4


def test_outputs_never_overwrite_the_runs_files(run_dir, capsys):
    from accelrl.scripts.evaluate import main as eval_main
    from accelrl.scripts.snapshot import main as snapshot_main

    out, _ = run_dir
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert eval_main([str(out), "--output", str(out / "config.json")]) == 2
    assert "would overwrite a run's own config.json" in capsys.readouterr().err
    for target in (out / "config.json", out / "checkpoints" / "step_000004.json"):
        assert snapshot_main(["--run", str(out), "--out", str(target)]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_seeds_outside_32_bits_and_a_nan_interval_are_refused(tmp_path, capsys):
    base = ["--env", "CartPole-v1", "--agent", "ppo", "--out", str(tmp_path / "r")]
    for extra, message in (
        (["--seeds", "0", "4294967296"], "[0, 2**32)"),
        (["--seeds", "99999999999999999999"], "[0, 2**32)"),
        (["--checkpoint_seconds", "nan"], "finite"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / "r").exists()


def test_a_usage_error_is_one_line_and_help_shows_one_flag_style(capsys):
    assert main(["--env", "CartPole-v1", "--agent", "ppo", "--total_timesteps", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelrl-train: error: ") and err.count("\n") == 1
    assert (
        main(["--env", "CartPole-v1", "--agent", "ppo", "--total-timesteps", "64", "--help"]) == 0
    )
    text = capsys.readouterr().out
    assert "--total_timesteps" in text and "--total-timesteps" not in text


@pytest.mark.slow  # budget: ~30 s here (resumes compile the tiny run)
def test_resume_with_a_relative_path_after_the_final_checkpoint(run_dir, tmp_path, monkeypatch):
    import shutil

    out, _ = run_dir
    shutil.copytree(out, tmp_path / "a")
    (tmp_path / "a" / "eval.json").unlink()  # killed during the final evaluation
    monkeypatch.chdir(tmp_path)
    assert main(["--resume", "a", "--no_progress"]) == 0
    ev = json.loads((tmp_path / "a" / "eval.json").read_text())
    assert ev["checkpoint"] == "checkpoints/step_000004"
    assert main(["--resume", "a", "--total_timesteps", "64"]) == 2  # a resume only extends


def test_config_file_reruns_a_finished_run_to_identical_metrics(run_dir, tmp_path, capsys):
    out, _ = run_dir
    again = tmp_path / "again"
    assert main(["--config", str(out / "config.json"), "--out", str(again), "--no_progress"]) == 0
    for seed in (0, 1):
        a = json.loads((out / f"seed_{seed}" / "metrics.json").read_text())["metrics"]
        b = json.loads((again / f"seed_{seed}" / "metrics.json").read_text())["metrics"]
        assert a == b
    spec_a = json.loads((out / "config.json").read_text())
    spec_b = json.loads((again / "config.json").read_text())
    assert {k: v for k, v in spec_a.items() if k != "recorded"} == {
        k: v for k, v in spec_b.items() if k != "recorded"
    }
    # flags go on top of the file
    other = tmp_path / "other"
    assert main(["--config", str(out / "config.json"), "--out", str(other), "--seeds", "7",
                 "--total_timesteps", "64", "--no_progress"]) == 0  # fmt: skip
    spec = json.loads((other / "config.json").read_text())
    assert spec["seeds"] == [7] and spec["config"]["total_timesteps"] == 64


def test_data_parallel_and_coordinator_flags_are_checked_before_compiling(tmp_path, capsys):
    base = ["--env", "CartPole-v1", "--agent", "ppo", "--out", str(tmp_path / "r")]
    assert main([*base, "--data_parallel", "3", "--num_envs", "4"]) == 2
    assert "data_parallel" in capsys.readouterr().err
    assert main([*base, "--coordinator_address", "localhost:1"]) == 2
    assert "go together" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # budget: ~60 s here (a tiny run on 2 fake devices in a subprocess)
def test_data_parallel_run_from_the_command_line(tmp_path):
    import os

    out = tmp_path / "dp"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    cmd = [sys.executable, "-m", "accelrl.scripts.train", "--env", "CartPole-v1", "--agent", "ppo",
           "--out", str(out), "--data_parallel", "2", "--no_progress", *TINY]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["run"]["data_parallel"] == 2
    assert json.loads((out / "eval.json").read_text())["checkpoint"] == "checkpoints/step_000004"
