"""Gumbel AlphaZero: a policy-value network trained on its own search, the game as the model.

Acting: every environment step of training is chosen by ``mctx.gumbel_muzero_policy``
(Danihelka et al., ICLR 2022) through :class:`accelrl.agents.search.GumbelSearch`, the same
search (one recurrent function) that plans at test time: the tree's nodes hold environment
states, expanding a node plays its action with the environment's own ``step_env``, and the
network gives each node's prior logits and value. So the agent needs an environment whose
``step_env`` is deterministic (the class attribute ``deterministic_step = True``, e.g.
``MallocGame``); any other is refused with a one-line
:class:`~accelrl.agents.base.UnsupportedEnvironmentError`. The game has no learned model, as
in mallocMuZero's setting (Wang et al., arXiv 2305.07440) but with the true dynamics.

Targets (one per environment step, stored in a replay buffer):

* **policy**: the search's improved policy, ``softmax(prior logits + sigma(completed Q))``
  (Gumbel MuZero, eq. 11; ``mctx``'s ``action_weights`` with
  ``qtransform_completed_by_mix_value``: visited actions get their Q, the others the mixed
  value, min-max rescaled, ``sigma(q) = (maxvisit_init + max_a N(a)) * value_scale * q``);
  illegal actions have weight 0 (:func:`improved_policy` is the formula, written out);
* **value**: the Monte-Carlo return from that step to the episode's end (rewards summed with
  ``config.discount``, 1 by default: MallocGame's return is the final benefit fraction). Where
  the rollout ends before the episode does, the rest is bootstrapped with the network's value
  of the rollout's last observation (and a truncated episode with the value of its final
  observation); with ``rollout_steps`` at least an episode's length most targets are pure
  Monte-Carlo returns (:func:`episode_returns`).

Loss: cross-entropy of the masked prior against the policy target plus ``value_coef`` times
the squared error of the value, Adam with a global-norm clip. One *update* is ``rollout_steps``
searched steps of ``num_envs`` copies (all targets into the buffer), then ``gradient_steps``
gradient steps on uniform batches. Everything is on the shared skeleton
(:class:`~accelrl.agents.core.Agent`): one jitted program, vmapped over seeds by the runner,
checkpointed and resumed with the rest of the state.

Evaluation: ``config.eval_simulations = 0`` plays the network's greedy action (the mode of the
prior); ``> 0`` plays a search of that many simulations with no root noise at every step
(``accelrl-eval RUN --search N``).

Example::

    agent, config, hparams = accelrl.agents.build("MallocGame-v0", "gumbel_az")
    state, metrics = agent.train(jax.random.key(0), hparams)
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from accelrl.agents.base import clip_by_global_norm, find_wrapper_state
from accelrl.agents.core import Agent, AgentState, RunConfig
from accelrl.agents.distributions import mask_logits
from accelrl.agents.evaluation import max_episode_steps
from accelrl.agents.networks import ACTIVATIONS, ActorCritic, fast_init, split_observation
from accelrl.agents.ppo import set_network
from accelrl.agents.registry import AgentSpec, register_agent
from accelrl.agents.replay_buffer import ReplayBuffer, ReplayBufferState
from accelrl.agents.search import GumbelSearch, SearchConfig, check_deterministic
from accelrl.envs.reset import broadcast_params
from accelrl.envs.vec import VecEnv

NETWORKS: tuple[str, ...] = ("mlp", "set")
"""Values of :attr:`GumbelAZConfig.network`."""

# ---------------------------------------------------------------------------------------------
# Configuration and hyperparameters


@dataclasses.dataclass(frozen=True)
class GumbelAZConfig(RunConfig):
    """Everything that fixes shapes and compilation of a Gumbel AlphaZero run.

    Sources of the defaults: the search settings are ``mctx``'s defaults
    (``value_scale`` 0.1, ``maxvisit_init`` 50, ``gumbel_scale`` 1) with 16 simulations
    (Danihelka et al. report policy improvement from 2 simulations on; Pgx's AlphaZero
    baselines use 32); Adam at 1e-3 and the plain cross-entropy + squared-error loss are Pgx's
    ``examples/alphazero``; the network sizes are PPO's MallocGame ones.
    """

    num_envs: int = 8
    """Environment copies searched in parallel ``B``."""
    total_timesteps: int = 50_000
    """Environment steps (summed over the copies) of a whole run."""
    rollout_steps: int = 32
    """Searched vector-environment steps per update."""
    num_simulations: int = 16
    """Search simulations per step of training."""
    max_num_considered_actions: int = 16
    """Actions sampled at the root by Gumbel top-k (capped at the number of actions)."""
    gumbel_scale: float = 1.0
    """Root Gumbel noise of the training search (exploration)."""
    discount: float = 1.0
    """Discount of the search and of the value targets (1: the undiscounted episode return)."""
    value_scale: float = 0.1
    """``mctx.qtransform_completed_by_mix_value``'s ``value_scale`` (sigma's slope)."""
    maxvisit_init: float = 50.0
    """``mctx.qtransform_completed_by_mix_value``'s ``maxvisit_init``."""
    batch_size: int = 256
    """Targets per gradient step, sampled uniformly from the buffer."""
    gradient_steps: int = 8
    """Gradient steps per update."""
    buffer_size: int = 20_000
    """Replay buffer capacity in targets (at least one update's; not capped at
    ``total_timesteps``, so a resumed run that is extended keeps its buffer's shape)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden widths of the policy and value MLPs (and the set network's torso)."""
    activation: str = "relu"
    """Hidden activation (a name from ``agents.networks.ACTIVATIONS``)."""
    network: str = "mlp"
    """``"mlp"`` (:class:`~accelrl.agents.networks.ActorCritic`) or ``"set"``
    (:class:`~accelrl.agents.networks.SetActorCritic`, MallocGame with ``set_size > 0``)."""
    set_embed_dim: int = 64
    """Embedding width of the ``"set"`` network."""
    set_heads: int = 4
    """Attention heads of the ``"set"`` network (must divide ``set_embed_dim``)."""
    eval_simulations: int = 0
    """Evaluation: 0 plays the network's greedy action, ``> 0`` a search of that many
    simulations without root noise."""

    @property
    def steps_per_update(self) -> int:
        """Environment steps per update: ``num_envs * rollout_steps``."""
        return self.num_envs * self.rollout_steps

    @property
    def buffer_capacity(self) -> int:
        """Replay buffer slots actually allocated."""
        return max(self.buffer_size, self.steps_per_update)

    def search_config(self, num_simulations: int | None = None, gumbel_scale: float | None = None):
        """The :class:`~accelrl.agents.search.SearchConfig` of training (or with other
        simulations / root noise, e.g. for evaluation)."""
        return SearchConfig(
            num_simulations=self.num_simulations if num_simulations is None else num_simulations,
            max_num_considered_actions=self.max_num_considered_actions,
            gumbel_scale=self.gumbel_scale if gumbel_scale is None else gumbel_scale,
            discount=self.discount,
            value_scale=self.value_scale,
            maxvisit_init=self.maxvisit_init,
        )

    def validate(self) -> GumbelAZConfig:
        """Raise ``ValueError`` naming the field for impossible settings; return ``self``."""
        name = type(self).__name__
        for f in ("rollout_steps", "batch_size", "gradient_steps", "buffer_size"):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{f} must be a positive integer, got {value!r}")
        value = self.eval_simulations
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}.eval_simulations must be an integer >= 0, got {value!r}")
        super().validate()
        try:
            self.search_config().validate()
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        if self.normalize_obs:
            raise ValueError(
                f"{name}.normalize_obs must be False: the search feeds the network the "
                "environment's raw observations"
            )
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError(
                f"{name}.hidden_sizes must be positive widths, got {self.hidden_sizes}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"{name}.activation {self.activation!r} unknown; choose from {sorted(ACTIVATIONS)}"
            )
        if self.network not in NETWORKS:
            raise ValueError(f"{name}.network {self.network!r} unknown; choose from {NETWORKS}")
        if self.set_embed_dim < 1 or self.set_heads < 1 or self.set_embed_dim % self.set_heads:
            raise ValueError(
                f"{name}.set_heads={self.set_heads} must be >= 1 and divide "
                f"set_embed_dim={self.set_embed_dim}"
            )
        return self


@struct.dataclass
class GumbelAZHparams:
    """Shape-preserving numbers of Gumbel AlphaZero (vmappable)."""

    learning_rate: float = 1e-3
    """Adam step size (Pgx's AlphaZero example)."""
    value_coef: float = 1.0
    """Weight of the value loss next to the policy cross-entropy (1: Pgx's sum)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""
    weight_decay: float = 0.0
    """Decoupled weight decay per unit learning rate (0: plain Adam)."""


# Defaults per environment id or family: (config, hparams overrides).
GUMBEL_AZ_DEFAULTS: dict[str, tuple[GumbelAZConfig, dict[str, float]]] = {
    # MallocGame: rollouts of 64 steps, longer than the default program's 14-buffer episode (most
    # value targets are pure Monte-Carlo returns; longer programs want rollout_steps raised to
    # their length), 16 simulations, a replay of the last 16 updates' targets.
    "malloc": (
        GumbelAZConfig(
            num_envs=8,
            rollout_steps=64,
            total_timesteps=51_200,
            num_simulations=16,
            batch_size=256,
            gradient_steps=16,
            buffer_size=8_192,
        ),
        {},
    ),
    "generic": (GumbelAZConfig(), {}),
}

# ---------------------------------------------------------------------------------------------
# Targets (pure functions; the tests compare them with hand values)


def improved_policy(
    prior_logits: jax.Array,
    qvalues: jax.Array,
    visit_counts: jax.Array,
    value: jax.Array,
    mask: jax.Array | None = None,
    value_scale: float = 0.1,
    maxvisit_init: float = 50.0,
    epsilon: float = 1e-8,
) -> jax.Array:
    """Gumbel MuZero's improved policy ``softmax(logits + sigma(completed Q))``, ``f32[B, A]``.

    The formula ``mctx.gumbel_muzero_policy`` returns as ``action_weights`` with
    ``qtransform_completed_by_mix_value`` (written out for tests and for reading):
    unvisited actions get the mixed value ``(v + sum_N * sum_{visited} pi q / sum_{visited} pi)
    / (1 + sum_N)`` (``pi`` the prior over legal actions), the completed Q-values are min-max
    rescaled to ``[0, 1]`` and scaled by ``(maxvisit_init + max N) * value_scale``.

    Args:
        prior_logits: ``f32[B, A]``. qvalues: ``f32[B, A]`` (any value where not visited).
        visit_counts: ``[B, A]``. value: ``f32[B]`` the root's raw value estimate.
        mask: ``bool[B, A]``, True = legal (None: all); illegal actions get weight 0.
    """
    logits = mask_logits(jnp.asarray(prior_logits, jnp.float32), mask)
    visits = jnp.asarray(visit_counts, jnp.float32)
    q = jnp.asarray(qvalues, jnp.float32)
    prior = jax.nn.softmax(logits, axis=-1)
    visited = visits > 0
    total = visits.sum(-1)
    w = jnp.where(visited, prior, 0.0)
    weighted_q = jnp.sum(w * jnp.where(visited, q, 0.0), -1) / jnp.maximum(w.sum(-1), epsilon)
    mixed = (jnp.asarray(value, jnp.float32) + total * weighted_q) / (1.0 + total)
    completed = jnp.where(visited, q, mixed[..., None])
    lo, hi = completed.min(-1, keepdims=True), completed.max(-1, keepdims=True)
    rescaled = (completed - lo) / jnp.maximum(hi - lo, epsilon)
    sigma = (maxvisit_init + visits.max(-1, keepdims=True)) * value_scale * rescaled
    return jax.nn.softmax(mask_logits(logits + sigma, mask), axis=-1)


def episode_returns(
    reward: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    final_value: jax.Array,
    last_value: jax.Array,
    discount: float = 1.0,
) -> jax.Array:
    """Value targets ``f32[T, B]`` of a rollout: the discounted return to the episode's end.

    ``G_t = r_t + discount * c_t`` with ``c_t = 0`` where step ``t`` terminated, the value of
    its final observation (``final_value f32[T, B]``) where it was truncated, else
    ``G_{t+1}``; past the rollout's end ``G_T = last_value f32[B]`` (the value of the current
    observation). ``reward``, ``terminated``, ``truncated``: ``[T, B]``.
    """

    def body(g_next, x):
        r, term, trunc, v_final = x
        cont = jnp.where(term, 0.0, jnp.where(trunc, v_final, g_next))
        g = r + discount * cont
        return g, g

    xs = (
        jnp.asarray(reward, jnp.float32),
        jnp.asarray(terminated, bool),
        jnp.asarray(truncated, bool),
        jnp.asarray(final_value, jnp.float32),
    )
    _, g = jax.lax.scan(body, jnp.asarray(last_value, jnp.float32), xs, reverse=True)
    return g


def policy_cross_entropy(logits: jax.Array, target: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Mean over the batch of ``-sum_a target_a log softmax(masked logits)_a`` (``f32[]``);
    ``logits``, ``target``: ``f32[B, A]``, ``mask`` ``bool[B, A]`` or None."""
    logp = jax.nn.log_softmax(mask_logits(logits, mask), axis=-1)
    return -jnp.mean(jnp.sum(jnp.where(target > 0, target * logp, 0.0), axis=-1))


# ---------------------------------------------------------------------------------------------
# Train state and agent


@struct.dataclass
class GumbelAZState(AgentState):
    """Everything needed to continue a run bit for bit (one seed)."""

    params: Any
    """Policy-value network parameters."""
    opt_state: Any
    """Adam moments."""
    buffer: ReplayBufferState
    """Search targets: ``{"obs", "policy" f32[A], "value" f32[]}`` per slot."""
    gradient_step: jax.Array
    """Gradient steps taken, ``i32[]``."""


class GumbelAZ(Agent):
    """A Gumbel AlphaZero agent bound to one (batched) environment; build it with
    :func:`make_gumbel_az`."""

    name = "gumbel_az"
    config_cls = GumbelAZConfig
    hparams_cls = GumbelAZHparams
    supported_actions = ("discrete", "masked_discrete")

    def describe_actions(self):
        check_deterministic(self.env.unwrapped.env, "gumbel_az")
        return super().describe_actions()

    def setup(self) -> None:
        cfg = self.config
        if cfg.network == "set":
            self.network = set_network(self, "GumbelAZConfig")
        else:
            self.network = ActorCritic(
                action_dim=self.spec.dim,
                hidden_sizes=tuple(cfg.hidden_sizes),
                activation=cfg.activation,
            )
        self.optimizer = optax.scale_by_adam()
        self.buffer = ReplayBuffer(cfg.buffer_capacity)
        raw = self.env.unwrapped.env
        self.search = GumbelSearch(raw, self.network.apply, cfg.search_config())
        self.eval_search = GumbelSearch(
            raw, self.network.apply, cfg.search_config(max(cfg.eval_simulations, 1), 0.0)
        )

    # -- network and policy ---------------------------------------------------------------

    def logits_value(self, params: Any, obs: Any) -> tuple[jax.Array, jax.Array]:
        """Masked prior logits ``f32[N, A]`` and values ``f32[N]`` of observations ``[N, ...]``."""
        pi, value = self.network.apply(params, obs)
        return mask_logits(pi.logits, split_observation(obs)[1]), value

    def act(self, state: GumbelAZState, obs: Any, key: jax.Array, deterministic: bool = False):
        """Actions ``i32[N]`` of the prior (no search): its mode when ``deterministic``, else a
        sample."""
        logits, _ = self.logits_value(state.params, obs)
        if deterministic:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)

    def value(self, state: GumbelAZState, obs: Any) -> jax.Array:
        """The network's value ``f32[N]``."""
        return self.logits_value(state.params, obs)[1]

    # -- init -----------------------------------------------------------------------------

    def init_state(self, key: jax.Array, hparams: GumbelAZHparams) -> GumbelAZState:
        """Network, optimiser, an empty target buffer and the environment reset."""
        key, k_net, k_env = jax.random.split(key, 3)
        start = self.start_fields(key, k_env)
        one = jax.tree.map(lambda x: x[:1], start["obs"])
        params = fast_init(self.network, k_net, one)
        example = {
            "obs": jax.tree.map(lambda x: x[0], start["obs"]),
            "policy": jnp.zeros(self.spec.dim, jnp.float32),
            "value": jnp.zeros((), jnp.float32),
        }
        return GumbelAZState(
            params=params,
            opt_state=self.optimizer.init(params),
            buffer=self.buffer.init(example),
            gradient_step=jnp.int32(0),
            **start,
        )

    # -- acting with search ---------------------------------------------------------------

    def search_roots(self, env_state: Any) -> tuple[Any, Any]:
        """The raw environment states ``[B, ...]`` inside the batched state and each copy's
        params ``[B, ...]`` (the search's roots)."""
        vec = self.env.unwrapped
        inner = find_wrapper_state(self.env, env_state, VecEnv)
        if vec.plain:
            params = broadcast_params(self.env_params, vec.env.default_params, vec.num_envs)
            return inner, params
        return inner.env, inner.params

    def collect_step(self, state: GumbelAZState, key: jax.Array):
        """One searched step of every copy: the new state, its targets' raw material and the
        episode info."""
        k_search, k_step = jax.random.split(key)
        roots, root_params = self.search_roots(state.env_state)
        out = self.search.search(state.params, root_params, k_search, state.obs, roots)
        obs = state.obs
        state, es = self.env_step(state, k_step, out.action)
        final_value = self.value(state, es.next_obs)
        record = {
            "obs": obs,
            "policy": out.action_weights,
            "reward": es.reward,
            "terminated": es.terminated,
            "truncated": es.truncated,
            "final_value": final_value,
            "search_value": out.search_tree.summary().value,
        }
        return state, (record, es.episode)

    # -- learning -------------------------------------------------------------------------

    def loss(self, params: Any, hparams: GumbelAZHparams, batch: dict):
        """``policy CE + value_coef * value MSE`` of a batch of targets, with its parts."""
        logits, value = self.logits_value(params, batch["obs"])
        mask = split_observation(batch["obs"])[1]
        policy_loss = policy_cross_entropy(logits, batch["policy"], mask)
        value_loss = jnp.mean((value - batch["value"]) ** 2)
        return policy_loss + hparams.value_coef * value_loss, (policy_loss, value_loss)

    def gradient_step(self, state: GumbelAZState, hparams: GumbelAZHparams):
        """One Adam step on a uniform batch of the buffer."""
        key, k_sample = jax.random.split(state.key)
        batch = self.buffer.sample(state.buffer, k_sample, self.config.batch_size)
        (_, (pl, vl)), grads = jax.value_and_grad(self.loss, has_aux=True)(
            state.params, hparams, batch
        )
        grads, gnorm = clip_by_global_norm(grads, hparams.max_grad_norm)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = jax.tree.map(
            lambda p, u: p - hparams.learning_rate * (u + hparams.weight_decay * p),
            state.params,
            updates,
        )
        state = state.replace(
            params=params, opt_state=opt_state, key=key, gradient_step=state.gradient_step + 1
        )
        return state, {"policy_loss": pl, "value_loss": vl, "grad_norm": gnorm}

    def update(self, state: GumbelAZState, hparams: GumbelAZHparams):
        """Collect ``rollout_steps`` searched steps, store their targets, take
        ``gradient_steps`` gradient steps."""
        cfg = self.config
        key, k_roll = jax.random.split(state.key)
        state = state.replace(key=key)
        state, (traj, episodes) = jax.lax.scan(
            self.collect_step, state, jax.random.split(k_roll, cfg.rollout_steps)
        )
        targets = episode_returns(
            traj["reward"],
            traj["terminated"],
            traj["truncated"],
            traj["final_value"],
            self.value(state, state.obs),
            cfg.discount,
        )
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731  [T, B, ...] -> [T*B, ...]
        items = {
            "obs": jax.tree.map(flat, traj["obs"]),
            "policy": flat(traj["policy"]),
            "value": flat(targets),
        }
        state = state.replace(buffer=self.buffer.add(state.buffer, items))
        state, learn = jax.lax.scan(
            lambda s, _: self.gradient_step(s, hparams), state, None, length=cfg.gradient_steps
        )
        metrics = {k: jnp.mean(v) for k, v in learn.items()}
        metrics["search_value"] = jnp.mean(traj["search_value"])
        metrics["value_target"] = jnp.mean(targets)
        p = traj["policy"]
        metrics["target_entropy"] = -jnp.mean(jnp.sum(jnp.where(p > 0, p * jnp.log(p), 0.0), -1))
        return state, metrics, episodes

    # -- evaluation -----------------------------------------------------------------------

    def with_eval_search(self, num_simulations: int) -> GumbelAZ:
        """The same agent (same env and params) evaluating with ``num_simulations`` searched
        simulations per step (0: the greedy network)."""
        config = dataclasses.replace(self.config, eval_simulations=int(num_simulations))
        return type(self)(config, self.env, self.env_params)

    def evaluate_episodes(
        self,
        state: GumbelAZState,
        key: jax.Array,
        num_episodes: int,
        deterministic: bool = True,
        env_params: Any = None,
    ) -> dict[str, jax.Array]:
        """Per-episode records ``{"return": f32[N], "length": i32[N]}`` of fresh episodes:
        with ``config.eval_simulations > 0`` every action is a search without root noise
        (``deterministic`` ignored; ``num_episodes`` copies of the params, or one episode per
        row of params with a leading ``[num_episodes]`` axis), else the skeleton's evaluation
        of the prior (:meth:`act`). Arguments as :meth:`accelrl.agents.core.Agent.evaluate`;
        the episode length cap comes from concrete params (traced ones get the default cap)."""
        if self.config.eval_simulations == 0:
            return Agent.evaluate_episodes(
                self, state, key, num_episodes, deterministic, env_params
            )
        params = self.eval_params if env_params is None else env_params
        batch = broadcast_params(params, self.env.unwrapped.env.default_params, num_episodes)
        return self._search_episodes(state.params, batch, key, max_episode_steps(params))

    @partial(jax.jit, static_argnums=(0, 4))
    def _search_episodes(self, net_params, batch_params, key, num_steps: int):
        out = self.eval_search.episode_records(net_params, batch_params, key, num_steps)
        return {"return": out["return"], "length": out["length"]}


def make_gumbel_az(config: GumbelAZConfig, env: Any, env_params: Any = None) -> GumbelAZ:
    """Build a Gumbel AlphaZero agent; the config is validated before anything compiles.

    Args:
        config: static configuration.
        env: a single environment with ``deterministic_step = True`` (batched here into
            ``config.num_envs`` copies) or an already batched one around such an environment.
        env_params: environment parameters (default: the environment's defaults); leaves may
            carry a leading ``[num_envs]`` axis (one program per copy).

    Raises:
        ValueError: invalid config; ``UnsupportedEnvironmentError`` (a ValueError) for an
            environment without a deterministic ``step_env``, continuous or multi-agent.
    """
    return GumbelAZ(config, env, env_params)


register_agent(
    "gumbel_az",
    AgentSpec(
        GumbelAZConfig,
        GumbelAZHparams,
        make_gumbel_az,
        defaults=GUMBEL_AZ_DEFAULTS,
        description="Gumbel AlphaZero: search with the env as model, trained on its improved "
        "policy and Monte-Carlo returns (deterministic envs only)",
    ),
)

__all__ = [
    "GUMBEL_AZ_DEFAULTS",
    "NETWORKS",
    "GumbelAZ",
    "GumbelAZConfig",
    "GumbelAZHparams",
    "GumbelAZState",
    "episode_returns",
    "improved_policy",
    "make_gumbel_az",
    "policy_cross_entropy",
]
