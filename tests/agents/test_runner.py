"""Runner and checkpoints: same seed same metrics, bit-for-bit resume, NaN stop, segments."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents.base import ActionSpec, UnsupportedEnvironmentError, check_action_kind
from accelrl.agents.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_metadata,
)
from accelrl.agents.configs import apply_overrides, config_from_dict, config_to_dict, default_config
from accelrl.agents.ppo import PPOConfig, PPOHparams
from accelrl.agents.reporting import bootstrap_ci, read_seed_metrics
from accelrl.agents.runner import NaNError, Runner, SegmentUpdate, choose_segment, seed_vmapped


@pytest.fixture(scope="module")
def agent(tiny_cartpole_agent):
    return tiny_cartpole_agent


@pytest.fixture(scope="module")
def reference(agent, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    runner = Runner(agent, [0, 1], out_dir=out, segments=2, checkpoint_every=1, progress=False)
    return runner.train(), out


def test_same_seed_same_metrics(agent, reference):
    result, _ = reference
    again = Runner(agent, [0, 1], segments=2, progress=False).train()
    assert set(again.metrics) == set(result.metrics)
    for k, v in result.metrics.items():
        assert v.shape == (2, 4)
        np.testing.assert_array_equal(v, again.metrics[k])
    # different seeds differ
    other = Runner(agent, [2, 3], segments=2, progress=False).train()
    assert not np.array_equal(other.metrics["loss"], result.metrics["loss"])


def test_resume_continues_bit_for_bit(agent, reference, tmp_path, interrupt_run):
    result, _ = reference

    interrupt_run(agent, [0, 1], tmp_path)
    ckpt = latest_checkpoint(tmp_path / "checkpoints")
    assert ckpt is not None and load_metadata(ckpt)["update_step"] == 2
    resumed = Runner(agent, [0, 1], out_dir=tmp_path, segments=2, progress=False)
    state, _ = resumed.restore()
    out = resumed.train(state)
    for k, v in result.metrics.items():
        np.testing.assert_array_equal(v, out.metrics[k], err_msg=k)
    for a, b in zip(jax.tree.leaves(result.state), jax.tree.leaves(out.state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert read_seed_metrics(tmp_path, [0, 1])["loss"].shape == (2, 4)
    # The restored state has the same types as a fresh one: resuming compiled nothing new.
    assert seed_vmapped(agent)[0]._cache_size() == 1


def test_checkpoint_files_and_metadata(reference):
    _, out = reference
    ckpts = list_checkpoints(out / "checkpoints")
    assert [c.name for c in ckpts] == ["step_000002", "step_000004"]  # the newest two are kept
    meta = load_metadata(ckpts[-1])
    assert meta["seeds"] == [0, 1] and meta["update_step"] == 4 and meta["train_seconds"] > 0
    rows = (out / "seed_1" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("update,") and len(rows) == 5
    data = json.loads((out / "seed_0" / "metrics.json").read_text())
    assert data["seed"] == 0 and len(data["metrics"]["episode_return"]) == 4


def test_nan_stops_with_message_and_keeps_last_good_checkpoint(agent, reference, tmp_path):
    def poison(runner, state, seg):  # hparams are data: a NaN learning rate from segment 2 on
        runner.hparams = runner.hparams.replace(learning_rate=jnp.full((2,), jnp.nan))

    runner = Runner(
        agent,
        [0, 1],
        out_dir=tmp_path,
        segments=2,
        checkpoint_every=1,
        progress=False,
        on_segment=poison,
    )
    with pytest.raises(NaNError, match=r"at update 3 \(env step 96\) of seed 0.*step_000002"):
        runner.train()
    ckpt = latest_checkpoint(tmp_path / "checkpoints")
    assert ckpt.name == "step_000002"
    assert seed_vmapped(agent)[0]._cache_size() == 1  # new hparams values, same program
    # The checkpoint holds the state before the NaN (and the hparams the callback set, which
    # is what a resumed run continues with).
    state, hp = Runner(agent, [0, 1], out_dir=tmp_path, progress=False).restore()
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
    assert np.isnan(np.asarray(hp.learning_rate)).all()


def test_mark_policy_fails_one_member_and_trains_the_others(agent, reference):
    def poison(runner, state, seg):  # seed 1 only: a NaN learning rate from segment 2 on
        runner.hparams = runner.hparams.replace(
            learning_rate=runner.hparams.learning_rate.at[1].set(jnp.nan)
        )

    runner = Runner(agent, [0, 1], segments=2, progress=False, on_segment=poison, nan_policy="mark")
    result = runner.train()
    np.testing.assert_array_equal(result.failed, [False, True])
    assert not np.isfinite(result.metrics["loss"][1, -1])
    # the healthy member is the reference run, bit for bit
    ref, _ = reference
    np.testing.assert_array_equal(result.metrics["loss"][0], ref.metrics["loss"][0])
    with pytest.raises(ValueError, match="nan_policy"):
        Runner(agent, [0], nan_policy="ignore")


def test_mark_policy_continuing_with_a_partial_metrics_prefix_fails_no_member(agent):
    """A tuner that continues a run keeping only some metric columns of the updates before
    (a Ray trial restored from its checkpoint keeps the returns) passes them in; the other
    columns are NaN-padded for those updates, which is not a divergence."""
    runner = Runner(agent, [0, 1], segments=2, progress=False, nan_policy="mark")
    first = runner.train(until=agent.num_updates // 4)
    runner = Runner(agent, [0, 1], segments=4, progress=False, nan_policy="mark")
    kept = {"episode_return": first.metrics["episode_return"]}
    second = runner.train(first.state, kept, until=agent.num_updates // 2)
    assert np.isnan(second.metrics["loss"][:, 0]).all()  # the padded prefix
    # ... and going on with what the runner returned (the padded columns included)
    result = runner.train(second.state, second.metrics)
    np.testing.assert_array_equal(result.failed, [False, False])


def test_choose_segment():
    assert choose_segment(100, 20) == 5
    assert choose_segment(390, 20) in (15, 26, 30, 13)
    assert 390 % choose_segment(390, 20) == 0
    assert choose_segment(97, 20) == 5  # prime: falls back to ceil and a remainder segment
    assert choose_segment(3, 20) == 1


def test_bootstrap_ci_brackets_mean():
    vals = np.array([[0.0, 1.0], [10.0, 1.0], [20.0, 1.0]])
    mean, low, high = bootstrap_ci(vals)
    np.testing.assert_allclose(mean, [10.0, 1.0])
    assert low[0] < 10.0 < high[0] and low[1] == high[1] == 1.0


def test_defaults_and_overrides_roundtrip():
    cfg, hp = default_config("ppo", "CartPole-v1")
    assert cfg.total_timesteps == 100_000 and hp["learning_rate"] == 1e-3
    assert default_config("ppo", "Acrobot-v1")[0].normalize_obs
    cfg2, hps = apply_overrides(
        cfg, PPOHparams(), {"hidden-sizes": "32,32", "gamma": "0.9", "anneal_lr": "false"}
    )
    assert cfg2.hidden_sizes == (32, 32) and hps.gamma == 0.9 and cfg2.anneal_lr is False
    assert config_from_dict(PPOConfig, json.loads(json.dumps(config_to_dict(cfg2)))) == cfg2
    with pytest.raises(ValueError, match="Did you mean: --learning_rate"):
        apply_overrides(cfg, PPOHparams(), {"learning_rat": "1"})
    with pytest.raises(ValueError, match="--num_envs must be int, got 'many'"):
        apply_overrides(cfg, PPOHparams(), {"num_envs": "many"})


def test_check_action_kind_rejects_mismatch():
    check_action_kind("X", ActionSpec("discrete", 2), ("discrete",), "Env")
    with pytest.raises(
        UnsupportedEnvironmentError, match="X supports discrete actions, but Env has continuous"
    ):
        check_action_kind("X", ActionSpec("continuous", 1), ("discrete",), "Env")


def test_runner_keeps_float64_env_state():
    """ThreeBody keeps float64 physics state through the runner's init and a training segment
    (the runner once rounded it to float32 when stripping weak types)."""
    import accelrl.envs as E
    from accelrl.agents.ppo import make_ppo

    env, params = E.make("ThreeBody-v0")
    cfg = PPOConfig(
        num_envs=2,
        num_steps=4,
        num_minibatches=1,
        update_epochs=1,
        total_timesteps=16,
        hidden_sizes=(8,),
    )
    runner = Runner(make_ppo(cfg, env, params), [0], segments=1, progress=False)

    def hermite_dtypes(state):
        found = []
        jax.tree_util.tree_map_with_path(
            lambda path, x: (
                found.append(x.dtype) if "hermite" in jax.tree_util.keystr(path) else None
            ),
            state,
        )
        assert found
        return set(found)

    assert hermite_dtypes(runner.init_state()) == {np.dtype("float64")}
    assert hermite_dtypes(runner.train().state) == {np.dtype("float64")}


# ------------------------------------------------------------------------------------------
# Hooks between segments, members, damaged folders


def test_swapping_two_members_mid_run_equals_running_them_swapped(agent, reference):
    result, _ = reference  # seeds [0, 1]

    def swap(runner, state, seg):  # PBT-style exploit: member 0 takes member 1's state and back
        if int(state.update_step[0]) == 2:
            return SegmentUpdate(state=jax.tree.map(lambda x: x[::-1], state))
        return None

    swapped = Runner(agent, [0, 1], segments=2, progress=False, on_segment=swap).train()
    # from update 2 on, member 0 continues seed 1's run and member 1 seed 0's: the final states
    # are exactly those of the unswapped run, swapped
    for a, b in zip(jax.tree.leaves(swapped.state), jax.tree.leaves(result.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[::-1])
    np.testing.assert_array_equal(swapped.metrics["loss"][:, 2:], result.metrics["loss"][::-1, 2:])


def test_stop_at_an_update_and_continue(agent, reference):
    result, _ = reference
    runner = Runner(agent, [0, 1], segments=2, progress=False)
    half = runner.train(until=2)
    np.testing.assert_array_equal(half.state.update_step, [2, 2])
    assert half.metrics["loss"].shape == (2, 2)
    rest = runner.train(half.state, half.metrics)
    for k, v in result.metrics.items():
        np.testing.assert_array_equal(v, rest.metrics[k], err_msg=k)
    stopped = Runner(
        agent,
        [0, 1],
        segments=4,
        progress=False,
        on_segment=lambda r, s, m: SegmentUpdate(stop=True),
    ).train()
    np.testing.assert_array_equal(stopped.state.update_step, [1, 1])


def test_host_metrics_are_columns_with_nulls(agent, tmp_path):
    def measure(runner, state, seg):
        return SegmentUpdate(metrics={"mastered": np.array([0.25, 0.5])})

    res = Runner(
        agent, [0, 1], out_dir=tmp_path, segments=2, progress=False, on_segment=measure
    ).train()
    np.testing.assert_array_equal(res.metrics["mastered"][1], [np.nan, 0.5, np.nan, 0.5])
    saved = json.loads((tmp_path / "seed_0" / "metrics.json").read_text())["metrics"]["mastered"]
    assert saved == [None, 0.25, None, 0.25]
    with pytest.raises(ValueError, match="overwrite"):
        Runner(
            agent,
            [0, 1],
            segments=2,
            progress=False,
            on_segment=lambda r, s, m: SegmentUpdate(metrics={"loss": np.zeros(2)}),
        ).train()


def test_grid_of_hparams_by_seeds_equals_the_single_runs(agent, tmp_path):
    settings = [
        agent.default_hparams(),
        agent.default_hparams().replace(learning_rate=jnp.float32(1e-3)),
    ]
    grid = Runner(agent, [0, 1], settings, out_dir=tmp_path, segments=2, progress=False)
    assert [(m.seed, m.setting) for m in grid.members] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    res = grid.train()
    for m in grid.members:
        single = Runner(agent, [m.seed], settings[m.setting], segments=2, progress=False).train()
        for k, v in single.metrics.items():
            np.testing.assert_allclose(
                res.metrics[k][m.index], v[0], rtol=1e-5, atol=1e-6, err_msg=k
            )
    member = json.loads((tmp_path / "member_3" / "member.json").read_text())
    assert member["seed"] == 1 and member["hparams"]["learning_rate"] == pytest.approx(1e-3)


def test_damaged_newest_checkpoint_falls_back_to_the_older_one(agent, reference, tmp_path):
    runner = Runner(agent, [0, 1], out_dir=tmp_path, segments=4, checkpoint_every=1, progress=False)
    runner.train()
    ckpts = list_checkpoints(tmp_path / "checkpoints")
    assert [c.name for c in ckpts] == ["step_000003", "step_000004"]  # two kept
    # truncate every file of the newest checkpoint
    for f in ckpts[-1].rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 3])
    with pytest.warns(UserWarning, match="step_000004 is damaged"):
        state, _ = Runner(agent, [0, 1], out_dir=tmp_path, progress=False).restore()
    np.testing.assert_array_equal(state.update_step, [3, 3])
    ckpts[0].with_suffix(".json").write_text("{not json")  # the older one's side file too
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        with pytest.warns(UserWarning):
            Runner(agent, [0, 1], out_dir=tmp_path, progress=False).restore()
