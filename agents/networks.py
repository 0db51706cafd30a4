"""Networks shared by the agents (flax linen).

* :class:`MLP`: a multilayer perceptron with orthogonal initialisation (the torso of every
  agent here; SAC builds its actor and twin critics from it).
* :class:`ActorCritic`: policy and value heads for PPO, over discrete, masked-discrete
  (observation dict ``{"observation", "action_mask"}``) or continuous actions, with a separate
  or a shared torso. It returns a distrax distribution and the value estimate.
* :class:`SetActorCritic`: PPO's policy and value over a set observation (candidate actions
  and placed buffers, e.g. ``MallocGame(set_size=M)``): the buffers are pooled by attention
  and each candidate action is scored by one shared head, so the policy is invariant to the
  order of the buffers and equivariant to that of the candidates.
* :class:`SACActor` and :class:`TwinQNetwork`: SAC's policy (Gaussian parameters or logits)
  and its two independent Q-networks evaluated together; :class:`QNetwork`, DQN's.
* :class:`TeamActor` and :class:`TeamCritic`: a multi-agent team's policy and value heads (IPPO,
  MAPPO) on a :class:`Torso`, an MLP with an optional GRU over time whose memory resets where
  an episode starts.
* :func:`fast_init`: ``module.init`` for these networks at a fraction of the compile time
  (one normal draw for all orthogonal kernels instead of one PRNG derivation per parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from accelrl.agents.distributions import diag_gaussian, masked_categorical

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """Look up an activation by name (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


@jax.jit
def householder_q(a: jax.Array) -> jax.Array:
    """The ``Q`` of ``a = QR`` with ``diag(R) >= 0``, by Householder reflections in plain XLA ops.

    Args:
        a: ``f32[..., m, n]`` with ``m >= n`` (leading axes are independent matrices).

    Returns:
        ``f32[..., m, n]`` with orthonormal columns, the factor ``jnp.linalg.qr`` returns with
        each column's sign set so that ``R``'s diagonal is non-negative.

    Why not ``jnp.linalg.qr``: jaxlib 0.10.0-0.11.0 split a batched LAPACK call over XLA's
    intra-op thread pool and block a pool thread until the pieces finish. Two such calls at once
    (the kernels of one network, vmapped over members) can hold every thread of the pool
    waiting for work queued behind them: seen here as a vmapped PPO init that never returns
    (16 or more members on 2 cores, sometimes 6). The loop below uses no custom call, so it
    cannot take part in that deadlock; it costs about twice LAPACK's FLOPs, once per run.
    """
    *lead, m, n = a.shape
    if m < n:
        raise ValueError(f"householder_q needs a tall matrix (m >= n), got shape {a.shape}")
    rows = jnp.arange(m)

    def one(x: jax.Array) -> jax.Array:
        def reflect(j, carry):
            r, vs, diag = carry
            col = jnp.where(rows >= j, jax.lax.dynamic_index_in_dim(r, j, 1, False), 0.0)
            alpha = -jnp.where(col[j] >= 0, 1.0, -1.0) * jnp.sqrt(col @ col)
            v = col.at[j].add(-alpha)  # H = I - 2 v v^T maps col to alpha e_j
            norm2 = v @ v
            v = jnp.where(norm2 > 0, v * jax.lax.rsqrt(jnp.maximum(norm2, 1e-30)), 0.0)
            r = r - 2.0 * jnp.outer(v, v @ r)
            return r, vs.at[j].set(v), diag.at[j].set(alpha)

        zeros = (jnp.zeros((n, m), x.dtype), jnp.zeros((n,), x.dtype))
        _, vs, diag = jax.lax.fori_loop(0, n, reflect, (x, *zeros))

        def apply(i, q):  # Q = H_0 H_1 ... H_{n-1} I[:, :n], applied right to left
            v = vs[n - 1 - i]
            return q - 2.0 * jnp.outer(v, v @ q)

        q = jax.lax.fori_loop(0, n, apply, jnp.eye(m, n, dtype=x.dtype))
        return q * jnp.where(diag < 0, -1.0, 1.0).astype(x.dtype)

    flat = a.reshape(-1, m, n)
    return jax.vmap(one)(flat).reshape(*lead, m, n)


def _orthogonal(z: jax.Array, shape: tuple[int, ...], scale: float) -> jax.Array:
    """Orthogonal matrices of ``shape`` ``(*lead, n_in, n_out)`` from standard normals ``z`` (as
    many as the shape has entries), the construction of ``jax.nn.initializers.orthogonal``:
    QR of the taller orientation, columns signed by ``diag(R)``, times ``scale`` (the QR by
    :func:`householder_q`, which avoids jaxlib's LAPACK deadlock)."""
    *lead, n_rows, n_cols = shape
    tall = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
    q = householder_q(z.reshape(*lead, *tall))
    if n_rows < n_cols:
        q = jnp.swapaxes(q, -1, -2)
    return scale * q


class Orthogonal:
    """Orthogonal kernel initialiser whose gain is visible to :func:`fast_init` (the law of
    ``nn.initializers.orthogonal``, drawn with :func:`householder_q`)."""

    def __init__(self, scale: float = 1.0):
        self.scale = float(scale)

    def __call__(self, key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError(f"an orthogonal initialiser needs at least 2 axes, got {shape}")
        matrix = (int(np.prod(shape[:-1])), shape[-1])  # flax's layout: one matrix
        z = jax.random.normal(key, matrix, jnp.float32)
        return _orthogonal(z, matrix, self.scale).reshape(shape).astype(dtype)

    def __repr__(self) -> str:
        return f"Orthogonal({self.scale})"


def split_observation(obs: Any) -> tuple[jax.Array, jax.Array | None]:
    """Features and action mask of an observation.

    Args:
        obs: ``f32[..., F]`` or a dict ``{"observation": f32[..., F], "action_mask": bool[..., K]}``.

    Returns:
        ``(features f32[..., F], mask bool[..., K] or None)``.
    """
    if isinstance(obs, dict):
        return jnp.asarray(obs["observation"], jnp.float32), obs["action_mask"]
    return jnp.asarray(obs, jnp.float32), None


class MLP(nn.Module):
    """Multilayer perceptron on the last axis: ``f32[..., F] -> f32[..., out_dim]``.

    Hidden layers use orthogonal initialisation with gain ``hidden_scale`` and zero biases
    (the PPO implementation details of Huang et al., 2022); the output layer uses ``out_scale``.
    """

    hidden_sizes: Sequence[int]
    """Width of each hidden layer, e.g. ``(64, 64)``."""
    activation: str = "tanh"
    """Name of the hidden activation (see :data:`ACTIVATIONS`)."""
    out_dim: int | None = None
    """Size of the output layer; None returns the last hidden layer's activations."""
    out_scale: float = 1.0
    """Orthogonal-initialisation gain of the output layer."""
    hidden_scale: float = float(np.sqrt(2.0))
    """Orthogonal-initialisation gain of the hidden layers."""
    layer_norm: bool = False
    """Apply LayerNorm after every hidden dense layer (before the activation)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for width in self.hidden_sizes:
            x = nn.Dense(width, kernel_init=Orthogonal(self.hidden_scale))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=Orthogonal(self.out_scale))(x)
        return x


class ActorCritic(nn.Module):
    """Policy and value function: ``obs -> (pi, value)``.

    The observation is ``f32[..., F]`` or, for masked-discrete actions, a dict with
    ``"observation"`` ``f32[..., F]`` and ``"action_mask"`` ``bool[..., K]``; invalid actions
    are never sampled. Continuous policies are a diagonal Gaussian with a state-independent
    learned log standard deviation (actions are clipped to the bounds by the agent, outside the
    log-probability, as in CleanRL/PureJaxRL).

    Returns:
        ``pi``: a distrax distribution with batch shape ``[...]`` (event ``[]`` for discrete,
        ``[D]`` for continuous); ``value``: ``f32[...]``.
    """

    action_dim: int
    """Number of discrete actions ``K``, or the continuous action dimension ``D``."""
    continuous: bool = False
    """Diagonal-Gaussian policy (True) or categorical (False)."""
    hidden_sizes: Sequence[int] = (64, 64)
    """Hidden layer widths of the actor and critic torsos."""
    activation: str = "tanh"
    """Hidden activation name."""
    shared_torso: bool = False
    """One torso feeding both heads (True) or separate actor and critic networks (False)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of continuous policies."""

    def constant_params(self) -> dict[str, float]:
        """Parameters this module creates with a constant initialiser (for :func:`fast_init`)."""
        return {"log_std": self.log_std_init} if self.continuous else {}

    @nn.compact
    def __call__(self, obs: Any) -> tuple[distrax.Distribution, jax.Array]:
        x, mask = split_observation(obs)
        if self.shared_torso:
            h = MLP(self.hidden_sizes, self.activation, name="torso")(x)
            out = nn.Dense(self.action_dim, kernel_init=Orthogonal(0.01), name="actor_head")(h)
            value = nn.Dense(1, kernel_init=Orthogonal(1.0), name="critic_head")(h)
        else:
            out = MLP(
                self.hidden_sizes, self.activation, self.action_dim, out_scale=0.01, name="actor"
            )(x)
            value = MLP(self.hidden_sizes, self.activation, 1, out_scale=1.0, name="critic")(x)
        if self.continuous:
            if mask is not None:
                raise ValueError("action masks are only supported with discrete actions")
            log_std = self.param(
                "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
            )
            pi = diag_gaussian(out, log_std)
        else:
            pi = masked_categorical(out, mask)
        return pi, value[..., 0]


SET_KEYS = ("observation", "action_mask", "candidates", "buffers", "buffer_mask")
"""Observation keys :class:`SetActorCritic` reads."""


def _masked_pool(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean and max of ``x f32[..., M, D]`` over the rows where ``mask bool[..., M]`` holds
    (zeros for an empty set): ``f32[..., 2 D]``."""
    m = mask[..., None].astype(x.dtype)
    n = m.sum(axis=-2)
    mean = (x * m).sum(axis=-2) / jnp.maximum(n, 1.0)
    mx = jnp.where(mask[..., None], x, -jnp.inf).max(axis=-2)
    mx = jnp.where(n > 0, mx, 0.0)
    return jnp.concatenate([mean, mx], axis=-1)


class SetActorCritic(nn.Module):
    """Masked-discrete policy and value over sets: ``obs -> (pi, value)``.

    The observation is a dict with (leading batch axes ``[...]`` anywhere):

    * ``"observation"`` ``f32[..., F]``: global features (the flat observation);
    * ``"action_mask"`` ``bool[..., 1 + K]``: action 0 is the "no candidate" action (spill),
      action ``k + 1`` chooses candidate ``k``;
    * ``"candidates"`` ``f32[..., K, C]``: one row of features per candidate action;
    * ``"buffers"`` ``f32[..., M, S]`` and ``"buffer_mask"`` ``bool[..., M]``: a set of context
      items (placed buffers), the rows where the mask is False are ignored.

    The buffers are embedded one by one and pooled into a summary by masked multi-head
    attention (queries from the global context, as in Set Transformer's pooling by attention)
    plus masked mean and max. Each candidate is embedded together with the context and the
    summary and scored by one shared head; action 0 is scored from the context and the pooled
    sets. The critic is a separate MLP on the global features and the pooled sets. Permuting
    the buffers leaves ``pi`` and ``value`` unchanged; permuting the candidates permutes the
    candidate actions' logits alike. (Attention from each candidate to each buffer was 10x
    slower to differentiate on CPUs, so the pooling is shared by the candidates.)

    Returns:
        ``pi``: a masked ``distrax.Categorical`` with batch shape ``[...]`` over ``1 + K``
        actions; ``value``: ``f32[...]``.
    """

    action_dim: int
    """``1 + K``: the spill action plus one per candidate."""
    hidden_sizes: Sequence[int] = (128, 128)
    """Widths of the context torso and of the critic."""
    activation: str = "relu"
    """Hidden activation name."""
    embed_dim: int = 64
    """Width ``D`` of the candidate and buffer embeddings."""
    num_heads: int = 4
    """Attention heads (must divide ``embed_dim``)."""

    def _dense(self, width: int, name: str, scale: float = float(np.sqrt(2.0))) -> nn.Dense:
        return nn.Dense(width, kernel_init=Orthogonal(scale), name=name)

    @nn.compact
    def __call__(self, obs: Any) -> tuple[distrax.Distribution, jax.Array]:
        if not isinstance(obs, dict) or any(k not in obs for k in SET_KEYS):
            got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
            raise ValueError(
                f"SetActorCritic needs an observation dict with keys {SET_KEYS}, got {got}"
            )
        d, heads = self.embed_dim, self.num_heads
        if d % heads:
            raise ValueError(f"num_heads={heads} must divide embed_dim={d}")
        act = activation_fn(self.activation)
        x = jnp.asarray(obs["observation"], jnp.float32)
        cands = jnp.asarray(obs["candidates"], jnp.float32)
        bufs = jnp.asarray(obs["buffers"], jnp.float32)
        bmask = jnp.asarray(obs["buffer_mask"], bool)
        amask = jnp.asarray(obs["action_mask"], bool)
        k = cands.shape[-2]
        if self.action_dim != k + 1 or amask.shape[-1] != k + 1:
            raise ValueError(
                f"action_dim={self.action_dim} and action_mask width {amask.shape[-1]} must be "
                f"1 + the number of candidates ({k})"
            )
        # EMBED: context and buffers
        ctx = MLP(self.hidden_sizes, self.activation, name="context")(x)
        b = act(self._dense(d, "buffer_in")(bufs))
        b = act(self._dense(d, "buffer_hidden")(b))  # [..., M, D]
        # POOL the buffers: attention with a context query (per head), mean and max
        dh = d // heads
        q = self._dense(d, "query", 1.0)(ctx).reshape(*ctx.shape[:-1], 1, heads, dh)
        kk = self._dense(d, "key", 1.0)(b).reshape(*b.shape[:-1], heads, dh)
        v = self._dense(d, "value", 1.0)(b).reshape(*b.shape[:-1], heads, dh)
        scores = (q * kk).sum(-1) / np.sqrt(dh)  # [..., M, heads]
        valid = bmask[..., None]
        w = jax.nn.softmax(jnp.where(valid, scores, -1e9), axis=-2) * valid  # empty set: 0
        att = (w[..., None] * v).sum(-3).reshape(*ctx.shape[:-1], d)
        summary = act(
            self._dense(d, "summary")(jnp.concatenate([att, _masked_pool(b, bmask)], axis=-1))
        )
        # SCORE: one shared head for every candidate (given context and summary), one for 0
        real = amask[..., 1:]
        to_c = self._dense(d, "context_to_candidate")(jnp.concatenate([ctx, summary], axis=-1))
        c = act(self._dense(d, "candidate_in")(cands) + to_c[..., None, :])
        c = act(self._dense(d, "candidate_hidden")(c))  # [..., K, D]
        cand_logit = nn.Dense(1, kernel_init=Orthogonal(0.01), name="candidate_head")(c)[..., 0]
        pooled = jnp.concatenate([summary, _masked_pool(c, real)], axis=-1)
        spill_h = act(self._dense(d, "spill_hidden")(jnp.concatenate([ctx, pooled], axis=-1)))
        spill_logit = nn.Dense(1, kernel_init=Orthogonal(0.01), name="spill_head")(spill_h)
        pi = masked_categorical(jnp.concatenate([spill_logit, cand_logit], axis=-1), amask)
        # VALUE: separate critic MLP on the global features and the pooled sets
        value = MLP(self.hidden_sizes, self.activation, 1, out_scale=1.0, name="critic")(
            jnp.concatenate([x, pooled], axis=-1)
        )
        return pi, value[..., 0]


class SACActor(nn.Module):
    """Policy network: ``f32[..., F] -> (mean, log_std) f32[..., D]`` or ``logits f32[..., K]``."""

    action_dim: int
    """Continuous action dimension ``D`` or number of discrete actions ``K``."""
    continuous: bool
    """Gaussian head (True) or logits (False)."""
    hidden_sizes: tuple[int, ...]
    """Hidden layer widths."""
    activation: str
    """Hidden activation name."""
    log_std_min: float = -5.0
    """Lower log-std bound (continuous)."""
    log_std_max: float = 2.0
    """Upper log-std bound (continuous)."""

    @nn.compact
    def __call__(self, x: jax.Array):
        if not self.continuous:
            return MLP(self.hidden_sizes, self.activation, self.action_dim, out_scale=0.01)(x)
        out = MLP(self.hidden_sizes, self.activation, 2 * self.action_dim, out_scale=0.01)(x)
        mean, raw = jnp.split(out, 2, axis=-1)
        # Smoothly bound log_std to [min, max] (keeps gradients, unlike a hard clip).
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (
            jnp.tanh(raw) + 1.0
        )
        return mean, log_std


class QNetwork(nn.Module):
    """One critic: ``Q(s, a) f32[...]`` (continuous, action concatenated) or ``Q(s, .) f32[..., K]``."""

    hidden_sizes: tuple[int, ...]
    """Hidden layer widths."""
    activation: str
    """Hidden activation name."""
    num_actions: int | None = None
    """``K`` for discrete critics (one output per action); None for continuous critics."""

    @nn.compact
    def __call__(self, x: jax.Array, action: jax.Array | None = None) -> jax.Array:
        if self.num_actions is not None:
            return MLP(self.hidden_sizes, self.activation, self.num_actions, out_scale=1.0)(x)
        q = MLP(self.hidden_sizes, self.activation, 1, out_scale=1.0)(
            jnp.concatenate([x, action], axis=-1)
        )
        return q[..., 0]


class TwinQNetwork(nn.Module):
    """Two independent :class:`QNetwork`\\ s evaluated together; outputs get a leading axis of 2."""

    hidden_sizes: tuple[int, ...]
    """Hidden layer widths of each critic."""
    activation: str
    """Hidden activation name."""
    num_actions: int | None = None
    """See :class:`QNetwork`."""

    @nn.compact
    def __call__(self, x: jax.Array, action: jax.Array | None = None) -> jax.Array:
        twin = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=2,
        )
        return twin(self.hidden_sizes, self.activation, self.num_actions, name="q")(x, action)


class _ResetGRUStep(nn.Module):
    """One GRU step whose memory is zeroed where ``reset`` (an episode starts)."""

    size: int

    @nn.compact
    def __call__(self, memory: jax.Array, inputs: tuple[jax.Array, jax.Array]):
        x, reset = inputs
        memory = jnp.where(reset[:, None], 0.0, memory)
        return nn.GRUCell(self.size, recurrent_kernel_init=Orthogonal(1.0))(memory, x)


class Torso(nn.Module):
    """``x -> features``: an MLP, or dense embedding, GRU over time, then the rest of the MLP.

    Feed-forward: ``x f32[..., F] -> f32[..., H]`` (memory passes through). Recurrent:
    ``x f32[T, N, F]``, ``resets bool[T, N]``, ``memory f32[N, G] -> (f32[T, N, H], memory)``.
    """

    hidden_sizes: tuple[int, ...]
    activation: str
    recurrent: bool = False
    gru_size: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, resets: jax.Array | None = None, memory: Any = None):
        if not self.recurrent:
            return MLP(self.hidden_sizes, self.activation)(x), memory
        act = activation_fn(self.activation)
        h = act(nn.Dense(self.hidden_sizes[0], kernel_init=Orthogonal(np.sqrt(2.0)))(x))
        scan = nn.scan(
            _ResetGRUStep,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=0,
            out_axes=0,
        )
        memory, h = scan(self.gru_size, name="gru")(memory, (h, resets))
        return MLP(self.hidden_sizes[1:], self.activation)(h), memory


class TeamActor(nn.Module):
    """A team's policy head: logits ``f32[..., K]`` or Gaussian means ``f32[..., D]`` (with a
    state-independent ``log_std f32[D]``), on a :class:`Torso`."""

    action_dim: int
    continuous: bool
    hidden_sizes: tuple[int, ...]
    activation: str
    recurrent: bool = False
    gru_size: int = 128
    log_std_init: float = 0.0

    def constant_params(self) -> dict[str, float]:
        return {"log_std": self.log_std_init} if self.continuous else {}

    @nn.compact
    def __call__(self, x: jax.Array, resets: jax.Array | None = None, memory: Any = None):
        torso = Torso(self.hidden_sizes, self.activation, self.recurrent, self.gru_size)
        h, memory = torso(x, resets, memory)
        out = nn.Dense(self.action_dim, kernel_init=Orthogonal(0.01))(h)
        log_std = None
        if self.continuous:
            log_std = self.param(
                "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
            )
        return (out, log_std), memory


class TeamCritic(nn.Module):
    """A team's value head ``f32[...]`` on a :class:`Torso`."""

    hidden_sizes: tuple[int, ...]
    activation: str
    recurrent: bool = False
    gru_size: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, resets: jax.Array | None = None, memory: Any = None):
        torso = Torso(self.hidden_sizes, self.activation, self.recurrent, self.gru_size)
        h, memory = torso(x, resets, memory)
        return nn.Dense(1, kernel_init=Orthogonal(1.0))(h)[..., 0], memory


def _init_plan(module: nn.Module, *args: Any, **kwargs: Any) -> tuple[Any, dict[tuple, Any]]:
    """Abstract ``module.init`` output and, per parameter path, how to fill it without flax's
    per-parameter PRNG: ``("orthogonal", scale)`` or ``("constant", value)``."""
    plan: dict[tuple, Any] = {}

    def record(next_fun, call_args, call_kwargs, context):
        m = context.module
        if context.method_name == "__call__":
            path = ("params", *m.scope.path)
            if isinstance(m, nn.Dense):
                if isinstance(m.kernel_init, Orthogonal):
                    plan[(*path, "kernel")] = ("orthogonal", m.kernel_init.scale)
                if m.use_bias and m.bias_init is nn.Dense.bias_init:  # flax's default: zeros
                    plan[(*path, "bias")] = ("constant", 0.0)
            elif isinstance(m, nn.LayerNorm):
                if m.scale_init is nn.LayerNorm.scale_init:
                    plan[(*path, "scale")] = ("constant", 1.0)
                if m.bias_init is nn.LayerNorm.bias_init:
                    plan[(*path, "bias")] = ("constant", 0.0)
            if hasattr(m, "constant_params"):
                for name, value in m.constant_params().items():
                    plan[(*path, name)] = ("constant", float(value))
        return next_fun(*call_args, **call_kwargs)

    with nn.intercept_methods(record):
        abstract = jax.eval_shape(module.init, jax.random.PRNGKey(0), *args, **kwargs)
    return abstract, plan


def fast_init(module: nn.Module, key: jax.Array, *args: Any, **kwargs: Any) -> Any:
    """``module.init(key, *args, **kwargs)`` with the same distributions, compiled quickly.

    Flax derives one PRNG key per parameter and draws each kernel separately; under ``jit`` on a
    CPU each of those threefry computations is its own kernel to compile (about 1.5 s for a PPO
    actor-critic). Here every :class:`Orthogonal` kernel comes from one normal draw of ``key``
    (QR per kernel, as ``jax.nn.initializers.orthogonal`` does it) and biases, LayerNorm
    parameters and :meth:`ActorCritic.constant_params` are filled directly. Modules with any
    other parameter fall back to ``module.init`` (same result, slower to compile). The values
    differ from ``module.init``'s for the same key; the distributions are the same.

    Returns:
        The variables dict ``{"params": ...}`` of ``module.init``.
    """
    abstract, plan = _init_plan(module, *args, **kwargs)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    paths = [tuple(k.key for k in path) for path, _ in leaves]
    if any(p not in plan for p in paths):
        return module.init(key, *args, **kwargs)
    sizes = [
        int(np.prod(leaf.shape)) if plan[p][0] == "orthogonal" else 0
        for p, (_, leaf) in zip(paths, leaves, strict=True)
    ]
    z = jax.random.normal(key, (max(sum(sizes), 1),), jnp.float32)
    offsets = np.cumsum([0, *sizes])
    out = []
    for i, (p, (_, leaf)) in enumerate(zip(paths, leaves, strict=True)):
        kind, value = plan[p]
        if kind == "orthogonal":
            chunk = z[offsets[i] : offsets[i + 1]]
            out.append(_orthogonal(chunk, tuple(leaf.shape), value).astype(leaf.dtype))
        else:
            out.append(jnp.full(leaf.shape, value, leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ActorCritic",
    "Orthogonal",
    "QNetwork",
    "SACActor",
    "SET_KEYS",
    "SetActorCritic",
    "TeamActor",
    "TeamCritic",
    "Torso",
    "TwinQNetwork",
    "activation_fn",
    "fast_init",
    "split_observation",
]
