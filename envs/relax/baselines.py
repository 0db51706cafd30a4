"""Baselines for Relax-v0: cost tables, best fixed omega in hindsight, instance-optimal omega,
and the paper's online learners (Tsallis-INF, Tsallis-INF-CB), as pure JAX functions.

On the shift family the instances do not depend on the actions, so one table of iterations
``costs [T, K]`` (every instance of a sequence solved with every grid omega) gives the exact
cost of any policy over the grid: the best fixed omega is the column with the smallest sum,
and an online learner only looks up the entry it picks. Learners follow the authors'
``learners/TsallisINF.m`` and ``TsallisINFCB.m`` (facts; new code): Tsallis-INF with
``eta = 2 / sqrt(t)``, losses = iterations, importance-weighted cumulative ``(loss - 1)``
scaled by the mean past loss minus 1; Tsallis-INF-CB runs one Tsallis-INF per bin of the
context, the bins' centres evenly spread over ``[low, high]``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from accelrl.envs.relax.env import EnvParams, EnvState, Relax


def instance_sequence(
    env: Relax, params: EnvParams, key: jax.Array, num_instances: int
) -> EnvState:
    """The first ``num_instances`` pending states of the episode that ``key`` resets (shift
    family: they do not depend on the actions). Leaves stacked along a leading axis [T, ...]."""
    if env.family != "shift":
        raise ValueError(
            "instance_sequence needs the shift family (heat instances follow the solves)"
        )
    _, state = env.reset_env(key, params)

    def body(state, _):
        with jax.enable_x64(True):
            t = state.time + 1
            inst = env._instance(state.sequence_seed, t, state.u, state.sim_time, params)
            nxt = state.replace(time=t, **inst)
        return nxt, state

    return lax.scan(body, state, None, length=num_instances)[1]


def solve_iterations(env: Relax, state: EnvState, omega: jax.Array, params: EnvParams):
    """Iterations (int32) of one pending instance solved with ``omega`` (vmap it)."""
    with jax.enable_x64(True):
        return env.solve(state, omega, params)[0]


def cost_table(
    env: Relax, params: EnvParams, states: EnvState, omegas: jax.Array, batch: int = 1024
) -> np.ndarray:
    """Iterations of every instance with every omega: ``states`` [T, ...], ``omegas`` [K] ->
    int32 ``[T, K]`` (host array).

    A vmapped ``while_loop`` runs until its slowest copy is done, so the (instance, omega) pairs
    are solved in batches of similar cost: sorted by omega, then by the context.
    """
    t, k = int(states.time.shape[0]), int(omegas.shape[0])
    pairs_i = np.repeat(np.arange(t), k)
    pairs_j = np.tile(np.arange(k), t)
    order = np.lexsort((np.asarray(states.context)[pairs_i], pairs_j))
    solve = _batched_solve(env)
    out = np.zeros(t * k, np.int32)
    omegas = jnp.asarray(omegas, jnp.float32)
    for start in range(0, t * k, batch):
        sel = order[start : start + batch]
        pad = np.resize(sel, batch)  # fixed batch shape: one compilation
        sub = jax.tree.map(lambda x, p=pad: x[pairs_i[p]], states)
        out[sel] = np.asarray(solve(sub, omegas[pairs_j[pad]], params))[: len(sel)]
    return out.reshape(t, k)


@functools.cache
def _batched_solve(env: Relax):
    """``(states [B, ...], omegas [B], params) -> iterations [B]``, jitted once per env."""
    return jax.jit(jax.vmap(lambda s, w, p: solve_iterations(env, s, w, p), in_axes=(0, 0, None)))


def best_fixed(costs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Best fixed action in hindsight: ``costs [T, K]`` -> ``(index, total iterations)``."""
    totals = jnp.sum(costs, axis=0)
    return jnp.argmin(totals), jnp.min(totals)


GOLDEN = (5**0.5 - 1) / 2


def instance_optimal(
    env: Relax,
    params: EnvParams,
    state: EnvState,
    grid_costs: jax.Array,
    omegas: jax.Array,
    evaluations: int = 8,
) -> tuple[jax.Array, jax.Array]:
    """Instance-optimal omega by golden-section search started from a grid (after the authors'
    ``utils/golden_section.m``): the bracket is the grid argmin's two neighbours, then
    ``evaluations`` golden-section queries (ties alternate sides, as theirs).

    Args:
        state: one pending instance (unbatched).
        grid_costs: its iterations at ``omegas`` [K] (ascending omegas).

    Returns:
        ``(iterations, omega)``: the fewest iterations among the grid and the queries, and the
        omega that gave them (float32).
    """
    k = omegas.shape[0]
    i_lo = jnp.argmin(grid_costs)
    i_hi = k - 1 - jnp.argmin(grid_costs[::-1])
    left = omegas[jnp.maximum(i_lo - 1, 0)]
    right = omegas[jnp.minimum(i_hi + 1, k - 1)]

    def cost(w):
        return solve_iterations(env, state, w, params)

    o1 = left + (1 - GOLDEN) * (right - left)
    o2 = left + GOLDEN * (right - left)
    f1, f2 = cost(o1), cost(o2)
    best = jnp.stack([grid_costs[i_lo], f1, f2])
    where = jnp.stack([omegas[i_lo], o1, o2])
    j = jnp.argmin(best)
    start = (left, right, o1, o2, f1, f2, best[j], where[j])

    def body(i, carry):
        left, right, o1, o2, f1, f2, fb, ob = carry
        go_right = (f1 > f2) | ((f1 == f2) & (i % 2 == 1))
        new_left = jnp.where(go_right, o1, left)
        new_right = jnp.where(go_right, right, o2)
        probe = jnp.where(
            go_right,
            new_left + GOLDEN * (new_right - new_left),
            new_left + (1 - GOLDEN) * (new_right - new_left),
        )
        fp = cost(probe)
        n1 = jnp.where(go_right, o2, probe)
        n2 = jnp.where(go_right, probe, o1)
        g1 = jnp.where(go_right, f2, fp)
        g2 = jnp.where(go_right, fp, f1)
        better = fp < fb
        return (
            new_left,
            new_right,
            n1,
            n2,
            g1,
            g2,
            jnp.where(better, fp, fb),
            jnp.where(better, probe, ob),
        )

    out = lax.fori_loop(0, max(evaluations - 2, 0), body, start)
    return out[6], out[7].astype(jnp.float32)


class TsallisState(NamedTuple):
    """One Tsallis-INF learner over K actions."""

    weighted: jax.Array
    """Importance-weighted cumulative ``loss - 1`` per action, float32 [K]."""
    loss_sum: jax.Array
    """Sum of the losses seen (float32)."""
    t: jax.Array
    """Rounds played (int32)."""


def tsallis_init(num_actions: int) -> TsallisState:
    """A fresh learner (uniform play)."""
    return TsallisState(
        jnp.zeros(num_actions, jnp.float32), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
    )


def tsallis_probs(state: TsallisState, newton_steps: int = 20) -> jax.Array:
    """Play probabilities [K]: ``p_i = 4 (eta (L_i / scale - x))^-2`` with x normalising them by
    Newton's method started at ``min L - 2 / eta``, ``eta = 2 / sqrt(t + 1)``; uniform if the
    iteration breaks down."""
    t = state.t.astype(jnp.float32) + 1.0
    eta = 2.0 / jnp.sqrt(t)
    scale = jnp.where(state.t > 0, state.loss_sum / jnp.maximum(t - 1.0, 1.0) - 1.0, 1.0)
    scale = jnp.where(scale > 0, scale, 1.0)
    losses = state.weighted / scale

    def newton(_, x):
        p = 4.0 * (eta * (losses - x)) ** -2.0
        return x - (jnp.sum(p) - 1.0) / (eta * jnp.sum(p**1.5))

    # from the right of the root (the best arm alone has probability 1 there), where Newton on
    # this convex increasing function converges monotonically (the authors' start at x = -1
    # lies left of the root once losses grow, where Newton overshoots past min L)
    x = lax.fori_loop(0, newton_steps, newton, jnp.min(losses) - 2.0 / eta)
    p = 4.0 * (eta * (losses - x)) ** -2.0
    ok = jnp.all(jnp.isfinite(p)) & jnp.all(p >= 0) & (jnp.sum(p) > 0)
    k = state.weighted.shape[0]
    return jnp.where(ok, p / jnp.where(ok, jnp.sum(p), 1.0), 1.0 / k)


def tsallis_update(state: TsallisState, action: jax.Array, prob: jax.Array, loss: jax.Array):
    """Record ``loss`` (iterations) of ``action`` played with probability ``prob``."""
    loss = loss.astype(jnp.float32)
    return TsallisState(
        state.weighted.at[action].add((loss - 1.0) / prob),
        state.loss_sum + loss,
        state.t + 1,
    )


def run_tsallis(key: jax.Array, costs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Tsallis-INF over a cost table ``[T, K]``: ``(actions [T] int32, iterations [T] int32)``."""

    def body(state, inp):
        k, row = inp
        p = tsallis_probs(state)
        a = jax.random.choice(k, p.shape[0], p=p)
        loss = row[a]
        return tsallis_update(state, a, p[a], loss), (a, loss)

    keys = jax.random.split(key, costs.shape[0])
    return lax.scan(body, tsallis_init(costs.shape[1]), (keys, costs))[1]


def context_bins(low: float, high: float, num_bins: int) -> jax.Array:
    """Bin centres ``low + (high - low) * linspace(0.5 / m, 1 - 0.5 / m, m)`` [m]."""
    return low + (high - low) * jnp.linspace(0.5 / num_bins, 1 - 0.5 / num_bins, num_bins)


def run_tsallis_cb(
    key: jax.Array,
    costs: jax.Array,
    contexts: jax.Array,
    low: float = -0.15,
    high: float = 0.65,
    num_bins: int = 5,
) -> tuple[jax.Array, jax.Array]:
    """Tsallis-INF-CB: one Tsallis-INF per context bin (nearest centre), the authors' 5 bins over
    ``[-0.15, 0.65]`` by default. ``costs [T, K]``, ``contexts [T]`` ->
    ``(actions [T], iterations [T])``."""
    centres = context_bins(low, high, num_bins)
    init = jax.vmap(lambda _: tsallis_init(costs.shape[1]))(jnp.arange(num_bins))

    def body(states, inp):
        k, row, c = inp
        i = jnp.argmin(jnp.abs(centres - c))
        s = jax.tree.map(lambda x: x[i], states)
        p = tsallis_probs(s)
        a = jax.random.choice(k, p.shape[0], p=p)
        loss = row[a]
        s = tsallis_update(s, a, p[a], loss)
        states = jax.tree.map(lambda xs, x: xs.at[i].set(x), states, s)
        return states, (a, loss)

    keys = jax.random.split(key, costs.shape[0])
    return lax.scan(body, init, (keys, costs, contexts))[1]
