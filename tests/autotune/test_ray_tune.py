"""Ray Tune backend: PBT explore clipping, rows, the missing-Ray error, and (slow) real ASHA and
PBT searches of CartPole PPO on a local Ray instance started here."""

import json
import math
import sys

import numpy as np
import pytest

from accelrl.agents.spec import RunSpec
from accelrl.autotune.ray_tune import (
    ClipToSpace,
    clip_value,
    extend_schedule,
    ray_search,
    require_ray,
    trial_row,
)
from accelrl.autotune.spaces import Categorical, Float, Int, SearchSpace
from accelrl.autotune.study import append_row, read_rows

SPACE = SearchSpace(
    {
        "learning_rate": Float(1e-4, 1e-2, log=True),
        "ent_coef": Float(0.0, 0.02),
        "gae_lambda": Categorical((0.9, 0.95, 0.99)),
        "num_minibatches": Categorical((2, 4)),  # config: PBT never touches it
    }
)
HP = ("learning_rate", "ent_coef", "gae_lambda")


def run_of(budget):
    """CartPole PPO with ``budget`` environment steps per seed."""
    return RunSpec("CartPole-v1", "ppo", config={"total_timesteps": budget})


def in_space(space, values):
    """The check the slow tests apply to every value PBT trained with."""
    return all(space[k].contains(v) for k, v in values.items())


# ----------------------------------------------------------------------------------------------
# Fast: pure pieces, no Ray needed


def test_clip_value_per_dimension_kind():
    assert clip_value(Float(1e-4, 1e-2, log=True), 1.2e-2) == 1e-2
    assert clip_value(Float(1e-4, 1e-2, log=True), 0.8e-4) == 1e-4
    assert clip_value(Float(0.0, 0.5), 0.3) == 0.3  # inside: untouched
    assert clip_value(Float(0.0, 0.5), float("inf")) == 0.5
    assert clip_value(Int(1, 10), 10.6) == 10 and clip_value(Int(1, 10), 3.4) == 3
    assert isinstance(clip_value(Int(1, 10), 3.6), int) and clip_value(Int(1, 10), 3.6) == 4
    assert clip_value(Int(2, 64, log=True), 1.0) == 2
    cat = Categorical((0.9, 0.95, 0.99))
    assert clip_value(cat, 0.95) == 0.95
    assert clip_value(cat, 1.188) == 0.99 and clip_value(cat, 0.2) == 0.9
    assert clip_value(cat, 0.94) == 0.95
    with pytest.raises(ValueError, match="NaN"):
        clip_value(Float(0.0, 1.0), float("nan"))
    with pytest.raises(ValueError, match="not one of"):
        clip_value(Categorical(("tanh", "relu")), "gelu")


def ray_like_explore(values, rng):
    """What Ray's PBT does to each mutated dimension before ``custom_explore_fn``: resample
    (probability 0.25) or multiply by 1.2 or 0.8 (floats), shift to a neighbouring choice
    (lists). Sampling here deliberately reaches past the bounds, as Ray's multiplication does."""
    out = dict(values)
    for name in HP:
        dim = SPACE[name]
        if isinstance(dim, Categorical):
            i = dim.choices.index(values[name]) + rng.choice([-1, 1])
            out[name] = dim.choices[min(max(i, 0), len(dim.choices) - 1)]
        elif rng.random() < 0.25:
            out[name] = dim.sample(rng)
        else:
            out[name] = values[name] * rng.choice([1.2, 0.8])
    return out


def test_explore_fn_keeps_every_mutation_in_bounds_and_the_check_catches_unclipped_ones():
    rng = np.random.default_rng(0)
    explore = ClipToSpace(SPACE, HP)
    outside_unclipped = 0
    for _ in range(500):
        start = {**SPACE.sample_one(rng), "trial_index": 3}
        start["learning_rate"] = rng.choice([1e-2, 1e-4, start["learning_rate"]])  # edges
        raw = ray_like_explore(start, rng)
        # wrong answer: Ray's raw mutation (no clipping) leaves the space, and the check says so
        outside_unclipped += not in_space(SPACE, {k: raw[k] for k in HP})
        new = explore(raw)
        assert in_space(SPACE, {k: new[k] for k in HP}), (raw, new)
        # config dimensions and Ray's own keys are not touched
        assert new["num_minibatches"] == raw["num_minibatches"] and new["trial_index"] == 3
        for k in HP:  # a value already inside stays exactly as Ray made it
            if SPACE[k].contains(raw[k]):
                assert new[k] == raw[k]
    assert outside_unclipped > 50


def test_trial_row_statuses_and_json_rows(tmp_path):
    initial = {"learning_rate": 1e-3, "num_minibatches": 4}
    done = {
        "env_steps": 4096,
        "finished": True,
        "score": 120.5,
        "seed_scores": [100.0, 141.0],
        "failed_seeds": [],
        "values": json.dumps({"learning_rate": 2e-3, "num_minibatches": 4}),
        "schedule": json.dumps(
            [[0, {"learning_rate": 1e-3, "num_minibatches": 4}],
             [2048, {"learning_rate": 2e-3, "num_minibatches": 4}]]
        ),
    }  # fmt: skip
    ok = trial_row(7, initial, [0, 1], done, scheduler="pbt", ray_trial_id="abc_00007")
    assert ok["trial_id"] == 7 and ok["status"] == "ok" and ok["score"] == 120.5
    assert ok["config"] == {"learning_rate": 2e-3, "num_minibatches": 4}
    assert ok["initial_config"] == initial and ok["schedule"][-1] == [2048, ok["config"]]
    assert ok["env_steps"] == 4096 and ok["seeds"] == [0, 1]

    stopped = trial_row(
        1, initial, [0, 1], {**done, "finished": False, "env_steps": 512}, scheduler="asha"
    )
    assert stopped["status"] == "stopped" and stopped["score"] == 120.5
    assert "schedule" not in stopped and "initial_config" not in stopped

    nan = {**done, "score": float("nan"), "seed_scores": [float("nan"), 3.0]}
    no_score = trial_row(2, initial, [0, 1], nan, scheduler="asha")
    assert no_score["status"] == "no_score" and no_score["score"] is None
    assert no_score["seed_scores"] == [None, 3.0]

    diverged = trial_row(3, initial, [0, 1], {**done, "failed_seeds": [1]}, scheduler="asha")
    assert diverged["status"] == "diverged" and diverged["score"] is None
    assert "seed(s) [1]" in diverged["error"]

    error = trial_row(4, initial, [0, 1], None, scheduler="pbt", error="boom")
    assert error["status"] == "error" and error["error"] == "boom"
    assert error["config"] == initial and error["schedule"] == [[0, initial]]
    assert error["env_steps"] == 0 and error["seed_scores"] == [None, None]

    with pytest.raises(ValueError, match="seed scores"):
        trial_row(5, initial, [0, 1, 2], done, scheduler="asha")

    # every row is strict JSON (no NaN) and round-trips through the run folder's file
    path = tmp_path / "trials.jsonl"
    for row in (ok, stopped, no_score, diverged, error):
        append_row(path, row)
    assert read_rows(path) == {r["trial_id"]: r for r in (ok, stopped, no_score, diverged, error)}


def test_extend_schedule():
    a, b = {"lr": 1.0}, {"lr": 2.0}
    assert extend_schedule([[0, a]], 512, a) == [[0, a]]  # unchanged values: no entry
    assert extend_schedule([[0, a]], 512, b) == [[0, a], [512, b]]
    # a second explore at the same step replaces the first; back to the old values: dropped
    assert extend_schedule([[0, a], [512, b]], 512, {"lr": 3.0}) == [[0, a], [512, {"lr": 3.0}]]
    assert extend_schedule([[0, a], [512, b]], 512, a) == [[0, a]]


def test_missing_ray_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'accelrl\[ray\]'"):
        require_ray()
    with pytest.raises(ImportError, match=r"pip install 'accelrl\[ray\]'"):
        ray_search(run_of(4096), SPACE, scheduler="asha", trials=2, out="unused")


def test_argument_errors(tmp_path):
    kw = {"trials": 2, "out": tmp_path}
    run = run_of(4096)
    with pytest.raises(ValueError, match="scheduler"):
        ray_search(run, SPACE, scheduler="hyperband", **kw)
    with pytest.raises(ValueError, match="PBT mutates hparams"):
        ray_search(run, SearchSpace({"num_minibatches": Categorical((2, 4))}), scheduler="pbt",
                   **kw)  # fmt: skip
    with pytest.raises(ValueError, match="distinct"):
        ray_search(run, SPACE, scheduler="asha", tuning_seeds=[0, 0], **kw)
    with pytest.raises(ValueError, match="budget"):
        ray_search(run_of(0), SPACE, scheduler="asha", **kw)
    teacher = {"name": "alp_gmm", "settings": {"task_space": "pendulum_dynamics"}}
    with pytest.raises(ValueError, match="default resets"):
        ray_search({"env": "Pendulum-v1", "agent": "ppo", "reset_strategy": teacher}, SPACE,
                   scheduler="asha", **kw)  # fmt: skip


def test_hyperparam_mutations_follow_the_space():
    pytest.importorskip("ray")
    from ray.tune.search.sample import Float as RayFloat
    from ray.tune.search.sample import Integer as RayInt

    from accelrl.autotune.ray_tune import hyperparam_mutations

    space = SPACE.updated({"vf_coef": Float(0.1, 1.0), "ent_coef": Categorical((0.01, 0.0))})
    m = hyperparam_mutations(
        space.updated({"max_grad_norm": Int(1, 5)}), HP + ("vf_coef", "max_grad_norm")
    )
    assert set(m) == set(HP) | {"vf_coef", "max_grad_norm"}  # never the config dimension
    assert isinstance(m["learning_rate"], RayFloat) and (
        m["learning_rate"].lower, m["learning_rate"].upper) == (1e-4, 1e-2)  # fmt: skip
    assert isinstance(m["max_grad_norm"], RayInt) and m["max_grad_norm"].upper == 6  # exclusive
    assert m["ent_coef"] == [0.0, 0.01]  # numeric choices sorted: a shift is to a neighbour
    rng = np.random.default_rng(1)
    for _ in range(200):  # resamples land in the space (Ray's log-uniform included)
        assert space["learning_rate"].contains(m["learning_rate"].sample(None, random_state=rng))


# ----------------------------------------------------------------------------------------------
# Slow: real searches on a local Ray instance

BUDGET = 8 * 32 * 16  # CartPole's default 8 envs x 32 steps: 16 updates per seed
SEGMENTS = 8  # 8 reports of 512 env steps


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A 2-CPU Ray instance for this module; workers share a JAX compilation cache in a temp
    folder, so the second search loads the programs the first compiled."""
    ray = pytest.importorskip("ray")
    cache = tmp_path_factory.mktemp("xdg_cache")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"XDG_CACHE_HOME": str(cache), "ACCELRL_NO_COMPILE_CACHE": "0"}},
    )
    yield ray
    ray.shutdown()


def draws(space, n, seed=0):
    from accelrl.agents import build
    from accelrl.autotune.spaces import values_to_json

    _, config, _ = build("CartPole-v1", "ppo", {"total_timesteps": BUDGET})
    rng = np.random.default_rng(seed)
    return [values_to_json(v) for v in space.sample(rng, n, agent="ppo", base_config=config)]


@pytest.mark.slow
def test_asha_stops_some_trials_early(local_ray, tmp_path):
    """Budget: ~100 s here (Ray start, one PPO program compiled by each of the 2 workers, 6
    trials x 2 seeds x 4096 steps). With 6 trials and reduction factor 2, a run in which no
    trial falls below a rung's median has probability well under 1%."""
    space = SearchSpace({"learning_rate": Float(1e-6, 3e-2, log=True)})
    lines = []
    rows = ray_search(
        run_of(BUDGET), space, scheduler="asha", trials=6, out=tmp_path,
        tuning_seeds=(0, 1), segments=SEGMENTS, reduction_factor=2, log=lines.append,
    )  # fmt: skip
    assert [r["trial_id"] for r in rows] == list(range(6))
    assert read_rows(tmp_path / "trials.jsonl") == {r["trial_id"]: r for r in rows}
    # each Ray trial is recorded with the configuration it was drawn with (ASHA changes none)
    assert [r["config"] for r in rows] == draws(space, 6)
    stopped = [r for r in rows if r["status"] == "stopped"]
    full = [r for r in rows if r["status"] == "ok"]
    assert stopped and full, [(r["status"], r["env_steps"]) for r in rows]
    assert all(r["env_steps"] < BUDGET and r["env_steps"] % 512 == 0 for r in stopped)
    assert all(r["env_steps"] == BUDGET for r in full)
    for r in stopped + full:
        assert r["seeds"] == [0, 1] and r["score"] == pytest.approx(np.mean(r["seed_scores"]))
        assert math.isfinite(r["score"]) and r["score"] > 5  # CartPole returns are >= ~9
    assert len(lines) == 7  # one per trial, one summary


@pytest.mark.slow
def test_pbt_exploits_and_keeps_mutations_in_bounds(local_ray, tmp_path):
    """Through :func:`ray_study` (the retest on test seeds and the report included).

    Budget: ~90 s here (programs loaded from the cache the ASHA test filled; 4 trials on 2
    CPUs, so PBT pauses and resumes trials from checkpoints, and exploits). Narrow ranges make
    Ray's x1.2 / x0.8 perturbations leave the space often, so clipping is exercised."""
    space = SearchSpace(
        {"learning_rate": Float(2e-3, 1e-2, log=True), "ent_coef": Float(0.0, 0.02)}
    )
    from accelrl.autotune.ray_tune import RaySettings, ray_study
    from accelrl.autotune.tuners import StudySpec

    result = ray_study(
        RaySettings(scheduler="pbt", trials=4, segments=SEGMENTS, perturbation_interval=512),
        StudySpec(RunSpec("CartPole-v1", "ppo", config={"total_timesteps": BUDGET}), space,
                  tuning_seeds=(0, 1), test_seeds=(2, 3), bootstrap_reps=200),
        tmp_path,
    )  # fmt: skip
    rows = result.rows
    assert [r["trial_id"] for r in rows] == [0, 1, 2, 3]
    # the study's last step: the incumbent's schedule replayed on the test seeds, reported
    inc = json.loads((tmp_path / "incumbent.json").read_text())
    assert inc["method"] == "ray_pbt" and inc["schedule"] and inc["test"]["seeds"] == [2, 3]
    assert inc["test"]["incumbent"]["scores"] is not None
    assert (tmp_path / "pbt_schedules.png").exists() and (tmp_path / "report.md").exists()
    assert [r["initial_config"] for r in rows] == draws(space, 4)
    assert all(r["status"] == "ok" and r["env_steps"] == BUDGET for r in rows), rows
    for r in rows:
        steps = [s for s, _ in r["schedule"]]
        assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] < BUDGET
        assert r["schedule"][-1][1] == r["config"]
        for _, values in r["schedule"]:
            assert in_space(space, values), r["schedule"]
    # at least one trial exploited another (its lineage then starts from another draw or
    # changes values on the way)
    exploited = [r for r in rows if len(r["schedule"]) > 1 or r["config"] != r["initial_config"]]
    assert exploited, rows
