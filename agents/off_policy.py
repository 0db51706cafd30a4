"""The off-policy half of the skeleton: a replay buffer filled by collection, then gradient steps.

SAC and DQN share the shape of an update: ``rollout_steps`` steps of ``num_envs`` copies, every
transition into a uniform replay buffer (uniformly random actions before ``learning_starts``
environment steps), then ``gradient_steps`` gradient steps on sampled batches (none during the
warm-up). :class:`OffPolicyConfig` holds the settings of that loop and :class:`OffPolicyAgent`
the loop itself: it supplies :meth:`~accelrl.agents.core.Agent.update` and leaves the
skeleton's ``train``/``run``/``evaluate`` as they are. An algorithm supplies what is its own:

* :meth:`OffPolicyAgent.explore`: the behaviour policy's action of a collection step;
* :meth:`OffPolicyAgent.random_action`: the warm-up action;
* :meth:`OffPolicyAgent.gradient_step`: one gradient step from the state's buffer;
* optionally :meth:`OffPolicyAgent.env_action` (agent space -> environment space) and
  :meth:`OffPolicyAgent.idle_metrics` (the learning metrics of an update without gradient steps).

Its state is an :class:`~accelrl.agents.core.AgentState` subclass with a ``buffer`` field
(:class:`~accelrl.agents.replay_buffer.ReplayBufferState`), made by :meth:`OffPolicyAgent.init_buffer`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from accelrl.agents.core import Agent, AgentState, RunConfig
from accelrl.agents.distributions import masked_categorical
from accelrl.agents.networks import ACTIVATIONS, split_observation
from accelrl.agents.replay_buffer import ReplayBuffer, ReplayBufferState, Transition


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig(RunConfig):
    """Settings of the collect-then-learn loop every off-policy agent has (subclasses add their
    networks' and may change these defaults)."""

    rollout_steps: int = 1
    """Vector-environment steps collected per update."""
    gradient_steps: int = 1
    """Gradient steps per update; the update-to-data ratio is
    ``gradient_steps / (num_envs * rollout_steps)``."""
    batch_size: int = 256
    """Transitions per gradient step, sampled uniformly from the replay buffer."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity in transitions (capped at ``total_timesteps``: older transitions
    than a whole run never exist)."""
    learning_starts: int = 100
    """Environment steps taken with uniformly random actions before gradient steps start."""

    @property
    def steps_per_update(self) -> int:
        """Environment steps per update: ``num_envs * rollout_steps``."""
        return self.num_envs * self.rollout_steps

    @property
    def utd_ratio(self) -> float:
        """Update-to-data ratio: gradient steps per environment step."""
        return self.gradient_steps / self.steps_per_update

    @property
    def buffer_capacity(self) -> int:
        """Replay buffer slots actually allocated."""
        return max(min(self.buffer_size, self.total_timesteps), self.steps_per_update)

    def validate(self) -> OffPolicyConfig:
        """Raise ``ValueError`` naming the field for impossible settings; return ``self``."""
        name = type(self).__name__
        for f in ("rollout_steps", "gradient_steps", "batch_size", "buffer_size"):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{f} must be a positive integer, got {value!r}")
        super().validate()
        if isinstance(self.learning_starts, bool) or self.learning_starts < 0:
            raise ValueError(f"{name}.learning_starts must be >= 0, got {self.learning_starts}")
        if self.buffer_size < self.steps_per_update:
            raise ValueError(
                f"{name}.buffer_size={self.buffer_size} cannot hold one update's "
                f"{self.steps_per_update} transitions"
            )
        if self.learning_starts >= self.total_timesteps:
            raise ValueError(
                f"{name}.learning_starts={self.learning_starts} >= total_timesteps="
                f"{self.total_timesteps}: the run would never take a gradient step"
            )
        return self


def check_network(config: Any, *width_fields: str) -> None:
    """Raise ``ValueError`` for an unknown ``config.activation`` or a ``config.<field>`` of
    hidden widths that is empty or holds a width below 1."""
    if config.activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {config.activation!r}; choose one of {sorted(ACTIVATIONS)}"
        )
    for f in width_fields:
        widths = getattr(config, f)
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"{type(config).__name__}.{f} must hold positive widths, got {widths}")


class OffPolicyAgent(Agent):
    """Base class of replay-buffer agents: collection, the warm-up and the learn-or-skip update.

    Subclasses set ``config_cls`` to an :class:`OffPolicyConfig` subclass, call
    ``super().setup()`` (it makes ``self.buffer`` and ``self.adam``), build their state with
    :meth:`init_buffer` and supply the hooks named in the module docstring.
    """

    def setup(self) -> None:
        """The replay buffer (``config.buffer_capacity`` slots) and the Adam moments transform."""
        self.buffer = ReplayBuffer(self.config.buffer_capacity)
        self.adam = optax.scale_by_adam()

    # -- what an algorithm supplies ------------------------------------------------------------

    def explore(
        self, state: AgentState, hparams: Any, key: jax.Array
    ) -> tuple[jax.Array, dict[str, Any]]:
        """The behaviour policy's actions ``[B, ...]`` (agent space, as stored in the buffer) for
        ``state.obs``, and state fields the collection step sets (e.g. DQN's epsilon)."""
        raise NotImplementedError

    def random_action(self, obs: Any, key: jax.Array) -> jax.Array:
        """Uniformly random actions ``[B, ...]`` (agent space) for the warm-up."""
        raise NotImplementedError

    def gradient_step(self, state: AgentState, hparams: Any) -> tuple[AgentState, dict]:
        """One gradient step from a batch of ``state.buffer``: the new state and its learning
        metrics (``f32[]`` each)."""
        raise NotImplementedError

    def env_action(self, action: jax.Array) -> jax.Array:
        """Agent-space actions ``[B, ...]`` to the environment's (identity by default)."""
        return action

    def idle_metrics(self, state: AgentState, hparams: Any) -> dict[str, jax.Array]:
        """The learning metrics of an update without gradient steps (the warm-up): zeros with
        the structure :meth:`gradient_step` returns."""
        shapes = jax.eval_shape(self.gradient_step, state, hparams)[1]
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    # -- shared pieces -------------------------------------------------------------------------

    def uniform_discrete(self, obs: Any, key: jax.Array, n: int, num_actions: int) -> jax.Array:
        """Uniformly random valid actions ``i32[n]`` of ``num_actions`` (the observations'
        ``"action_mask"``, if any, limits them)."""
        _, mask = split_observation(obs)
        logits = jnp.zeros((n, num_actions))
        return masked_categorical(logits, mask).sample(seed=key).astype(jnp.int32)

    def init_buffer(self, obs: Any, action: jax.Array) -> ReplayBufferState:
        """An empty replay buffer for transitions shaped like one copy of ``obs`` (leaves
        ``[B, ...]``) and one example ``action`` (agent space, no batch axis)."""
        one = jax.tree.map(lambda v: v[0], obs)
        example = Transition(
            obs=one,
            action=action,
            reward=jnp.zeros((), jnp.float32),
            next_obs=one,
            terminated=jnp.zeros((), jnp.float32),
        )
        return self.buffer.init(example)

    def collect_step(self, state: AgentState, hparams: Any) -> tuple[AgentState, dict]:
        """One batched environment step into the buffer: :meth:`explore` (:meth:`random_action`
        before ``learning_starts``); returns the state and the step's episode info."""
        key, k_act, k_rand, k_env = jax.random.split(state.key, 4)
        action, fields = self.explore(state, hparams, k_act)
        warmup = state.env_steps < self.config.learning_starts
        action = jnp.where(warmup, self.random_action(state.obs, k_rand), action)
        new, out = self.env_step(state, k_env, self.env_action(action))
        # STORE: the next observation of a finished episode is the pre-reset one; only
        # termination stops the bootstrap (truncated transitions bootstrap from it).
        transition = Transition(
            obs=state.obs,
            action=action,
            reward=out.reward,
            next_obs=out.next_obs,
            terminated=out.terminated.astype(jnp.float32),
        )
        new = new.replace(buffer=self.buffer.add(state.buffer, transition), key=key, **fields)
        return new, out.episode

    def learn(self, state: AgentState, hparams: Any) -> tuple[AgentState, dict]:
        """``gradient_steps`` gradient steps; metrics are their means."""
        state, metrics = jax.lax.scan(
            lambda s, _: self.gradient_step(s, hparams), state, None, self.config.gradient_steps
        )
        return state, jax.tree.map(jnp.mean, metrics)

    def update(self, state: AgentState, hparams: Any) -> tuple[AgentState, dict, dict]:
        """``rollout_steps`` collection steps into the buffer, then ``gradient_steps`` gradient
        steps (none before ``learning_starts``)."""
        # COLLECT
        state, episodes = jax.lax.scan(
            lambda s, _: self.collect_step(s, hparams), state, None, self.config.rollout_steps
        )
        # LEARN (after the warm-up)
        ready = state.env_steps >= max(self.config.learning_starts, 1)
        state, metrics = jax.lax.cond(
            ready, self.learn, lambda s, h: (s, self.idle_metrics(s, h)), state, hparams
        )
        return state, metrics, episodes


__all__ = ["OffPolicyAgent", "OffPolicyConfig", "check_network"]
