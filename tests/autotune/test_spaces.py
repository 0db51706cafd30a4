"""Search spaces: dimensions, the config/hparams split, validation, constrained sampling,
default spaces and ConfigSpace JSON (round trip, ConfigSpace's own reader, malformed files)."""

import json
import math

import numpy as np
import pytest

from accelrl.agents.ppo import PPOConfig
from accelrl.agents.sac import SACConfig
from accelrl.autotune.spaces import (
    Categorical,
    Float,
    Int,
    SearchSpace,
    SpaceFileError,
    config_problem,
    default_space,
    from_configspace_json,
    read_space,
    to_configspace_json,
    write_space,
)

CARTPOLE = PPOConfig(num_envs=8, num_steps=32, num_minibatches=1, update_epochs=20)  # batch 256


def test_dimensions_sample_inside_their_bounds_and_log_spreads_over_decades():
    rng = np.random.default_rng(0)
    f = Float(1e-6, 1e-2, log=True)
    xs = np.array([f.sample(rng) for _ in range(4000)])
    assert xs.min() >= 1e-6 and xs.max() <= 1e-2
    decades = np.histogram(np.log10(xs), bins=4, range=(-6, -2))[0]
    assert (
        decades.min() > 800
    )  # log-uniform: about 1000 per decade (uniform would be ~0 below 1e-3)
    i = Int(1, 10)
    ks = [i.sample(rng) for _ in range(2000)]
    assert set(ks) == set(range(1, 11)) and all(isinstance(k, int) for k in ks)
    li = Int(1, 1000, log=True)
    ks = np.array([li.sample(rng) for _ in range(4000)])
    assert ks.min() >= 1 and ks.max() <= 1000 and (ks < 10).mean() > 0.25  # ~1/3 below 10
    c = Categorical((1, 2, 4))
    assert {c.sample(rng) for _ in range(200)} == {1, 2, 4}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Float(1.0, 1.0), "low < high"),
        (lambda: Float(0.0, 1.0, log=True), "low > 0"),
        (lambda: Float(0.0, math.inf), "finite"),
        (lambda: Int(1.5, 3), "integer"),
        (lambda: Categorical(()), "at least one"),
        (lambda: Categorical((1, 1)), "distinct"),
        (lambda: Categorical(([],)), "choices must be"),
        (lambda: Categorical("abc"), "sequence"),
    ],
)
def test_bad_dimensions_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_categorical_keeps_bool_and_int_apart():
    c = Categorical((True, 1))
    assert c.contains(True) and c.contains(1) and not c.contains(2)
    assert Categorical(((64, 64), [32])).choices == ((64, 64), (32,))


def test_split_routes_config_and_hparams_fields():
    space = SearchSpace(
        {"learning_rate": Float(1e-5, 1e-2, log=True), "num_minibatches": Categorical((1, 2))}
    )
    assert space.split("ppo") == (("num_minibatches",), ("learning_rate",))
    sac = SearchSpace({"batch_size": Categorical((64,)), "gamma": Float(0.9, 0.99)})
    assert sac.split("sac") == (("batch_size",), ("gamma",))


def test_unknown_field_names_the_close_matches():
    space = SearchSpace({"learning_rat": Float(1e-5, 1e-2)})
    with pytest.raises(ValueError, match=r"'learning_rat'.*Did you mean: learning_rate"):
        space.validate("ppo")


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ({"gamma": Float(0.9, 1.1)}, r"'gamma'.*1.1 is outside .*\[0, 1\]"),
        ({"learning_rate": Float(0.0, 1e-2)}, r"learning_rate.*0 is outside .*\(0, inf\]"),
        ({"max_grad_norm": Categorical((0.0, 0.5))}, "max_grad_norm"),
        ({"ent_coef": Categorical(("a",))}, "hparams are numbers"),
        ({"num_envs": Float(1.0, 8.0)}, "Float range needs a float field"),
        ({"normalize_advantages": Categorical((1.5,))}, "choice 1.5 does not fit"),
        ({"total_timesteps": Int(1000, 2000)}, "budget sets it"),
    ],
)
def test_validation_refuses_with_the_dimension_named(dims, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(dims).validate("ppo")


def test_validation_coerces_string_choices_to_field_types():
    space = SearchSpace(
        {"hidden_sizes": Categorical(("64,64", "32")), "activation": Categorical(("relu",))}
    )
    checked = space.validate("ppo")
    assert checked["hidden_sizes"].choices == ((64, 64), (32,))


def test_sampling_is_reproducible_and_rejects_invalid_configs():
    space = SearchSpace(
        {"num_minibatches": Categorical((2, 3, 4)), "learning_rate": Float(1e-4, 1e-3)}
    )
    a = space.sample(np.random.default_rng(7), 50, agent="ppo", base_config=CARTPOLE)
    b = space.sample(np.random.default_rng(7), 50, agent="ppo", base_config=CARTPOLE)
    assert a == b
    # 3 does not divide 8 * 32 = 256: those draws are redrawn, never returned
    assert {d["num_minibatches"] for d in a} == {2, 4}
    # without a base config nothing is rejected
    free = space.sample(np.random.default_rng(7), 50)
    assert 3 in {d["num_minibatches"] for d in free}


def test_sampling_gives_up_with_the_reason_when_nothing_is_valid():
    space = SearchSpace({"num_minibatches": Categorical((3, 5))})
    with pytest.raises(ValueError, match=r"no valid configuration in 20 draws.*does not divide"):
        space.sample(np.random.default_rng(0), 1, agent="ppo", base_config=CARTPOLE, max_tries=20)


def test_default_spaces_validate_and_sample_valid_configs():
    ppo = default_space("ppo").validate("ppo")
    assert ppo["learning_rate"] == Float(1e-6, 0.1, log=True)  # ARLBench
    assert ppo.split("ppo")[0] == ("num_minibatches", "normalize_advantages")
    for d in ppo.sample(np.random.default_rng(0), 20, agent="ppo", base_config=CARTPOLE):
        assert config_problem(CARTPOLE, {k: d[k] for k in ppo.split("ppo")[0]}) == ""
    sac = default_space("sac").validate("sac")
    assert sac["actor_lr"] == Float(1e-6, 1e-2, log=True)  # Eimer et al.
    short = SACConfig(total_timesteps=5_000)
    draws = sac.sample(np.random.default_rng(0), 40, agent="sac", base_config=short)
    assert all(d["learning_starts"] < 5_000 for d in draws)  # 10_000 is rejected at this budget
    with pytest.raises(ValueError, match="no default search space"):
        default_space("ippo")


def test_configspace_json_round_trip(tmp_path):
    space = SearchSpace(
        {
            "learning_rate": Float(1e-6, 1e-2, log=True),
            "gae_lambda": Float(0.8, 0.9999),
            "update_epochs": Int(1, 20),
            "num_steps": Int(8, 512, log=True),
            "normalize_advantages": Categorical((True, False)),
            "activation": Categorical(("tanh", "relu")),
            "hidden_sizes": Categorical(((64, 64), (32,), (256, 256, 256))),
            "clip_eps": Categorical((0.1, 0.2)),
        }
    )
    assert from_configspace_json(to_configspace_json(space)) == space
    path = write_space(space, tmp_path / "space.json", name="ppo")
    assert read_space(path) == space
    doc = json.loads(path.read_text())
    assert doc["format_version"] == 0.4 and doc["name"] == "ppo"
    assert {h["type"] for h in doc["hyperparameters"]} == {
        "uniform_float",
        "uniform_int",
        "categorical",
    }


def test_configspace_reads_our_file_and_we_read_its_file(tmp_path):
    cs_mod = pytest.importorskip("ConfigSpace")
    space = default_space("ppo").updated({"hidden_sizes": Categorical(((64, 64), (32,)))})
    path = write_space(space, tmp_path / "ours.json")
    cs = cs_mod.ConfigurationSpace.from_json(path)
    assert set(cs.keys()) == set(space)
    lr = cs["learning_rate"]
    assert (lr.lower, lr.upper, lr.log) == (1e-6, 0.1, True)
    assert list(cs["num_minibatches"].choices) == [1, 2, 4, 8]
    # ConfigSpace's own writer (it sorts by name; ordinal and constant read as categoricals)
    theirs = cs_mod.ConfigurationSpace(name="x")
    theirs.add(
        [
            cs_mod.Float("gamma", (0.8, 0.9999)),
            cs_mod.Integer("num_steps", (16, 1024), log=True),
            cs_mod.Categorical("activation", ["tanh", "relu"]),
            cs_mod.OrdinalHyperparameter("num_minibatches", [1, 2, 4]),
            cs_mod.Constant("update_epochs", 4),
        ]
    )
    theirs.to_json(tmp_path / "theirs.json")
    read = read_space(tmp_path / "theirs.json").validate("ppo")
    assert read["num_steps"] == Int(16, 1024, log=True)
    assert read["num_minibatches"] == Categorical((1, 2, 4))
    assert read["update_epochs"] == Categorical((4,))
    assert read.split("ppo") == (
        ("activation", "num_minibatches", "num_steps", "update_epochs"),
        ("gamma",),
    )


def _doc(*hps, **extra):
    return json.dumps({"hyperparameters": list(hps), "conditions": [], "forbiddens": [], **extra})


LR = {"type": "uniform_float", "name": "lr", "lower": 1e-5, "upper": 1e-2, "log": True}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"space.json: not valid JSON"),
        ("[]", "not a ConfigSpace document"),
        (_doc(LR, {"type": "uniform_float", "name": "gamma", "lower": 1.0, "upper": 0.5}),
         r"hyperparameters\[1\] \('gamma'\): Float needs low < high"),
        (_doc({"type": "normal_float", "name": "ent", "mu": 0, "sigma": 1}),
         r"hyperparameters\[0\] \('ent'\): unsupported hyperparameter type 'normal_float'"),
        (_doc({"type": "uniform_int", "name": "n", "lower": 1}),
         r"hyperparameters\[0\] \('n'\): missing 'upper'"),
        (_doc({"type": "uniform_int", "name": "n", "lower": "1", "upper": 4}),
         r"\('n'\): 'lower' must be a number"),
        (_doc({"type": "categorical", "name": "c", "choices": [1, 2], "weights": [0.9, 0.1]}),
         r"\('c'\): weighted categoricals are not supported"),
        (_doc(LR, LR), r"hyperparameters\[1\] \('lr'\): duplicate name"),
        (_doc({"name": "x"}), r"hyperparameters\[0\] \('x'\): missing 'type'"),
        (_doc(LR, conditions=[{"child": "lr", "parent": "x", "type": "EQ", "value": 1}]),
         r"conditions\[0\].*not supported"),
    ],
)  # fmt: skip
def test_malformed_space_file_names_the_bad_entry(tmp_path, text, message):
    path = tmp_path / "space.json"
    path.write_text(text)
    with pytest.raises(SpaceFileError, match=message):
        read_space(path)


def test_missing_space_file_is_a_clear_error(tmp_path):
    with pytest.raises(SpaceFileError, match="cannot read"):
        read_space(tmp_path / "absent.json")


def test_a_study_refuses_an_empty_space_and_overrides_of_searched_fields(tmp_path):
    from accelrl.agents.build import make_spec
    from accelrl.agents.spec import RunSpec
    from accelrl.autotune.random_search import RandomSearchSettings
    from accelrl.autotune.spaces import Float, SearchSpace
    from accelrl.autotune.study import open_study
    from accelrl.autotune.tuners import StudySpec

    run = RunSpec("CartPole-v1", "ppo", config={"total_timesteps": 64})
    spec = StudySpec(run, SearchSpace({}), tuning_seeds=(0,), test_seeds=(1,))
    with pytest.raises(ValueError, match="empty"):
        open_study("random", RandomSearchSettings(), spec, tmp_path / "a")
    space = SearchSpace({"learning_rate": Float(1e-4, 1e-2, log=True)})
    with pytest.raises(
        ValueError,
        match=r"the run fixes learning_rate \(--overrides\), which the search space also searches",
    ):
        open_study("random", RandomSearchSettings(),
                   spec.replace(space=space, run=make_spec("CartPole-v1", "ppo", {"learning_rate": 1e-3})),
                   tmp_path / "b")  # fmt: skip
    assert not (tmp_path / "a" / "search.json").exists()
    assert not (tmp_path / "b" / "search.json").exists()
