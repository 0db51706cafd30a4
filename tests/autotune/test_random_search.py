"""Random search: grouping by config values, scoring, the run folder and resume, diverging
configurations, the optimum of a synthetic objective, and (slow) a real CartPole PPO search."""

import json
import math

import numpy as np
import pytest

from accelrl.agents.build import make_spec
from accelrl.agents.ppo import PPOConfig, PPOHparams
from accelrl.agents.spec import RunSpec
from accelrl.autotune.random_search import (
    GroupOutcome,
    RandomSearchSettings,
    RunnerBackend,
    Trial,
    append_row,
    final_return_scores,
    group_trials,
    random_search,
    read_rows,
    trial_score,
)
from accelrl.autotune.spaces import Categorical, Float, SearchSpace
from accelrl.autotune.tuners import StudySpec

CARTPOLE = ("CartPole-v1", "ppo")
CP = RunSpec(*CARTPOLE)

SPACE = SearchSpace(
    {
        "learning_rate": Float(1e-6, 0.1, log=True),
        "gae_lambda": Float(0.8, 0.9999),
        "num_minibatches": Categorical((1, 2, 3, 4, 8)),  # 3 never divides 8 * 32: rejected
    }
)


def objective(v):
    """Known optimum 0.5 at learning_rate 1e-3, gae_lambda 0.95, num_minibatches 4."""
    return (
        -((math.log10(v["learning_rate"]) + 3) ** 2)
        - 25 * (v["gae_lambda"] - 0.95) ** 2
        + (0.5 if v["num_minibatches"] == 4 else 0.0)
    )


class Synthetic:
    """A backend whose 'training' is :func:`objective` plus small per-seed noise; it records
    every group it is asked to train, as the runner backend would compile one program each."""

    def __init__(self):
        self.base_config = PPOConfig(num_envs=8, num_steps=32)
        self.calls = []

    def defaults(self, names):
        c, h = self.base_config, PPOHparams()
        return {n: getattr(c, n) if hasattr(c, n) else getattr(h, n) for n in names}

    def _scores(self, config_values, settings, seeds, offset):
        return np.array(
            [
                [
                    objective({**config_values, **s}) + 0.01 * math.sin(seed + offset)
                    for seed in seeds
                ]
                for s in settings
            ]
        )

    def train(self, config_values, settings, seeds):
        self.calls.append((dict(config_values), [dict(s) for s in settings], tuple(seeds)))
        return GroupOutcome(
            self._scores(config_values, settings, seeds, 0), [None] * len(settings), 256
        )

    def test(self, config_values, settings, seeds, schedules=None):
        assert schedules is None or not any(schedules)  # random search has no schedules
        self.calls.append(("test", dict(config_values), len(settings), tuple(seeds)))
        return self._scores(config_values, settings, seeds, 100), [None] * len(settings)

    def describe(self, values):
        return dict(values)


def test_group_trials_keys_on_config_values_only():
    trials = [
        Trial(0, {"lr": 0.1, "nm": 2}),
        Trial(1, {"lr": 0.2, "nm": 4}),
        Trial(2, {"lr": 0.3, "nm": 2}),
        Trial(3, {"lr": 0.4, "nm": 4}),
        Trial(4, {"lr": 0.5, "nm": 1}),
    ]
    groups = group_trials(trials, ["nm"])
    assert [(g, [t.trial_id for t in ts]) for g, ts in groups] == [
        ({"nm": 2}, [0, 2]),
        ({"nm": 4}, [1, 3]),
        ({"nm": 1}, [4]),
    ]
    assert len(group_trials(trials, [])) == 1  # hparams-only space: one program


def test_scores_follow_the_runners_setting_major_member_order():
    # 2 settings x 3 seeds, 10 updates; member i*3+j = setting i on seed j
    r = np.full((6, 10), np.nan, np.float32)
    for i in range(2):
        for j in range(3):
            r[i * 3 + j, -1] = 100 * i + j
    np.testing.assert_array_equal(final_return_scores(r, 2, 3), [[0, 1, 2], [100, 101, 102]])
    # a window of 3 averages the finite values; a member without an episode has no score
    r[0, -3:] = [1.0, np.nan, 3.0]
    r[4, :] = np.nan
    s = final_return_scores(r, 2, 3, score_updates=3)
    assert s[0, 0] == 2.0 and np.isnan(s[1, 1])
    assert trial_score(s[0]) == pytest.approx(5 / 3) and np.isnan(trial_score(s[1]))
    with pytest.raises(ValueError, match="must be"):
        final_return_scores(r, 3, 3)


def test_synthetic_objective_optimum_found_within_200_trials(tmp_path):
    """Budget: 200 trials x 2 tuning seeds. The optimum region (objective >= 0.25 of the
    maximum 0.5) covers about 3% of the space, so 200 draws miss it with probability ~0.2%."""
    backend = Synthetic()
    result = random_search(
        RandomSearchSettings(trials=200),
        StudySpec(CP, SPACE, tuning_seeds=(0, 1), test_seeds=(2, 3, 4), backend=backend,
                  bootstrap_reps=500),
        tmp_path,
    )  # fmt: skip
    inc = result.incumbent
    assert objective(inc["config"]) >= 0.25
    assert inc["config"]["num_minibatches"] == 4
    assert abs(math.log10(inc["config"]["learning_rate"]) + 3) < 0.5
    assert inc["tuning"]["score"] == max(r["score"] for r in result.rows)
    # one training call (one program) per distinct config value, every member on both seeds
    train_calls = [c for c in backend.calls if c[0] != "test"]
    assert sorted(c[0]["num_minibatches"] for c in train_calls) == [1, 2, 4, 8]
    assert sum(len(c[1]) for c in train_calls) == 200 and all(c[2] == (0, 1) for c in train_calls)
    assert all(set(s) == {"learning_rate", "gae_lambda"} for c in train_calls for s in c[1])
    # the test phase: incumbent (num_minibatches 4) and default (4, PPOConfig's) share a program
    test_calls = [c for c in backend.calls if c[0] == "test"]
    assert test_calls == [("test", {"num_minibatches": 4}, 2, (2, 3, 4))]
    assert inc["test"]["incumbent"]["iqm"] > inc["test"]["default"]["iqm"]


def test_run_folder_rows_incumbent_and_resume(tmp_path):
    backend = Synthetic()
    spec = StudySpec(CP, SPACE, tuning_seeds=(0, 1), test_seeds=(5,), bootstrap_reps=200)
    first = random_search(RandomSearchSettings(trials=6), spec.replace(backend=backend), tmp_path)
    lines = (tmp_path / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 6
    rows = [json.loads(x) for x in lines]
    assert sorted(r["trial_id"] for r in rows) == list(range(6))
    for r in rows:
        assert set(r) >= {"trial_id", "config", "seeds", "score", "status", "group"}
        assert r["seeds"] == [0, 1] and r["status"] == "ok"
        assert r["score"] == pytest.approx(np.mean(r["seed_scores"]))
        assert r["config"]["num_minibatches"] == r["group"]["num_minibatches"]
    inc = json.loads((tmp_path / "incumbent.json").read_text())
    assert inc == json.loads(json.dumps(first.incumbent))
    assert inc["test"]["seeds"] == [5] and "default" in inc["test"]
    assert "| incumbent (trial" in (tmp_path / "report.md").read_text()

    # resume with more trials: the 6 finished ones are neither repeated nor lost, and a torn
    # last line (a crash mid-write) is skipped
    with open(tmp_path / "trials.jsonl", "a") as f:
        f.write('{"trial_id": 7, "con')
    backend2 = Synthetic()
    with pytest.warns(UserWarning, match="torn last line"):
        second = random_search(RandomSearchSettings(trials=9), spec.replace(backend=backend2),
                               tmp_path)  # fmt: skip
    trained = sum(len(c[1]) for c in backend2.calls if c[0] != "test")
    assert trained == 3
    assert [r["trial_id"] for r in second.rows] == list(range(9))
    assert [r["config"] for r in second.rows[:6]] == [r["config"] for r in first.rows]

    # the same folder with other settings is refused
    with pytest.raises(ValueError, match="other settings.*seed"):
        random_search(RandomSearchSettings(trials=9, seed=1), spec.replace(backend=Synthetic()),
                      tmp_path)  # fmt: skip


def test_overlapping_seeds_and_bad_spaces_are_refused_before_anything_runs(tmp_path):
    backend = Synthetic()
    with pytest.raises(ValueError, match="overlap"):
        random_search(RandomSearchSettings(trials=2), StudySpec(CP, SPACE, tuning_seeds=(0, 1),
                      test_seeds=(1, 2), backend=backend), tmp_path / "a")  # fmt: skip
    with pytest.raises(ValueError, match="Did you mean: gamma"):
        random_search(RandomSearchSettings(trials=2),
                      StudySpec(CP, SearchSpace({"gama": Float(0.9, 0.99)}), backend=backend),
                      tmp_path / "b")  # fmt: skip
    assert backend.calls == [] and not (tmp_path / "a").exists()


def test_rows_are_appended_whole_and_deduplicated(tmp_path):
    path = tmp_path / "trials.jsonl"
    append_row(path, {"trial_id": 1, "score": 1.0})
    append_row(path, {"trial_id": 0, "score": 2.0})
    append_row(path, {"trial_id": 1, "score": 3.0})  # a duplicate keeps the first row
    assert read_rows(path) == {1: {"trial_id": 1, "score": 1.0}, 0: {"trial_id": 0, "score": 2.0}}
    with pytest.raises(ValueError):
        append_row(path, {"trial_id": 2, "score": float("nan")})  # rows are strict JSON
    path.write_text('garbage\n{"trial_id": 0}\n')
    with pytest.raises(ValueError, match="line 1 is not a trial row"):
        read_rows(path)


class FakeState:
    def __init__(self, n_members, updates):
        self.update_step = np.full(n_members, updates, np.int32)


class FakeResult:
    def __init__(self, n_members, updates=4):
        self.state = FakeState(n_members, updates)
        self.metrics = {
            "episode_return": np.ones((n_members, updates), np.float32),
            "env_steps": np.full((n_members, updates), 128),
        }


class FakeAgent:
    steps_per_update, num_updates = 32, 4


def test_a_diverging_configuration_loses_only_its_own_score(monkeypatch):
    """The runner marks a member whose losses turn non-finite as failed and trains the others
    (``nan_policy="mark"``): one program per chunk, only the diverging configuration (on any
    seed) loses its score."""
    from accelrl.agents import runner as runner_mod
    from accelrl.envs.strategies import strategy

    programs = []

    class FakeRunner:
        def __init__(self, agent, seeds, hparams, **kw):
            assert kw["nan_policy"] == "mark"
            self.n = len(hparams) * len(seeds)
            self.hparams = hparams
            self.seeds = seeds
            self.failed = np.zeros(self.n, bool)
            programs.append(len(hparams))

        def mark_failed(self, failed):
            self.failed = np.asarray(failed, bool).copy()

        def train(self, state=None, metrics=None, until=None):
            assert until == FakeAgent.num_updates  # the whole budget
            # seed 1 of every configuration with a huge learning rate diverges
            self.failed |= np.array(
                [h["learning_rate"] > 1 and j == 1 for h in self.hparams for j in range(2)]
            )
            return FakeResult(self.n)

    monkeypatch.setattr(runner_mod, "Runner", FakeRunner)
    backend = object.__new__(RunnerBackend)  # no environment: _build and hparams are stubbed
    backend.max_members, backend.segments, backend.progress, backend.score_updates = (
        None,
        1,
        False,
        None,
    )
    backend.budget = FakeAgent.steps_per_update * FakeAgent.num_updates
    backend._build = lambda values: (FakeAgent(), None, None)
    backend.hparams = lambda base, values: dict(values)
    backend.strategy_entry, backend._scorer = strategy("default"), None
    settings = [{"learning_rate": lr} for lr in (0.1, 0.2, 5.0, 0.3, 0.4)]
    out = backend.train({}, settings, [0, 1])
    assert out.errors[2] == "non-finite training metrics on seed(s) [1]"
    assert out.errors[:2] + out.errors[3:] == [None] * 4
    assert (
        np.isnan(out.seed_scores[2]).all() and np.isfinite(np.delete(out.seed_scores, 2, 0)).all()
    )
    assert programs == [5]  # one program, no reruns
    # chunks: max_members bounds a program's members
    programs.clear()
    backend.max_members = 4
    backend.train({}, settings[:2] + settings[3:], [0, 1])
    assert programs == [2, 2]


@pytest.mark.slow  # budget: ~60 s here (one training and one evaluation program compiled)
def test_tiny_real_random_search_on_cartpole(tmp_path):
    """2 trials x 2 tuning seeds, 256 env steps each (8 updates of 4 envs x 8 steps), then the
    incumbent and the default on 2 test seeds with 4 evaluation episodes each. The default
    shares the trials' config values, so the test grid (2 configurations x 2 seeds) reuses the
    tuning grid's compiled program: one training program and one evaluation program in all."""
    space = SearchSpace(
        {"learning_rate": Float(1e-4, 1e-2, log=True), "num_minibatches": Categorical((2,))}
    )
    overrides = {"num_envs": 4, "num_steps": 8, "update_epochs": 1, "num_minibatches": 2}
    result = random_search(
        RandomSearchSettings(trials=2),
        StudySpec(make_spec(*CARTPOLE, {**overrides, "total_timesteps": 256}), space,
                  tuning_seeds=(0, 1), test_seeds=(2, 3), eval_episodes=4, bootstrap_reps=1000),
        tmp_path,
    )  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert [r["trial_id"] for r in rows] == [0, 1]
    assert all(r["status"] == "ok" and r["group_size"] == 2 and r["env_steps"] == 256 for r in rows)
    inc = json.loads((tmp_path / "incumbent.json").read_text())
    assert inc["full"]["config"]["total_timesteps"] == 256
    assert inc["full"]["config"]["num_minibatches"] == 2
    for label in ("incumbent", "default"):
        entry = inc["test"][label]
        assert len(entry["scores"]) == 2 and entry["ci"][0] <= entry["iqm"] <= entry["ci"][1]
        assert all(8 <= s[0] <= 500 for s in entry["scores"])  # CartPole returns
    assert result.incumbent["trial_id"] in (0, 1)
    assert inc["test"]["default"]["config"]["num_minibatches"] == 2


def test_env_dimensions_are_named_as_the_spec_names_them(tmp_path):
    """``env_params.<field>`` and ``env.<kwarg>`` are config dimensions (they group programs);
    a misspelt one is refused with close matches, before anything is written."""
    run = make_spec(*CARTPOLE, {"num_envs": 4, "num_steps": 8, "total_timesteps": 256})
    backend_spec = StudySpec(
        run, SearchSpace({"env_params.max_step_in_episode": Categorical((100, 200))})
    )
    with pytest.raises(ValueError, match="Did you mean: env_params.max_steps_in_episode"):
        random_search(RandomSearchSettings(trials=2), backend_spec, tmp_path / "a")
    assert not (tmp_path / "a" / "search.json").exists()
    from accelrl.autotune.backend import RunnerBackend

    backend = RunnerBackend(run)
    assert "env_params.max_steps_in_episode" in backend.env_dims()
    space = SearchSpace({"env_params.max_steps_in_episode": Categorical((100, 200)),
                         "learning_rate": Float(1e-4, 1e-2, log=True)})  # fmt: skip
    assert space.split("ppo", None, backend.env_dims()) == (
        ("env_params.max_steps_in_episode",),
        ("learning_rate",),
    )
    assert backend.defaults(["env_params.max_steps_in_episode"]) == {
        "env_params.max_steps_in_episode": 500
    }
    agent, _, _ = backend._build({"env_params.max_steps_in_episode": 100})
    assert int(agent.env_params.max_steps_in_episode) == 100  # the group's params
    full = backend.describe({"env_params.max_steps_in_episode": 100, "learning_rate": 1e-3})
    assert full["env_params"] == {"max_steps_in_episode": 100}
