"""MallocGame-v0: map a program's buffers into fast memory, one buffer at a time.

Rules (the pure-Python twin in :mod:`accelrl.envs.malloc.reference` follows them line by line):

* A workload's buffers are offered one per step in ``params.order`` (default: start order,
  larger first on ties, then id). The episode ends after the workload's last buffer
  (``terminated``; there is no truncation).
* Actions: ``0`` leaves the buffer in slow memory (always legal); ``a in 1..K`` places it at
  the ``a``-th lowest *feasible canonical offset*: offset 0 and the ends of placed buffers
  that share a schedule step with it, kept where the buffer fits under the capacity without
  overlapping any of them (MiniMalloc's canonical positions: exact gap starts, no grid).
  ``action_mask[a]`` says whether action ``a`` is legal; an illegal action is played as ``0``.
* Reward: the buffer's benefit divided by the workload's total benefit when placed, else 0,
  so an episode's return is the normalised benefit of the final placement.
* Sizes, offsets and the capacity are in alignment units (``params.alignment`` bytes each).

Sweep line: the state keeps a table of ``max_live`` slots with the placed buffers that may
still meet a buffer yet to come. Before a step, a slot is freed when its buffer ends before
the earliest start among the buffers not yet offered (``sweep``). In start order that is the
current buffer's start, so the table holds at most the peak number of simultaneously live
buffers. The table is kept sorted by offset (an insertion shifts entries by one), so the
feasible canonical offsets come from running maxima/minima over it: a step costs
O((K + num_bins) * max_live) elementwise work, no sort, no search over all buffers, independent of ``max_buffers``.
Other orders are supported exactly, but keep more buffers in the table (up to all of them);
:meth:`MallocGame.params_for` computes the slots an order needs and refuses params that do not
fit. If the table is ever full, placements are masked (spilling stays legal).

Reachability: a buffer can only rest at 0 or on top of a buffer offered *before* it. In start
order that excludes packings in which a buffer floats on one that starts later; "size" order
(largest first) reaches the CP-SAT optimum more often (measured in docs/envs/malloc_game.md),
"xla" order reaches ``xla_best_fit``'s placement when K covers all feasible gaps, and with K
candidates only the K lowest offsets are offered.

Resets are cheap (fill the placement record, offer the first buffer). All per-workload
preprocessing (alignment units, order, sweep, normalised benefits) happens once on the host in
:meth:`MallocGame.params_for` / :meth:`MallocGame.make_params`, the latter stacking padded
workloads on a leading batch axis so that batched copies play different programs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from accelrl.envs.checks import ParamChecker, check_choice, check_int, check_real
from accelrl.envs.malloc.workload import ORDERS, Workload

BIG = np.int32(2**30)
FEATURE_CLIP = 10.0
BUFFER_FEATURES = 6
GLOBAL_FEATURES = 4
CANDIDATE_FEATURES = 5
"""Per-candidate features of the set observation (``set_size > 0``)."""
SET_FEATURES = 8
"""Per-placed-buffer features of the set observation (``set_size > 0``)."""


@struct.dataclass
class EnvParams:
    """One workload padded to ``max_buffers`` (arrays may carry a leading batch axis)."""

    size: jax.Array
    """[N] int32 sizes in alignment units (0 for padding)."""
    start: jax.Array
    """[N] int32 first live step (inclusive)."""
    end: jax.Array
    """[N] int32 last live step (inclusive)."""
    benefit: jax.Array
    """[N] float32 benefit / total benefit (sums to 1 over real buffers; 0 for padding)."""
    order: jax.Array
    """[N] int32 buffer offered at step t (real buffers first, a permutation of 0..N-1)."""
    sweep: jax.Array
    """[N + 1] int32 earliest start among the buffers offered at step >= t (BIG past the end).
    Derived from ``start`` and ``order`` by :meth:`MallocGame.params_for`; change them together
    (:func:`sweep_for`)."""
    horizon: jax.Array
    """float32 ``max(end) + 1`` over real buffers (feature scale; derived by ``params_for``)."""
    num_buffers: jax.Array
    """int32 number of real buffers (episode length)."""
    capacity: jax.Array
    """int32 fast-memory capacity in alignment units."""
    alignment: jax.Array
    """int32 bytes per alignment unit (to convert back to bytes; no effect on play)."""
    max_steps_in_episode: int = struct.field(pytree_node=False, default=1)
    """``max_buffers`` (an upper bound; episodes terminate after ``num_buffers`` steps)."""


@struct.dataclass
class EnvState:
    """Game state of one copy."""

    time: jax.Array
    """int32 steps taken (= index into ``order`` of the buffer on offer)."""
    offset: jax.Array
    """[N] int32 offset (alignment units) of every buffer id, -1 = slow memory / not offered."""
    slot_off: jax.Array
    """[L] int32 offsets of the placed buffers in the sweep table."""
    slot_size: jax.Array
    """[L] int32 their sizes."""
    slot_start: jax.Array
    """[L] int32 their first live steps."""
    slot_end: jax.Array
    """[L] int32 their last live steps."""
    slot_used: jax.Array
    """[L] bool which slots hold a buffer."""
    cand: jax.Array
    """[K] int32 feasible canonical offsets for the buffer on offer, ascending (0-padded)."""
    cand_gap: jax.Array
    """[K] int32 free run above each candidate (up to the next overlapping buffer or capacity)."""
    num_cand: jax.Array
    """int32 how many entries of ``cand`` are real."""
    can_place: jax.Array
    """bool the buffer on offer exists and the sweep table has a free slot."""
    placed_benefit: jax.Array
    """float32 normalised benefit placed so far (the return so far)."""


class MallocGame(environment.Environment):
    """The memory-mapping game (see the module docstring for the rules).

    Args:
        max_buffers: N, the padded number of buffers (fixes shapes).
        max_live: L, slots of the sweep-line table (>= the buffers an order keeps live).
        num_candidates: K, placement actions (the K lowest feasible canonical offsets).
        num_bins: address bins of the free-memory summary.
        lookahead: how many following buffers are described in the observation.
        default_workload: workload of ``default_params`` (default: the first training program
            of the shipped dataset, ``load_dataset("train")[0]``).
        capacity_fraction: default capacity as a fraction of peak live bytes.
        alignment: default alignment in bytes.
        order: default offering order, one of :data:`~accelrl.envs.malloc.workload.ORDERS`
            (``"start"``, ``"xla"``, ``"size"``, ...; keys in ``Workload.order``).
        set_size: M; when > 0 the observation also describes the candidates and up to M placed
            buffers as sets (keys ``"candidates"``, ``"buffers"``, ``"buffer_mask"``; see
            :meth:`set_observation`) for permutation-invariant policies. 0 (default): the flat
            observation only.

    Inputs: constructor arguments are checked here (integers refuse floats and strings) and
    params by :meth:`check_params` on the host (the adapters and agents call it). Inside jitted
    code nothing is checked: an action outside ``0..K`` or masked out is played as ``0`` (slow
    memory), like any illegal action.
    """

    deterministic_step: bool = True
    """``step_env`` ignores its key (the next state is a function of state, action and params),
    so search agents may use the game as its own model (:mod:`accelrl.agents.search`)."""

    def __init__(
        self,
        max_buffers: int = 768,
        max_live: int = 384,
        num_candidates: int = 8,
        num_bins: int = 16,
        lookahead: int = 2,
        default_workload: Workload | None = None,
        capacity_fraction: float = 0.5,
        alignment: int = 64,
        order: str = "start",
        set_size: int = 0,
    ):
        super().__init__()
        for arg, value in (
            ("max_buffers", max_buffers),
            ("max_live", max_live),
            ("num_candidates", num_candidates),
            ("num_bins", num_bins),
            ("alignment", alignment),
        ):
            check_int(f"MallocGame: {arg}", value, minimum=1)
        check_int("MallocGame: lookahead", lookahead, minimum=0)
        check_int("MallocGame: set_size", set_size, minimum=0)
        if default_workload is not None and not isinstance(default_workload, Workload):
            raise TypeError(
                "MallocGame: default_workload must be a Workload or None, got "
                f"{type(default_workload).__name__}"
            )
        check_real("MallocGame: capacity_fraction", capacity_fraction, low=0.0, low_open=True)
        check_choice("MallocGame: order", order, ORDERS)
        self.set_size = min(int(set_size), int(max_live))
        self.max_buffers = int(max_buffers)
        self.max_live = int(max_live)
        self.num_candidates = int(num_candidates)
        self.num_bins = int(num_bins)
        self.lookahead = int(lookahead)
        self._default_workload = default_workload
        self.capacity_fraction = float(capacity_fraction)
        self.alignment = int(alignment)
        self.order = order
        self._default_params: EnvParams | None = None

    # ---- shapes ------------------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        return (
            BUFFER_FEATURES * (1 + self.lookahead)
            + 2 * self.num_candidates
            + self.num_bins
            + GLOBAL_FEATURES
        )

    @property
    def name(self) -> str:
        return "MallocGame-v0"

    @property
    def num_actions(self) -> int:
        return self.num_candidates + 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Dict:
        obs = {
            "observation": spaces.Box(0.0, FEATURE_CLIP, (self.num_features,), jnp.float32),
            "action_mask": spaces.Box(0, 1, (self.num_actions,), jnp.bool_),
        }
        if self.set_size:
            K, M = self.num_candidates, self.set_size
            obs["candidates"] = spaces.Box(0.0, FEATURE_CLIP, (K, CANDIDATE_FEATURES), jnp.float32)
            obs["buffers"] = spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (M, SET_FEATURES), jnp.float32)
            obs["buffer_mask"] = spaces.Box(0, 1, (M,), jnp.bool_)
        return spaces.Dict(obs)

    # ---- params (host side) ------------------------------------------------------------------
    @property
    def default_params(self) -> EnvParams:
        if self._default_params is None:  # built once (host-side preprocessing)
            workload = self._default_workload
            if workload is None:
                from accelrl.envs.malloc.workload import load_dataset

                workload = load_dataset("train")[0]
            self._default_params = self.params_for(workload)
        return self._default_params

    def params_for(
        self,
        workload: Workload,
        capacity: int | None = None,
        capacity_fraction: float | None = None,
        alignment: int | None = None,
        order: str | np.ndarray | None = None,
    ) -> EnvParams:
        """Params for one workload (host-side preprocessing, done once).

        Args:
            workload: the program.
            capacity: fast memory in bytes (default ``capacity_fraction * peak_live_bytes``).
            capacity_fraction: overrides the constructor's default fraction.
            alignment: bytes per unit (default: the constructor's).
            order: a named order (:data:`~accelrl.envs.malloc.workload.ORDERS`) or an explicit
                permutation of buffer ids.

        Raises:
            ValueError: the workload has more than ``max_buffers`` buffers, the order needs more
                than ``max_live`` sweep slots, or sizes/steps overflow int32 units.
        """
        alignment = self.alignment if alignment is None else int(alignment)
        frac = self.capacity_fraction if capacity_fraction is None else float(capacity_fraction)
        if capacity is None:
            capacity = int(frac * workload.peak_live_bytes)
        n, big_n = workload.num_buffers, self.max_buffers
        if n > big_n:
            raise ValueError(f"{workload.name}: {n} buffers > max_buffers={big_n}")
        if n == 0:
            raise ValueError(f"{workload.name}: no buffers")
        perm = (
            workload.order(self.order if order is None else order)
            if (order is None or isinstance(order, str))
            else np.asarray(order, np.int64)
        )
        if sorted(perm.tolist()) != list(range(n)):
            raise ValueError(f"{workload.name}: order is not a permutation of 0..{n - 1}")
        need = required_slots(workload, perm)
        if need > self.max_live:
            raise ValueError(
                f"{workload.name}: this order keeps up to {need} placed buffers live, "
                f"> max_live={self.max_live}"
            )
        units = np.maximum(-(-workload.size // alignment), 1)  # a buffer takes >= 1 unit
        if units.max() >= BIG or capacity // alignment >= BIG or workload.horizon >= BIG:
            raise ValueError(
                f"{workload.name}: sizes/steps overflow int32 at alignment {alignment}"
            )
        total = workload.total_benefit
        benefit = workload.benefit / total if total > 0 else np.zeros(n)
        pad = big_n - n

        def padded(x, dtype):
            return jnp.asarray(np.concatenate([x, np.zeros(pad, x.dtype)]).astype(dtype))

        return EnvParams(
            size=padded(units, np.int32),
            start=padded(workload.start, np.int32),
            end=padded(workload.end, np.int32),
            benefit=padded(benefit, np.float32),
            order=jnp.asarray(np.concatenate([perm, np.arange(n, big_n)]).astype(np.int32)),
            sweep=jnp.asarray(sweep_for(workload.start, perm, big_n)),
            horizon=jnp.asarray(workload.horizon, jnp.float32),
            num_buffers=jnp.asarray(n, jnp.int32),
            capacity=jnp.asarray(capacity // alignment, jnp.int32),
            alignment=jnp.asarray(alignment, jnp.int32),
            max_steps_in_episode=big_n,
        )

    def check_params(self, params: EnvParams) -> None:
        """Refuse params that :meth:`params_for` could not have made (host side, not in jit).

        Called by :func:`accelrl.envs.checks.check_params` after its structure, shape and NaN
        checks; leaves may carry a leading batch axis (one workload per copy).

        Raises:
            ValueError: one line naming the field and the first offending index: sizes,
                starts, ends and the capacity must be integers >= 0 with ``start <= end``;
                benefits finite and >= 0; ``order`` a permutation of ``0..N-1``; ``horizon``
                > 0; ``num_buffers`` in ``1..max_buffers``; ``alignment`` >= 1.
        """
        c = ParamChecker(self.name, params)
        c.integer("size", "start", "end", "sweep", "capacity", minimum=0)
        c.require("end", lambda e: e >= c.value("start"), "must be >= start")
        c.nonnegative("benefit")
        c.positive("horizon")
        c.integer("alignment", minimum=1)
        c.require("num_buffers", lambda n: (n >= 1) & (n <= self.max_buffers), "out of range")
        c.integer("num_buffers")
        order = np.sort(c.value("order"), axis=-1)
        if not np.array_equal(order, np.broadcast_to(np.arange(order.shape[-1]), order.shape)):
            raise ValueError(f"{self.name} params: order is not a permutation of 0..N-1")

    def make_params(self, workloads: Sequence[Workload], **kwargs: Any) -> EnvParams:
        """Params for several workloads stacked on a leading batch axis ([B, N] leaves).

        ``kwargs`` go to :meth:`params_for`. Pass the result to a batched env with
        ``num_envs == len(workloads)`` so that copy ``b`` plays ``workloads[b]``.
        """
        ps = [self.params_for(w, **kwargs) for w in workloads]
        return jax.tree.map(lambda *x: jnp.stack(x), *ps)

    @classmethod
    def for_workloads(
        cls, workloads: Sequence[Workload], order: str = "start", **kwargs: Any
    ) -> tuple[MallocGame, EnvParams]:
        """A game sized to fit ``workloads`` and their stacked params.

        ``kwargs`` go to the constructor (``num_candidates``, ``alignment``,
        ``capacity_fraction``, ...). ``max_buffers``/``max_live`` default to the smallest that fit.
        """
        kwargs.setdefault("max_buffers", max(w.num_buffers for w in workloads))
        kwargs.setdefault("max_live", max(required_slots(w, w.order(order)) for w in workloads))
        env = cls(default_workload=workloads[0], order=order, **kwargs)
        return env, env.make_params(workloads)

    # ---- game --------------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[dict, EnvState]:
        n_pad, L, K = self.max_buffers, self.max_live, self.num_candidates
        zeros_l = jnp.zeros(L, jnp.int32)
        state = EnvState(
            time=jnp.asarray(0, jnp.int32),
            offset=jnp.full(n_pad, -1, jnp.int32),
            slot_off=zeros_l,
            slot_size=zeros_l,
            slot_start=zeros_l,
            slot_end=zeros_l,
            slot_used=jnp.zeros(L, bool),
            cand=jnp.zeros(K, jnp.int32),
            cand_gap=jnp.zeros(K, jnp.int32),
            num_cand=jnp.asarray(0, jnp.int32),
            can_place=jnp.asarray(False),
            placed_benefit=jnp.asarray(0.0, jnp.float32),
        )
        return self._offer(state, params)

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[dict, EnvState, jax.Array, jax.Array, dict]:
        K = self.num_candidates
        t = state.time
        i = params.order[jnp.minimum(t, self.max_buffers - 1)]
        action = jnp.asarray(action, jnp.int32)
        k = jnp.clip(action - 1, 0, K - 1)
        # APPLY THE ACTION (illegal -> spill)
        place = (action >= 1) & (action <= K) & (k < state.num_cand) & state.can_place
        off = state.cand[k]
        # INSERT into the table kept sorted by offset: the new entry goes to its sorted
        # position p, one unused entry d is dropped, the entries between shift by one
        L = self.max_live
        idx = jnp.arange(L)
        p = jnp.searchsorted(state.slot_off, off, side="left")
        d = jnp.argmax(~state.slot_used)
        right = d >= p  # shift [p, d) right, new entry at p; else shift (d, p) left, at p - 1
        at = jnp.where(right, p, p - 1)
        from_left = place & right & (idx > p) & (idx <= d)
        from_right = place & ~right & (idx >= d) & (idx < p - 1)

        def put(arr, value):
            shifted = jnp.where(
                from_left,
                jnp.concatenate([arr[:1], arr[:-1]]),
                jnp.where(from_right, jnp.concatenate([arr[1:], arr[-1:]]), arr),
            )
            return jnp.where(place & (idx == at), value, shifted)

        reward = jnp.where(place, params.benefit[i], 0.0).astype(jnp.float32)
        state = state.replace(
            time=t + 1,
            offset=state.offset.at[i].set(jnp.where(place, off, state.offset[i])),
            slot_off=put(state.slot_off, off),
            slot_size=put(state.slot_size, params.size[i]),
            slot_start=put(state.slot_start, params.start[i]),
            slot_end=put(state.slot_end, params.end[i]),
            slot_used=put(state.slot_used, True),
            placed_benefit=state.placed_benefit + reward,
        )
        # OFFER THE NEXT BUFFER
        obs, state = self._offer(state, params)
        terminated = state.time >= params.num_buffers
        return obs, state, reward, terminated, {"placed": place}

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.asarray(False)

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.time >= params.num_buffers

    def get_obs(self, state: EnvState, params: EnvParams, key: jax.Array | None = None) -> dict:
        return self._observe(state, params)

    def _offer(self, state: EnvState, params: EnvParams) -> tuple[dict, EnvState]:
        """Evict expired slots, compute the candidates of buffer ``order[time]``, observe."""
        K = self.num_candidates
        t = jnp.minimum(state.time, self.max_buffers)
        active = state.time < params.num_buffers
        i = params.order[jnp.minimum(t, self.max_buffers - 1)]
        # SWEEP: free slots whose buffer ends before every buffer still to come starts
        used = state.slot_used & (state.slot_end >= params.sweep[t])
        state = state.replace(slot_used=used)
        ov = self._overlapping(state, params, i)
        # CANDIDATES: 0 and the tops of time-overlapping placed buffers, where the buffer fits.
        # The table is sorted by offset: after entry j, the free run starts at the highest
        # overlapping top so far (``c[j + 1]``, a running max) and ends at the lowest overlapping offset
        # after j (``lows[j + 1]``); its start is a feasible canonical offset iff the buffer
        # fits in it. Position -1 is the run starting at 0. O(L), no search.
        size, cap = params.size[i], params.capacity
        tops = jnp.where(ov, state.slot_off + state.slot_size, 0)
        c = jnp.concatenate([jnp.zeros(1, jnp.int32), jax.lax.cummax(tops)])
        lows = jax.lax.cummin(jnp.where(ov, state.slot_off, BIG), reverse=True)
        run_end = jnp.minimum(jnp.concatenate([lows, jnp.full(1, BIG)]), cap)
        feasible = c + size <= run_end
        gap = run_end - c
        # the K lowest distinct feasible offsets: c is ascending along the table and equal
        # feasible values are contiguous (with equal runs), so keep the first of each and
        # find the k-th kept position by binary search on the running count
        first = feasible & ~(
            jnp.concatenate([jnp.zeros(1, bool), feasible[:-1]])
            & (c == jnp.concatenate([jnp.full(1, -1, jnp.int32), c[:-1]]))
        )
        count = jnp.cumsum(first)
        pos = jnp.searchsorted(count, jnp.arange(1, K + 1), side="left")
        pos = jnp.minimum(pos, self.max_live)
        num = jnp.minimum(count[-1], K).astype(jnp.int32)
        real = jnp.arange(K) < num
        cand = jnp.where(real, c[pos], 0).astype(jnp.int32)
        cand_gap = jnp.where(real, gap[pos], 0).astype(jnp.int32)
        state = state.replace(
            cand=cand,
            cand_gap=cand_gap,
            num_cand=jnp.where(active, num, 0),
            can_place=active & jnp.any(~used),
        )
        return self._observe(state, params), state

    def _overlapping(self, state: EnvState, params: EnvParams, i: jax.Array) -> jax.Array:
        """[L] bool: used slots whose buffer shares a schedule step with buffer ``i``."""
        return (
            state.slot_used
            & (state.slot_start <= params.end[i])
            & (state.slot_end >= params.start[i])
        )

    def _buffer_features(self, params: EnvParams, state: EnvState, step: jax.Array) -> jax.Array:
        """[6] features of the buffer offered at ``step`` (zeros past the end)."""
        exists = step < params.num_buffers
        i = params.order[jnp.minimum(step, self.max_buffers - 1)]
        cap = jnp.maximum(params.capacity, 1).astype(jnp.float32)
        h = params.horizon
        n = params.num_buffers.astype(jnp.float32)
        f = jnp.stack(
            [
                jnp.ones(()),
                params.size[i] / cap,
                params.start[i] / h,
                params.end[i] / h,
                (params.end[i] - params.start[i] + 1) / h,
                params.benefit[i] * n,
            ]
        )
        return jnp.where(exists, jnp.clip(f, 0.0, FEATURE_CLIP), 0.0).astype(jnp.float32)

    def _observe(self, state: EnvState, params: EnvParams) -> dict:
        K, B = self.num_candidates, self.num_bins
        t = jnp.minimum(state.time, self.max_buffers)
        i = params.order[jnp.minimum(t, self.max_buffers - 1)]
        active = state.time < params.num_buffers
        ov = self._overlapping(state, params, i) & active
        cap_i = jnp.maximum(params.capacity, 1)
        cap = cap_i.astype(jnp.float32)
        tops = state.slot_off + state.slot_size
        # buffers: current and lookahead
        buf = [self._buffer_features(params, state, t + d) for d in range(1 + self.lookahead)]
        # candidate offsets and the free run above each
        real_c = jnp.arange(K) < state.num_cand
        cand_f = jnp.where(real_c, state.cand / cap, 0.0)
        gap_f = jnp.where(real_c, state.cand_gap / cap, 0.0)
        # free-memory summary over the live range: occupied share of each address bin
        edges = jnp.arange(B + 1, dtype=jnp.float32) * (cap / B)
        lo = state.slot_off.astype(jnp.float32)[None, :]
        hi = tops.astype(jnp.float32)[None, :]
        inter = jnp.clip(jnp.minimum(hi, edges[1:, None]) - jnp.maximum(lo, edges[:-1, None]), 0.0)
        occ = jnp.where(ov[None, :], inter, 0.0).sum(axis=1) / (cap / B)
        glob = jnp.stack(
            [
                state.time / jnp.maximum(params.num_buffers, 1).astype(jnp.float32),
                jnp.where(ov, tops, 0).max() / cap,
                jnp.where(ov, state.slot_size, 0).sum() / cap,
                state.placed_benefit,
            ]
        )
        feats = jnp.concatenate(buf + [cand_f, gap_f, jnp.clip(occ, 0.0, 1.0), glob])
        feats = jnp.clip(feats, 0.0, FEATURE_CLIP).astype(jnp.float32)
        mask = jnp.concatenate(
            [jnp.ones(1, bool), (jnp.arange(K) < state.num_cand) & state.can_place]
        )
        out = {"observation": feats, "action_mask": mask}
        if self.set_size:
            out.update(self.set_observation(state, params))
        return out

    def set_observation(self, state: EnvState, params: EnvParams) -> dict:
        """The candidates and the nearby placed buffers as sets (``set_size = M > 0``).

        Returns:
            ``{"candidates": f32[K, 5], "buffers": f32[M, 8], "buffer_mask": bool[M]}``.
            Candidate ``k`` (a row per action ``k + 1``): is real (placeable), offset, free run
            above it, slack ``run - size`` and top ``offset + size``, each / capacity.
            ``buffers`` holds the M placed buffers that share a schedule step with the buffer
            on offer and lie nearest in address to a real candidate's range ``[c, c + size)``
            (all of them when there are at most M; with no candidate, nearest to offset 0):
            is real, offset, top and size / capacity, start and end relative to the offered
            buffer's / horizon, the shared steps / the offered buffer's duration, and the
            address distance to the nearest candidate range / capacity. Rows beyond the
            buffers present are 0 with ``buffer_mask`` False. Rows are in sweep-table
            (offset) order; a permutation-invariant policy does not depend on it.
        """
        K, M = self.num_candidates, self.set_size
        t = jnp.minimum(state.time, self.max_buffers)
        i = params.order[jnp.minimum(t, self.max_buffers - 1)]
        active = state.time < params.num_buffers
        cap = jnp.maximum(params.capacity, 1).astype(jnp.float32)
        size = params.size[i]
        real = (jnp.arange(K) < state.num_cand) & state.can_place
        cand = jnp.stack(
            [
                real.astype(jnp.float32),
                state.cand / cap,
                state.cand_gap / cap,
                (state.cand_gap - size) / cap,
                (state.cand + size) / cap,
            ],
            axis=-1,
        )
        cand = jnp.where(real[:, None], jnp.clip(cand, 0.0, FEATURE_CLIP), 0.0)
        # nearby placed buffers: address distance to the nearest real candidate range
        ov = self._overlapping(state, params, i) & active
        lo, hi = state.slot_off, state.slot_off + state.slot_size
        c_lo = jnp.where(real, state.cand, jnp.where(jnp.any(real), BIG, 0))
        c_hi = c_lo + jnp.where(real | ~jnp.any(real), size, 0)
        dist = jnp.maximum(lo[:, None] - c_hi[None, :], 0) + jnp.maximum(
            c_lo[None, :] - hi[:, None], 0
        )
        dist = dist.min(axis=1)  # [L]
        score = jnp.where(ov, -dist.astype(jnp.float32), -jnp.inf)
        _, pick = jax.lax.top_k(score, M)
        pick = jnp.sort(pick)  # keep the table's offset order
        keep = ov[pick]
        h = params.horizon
        s_j, e_j = state.slot_start[pick], state.slot_end[pick]
        s_i, e_i = params.start[i], params.end[i]
        shared = jnp.minimum(e_j, e_i) - jnp.maximum(s_j, s_i) + 1
        bufs = jnp.stack(
            [
                jnp.ones(M),
                lo[pick] / cap,
                hi[pick] / cap,
                state.slot_size[pick] / cap,
                (s_j - s_i) / h,
                (e_j - e_i) / h,
                shared / (e_i - s_i + 1).astype(jnp.float32),
                dist[pick] / cap,
            ],
            axis=-1,
        )
        bufs = jnp.where(keep[:, None], jnp.clip(bufs, -FEATURE_CLIP, FEATURE_CLIP), 0.0)
        return {
            "candidates": cand.astype(jnp.float32),
            "buffers": bufs.astype(jnp.float32),
            "buffer_mask": keep,
        }

    # ---- rendering ---------------------------------------------------------------------------
    def render(self, states: list, params: EnvParams) -> np.ndarray:
        """uint8 [H, W, 3] picture of the current placement (the last of ``states``)."""
        from accelrl.envs.malloc.plot import figure_to_rgb, plot_placement

        state = states[-1]
        workload = workload_from_params(params)
        offsets = offsets_in_bytes(state, params)
        t = int(state.time)
        current = int(np.asarray(params.order)[t]) if t < workload.num_buffers else None
        fig = plot_placement(
            workload,
            offsets,
            int(params.capacity) * int(params.alignment),
            current=current,
            title=f"step {t}/{workload.num_buffers}, return {float(state.placed_benefit):.3f}",
        )
        return figure_to_rgb(fig)


# ---- host helpers -----------------------------------------------------------------------------
def required_slots(workload: Workload, order: np.ndarray) -> int:
    """Sweep-table slots the game needs for ``workload`` offered in ``order``.

    The most placed buffers that can be in the table while a buffer is placed (all earlier
    buffers placed, worst case), plus that buffer. Equals at most the peak live count in start
    order.
    """
    order = np.asarray(order)
    s, e = workload.start[order], workload.end[order]
    sweep = np.minimum.accumulate(s[::-1])[::-1]
    n = len(order)
    need = 1
    for lo in range(0, n, 512):  # chunked O(N^2) count, memory-bounded
        t = np.arange(lo, min(lo + 512, n))
        keep = (e[None, :] >= sweep[t, None]) & (np.arange(n)[None, :] < t[:, None])
        need = max(need, int(keep.sum(axis=1).max()) + 1)
    return need


def sweep_for(start: np.ndarray, order: np.ndarray, max_buffers: int) -> np.ndarray:
    """[max_buffers + 1] int32: earliest start among the buffers offered at step >= t."""
    by_step = np.asarray(start)[np.asarray(order)]
    out = np.full(max_buffers + 1, BIG, np.int32)
    out[: len(by_step)] = np.minimum.accumulate(by_step[::-1])[::-1]
    return out


def workload_from_params(params: EnvParams) -> Workload:
    """The (unbatched) workload in ``params``, sizes in bytes (rounded up to the alignment)."""
    n = int(params.num_buffers)
    a = int(params.alignment)
    return Workload(
        size=np.asarray(params.size[:n], np.int64) * a,
        start=np.asarray(params.start[:n]),
        end=np.asarray(params.end[:n]),
        benefit=np.asarray(params.benefit[:n], np.float64),
        name="params",
    )


def offsets_in_bytes(state: EnvState, params: EnvParams) -> np.ndarray:
    """[num_buffers] int64 byte offsets of an unbatched state, -1 = slow memory."""
    n = int(params.num_buffers)
    off = np.asarray(state.offset[:n], np.int64)
    return np.where(off >= 0, off * int(params.alignment), -1)


Policy = Callable[[jax.Array, dict], jax.Array]


def lowest_offset_policy(key: jax.Array, obs: dict) -> jax.Array:
    """Place at the lowest feasible offset when there is one (first fit in the game's order)."""
    return jnp.where(obs["action_mask"][1], 1, 0)


def best_fit_policy(env: MallocGame) -> Policy:
    """Best fit in the game: the legal candidate with the smallest free run above it (the lowest
    such offset on ties), spill when none is legal.

    In ``"xla"`` order this is :func:`~accelrl.envs.malloc.solvers.xla_best_fit` played through
    the game (the same placement whenever the best gap is among the K lowest candidates).

    Returns:
        ``policy(key, obs) -> action`` (int32 ``[]``) for one copy's observation dict.
    """
    K = env.num_candidates
    gap_at = BUFFER_FEATURES * (1 + env.lookahead) + K  # the gap block of the flat features

    def policy(key: jax.Array, obs: dict) -> jax.Array:
        legal = obs["action_mask"][1:]
        gap = obs["observation"][..., gap_at : gap_at + K]
        best = jnp.argmin(jnp.where(legal, gap, jnp.inf), axis=-1) + 1
        return jnp.where(jnp.any(legal, axis=-1), best, 0).astype(jnp.int32)

    return policy


def random_policy(key: jax.Array, obs: dict) -> jax.Array:
    """Uniform over the legal actions."""
    mask = obs["action_mask"]
    return jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf))


def rollout(env: MallocGame, params: EnvParams, policy: Policy, key: jax.Array):
    """One full episode under ``policy`` (jittable; ``max_buffers`` steps, no-ops at the end).

    Returns:
        ``(final_state, return)``.
    """

    def body(carry, _):
        obs, state, ret, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        action = policy(k_act, obs)
        obs, state, r, _, _ = env.step_env(k_step, state, action, params)
        return (obs, state, ret + r, key), None

    key, k0 = jax.random.split(key)
    obs, state = env.reset_env(k0, params)
    (obs, state, ret, _), _ = jax.lax.scan(
        body, (obs, state, jnp.zeros((), jnp.float32), key), None, length=env.max_buffers
    )
    return state, ret


def play(env: MallocGame, params: EnvParams, policy: Policy, key: jax.Array) -> np.ndarray:
    """Roll ``policy`` through one episode and return its placement.

    Args:
        env: the game.
        params: unbatched params (one workload).
        policy: ``policy(key, obs) -> action`` (jittable; ``obs`` is the observation dict).
        key: PRNG key.

    Returns:
        [num_buffers] int64 byte offsets in buffer-id order, -1 = slow memory; check it with
        :func:`accelrl.envs.malloc.validate`.
    """
    state, _ = _rollout_jit(env, params, policy, key)
    return offsets_in_bytes(state, params)


_rollout_jit = jax.jit(rollout, static_argnums=(0, 2))
