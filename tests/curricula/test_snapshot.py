"""Snapshot starts (S3RL): a bank file round trip restores states bit for bit (ThreeBody float64
included), snapshot episodes are truncated (not terminated) after T steps even past the env's
own limit, clusters and snapshots are drawn uniformly, the strategy jits and vmaps over seeds,
wrong banks are refused with the difference named, and accelrl-snapshot runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from accelrl.agents.evaluation import rollout_policy
from accelrl.curricula.snapshot import (
    BankError,
    SnapshotBank,
    SnapshotStarts,
    bank_from_rollout,
    kmeans_1d,
    load_bank,
    paper_settings,
    save_bank,
)
from accelrl.envs import VecEnv, make
from accelrl.envs.reset import NO_LIMIT, StepRecord


def chi_square(counts) -> float:
    """Pearson's statistic against equal expected counts."""
    c = np.asarray(counts, np.float64)
    e = c.sum() / len(c)
    return float(((c - e) ** 2 / e).sum())


# -- a toy env: obs = [time], reward 1, terminates only on action 1, gymnax's step limit ------------


@struct.dataclass
class CountState(environment.EnvState):
    pass


@struct.dataclass
class CountParams(environment.EnvParams):
    max_steps_in_episode: int = 5


class CountEnv(environment.Environment):
    @property
    def default_params(self):
        return CountParams()

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1)
        return self.get_obs(state), state, jnp.float32(1.0), action == 1, {}

    def reset_env(self, key, params):
        state = CountState(time=jnp.int32(0))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return state.time.astype(jnp.float32)[None]

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1e6, (1,), jnp.float32)


def count_bank(times, values=None) -> SnapshotBank:
    times = np.asarray(times, np.int32)
    values = np.zeros(len(times), np.float32) if values is None else values
    return SnapshotBank(
        env_id="TestCount-v0",
        env_kwargs={},
        env_state=CountState(time=times),
        obs=times.astype(np.float32)[:, None],
        value=values,
        elapsed=times,
        episode=np.zeros(len(times), np.int32),
    )


# -- tests ----------------------------------------------------------------------------------------


def test_threebody_bank_file_round_trip_restores_float64_state_bit_for_bit(tmp_path):
    env, params = make("ThreeBody-v0")
    policy = lambda obs, k: jax.random.randint(k, (obs.shape[0],), 0, 10)  # noqa: E731
    rollout = rollout_policy(
        env, params, policy, jax.random.key(0), 3, 9, value_fn=lambda obs: obs[:, 0]
    )
    bank = bank_from_rollout(rollout, "ThreeBody-v0", episodes=2, every=4)
    np.testing.assert_array_equal(bank.elapsed, [0, 4, 8, 0, 4, 8])  # reset state included
    path = save_bank(bank, tmp_path / "tb.bank")
    assert path == tmp_path / "tb.bank" and sorted(p.name for p in tmp_path.iterdir()) == [
        "tb.bank"
    ]  # exactly the path given, no suffix, no leftover temporary
    loaded = load_bank(path, env_id="ThreeBody-v0")
    assert loaded.content_hash == bank.content_hash
    assert {x.dtype for x in jax.tree.leaves(loaded.env_state.hermite)} == {np.dtype("float64")}
    cands = loaded.info["episode_candidates"]

    def original(j):  # the rollout's own state for bank entry j
        t, n = int(loaded.elapsed[j]), cands[int(loaded.episode[j])]
        return jax.tree.map(lambda x: np.asarray(x)[t, n], (rollout.env_state, rollout.obs))

    venv = VecEnv(env, 8, SnapshotStarts(loaded, num_clusters=2))
    obs, state = venv.reset(jax.random.key(1), params)
    index = np.asarray(state.strategy.index)
    assert (index >= 0).all() and len(set(index.tolist())) > 1
    for b, j in enumerate(index):
        want_state, want_obs = original(j)
        got = jax.tree.map(lambda x, b=b: np.asarray(x)[b], state.env)
        for a, w in zip(jax.tree.leaves(got), jax.tree.leaves(want_state), strict=True):
            assert a.dtype == w.dtype
            np.testing.assert_array_equal(a, w)
        np.testing.assert_array_equal(np.asarray(obs)[b], want_obs)
    # a snapshot episode may run elapsed + T decisions: ThreeBody's limit field is max_decisions
    np.testing.assert_array_equal(
        state.params.max_decisions,
        np.maximum(params.max_decisions, np.asarray(loaded.elapsed)[index] + 100),
    )


def test_snapshot_episodes_are_truncated_after_t_steps_past_the_env_limit_then_normal_resets():
    env = CountEnv()
    # one snapshot at time 4 of an env limited to 5 steps; T = 3: it must run to time 7
    strategy = SnapshotStarts(count_bank([4]), horizon=3, snapshot_steps=6)
    venv = VecEnv(env, 2, strategy)
    step = jax.jit(venv.step)
    obs, state = venv.reset(jax.random.key(0), None)
    np.testing.assert_array_equal(obs[:, 0], [4, 4])
    np.testing.assert_array_equal(state.params.max_steps_in_episode, [7, 7])
    np.testing.assert_array_equal(state.step_limit, [3, 3])
    act = jnp.zeros(2, jnp.int32)
    for t in range(3):
        obs, state, r, term, trunc, info = step(jax.random.key(t), state, act, None)
        assert not bool(term.any())
        assert bool(trunc.all()) == (t == 2) and not bool(trunc.any()) == (t < 2), (t, trunc)
    np.testing.assert_array_equal(info["final_observation"][:, 0], [7, 7])  # past the limit of 5
    # 6 env steps ran: the phase is over, the new episodes are the env's own resets
    np.testing.assert_array_equal(state.strategy.index, [-1, -1])
    np.testing.assert_array_equal(obs[:, 0], [0, 0])
    np.testing.assert_array_equal(state.step_limit, [NO_LIMIT, NO_LIMIT])
    np.testing.assert_array_equal(state.params.max_steps_in_episode, [5, 5])
    for t in range(5):
        obs, state, r, term, trunc, info = step(jax.random.key(10 + t), state, act, None)
        assert bool(trunc.all()) == (t == 4) and not bool(term.any())
    metrics = venv.metrics(state)
    assert float(metrics["snapshot_fraction"]) == pytest.approx(2 / 6)
    assert float(metrics["snapshot_probability"]) == 0.0
    # a termination inside a snapshot episode stays a termination
    obs, state = venv.reset(jax.random.key(1), None)
    obs, state, r, term, trunc, _ = step(jax.random.key(2), state, jnp.ones(2, jnp.int32), None)
    assert bool(term.all()) and not bool(trunc.any())


def test_no_truncation_setting_keeps_the_env_limit():
    strategy = SnapshotStarts(count_bank([4]), horizon=None)
    obs, state = VecEnv(CountEnv(), 2, strategy).reset(jax.random.key(0), None)
    np.testing.assert_array_equal(state.step_limit, [NO_LIMIT, NO_LIMIT])
    np.testing.assert_array_equal(state.params.max_steps_in_episode, [5, 5])


def test_schedules_switch_or_decay_with_env_steps_counted_by_observe():
    bank = count_bank([1, 2])
    const = SnapshotStarts(bank, snapshot_steps=100)
    linear = SnapshotStarts(bank, snapshot_steps=100, schedule="linear", probability=0.5)
    for steps, pc, pl in [(0, 1.0, 0.5), (50, 1.0, 0.25), (99, 1.0, 0.005), (100, 0.0, 0.0)]:
        assert float(const.probability_at(steps)) == pc
        assert float(linear.probability_at(steps)) == pytest.approx(pl)
    state = const.init(jax.random.key(0), CountEnv(), None, 4)
    z = jnp.zeros(4)
    record = StepRecord(z, z > 0, z > 0, z > 0, z, z.astype(jnp.int32), None)
    for _ in range(30):  # 4 steps each: saturates at 100
        state = const.observe(state, record)
    assert int(state.env_steps) == 100 and float(const.metrics(state)["snapshot_probability"]) == 0
    assert SnapshotStarts(bank, snapshot_steps=0, schedule="linear").probability_at(0) == 0
    with pytest.raises(ValueError, match="schedule"):
        SnapshotStarts(bank, schedule="cosine")
    assert paper_settings("sac")["num_clusters"] == 4 and paper_settings("ppo")["num_clusters"] == 6
    assert SnapshotStarts.for_agent(bank, "sac", horizon=7).horizon == 7


def test_clusters_then_snapshots_are_drawn_uniformly_and_empty_clusters_are_dropped():
    # three well-separated value groups of 1, 10 and 100 snapshots
    values = np.concatenate([[-50.0], np.linspace(0, 1, 10), np.linspace(10, 11, 100)])
    strategy = SnapshotStarts(count_bank(np.arange(111), values.astype(np.float32)), num_clusters=3)
    np.testing.assert_array_equal(strategy.cluster_sizes, [1, 10, 100])
    picks = np.asarray(strategy.sample(jax.random.key(0), 30_000))
    per_cluster = np.bincount(strategy.labels[picks], minlength=3)
    assert chi_square(per_cluster) < 13.8, per_cluster  # 2 dof, p = 0.001
    in_mid = np.bincount(picks[(picks >= 1) & (picks <= 10)] - 1, minlength=10)
    assert chi_square(in_mid) < 27.9, in_mid  # 9 dof, p = 0.001
    # a sampler that ignored clusters would put ~90% of draws in the big one
    assert per_cluster[2] < 0.4 * len(picks)
    # two distinct values, K = 6: the duplicate centres end empty and are dropped
    two = SnapshotStarts(count_bank(np.arange(8), np.repeat([1.0, 2.0], 4)), num_clusters=6)
    np.testing.assert_array_equal(two.cluster_sizes, [4, 4])
    assert set(np.asarray(two.sample(jax.random.key(1), 1000)).tolist()) == set(range(8))
    # K-means finds the obvious partition and ranks clusters by value
    centers, labels, counts = kmeans_1d(jnp.asarray([5.0, 5.1, -3.0, -3.1, 0.0]), 3)
    np.testing.assert_array_equal(labels, [2, 2, 0, 0, 1])
    np.testing.assert_allclose(centers, [-3.05, 0.0, 5.05], rtol=1e-6)


def test_kmeans_is_at_least_as_good_as_scikit_learns_reference_setting():
    kmeans = pytest.importorskip("sklearn.cluster").KMeans
    rng = np.random.default_rng(0)
    for _ in range(3):  # five groups of random sizes, spreads and places
        v = np.concatenate(
            [
                rng.normal(rng.uniform(-10, 10), rng.uniform(0.1, 3), rng.integers(1, 80))
                for _ in "abcde"
            ]
        ).astype(np.float32)
        centers, labels, counts = kmeans_1d(jnp.asarray(v), 6)
        ours = float(((v - np.asarray(centers)[np.asarray(labels)]) ** 2).sum())
        theirs = (
            kmeans(6, random_state=0, n_init="auto").fit(v[:, None].astype(np.float64)).inertia_
        )
        assert ours <= theirs * (1 + 1e-4), (ours, theirs)
        assert int(counts.sum()) == len(v)


@pytest.fixture(scope="module")
def cartpole_bank():
    env, params = make("CartPole-v1")
    policy = lambda obs, k: jax.random.randint(k, (obs.shape[0],), 0, 2)  # noqa: E731
    rollout = rollout_policy(
        env, params, policy, jax.random.key(0), 4, 60, value_fn=lambda o: o[:, 2]
    )
    return bank_from_rollout(rollout, "CartPole-v1", episodes=3, every=2)


def test_strategy_jits_and_vmaps_over_seeds_and_compares_by_content(cartpole_bank):
    env, params = make("CartPole-v1")
    bank = cartpole_bank
    strategy = SnapshotStarts(bank, num_clusters=3, horizon=7)
    assert strategy == SnapshotStarts(bank, num_clusters=3, horizon=7)
    assert hash(strategy) == hash(SnapshotStarts(bank, num_clusters=3, horizon=7))
    assert strategy != SnapshotStarts(bank, num_clusters=3, horizon=8)
    venv = VecEnv(env, 8, strategy)
    seeds = jax.random.split(jax.random.key(1), 3)
    obs, state = jax.jit(jax.vmap(venv.reset, in_axes=(0, None)))(seeds, params)
    assert obs.shape == (3, 8, 4) and state.strategy.index.shape == (3, 8)
    assert not np.array_equal(state.strategy.index[0], state.strategy.index[1])
    step = jax.jit(jax.vmap(venv.step, in_axes=(0, 0, 0, None)))
    truncs = []
    for t in range(8):
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seeds, t)
        obs, state, r, term, trunc, info = step(keys, state, jnp.zeros((3, 8), jnp.int32), params)
        truncs.append(np.asarray(trunc & ~term))
    assert obs.shape == (3, 8, 4)
    metrics = jax.vmap(venv.metrics)(state)
    np.testing.assert_array_equal(metrics["snapshot_fraction"], [1, 1, 1])
    # every copy that survived 7 steps was truncated at step 7 exactly
    assert np.asarray(truncs)[:6].sum() == 0 or np.asarray(truncs)[6].any()
    assert int(jnp.max(state.strategy.env_steps)) == 8 * 8


def test_wrong_env_id_kwargs_or_structure_are_refused_naming_what_differs(cartpole_bank, tmp_path):
    path = save_bank(cartpole_bank, tmp_path / "cp.bank")
    with pytest.raises(BankError, match="collected on CartPole-v1 .* is Acrobot-v1"):
        load_bank(path, env_id="Acrobot-v1")
    with pytest.raises(BankError, match="env kwargs .*max_steps"):
        load_bank(path, env_id="CartPole-v1", env_kwargs={"max_steps": 3})
    acrobot, _ = make("Acrobot-v1")
    with pytest.raises(BankError, match=r"state structure(.|\n)*joint_angle1"):
        load_bank(path, env=acrobot)
    bank = load_bank(path, env_id="CartPole-v1", env_kwargs={})
    with pytest.raises(BankError, match=r"\.x: .*lacks|lacks.*\.x"):
        VecEnv(acrobot, 2, SnapshotStarts(bank)).reset(jax.random.key(0))
    # a bank whose leaf changed dtype is named leaf by leaf
    time_f = jax.tree.map(lambda x: x, bank.env_state).replace(
        time=np.asarray(bank.env_state.time, np.float32)
    )
    odd = SnapshotBank("CartPole-v1", {}, time_f, bank.obs, bank.value, bank.elapsed, bank.episode)
    save_bank(odd, tmp_path / "odd.bank")
    with pytest.raises(BankError, match=r"state\.time: dtype float32 in the bank, int32"):
        load_bank(tmp_path / "odd.bank", env_id="CartPole-v1")


def test_loader_refuses_pickles_edits_and_non_banks(cartpole_bank, tmp_path):
    path = save_bank(cartpole_bank, tmp_path / "cp.bank")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    evil = tmp_path / "evil.bank"
    with open(evil, "wb") as f:
        np.savez(f, **arrays, payload=np.array([{"x": 1}], dtype=object))
    with pytest.raises(BankError, match="pickle"):
        load_bank(evil)
    edited = tmp_path / "edited.bank"
    arrays["value"] = arrays["value"] + 1
    with open(edited, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(BankError, match="content hash"):
        load_bank(edited)
    # an edited header count (the hash covers the arrays, not the header's numbers)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["header"].tobytes().decode())
    header["num_snapshots"] += 5
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    counted = tmp_path / "counted.bank"
    with open(counted, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(BankError, match="snapshots, the arrays hold"):
        load_bank(counted)
    (tmp_path / "text.bank").write_text("hello")
    with pytest.raises(BankError, match="not a snapshot bank"):
        load_bank(tmp_path / "text.bank")
    with pytest.raises(FileNotFoundError):
        load_bank(tmp_path / "missing.bank")


@pytest.mark.slow  # budget ~90 s on 2 busy CPU cores: two tiny agents compiled on a strategy env
@pytest.mark.parametrize("agent_name", ["ppo", "sac"])
def test_agents_train_unchanged_on_snapshot_starts(cartpole_bank, agent_name):
    from accelrl.agents import Runner, build

    env, _ = make("CartPole-v1")
    strategy = SnapshotStarts.for_agent(cartpole_bank, agent_name, snapshot_steps=64, horizon=5)
    venv = VecEnv(env, 4, strategy)
    tiny = {
        "ppo": {"num_steps": 8, "num_minibatches": 1, "update_epochs": 1, "total_timesteps": 256},
        "sac": {"total_timesteps": 256, "learning_starts": 32, "batch_size": 32},
    }[agent_name]
    agent, config, hparams = build(venv, agent_name, tiny, env_id="CartPole-v1")
    result = Runner(agent, [0, 1], hparams, segments=1, progress=False).train()
    frac = np.asarray(result.metrics["snapshot_fraction"])
    prob = np.asarray(result.metrics["snapshot_probability"])
    assert frac.shape[0] == 2 and (frac[:, 0] == 1).all()  # every early episode from the bank
    assert (prob[:, -1] == 0).all() and (frac[:, -1] < 1).all()  # then the env's own resets
    assert np.isfinite(np.asarray(result.metrics["episode_length"])[:, -1]).all()


# -- accelrl-snapshot end to end ------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
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
        "--total_timesteps",
        "2048",
        "--eval-episodes",
        "4",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.slow  # budget: ~60 s here (a 2-seed CartPole teacher trained in a subprocess)
def test_accelrl_snapshot_writes_exactly_the_bank_from_the_best_seed(teacher_run, tmp_path, capsys):
    from accelrl.scripts.snapshot import main

    out = tmp_path / "cartpole.bank"
    argv = ["--run", str(teacher_run), "--out", str(out), "--episodes", "3", "--every", "5"]
    assert main([*argv, "--candidates", "5", "--seed", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartpole.bank"]
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ev = json.loads((teacher_run / "eval.json").read_text())
    best = ev["seeds"][int(np.argmax(ev["returns"]))]
    assert summary["teacher_seed"] == best
    bank = load_bank(out, env_id="CartPole-v1", env_kwargs={})
    assert summary["content_hash"] == bank.content_hash and bank.size == summary["num_snapshots"]
    assert bank.info["teacher_seed"] == best and bank.info["candidates"] == 5
    returns = bank.info["episode_returns"]
    assert len(returns) == 3 and returns == sorted(returns, reverse=True)
    assert returns[-1] >= sorted(bank.info["candidate_returns"], reverse=True)[2]
    assert set(np.asarray(bank.elapsed) % 5) == {0} and int(bank.elapsed.min()) == 0
    assert np.isfinite(np.asarray(bank.value)).all() and float(jnp.std(bank.value)) > 0
    # bad input fails fast with a message
    assert main(["--run", str(tmp_path / "nope"), "--out", str(tmp_path / "x.bank")]) == 2
    assert main(["--run", str(teacher_run), "--out", str(tmp_path / "no" / "x.bank")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow  # budget: ~90 s here (two banks, a student run, resume, eval)
def test_accelrl_train_snapshots_records_the_bank_and_resumes_with_it(
    teacher_run, tmp_path, capsys
):
    """accelrl-train --snapshots BANK: config.json records the bank's path and hash, the metrics
    the fraction of snapshot starts; --resume and accelrl-eval rebuild the same strategy; a bank
    whose content changed is refused on --resume."""
    from accelrl.scripts.evaluate import main as eval_main
    from accelrl.scripts.snapshot import main as snapshot_main
    from accelrl.scripts.train import main as train_main

    bank = tmp_path / "teacher.bank"
    assert (
        snapshot_main(
            ["--run", str(teacher_run), "--out", str(bank), "--episodes", "2", "--every", "5"]
        )
        == 0
    )
    out = tmp_path / "student"
    argv = ["--env", "CartPole-v1", "--agent", "ppo", "--out", str(out), "--snapshots", str(bank),
            "--snapshot_horizon", "7", "--snapshot_steps", "96", "--num_envs", "4", "--num_steps", "8",
            "--num_minibatches", "1", "--update_epochs", "1", "--total_timesteps", "128",
            "--eval_episodes", "2", "--no-progress", "--segments", "2"]  # fmt: skip
    assert train_main(argv) == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["reset_strategy"]["name"] == "snapshot"
    record = cfg["reset_strategy"]["settings"]
    assert record["bank"] == str(bank.absolute()) and record["num_clusters"] == 6  # PPO's K
    assert record["bank_hash"] == load_bank(bank).content_hash and record["horizon"] == 7
    frac = json.loads((out / "seed_0" / "metrics.json").read_text())["metrics"]["snapshot_fraction"]
    assert len(frac) == 4 and frac[0] == 1.0  # every start in the phase came from the bank
    assert train_main(["--resume", str(out), "--no-progress"]) == 0
    assert eval_main([str(out), "--output", str(tmp_path / "eval.json")]) == 0
    # load_run rebuilds the snapshot strategy from config.json alone
    from accelrl.agents import load_run
    from accelrl.agents.base import find_wrapper
    from accelrl.envs import VecEnv

    agent, state, _, _ = load_run(out)
    assert isinstance(find_wrapper(agent.env, VecEnv).strategy, SnapshotStarts)
    one = jax.tree.map(lambda x: x[0], state)
    assert agent.evaluate(one, jax.random.key(0), 2, True).shape == (2,)
    # the bank changed under the run: --resume refuses it in one line
    other = tmp_path / "other.bank"
    assert (
        snapshot_main(
            ["--run", str(teacher_run), "--out", str(other), "--episodes", "1", "--every", "3"]
        )
        == 0
    )
    other.replace(bank)
    assert train_main(["--resume", str(out), "--no-progress"]) == 2
    assert "changed since the run started" in capsys.readouterr().err
