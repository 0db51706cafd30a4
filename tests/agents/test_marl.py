"""IPPO/MAPPO: team layout, padding and masks, critics' inputs, per-agent metrics, smoke runs.

Default run: the pure pieces plus two tiny runs (IPPO on speaker_listener through
``accelrl-train``, MAPPO on continuous simple_tag with a checkpoint round trip), about 60 s.
Every other MPE id x action type x agent (and the recurrent option) is a ``slow`` smoke test.
"""

import json

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.agents import build
from accelrl.agents.base import UnsupportedEnvironmentError
from accelrl.agents.distributions import MaskedDiagGaussian
from accelrl.agents.marl import IPPO, MAPPO, MultiAgentPPOConfig, team_specs
from accelrl.agents.runner import NAN_ALLOWED, Runner
from accelrl.envs import make
from accelrl.envs.mpe import MPE_SCENARIOS

TINY = MultiAgentPPOConfig(
    num_envs=4,
    num_steps=8,
    num_minibatches=2,
    update_epochs=1,
    total_timesteps=64,
    hidden_sizes=(16, 16),
    gru_size=8,
)


def test_teams_partition_agents_and_pad_heterogeneous_sizes():
    env, params = make("MPE_simple_speaker_listener_v4")
    (team,) = team_specs(env, params)
    assert team.agents == ("speaker_0", "listener_0")
    assert (team.obs_sizes, team.action_sizes) == ((3, 11), (3, 5))
    assert (team.obs_dim, team.action_dim) == (11, 5)
    np.testing.assert_array_equal(team.action_mask, [[True, True, True, False, False], [True] * 5])
    env, params = make("MPE_simple_world_comm_v3", action_type="continuous")
    specs = {t.name: t for t in team_specs(env, params)}
    assert specs["adversaries"].agents[0] == "leadadversary_0"
    assert specs["adversaries"].action_sizes == (9, 5, 5, 5)
    assert specs["agents"].agents == ("agent_0", "agent_1")
    np.testing.assert_array_equal(specs["adversaries"].high[1], [1.0] * 5 + [0.0] * 4)


def test_bad_teams_and_single_agent_envs_are_refused():
    env, params = make("MPE_simple_spread_v3")

    class Broken(type(env)):
        @property
        def teams(self):
            return {"a": ("agent_0",), "b": ("agent_1",)}  # agent_2 is missing

    with pytest.raises(UnsupportedEnvironmentError, match="do not partition"):
        team_specs(Broken(), params)
    with pytest.raises(UnsupportedEnvironmentError, match="single-agent"):
        build("CartPole-v1", "ippo", {"total_timesteps": 64, "num_envs": 4, "num_steps": 8})
    with pytest.raises(UnsupportedEnvironmentError, match="multi-agent"):
        build("MPE_simple_spread_v3", "ppo")


def test_masked_gaussian_ignores_padding():
    mean = jnp.array([[0.1, -0.2, 7.0]])
    log_std = jnp.array([0.0, -0.5, 3.0])
    mask = jnp.array([True, True, False])
    pi = MaskedDiagGaussian(mean, log_std, mask)
    x = jnp.array([[0.3, 0.0, 123.0]])
    ref = distrax.MultivariateNormalDiag(mean[:, :2], jnp.exp(log_std[:2]))
    np.testing.assert_allclose(pi.log_prob(x), ref.log_prob(x[:, :2]), rtol=1e-6)
    np.testing.assert_allclose(pi.entropy(), ref.entropy(), rtol=1e-6)
    # a different value in the padded dimension changes nothing; in a real one it does
    assert pi.log_prob(x.at[0, 2].set(-5.0)) == pi.log_prob(x)
    assert pi.log_prob(x.at[0, 1].set(2.0)) != pi.log_prob(x)
    assert pi.sample(jax.random.key(0))[0, 2] == 0.0


def _agent(cls, env_id, config=TINY, **env_kwargs):
    env, params = make(env_id, **env_kwargs)
    return cls(config, env, params), env, params


def test_padded_actions_are_never_sampled_and_inputs_carry_ids():
    agent, env, params = _agent(IPPO, "MPE_simple_speaker_listener_v4")
    state = agent.init(jax.random.key(0), agent.default_hparams())
    obs, _ = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(1), 512), params)
    actions = agent.act(state, obs, jax.random.key(2))
    assert int(actions["speaker_0"].max()) <= 2 and int(actions["listener_0"].max()) == 4
    actor_in, critic_in = agent.inputs(obs)["agents"]
    assert actor_in.shape == (512, 2, 11 + 2)
    np.testing.assert_array_equal(actor_in[:, 0, 3:11], 0.0)  # the speaker's padding
    np.testing.assert_array_equal(actor_in[0, :, -2:], np.eye(2))
    np.testing.assert_array_equal(critic_in, actor_in)  # IPPO: the critic sees the same


def test_mappo_critic_sees_the_world_state():
    agent, env, params = _agent(MAPPO, "MPE_simple_tag_v3")
    obs, state = env.reset(jax.random.key(0), params)
    world = env.world_state(state, params)
    np.testing.assert_allclose(env.world_state_from_obs(obs), world)
    batched = jax.tree.map(lambda x: x[None], obs)
    for name, n in (("adversaries", 3), ("agents", 1)):
        _, critic_in = agent.inputs(batched)[name]
        assert critic_in.shape == (1, n, world.shape[0] + n)
        np.testing.assert_allclose(critic_in[0, :, : world.shape[0]], np.tile(world, (n, 1)))


def test_per_agent_returns_are_carried_until_episodes_end():
    agent, env, _ = _agent(IPPO, "MPE_simple_tag_v3")
    state = agent.init(jax.random.key(0), agent.default_hparams())
    t, b = 3, 2
    done = jnp.zeros((t, b), bool)
    returns = {a: jnp.full((t, b), float(i)) for i, a in enumerate(env.agents)}
    info = {
        "returned_episode": done,
        "returned_episode_returns": returns,
        "returned_episode_lengths": jnp.full((t, b), 25),
    }
    state, row = agent.record_episodes(state, info)
    assert np.isnan(row["episode_return"]) and np.isnan(row["agent_return/agent_0"])
    info["returned_episode"] = done.at[1, 0].set(True)
    state, row = agent.record_episodes(state, info)
    assert float(row["agent_return/adversary_2"]) == 2.0
    assert float(row["team_return/adversaries"]) == 1.0
    assert float(row["team_return/agents"]) == 3.0
    assert float(row["episode_return"]) == 1.5  # mean over the four agents
    info["returned_episode"] = done
    state, row = agent.record_episodes(state, info)  # nothing ended: carried forward
    assert float(row["episode_return"]) == 1.5


def test_ippo_trains_through_the_cli_and_reports_teams(tmp_path, capsys):
    from accelrl.scripts.train import main

    out = tmp_path / "sl"
    argv = ["--env", "MPE_simple_speaker_listener_v4", "--agent", "ippo", "--seeds", "0", "1"]
    argv += ["--out", str(out), "--num_envs", "4", "--num_steps", "8", "--num_minibatches", "2"]
    argv += ["--update_epochs", "1", "--total_timesteps", "96", "--hidden_sizes", "16", "16"]
    argv += ["--eval_episodes", "4", "--no-progress"]
    assert main(argv) == 0
    metrics = json.loads((out / "seed_0" / "metrics.json").read_text())
    names = set(metrics["metrics"] if "metrics" in metrics else metrics)
    assert {"agent_return/speaker_0", "agent_return/listener_0", "team_return/agents"} <= names
    summary = json.loads((out / "eval.json").read_text())
    assert set(summary["agent_returns"]) == {"speaker_0", "listener_0"}
    assert set(summary["team_returns"]) == {"agents"}
    # cooperative: both agents get the same reward, so the mean equals each agent's return
    assert summary["mean_return"] == pytest.approx(summary["agent_returns"]["speaker_0"])
    assert (out / "learning_curve.png").stat().st_size > 0


def test_mappo_continuous_teams_checkpoint_round_trip(tmp_path):
    agent, env, _ = _agent(MAPPO, "MPE_simple_tag_v3", action_type="continuous")
    assert set(agent.teams) == {"adversaries", "agents"}
    runner = Runner(agent, [0], out_dir=tmp_path, segments=1, progress=False)
    result = runner.train()
    assert {"team_return/adversaries", "team_return/agents"} <= set(result.metrics)
    restored, _ = Runner(agent, [0], out_dir=tmp_path, progress=False).restore()
    jax.tree.map(np.testing.assert_array_equal, restored.params, result.state.params)
    # MPE's goal-less scenarios have zero-size state arrays; they survive the checkpoint
    assert restored.env_state.inner.goals.shape == result.state.env_state.inner.goals.shape


# Every scenario with both action types and both agents: the agents alternate, so each
# scenario runs IPPO on one action type and MAPPO on the other (the agents differ only in the
# critic's input, which the default-run tests check on both action types).
MATRIX = [
    (env_id, action_type, ("ippo", "mappo")[(i + j) % 2], False)
    for i, env_id in enumerate(MPE_SCENARIOS)
    for j, action_type in enumerate(("discrete", "continuous"))
] + [
    ("MPE_simple_spread_v3", "discrete", "mappo", True),
    ("MPE_simple_speaker_listener_v4", "continuous", "ippo", True),
    ("MPE_simple_world_comm_v3", "discrete", "mappo", True),
]


@pytest.mark.slow
@pytest.mark.parametrize("env_id,action_type,agent_name,recurrent", MATRIX)
def test_every_scenario_action_type_and_agent_runs(env_id, action_type, agent_name, recurrent):
    """Budget: ~15-30 s each on a quiet core (one training program compiled, two tiny updates;
    evaluation is covered by the default-run tests), 21 cases: about 8 minutes of one xdist
    worker."""
    overrides = {f.name: getattr(TINY, f.name) for f in TINY.__dataclass_fields__.values()}
    overrides["recurrent"] = recurrent
    agent, config, hparams = build(env_id, agent_name, overrides, {"action_type": action_type})
    result = Runner(agent, [0], segments=1, progress=False).train()
    assert result.metrics["env_steps"][0, -1] == config.total_timesteps
    for name, values in result.metrics.items():
        if name.split("/")[0] not in NAN_ALLOWED:  # no episode ends in 16 steps
            assert np.isfinite(values).all(), name
    assert np.isfinite(np.asarray(result.metrics["loss"])).all()
