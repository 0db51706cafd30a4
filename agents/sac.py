"""Soft actor-critic (Haarnoja et al., 2018) for continuous and discrete actions, one jitted program.

Continuous actions use a tanh-squashed diagonal Gaussian policy; discrete actions (optionally
masked, observation dict ``{"observation", "action_mask"}``) use a categorical policy and critics
that output one Q-value per action (Christodoulou, 2019). Both have twin critics with
Polyak-averaged target networks, automatic entropy tuning, a configurable update-to-data ratio
and learning starts, and bootstrap on truncation (the next observation of a truncated episode is
``info["final_observation"]``, and only ``terminated`` stops the bootstrap).

Contract (see ``agents/base.py`` and DESIGN.md): a frozen :class:`SACConfig` (shapes and
compilation), :class:`SACHparams` (shape-preserving numbers, vmappable), ``agent.init(key,
hparams) -> SACState``, a jitted ``agent.run(state, hparams, n_updates) -> (state, metrics)``
and ``agent.train(key)``. One *update* is ``rollout_steps`` steps of ``num_envs`` environments
(every transition goes to the replay buffer) followed by ``gradient_steps`` gradient steps.

Example::

    env, env_params = accelrl.envs.make("Pendulum-v1")
    agent = make_sac(SACConfig(total_timesteps=20_000), env, env_params)
    state, metrics = agent.train(jax.random.key(0))
    returns = agent.evaluate(state, jax.random.key(1), num_episodes=10)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from accelrl.agents.core import AgentState
from accelrl.agents.distributions import mask_logits, masked_categorical, tanh_gaussian
from accelrl.agents.networks import SACActor, TwinQNetwork, fast_init, split_observation
from accelrl.agents.off_policy import OffPolicyAgent, OffPolicyConfig, check_network
from accelrl.agents.registry import AgentSpec, register_agent
from accelrl.agents.replay_buffer import ReplayBufferState, Transition, polyak

# ---------------------------------------------------------------------------------------------
# Configuration and hyperparameters


@dataclasses.dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """Everything that fixes shapes and compilation of a SAC run (the collect-then-learn loop's
    settings are :class:`~accelrl.agents.off_policy.OffPolicyConfig`'s)."""

    num_envs: int = 1
    """Environment copies stepped in parallel."""
    total_timesteps: int = 20_000
    """Environment steps (summed over the ``num_envs`` copies) of a whole run."""
    actor_hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy network."""
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each of the twin Q-networks."""
    activation: str = "relu"
    """Hidden activation of all networks (a name from ``agents.networks.ACTIVATIONS``)."""
    autotune_alpha: bool = True
    """Learn the entropy coefficient towards the target entropy (else keep ``hparams.alpha``)."""
    log_std_min: float = -5.0
    """Lower bound of the pre-squash log standard deviation (continuous policies)."""
    log_std_max: float = 2.0
    """Upper bound of the pre-squash log standard deviation (continuous policies)."""

    def validate(self) -> SACConfig:
        """Raise ``ValueError`` with a clear message for impossible settings; return self."""
        super().validate()
        check_network(self, "actor_hidden_sizes", "critic_hidden_sizes")
        if not self.log_std_min < self.log_std_max:
            raise ValueError("SACConfig.log_std_min must be below log_std_max")
        return self


@struct.dataclass
class SACHparams:
    """Shape-preserving numbers of SAC: passed as data, so they can be vmapped and changed."""

    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the twin critics."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the log entropy coefficient (when ``autotune_alpha``)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak coefficient: ``target <- (1 - tau) * target + tau * online`` every gradient step."""
    alpha: float = 1.0
    """Initial entropy coefficient (the fixed one when ``autotune_alpha`` is off)."""
    target_entropy_scale: float = 1.0
    """Target entropy: ``-scale * D`` for ``D``-dimensional continuous actions, ``scale * log K``
    for ``K`` discrete actions (default scale 0.89 for discrete, as in CleanRL)."""


# rl-zoo hyperparameters where they exist (Pendulum-v1: 20k steps, lr 1e-3, SB3 defaults
# otherwise); registered with the agent below. Keys are environment families or ids.
SAC_DEFAULTS: dict[str, tuple[SACConfig, dict[str, float]]] = {
    "classic_continuous": (
        SACConfig(total_timesteps=20_000, learning_starts=100, buffer_size=1_000_000),
        {"actor_lr": 1e-3, "critic_lr": 1e-3, "alpha_lr": 1e-3},
    ),
    "classic_discrete": (
        SACConfig(
            total_timesteps=100_000,
            learning_starts=1_000,
            actor_hidden_sizes=(64, 64),
            critic_hidden_sizes=(64, 64),
        ),
        {"actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4, "target_entropy_scale": 0.5},
    ),
    "ThreeBodyContinuous-v0": (
        SACConfig(total_timesteps=200_000, num_envs=4, gradient_steps=2, learning_starts=5_000),
        {"actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4, "gamma": 0.99},
    ),
}


# ---------------------------------------------------------------------------------------------
# Losses (pure functions on arrays; the tests compare them with hand-computed numbers)


def soft_td_target(
    reward: jax.Array, terminated: jax.Array, next_value: jax.Array, gamma: float | jax.Array
) -> jax.Array:
    """``y = r + gamma * (1 - terminated) * V_soft(s')``, all ``f32[B]``.

    ``next_value`` is the soft value of the next observation (for a truncated episode, of
    ``final_observation``): truncation bootstraps, termination does not.
    """
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value


def critic_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """Twin-critic regression: ``0.5 * sum_i mean_b (q[i, b] - y[b])^2`` (SB3's convention).

    Args:
        q: ``f32[2, B]`` Q-values of the stored actions from both critics.
        target: ``f32[B]`` TD targets (no gradient flows into them).
    """
    return 0.5 * jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=-1))


def actor_loss(log_prob: jax.Array, min_q: jax.Array, alpha: jax.Array) -> jax.Array:
    """Continuous policy loss ``mean_b(alpha * log pi(a|s) - min_i Q_i(s, a))``, ``a ~ pi``, ``f32[B]`` in."""
    return jnp.mean(alpha * log_prob - min_q)


def alpha_loss(
    log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float | jax.Array
) -> jax.Array:
    """Entropy-coefficient loss ``-mean_b(log_alpha * (log pi + H_target))`` (log pi not differentiated).

    Minimising it raises alpha while the policy entropy ``-log pi`` is below ``H_target``.
    For discrete actions pass the expected log-probability ``sum_a pi(a|s) log pi(a|s)``.
    """
    return -jnp.mean(log_alpha * (jax.lax.stop_gradient(log_prob) + target_entropy))


def discrete_soft_value(
    probs: jax.Array, log_probs: jax.Array, min_q: jax.Array, alpha: jax.Array
) -> jax.Array:
    """``V(s) = sum_a pi(a|s) (min_i Q_i(s, a) - alpha log pi(a|s))``: ``f32[B, K]`` in, ``f32[B]`` out."""
    return jnp.sum(probs * (min_q - alpha * log_probs), axis=-1)


def discrete_actor_loss(
    probs: jax.Array, log_probs: jax.Array, min_q: jax.Array, alpha: jax.Array
) -> jax.Array:
    """Discrete policy loss ``mean_b sum_a pi(a|s) (alpha log pi(a|s) - min_i Q_i(s, a))``."""
    return jnp.mean(jnp.sum(probs * (alpha * log_probs - jax.lax.stop_gradient(min_q)), axis=-1))


# ---------------------------------------------------------------------------------------------
# Train state


@struct.dataclass
class SACState(AgentState):
    """Everything needed to continue a SAC run bit for bit: the common
    :class:`~accelrl.agents.core.AgentState` fields plus the learner's."""

    actor_params: Any
    """Policy parameters."""
    critic_params: Any
    """Twin critic parameters (leading axis 2 on every leaf)."""
    target_critic_params: Any
    """Polyak-averaged copy of ``critic_params``."""
    log_alpha: jax.Array
    """f32 scalar, log of the entropy coefficient."""
    actor_opt_state: Any
    """Adam moments of the policy."""
    critic_opt_state: Any
    """Adam moments of the critics."""
    alpha_opt_state: Any
    """Adam moments of ``log_alpha``."""
    buffer: ReplayBufferState
    """Replay buffer contents."""


class LearnerStep(NamedTuple):
    """The actor and critic half of one gradient step (before the entropy coefficient)."""

    critic_params: Any
    critic_opt_state: Any
    actor_params: Any
    actor_opt_state: Any
    log_prob: jax.Array
    """``f32[B]`` log pi of the policy's actions (discrete: the expectation over actions)."""
    critic_loss: jax.Array
    actor_loss: jax.Array
    q_mean: jax.Array
    """Mean Q-value of the stored actions (both critics)."""


# ---------------------------------------------------------------------------------------------
# Agent


class SAC(OffPolicyAgent):
    """A SAC agent bound to one (batched) environment; build it with :func:`make_sac`."""

    name = "sac"
    config_cls = SACConfig
    hparams_cls = SACHparams

    def setup(self) -> None:
        cfg, spec = self.config, self.spec
        self.continuous = spec.kind == "continuous"
        self.action_dim = spec.dim
        if self.continuous:
            self.action_low = jnp.asarray(spec.low, jnp.float32)
            self.action_high = jnp.asarray(spec.high, jnp.float32)
        self.actor = SACActor(
            self.action_dim,
            self.continuous,
            tuple(cfg.actor_hidden_sizes),
            cfg.activation,
            cfg.log_std_min,
            cfg.log_std_max,
        )
        self.critic = TwinQNetwork(
            tuple(cfg.critic_hidden_sizes),
            cfg.activation,
            None if self.continuous else self.action_dim,
        )
        super().setup()

    # -- policy ---------------------------------------------------------------------------

    def default_hparams(self) -> SACHparams:
        """Default hyperparameters as float32 scalars (target-entropy scale 0.89 for discrete)."""
        hp = super().default_hparams()
        return hp if self.continuous else hp.replace(target_entropy_scale=jnp.float32(0.89))

    def target_entropy(self, hparams: SACHparams) -> jax.Array:
        """``-scale * D`` (continuous) or ``scale * log K`` (discrete)."""
        if self.continuous:
            return -hparams.target_entropy_scale * self.action_dim
        return hparams.target_entropy_scale * jnp.log(float(self.action_dim))

    def _continuous_policy(self, actor_params: Any, x: jax.Array):
        mean, log_std = self.actor.apply(actor_params, x)
        return tanh_gaussian(mean, log_std, -1.0, 1.0), mean

    def _discrete_log_probs(self, actor_params: Any, x: jax.Array, mask: jax.Array | None):
        logits = mask_logits(self.actor.apply(actor_params, x), mask)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        return jnp.exp(log_probs), log_probs

    def _to_env_action(self, u: jax.Array) -> jax.Array:
        """Squashed action in ``[-1, 1]`` to the environment's bounds."""
        return self.action_low + 0.5 * (u + 1.0) * (self.action_high - self.action_low)

    def _sample(self, actor_params: Any, obs: Any, key: jax.Array, deterministic: bool | jax.Array):
        """Action in the agent's space (squashed ``[-1, 1]`` or index) for a batch of observations."""
        x, mask = split_observation(obs)
        if self.continuous:
            pi, mean = self._continuous_policy(actor_params, x)
            return jnp.where(deterministic, jnp.tanh(mean), pi.sample(seed=key))
        logits = mask_logits(self.actor.apply(actor_params, x), mask)
        sampled = masked_categorical(logits).sample(seed=key)
        return jnp.where(deterministic, jnp.argmax(logits, axis=-1), sampled).astype(jnp.int32)

    def act(
        self, state: SACState, obs: Any, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Environment actions for a batch of observations, ``[N, D]`` floats or ``[N]`` ints."""
        a = self._sample(state.actor_params, obs, key, deterministic)
        return self._to_env_action(a) if self.continuous else a

    def value(self, state: SACState, obs: Any) -> jax.Array:
        """``f32[N]`` value estimate: continuous, ``min_i Q_i(s, a)`` at the policy's mean action
        ``a = tanh(mean)``; discrete, the soft value ``sum_a pi(a|s) (min_i Q_i(s, a) - alpha
        log pi(a|s))``."""
        x, mask = split_observation(obs)
        if self.continuous:
            _, mean = self._continuous_policy(state.actor_params, x)
            return self.critic.apply(state.critic_params, x, jnp.tanh(mean)).min(axis=0)
        p, logp = self._discrete_log_probs(state.actor_params, x, mask)
        min_q = self.critic.apply(state.critic_params, x).min(axis=0)
        return discrete_soft_value(p, logp, min_q, jnp.exp(state.log_alpha))

    def random_action(self, obs: Any, key: jax.Array) -> jax.Array:
        """Uniformly random actions ``[B, D]`` in ``[-1, 1]`` or ``i32[B]`` (valid ones only for
        masked observations)."""
        if self.continuous:
            return jax.random.uniform(
                key, (self.config.num_envs, self.action_dim), minval=-1.0, maxval=1.0
            )
        return self.uniform_discrete(obs, key, self.config.num_envs, self.action_dim)

    def explore(
        self, state: SACState, hparams: SACHparams, key: jax.Array
    ) -> tuple[jax.Array, dict]:
        """Actions ``[B, ...]`` sampled from the policy (squashed ``[-1, 1]`` or indices)."""
        return self._sample(state.actor_params, state.obs, key, False), {}

    def env_action(self, action: jax.Array) -> jax.Array:
        """Squashed actions to the environment's bounds (discrete: unchanged)."""
        return self._to_env_action(action) if self.continuous else action

    # -- init -----------------------------------------------------------------------------

    def init_state(self, key: jax.Array, hparams: SACHparams) -> SACState:
        """Networks, optimisers, an empty replay buffer and the environment reset."""
        k_env, k_actor, k_critic, key = jax.random.split(key, 4)
        start = self.start_fields(key, k_env)
        obs = start["obs"]
        x, _ = split_observation(obs)
        actor_params = fast_init(self.actor, k_actor, x[:1])
        example_action = (
            jnp.zeros((1, self.action_dim)) if self.continuous else jnp.zeros((1,), jnp.int32)
        )
        critic_params = fast_init(
            self.critic, k_critic, x[:1], example_action if self.continuous else None
        )
        log_alpha = jnp.log(jnp.asarray(hparams.alpha, jnp.float32))
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_alpha=log_alpha,
            actor_opt_state=self.adam.init(actor_params),
            critic_opt_state=self.adam.init(critic_params),
            alpha_opt_state=self.adam.init(log_alpha),
            buffer=self.init_buffer(obs, example_action[0]),
            **start,
        )

    # -- learning -------------------------------------------------------------------------

    def _adam_step(self, grads: Any, opt_state: Any, params: Any, lr: jax.Array):
        updates, opt_state = self.adam.update(grads, opt_state, params)
        return optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates)), opt_state

    def td_target(
        self, state: SACState, hparams: SACHparams, batch: Transition, key: jax.Array
    ) -> jax.Array:
        """Soft TD targets ``f32[B]`` of a batch, from the target critics and the current policy.

        ``V(s') = min_i Q'_i(s', a') - alpha log pi(a'|s')`` with ``a' ~ pi(.|s')`` (continuous)
        or its expectation over actions (discrete); ``y = r + gamma (1 - terminated) V(s')``.
        """
        alpha = jnp.exp(state.log_alpha)
        x_next, mask_next = split_observation(batch.next_obs)
        if self.continuous:
            pi_next, _ = self._continuous_policy(state.actor_params, x_next)
            a_next, logp_next = pi_next.sample_and_log_prob(seed=key)
            q_next = self.critic.apply(state.target_critic_params, x_next, a_next).min(axis=0)
            v_next = q_next - alpha * logp_next
        else:
            p_next, logp_next = self._discrete_log_probs(state.actor_params, x_next, mask_next)
            q_next = self.critic.apply(state.target_critic_params, x_next).min(axis=0)
            v_next = discrete_soft_value(p_next, logp_next, q_next, alpha)
        return soft_td_target(batch.reward, batch.terminated, v_next, hparams.gamma)

    def _critic_step(
        self, state: SACState, hparams: SACHparams, batch: Transition, target: jax.Array
    ):
        """Critic regression on the TD targets; returns ``(params, opt_state, loss, q_mean)``."""
        x, _ = split_observation(batch.obs)

        def c_loss(params):
            if self.continuous:
                q = self.critic.apply(params, x, batch.action)
            else:
                q_all = self.critic.apply(params, x)  # [2, B, K]
                q = jnp.take_along_axis(q_all, batch.action[None, :, None], axis=-1)[..., 0]
            return critic_loss(q, target), q

        (c_val, q), grads = jax.value_and_grad(c_loss, has_aux=True)(state.critic_params)
        params, opt = self._adam_step(
            grads, state.critic_opt_state, state.critic_params, hparams.critic_lr
        )
        return params, opt, c_val, jnp.mean(q)

    def _learner_step(
        self, state: SACState, hparams: SACHparams, batch: Transition, key: jax.Array
    ) -> LearnerStep:
        """Critic then actor (against the updated critics) for one batch."""
        alpha = jnp.exp(state.log_alpha)
        x, mask = split_observation(batch.obs)
        k_next, k_pi = jax.random.split(key) if self.continuous else (key, None)

        # CRITIC
        target = self.td_target(state, hparams, batch, k_next)
        critic_params, critic_opt, c_val, q_mean = self._critic_step(state, hparams, batch, target)

        # ACTOR
        if self.continuous:

            def a_loss(params):
                pi, _ = self._continuous_policy(params, x)
                a, logp = pi.sample_and_log_prob(seed=k_pi)
                min_q = self.critic.apply(critic_params, x, a).min(axis=0)
                return actor_loss(logp, min_q, alpha), logp

        else:
            min_q = self.critic.apply(critic_params, x).min(axis=0)

            def a_loss(params):
                p, logp = self._discrete_log_probs(params, x, mask)
                return discrete_actor_loss(p, logp, min_q, alpha), jnp.sum(p * logp, axis=-1)

        (a_val, logp), grads = jax.value_and_grad(a_loss, has_aux=True)(state.actor_params)
        actor_params, actor_opt = self._adam_step(
            grads, state.actor_opt_state, state.actor_params, hparams.actor_lr
        )
        return LearnerStep(
            critic_params, critic_opt, actor_params, actor_opt, logp, c_val, a_val, q_mean
        )

    def gradient_step(self, state: SACState, hparams: SACHparams):
        """One gradient step on a sampled batch: critics, actor, entropy coefficient, targets."""
        key, k_sample, k_loss = jax.random.split(state.key, 3)
        batch = self.buffer.sample(state.buffer, k_sample, self.config.batch_size)
        step = self._learner_step(state, hparams, batch, k_loss)

        # ENTROPY COEFFICIENT
        if self.config.autotune_alpha:
            al_val, grad = jax.value_and_grad(alpha_loss)(
                state.log_alpha, step.log_prob, self.target_entropy(hparams)
            )
            log_alpha, alpha_opt = self._adam_step(
                grad, state.alpha_opt_state, state.log_alpha, hparams.alpha_lr
            )
        else:
            al_val = jnp.zeros((), jnp.float32)
            log_alpha = jnp.log(jnp.asarray(hparams.alpha, jnp.float32))
            alpha_opt = state.alpha_opt_state

        # TARGET NETWORKS
        target = polyak(state.target_critic_params, step.critic_params, hparams.tau)
        state = state.replace(
            actor_params=step.actor_params,
            critic_params=step.critic_params,
            target_critic_params=target,
            log_alpha=log_alpha,
            actor_opt_state=step.actor_opt_state,
            critic_opt_state=step.critic_opt_state,
            alpha_opt_state=alpha_opt,
            key=key,
        )
        metrics = {
            "critic_loss": step.critic_loss,
            "actor_loss": step.actor_loss,
            "alpha_loss": al_val,
            "alpha": jnp.exp(log_alpha),
            "entropy": -jnp.mean(step.log_prob),
            "q_mean": step.q_mean,
        }
        return state, metrics

    def idle_metrics(self, state: SACState, hparams: SACHparams) -> dict[str, jax.Array]:
        """Zero losses, and the current entropy coefficient as ``alpha``."""
        metrics = super().idle_metrics(state, hparams)
        metrics["alpha"] = jnp.exp(state.log_alpha)
        return metrics


def make_sac(config: SACConfig, env: Any, env_params: Any = None) -> SAC:
    """Build a SAC agent; the config is validated before anything compiles.

    Args:
        config: static configuration.
        env: a single environment (batched here into ``config.num_envs`` copies) or an already
            batched one (used as is; episode statistics are added if missing).
        env_params: environment parameters (default: the environment's defaults).

    Raises:
        ValueError: invalid config; ``UnsupportedEnvironmentError`` (a ValueError) for
            multi-agent environments or action spaces SAC cannot handle.
    """
    return SAC(config, env, env_params)


register_agent(
    "sac",
    AgentSpec(
        SACConfig,
        SACHparams,
        make_sac,
        defaults=SAC_DEFAULTS,
        description="SAC: continuous (tanh Gaussian) and discrete/masked actions, twin critics, auto alpha",
    ),
)


__all__ = [
    "SAC",
    "SAC_DEFAULTS",
    "LearnerStep",
    "SACConfig",
    "SACHparams",
    "SACState",
    "Transition",
    "actor_loss",
    "alpha_loss",
    "critic_loss",
    "discrete_actor_loss",
    "discrete_soft_value",
    "make_sac",
    "polyak",
    "soft_td_target",
]
