"""Hyperband, PBT and TPE on a synthetic objective (tests/autotune/synthetic.py): the optimum
region within stated budgets, rungs that continue rather than restart, PBT's exploit and
explore, resume without lost or repeated trials; and (default run, one tiny compile) a real
PBT exploit that copies parameters and optimiser state."""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from accelrl.agents.build import make_spec
from accelrl.agents.spec import RunSpec
from accelrl.autotune.hyperband import HyperbandSettings, bracket_sizes, hyperband, rung_plan
from accelrl.autotune.pbt import PBTSettings, pbt, perturb, truncation_pairs
from accelrl.autotune.spaces import Categorical, Float, Int, SearchSpace
from accelrl.autotune.study import read_rows
from accelrl.autotune.tuners import StudySpec

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make synthetic importable
from synthetic import HP_SPACE, SPACE, SyntheticBackend, quality  # noqa: E402


def spec(space, backend, budget=None, **kw):
    """The tests' study: CartPole PPO on a synthetic objective, tuning seeds 0-1, test 2-3."""
    run = RunSpec("CartPole-v1", "ppo", config={"total_timesteps": budget} if budget else {})
    return StudySpec(run, space, backend=backend, tuning_seeds=(0, 1), test_seeds=(2, 3),
                     bootstrap_reps=200, **kw)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Hyperband


def test_bracket_sizes_follow_hyperbands_proportions_and_sum_to_trials():
    assert bracket_sizes(17, 3, 3) == [(2, 9), (1, 5), (0, 3)]  # Hyperband's own n_s
    for trials in (3, 10, 27, 100):
        plan = bracket_sizes(trials, 3, 3)
        assert sum(n for _, n in plan) == trials and min(n for _, n in plan) >= 1
    assert bracket_sizes(12, 3, 3, successive_halving=True) == [(2, 12)]
    assert rung_plan(9, 2, 3, 900) == [(9, 100), (3, 300), (1, 900)]
    with pytest.raises(ValueError, match="at least one trial per bracket"):
        bracket_sizes(2, 3, 3)
    with pytest.raises(ValueError, match="eta"):
        bracket_sizes(10, 3, 1)


def test_hyperband_finds_the_optimum_region_and_continues_promoted_runs(tmp_path):
    """Budget: 60 configurations, 3 brackets (eta 3), 2 seeds; the optimum region
    (quality >= 0.5) holds about 4% of the space."""
    backend = SyntheticBackend(budget=900)
    result = hyperband(HyperbandSettings(trials=60), spec(SPACE, backend), tmp_path)
    rows = read_rows(tmp_path / "trials.jsonl")
    assert sorted(rows) == list(range(60))  # every trial exactly once
    inc = result.incumbent
    assert quality(inc["config"]) >= 0.5
    full = [r for r in rows.values() if r["env_steps"] == 900]
    stopped = [r for r in rows.values() if r["status"] == "stopped"]
    assert stopped and all(r["env_steps"] < 900 for r in stopped)
    assert inc["trial_id"] in {r["trial_id"] for r in full}
    # promoted runs continue: one run per group per bracket, never reopened at a later rung
    assert len([run for run in backend.runs if run.seeds == [0, 1]]) == len(
        {(r["bracket"], r["config"]["num_minibatches"]) for r in rows.values()}
    )
    # and cost less than training every configuration to the whole budget
    assert backend.steps_trained < 0.5 * 60 * 2 * 900
    # rung scores are recorded and grow along a row's rungs (progress accumulates)
    r = max(full, key=lambda r: len(r["rungs"]))
    assert len(r["rungs"]) == 3 and r["rungs"][0]["score"] < r["rungs"][-1]["score"]
    assert (tmp_path / "incumbent_over_budget.png").exists()
    assert "Hyperband" in (tmp_path / "report.md").read_text()


def test_hyperband_resume_keeps_rows_and_reruns_only_unfinished_brackets(tmp_path):
    hyperband(HyperbandSettings(trials=17), spec(SPACE, SyntheticBackend(900)), tmp_path)
    path = tmp_path / "trials.jsonl"
    lines = path.read_text().splitlines()
    full = {json.loads(x)["trial_id"]: json.loads(x) for x in lines}
    # a kill in the middle of bracket 1 (trials 9-13): keep the rows written before it
    kept = [x for x in lines if json.loads(x)["trial_id"] < 9 or json.loads(x)["trial_id"] == 10]
    path.write_text("\n".join(kept) + "\n")
    backend = SyntheticBackend(900)
    hyperband(HyperbandSettings(trials=17), spec(SPACE, backend), tmp_path)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(r["trial_id"] for r in rows) == list(range(17))  # nothing lost, no repeats
    assert {r["trial_id"]: r for r in rows} == full  # deterministic: the same rows
    # bracket 2 (trials 0-8) was not trained again
    trained = {tuple(sorted(v["learning_rate"] for v in run.values)) for run in backend.runs}
    assert not any(full[0]["config"]["learning_rate"] in t for t in trained)
    with pytest.raises(ValueError, match="other settings"):
        hyperband(HyperbandSettings(trials=17, eta=2), spec(SPACE, SyntheticBackend(900)),
                  tmp_path)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# PBT


def test_perturb_stays_within_bounds_and_moves_by_the_factors():
    space = SearchSpace({"lr": Float(1e-4, 1e-2, log=True), "n": Int(1, 5),
                         "c": Categorical((1, 2, 4)), "g": Float(0.9, 0.99)})  # fmt: skip
    rng = np.random.default_rng(0)
    v = {"lr": 9e-3, "n": 5, "c": 4, "g": 0.985}
    seen_factor = set()
    for _ in range(500):
        new = perturb(v, space, rng)
        assert all(space[k].contains(new[k]) for k in v), new
        if new["lr"] != 1e-2:  # not clipped: perturbed by a factor or resampled
            ratio = new["lr"] / v["lr"]
            if math.isclose(ratio, 0.8) or math.isclose(ratio, 1.2):
                seen_factor.add(round(ratio, 1))
    assert seen_factor == {0.8}  # 1.2 x 9e-3 leaves the range: clipped to 1e-2
    # without resampling a float moves by exactly 0.8 or 1.2, clipped at the bounds
    moved = {perturb({"g": 0.95}, space, rng, resample_probability=0.0)["g"] for _ in range(50)}
    assert moved == {0.9, 0.99}  # 0.76 and 1.14 both leave [0.9, 0.99]
    wide = SearchSpace({"x": Float(0.1, 10.0), "c": Categorical((1, 2, 4))})
    moved = {perturb({"x": 1.0}, wide, rng, resample_probability=0.0)["x"] for _ in range(50)}
    assert moved == {0.8, 1.2}
    steps = {perturb({"c": 2}, wide, rng, resample_probability=0.0)["c"] for _ in range(50)}
    assert steps == {1, 4}  # a neighbouring choice
    # the bounds check is not vacuous: an unclipped perturbation would fail it
    assert not space["g"].contains(0.95 * 1.2)


def test_truncation_pairs_copy_top_quartile_into_bottom_quartile():
    rng = np.random.default_rng(0)
    scores = [5.0, 1.0, float("nan"), 7.0, 3.0, 2.0, 8.0, 6.0]
    pairs = truncation_pairs(scores, rng)
    assert sorted(d for d, _ in pairs) == [1, 2]  # NaN counts as the lowest
    assert {s for _, s in pairs} <= {3, 6}
    assert truncation_pairs([1.0, 2.0, 3.0], rng) == []  # no quartile of 3


def test_pbt_lifts_its_population_above_the_same_population_without_exploits(tmp_path):
    """Budget: population 16 x 2 seeds, 10 intervals, synthetic objective. Without exploits
    each member ends at its own quality; with them the bottom quartiles keep switching to
    copies of the top, so the population's median ends well above."""
    backend = SyntheticBackend(1000)
    result = pbt(PBTSettings(population=16, intervals=10), spec(HP_SPACE, backend),
                 tmp_path / "pbt")  # fmt: skip
    lone = pbt(PBTSettings(population=16, intervals=1), spec(HP_SPACE, SyntheticBackend(1000)),
               tmp_path / "lone")  # fmt: skip
    assert result.incumbent["tuning"]["score"] >= lone.incumbent["tuning"]["score"] - 1e-9
    median = lambda res: float(np.median([r["score"] for r in res.rows]))  # noqa: E731
    assert median(result) > median(lone) + 0.1, (median(result), median(lone))
    run = backend.runs[0]
    assert len(run.exploited) == 9 * 4  # 9 exploit points x a quartile of 16
    rows = read_rows(tmp_path / "pbt" / "trials.jsonl")
    for r in rows.values():  # schedules start at step 0 and stay in the space
        assert r["schedule"][0][0] == 0 and r["config"] == r["schedule"][0][1]
        assert all(HP_SPACE[k].contains(v) for _, vals in r["schedule"] for k, v in vals.items())
        steps = [st for st, _ in r["schedule"]]
        assert steps == sorted(steps)
    assert (tmp_path / "pbt" / "pbt_schedules.png").exists()
    # the incumbent's schedule was replayed on the test seeds
    test_run = backend.runs[-1]
    assert test_run.seeds == [2, 3] and test_run.steps == 1000


def test_pbt_warns_that_config_dimensions_stay_fixed(tmp_path):
    with pytest.warns(UserWarning, match="num_minibatches"):
        pbt(PBTSettings(population=4, intervals=2), spec(SPACE, SyntheticBackend(100)), tmp_path)


def test_real_pbt_exploit_copies_parameters_and_optimiser_state():
    """Budget: one tiny CartPole PPO program (4 settings x 1 seed), two updates."""
    import jax

    from accelrl.autotune.study import RunnerBackend

    backend = RunnerBackend(make_spec("CartPole-v1", "ppo",
                                      {"num_envs": 4, "num_steps": 64, "total_timesteps": 512}))  # fmt: skip
    settings = [{"learning_rate": lr} for lr in (1e-3, 3e-3, 1e-2, 3e-2)]
    run = backend.open({}, settings, [0])
    run.advance(256)
    before = run.state
    run.exploit(0, 3)
    after = run.state
    leaves = jax.tree_util.tree_leaves_with_path
    for (path, b), (_, a) in zip(leaves(before.params), leaves(after.params), strict=True):
        np.testing.assert_array_equal(a[0], b[3], err_msg=str(path))
        np.testing.assert_array_equal(a[1], b[1])
    for b, a in zip(
        jax.tree.leaves(before.opt_state), jax.tree.leaves(after.opt_state), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b)[3])
    key_data = (
        jax.random.key_data
        if jax.dtypes.issubdtype(after.key.dtype, jax.dtypes.prng_key)
        else np.asarray
    )
    assert not np.array_equal(key_data(after.key)[0], key_data(after.key)[3])  # a new RNG stream
    assert run.values[0] == settings[3]
    run.set_values(0, {"learning_rate": 5e-3})
    out = run.advance(512)
    assert out.env_steps == 512 and np.isfinite(out.seed_scores).all()
    np.testing.assert_allclose(float(run.runner.hparams.learning_rate[0]), 5e-3, rtol=1e-6)


@pytest.mark.slow
def test_pbt_exploit_copies_the_teachers_state_and_settings():
    """A population differing in ALP-GMM's ``random_task_ratio`` (4 settings x 1 seed, PPO
    on pendulum_dynamics) runs in one program; after an exploit the receiving member's
    teacher state (history, ALPs, fitted mixture, ``random_task_ratio``) equals the donor's,
    and explore's new value lands in the state without a recompile.

    Slow (budget 60 s: one compilation of PPO with the teacher's refit)."""
    import jax

    from accelrl.agents.runner import seed_vmapped
    from accelrl.agents.spec import StrategySpec
    from accelrl.autotune.study import RunnerBackend

    teacher = StrategySpec("alp_gmm", {"task_space": "pendulum_dynamics", "fit_rate": 8,
                                       "ks": [2], "history": 64})  # fmt: skip
    backend = RunnerBackend(make_spec(
        "Pendulum-v1", "ppo", {"num_envs": 8, "num_steps": 100, "num_minibatches": 1,
                               "update_epochs": 1, "total_timesteps": 2400},
        reset_strategy=teacher))  # fmt: skip
    settings = [{"teacher.random_task_ratio": r} for r in (0.1, 0.3, 0.6, 0.9)]
    run = backend.open({}, settings, [0])
    run.advance(1600)
    compiled = seed_vmapped(run.agent)[0]._cache_size()
    strat = run.agent.env.strategy_state
    before = strat(run.state.env_state)
    assert np.all(np.asarray(before.refits) >= 1)  # a mixture was fitted
    np.testing.assert_allclose(before.random_task_ratio, [0.1, 0.3, 0.6, 0.9], rtol=1e-6)
    run.exploit(0, 3)
    after = strat(run.state.env_state)
    for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b)[3])
        np.testing.assert_array_equal(np.asarray(a)[1], np.asarray(b)[1])
    assert run.values[0] == settings[3]
    run.set_values(0, {"teacher.random_task_ratio": 0.45})
    np.testing.assert_allclose(
        strat(run.state.env_state).random_task_ratio, [0.45, 0.3, 0.6, 0.9], rtol=1e-6
    )
    out = run.advance(2400)
    assert out.env_steps == 2400 and np.isfinite(out.seed_scores).all()
    assert seed_vmapped(run.agent)[0]._cache_size() == compiled  # no new program
    with pytest.raises(ValueError, match="random_task_ratio must be in"):
        run.set_values(1, {"teacher.random_task_ratio": 1.5})


# ---------------------------------------------------------------------------------------------
# TPE (Optuna)

optuna = pytest.importorskip("optuna")
from accelrl.autotune.tpe import TPESettings, tpe  # noqa: E402


def test_tpe_finds_the_optimum_region(tmp_path):
    """Budget: 40 trials (8 random startup, batches of 4) x 2 seeds, synthetic objective."""
    result = tpe(TPESettings(trials=40), spec(SPACE, SyntheticBackend(100)), tmp_path)
    assert quality(result.incumbent["config"]) >= 0.8
    rows = read_rows(tmp_path / "trials.jsonl")
    assert sorted(rows) == sorted(r["trial_id"] for r in result.rows) and len(rows) == 40
    study = optuna.load_study(study_name="accelrl", storage=f"sqlite:///{tmp_path / 'study.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 40  # every row was told
    assert {t.number for t in complete} == set(rows)
    # TPE beats its random start: the last 16 trials score above the first 8 on average
    by_id = [rows[i]["score"] for i in sorted(rows)]
    assert np.mean(by_id[-16:]) > np.mean(by_id[:8])


class Killed(Exception):
    pass


class KilledAfter(SyntheticBackend):
    """Raises (a kill) after ``n`` groups were trained, after their rows were written."""

    def __init__(self, n):
        super().__init__(100)
        self.left = n

    def train(self, *a, **kw):
        if self.left == 0:
            raise Killed
        self.left -= 1
        return super().train(*a, **kw)


def test_tpe_resume_keeps_every_finished_trial_exactly_once(tmp_path):
    import subprocess

    from accelrl.autotune.study import append_row

    settings = TPESettings(trials=12, batch=4)
    with pytest.raises(Killed):
        tpe(settings, spec(HP_SPACE, KilledAfter(1)), tmp_path)
    assert len(read_rows(tmp_path / "trials.jsonl")) == 4
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.load_study(study_name="accelrl", storage=storage)
    running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 4  # asked in the second batch, killed before training
    # the kill happened in a process that is gone now...
    dead = subprocess.Popen(["true"])
    dead.wait()
    for t in running:
        storage.set_trial_user_attr(t._trial_id, "pid", dead.pid)
    # ...and one trial's row was written just before the kill, but never told
    append_row(
        tmp_path / "trials.jsonl",
        {
            "trial_id": running[0].number,
            "score": 0.25,
            "config": {},
            "seeds": [0, 1],
            "env_steps": 100,
        },
    )
    first = read_rows(tmp_path / "trials.jsonl")
    result = tpe(settings, spec(HP_SPACE, SyntheticBackend(100)), tmp_path)
    rows = read_rows(tmp_path / "trials.jsonl")
    assert len(rows) == 12 and len(result.rows) == 12  # trials counts rows across calls
    lines = (tmp_path / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 12  # no row written twice
    assert all(rows[i] == first[i] for i in first)  # finished trials kept as they were
    study = optuna.load_study(study_name="accelrl", storage=storage)
    by_number = {t.number: t for t in study.trials}
    assert by_number[running[0].number].value == 0.25  # told from its row
    assert all(by_number[t.number].state == optuna.trial.TrialState.FAIL for t in running[1:])
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    complete = {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete == set(rows)


def test_settle_leaves_a_live_workers_trial_alone_and_tolerates_lost_races(tmp_path):
    """A second worker starting on a shared study must not tell a trial its owner (alive on
    this host) is about to tell; whoever tells second is not an error (the CI race)."""
    import socket

    from accelrl.autotune.tpe import _tell, settle_interrupted

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    live, foreign = study.ask(), study.ask()
    live.set_user_attr("pid", os.getpid())
    live.set_user_attr("host", socket.gethostname())
    foreign.set_user_attr("pid", os.getpid())
    foreign.set_user_attr("host", "another-host")
    rows = {live.number: {"score": 1.0}, foreign.number: {"score": 2.0}}
    assert settle_interrupted(study, rows) == (1, 0)  # only the other host's trial, from its row
    states = {t.number: t.state for t in study.trials}
    assert states[live.number] == optuna.trial.TrialState.RUNNING
    _tell(study, live, 1.0)  # the owner tells its own trial
    _tell(study, foreign, 2.0)  # its owner comes second: no error
    _tell(study, foreign.number, None)  # nor a late FAIL from a settler
    assert [t.value for t in study.trials] == [1.0, 2.0]


@pytest.mark.slow  # budget: about 45 s on 2 cores (two processes importing accelrl)
def test_tpe_journal_storage_is_shared_by_two_processes(tmp_path):
    """Two processes on one journal file reach the target together, trial ids unique."""
    import subprocess
    import sys as _sys

    code = (
        "import sys; sys.path.insert(0, {here!r});"
        "from synthetic import SPACE, SyntheticBackend;"
        "from accelrl.autotune import StudySpec, TPESettings, tpe;"
        "tpe(TPESettings(trials=16, batch=2, storage='journal', seed={seed}),"
        " StudySpec({{'env': 'CartPole-v1', 'agent': 'ppo'}}, SPACE, backend=SyntheticBackend(100),"
        " tuning_seeds=(0, 1), test_seeds=(2, 3), bootstrap_reps=100), {out!r})"
    )
    procs = [
        subprocess.Popen(
            [
                _sys.executable,
                "-c",
                code.format(here=str(Path(__file__).parent), out=str(tmp_path), seed=s),
            ],
        )  # fmt: skip
        for s in (0, 1)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    rows = [json.loads(x) for x in (tmp_path / "trials.jsonl").read_text().splitlines()]
    ids = [r["trial_id"] for r in rows]
    assert len(ids) == len(set(ids)) and 16 <= len(ids) <= 18  # each stops at the target
    assert (tmp_path / "study.journal").exists()


def test_pbt_burn_in_defers_the_first_exploit(tmp_path):
    """No exploit before ``burn_in`` steps: every schedule change is at or after it."""
    backend = SyntheticBackend(1000)
    pbt(PBTSettings(population=8, intervals=10, burn_in=500), spec(HP_SPACE, backend),
        tmp_path / "burn")  # fmt: skip
    assert len(backend.runs[0].exploited) == 5 * 2  # points at 500..900 steps x 2 of 8
    rows = read_rows(tmp_path / "burn" / "trials.jsonl")
    changes = [st for r in rows.values() for st, _ in r["schedule"][1:]]
    assert changes and min(changes) >= 500
    none = SyntheticBackend(1000)
    pbt(PBTSettings(population=8, intervals=10, burn_in=1000), spec(HP_SPACE, none),
        tmp_path / "none")  # fmt: skip
    assert len(none.runs[0].exploited) == 0
    with pytest.raises(ValueError, match="burn_in"):
        PBTSettings(population=8, burn_in=-1)


# ---------------------------------------------------------------------------------------------
# The registry: a tuner is a settings class and run(settings, spec, out)


def test_a_tuner_is_one_registration_and_its_study_resumes_from_search_json(tmp_path):
    """A toy tuner (grid over learning_rate) registered here runs through the registry like the
    built-in ones: search.json is the spec and its settings, flat, and reads back into both."""
    import dataclasses

    from accelrl.autotune.study import open_study, trial_row
    from accelrl.autotune.tuners import register_tuner, tuner

    @dataclasses.dataclass(frozen=True)
    class GridSettings:
        points: tuple[float, ...] = (1e-4, 1e-3)

    def grid(settings, spec, out):
        study = open_study("toy_grid", settings, spec, out)
        values = [{"learning_rate": lr, "gae_lambda": 0.95} for lr in settings.points]
        outcome = study.backend.train({}, values, study.tuning_seeds)
        for i, (v, sc, err) in enumerate(zip(values, outcome.seed_scores, outcome.errors,
                                             strict=True)):  # fmt: skip
            study.record(trial_row(i, v, study.tuning_seeds, sc, err, outcome.env_steps))
        rows = study.rows()
        return study.conclude(rows, rows, "synthetic quality")

    register_tuner("toy_grid", GridSettings, grid, title="Toy grid")
    entry = tuner("toy_grid")
    result = entry.run(GridSettings(), spec(HP_SPACE, SyntheticBackend(100)), tmp_path)
    assert result.incumbent["config"]["learning_rate"] == 1e-3  # the synthetic optimum
    assert (tmp_path / "report.md").read_text().startswith("# Toy grid: ")  # its registered title
    record = json.loads((tmp_path / "search.json").read_text())
    assert record["method"] == "toy_grid" and record["points"] == [1e-4, 1e-3]
    assert entry.from_record(record) == GridSettings()
    read = StudySpec.from_record(record, HP_SPACE, backend=SyntheticBackend(100))
    assert read == spec(HP_SPACE, None, budget=100)  # the resolved budget; backend not compared
    with pytest.raises(ValueError, match="Did you mean: pbt"):
        tuner("pbtt")


def test_pbt_settings_round_trip_and_old_studies_without_burn_in_resume(tmp_path):
    from accelrl.autotune.folder import check_resume
    from accelrl.autotune.tuners import tuner

    entry = tuner("pbt")
    settings = PBTSettings(population=8, intervals=4, burn_in=0)
    record = entry.recorded(settings)
    assert record["trials"] == 8 and "population" not in record  # what --trials gives
    assert entry.from_record(record) == settings
    old = {"method": "pbt", "trials": 8, "intervals": 4}  # written before burn_in was kept
    (tmp_path / "search.json").write_text(json.dumps(old))
    check_resume(tmp_path, {**old, "burn_in": 0}, ())  # the value old studies ran with
    with pytest.raises(ValueError, match="burn_in differ"):
        check_resume(tmp_path, {**old, "burn_in": 500}, ())
