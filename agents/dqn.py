"""Deep Q-networks (Mnih et al., 2015) with double-DQN targets, as one jitted program.

The agent of Saz Ulibarrena & Portegies Zwart's three-body time-step controller (Huber loss,
AdamW, a 10k replay buffer, batch 128, gamma 0.99, soft target updates with tau 0.005), on the
shared agent skeleton. Discrete and masked-discrete actions (observation dict
``{"observation", "action_mask"}``: invalid actions are never chosen, neither when acting nor in
the bootstrap maximum).

One *update* is ``rollout_steps`` epsilon-greedy steps of ``num_envs`` environments (every
transition goes to the replay buffer) followed by ``gradient_steps`` gradient steps on uniformly
sampled batches. The target network follows the online one by Polyak averaging with
``hparams.tau`` every ``target_update_interval`` gradient steps (``tau = 1`` with an interval
> 1 is the classic hard copy). Truncated episodes bootstrap from ``info["final_observation"]``;
only ``terminated`` stops the bootstrap.

What is static and what is data (DESIGN.md, "Contracts"): a frozen :class:`DQNConfig` (sizes,
the double-DQN switch, the loss kind, the target-update interval), and :class:`DQNHparams`
(learning rate, discount, tau, the epsilon schedule, weight decay, Huber delta, gradient clip,
reward scale), all shape-preserving numbers that can be vmapped over seeds and settings.

Example::

    agent, config, hparams = accelrl.agents.build("CartPole-v1", "dqn")
    state, metrics = agent.train(jax.random.key(0), hparams)
    returns = agent.evaluate(state, jax.random.key(1), num_episodes=10)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from accelrl.agents.base import clip_by_global_norm
from accelrl.agents.core import AgentState
from accelrl.agents.distributions import mask_logits
from accelrl.agents.networks import QNetwork, fast_init, split_observation
from accelrl.agents.off_policy import OffPolicyAgent, OffPolicyConfig, check_network
from accelrl.agents.registry import AgentSpec, register_agent
from accelrl.agents.replay_buffer import ReplayBufferState, Transition, polyak

LOSSES: tuple[str, ...] = ("huber", "mse")
"""TD-error losses :func:`q_loss` knows."""

# ---------------------------------------------------------------------------------------------
# Configuration and hyperparameters


@dataclasses.dataclass(frozen=True)
class DQNConfig(OffPolicyConfig):
    """Everything that fixes shapes and compilation of a DQN run (the collect-then-learn loop's
    settings are :class:`~accelrl.agents.off_policy.OffPolicyConfig`'s)."""

    num_envs: int = 4
    """Environment copies stepped in parallel."""
    total_timesteps: int = 100_000
    """Environment steps (summed over the ``num_envs`` copies) of a whole run."""
    batch_size: int = 128
    """Transitions per gradient step, sampled uniformly from the replay buffer."""
    buffer_size: int = 10_000
    """Replay buffer capacity in transitions (capped at ``total_timesteps``)."""
    learning_starts: int = 1_000
    """Environment steps taken with uniformly random actions before gradient steps start."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer widths of the Q-network."""
    activation: str = "relu"
    """Hidden activation (a name from ``agents.networks.ACTIVATIONS``)."""
    double_dqn: bool = True
    """Double-DQN target: the online network picks the next action, the target network values
    it (van Hasselt et al., 2016). Off: the target network's own maximum."""
    target_update_interval: int = 1
    """Gradient steps between target-network updates (each a Polyak step with ``hparams.tau``)."""
    loss: str = "huber"
    """TD-error loss: ``"huber"`` (delta ``hparams.huber_delta``) or ``"mse"``."""

    def validate(self) -> DQNConfig:
        """Raise ``ValueError`` naming the field for impossible settings; return ``self``."""
        value = self.target_update_interval
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"DQNConfig.target_update_interval must be a positive integer, got {value!r}"
            )
        super().validate()
        check_network(self, "hidden_sizes")
        if self.loss not in LOSSES:
            raise ValueError(f"DQNConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        return self


@struct.dataclass
class DQNHparams:
    """Shape-preserving numbers of DQN: passed as data, so they can be vmapped and changed."""

    learning_rate: float = 1e-3
    """Adam(W) step size."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak coefficient of a target update: ``target <- (1 - tau) target + tau online``."""
    epsilon_start: float = 1.0
    """Exploration probability at the first step (after ``learning_starts`` random steps)."""
    epsilon_end: float = 0.05
    """Exploration probability after the schedule."""
    exploration_fraction: float = 0.1
    """Fraction of ``total_timesteps`` over which epsilon falls linearly to ``epsilon_end``."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW) per unit learning rate; 0 is plain Adam."""
    huber_delta: float = 1.0
    """Huber loss threshold (``config.loss == "huber"``)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this in the TD target (Q-values live on the scaled reward;
    reported episode returns are unscaled)."""


# Defaults per environment id or family: (config, hparams overrides).
DQN_DEFAULTS: dict[str, tuple[DQNConfig, dict[str, float]]] = {
    # rl-zoo's CartPole-v1 DQN (50k steps, lr 2.3e-3, batch 64, train every 256 steps with
    # 128 gradient steps, epsilon to 0.04 over 16% of the run). Its target_update_interval of
    # 10 counts environment steps, checked between collections, so SB3 copies the target once
    # per 128-step burst: here every 128 gradient steps (every 10 gradient steps diverges).
    # 64x64 instead of 256x256: measured 500 (seed 0) at 50k steps, 6x faster on a CPU.
    "CartPole-v1": (
        DQNConfig(
            num_envs=4,
            rollout_steps=64,
            gradient_steps=128,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1_000,
            total_timesteps=50_000,
            hidden_sizes=(64, 64),
            target_update_interval=128,
        ),
        {
            "learning_rate": 2.3e-3,
            "tau": 1.0,
            "epsilon_end": 0.04,
            "exploration_fraction": 0.16,
        },
    ),
    "classic_discrete": (
        DQNConfig(
            num_envs=4,
            rollout_steps=4,
            gradient_steps=1,
            batch_size=128,
            buffer_size=50_000,
            learning_starts=5_000,
            total_timesteps=300_000,
            hidden_sizes=(256, 256),
            target_update_interval=250,
            normalize_obs=True,
        ),
        {"learning_rate": 6.3e-4, "tau": 1.0, "epsilon_end": 0.1, "exploration_fraction": 0.12},
    ),
    # ThreeBody-v0: the paper's DQN (Huber loss, AdamW lr 1e-3, buffer 10k, batch 128,
    # gamma 0.99, soft target updates tau 0.005) on a smaller network (the paper's 11 layers of
    # 200 are too slow on two CPU cores), with observation normalisation and rewards scaled by
    # 0.01 (the paper's reward has terminal values of -3000 next to per-step values of ~1-4).
    "three_body": (
        DQNConfig(
            num_envs=16,
            rollout_steps=2,
            gradient_steps=4,
            batch_size=128,
            buffer_size=10_000,
            learning_starts=2_000,
            total_timesteps=300_000,
            hidden_sizes=(128, 128),
            normalize_obs=True,
        ),
        {
            "learning_rate": 1e-3,
            "gamma": 0.99,
            "tau": 0.005,
            "epsilon_end": 0.02,
            "exploration_fraction": 0.2,
            "weight_decay": 0.01,
            "reward_scale": 0.01,
        },
    ),
    "generic": (DQNConfig(), {}),
}


# ---------------------------------------------------------------------------------------------
# Losses and schedules (pure functions on arrays; the tests compare them with hand values)


def epsilon_schedule(
    step: jax.Array,
    total_timesteps: int,
    start: jax.Array | float,
    end: jax.Array | float,
    fraction: jax.Array | float,
) -> jax.Array:
    """Linear decay from ``start`` to ``end`` over ``fraction * total_timesteps`` steps, then
    ``end``: ``f32[]`` for an ``i32[]`` environment-step count (a ``fraction`` of 0 is ``end``
    from the first step)."""
    horizon = jnp.asarray(fraction, jnp.float32) * total_timesteps
    progress = jnp.where(
        horizon > 0,
        jnp.clip(jnp.asarray(step, jnp.float32) / jnp.maximum(horizon, 1e-9), 0.0, 1.0),
        1.0,
    )
    return jnp.asarray(start, jnp.float32) + progress * (
        jnp.asarray(end, jnp.float32) - jnp.asarray(start, jnp.float32)
    )


def masked_q(q: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Q-values ``f32[..., K]`` with invalid actions (``mask`` False) pushed far below every
    valid one (``mask`` None: unchanged; a row without valid actions: unchanged)."""
    return mask_logits(q, mask)


def bootstrap_value(
    next_q_target: jax.Array,
    next_q_online: jax.Array | None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """The value of the next state, ``f32[B]``, from Q-values ``f32[B, K]``.

    ``next_q_online`` None: ``max_a Q_target(s', a)`` (DQN); given: ``Q_target(s', a*)`` with
    ``a* = argmax_a Q_online(s', a)`` (double DQN). ``mask`` (``bool[B, K]``) restricts both to
    valid actions.
    """
    if next_q_online is None:
        return jnp.max(masked_q(next_q_target, mask), axis=-1)
    best = jnp.argmax(masked_q(next_q_online, mask), axis=-1)
    return jnp.take_along_axis(next_q_target, best[:, None], axis=-1)[:, 0]


def td_target(
    reward: jax.Array, terminated: jax.Array, next_value: jax.Array, gamma: jax.Array | float
) -> jax.Array:
    """``y = r + gamma * (1 - terminated) * V(s')``, all ``f32[B]``: truncation bootstraps,
    termination does not."""
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value


def q_loss(
    q: jax.Array, target: jax.Array, kind: str = "huber", delta: jax.Array | float = 1.0
) -> jax.Array:
    """Mean TD-error loss of ``q`` ``f32[B]`` (the stored actions' Q-values) against ``target``
    ``f32[B]`` (no gradient flows into it): Huber ``0.5 x^2`` for ``|x| <= delta``, else
    ``delta (|x| - 0.5 delta)``; or ``"mse"``, ``0.5 x^2``.

    Raises:
        ValueError: an unknown ``kind``.
    """
    err = q - jax.lax.stop_gradient(target)
    if kind == "mse":
        return jnp.mean(0.5 * err**2)
    if kind != "huber":
        raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
    abs_err = jnp.abs(err)
    quad = jnp.minimum(abs_err, delta)
    return jnp.mean(0.5 * quad**2 + delta * (abs_err - quad))


# ---------------------------------------------------------------------------------------------
# Train state


@struct.dataclass
class DQNState(AgentState):
    """Everything needed to continue a DQN run bit for bit (one seed): the common
    :class:`~accelrl.agents.core.AgentState` fields plus the learner's."""

    params: Any
    """Online Q-network parameters."""
    target_params: Any
    """Target Q-network parameters."""
    opt_state: Any
    """Adam moments."""
    buffer: ReplayBufferState
    """Replay buffer contents."""
    epsilon: jax.Array
    """Exploration probability of the last collection step, ``f32[]`` (stochastic ``act``)."""
    gradient_step: jax.Array
    """Gradient steps taken, ``i32[]`` (target-update timing)."""


# ---------------------------------------------------------------------------------------------
# Agent


class DQN(OffPolicyAgent):
    """A DQN agent bound to one (batched) environment; build it with :func:`make_dqn`."""

    name = "dqn"
    config_cls = DQNConfig
    hparams_cls = DQNHparams
    supported_actions = ("discrete", "masked_discrete")

    def setup(self) -> None:
        cfg = self.config
        self.num_actions = self.spec.dim
        self.network = QNetwork(tuple(cfg.hidden_sizes), cfg.activation, self.num_actions)
        super().setup()

    # -- policy ---------------------------------------------------------------------------

    def q_values(self, params: Any, obs: Any) -> tuple[jax.Array, jax.Array | None]:
        """``(Q f32[N, K], mask bool[N, K] or None)`` for (normalised) observations ``[N, ...]``."""
        x, mask = split_observation(obs)
        return self.network.apply(params, x), mask

    def _greedy(self, params: Any, obs: Any) -> jax.Array:
        q, mask = self.q_values(params, obs)
        return jnp.argmax(masked_q(q, mask), axis=-1).astype(jnp.int32)

    def _epsilon_greedy(
        self, params: Any, obs: Any, key: jax.Array, epsilon: jax.Array
    ) -> jax.Array:
        n = jax.tree.leaves(obs)[0].shape[0]
        k_explore, k_random = jax.random.split(key)
        explore = jax.random.uniform(k_explore, (n,)) < epsilon
        return jnp.where(
            explore,
            self.uniform_discrete(obs, k_random, n, self.num_actions),
            self._greedy(params, obs),
        )

    def act(
        self, state: DQNState, obs: Any, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Actions ``i32[N]`` for observations ``[N, ...]``: greedy when ``deterministic``, else
        epsilon-greedy with the state's current epsilon."""
        if deterministic:
            return self._greedy(state.params, obs)
        return self._epsilon_greedy(state.params, obs, key, state.epsilon)

    def value(self, state: DQNState, obs: Any) -> jax.Array:
        """``max_a Q(s, a)`` over valid actions, ``f32[N]``."""
        q, mask = self.q_values(state.params, obs)
        return jnp.max(masked_q(q, mask), axis=-1)

    def epsilon(self, env_steps: jax.Array, hparams: DQNHparams) -> jax.Array:
        """Exploration probability after ``env_steps`` environment steps, ``f32[]``."""
        return epsilon_schedule(
            env_steps,
            self.config.total_timesteps,
            hparams.epsilon_start,
            hparams.epsilon_end,
            hparams.exploration_fraction,
        )

    # -- init -----------------------------------------------------------------------------

    def init_state(self, key: jax.Array, hparams: DQNHparams) -> DQNState:
        """Network, optimiser, an empty replay buffer and the environment reset."""
        key, k_net, k_env = jax.random.split(key, 3)
        start = self.start_fields(key, k_env)
        obs = start["obs"]
        x, _ = split_observation(obs)
        params = fast_init(self.network, k_net, x[:1])
        return DQNState(
            params=params,
            target_params=params,
            opt_state=self.adam.init(params),
            buffer=self.init_buffer(obs, jnp.zeros((), jnp.int32)),
            epsilon=jnp.asarray(hparams.epsilon_start, jnp.float32),
            gradient_step=jnp.int32(0),
            **start,
        )

    # -- collection -----------------------------------------------------------------------

    def explore(
        self, state: DQNState, hparams: DQNHparams, key: jax.Array
    ) -> tuple[jax.Array, dict]:
        """Epsilon-greedy actions ``i32[B]`` with the schedule's epsilon (kept in the state)."""
        epsilon = self.epsilon(state.env_steps, hparams)
        return self._epsilon_greedy(state.params, state.obs, key, epsilon), {"epsilon": epsilon}

    def random_action(self, obs: Any, key: jax.Array) -> jax.Array:
        """Uniformly random valid actions ``i32[B]``."""
        return self.uniform_discrete(obs, key, self.config.num_envs, self.num_actions)

    # -- learning -------------------------------------------------------------------------

    def targets(self, state: DQNState, hparams: DQNHparams, batch: Transition) -> jax.Array:
        """TD targets ``f32[B]`` of a batch (scaled rewards; double-DQN when configured)."""
        next_q_target, mask = self.q_values(state.target_params, batch.next_obs)
        next_q_online = (
            self.q_values(state.params, batch.next_obs)[0] if self.config.double_dqn else None
        )
        next_value = bootstrap_value(next_q_target, next_q_online, mask)
        return td_target(
            batch.reward * hparams.reward_scale, batch.terminated, next_value, hparams.gamma
        )

    def gradient_step(self, state: DQNState, hparams: DQNHparams):
        """One gradient step on a sampled batch, then the target network when it is due."""
        key, k_sample = jax.random.split(state.key)
        batch = self.buffer.sample(state.buffer, k_sample, self.config.batch_size)
        target = self.targets(state, hparams, batch)

        def loss_fn(params):
            q_all, _ = self.q_values(params, batch.obs)
            q = jnp.take_along_axis(q_all, batch.action[:, None], axis=-1)[:, 0]
            return q_loss(q, target, self.config.loss, hparams.huber_delta), q

        (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grads, gnorm = clip_by_global_norm(grads, hparams.max_grad_norm)
        updates, opt_state = self.adam.update(grads, state.opt_state, state.params)
        params = jax.tree.map(
            lambda p, u: p - hparams.learning_rate * (u + hparams.weight_decay * p),
            state.params,
            updates,
        )
        # TARGET NETWORK: a Polyak step every target_update_interval gradient steps
        step = state.gradient_step + 1
        due = step % self.config.target_update_interval == 0
        moved = polyak(state.target_params, params, hparams.tau)
        target_params = jax.tree.map(lambda m, t: jnp.where(due, m, t), moved, state.target_params)
        state = state.replace(
            params=params,
            target_params=target_params,
            opt_state=opt_state,
            gradient_step=step,
            key=key,
        )
        return state, {"loss": loss, "q_mean": jnp.mean(q), "grad_norm": gnorm}

    def update(self, state: DQNState, hparams: DQNHparams):
        """The off-policy update (:meth:`OffPolicyAgent.update`) with the collection's last
        epsilon as a metric."""
        state, metrics, episodes = super().update(state, hparams)
        metrics["epsilon"] = state.epsilon
        return state, metrics, episodes


def make_dqn(config: DQNConfig, env: Any, env_params: Any = None) -> DQN:
    """Build a DQN agent; the config is validated before anything compiles.

    Args:
        config: static configuration.
        env: a single environment (batched here into ``config.num_envs`` copies) or an already
            batched one (used as is).
        env_params: environment parameters (default: the environment's defaults).

    Raises:
        ValueError: invalid config; ``UnsupportedEnvironmentError`` (a ValueError) for
            continuous or multi-agent environments.
    """
    return DQN(config, env, env_params)


register_agent(
    "dqn",
    AgentSpec(
        DQNConfig,
        DQNHparams,
        make_dqn,
        defaults=DQN_DEFAULTS,
        description="DQN: discrete and masked-discrete actions, double-DQN, target network, "
        "epsilon-greedy",
    ),
)


__all__ = [
    "DQN",
    "DQN_DEFAULTS",
    "LOSSES",
    "DQNConfig",
    "DQNHparams",
    "DQNState",
    "Transition",
    "bootstrap_value",
    "epsilon_schedule",
    "make_dqn",
    "masked_q",
    "polyak",
    "q_loss",
    "td_target",
]
