"""The agent skeleton: the lifecycle every agent shares, written once.

An algorithm subclasses :class:`Agent` and supplies only what is its own (DESIGN.md,
"Contracts"):

* ``config_cls``: a frozen dataclass (subclass of :class:`RunConfig`) of everything that fixes
  shapes and compilation, with ``num_updates``/``steps_per_update`` and ``validate()``;
* ``hparams_cls``: a ``flax.struct.dataclass`` of shape-preserving numbers (vmappable);
* :meth:`Agent.setup` (networks, optimisers), :meth:`Agent.init_state`, one
  :meth:`Agent.update`, the policy :meth:`Agent.act` and the value estimate :meth:`Agent.value`.

The skeleton owns the rest: environment wrapping and action-space checks, the jitted
``init``/``run``/``evaluate`` (``self`` static, so every instance compiles its own programs
once), ``train``, per-update episode statistics and metric assembly, the environment step that
both on-policy and off-policy collection use, and the evaluation on fresh episodes.

A run's state is an :class:`AgentState` subclass: the fields below plus the algorithm's own
(parameters, optimiser and buffer state).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from accelrl.agents.base import (
    ActionSpec,
    action_spec,
    check_action_kind,
    episode_metrics,
    obs_normalizer,
    unbatched_params,
    wrap_env,
)
from accelrl.agents.evaluation import (
    Rollout,
    evaluate_policy_episodes,
    max_episode_steps,
    rollout_policy,
)
from accelrl.envs.vec import BatchedEnv

EPISODE_KEYS = ("returned_episode", "returned_episode_returns", "returned_episode_lengths")
"""``EpisodeStatistics`` info entries an update hands back for the episode metrics."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings every agent has (subclasses add their own and may change these defaults)."""

    num_envs: int = 8
    """Parallel environment copies ``B``."""
    total_timesteps: int = 500_000
    """Environment steps (over all copies) of a full run; ``num_updates`` derives from it."""
    normalize_obs: bool = False
    """Normalise observations with running statistics (``NormalizeObservation``)."""
    obs_clip: float = 10.0
    """Clip of normalised observations."""
    eval_episodes: int = 32
    """Episodes per seed in an evaluation (``accelrl-train``/``accelrl-eval`` default)."""

    @property
    def steps_per_update(self) -> int:
        """Environment steps (summed over the batch) per update."""
        raise NotImplementedError

    @property
    def num_updates(self) -> int:
        """Updates in a full run: ``total_timesteps // steps_per_update``."""
        return self.total_timesteps // self.steps_per_update

    def validate(self) -> RunConfig:
        """Raise ``ValueError`` naming the field for impossible settings; return ``self``.

        Subclasses call ``super().validate()`` and add their own checks.
        """
        name = type(self).__name__
        for f in ("num_envs", "total_timesteps", "eval_episodes"):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{f} must be a positive integer, got {value!r}")
        if self.obs_clip <= 0:
            raise ValueError(f"{name}.obs_clip must be positive, got {self.obs_clip}")
        if self.total_timesteps < self.steps_per_update:
            raise ValueError(
                f"{name}.total_timesteps={self.total_timesteps} is smaller than one update "
                f"({self.steps_per_update} environment steps)"
            )
        return self


@struct.dataclass
class AgentState:
    """Fields every agent's train state has (one seed); subclasses add the learner's own."""

    env_state: Any
    """Batched, wrapped environment state."""
    obs: Any
    """Current observations ``[B, ...]`` (normalised when ``normalize_obs``)."""
    key: jax.Array
    """RNG key carried through the run."""
    update_step: jax.Array
    """Updates done, ``i32[]``."""
    env_steps: jax.Array
    """Environment steps done (over all copies), ``i32[]``."""
    episode_return: jax.Array
    """Mean return of the last update in which episodes finished (NaN before), ``f32[]``."""
    episode_length: jax.Array
    """Likewise for episode lengths, ``f32[]``."""


class EnvStep(NamedTuple):
    """What one batched environment step hands to an agent (leading axis ``[B]``)."""

    reward: Any
    """``f32[B]`` rewards (multi-agent: a dict of them per agent)."""
    terminated: Any
    """``bool[B]``: the episode ended in a terminal state (no bootstrap); multi-agent: a dict
    per agent plus ``"__all__"``."""
    truncated: Any
    """``bool[B]``: the episode was cut off (bootstrap from ``next_obs``); dict as above."""
    next_obs: Any
    """The observation after the step, before any reset (``info["final_observation"]``)."""
    episode: dict[str, jax.Array]
    """The :data:`EPISODE_KEYS` entries of ``info``."""


def float32_tree(tree: Any) -> Any:
    """Every leaf of ``tree`` as an ``f32`` array (hparams, metrics)."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)


class Agent:
    """Base class of every agent; see the module docstring for what a subclass supplies.

    Args:
        config: the agent's config (validated here, before anything compiles).
        env: a single environment (batched and wrapped here) or a ``BatchedEnv`` (a curriculum
            or snapshot strategy inside; used as is, its ``num_envs`` must match).
        env_params: environment params (default: the environment's ``default_params``); leaves
            may carry a leading per-copy axis (one task per copy). Checked on the host by
            :meth:`accelrl.envs.BatchedEnv.check_params`.

    Raises:
        ValueError: an invalid config; params the environment refuses (``TypeError`` for params
            of another structure); ``UnsupportedEnvironmentError`` (a ``ValueError``) for
            an environment the agent cannot act in.
    """

    name: ClassVar[str] = "agent"
    """Display name (errors, plots)."""
    config_cls: ClassVar[type]
    """The config dataclass (a :class:`RunConfig` subclass)."""
    hparams_cls: ClassVar[type]
    """The hparams ``flax.struct.dataclass``."""
    supported_actions: ClassVar[tuple[str, ...]] = ("discrete", "masked_discrete", "continuous")
    """Action kinds this agent handles (see :class:`accelrl.agents.base.ActionSpec`)."""

    def __init__(self, config: Any, env: Any, env_params: Any = None):
        if not isinstance(config, self.config_cls):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(config).__name__}"
            )
        config.validate()
        self.config = config
        self.env: BatchedEnv = wrap_env(env, config.num_envs, config.normalize_obs, config.obs_clip)
        self.env_params = self.env.default_params if env_params is None else env_params
        self.env.check_params(self.env_params)  # on the host: jitted code checks nothing
        self.spec = self.describe_actions()
        self.setup()

    # -- what an algorithm supplies ------------------------------------------------------------

    def describe_actions(self) -> Any:
        """The action description ``self.spec`` that :meth:`setup` builds networks from (called
        once, before :meth:`setup`): an :class:`ActionSpec` of a single-agent environment whose
        action kind this agent supports; multi-agent agents override it."""
        spec: ActionSpec = action_spec(self.env, self.eval_params)
        check_action_kind(self.name, spec, self.supported_actions, type(self.env.env).__name__)
        return spec

    def setup(self) -> None:
        """Build networks and optimisers from ``self.config`` and ``self.spec`` (no compiling)."""

    def init_state(self, key: jax.Array, hparams: Any) -> AgentState:
        """Fresh state of one seed (called inside the jitted :meth:`init`); use
        :meth:`start_fields` for the common fields."""
        raise NotImplementedError

    def update(
        self, state: AgentState, hparams: Any
    ) -> tuple[AgentState, dict[str, jax.Array], dict]:
        """One update: collect ``steps_per_update`` environment steps (through :meth:`env_step`)
        and learn. Returns the new state, the update's own metrics (``f32[]`` each) and the
        stacked :data:`EPISODE_KEYS` info of every step taken (leading axes ``[T, B]``)."""
        raise NotImplementedError

    def act(
        self, state: AgentState, obs: Any, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Environment actions ``[N, ...]`` for a batch of (normalised) observations ``[N, ...]``:
        sampled from the policy, or its mode when ``deterministic``."""
        raise NotImplementedError

    def value(self, state: AgentState, obs: Any) -> jax.Array:
        """The agent's value estimate ``f32[N]`` of a batch of (normalised) observations."""
        raise NotImplementedError

    # -- sizes and defaults --------------------------------------------------------------------

    @property
    def num_updates(self) -> int:
        """Total number of updates the config asks for."""
        return self.config.num_updates

    @property
    def steps_per_update(self) -> int:
        """Environment steps (summed over the batch) per update."""
        return self.config.steps_per_update

    @property
    def eval_params(self) -> Any:
        """Env params without a per-copy batch axis (spaces and evaluation; the environment's
        defaults when the training params carry one)."""
        return unbatched_params(self.env, self.env_params)

    def default_hparams(self) -> Any:
        """The default hparams pytree, every leaf an ``f32[]``."""
        return float32_tree(self.hparams_cls())

    # -- shared pieces for subclasses -----------------------------------------------------------

    def start_fields(self, key: jax.Array, env_key: jax.Array) -> dict[str, Any]:
        """The :class:`AgentState` fields of a fresh run: reset with ``env_key``, counters at 0."""
        obs, env_state = self.env.reset(env_key, self.env_params)
        nan = jnp.float32(jnp.nan)
        return dict(
            env_state=env_state,
            obs=obs,
            key=key,
            update_step=jnp.int32(0),
            env_steps=jnp.int32(0),
            episode_return=nan,
            episode_length=nan,
        )

    def env_step(
        self, state: AgentState, key: jax.Array, action: jax.Array
    ) -> tuple[AgentState, EnvStep]:
        """Step the batched env with environment ``action[B, ...]``; the state gets the new
        observations, env state and step count (``key`` is left to the caller)."""
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, self.env_params
        )
        out = EnvStep(
            reward=jax.tree.map(lambda r: r.astype(jnp.float32), reward),
            terminated=terminated,
            truncated=truncated,
            next_obs=info["final_observation"],
            episode={k: info[k] for k in EPISODE_KEYS},
        )
        state = state.replace(
            obs=obs, env_state=env_state, env_steps=state.env_steps + self.config.num_envs
        )
        return state, out

    # -- the lifecycle (written once) -----------------------------------------------------------

    @partial(jax.jit, static_argnums=0)
    def init(self, key: jax.Array, hparams: Any) -> AgentState:
        """Fresh train state of one seed (jitted)."""
        return self.init_state(key, hparams)

    def record_episodes(self, state: AgentState, episodes: dict) -> tuple[AgentState, dict]:
        """The episode statistics of one update: the state's ``episode_return``/``episode_length``
        (carried forward when no episode finished) and their metrics. ``episodes`` is the
        update's stacked :data:`EPISODE_KEYS` info (leading axes ``[T, B]``). Multi-agent agents
        override it to add per-agent and per-team returns."""
        ret, length = episode_metrics(episodes, state.episode_return, state.episode_length)
        state = state.replace(episode_return=ret, episode_length=length)
        return state, {"episode_return": ret, "episode_length": length}

    def update_and_record(
        self, state: AgentState, hparams: Any, update_index: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """:meth:`update` plus the bookkeeping every agent shares: the environment's
        update-boundary call (a reset strategy's heavy work), the update counter, the episode
        statistics (:meth:`record_episodes`) and the metrics row (with the environment's own
        metrics, e.g. a curriculum's)."""
        state, metrics, episodes = self.update(state, hparams)
        env_state = self.env.on_update(state.env_state, update_index)
        state = state.replace(env_state=env_state, update_step=state.update_step + 1)
        state, episode_row = self.record_episodes(state, episodes)
        row = {"env_steps": state.env_steps, **episode_row, **metrics}
        row.update(self.env.metrics(env_state))
        return state, float32_tree(row)

    @partial(jax.jit, static_argnums=(0, 3))
    def run(
        self, state: AgentState, hparams: Any, n_updates: int, start_update: jax.Array | None = None
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """``n_updates`` updates in one ``lax.scan`` (jitted, ``n_updates`` static); metrics
        ``f32[n_updates]`` each (``env_steps``, ``episode_return``, ``episode_length``, the
        algorithm's losses and the environment's metrics).

        ``start_update`` (``i32[]``) is the index of the first update, default
        ``state.update_step``. The runner passes it unbatched (``in_axes=None``) under its vmap
        over seeds, so a reset strategy's ``lax.cond(update_index % R == 0, ...)`` stays a real
        branch instead of becoming a select.
        """
        start = state.update_step if start_update is None else start_update
        indices = jnp.asarray(start, jnp.int32) + jnp.arange(n_updates, dtype=jnp.int32)
        return jax.lax.scan(lambda s, i: self.update_and_record(s, hparams, i), state, indices)

    def train(self, key: jax.Array, hparams: Any = None) -> tuple[AgentState, dict[str, jax.Array]]:
        """Init (default hparams unless given) and run all ``num_updates`` updates."""
        hparams = self.default_hparams() if hparams is None else hparams
        return self.run(self.init(key, hparams), hparams, self.num_updates)

    def policy_step(
        self, state: AgentState, obs: Any, key: jax.Array, carry: Any, deterministic: bool = False
    ) -> tuple[Any, Any]:
        """One acting step of a policy with memory: ``(actions [N, ...], carry)``. The default
        is :meth:`act` with no memory; recurrent agents override it with
        :meth:`initial_carry`."""
        return self.act(state, obs, key, deterministic), carry

    def initial_carry(self, num: int) -> Any:
        """The policy's memory at the start of ``num`` episodes (leaves ``[num, ...]``), or
        None for a memoryless policy."""
        return None

    def _policy(self, state: AgentState, deterministic: bool):
        if self.initial_carry(1) is None:
            return lambda obs, k: self.act(state, obs, k, deterministic)
        return lambda obs, k, c: self.policy_step(state, obs, k, c, deterministic)

    @partial(jax.jit, static_argnums=(0, 3, 4))
    def evaluate(
        self,
        state: AgentState,
        key: jax.Array,
        num_episodes: int,
        deterministic: bool = True,
        env_params: Any = None,
    ) -> jax.Array:
        """Returns ``f32[num_episodes]`` of fresh episodes (jitted), one per copy of the unwrapped
        env with the frozen observation statistics of training. Use a key training never draws
        from (``agents.evaluation.evaluation_key(seed)``).

        ``env_params``: default :attr:`eval_params`; or other params (held-out programs), or a
        batch of task params with a leading ``[num_episodes]`` axis (one task per episode).
        """
        return self.evaluate_episodes(state, key, num_episodes, deterministic, env_params)["return"]

    @partial(jax.jit, static_argnums=(0, 3, 4))
    def evaluate_episodes(
        self,
        state: AgentState,
        key: jax.Array,
        num_episodes: int,
        deterministic: bool = True,
        env_params: Any = None,
    ) -> dict[str, jax.Array]:
        """Per-episode records of fresh episodes (jitted): ``{"return": f32[N], "length":
        i32[N], **info}`` with each per-copy ``info`` entry's value at the episode's last step
        (ThreeBody's ``total_substeps`` and ``energy_error``; MallocGame's return is its benefit
        fraction). Arguments as :meth:`evaluate`."""
        params = self.eval_params if env_params is None else env_params
        return evaluate_policy_episodes(
            self.env.env,
            params,
            self._policy(state, deterministic),
            key,
            num_episodes,
            max_episode_steps(params),
            obs_normalizer(self.env, state.env_state),
            self.initial_carry(num_episodes),
        )

    @partial(jax.jit, static_argnums=(0, 3, 4, 5))
    def rollout(
        self,
        state: AgentState,
        key: jax.Array,
        num_envs: int,
        num_steps: int,
        deterministic: bool = False,
        env_params: Any = None,
    ) -> Rollout:
        """Roll the policy for ``num_steps`` steps of ``num_envs`` fresh copies of the unwrapped
        env and return what it visited (``[T, N]``: env states, raw observations, actions,
        rewards, terminations, truncations and :meth:`value` estimates); snapshot banks are
        built from it."""
        params = self.eval_params if env_params is None else env_params
        return rollout_policy(
            self.env.env,
            params,
            self._policy(state, deterministic),
            key,
            num_envs,
            num_steps,
            obs_normalizer(self.env, state.env_state),
            lambda obs: self.value(state, obs),
            self.initial_carry(num_envs),
        )


__all__ = ["EPISODE_KEYS", "Agent", "AgentState", "EnvStep", "RunConfig", "float32_tree"]
