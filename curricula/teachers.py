"""Task teachers as reset strategies: ALP-GMM, Covar-GMM, RIAC and Random.

A teacher picks the task (a point of a :class:`~accelrl.curricula.tasks.TaskSpace`) of every
fresh episode and learns from the returns. It is a
:class:`~accelrl.envs.reset.ResetStrategy`, so it lives inside the batched environment state
(checkpointed and vmapped over seeds with the agent) and no agent code changes:

>>> teacher = ALPGMM(task_space("pendulum_dynamics"))
>>> agent, config, hparams = build(VecEnv(env, 8, teacher), "ppo", env_id="Pendulum-v1")

What runs where (DESIGN.md, "Contracts"):

* ``starts`` (when copies finish): draw tasks for the finished copies, apply them to the
  params, reset those copies;
* ``observe`` (every step, O(B)): append each finished episode's task and raw return to a
  fixed-capacity history (a ring of ``history`` entries);
* ``on_update`` (once per agent update): the per-episode learning, in episode order: ALP-GMM's
  nearest-neighbour learning progress, RIAC's region bookkeeping and splits; and the mixture
  refits of ALP-GMM and Covar-GMM, at the first update boundary (a multiple of
  ``refit_every``) after ``fit_rate`` new episodes, through :func:`accelrl._lax.run_if`: under
  the runner's vmap over seeds the EM runs only at updates where some seed is due for a
  refit (a ``lax.cond`` on a batched predicate would run it at every update).

Defaults follow teachDeepRL (Portelas et al. 2019, commit 747cda2); deviations forced by fixed
shapes are listed in each class and in ``docs/curricula.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from accelrl._lax import run_if
from accelrl.curricula import gmm as gmm_lib
from accelrl.curricula.tasks import TaskSpace, apply_tasks
from accelrl.envs.reset import ResetStrategy, Starts, StepRecord, reset_copies

# -- shared pieces ------------------------------------------------------------------------------


@struct.dataclass
class History:
    """The finished episodes a teacher saw, in order, in a ring of ``H`` entries."""

    tasks: jax.Array
    """``f32[H, d]`` task of each episode (entry ``j`` in slot ``j % H``)."""
    returns: jax.Array
    """``f32[H]`` its undiscounted return, as the agent saw it (not normalised)."""
    count: jax.Array
    """``i32[]`` episodes recorded so far (the ring holds the last ``min(count, H)``)."""

    @classmethod
    def create(cls, capacity: int, dim: int) -> History:
        return cls(
            tasks=jnp.zeros((capacity, dim), jnp.float32),
            returns=jnp.zeros(capacity, jnp.float32),
            count=jnp.int32(0),
        )

    @property
    def capacity(self) -> int:
        return self.returns.shape[0]

    def add(self, tasks: jax.Array, returns: jax.Array, done: jax.Array) -> History:
        """Append the episodes of the copies where ``done`` (``bool[B]``), in copy order."""
        h = self.capacity
        order = jnp.cumsum(done.astype(jnp.int32)) - 1
        slot = jnp.where(done, (self.count + order) % h, h)  # h: out of range, dropped
        return History(
            tasks=self.tasks.at[slot].set(tasks, mode="drop"),
            returns=self.returns.at[slot].set(returns.astype(jnp.float32), mode="drop"),
            count=self.count + jnp.sum(done, dtype=jnp.int32),
        )

    def last(self, n: int) -> tuple[jax.Array, jax.Array]:
        """Slots ``i32[n]`` of the last ``n`` entries (oldest first) and their global indices."""
        idx = self.count - n + jnp.arange(n, dtype=jnp.int32)
        return idx % self.capacity, idx


def _proportional_choice(key: jax.Array, values: jax.Array, active: jax.Array, n: int):
    """``i32[n]`` indices drawn in proportion to ``values`` over ``active`` entries; uniformly
    over the active ones when those values sum to 0 (teachDeepRL's ``proportional_choice``)."""
    v = jnp.where(active, jnp.maximum(values, 0.0), 0.0)
    w = jnp.where(jnp.sum(v) > 0, v, active.astype(jnp.float32))
    logits = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -jnp.inf)
    return jax.random.categorical(key, logits, shape=(n,))


class Teacher(ResetStrategy):
    """Base class: task sampling at starts, the episode history in ``observe``.

    Subclasses implement :meth:`init_state` (their state, with ``key``, ``current`` and
    ``history`` fields) and :meth:`sample`, and may override ``on_update`` and ``metrics``.

    Args:
        space: the task space (checked against its environment unless ``check=False``: fields
            that change the action or observation space are refused).
        history: capacity of the episode history (ring).
    """

    name = "teacher"

    def __init__(self, space: TaskSpace, *, history: int = 4096, check: bool = True):
        if not isinstance(space, TaskSpace):
            raise TypeError(f"{type(self).__name__} needs a TaskSpace, got {type(space).__name__}")
        if history < 1:
            raise ValueError(f"history must be positive, got {history}")
        if check:
            space.check()
        self.space = space
        self.history = int(history)

    # Hashable by value: equal teachers share compiled programs.
    def _config(self) -> tuple:
        return tuple(sorted((k, v) for k, v in vars(self).items()))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._config() == other._config()

    def __hash__(self) -> int:
        return hash((type(self), self._config()))

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "task_space": self.space.name}
        for k, v in vars(self).items():
            if k != "space":
                out[k] = list(v) if isinstance(v, tuple) else v
        return out

    # -- what a teacher supplies --------------------------------------------------------------

    def init_state(self, key: jax.Array, num_envs: int) -> Any:
        raise NotImplementedError

    def sample(self, key: jax.Array, state: Any, n: int) -> jax.Array:
        """``f32[n, d]`` new tasks (in the box)."""
        raise NotImplementedError

    # -- the reset-strategy protocol ----------------------------------------------------------

    def init(self, key: jax.Array, env: Any, params: Any, num_envs: int) -> Any:
        return self.init_state(key, num_envs)

    def starts(
        self, key: jax.Array, state: Any, env: Any, params: Any, mask: jax.Array
    ) -> tuple[Starts, Any]:
        k_task, k_reset = jax.random.split(key)
        tasks = jnp.where(mask[:, None], self.sample(k_task, state, mask.shape[0]), state.current)
        task_params = apply_tasks(self.space, params, tasks, reference=env.default_params)
        obs, env_state = reset_copies(env, k_reset, task_params)
        return Starts(obs, env_state, task_params), state.replace(current=tasks)

    def observe(self, state: Any, record: StepRecord) -> Any:
        return state.replace(
            history=state.history.add(state.current, record.episode_return, record.done)
        )

    def metrics(self, state: Any) -> dict[str, jax.Array]:
        return {"teacher_episodes": state.history.count.astype(jnp.float32)}


# -- Random -------------------------------------------------------------------------------------


@struct.dataclass
class RandomState:
    key: jax.Array
    current: jax.Array  # f32[B, d] each copy's task
    history: History


class RandomTeacher(Teacher):
    """Uniform tasks from the box (the baseline; records the history like the others)."""

    name = "random"

    def init_state(self, key, num_envs):
        d = self.space.dim
        return RandomState(key, jnp.zeros((num_envs, d)), History.create(self.history, d))

    def sample(self, key, state, n):
        return self.space.uniform(key, n)


# -- ALP-GMM ------------------------------------------------------------------------------------


@struct.dataclass
class ALPGMMState:
    key: jax.Array
    """Key of the refits."""
    current: jax.Array
    """``f32[B, d]`` each copy's task."""
    history: History
    alps: jax.Array
    """``f32[H]`` absolute learning progress of each history entry."""
    alp_done: jax.Array
    """``i32[]`` entries whose ALP is computed (the rest wait for the next update)."""
    gmm: gmm_lib.GaussianMixture
    """The current mixture over (task, ALP), ``max(ks)`` slots."""
    k: jax.Array
    """``i32[]`` its number of components (0 before the first fit)."""
    last_fit: jax.Array
    """``i32[]`` ``history.count`` at the last fit."""
    refits: jax.Array
    """``i32[]`` fits so far."""
    random_task_ratio: jax.Array
    """``f32[]`` share of uniform tasks after the bootstrap (a data setting: members of one
    program may differ in it, PBT copies and perturbs it)."""


def _nearest_alp(
    tasks: jax.Array, norm_returns: jax.Array, count: jax.Array, idx: jax.Array
) -> jax.Array:
    """ALP of history entries with global indices ``idx[P]`` (ring arrays ``[H, ...]``).

    Entry ``j``'s ALP is ``|r_j - r_i|`` for the entry ``i < j`` whose task is nearest to
    entry ``j``'s (Euclidean) among those still in the ring, and 0 while ``j <= 5`` (the
    reference's ``len(history) > 5``).
    """
    h = tasks.shape[0]
    slots = idx % h
    ring = jnp.arange(h, dtype=jnp.int32)
    ring_global = count - 1 - ((count - 1 - ring) % h)  # global index held by each slot
    ok = (ring_global >= 0)[None, :] & (ring_global[None, :] < idx[:, None])
    d2 = jnp.sum((tasks[slots][:, None, :] - tasks[None, :, :]) ** 2, axis=-1)
    nearest = jnp.argmin(jnp.where(ok, d2, jnp.inf), axis=1)
    alp = jnp.abs(norm_returns[slots] - norm_returns[nearest])
    return jnp.where(idx > 5, alp, 0.0)


def nearest_neighbour_alp(tasks: jax.Array, returns: jax.Array) -> jax.Array:
    """ALP-GMM's learning progress of a whole history (the reference's definition).

    Args:
        tasks: ``f32[n, d]`` tasks in episode order.
        returns: ``f32[n]`` their (normalised) returns.

    Returns:
        ``f32[n]``: ``|r_j - r_i|`` with ``i < j`` the earlier task nearest to task ``j``; 0 for
        the first 6 episodes.
    """
    n = tasks.shape[0]
    return _nearest_alp(tasks, returns, jnp.int32(n), jnp.arange(n, dtype=jnp.int32))


class _GMMTeacher(Teacher):
    """Shared by ALP-GMM and Covar-GMM: bootstrap, refit schedule, Gaussian-choice sampling."""

    def __init__(
        self,
        space: TaskSpace,
        *,
        fit_rate: int = 250,
        ks: Sequence[int] = tuple(range(2, 11)),
        random_task_ratio: float = 0.2,
        n_init: int = 1,
        num_iters: int = gmm_lib.NUM_ITERS,
        refit_every: int = 1,
        history: int = 4096,
        check: bool = True,
    ):
        super().__init__(space, history=history, check=check)
        ks = tuple(int(k) for k in ks)
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must be positive integers, got {ks}")
        if fit_rate < max(ks):
            raise ValueError(f"fit_rate ({fit_rate}) must be at least max(ks) ({max(ks)})")
        if history < fit_rate:
            raise ValueError(f"history ({history}) must hold fit_rate ({fit_rate}) episodes")
        if not 0.0 <= random_task_ratio <= 1.0:
            raise ValueError(f"random_task_ratio must be in [0, 1], got {random_task_ratio}")
        if refit_every < 1:
            raise ValueError(f"refit_every must be positive, got {refit_every}")
        self.fit_rate = int(fit_rate)
        self.ks = ks
        self.random_task_ratio = float(random_task_ratio)
        self.n_init = int(n_init)
        self.num_iters = int(num_iters)
        self.refit_every = int(refit_every)

    extra_dims = 1  # dimensions appended to the task in the fitted data
    data_settings = ("random_task_ratio",)
    data_ranges = {"random_task_ratio": (0.0, 1.0)}

    def fit_data(self, state: Any) -> jax.Array:
        """``f32[fit_rate, d + extra]`` the points of the next fit (the last ``fit_rate``)."""
        raise NotImplementedError

    def gaussian_scores(self, gmm: gmm_lib.GaussianMixture) -> jax.Array:
        """``f32[K]`` what a Gaussian is chosen in proportion to."""
        raise NotImplementedError

    def learn(self, state: Any) -> Any:
        """Per-episode learning before the refit (ALP-GMM: learning progress)."""
        return state

    def _empty_gmm(self) -> gmm_lib.GaussianMixture:
        k, dd = max(self.ks), self.space.dim + self.extra_dims
        return gmm_lib.GaussianMixture(
            weights=jnp.zeros(k, jnp.float32),
            means=jnp.zeros((k, dd), jnp.float32),
            covariances=jnp.broadcast_to(jnp.eye(dd, dtype=jnp.float32), (k, dd, dd)),
        )

    def _fit(self, state: Any) -> Any:
        key, k_fit = jax.random.split(state.key)
        gmm, k = gmm_lib.fit_best(
            k_fit, self.fit_data(state), self.ks, num_iters=self.num_iters, n_init=self.n_init
        )
        return state.replace(
            key=key, gmm=gmm, k=k, last_fit=state.history.count, refits=state.refits + 1
        )

    def on_update(self, state: Any, update_index: jax.Array) -> Any:
        state = self.learn(state)
        n = state.history.count
        ready = (n >= self.fit_rate) & (n - state.last_fit >= self.fit_rate)
        # run_if, not lax.cond: under the runner's vmap over seeds ``ready`` is batched, and a
        # cond would become a select that runs the k = 2..10 EM at every boundary.
        return run_if(ready & (update_index % self.refit_every == 0), self._fit, state)

    def sample(self, key, state, n):
        k_uni, k_mode, k_comp, k_draw = jax.random.split(key, 4)
        uniform = self.space.uniform(k_uni, n)
        gmm = state.gmm
        comp = _proportional_choice(k_comp, self.gaussian_scores(gmm), gmm.weights > 0, n)
        drawn = gmm_lib.sample(k_draw, gmm, comp)[:, : self.space.dim]
        use_uniform = (state.k == 0) | (jax.random.uniform(k_mode, (n,)) < state.random_task_ratio)
        return jnp.where(use_uniform[:, None], uniform, self.space.clip(drawn))

    def metrics(self, state):
        return {
            **super().metrics(state),
            "teacher_components": state.k.astype(jnp.float32),
            "teacher_refits": state.refits.astype(jnp.float32),
        }


class ALPGMM(_GMMTeacher):
    """ALP-GMM (Portelas et al., CoRL 2019), faithful to teachDeepRL's ``alp_gmm.py``.

    * Learning progress of an episode: the absolute difference between its normalised return
      (``space.return_range`` -> [0, 1], clipped) and that of the nearest earlier task in the
      history (0 while the history holds at most 5 entries).
    * Tasks are uniform until the first fit; a fit happens once ``fit_rate`` (250) episodes
      came in since the last one, on the last ``fit_rate`` points of (task, ALP): full-covariance
      EM for every ``k`` in ``ks`` (2..10), ``n_init`` (1) k-means++ inits each, lowest AIC kept.
    * Sampling: with probability ``random_task_ratio`` (0.2) a uniform task; otherwise a
      Gaussian chosen in proportion to the ALP coordinate of its mean (uniformly when all are
      0; mixture weights ignored), a draw from it without the ALP dimension, clipped to the box.

    Differences forced by fixed shapes: the nearest-neighbour search covers the last
    ``history`` episodes (the reference's history is unbounded); a fit happens at the first
    update boundary (every ``refit_every`` updates) after ``fit_rate`` new episodes, not at the
    episode itself; episodes finishing at the same step are ordered by copy.

    Args:
        space: the task space.
        fit_rate: episodes between fits (and the bootstrap length); 250 (TeachMyAgent: 150).
        ks: numbers of components tried; ``range(2, 11)`` (TeachMyAgent: 2..9).
        random_task_ratio: share of uniform tasks after the bootstrap; 0.2 (TeachMyAgent 0.05).
        n_init: EM inits per ``k`` (reference ``nb_em_init=1``).
        num_iters: maximum EM iterations (scikit-learn's 100).
        refit_every: the update boundaries at which a fit may happen (every R updates; 1:
            the first boundary after ``fit_rate`` new episodes). Under a vmap over seeds a fit
            costs the whole batch, once per boundary at which any seed is due; R > 1 gathers
            seeds that fall due at different updates into one fit.
        history: capacity of the history searched for nearest neighbours.
        alp_chunk: episodes whose ALP is computed together (a loop runs over chunks).
    """

    name = "alp_gmm"

    def __init__(self, space: TaskSpace, *, alp_chunk: int = 16, **kwargs):
        super().__init__(space, **kwargs)
        self.alp_chunk = int(min(alp_chunk, self.history))

    def init_state(self, key, num_envs):
        d = self.space.dim
        return ALPGMMState(
            key=key,
            current=jnp.zeros((num_envs, d)),
            history=History.create(self.history, d),
            alps=jnp.zeros(self.history, jnp.float32),
            alp_done=jnp.int32(0),
            gmm=self._empty_gmm(),
            k=jnp.int32(0),
            last_fit=jnp.int32(0),
            refits=jnp.int32(0),
            random_task_ratio=jnp.float32(self.random_task_ratio),
        )

    def learn(self, state: ALPGMMState) -> ALPGMMState:
        """ALP of every episode recorded since the last update, in chunks of ``alp_chunk``."""
        h = state.history
        norm = self.space.normalize_return(h.returns)
        start = jnp.maximum(state.alp_done, h.count - self.history)  # older entries are gone

        def chunk(carry):
            alps, done = carry
            idx = done + jnp.arange(self.alp_chunk, dtype=jnp.int32)
            valid = idx < h.count
            alp = _nearest_alp(h.tasks, norm, h.count, idx)
            slots = jnp.where(valid, idx % self.history, self.history)
            return alps.at[slots].set(alp, mode="drop"), jnp.minimum(done + self.alp_chunk, h.count)

        alps, done = jax.lax.while_loop(
            lambda c: c[1] < h.count, chunk, (state.alps, start.astype(jnp.int32))
        )
        return state.replace(alps=alps, alp_done=done)

    def fit_data(self, state):
        slots, _ = state.history.last(self.fit_rate)
        return jnp.concatenate([state.history.tasks[slots], state.alps[slots, None]], axis=1)

    def gaussian_scores(self, gmm):
        return gmm.means[:, -1]

    def metrics(self, state):
        slots, idx = state.history.last(self.fit_rate)
        ok = (idx >= 0) & (idx < state.alp_done)
        mean_alp = jnp.sum(jnp.where(ok, state.alps[slots], 0.0)) / jnp.maximum(jnp.sum(ok), 1)
        return {**super().metrics(state), "teacher_alp": mean_alp}


@struct.dataclass
class CovarGMMState:
    key: jax.Array
    current: jax.Array
    history: History
    gmm: gmm_lib.GaussianMixture
    k: jax.Array
    last_fit: jax.Array
    refits: jax.Array
    random_task_ratio: jax.Array  # f32[] (a data setting, as ALPGMMState's)


class CovarGMM(_GMMTeacher):
    """Covar-GMM (Moulin-Frier et al. 2014, as in teachDeepRL's ``covar_gmm.py``).

    Fits (task, time, normalised return) of the last ``fit_rate`` episodes, time being the
    episode's position in that batch (``i / fit_rate``, oldest 0: the reference fits exactly at
    the end of each batch of ``fit_rate``, here at the next update boundary); a Gaussian
    is chosen in proportion to ``max(0, cov(time, return))`` (uniformly when all are 0); AIC
    over ``ks``; the same bootstrap, ``random_task_ratio`` and refit schedule as
    :class:`ALPGMM`.
    """

    name = "covar_gmm"
    extra_dims = 2

    def init_state(self, key, num_envs):
        d = self.space.dim
        return CovarGMMState(
            key=key,
            current=jnp.zeros((num_envs, d)),
            history=History.create(self.history, d),
            gmm=self._empty_gmm(),
            k=jnp.int32(0),
            last_fit=jnp.int32(0),
            refits=jnp.int32(0),
            random_task_ratio=jnp.float32(self.random_task_ratio),
        )

    def fit_data(self, state):
        h = state.history
        slots, _ = h.last(self.fit_rate)
        time = jnp.arange(self.fit_rate, dtype=jnp.float32) / self.fit_rate
        ret = self.space.normalize_return(h.returns[slots])
        return jnp.concatenate([h.tasks[slots], time[:, None], ret[:, None]], axis=1)

    def gaussian_scores(self, gmm):
        return jnp.maximum(gmm.covariances[:, -2, -1], 0.0)


# -- RIAC ---------------------------------------------------------------------------------------


@struct.dataclass
class RIACState:
    key: jax.Array
    current: jax.Array
    history: History
    processed: jax.Array
    """``i32[]`` history entries already given to the regions."""
    low: jax.Array
    """``f32[N, d]`` region bounds (regions in creation order: root first)."""
    high: jax.Array
    num_regions: jax.Array
    """``i32[]`` regions in use."""
    is_leaf: jax.Array
    """``bool[N]``."""
    alp: jax.Array
    """``f32[N]`` each region's learning progress."""
    rewards: jax.Array
    """``f32[N, L]`` each region's (normalised) returns, a ring of ``L = max_region_size + 1``."""
    tasks: jax.Array
    """``f32[N, L, d]`` their tasks."""
    start: jax.Array
    """``i32[N]`` ring slot of each region's oldest pair."""
    size: jax.Array
    """``i32[N]`` pairs each region holds."""
    splits: jax.Array
    """``i32[]`` successful splits."""


class RIAC(Teacher):
    """RIAC (Baranes and Oudeyer 2009), as in teachDeepRL's ``riac.py``.

    Regions (root = the box) each keep their last ``max_region_size + 1`` (task, normalised
    return) pairs; a pair goes to every region containing it. A leaf holding more than
    ``max_region_size`` (200) pairs is split: of ``nb_split_attempts`` (50) random axis-aligned
    cuts, each redrawn until both halves hold at least ``max_region_size / 20`` pairs, valid
    when both halves span at least ``min_dims_range_ratio`` (1/15) of the box along the cut,
    the one of largest |ALP_1 - ALP_2| is kept; with none valid the region drops its oldest
    quarter. Region ALP: |mean of the older half - mean of the newer half| of its last
    ``alp_window`` (= ``max_region_size``) returns. Sampling (all regions, not only leaves):
    70% a region in proportion to ALP (uniformly when all are 0), uniform inside it; 20%
    uniform in the box; 10% the lowest-return task of an ALP-chosen region plus N(0, 0.1),
    clipped 1e-5 inside the region.

    Differences forced by fixed shapes: at most ``max_regions`` regions (when full, a leaf
    that needs a split drops its oldest quarter); a cut is redrawn at most ``split_tries`` times
    (then that attempt is invalid); new children get the ALP of the kept cut (the reference
    leaves the last attempt's, a slip).
    """

    name = "riac"

    def __init__(
        self,
        space: TaskSpace,
        *,
        max_region_size: int = 200,
        nb_split_attempts: int = 50,
        min_dims_range_ratio: float = 1 / 15,
        discard_ratio: float = 1 / 4,
        max_regions: int = 127,
        split_tries: int = 16,
        history: int = 4096,
        check: bool = True,
    ):
        super().__init__(space, history=history, check=check)
        if max_region_size < 4:
            raise ValueError(f"max_region_size must be at least 4, got {max_region_size}")
        if max_regions < 1:
            raise ValueError(f"max_regions must be positive, got {max_regions}")
        self.max_region_size = int(max_region_size)
        self.nb_split_attempts = int(nb_split_attempts)
        self.min_dims_range_ratio = float(min_dims_range_ratio)
        self.discard_ratio = float(discard_ratio)
        self.max_regions = int(max_regions)
        self.split_tries = int(split_tries)

    @property
    def _ring(self) -> int:
        return self.max_region_size + 1

    def init_state(self, key, num_envs):
        d, n, ring = self.space.dim, self.max_regions, self._ring
        return RIACState(
            key=key,
            current=jnp.zeros((num_envs, d)),
            history=History.create(self.history, d),
            processed=jnp.int32(0),
            low=jnp.broadcast_to(self.space.low_array, (n, d)),
            high=jnp.broadcast_to(self.space.high_array, (n, d)),
            num_regions=jnp.int32(1),
            is_leaf=jnp.arange(n) == 0,
            alp=jnp.zeros(n, jnp.float32),
            rewards=jnp.zeros((n, ring), jnp.float32),
            tasks=jnp.zeros((n, ring, d), jnp.float32),
            start=jnp.zeros(n, jnp.int32),
            size=jnp.zeros(n, jnp.int32),
            splits=jnp.int32(0),
        )

    # -- learning progress --------------------------------------------------------------------

    def _alp_by_age(self, rewards: jax.Array, age: jax.Array, size: jax.Array) -> jax.Array:
        """ALP of sequences given per pair their age (0 = newest; negative = not a member):
        ``rewards [..., L]``, ``age [..., L]``, ``size [...]``."""
        window = jnp.minimum(size, self.max_region_size)
        half = window // 2
        newer = (age >= 0) & (age < half[..., None])
        older = (age >= half[..., None]) & (age < window[..., None])

        def mean(m):
            return jnp.sum(jnp.where(m, rewards, 0.0), -1) / jnp.maximum(jnp.sum(m, -1), 1)

        return jnp.where(size > 2, jnp.abs(mean(older) - mean(newer)), 0.0)

    def _region_ages(self, start: jax.Array, size: jax.Array) -> jax.Array:
        """``i32[N, L]`` age of each ring slot (-1: empty)."""
        pos = (jnp.arange(self._ring)[None, :] - start[:, None]) % self._ring  # 0 = oldest
        return jnp.where(pos < size[:, None], size[:, None] - 1 - pos, -1)

    # -- one episode --------------------------------------------------------------------------

    def _add(self, s: RIACState, task: jax.Array, reward: jax.Array, key: jax.Array) -> RIACState:
        n, ring = self.max_regions, self._ring
        active = jnp.arange(n) < s.num_regions
        inside = active & jnp.all((s.low <= task) & (task <= s.high), axis=1)
        full = s.size == ring
        slot = jnp.where(full, s.start, (s.start + s.size) % ring)
        rows = jnp.arange(n)
        s = s.replace(
            rewards=s.rewards.at[rows, slot].set(jnp.where(inside, reward, s.rewards[rows, slot])),
            tasks=s.tasks.at[rows, slot].set(jnp.where(inside[:, None], task, s.tasks[rows, slot])),
            start=jnp.where(inside & full, (s.start + 1) % ring, s.start),
            size=jnp.where(inside, jnp.minimum(s.size + 1, ring), s.size),
        )
        need = inside & s.is_leaf & (s.size > self.max_region_size)
        # run_if: batched over seeds, a split runs only when some seed's region needs one
        s = run_if(
            jnp.any(need),
            lambda c: (
                self._split(c[0], jnp.argmax(c[1]), c[2]),
                c[1],
                jax.random.fold_in(c[2], 1),
            ),
            (s, need, key),
        )[0]
        ages = self._region_ages(s.start, s.size)
        alp = self._alp_by_age(s.rewards, ages, s.size)
        return s.replace(alp=jnp.where(inside, alp, s.alp))

    def _split(self, s: RIACState, r: jax.Array, key: jax.Array) -> RIACState:
        d, ring = self.space.dim, self._ring
        a, t = self.nb_split_attempts, self.split_tries
        lo, hi = s.low[r], s.high[r]
        rewards, tasks = s.rewards[r], s.tasks[r]  # [L], [L, d]
        age = self._region_ages(s.start[r][None], s.size[r][None])[0]  # [L]
        member = age >= 0
        k_dim, k_thr = jax.random.split(key)
        dims = jax.random.randint(k_dim, (a, t), 0, d)
        thr = lo[dims] + (hi[dims] - lo[dims]) * jax.random.uniform(k_thr, (a, t))
        left = member & (jnp.take(tasks, dims, axis=1).transpose(1, 2, 0) <= thr[..., None])
        # left: [a, t, L] pairs going to the lower child
        n_left = jnp.sum(left, -1)
        n_right = jnp.sum(member, -1) - n_left
        minlen = self.max_region_size / 20
        enough = (n_left >= minlen) & (n_right >= minlen)
        first = jnp.argmax(enough, axis=1)  # the first try with both halves populated
        found = jnp.any(enough, axis=1)
        dim = jnp.take_along_axis(dims, first[:, None], 1)[:, 0]
        cut = jnp.take_along_axis(thr, first[:, None], 1)[:, 0]
        go_left = jnp.take_along_axis(left, first[:, None, None], 1)[:, 0]  # [a, L]
        span = (self.space.high_array - self.space.low_array)[dim] * self.min_dims_range_ratio
        valid = found & (cut - lo[dim] >= span) & (hi[dim] - cut >= span)

        by_age = jnp.argsort(jnp.where(member, age, ring))  # newest member first

        def child_alp(m):  # m [a, L]: a pair's age in the child = newer members before it
            rank_sorted = jnp.cumsum(m[:, by_age], axis=1) - 1
            rank = jnp.zeros_like(rank_sorted).at[:, by_age].set(rank_sorted)
            return self._alp_by_age(rewards[None, :], jnp.where(m, rank, -1), jnp.sum(m, -1))

        alp_l = child_alp(go_left)
        alp_r = child_alp(member[None, :] & ~go_left)
        score = jnp.where(valid, jnp.abs(alp_l - alp_r), -1.0)
        # The last attempt of the best score (the reference keeps a later tie: ">=").
        best = a - 1 - jnp.argmax(score[::-1])
        room = s.num_regions + 2 <= self.max_regions
        do_split = jnp.any(valid) & room

        def split(s):
            c1, c2 = s.num_regions, s.num_regions + 1
            bdim, bcut = dim[best], cut[best]
            gl = go_left[best]
            gr = member & ~gl

            def compact(m):  # the child's pairs, oldest first, from slot 0
                order = jnp.argsort(jnp.where(m, -age, ring + 1))  # oldest member first
                cnt = jnp.sum(m)
                keep = jnp.arange(ring) < cnt
                return (
                    jnp.where(keep, rewards[order], 0.0),
                    jnp.where(keep[:, None], tasks[order], 0.0),
                    cnt,
                )

            r1, t1, n1 = compact(gl)
            r2, t2, n2 = compact(gr)
            return s.replace(
                low=s.low.at[c1].set(lo).at[c2].set(lo.at[bdim].set(bcut)),
                high=s.high.at[c1].set(hi.at[bdim].set(bcut)).at[c2].set(hi),
                num_regions=s.num_regions + 2,
                is_leaf=s.is_leaf.at[r].set(False).at[c1].set(True).at[c2].set(True),
                alp=s.alp.at[c1].set(alp_l[best]).at[c2].set(alp_r[best]),
                rewards=s.rewards.at[c1].set(r1).at[c2].set(r2),
                tasks=s.tasks.at[c1].set(t1).at[c2].set(t2),
                start=s.start.at[c1].set(0).at[c2].set(0),
                size=s.size.at[c1].set(n1).at[c2].set(n2),
                splits=s.splits + 1,
            )

        def discard(s):
            drop = int(self.max_region_size * self.discard_ratio)
            return s.replace(
                start=s.start.at[r].set((s.start[r] + drop) % ring),
                size=s.size.at[r].set(s.size[r] - drop),
            )

        return jax.lax.cond(do_split, split, discard, s)

    def on_update(self, state: RIACState, update_index: jax.Array) -> RIACState:
        """Give every episode recorded since the last update to the regions, in order."""
        h = state.history
        start = jnp.maximum(state.processed, h.count - self.history)

        def body(carry):
            s, j = carry
            slot = j % self.history
            reward = self.space.normalize_return(h.returns[slot])
            key, k_split = jax.random.split(s.key)
            s = self._add(s.replace(key=key), h.tasks[slot], reward, k_split)
            return s, j + 1

        state, done = jax.lax.while_loop(lambda c: c[1] < h.count, body, (state, start))
        return state.replace(processed=done)

    def sample(self, key, state, n):
        k_mode, k_reg, k_in, k_uni, k_noise = jax.random.split(key, 5)
        d = self.space.dim
        active = jnp.arange(self.max_regions) < state.num_regions
        region = _proportional_choice(k_reg, state.alp, active, n)
        lo, hi = state.low[region], state.high[region]
        in_region = lo + (hi - lo) * jax.random.uniform(k_in, (n, d))
        uniform = self.space.uniform(k_uni, n)
        # mode 3: the region's lowest-return pair, mutated
        ages = self._region_ages(state.start[region], state.size[region])  # [n, L]
        worst = jnp.argmin(jnp.where(ages >= 0, state.rewards[region], jnp.inf), axis=1)
        worst_task = state.tasks[region, worst]
        mutated = jnp.clip(
            worst_task + 0.1 * jax.random.normal(k_noise, (n, d)), lo + 1e-5, hi - 1e-5
        )
        mutated = jnp.where((state.size[region] > 0)[:, None], mutated, in_region)
        mutated = jnp.where(state.processed > 0, mutated, uniform)
        mode = jax.random.uniform(k_mode, (n, 1))
        return jnp.where(mode < 0.1, mutated, jnp.where(mode < 0.3, uniform, in_region))

    def metrics(self, state):
        active = jnp.arange(self.max_regions) < state.num_regions
        mean_alp = jnp.sum(jnp.where(active, state.alp, 0.0)) / state.num_regions
        return {
            **super().metrics(state),
            "teacher_regions": state.num_regions.astype(jnp.float32),
            "teacher_alp": mean_alp,
        }


TEACHERS: dict[str, type[Teacher]] = {
    "alp_gmm": ALPGMM,
    "covar_gmm": CovarGMM,
    "riac": RIAC,
    "random": RandomTeacher,
}
"""Teacher classes by name (``accelrl-teach --teacher``)."""


def make_teacher(name: str, space: TaskSpace, **kwargs: Any) -> Teacher:
    """The teacher ``name`` (one of :data:`TEACHERS`) on ``space`` with its keyword settings."""
    try:
        cls = TEACHERS[name]
    except KeyError:
        raise ValueError(f"unknown teacher {name!r}; known: {', '.join(TEACHERS)}") from None
    return cls(space, **kwargs)


# -- the teachers as registered reset strategies ------------------------------------------------


def _settings_class(cls: type[Teacher]) -> type:
    """A frozen dataclass of ``cls``'s settings: ``task_space`` (a registered name) and the
    keyword arguments of its constructor chain, with their annotations and defaults (written
    once, in the constructors)."""
    import dataclasses
    import inspect
    import typing

    fields: dict[str, tuple[Any, Any]] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is ResetStrategy:
            continue
        hints = typing.get_type_hints(init)
        for p in inspect.signature(init).parameters.values():
            if p.kind is not p.KEYWORD_ONLY or p.name == "check" or p.name in fields:
                continue
            tp = hints.get(p.name, Any)
            if typing.get_origin(tp) is Sequence:  # settings are hashable: tuples
                tp = tuple[typing.get_args(tp)[0], ...]
            default = tuple(p.default) if isinstance(p.default, list | range) else p.default
            fields[p.name] = (tp, default)
    spec = [("task_space", str)] + [
        (n, tp, dataclasses.field(default=d)) for n, (tp, d) in fields.items()
    ]
    settings = dataclasses.make_dataclass(f"{cls.__name__}Settings", spec, frozen=True)
    settings.__module__ = __name__
    settings.__doc__ = (
        f"Settings of the {cls.name!r} teacher: the task space's name and the keyword "
        f"arguments of :class:`{cls.__name__}`."
    )
    return settings


def _register_teacher(name: str, cls: type[Teacher]) -> Any:
    from accelrl.curricula.tasks import task_space
    from accelrl.envs.strategies import StrategyBuild, register_strategy

    settings_cls = _settings_class(cls)

    def build(settings: Any, context: Any) -> StrategyBuild:
        space = task_space(settings.task_space)
        if context.env_id != space.env_id:
            raise ValueError(
                f"task space {space.name!r} is over {space.env_id}, not {context.env_id}"
            )
        if dict(context.env_kwargs) not in ({}, dict(space.env_kwargs)):
            raise ValueError(
                f"task space {space.name!r} makes {space.env_id} with {dict(space.env_kwargs)}, "
                f"not env_kwargs {dict(context.env_kwargs)}"
            )
        kwargs = {k: v for k, v in vars(settings).items() if k != "task_space"}
        teacher = cls(space, **kwargs)
        env, params = space.make()
        return StrategyBuild(env, params, teacher, settings)

    def extras(settings: Any, spec: Any, out: Any, resume: bool = False):
        from accelrl._typed import from_mapping
        from accelrl.curricula.report import Measurements, curriculum_extras
        from accelrl.curricula.tasks import task_space

        measurements = from_mapping(Measurements, dict(spec.curriculum or {}), "curriculum")
        space = task_space(settings.task_space)
        seeds, grid = list(spec.seeds), len(spec.grid)
        folders = (
            [f"member_{i}" for i in range(grid * len(seeds))]
            if grid
            else [f"seed_{s}" for s in seeds]
        )
        return curriculum_extras(space, name, measurements, spec.agent, out, resume, folders)

    def resolve(settings: Any, spec: Any) -> Any:
        import dataclasses

        from accelrl._typed import from_mapping, to_plain
        from accelrl.curricula.report import Measurements, heatmap_dims
        from accelrl.curricula.tasks import task_space

        measurements = from_mapping(Measurements, dict(spec.curriculum or {}), "curriculum")
        names = task_space(settings.task_space).names
        dims = tuple(names[i] for i in heatmap_dims(measurements.heatmap_dims, names))
        return spec.replace(
            curriculum=to_plain(dataclasses.replace(measurements, heatmap_dims=dims))
        )

    def mastered(settings: Any, spec: Any) -> Any:
        from accelrl._typed import from_mapping
        from accelrl.agents.evaluation import evaluation_key
        from accelrl.curricula.evaluation import mastered_fraction
        from accelrl.curricula.report import Measurements
        from accelrl.curricula.tasks import task_space, test_tasks

        measurements = from_mapping(Measurements, dict(spec.curriculum or {}), "curriculum")
        space = task_space(settings.task_space)
        tasks = test_tasks(space, measurements.test_seed, measurements.test_tasks)

        def score(agent: Any, state: Any) -> Any:
            key = evaluation_key(measurements.test_seed)
            return mastered_fraction(
                agent, state, space, tasks, key, measurements.episodes_per_task
            )

        return score

    return register_strategy(
        name,
        settings_cls,
        build,
        extras=extras,
        description=(cls.__doc__ or "").split("\n")[0],
        resolve=resolve,
        kind="teacher",
        data_settings=tuple(getattr(cls, "data_settings", ())),
        scores={"mastered": mastered},
    )


TEACHER_SETTINGS: dict[str, type] = {}
"""The settings class of each teacher by name (``task_space`` and the constructor's keywords)."""

for _name, _cls in TEACHERS.items():
    TEACHER_SETTINGS[_name] = _register_teacher(_name, _cls).settings_cls


__all__ = [
    "ALPGMM",
    "RIAC",
    "TEACHERS",
    "TEACHER_SETTINGS",
    "ALPGMMState",
    "CovarGMM",
    "CovarGMMState",
    "History",
    "RIACState",
    "RandomState",
    "RandomTeacher",
    "Teacher",
    "make_teacher",
    "nearest_neighbour_alp",
]
