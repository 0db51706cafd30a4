"""Random flags and values for every command: an exit code, at most one line on stderr, and no
file of an existing run or study folder changed."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelrl.agents import RunSpec
from accelrl.agents.build import write_spec

TRAIN_FLAGS = [
    "--seeds", "--env_kwargs", "--segments", "--checkpoint_every", "--checkpoint_seconds",
    "--log", "--teacher", "--task_space", "--teacher_kwargs", "--test_tasks", "--snapshots",
    "--snapshot_horizon", "--total_timesteps", "--num_envs", "--learning_rate", "--gamma",
    "--hidden_sizes", "--normalize_obs", "--config", "--heatmap_dims", "--bogus", "--env-kwargs",
]  # fmt: skip
TUNE_FLAGS = [
    "--method", "--trials", "--budget", "--space", "--tuning_seeds", "--test_seeds", "--seed",
    "--overrides", "--env_kwargs", "--score_updates", "--eval_episodes", "--max_members",
    "--eta", "--brackets", "--intervals", "--burn_in", "--batch", "--storage", "--backend",
    "--bootstrap_reps", "--bogus",
]  # fmt: skip
VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "",
            "nan",
            "-1",
            "0",
            "{}",
            "[1]",
            '{"x": 1}',
            "none",
            "alp_gmm",
            "pendulum_dynamics",
            "1e999",
            "5.5",
            "true",
            "--",
            "-",
        ]
    ),  # fmt: skip
    st.text(max_size=8),
)


def argv_strategy(flags):
    pair = st.tuples(st.sampled_from(flags), st.lists(VALUES, max_size=2))
    return st.lists(pair, max_size=4).map(lambda ps: [t for f, vs in ps for t in (f, *vs)])


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder (config.json, a metrics file) and a study folder (search.json)."""
    root = tmp_path_factory.mktemp("fuzz")
    write_spec(root / "run", RunSpec(env="CartPole-v1", agent="ppo", seeds=(0, 1)))
    (root / "run" / "seed_0").mkdir()
    (root / "run" / "seed_0" / "metrics.json").write_text('{"metrics": {}}')
    (root / "study").mkdir()
    (root / "study" / "search.json").write_text(json.dumps({"method": "random"}))
    return root


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def check(capsys, rc, root, before):
    err = capsys.readouterr().err
    assert isinstance(rc, int)
    if rc == 2:  # a usage error or a refused value: one line
        assert err.count("\n") <= 1, err
    assert snapshot(root) == before


FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(extra=argv_strategy(TRAIN_FLAGS))
def test_train_never_touches_an_existing_run(run_folder, capsys, extra):
    from accelrl.scripts.train import main

    before = snapshot(run_folder)
    argv = ["--env", "CartPole-v1", "--agent", "ppo", "--out", str(run_folder / "run"), *extra]
    rc = main(argv)
    assert rc == 2  # the folder holds a run, or the flags are bad: refused either way
    check(capsys, rc, run_folder, before)


@FUZZ
@given(extra=argv_strategy(["--no_progress", "--eval_episodes", "--log", "--total_timesteps",
                            "--out", "--seeds", "--bogus"]))  # fmt: skip
def test_resume_flags_are_checked_before_the_folder_is_touched(run_folder, capsys, extra):
    from accelrl.scripts.train import main

    before = snapshot(run_folder)
    rc = main(["--resume", str(run_folder / "missing"), *extra])
    assert rc == 2
    check(capsys, rc, run_folder, before)


@FUZZ
@given(extra=argv_strategy(TUNE_FLAGS))
def test_tune_refuses_bad_input_in_one_line(run_folder, capsys, extra):
    from accelrl.scripts.tune import main

    before = snapshot(run_folder)
    rc = main(["--resume", str(run_folder / "study"), *extra])
    assert rc == 2  # a damaged search.json, or flags a resume does not take
    check(capsys, rc, run_folder, before)


@FUZZ
@given(extra=argv_strategy(["--episodes", "--every", "--seed", "--teacher", "--candidates",
                            "--num_steps", "--out", "--bogus"]))  # fmt: skip
def test_snapshot_never_overwrites(run_folder, capsys, extra):
    from accelrl.scripts.snapshot import main

    before = snapshot(run_folder)
    rc = main(["--run", str(run_folder / "run"), "--out", str(run_folder / "run" / "config.json"),
               *extra])  # fmt: skip
    assert rc == 2
    check(capsys, rc, run_folder, before)


@FUZZ
@given(extra=argv_strategy(["--episodes", "--checkpoint", "--output", "--stochastic", "--bogus"]))
def test_eval_of_a_folder_without_checkpoints_fails_in_one_line(run_folder, capsys, extra):
    from accelrl.scripts.evaluate import main

    before = snapshot(run_folder)
    rc = main([str(run_folder / "run"), *extra])
    assert rc in (1, 2)
    check(capsys, 2, run_folder, before)
