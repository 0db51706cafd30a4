"""Multi-agent PPO: IPPO and MAPPO for dict-of-agents environments (the MPE suite).

Both are :class:`~accelrl.agents.ppo.PPO` with its collection loop, GAE, clipped losses,
observation normalisation, annealing and epoch/minibatch machinery; only the data layout and
the networks (:class:`~accelrl.agents.networks.TeamActor` and
:class:`~accelrl.agents.networks.TeamCritic`) are their own:

* **Teams.** The environment's :attr:`~accelrl.envs.multi_agent.MultiAgentEnv.teams` (MPE:
  ``"adversaries"`` and ``"agents"`` where a scenario has both) each get their own actor, critic
  and Adam state; the agents of a team share them, with a one-hot agent id (within the team) in
  every input. One Adam over the dict of team parameters is each team's own Adam (it is
  elementwise); gradient clipping is per team.
* **Heterogeneous agents** (speaker_listener, crypto, world_comm's lead adversary): a team's
  observations are zero-padded to its largest, its action head has its largest action size, and
  each agent's invalid actions are masked (discrete: probability 0; continuous: the padded
  dimensions are left out of the log-probability and the entropy).
* **Critics.** IPPO's critic sees what the actor sees (the agent's own observation); MAPPO's sees
  the world state, the concatenation of every agent's observation
  (:meth:`~accelrl.envs.multi_agent.MultiAgentEnv.world_state_from_obs`), plus the agent id. The
  truncation bootstrap evaluates the critic on ``info["final_observation"]``.
* **Recurrent policies** (``recurrent=True``): actor and critic each get a GRU between a dense
  embedding and the head (JaxMARL's MPE layout); memory is reset at episode starts, minibatches
  are whole ``num_steps`` sequences of a subset of the environment copies, and the loss replays
  each sequence from the memory the rollout started with.

Layout inside an update: per team, inputs ``[T, B, n, F]`` (``n`` agents in the team), actions
``[T, B, n]`` (discrete) or ``[T, B, n, D]``, log-probabilities, values, rewards and advantages
``[T, B, n]``. Metrics add ``agent_return/<agent>`` and ``team_return/<team>``; the
``episode_return`` of a multi-agent run is the mean over agents of each agent's episode return.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from accelrl.agents.base import (
    UnsupportedEnvironmentError,
    clip_by_global_norm,
    episode_metrics,
)
from accelrl.agents.distributions import MaskedDiagGaussian, masked_categorical
from accelrl.agents.gae import gae
from accelrl.agents.networks import (
    TeamActor,
    TeamCritic,
    fast_init,
)
from accelrl.agents.ppo import (
    PPO,
    PPOConfig,
    PPOHparams,
    PPOState,
    normalize,
    policy_loss,
    value_loss,
)
from accelrl.agents.registry import AgentSpec, register_agent


@dataclasses.dataclass(frozen=True)
class MultiAgentPPOConfig(PPOConfig):
    """Static IPPO/MAPPO settings: PPO's plus the multi-agent ones.

    ``num_envs * num_steps`` joint environment steps per update (every agent acts in each);
    ``total_timesteps`` counts joint steps, as JaxMARL's ``TOTAL_TIMESTEPS`` does.
    """

    recurrent: bool = False
    """GRU actor and critic (minibatches are whole sequences of ``num_envs / num_minibatches``
    environment copies; ``num_minibatches`` must divide ``num_envs``)."""
    gru_size: int = 128
    """GRU memory width (``recurrent`` only)."""
    agent_id: bool = True
    """Append a one-hot agent id (within the team) to the actor's and critic's inputs."""

    def validate(self) -> MultiAgentPPOConfig:
        super().validate()
        if self.recurrent and self.num_envs % self.num_minibatches:
            raise ValueError(
                f"recurrent=True splits minibatches over environment copies: num_minibatches="
                f"{self.num_minibatches} must divide num_envs={self.num_envs}"
            )
        if self.shared_torso:
            raise ValueError(
                "shared_torso is not supported by ippo/mappo (separate actor and critic)"
            )
        if int(self.gru_size) < 1:
            raise ValueError(f"gru_size must be >= 1, got {self.gru_size}")
        return self


@dataclasses.dataclass(frozen=True)
class TeamSpec:
    """One team as the networks see it (static: fixes shapes)."""

    name: str
    agents: tuple[str, ...]
    """The team's agents, in the environment's agent order."""
    obs_sizes: tuple[int, ...]
    """Each agent's observation length (the team's inputs are padded to the largest)."""
    action_sizes: tuple[int, ...]
    """Each agent's number of actions (discrete) or action length (continuous)."""
    continuous: bool
    low: np.ndarray | None = None
    """Continuous action bounds ``f32[n, D]`` (padding: 0)."""
    high: np.ndarray | None = None

    @property
    def size(self) -> int:
        """``n``, agents in the team."""
        return len(self.agents)

    @property
    def obs_dim(self) -> int:
        return max(self.obs_sizes)

    @property
    def action_dim(self) -> int:
        """``K`` (discrete) or ``D`` (continuous) of the shared head: the largest."""
        return max(self.action_sizes)

    @property
    def action_mask(self) -> np.ndarray:
        """``bool[n, K or D]``: each agent's real actions (or action dimensions)."""
        return np.arange(self.action_dim)[None, :] < np.asarray(self.action_sizes)[:, None]


def team_specs(env: Any, params: Any = None) -> tuple[TeamSpec, ...]:
    """The :class:`TeamSpec` of each of ``env``'s teams (a multi-agent environment).

    Raises:
        UnsupportedEnvironmentError: spaces other than ``Discrete`` and 1-D finite ``Box``, a
            team mixing discrete and continuous actions, or teams that do not partition the
            agents.
    """
    from gymnax.environments import spaces

    teams = dict(env.teams)
    members = [a for agents in teams.values() for a in agents]
    if sorted(members) != sorted(env.agents):
        raise UnsupportedEnvironmentError(
            f"{type(env).__name__}.teams {teams} do not partition its agents {env.agents}"
        )
    out = []
    for name, agents in teams.items():
        obs_sizes, sizes, kinds, lows, highs = [], [], set(), [], []
        for a in agents:
            o_space, a_space = env.observation_space(a, params), env.action_space(a, params)
            if not isinstance(o_space, spaces.Box) or len(o_space.shape) != 1:
                raise UnsupportedEnvironmentError(f"agent {a!r}: observations must be 1-D arrays")
            obs_sizes.append(int(o_space.shape[0]))
            if isinstance(a_space, spaces.Discrete):
                kinds.add("discrete")
                sizes.append(int(a_space.n))
            elif isinstance(a_space, spaces.Box) and len(a_space.shape) == 1:
                kinds.add("continuous")
                d = int(a_space.shape[0])
                sizes.append(d)
                lows.append(np.broadcast_to(np.asarray(a_space.low, np.float32), (d,)))
                highs.append(np.broadcast_to(np.asarray(a_space.high, np.float32), (d,)))
                if not (np.isfinite(lows[-1]).all() and np.isfinite(highs[-1]).all()):
                    raise UnsupportedEnvironmentError(
                        f"agent {a!r}: continuous bounds must be finite"
                    )
            else:
                raise UnsupportedEnvironmentError(
                    f"agent {a!r}: unsupported action space {type(a_space).__name__}"
                )
        if len(kinds) != 1:
            raise UnsupportedEnvironmentError(
                f"team {name!r} mixes discrete and continuous actions"
            )
        continuous = kinds == {"continuous"}
        low = high = None
        if continuous:
            d = max(sizes)
            low = np.stack([np.pad(x, (0, d - len(x))) for x in lows])
            high = np.stack([np.pad(x, (0, d - len(x))) for x in highs])
        out.append(
            TeamSpec(name, tuple(agents), tuple(obs_sizes), tuple(sizes), continuous, low, high)
        )
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# State and data


@struct.dataclass
class MultiAgentPPOState(PPOState):
    """PPO's state plus the multi-agent run's own: ``params`` and ``opt_state`` are dicts keyed
    by team."""

    agent_returns: jax.Array
    """``f32[A]`` each agent's mean episode return in the last update in which episodes ended
    (NaN before), in the environment's agent order."""
    memory: Any
    """Recurrent: ``{team: (actor f32[B, n, G], critic f32[B, n, G])}``; else ``()``."""
    first: jax.Array
    """``bool[B]``: the current observation starts an episode (recurrent memory resets)."""


class TeamData(NamedTuple):
    """One team's rollout (``[T, B, n, ...]``) or training data (flattened or minibatched)."""

    actor_in: jax.Array
    critic_in: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    next_value: jax.Array
    advantage: jax.Array = None
    target: jax.Array = None


class MABatch(NamedTuple):
    """An update's data: per-team :class:`TeamData`, episode starts and, for recurrent runs,
    the memory the rollout started from."""

    teams: dict[str, TeamData]
    first: jax.Array  # [T, B] (or flattened)
    terminated: jax.Array  # [T, B]
    done: jax.Array  # [T, B]
    memory0: Any = ()  # {team: (actor [B, n, G], critic [B, n, G])}
    episode: Any = None  # EpisodeStatistics info (rollouts only)
    next_obs: Any = None  # feed-forward rollouts: {agent: [T, B, ...]} for batched bootstraps


# ----------------------------------------------------------------------------------------------


class MultiAgentPPO(PPO):
    """PPO for teams of agents; see the module docstring. Use :class:`IPPO` or :class:`MAPPO`."""

    name = "ippo"
    config_cls = MultiAgentPPOConfig
    hparams_cls = PPOHparams
    supported_actions = ("discrete", "continuous")
    centralised: bool = False
    """Critic on the world state (MAPPO) instead of the agent's own observation (IPPO)."""

    def describe_actions(self) -> tuple[TeamSpec, ...]:
        if not self.env.is_multi_agent:
            raise UnsupportedEnvironmentError(
                f"{self.name} trains teams of agents; {type(self.env.env).__name__} is "
                "single-agent (use ppo or sac)"
            )
        return team_specs(self.env.env, self.eval_params)

    @property
    def teams(self) -> dict[str, tuple[str, ...]]:
        """``{team: agents}`` (evaluation summaries report per-team returns)."""
        return {t.name: t.agents for t in self.spec}

    def setup(self) -> None:
        cfg = self.config
        common = dict(
            hidden_sizes=tuple(cfg.hidden_sizes),
            activation=cfg.activation,
            recurrent=cfg.recurrent,
            gru_size=cfg.gru_size,
        )
        self.actors = {
            t.name: TeamActor(t.action_dim, t.continuous, log_std_init=cfg.log_std_init, **common)
            for t in self.spec
        }
        self.critics = {t.name: TeamCritic(**common) for t in self.spec}
        self.optimizer = optax.scale_by_adam(eps=cfg.adam_eps)

    # -- inputs and actions -----------------------------------------------------------------

    def _with_id(self, team: TeamSpec, x: jax.Array) -> jax.Array:
        if not self.config.agent_id:
            return x
        ids = jnp.broadcast_to(jnp.eye(team.size, dtype=jnp.float32), x.shape[:-1] + (team.size,))
        return jnp.concatenate([x, ids], axis=-1)

    def inputs(self, obs: dict[str, jax.Array]) -> dict[str, tuple[jax.Array, jax.Array]]:
        """``{team: (actor input f32[..., n, Fa], critic input f32[..., n, Fc])}`` from an
        observation dict with leading axes ``[...]``: padded observations (IPPO's critic input
        too) or, for MAPPO's critic, the world state; each with the one-hot agent id."""
        world = self.env.env.world_state_from_obs(obs) if self.centralised else None
        out = {}
        for t in self.spec:
            rows = [
                jnp.pad(
                    jnp.asarray(obs[a], jnp.float32),
                    [(0, 0)] * (jnp.ndim(obs[a]) - 1) + [(0, t.obs_dim - size)],
                )
                for a, size in zip(t.agents, t.obs_sizes, strict=True)
            ]
            own = self._with_id(t, jnp.stack(rows, axis=-2))
            if world is None:
                critic = own
            else:
                shape = world.shape[:-1] + (t.size, world.shape[-1])
                critic = self._with_id(t, jnp.broadcast_to(world[..., None, :], shape))
            out[t.name] = (own, critic)
        return out

    def policy(self, team: TeamSpec, head: tuple[jax.Array, jax.Array | None]):
        """The team's action distribution from its actor's output (padded actions masked)."""
        out, log_std = head
        mask = jnp.asarray(team.action_mask)
        if team.continuous:
            return MaskedDiagGaussian(out, log_std, mask)
        return masked_categorical(out, jnp.broadcast_to(mask, out.shape))

    def env_actions(self, actions: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Per-team actions (``[..., n]`` or ``[..., n, D]``) -> the environment's action dict
        (continuous: each agent's own dimensions, clipped to its bounds)."""
        out = {}
        for t in self.spec:
            a = actions[t.name]
            for i, (agent, size) in enumerate(zip(t.agents, t.action_sizes, strict=True)):
                if t.continuous:
                    out[agent] = jnp.clip(a[..., i, :size], t.low[i, :size], t.high[i, :size])
                else:
                    out[agent] = a[..., i]
        return out

    def _per_team(self, values: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Per-agent dict ``{agent: x[...]}`` -> per-team stacks ``{team: x[..., n]}``."""
        return {t.name: jnp.stack([values[a] for a in t.agents], axis=-1) for t in self.spec}

    # -- networks over time -----------------------------------------------------------------

    def _run(self, module, params, x, first, memory):
        """Apply an actor or critic to ``x f32[T, B, n, F]`` with episode starts ``first
        bool[T, B]`` and memory ``[B, n, G]`` (recurrent) -> outputs ``[T, B, n, ...]``,
        memory."""
        if not self.config.recurrent:
            out, _ = module.apply(params, x)
            return out, memory
        t, b, n = x.shape[:3]
        resets = jnp.broadcast_to(first[..., None], (t, b, n)).reshape(t, b * n)
        out, memory = module.apply(
            params, x.reshape(t, b * n, -1), resets, memory.reshape(b * n, -1)
        )
        # time-major outputs back to [T, B, n, ...] (a continuous head's log_std is f32[D])
        out = jax.tree.map(lambda y: y.reshape((t, b, n) + y.shape[2:]) if y.ndim > 1 else y, out)
        return out, memory.reshape(b, n, -1)

    def initial_memory(self, num: int) -> dict[str, tuple[jax.Array, jax.Array]] | tuple:
        """Recurrent memory of ``num`` fresh copies (zeros), ``()`` for feed-forward runs."""
        if not self.config.recurrent:
            return ()
        g = self.config.gru_size
        return {
            t.name: (jnp.zeros((num, t.size, g)), jnp.zeros((num, t.size, g))) for t in self.spec
        }

    # -- acting -----------------------------------------------------------------------------

    def policy_step(self, state, obs, key, carry, deterministic: bool = False):
        """Actions for observations ``{agent: [N, ...]}`` with actor memory ``carry``
        (``{team: f32[N, n, G]}``; an empty dict for feed-forward policies)."""
        inputs = self.inputs(obs)
        keys = jax.random.split(key, len(self.spec))
        actions, new = {}, {}
        first = jnp.zeros((1, jax.tree.leaves(obs)[0].shape[0]), bool)
        for k, t in zip(keys, self.spec, strict=True):
            x = inputs[t.name][0][None]
            head, mem = self._run(
                self.actors[t.name], state.params[t.name]["actor"], x, first, carry.get(t.name)
            )
            pi = self.policy(t, jax.tree.map(lambda y: y[0] if y.ndim > 1 else y, head))
            actions[t.name] = pi.mode() if deterministic else pi.sample(seed=k)
            if mem is not None:
                new[t.name] = mem
        return self.env_actions(actions), new

    def act(self, state, obs, key, deterministic: bool = False):
        """Environment actions ``{agent: [N, ...]}`` for observations ``{agent: [N, ...]}``
        (feed-forward policies; recurrent ones act through :meth:`policy_step`)."""
        return self.policy_step(state, obs, key, {}, deterministic)[0]

    def initial_carry(self, num: int) -> Any:
        if not self.config.recurrent:
            return None
        return {name: actor for name, (actor, _) in self.initial_memory(num).items()}

    def value(self, state, obs) -> jax.Array:
        """Mean over agents of the critics' values, ``f32[N]`` (feed-forward critics; the value
        of the mean reward, which snapshot banks use)."""
        if self.config.recurrent:
            raise NotImplementedError("value() of recurrent critics needs their memory")
        inputs = self.inputs(obs)
        values = [
            self.critics[t.name].apply(state.params[t.name]["critic"], inputs[t.name][1])[0]
            for t in self.spec
        ]
        return jnp.concatenate(values, axis=-1).mean(axis=-1)

    # -- init -------------------------------------------------------------------------------

    def init_state(self, key: jax.Array, hparams: PPOHparams) -> MultiAgentPPOState:
        key, k_net, k_env = jax.random.split(key, 3)
        start = self.start_fields(key, k_env)
        inputs = self.inputs(start["obs"])
        b = self.config.num_envs
        memory = self.initial_memory(b)
        params = {}
        for k, t in zip(jax.random.split(k_net, len(self.spec)), self.spec, strict=True):
            k_a, k_c = jax.random.split(k)
            actor_in, critic_in = inputs[t.name]
            if self.config.recurrent:  # one time step of the b * n sequences
                first = jnp.ones((1, b * t.size), bool)
                zeros = jnp.zeros((b * t.size, self.config.gru_size))
                a_args = (actor_in.reshape(1, b * t.size, -1), first, zeros)
                c_args = (critic_in.reshape(1, b * t.size, -1), first, zeros)
            else:
                a_args, c_args = (actor_in,), (critic_in,)
            params[t.name] = {
                "actor": fast_init(self.actors[t.name], k_a, *a_args),
                "critic": fast_init(self.critics[t.name], k_c, *c_args),
            }
        nan = jnp.full(self.env.env.num_agents, jnp.nan, jnp.float32)
        return MultiAgentPPOState(
            params=params,
            opt_state=self.optimizer.init(params),
            agent_returns=nan,
            memory=memory,
            first=jnp.ones(b, bool),
            **start,
        )

    # -- one update -------------------------------------------------------------------------

    def collect(self, state: MultiAgentPPOState) -> tuple[MultiAgentPPOState, MABatch]:
        """Roll all teams' policies ``num_steps`` steps; returns the state and ``[T, B, ...]``
        data per team (values of the next observations included, for the bootstrap)."""
        memory0 = state.memory

        def step(s: MultiAgentPPOState, _):
            key, k_act, k_env = jax.random.split(s.key, 3)
            inputs = self.inputs(s.obs)
            first = s.first[None]
            heads, values, a_mem, c_mem = {}, {}, {}, {}
            for t in self.spec:
                actor_in, critic_in = (x[None] for x in inputs[t.name])
                mem = s.memory[t.name] if self.config.recurrent else (None, None)
                p = s.params[t.name]
                heads[t.name], a_mem[t.name] = self._run(
                    self.actors[t.name], p["actor"], actor_in, first, mem[0]
                )
                values[t.name], c_mem[t.name] = self._run(
                    self.critics[t.name], p["critic"], critic_in, first, mem[1]
                )
            actions, log_probs = {}, {}
            for k, t in zip(jax.random.split(k_act, len(self.spec)), self.spec, strict=True):
                pi = self.policy(
                    t, jax.tree.map(lambda y: y[0] if y.ndim > 1 else y, heads[t.name])
                )
                actions[t.name] = pi.sample(seed=k)
                log_probs[t.name] = pi.log_prob(actions[t.name])
            new, out = self.env_step(s, k_env, self.env_actions(actions))
            # bootstrap values of the true next observations (before any reset): recurrent critics
            # here, with the memory after this step; feed-forward ones after the rollout, in one
            # batched call (as PPO does)
            recurrent = self.config.recurrent
            next_inputs = self.inputs(out.next_obs) if recurrent else None
            rewards = self._per_team(out.reward)
            teams = {}
            for t in self.spec:
                if recurrent:
                    next_v, _ = self._run(
                        self.critics[t.name],
                        s.params[t.name]["critic"],
                        next_inputs[t.name][1][None],
                        jnp.zeros_like(first),
                        c_mem[t.name],
                    )
                    next_v = next_v[0]
                else:
                    next_v = jnp.zeros_like(values[t.name][0])  # filled after the rollout
                teams[t.name] = TeamData(
                    actor_in=inputs[t.name][0],
                    critic_in=inputs[t.name][1],
                    action=actions[t.name],
                    log_prob=log_probs[t.name],
                    value=values[t.name][0],
                    reward=rewards[t.name],
                    next_value=next_v,
                )
            term = out.terminated["__all__"]
            done = term | out.truncated["__all__"]
            memory = (
                {t.name: (a_mem[t.name], c_mem[t.name]) for t in self.spec}
                if self.config.recurrent
                else ()
            )
            next_obs = None if recurrent else out.next_obs
            data = MABatch(teams, s.first, term, done, episode=out.episode, next_obs=next_obs)
            return new.replace(key=key, memory=memory, first=done), data

        state, traj = jax.lax.scan(step, state, None, self.config.num_steps)
        if not self.config.recurrent:
            next_inputs = self.inputs(traj.next_obs)  # [T, B, n, F] per team
            teams = {
                t.name: traj.teams[t.name]._replace(
                    next_value=self.critics[t.name].apply(
                        state.params[t.name]["critic"], next_inputs[t.name][1]
                    )[0]
                )
                for t in self.spec
            }
            traj = traj._replace(teams=teams, next_obs=None)
        return state, traj._replace(memory0=memory0)

    def targets(self, params: Any, traj: MABatch, hparams: PPOHparams):
        """GAE per agent: ``({team: advantages f32[T, B, n]}, {team: targets})``."""
        advantages, targets = {}, {}
        for t in self.spec:
            d = traj.teams[t.name]
            shape = d.value.shape
            advantages[t.name], targets[t.name] = gae(
                d.reward * hparams.reward_scale,
                d.value,
                d.next_value,
                jnp.broadcast_to(traj.terminated[..., None], shape),
                jnp.broadcast_to(traj.done[..., None], shape),
                hparams.gamma,
                hparams.gae_lambda,
            )
        return advantages, targets

    def training_batch(self, traj: MABatch, advantages, targets) -> MABatch:
        """Feed-forward: the rollout flattened to ``[T * B, n, ...]``; recurrent: kept
        ``[T, B, ...]`` (minibatches split the copies)."""
        teams = {
            name: d._replace(advantage=advantages[name], target=targets[name])
            for name, d in traj.teams.items()
        }
        batch = traj._replace(teams=teams, episode=None)
        if self.config.recurrent:
            return batch
        flat = lambda x: x.reshape((self.config.batch_size,) + x.shape[2:])  # noqa: E731
        return batch._replace(
            teams=jax.tree.map(flat, teams),
            first=flat(batch.first),
            terminated=flat(batch.terminated),
            done=flat(batch.done),
            memory0=(),
        )

    def minibatches(self, batch: MABatch, key: jax.Array) -> MABatch:
        if not self.config.recurrent:
            return super().minibatches(batch, key)
        cfg = self.config
        m, per = cfg.num_minibatches, cfg.num_envs // cfg.num_minibatches
        perm = jax.random.permutation(key, cfg.num_envs)

        def time_major(x):  # [T, B, ...] -> [M, T, B/M, ...]
            x = x[:, perm].reshape((x.shape[0], m, per) + x.shape[2:])
            return jnp.swapaxes(x, 0, 1)

        def env_major(x):  # [B, ...] -> [M, B/M, ...]
            return x[perm].reshape((m, per) + x.shape[1:])

        return MABatch(
            teams=jax.tree.map(time_major, batch.teams),
            first=time_major(batch.first),
            terminated=time_major(batch.terminated),
            done=time_major(batch.done),
            memory0=jax.tree.map(env_major, batch.memory0),
        )

    def loss(self, params: Any, batch: MABatch, hparams: PPOHparams):
        """Sum over teams of each team's PPO loss (advantages normalised per team); parts are
        averaged over teams."""
        cfg = self.config
        total, parts = 0.0, []
        for t in self.spec:
            d = batch.teams[t.name]
            p = params[t.name]
            if cfg.recurrent:
                mem_a, mem_c = batch.memory0[t.name]
                head, _ = self._run(self.actors[t.name], p["actor"], d.actor_in, batch.first, mem_a)
                value, _ = self._run(
                    self.critics[t.name], p["critic"], d.critic_in, batch.first, mem_c
                )
            else:
                head, _ = self.actors[t.name].apply(p["actor"], d.actor_in)
                value, _ = self.critics[t.name].apply(p["critic"], d.critic_in)
            pi = self.policy(t, head)
            adv = normalize(d.advantage) if cfg.normalize_advantages else d.advantage
            pg, aux = policy_loss(pi.log_prob(d.action), d.log_prob, adv, hparams.clip_eps)
            vf = value_loss(value, d.value, d.target, hparams.value_clip_eps, cfg.clip_value_loss)
            entropy = pi.entropy().mean()
            team_total = pg + hparams.vf_coef * vf - hparams.ent_coef * entropy
            total = total + team_total
            parts.append(
                {"policy_loss": pg, "value_loss": vf, "entropy": entropy, "loss": team_total, **aux}
            )
        mean_parts = {k: jnp.mean(jnp.stack([p[k] for p in parts])) for k in parts[0]}
        return total, mean_parts

    def clip_grads(self, grads: Any, max_norm: jax.Array):
        """Clip each team's gradients by their own global norm; report the mean norm."""
        clipped, norms = {}, []
        for name, g in grads.items():
            clipped[name], norm = clip_by_global_norm(g, max_norm)
            norms.append(norm)
        return clipped, jnp.mean(jnp.stack(norms))

    # -- metrics ----------------------------------------------------------------------------

    def record_episodes(self, state: MultiAgentPPOState, episodes: dict):
        """Per-agent and per-team episode returns (carried forward when no episode ended);
        ``episode_return`` is their mean over agents."""
        agents = self.env.env.agents
        per_agent, length = [], state.episode_length
        for i, a in enumerate(agents):
            info = {**episodes, "returned_episode_returns": episodes["returned_episode_returns"][a]}
            ret, length = episode_metrics(info, state.agent_returns[i], state.episode_length)
            per_agent.append(ret)
        agent_returns = jnp.stack(per_agent)
        mean = agent_returns.mean()
        state = state.replace(
            agent_returns=agent_returns, episode_return=mean, episode_length=length
        )
        row = {"episode_return": mean, "episode_length": length}
        row.update({f"agent_return/{a}": agent_returns[i] for i, a in enumerate(agents)})
        for t in self.spec:
            idx = np.array([agents.index(a) for a in t.agents])
            row[f"team_return/{t.name}"] = agent_returns[idx].mean()
        return state, row


class IPPO(MultiAgentPPO):
    """Independent PPO: decentralised actors and critics on each agent's own observation,
    parameters shared within a team (one-hot agent id in the input)."""

    name = "ippo"
    centralised = False


class MAPPO(MultiAgentPPO):
    """Multi-agent PPO: IPPO's actors with a centralised critic on the world state."""

    name = "mappo"
    centralised = True


def make_ippo(config: MultiAgentPPOConfig, env: Any, env_params: Any = None) -> IPPO:
    """Build an IPPO agent (validates ``config`` and the environment before compiling)."""
    return IPPO(config, env, env_params)


def make_mappo(config: MultiAgentPPOConfig, env: Any, env_params: Any = None) -> MAPPO:
    """Build a MAPPO agent (validates ``config`` and the environment before compiling)."""
    return MAPPO(config, env, env_params)


# MPE defaults: (config, hparams overrides). JaxMARL's IPPO MPE config (ippo_ff_mpe.yaml: 16
# envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4 annealed, 1e7 steps) sized down for two
# CPU cores: see docs/marl.md for what these reach and what a 1e7-step run adds.
MARL_DEFAULTS: dict[str, tuple[MultiAgentPPOConfig, dict[str, float]]] = {
    "mpe": (
        MultiAgentPPOConfig(
            num_envs=64,
            num_steps=25,
            num_minibatches=4,
            update_epochs=4,
            total_timesteps=400_000,
            hidden_sizes=(64, 64),
            activation="tanh",
        ),
        {"learning_rate": 2.5e-3, "gamma": 0.99, "gae_lambda": 0.95, "ent_coef": 0.01},
    ),
    "generic": (MultiAgentPPOConfig(), {}),
}


for _name, _builder, _desc in (
    ("ippo", make_ippo, "IPPO: PPO per team, decentralised critics, shared parameters per team"),
    ("mappo", make_mappo, "MAPPO: IPPO's actors with a centralised critic on the world state"),
):
    register_agent(
        _name,
        AgentSpec(
            MultiAgentPPOConfig, PPOHparams, _builder, defaults=MARL_DEFAULTS, description=_desc
        ),
    )


__all__ = [
    "IPPO",
    "MAPPO",
    "MARL_DEFAULTS",
    "MABatch",
    "MultiAgentPPO",
    "MultiAgentPPOConfig",
    "MultiAgentPPOState",
    "TeamData",
    "TeamSpec",
    "make_ippo",
    "make_mappo",
    "team_specs",
]
