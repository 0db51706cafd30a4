"""Proximal policy optimisation (Schulman et al., 2017) as one jitted program.

``make_ppo(config, env)`` returns a :class:`PPO` whose ``run(state, hparams, n_updates)`` is a
``lax.scan`` over updates; each update collects ``num_steps`` steps from ``num_envs`` copies,
computes GAE advantages (bootstrapping through truncation with ``final_observation``, not
through termination) and runs ``update_epochs`` epochs of ``num_minibatches`` clipped-objective
minibatch steps. Discrete, masked-discrete (observation dict with ``"action_mask"``) and
continuous (diagonal Gaussian, actions clipped to the bounds) action spaces.

Example:
    >>> env, params = accelrl.envs.make("CartPole-v1")
    >>> agent = make_ppo(PPOConfig(total_timesteps=100_000), env, params)
    >>> state, metrics = agent.train(jax.random.PRNGKey(0))
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from accelrl.agents.base import (
    ActionSpec,
    action_spec,
    check_action_kind,
    clip_by_global_norm,
    episode_metrics,
    obs_normalizer,
    unbatched_params,
    wrap_env,
)
from accelrl.agents.evaluation import evaluate_policy, max_episode_steps
from accelrl.agents.gae import gae
from accelrl.agents.networks import ACTIVATIONS, ActorCritic, fast_init


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static PPO settings: everything that fixes shapes or the compiled program."""

    num_envs: int = 8
    """Parallel environment copies ``B``."""
    num_steps: int = 128
    """Rollout length ``T`` per update (steps per copy)."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide ``num_envs * num_steps``."""
    update_epochs: int = 4
    """Passes over each rollout."""
    total_timesteps: int = 500_000
    """Environment steps (over all copies) of a full run; ``num_updates`` derives from it."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and the critic."""
    activation: str = "tanh"
    """Hidden activation (tanh, relu, elu, gelu, silu)."""
    shared_torso: bool = False
    """Share one torso between actor and critic heads."""
    log_std_init: float = 0.0
    """Initial log standard deviation of continuous policies."""
    normalize_obs: bool = False
    """Normalise observations with running statistics (``NormalizeObservation``)."""
    obs_clip: float = 10.0
    """Clip of normalised observations."""
    normalize_advantages: bool = True
    """Normalise advantages per minibatch."""
    clip_value_loss: bool = False
    """Clip the value loss around the rollout's values (``hparams.value_clip_eps``)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over ``num_updates``."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    eval_episodes: int = 32
    """Episodes per evaluation (scripts and ``evaluate`` defaults)."""

    @property
    def batch_size(self) -> int:
        """Transitions per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """Transitions per minibatch."""
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Updates in a full run: ``total_timesteps // batch_size``."""
        return self.total_timesteps // self.batch_size

    def validate(self) -> PPOConfig:
        """Raise ``ValueError`` with a clear message for impossible settings; return self."""
        for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs", "eval_episodes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} does not divide the rollout batch "
                f"num_envs * num_steps = {self.num_envs} * {self.num_steps} = {self.batch_size}"
            )
        if self.num_updates < 1:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is smaller than one update "
                f"(num_envs * num_steps = {self.batch_size})"
            )
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")
        if self.obs_clip <= 0 or self.adam_eps <= 0:
            raise ValueError("obs_clip and adam_eps must be positive")
        return self


@struct.dataclass
class PPOHparams:
    """Shape-preserving PPO numbers (data, vmappable over seeds and settings)."""

    learning_rate: float = 2.5e-4
    """Adam step size (annealed when ``config.anneal_lr``)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """Policy ratio clip."""
    value_clip_eps: float = 0.2
    """Value clip (used when ``config.clip_value_loss``)."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before GAE (value targets live on the scaled reward;
    reported episode returns are unscaled)."""


@struct.dataclass
class PPOState:
    """Everything needed to continue a PPO run bit for bit (one seed)."""

    params: Any
    """Actor-critic parameters."""
    opt_state: Any
    """Adam state."""
    env_state: Any
    """Batched, wrapped environment state."""
    obs: Any
    """Current observations ``[B, ...]`` (normalised when ``normalize_obs``)."""
    key: jax.Array
    """RNG key."""
    update_step: jax.Array
    """Updates done, ``i32[]``."""
    env_steps: jax.Array
    """Environment steps done (over all copies), ``i32[]``."""
    last_return: jax.Array
    """Mean return of the last update in which episodes finished (NaN before), ``f32[]``."""
    last_length: jax.Array
    """Likewise for episode lengths, ``f32[]``."""


class Transition(NamedTuple):
    """One step of the batched rollout (leading axes ``[T, B]`` once stacked)."""

    obs: Any
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    next_obs: Any  # info["final_observation"]: the next observation before any reset
    episode: dict[str, jax.Array]  # EpisodeStatistics info


class Batch(NamedTuple):
    """Flattened training data of one update (leading axis ``[T * B]``)."""

    obs: Any
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


class _RolloutCarry(NamedTuple):
    params: Any
    env_state: Any
    obs: Any
    key: jax.Array


class _EpochCarry(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array


class _MinibatchCarry(NamedTuple):
    params: Any
    opt_state: Any


# ----------------------------------------------------------------------------------------------
# Losses (pure; tested against hand-computed values)


def policy_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array, clip_eps: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate ``mean(max(-A r, -A clip(r, 1 - eps, 1 + eps)))`` with ``r`` the ratio.

    Returns the loss and ``approx_kl`` (``mean((r - 1) - log r)``) and ``clip_fraction``.
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    unclipped = -advantage * ratio
    clipped = -advantage * jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = jnp.maximum(unclipped, clipped).mean()
    aux = {
        "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
        "clip_fraction": (jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32).mean(),
    }
    return loss, aux


def value_loss(
    value: jax.Array,
    old_value: jax.Array,
    target: jax.Array,
    clip_eps: jax.Array,
    clip: bool,
) -> jax.Array:
    """``0.5 * mean((V - target)^2)``, or with ``clip`` the pessimistic maximum with the value
    clipped to ``old_value +- clip_eps``."""
    err = jnp.square(value - target)
    if clip:
        v_clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        err = jnp.maximum(err, jnp.square(v_clipped - target))
    return 0.5 * err.mean()


def normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``(x - mean) / (std + eps)``."""
    return (x - x.mean()) / (x.std() + eps)


# ----------------------------------------------------------------------------------------------


class PPO:
    """A PPO agent for one environment; see :func:`make_ppo`."""

    name = "ppo"
    supported_actions = ("discrete", "masked_discrete", "continuous")

    def __init__(self, config: PPOConfig, env: Any, env_params: Any = None):
        self.config = config.validate()
        self.env = wrap_env(env, config.num_envs, config.normalize_obs, config.obs_clip)
        self.env_params = self.env.default_params if env_params is None else env_params
        self.spec: ActionSpec = action_spec(self.env, self._unbatched_params)
        check_action_kind("PPO", self.spec, self.supported_actions, type(self.env.env).__name__)
        self.network = ActorCritic(
            action_dim=self.spec.dim,
            continuous=self.spec.kind == "continuous",
            hidden_sizes=tuple(config.hidden_sizes),
            activation=config.activation,
            shared_torso=config.shared_torso,
            log_std_init=config.log_std_init,
        )
        self.optimizer = optax.scale_by_adam(eps=config.adam_eps)
        self.init = jax.jit(self._init)
        self.run = jax.jit(self._run, static_argnums=2)
        self.evaluate = jax.jit(self._evaluate, static_argnums=(2, 3))

    # -- properties -------------------------------------------------------------------------

    @property
    def _unbatched_params(self) -> Any:
        """Env params without a per-copy batch axis (for spaces and evaluation)."""
        return unbatched_params(self.env, self.env_params)

    @property
    def num_updates(self) -> int:
        return self.config.num_updates

    @property
    def steps_per_update(self) -> int:
        return self.config.batch_size

    def default_hparams(self) -> PPOHparams:
        return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), PPOHparams())

    # -- acting -----------------------------------------------------------------------------

    def _env_action(self, action: jax.Array) -> jax.Array:
        if self.spec.kind == "continuous":
            return jnp.clip(action, self.spec.low, self.spec.high)
        return action

    def act(self, state: PPOState, obs: Any, key: jax.Array, deterministic: bool = False) -> jax.Array:
        """Environment actions ``[N, ...]`` for normalised observations ``[N, ...]``."""
        pi, _ = self.network.apply(state.params, obs)
        action = pi.mode() if deterministic else pi.sample(seed=key)
        return self._env_action(action)

    def _evaluate(
        self, state: PPOState, key: jax.Array, num_episodes: int, deterministic: bool = True
    ) -> jax.Array:
        params = self._unbatched_params
        return evaluate_policy(
            self.env.env,
            params,
            lambda obs, k: self.act(state, obs, k, deterministic),
            key,
            num_episodes,
            max_episode_steps(params),
            obs_normalizer(self.env, state.env_state),
        )

    # -- init -------------------------------------------------------------------------------

    def _init(self, key: jax.Array, hparams: PPOHparams | None = None) -> PPOState:
        """Fresh state (``self.init``, jitted): network and optimizer init, environment reset.
        ``hparams`` is unused (kept for the common signature)."""
        key, k_net, k_env = jax.random.split(key, 3)
        obs, env_state = self.env.reset(k_env, self.env_params)
        params = fast_init(self.network, k_net, obs)
        return PPOState(
            params=params,
            opt_state=self.optimizer.init(params),
            env_state=env_state,
            obs=obs,
            key=key,
            update_step=jnp.int32(0),
            env_steps=jnp.int32(0),
            last_return=jnp.float32(jnp.nan),
            last_length=jnp.float32(jnp.nan),
        )

    def train(self, key: jax.Array) -> tuple[PPOState, dict[str, jax.Array]]:
        hparams = self.default_hparams()
        return self.run(self.init(key, hparams), hparams, self.num_updates)

    # -- one update -------------------------------------------------------------------------

    def collect(self, state: PPOState) -> tuple[PPOState, Transition]:
        """Roll the policy ``num_steps`` steps; returns the advanced state and ``[T, B]`` data."""

        def step(c: _RolloutCarry, _) -> tuple[_RolloutCarry, Transition]:
            key, k_act, k_env = jax.random.split(c.key, 3)
            pi, value = self.network.apply(c.params, c.obs)
            action = pi.sample(seed=k_act)
            log_prob = pi.log_prob(action)
            obs, env_state, reward, terminated, truncated, info = self.env.step(
                k_env, c.env_state, self._env_action(action), self.env_params
            )
            episode = {
                k: info[k]
                for k in ("returned_episode", "returned_episode_returns", "returned_episode_lengths")
            }
            tr = Transition(
                obs=c.obs,
                action=action,
                log_prob=log_prob,
                value=value,
                reward=reward.astype(jnp.float32),
                terminated=terminated,
                done=terminated | truncated,
                next_obs=info["final_observation"],
                episode=episode,
            )
            return _RolloutCarry(c.params, env_state, obs, key), tr

        carry = _RolloutCarry(state.params, state.env_state, state.obs, state.key)
        carry, traj = jax.lax.scan(step, carry, None, self.config.num_steps)
        state = state.replace(env_state=carry.env_state, obs=carry.obs, key=carry.key)
        return state, traj

    def targets(self, params: Any, traj: Transition, hparams: PPOHparams) -> tuple[jax.Array, jax.Array]:
        """GAE advantages and value targets ``f32[T, B]`` for a rollout.

        The bootstrap value is the critic's value of ``next_obs`` (the pre-reset observation),
        zeroed where the episode terminated; truncated episodes are bootstrapped. Rewards are
        scaled by ``hparams.reward_scale``.
        """
        _, next_values = self.network.apply(params, traj.next_obs)
        return gae(
            traj.reward * hparams.reward_scale,
            traj.value,
            next_values,
            traj.terminated,
            traj.done,
            hparams.gamma,
            hparams.gae_lambda,
        )

    def loss(self, params: Any, batch: Batch, hparams: PPOHparams) -> tuple[jax.Array, dict]:
        """Total PPO loss of a minibatch and its parts."""
        pi, value = self.network.apply(params, batch.obs)
        adv = normalize(batch.advantage) if self.config.normalize_advantages else batch.advantage
        pg, aux = policy_loss(pi.log_prob(batch.action), batch.log_prob, adv, hparams.clip_eps)
        vf = value_loss(
            value, batch.value, batch.target, hparams.value_clip_eps, self.config.clip_value_loss
        )
        entropy = pi.entropy().mean()
        total = pg + hparams.vf_coef * vf - hparams.ent_coef * entropy
        return total, {"policy_loss": pg, "value_loss": vf, "entropy": entropy, "loss": total, **aux}

    def learning_rate(self, update_step: jax.Array, hparams: PPOHparams) -> jax.Array:
        """Learning rate of update ``update_step`` (linear annealing when configured)."""
        if not self.config.anneal_lr:
            return hparams.learning_rate
        frac = 1.0 - update_step.astype(jnp.float32) / self.num_updates
        return hparams.learning_rate * jnp.clip(frac, 0.0, 1.0)

    def update(self, state: PPOState, hparams: PPOHparams) -> tuple[PPOState, dict[str, jax.Array]]:
        """One PPO update: collect, compute targets, epochs of minibatch steps."""
        cfg = self.config
        # COLLECT TRAJECTORIES
        state, traj = self.collect(state)

        # CALCULATE ADVANTAGES (bootstrap through truncation, not termination)
        advantages, targets = self.targets(state.params, traj, hparams)
        flat = lambda x: x.reshape((cfg.batch_size,) + x.shape[2:])  # noqa: E731
        batch = Batch(
            obs=jax.tree.map(flat, traj.obs),
            action=flat(traj.action),
            log_prob=flat(traj.log_prob),
            value=flat(traj.value),
            advantage=flat(advantages),
            target=flat(targets),
        )
        lr = self.learning_rate(state.update_step, hparams)
        grad_fn = jax.value_and_grad(self.loss, has_aux=True)

        # UPDATE NETWORK: epochs x minibatches of clipped, Adam steps
        def minibatch_step(c: _MinibatchCarry, mb: Batch):
            (_, parts), grads = grad_fn(c.params, mb, hparams)
            grads, gnorm = clip_by_global_norm(grads, hparams.max_grad_norm)
            updates, opt_state = self.optimizer.update(grads, c.opt_state, c.params)
            params = jax.tree.map(lambda p, u: p - lr * u, c.params, updates)
            return _MinibatchCarry(params, opt_state), {**parts, "grad_norm": gnorm}

        def epoch(c: _EpochCarry, _):
            key, k_perm = jax.random.split(c.key)
            if cfg.num_minibatches == 1:
                # one minibatch is the whole rollout: its mean loss does not depend on the order
                shuffled = jax.tree.map(lambda x: x[None], batch)
            else:
                perm = jax.random.permutation(k_perm, cfg.batch_size)
                shuffled = jax.tree.map(
                    lambda x: x[perm].reshape((cfg.num_minibatches, cfg.minibatch_size) + x.shape[1:]),
                    batch,
                )
            mc, parts = jax.lax.scan(minibatch_step, _MinibatchCarry(c.params, c.opt_state), shuffled)
            return _EpochCarry(mc.params, mc.opt_state, key), parts

        ec, parts = jax.lax.scan(
            epoch, _EpochCarry(state.params, state.opt_state, state.key), None, cfg.update_epochs
        )

        # EPISODE STATISTICS AND METRICS
        ret, length = episode_metrics(traj.episode, state.last_return, state.last_length)
        state = state.replace(
            params=ec.params,
            opt_state=ec.opt_state,
            key=ec.key,
            update_step=state.update_step + 1,
            env_steps=state.env_steps + cfg.batch_size,
            last_return=ret,
            last_length=length,
        )
        metrics = {k: v.mean() for k, v in parts.items()}
        metrics.update(
            env_steps=state.env_steps.astype(jnp.float32),
            episode_return=ret,
            episode_length=length,
            learning_rate=jnp.asarray(lr, jnp.float32),
        )
        return state, metrics

    def _run(self, state: PPOState, hparams: PPOHparams, n_updates: int):
        """``n_updates`` updates in one ``lax.scan``; metrics ``f32[n_updates]`` each."""
        return jax.lax.scan(lambda s, _: self.update(s, hparams), state, None, n_updates)


def make_ppo(config: PPOConfig, env: Any, env_params: Any = None) -> PPO:
    """Build a PPO agent (validates ``config`` and the environment before any compilation).

    Args:
        config: static settings.
        env: a single environment (batched and wrapped here) or a ``BatchedEnv``.
        env_params: environment params (default: the environment's ``default_params``); may
            carry a leading per-copy axis.
    """
    return PPO(config, env, env_params)


__all__ = [
    "PPO",
    "Batch",
    "PPOConfig",
    "PPOHparams",
    "PPOState",
    "Transition",
    "make_ppo",
    "normalize",
    "policy_loss",
    "value_loss",
]
