"""CacheReplacement-v0: choose which line of a full cache set to evict (see
docs/envs/cache_replacement.md).

Rules (the pure-Python simulator in :mod:`accelrl.envs.cache.reference` implements them
independently):

* A set-associative cache of ``num_sets`` sets of ``ways`` lines of ``line_size`` bytes. An
  access to byte address ``a`` touches line ``a // line_size`` in set ``line % num_sets``;
  it hits when the set holds the line.
* An episode is a window of ``episode_length`` accesses of a trace, from an empty cache. A miss
  in a set with an empty way fills the lowest empty way (no decision). A miss in a full set is
  a *decision*: the episode stops there and the action (``0..ways-1``) names the way whose line
  is evicted for the new one.
* One step applies the action to the pending miss, then runs the trace forward
  (``lax.while_loop``) to the next decision or the end of the window; the reward is the number
  of hits on the way (1 per hit). The episode terminates at the end of the window. Hits before
  the first decision (the same for every policy) are counted in ``state.hits`` but are no
  reward.
* Per line the state keeps the last access time (recency), accesses since insertion
  (frequency), insertion time, the pc id of its last access, its true next-use time (for
  Belady's rule) and a *predicted* next-arrival time, drawn when the line was last accessed:
  ``t + d * exp(pred_noise * z)`` with ``d`` the true distance to the next access of the line
  (``2 * episode_length - t`` when there is none in the window) and ``z ~ N(0, 1)`` per access
  (paging with predictions; ``pred_noise = 0`` is exact).

Traces: the synthetic families are generated in reset from :class:`EnvParams`; each access
comes from a component drawn with probabilities ``mix``: Zipf(``zipf_alpha``) over
``num_objects`` lines (pc 0), a loop over ``loop_length`` lines (pc 1) or a scan of lines never
seen before (pc 2). Every ``phase_length`` accesses (0: never) the Zipf objects and the loop
move to fresh lines (a phase change). With ``source = 1`` the window is drawn uniformly from
the program trace in ``trace_addr``/``trace_pc`` (:meth:`CacheReplacement.params_for_trace`;
programs in :mod:`accelrl.envs.cache.traces`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from accelrl.envs.cache.traces import Trace

NUM_PCS = 4
"""pc ids of an access are ``0..NUM_PCS-1``."""
WAY_FEATURES = 5
"""Per-way observation features: recency, frequency, age, predicted next arrival, same pc."""
GLOBAL_FEATURES = NUM_PCS + 4
"""Access features: pc one-hot, set index, address (log tag), progress, predictions flag."""
NUM_COMPONENTS = 3
"""Synthetic components: Zipf, loop, scan."""
_REGION = 1 << 20
"""Lines per synthetic component region (Zipf at 0, loop at 2**20, scan at 2**21)."""


@struct.dataclass
class EnvParams:
    """Trace distribution and prediction error (arrays may carry a leading batch axis)."""

    zipf_alpha: jax.Array
    """float32 Zipf exponent (popularity of rank r proportional to r ** -alpha)."""
    num_objects: jax.Array
    """int32 Zipf universe size in lines, ``1..max_objects``."""
    mix: jax.Array
    """[3] float32 probabilities of the Zipf, loop and scan components (normalised in reset)."""
    loop_length: jax.Array
    """int32 lines of the loop component, >= 1."""
    phase_length: jax.Array
    """int32 accesses per phase (0: no phase change)."""
    pred_noise: jax.Array
    """float32 standard deviation of the log-normal error of the predicted next arrival."""
    predictions: jax.Array
    """bool whether the observation shows the predicted next arrivals (else zeros)."""
    source: jax.Array
    """int32 0 = synthetic trace, 1 = program trace in ``trace_addr``."""
    trace_addr: jax.Array
    """[max_trace_len] int32 byte addresses of the program trace (``source = 1``)."""
    trace_pc: jax.Array
    """[max_trace_len] int32 pc ids of the program trace."""
    trace_len: jax.Array
    """int32 real entries of ``trace_addr`` (>= ``episode_length`` when ``source = 1``)."""
    max_steps_in_episode: int = struct.field(pytree_node=False, default=1)
    """``episode_length`` (an upper bound on decisions per episode)."""


@struct.dataclass
class EnvState:
    """One copy's cache and the trace window it plays."""

    t: jax.Array
    """int32 index of the pending access (the miss awaiting a decision); T when done."""
    line: jax.Array
    """[T] int32 line id of every access of the window."""
    pc: jax.Array
    """[T] int32 pc id of every access."""
    next_use: jax.Array
    """[T] int32 index of the next access to the same line (2T if none in the window)."""
    pred_next: jax.Array
    """[T] float32 predicted next-arrival time of each access's line."""
    tag: jax.Array
    """[S, W] int32 line held by each way (-1 empty)."""
    last: jax.Array
    """[S, W] int32 time of the line's last access."""
    inserted: jax.Array
    """[S, W] int32 time the line was inserted."""
    freq: jax.Array
    """[S, W] int32 accesses since insertion (1 at insertion)."""
    line_pc: jax.Array
    """[S, W] int32 pc id of the line's last access."""
    line_next: jax.Array
    """[S, W] int32 true next-use time of the line (Belady)."""
    line_pred: jax.Array
    """[S, W] float32 predicted next-arrival time of the line."""
    hits: jax.Array
    """int32 hits so far in the window (including those before the first decision)."""
    time: jax.Array
    """int32 steps taken (evictions chosen) so far."""


class CacheReplacement(environment.Environment):
    """The cache-replacement game (see the module docstring for the rules).

    Args:
        num_sets: S, sets of the cache.
        ways: W, lines per set (the number of actions).
        line_size: bytes per line (program traces are byte addresses).
        episode_length: T, accesses per episode (the trace window).
        max_trace_len: L, padded length of a program trace in params (>= T).
        max_objects: largest Zipf universe ``num_objects`` may ask for.
    """

    deterministic_step: bool = True
    """``step_env`` ignores its key (the trace is drawn at reset), so search agents may use the
    game as its own model (:mod:`accelrl.agents.search`)."""

    def __init__(
        self,
        num_sets: int = 32,
        ways: int = 8,
        line_size: int = 64,
        episode_length: int = 4096,
        max_trace_len: int = 16384,
        max_objects: int = 8192,
    ):
        super().__init__()
        for name, value in (
            ("num_sets", num_sets),
            ("ways", ways),
            ("line_size", line_size),
            ("episode_length", episode_length),
            ("max_objects", max_objects),
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if ways < 2:
            raise ValueError(f"ways must be >= 2 (a choice of victim), got {ways}")
        if max_trace_len < episode_length:
            raise ValueError(f"max_trace_len={max_trace_len} < episode_length={episode_length}")
        if line_size > 2**10 or max_objects > _REGION:
            raise ValueError(f"line_size must be <= 1024 and max_objects <= {_REGION}")
        self.num_sets = int(num_sets)
        self.ways = int(ways)
        self.line_size = int(line_size)
        self.episode_length = int(episode_length)
        self.max_trace_len = int(max_trace_len)
        self.max_objects = int(max_objects)

    # ---- shapes ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "CacheReplacement-v0"

    @property
    def num_actions(self) -> int:
        return self.ways

    @property
    def num_features(self) -> int:
        return self.ways * WAY_FEATURES + GLOBAL_FEATURES

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.ways)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.num_features,), jnp.float32)

    # ---- params ------------------------------------------------------------------------------
    @property
    def default_params(self) -> EnvParams:
        return self.synthetic_params()

    def synthetic_params(
        self,
        zipf_alpha: float = 0.9,
        num_objects: int | None = None,
        mix: Sequence[float] = (0.7, 0.15, 0.15),
        loop_length: int = 384,
        phase_length: int = 0,
        pred_noise: float = 0.0,
        predictions: bool = True,
    ) -> EnvParams:
        """Params of the synthetic families (defaults: a Zipf/loop/scan mixture over
        ``min(2048, max_objects)`` objects, exact predictions shown). Raises ``ValueError``
        for values out of range."""
        if num_objects is None:
            num_objects = min(2048, self.max_objects)
        mix = np.asarray(mix, np.float32)
        if mix.shape != (NUM_COMPONENTS,) or mix.min() < 0 or mix.sum() <= 0:
            raise ValueError(f"mix must be 3 non-negative weights with a positive sum, got {mix}")
        if not 1 <= num_objects <= self.max_objects:
            raise ValueError(f"num_objects must lie in 1..{self.max_objects}, got {num_objects}")
        if not 1 <= loop_length <= _REGION // 4:
            raise ValueError(f"loop_length must lie in 1..{_REGION // 4}, got {loop_length}")
        if phase_length < 0 or zipf_alpha < 0 or pred_noise < 0:
            raise ValueError("phase_length, zipf_alpha and pred_noise must be >= 0")
        zeros = jnp.zeros(self.max_trace_len, jnp.int32)
        return EnvParams(
            zipf_alpha=jnp.float32(zipf_alpha),
            num_objects=jnp.int32(num_objects),
            mix=jnp.asarray(mix / mix.sum()),
            loop_length=jnp.int32(loop_length),
            phase_length=jnp.int32(phase_length),
            pred_noise=jnp.float32(pred_noise),
            predictions=jnp.bool_(predictions),
            source=jnp.int32(0),
            trace_addr=zeros,
            trace_pc=zeros,
            trace_len=jnp.int32(0),
            max_steps_in_episode=self.episode_length,
        )

    def params_for_trace(
        self, trace: Trace, pred_noise: float = 0.0, predictions: bool = True
    ) -> EnvParams:
        """Params that play windows of a program trace (its first ``max_trace_len`` accesses).

        Raises:
            ValueError: the trace is shorter than ``episode_length`` (see ``Trace.repeated``).
        """
        n = min(len(trace), self.max_trace_len)
        if n < self.episode_length:
            raise ValueError(
                f"{trace.name}: {len(trace)} accesses < episode_length={self.episode_length}"
            )
        addr = np.zeros(self.max_trace_len, np.int32)
        pc = np.zeros(self.max_trace_len, np.int32)
        addr[:n], pc[:n] = trace.addr[:n], trace.pc[:n]
        base = self.synthetic_params(pred_noise=pred_noise, predictions=predictions)
        return base.replace(
            source=jnp.int32(1),
            trace_addr=jnp.asarray(addr),
            trace_pc=jnp.asarray(pc),
            trace_len=jnp.int32(n),
        )

    def params_for_traces(
        self, traces: Sequence[Trace], pred_noise: float = 0.0, predictions: bool = True
    ) -> EnvParams:
        """:meth:`params_for_trace` of each trace stacked on a leading axis ``[len(traces)]``."""
        if not traces:
            raise ValueError("params_for_traces: no traces")
        each = [self.params_for_trace(t, pred_noise, predictions) for t in traces]
        return jax.tree.map(lambda *x: jnp.stack(x), *each)

    # ---- trace window ------------------------------------------------------------------------
    def _synthetic(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        T = self.episode_length
        k_comp, k_zipf = jax.random.split(key)
        comp = jax.random.categorical(k_comp, jnp.log(params.mix), shape=(T,))
        t = jnp.arange(T)
        phase = jnp.where(params.phase_length > 0, t // jnp.maximum(params.phase_length, 1), 0)
        rank = jnp.arange(1, self.max_objects + 1, dtype=jnp.float32)
        weight = jnp.where(rank <= params.num_objects, rank ** (-params.zipf_alpha), 0.0)
        cdf = jnp.cumsum(weight)
        u = jax.random.uniform(k_zipf, (T,)) * cdf[-1]
        obj = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), params.num_objects - 1)
        zipf = (obj + phase * params.num_objects) % _REGION
        loop_pos = jnp.cumsum(comp == 1) - 1
        loop = _REGION + (loop_pos % params.loop_length + phase * params.loop_length) % _REGION
        scan = 2 * _REGION + jnp.cumsum(comp == 2)
        line = jnp.select([comp == 0, comp == 1], [zipf, loop], scan)
        return line.astype(jnp.int32), comp.astype(jnp.int32)

    def _program(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        T = self.episode_length
        start = jax.random.randint(key, (), 0, jnp.maximum(params.trace_len - T, 0) + 1)
        addr = jax.lax.dynamic_slice(params.trace_addr, (start,), (T,))
        pc = jax.lax.dynamic_slice(params.trace_pc, (start,), (T,))
        return addr // self.line_size, pc

    def window(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        """One episode's accesses: ``([T] int32 line ids, [T] int32 pc ids)``."""
        k_syn, k_prog = jax.random.split(key)
        syn_line, syn_pc = self._synthetic(k_syn, params)
        prog_line, prog_pc = self._program(k_prog, params)
        program = params.source == 1
        return jnp.where(program, prog_line, syn_line), jnp.where(program, prog_pc, syn_pc)

    # ---- dynamics ----------------------------------------------------------------------------
    def _set_of(self, state: EnvState) -> tuple[jax.Array, jax.Array]:
        t = jnp.minimum(state.t, self.episode_length - 1)
        line = state.line[t]
        return line, line % self.num_sets

    def _needs_decision(self, state: EnvState) -> jax.Array:
        line, s = self._set_of(state)
        tags = state.tag[s]
        miss = ~jnp.any(tags == line)
        return (state.t < self.episode_length) & miss & jnp.all(tags >= 0)

    def _touch(
        self, state: EnvState, way: jax.Array, insert: jax.Array, enable: jax.Array = True
    ) -> EnvState:
        """Access ``state.t`` at ``way`` of its set (a hit, or an insertion when ``insert``);
        nothing changes where ``enable`` is false. Writes through a one-hot ``[S, W]`` mask (a
        batched scatter is slower than an elementwise select under ``vmap``)."""
        t = jnp.minimum(state.t, self.episode_length - 1)
        line, s = self._set_of(state)
        hit = (jnp.arange(self.num_sets)[:, None] == s) & (jnp.arange(self.ways) == way)
        hit = hit & enable

        def put(field, value):
            return jnp.where(hit, value, field)

        return state.replace(
            t=state.t + jnp.asarray(enable, jnp.int32),
            tag=put(state.tag, line),
            last=put(state.last, t),
            inserted=put(state.inserted, jnp.where(insert, t, state.inserted)),
            freq=put(state.freq, jnp.where(insert, 1, state.freq + 1)),
            line_pc=put(state.line_pc, state.pc[t]),
            line_next=put(state.line_next, state.next_use[t]),
            line_pred=put(state.line_pred, state.pred_next[t]),
        )

    def _advance(self, state: EnvState) -> tuple[EnvState, jax.Array]:
        """Run the trace to the next decision or the end; returns the state and the hits."""

        def cond(s: EnvState) -> jax.Array:
            return (s.t < self.episode_length) & ~self._needs_decision(s)

        def body(s: EnvState) -> EnvState:
            line, st = self._set_of(s)
            tags = s.tag[st]
            hit = jnp.any(tags == line)
            way = jnp.where(hit, jnp.argmax(tags == line), jnp.argmax(tags < 0))
            return self._touch(s, way, ~hit).replace(hits=s.hits + hit.astype(jnp.int32))

        before = state.hits
        state = jax.lax.while_loop(cond, body, state)
        return state, state.hits - before

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        T, S, W = self.episode_length, self.num_sets, self.ways
        k_win, k_noise = jax.random.split(key)
        line, pc = self.window(k_win, params)
        next_use = next_use_times(line)
        t = jnp.arange(T)
        dist = jnp.where(next_use < T, next_use, 2 * T) - t
        z = jax.random.normal(k_noise, (T,))
        pred_next = t + dist * jnp.exp(params.pred_noise * z)
        full = jnp.full((S, W), -1, jnp.int32)
        zeros = jnp.zeros((S, W), jnp.int32)
        state = EnvState(
            t=jnp.int32(0),
            line=line,
            pc=pc,
            next_use=next_use,
            pred_next=pred_next.astype(jnp.float32),
            tag=full,
            last=zeros,
            inserted=zeros,
            freq=zeros,
            line_pc=zeros,
            line_next=zeros,
            line_pred=jnp.zeros((S, W), jnp.float32),
            hits=jnp.int32(0),
            time=jnp.int32(0),
        )
        state, _ = self._advance(state)
        return self.get_obs(state, params), state

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        pending = state.t < self.episode_length
        way = jnp.clip(jnp.asarray(action, jnp.int32), 0, self.ways - 1)
        state = self._touch(state, way, jnp.bool_(True), pending)
        state = state.replace(time=state.time + pending.astype(jnp.int32))
        state, hits = self._advance(state)
        done = state.t >= self.episode_length
        info = {"hits": state.hits, "hit_rate": state.hits / self.episode_length}
        return (
            self.get_obs(state, params),
            state,
            hits.astype(jnp.float32),
            done,
            info,
        )

    def get_obs(self, state: EnvState, params: EnvParams, key: jax.Array | None = None):
        """``f32[W * 5 + 8]``: per way (recency, frequency, age, predicted next arrival, same
        pc), then the access (pc one-hot, set / S, log tag, progress, predictions flag); all in
        [0, 1], log-scaled by the window length."""
        T = self.episode_length
        t = jnp.minimum(state.t, T - 1)
        line, s = self._set_of(state)
        scale = jnp.log1p(jnp.float32(4 * T))

        def logf(x):
            return jnp.clip(jnp.log1p(jnp.maximum(x, 0).astype(jnp.float32)) / scale, 0.0, 1.0)

        pred = jnp.where(params.predictions, logf(state.line_pred[s] - t), 0.0)
        ways = jnp.stack(
            [
                logf(t - state.last[s]),
                logf(state.freq[s]),
                logf(t - state.inserted[s]),
                pred,
                (state.line_pc[s] == state.pc[t]).astype(jnp.float32),
            ],
            axis=-1,
        )
        access = jnp.concatenate(
            [
                jax.nn.one_hot(state.pc[t], NUM_PCS),
                jnp.stack(
                    [
                        s / self.num_sets,
                        jnp.clip(
                            jnp.log1p((line // self.num_sets).astype(jnp.float32)) / 32.0, 0, 1
                        ),
                        state.t / T,
                        params.predictions.astype(jnp.float32),
                    ]
                ),
            ]
        )
        return jnp.concatenate([ways.reshape(-1), access]).astype(jnp.float32)

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.t >= self.episode_length

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.t >= self.episode_length

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.asarray(False)


def next_use_times(line: jax.Array) -> jax.Array:
    """``[T] int32``: for each access, the index of the next access to the same line, ``2T``
    when there is none (a stable sort by line, then each entry's successor)."""
    T = line.shape[0]
    order = jnp.argsort(line, stable=True)
    sorted_line = line[order]
    same = sorted_line[1:] == sorted_line[:-1]
    succ = jnp.where(same, order[1:], 2 * T)
    nxt = jnp.concatenate([succ, jnp.array([2 * T], order.dtype)])
    return jnp.zeros(T, jnp.int32).at[order].set(nxt.astype(jnp.int32))


# ---- baseline policies ------------------------------------------------------------------------
Policy = Callable[[jax.Array, EnvState], jax.Array]
"""``policy(key, state) -> way``: a rule reading the pending miss's set from the state."""


def _set_view(env: CacheReplacement, state: EnvState) -> jax.Array:
    return env._set_of(state)[1]


def make_policy(env: CacheReplacement, name: str) -> Policy:
    """The baseline rule ``name`` as ``policy(key, state) -> way`` (jittable).

    ``"belady"`` evicts the line reused furthest in the future (ties: lowest way);
    ``"predicted"`` follows the predicted next arrivals instead; ``"lru"`` the least recently
    used; ``"lfu"`` the least frequently used (ties: least recent); ``"fifo"`` the oldest
    insertion; ``"random"`` a uniform way. S3-FIFO keeps queues beyond the env state and lives
    in :mod:`accelrl.envs.cache.reference`.
    """
    T = env.episode_length

    def pick(score_fn):
        def policy(key: jax.Array, state: EnvState) -> jax.Array:
            s = _set_view(env, state)
            return jnp.argmax(score_fn(state, s)).astype(jnp.int32)

        return policy

    rules = {
        "belady": lambda st, s: st.line_next[s],
        "predicted": lambda st, s: st.line_pred[s],
        "lru": lambda st, s: -st.last[s],
        "lfu": lambda st, s: -(st.freq[s] * (T + 1) + st.last[s]),
        "fifo": lambda st, s: -st.inserted[s],
    }
    if name == "random":
        return lambda key, state: jax.random.randint(key, (), 0, env.ways)
    if name not in rules:
        raise ValueError(f"unknown policy {name!r}; choose from {POLICY_NAMES}")
    return pick(rules[name])


POLICY_NAMES = ("belady", "predicted", "lru", "lfu", "fifo", "random")
"""Rules :func:`make_policy` builds inside the environment."""


def rollout(
    env: CacheReplacement, params: EnvParams, policy: Policy, key: jax.Array
) -> tuple[EnvState, jax.Array]:
    """One episode under a state policy (jittable; at most ``episode_length`` decisions).

    Returns:
        ``(final_state, hits)``: ``hits`` int32 counts every hit of the window.
    """

    def cond(carry):
        state, _ = carry
        return state.t < env.episode_length

    def body(carry):
        state, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        _, state, _, _, _ = env.step_env(k_step, state, policy(k_act, state), params)
        return state, key

    key, k0 = jax.random.split(key)
    _, state = env.reset_env(k0, params)
    state, _ = jax.lax.while_loop(cond, body, (state, key))
    return state, state.hits
