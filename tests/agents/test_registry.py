"""The agent registry and the library's run builders: an agent registered from this module
trains through ``accelrl-train`` with no other file touched; ``build`` applies the registered
per-environment defaults; ``load_run`` reloads finished and interrupted run folders."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import accelrl.agents as A
from accelrl.agents import (
    Agent,
    AgentSpec,
    AgentState,
    RunConfig,
    RunSpec,
    build,
    load_run,
    register_agent,
)
from accelrl.agents.build import check_hparams, write_spec
from accelrl.agents.configs import config_to_dict, hparams_to_dict
from accelrl.agents.runner import Runner
from accelrl.scripts.train import main


# A complete agent in a few lines: a uniform-random policy whose only hparam tilts it.
@dataclasses.dataclass(frozen=True)
class TiltConfig(RunConfig):
    num_envs: int = 2
    total_timesteps: int = 64
    num_steps: int = 4
    """Steps per copy per update."""

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps


@struct.dataclass
class TiltHparams:
    tilt: float = 0.0
    """Logit added to action 0."""


@struct.dataclass
class TiltState(AgentState):
    pass


class Tilt(Agent):
    name = "tilt"
    config_cls = TiltConfig
    hparams_cls = TiltHparams
    supported_actions = ("discrete",)

    def init_state(self, key, hparams):
        key, k_env = jax.random.split(key)
        return TiltState(**self.start_fields(key, k_env))

    def act(self, state, obs, key, deterministic=False, tilt=0.0):
        logits = jnp.zeros((obs.shape[0], self.spec.dim)).at[:, 0].add(tilt)
        return jnp.where(deterministic, 0, jax.random.categorical(key, logits))

    def value(self, state, obs):
        return jnp.zeros(obs.shape[0])

    def update(self, state, hparams):
        def step(s, _):
            key, k_act, k_env = jax.random.split(s.key, 3)
            s, out = self.env_step(s, k_env, self.act(s, s.obs, k_act, tilt=hparams.tilt))
            return s.replace(key=key), out.episode

        state, episodes = jax.lax.scan(step, state, None, self.config.num_steps)
        return state, {"tilt": hparams.tilt}, episodes


@pytest.fixture(scope="module", autouse=True)
def tilt_registered():
    register_agent(
        "tilt",
        AgentSpec(
            TiltConfig,
            TiltHparams,
            Tilt,
            defaults={"CartPole-v1": (TiltConfig(num_envs=4), {"tilt": 0.5})},
        ),
        overwrite=True,
    )
    yield
    A.registry._AGENTS.pop("tilt", None)


def test_registered_agent_trains_through_the_cli(tmp_path, capsys):
    out = tmp_path / "tilt"
    argv = [
        "--env",
        "CartPole-v1",
        "--agent",
        "tilt",
        "--out",
        str(out),
        "--seeds",
        "0",
        "1",
        "--tilt",
        "2.0",
        "--no-progress",
        "--eval_episodes",
        "2",
        "--log",
        "tensorboard",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["agent"] == "tilt" and cfg["config"]["num_envs"] == 4  # the registered default
    assert cfg["hparams"]["tilt"] == 2.0
    metrics = json.loads((out / "seed_0" / "metrics.json").read_text())["metrics"]
    assert len(metrics["env_steps"]) == 4 and metrics["tilt"] == [2.0] * 4
    assert "tilt" in A.registered_agents()
    # --log tensorboard: one event file per seed, with the per-update metrics
    pytest.importorskip("tensorboardX")
    events = sorted((out / "tensorboard").glob("seed_*/events.out.tfevents.*"))
    assert [e.parent.name for e in events] == ["seed_0", "seed_1"]
    assert all(e.stat().st_size > 100 for e in events)


def test_unknown_agent_lists_close_names():
    with pytest.raises(A.UnknownAgentError, match="Did you mean: ppo"):
        A.agent_spec("ppoo")
    with pytest.raises(ValueError, match="already registered"):
        register_agent("ppo", A.agent_spec("ppo"))


def test_build_uses_family_defaults_and_overrides():
    agent, config, hparams = build("CartPole-v1", "ppo")
    assert config.total_timesteps == 100_000 and float(hparams.learning_rate) == pytest.approx(1e-3)
    agent, config, hparams = build("Acrobot-v1", "ppo", {"hidden_sizes": [32, 32], "gamma": "0.9"})
    assert config.normalize_obs and config.hidden_sizes == (32, 32)
    assert hparams.gamma.dtype == jnp.float32 and float(hparams.gamma) == pytest.approx(0.9)
    _, _, sac_hp = build("CartPole-v1", "sac")  # discrete SAC's own default entropy scale
    assert float(sac_hp.target_entropy_scale) == pytest.approx(0.5)  # classic_discrete entry
    with pytest.raises(ValueError, match="Did you mean: --learning_rate"):
        build("CartPole-v1", "ppo", {"learning_rat": 1.0})
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        build("CartPole-v1", "ppo", {"gamma": 5})
    with pytest.raises(ValueError, match="env_kwargs apply to an environment id"):
        build(A.build("CartPole-v1", "ppo")[0].env.env, "ppo", env_kwargs={"x": 1})


@pytest.mark.parametrize(
    "name, value, ok",
    [
        ("learning_rate", 0.0, False),
        ("ent_coef", -0.1, False),
        ("gae_lambda", 1.0, True),
        ("max_grad_norm", float("nan"), False),
    ],
)
def test_check_hparams_ranges(name, value, ok):
    hp = A.PPOHparams().replace(**{name: value})
    if ok:
        check_hparams(hp)
    else:
        with pytest.raises(ValueError, match=name):
            check_hparams(hp)


def test_value_contract_for_each_agent():
    for env_id, name in (("CartPole-v1", "ppo"), ("Pendulum-v1", "sac"), ("CartPole-v1", "sac")):
        agent, _, hp = build(env_id, name, {"num_envs": 2} if name == "ppo" else {})
        state = agent.init(jax.random.key(0), hp)
        v = agent.value(state, state.obs)
        assert v.shape == (agent.config.num_envs,) and v.dtype == jnp.float32


def test_load_run_finished_and_interrupted(tmp_path, interrupt_run):
    agent, config, hparams = build("CartPole-v1", "tilt", {"total_timesteps": 32})
    # No checkpoint yet (killed in the first seconds): the run is rebuilt, state is None.
    spec = RunSpec(env="CartPole-v1", agent="tilt", seeds=(3, 4), config=config_to_dict(config),
                   hparams=hparams_to_dict(hparams))  # fmt: skip
    write_spec(tmp_path, spec)
    a2, state, c2, h2 = load_run(tmp_path)
    assert state is None and c2 == config and float(h2.tilt) == 0.5

    interrupt_run(agent, [3, 4], tmp_path, hparams)
    _, state, _, _ = load_run(tmp_path)
    np.testing.assert_array_equal(state.update_step, [1, 1])
    done = Runner(agent, [3, 4], hparams, out_dir=tmp_path, segments=2, progress=False).train(state)
    _, final, _, _ = load_run(tmp_path)
    np.testing.assert_array_equal(final.update_step, [2, 2])
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(done.state), strict=True):
        np.testing.assert_array_equal(a, b)
