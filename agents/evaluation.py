"""Evaluation: roll a policy through a fresh batched copy of the environment.

Training and evaluation draw their randomness from disjoint streams of the same seed
(:func:`training_key` and :func:`evaluation_key` fold different tags into ``PRNGKey(seed)``),
so evaluation episodes use starts and environment noise that training never saw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.vec import VecEnv, episode_done, select_copies

_TRAIN_TAG = 0x7A1
_EVAL_TAG = 0xE7A1


def training_key(seed: int) -> jax.Array:
    """The key training of ``seed`` starts from."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _TRAIN_TAG)


def evaluation_key(seed: int) -> jax.Array:
    """The key evaluation of ``seed`` uses; independent of everything training draws."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_TAG)


def max_episode_steps(env_params: Any, default: int = 10_000) -> int:
    """Episode step cap from ``env_params.max_steps_in_episode`` (gymnax; the largest for
    per-episode params), else ``default``."""
    value = getattr(env_params, "max_steps_in_episode", None)
    if value is None:
        return default
    try:
        return int(np.max(np.asarray(value)))
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return default  # traced params


def _with_memory(policy: Callable, carry: Any) -> tuple[Callable, Any]:
    """``(policy(obs, key, carry) -> (action, carry), initial carry)`` for a policy with memory
    (``carry`` given) or without (``policy(obs, key) -> action``, carry ``()``)."""
    if carry is not None:
        return policy, carry
    return (lambda obs, key, c: (policy(obs, key), c)), ()


def _float_rewards(reward: Any) -> Any:
    return jax.tree.map(lambda r: r.astype(jnp.float32), reward)


def _return_entries(returns: Any) -> dict[str, jax.Array]:
    """``{"return": f32[N]}``; for per-agent reward dicts the mean over agents of each agent's
    return, plus ``"return/<agent>"`` for each agent."""
    if not isinstance(returns, dict):
        return {"return": returns}
    out = {"return": jnp.mean(jnp.stack(list(returns.values())), axis=0)}
    out.update({f"return/{a}": r for a, r in returns.items()})
    return out


class _EvalCarry(NamedTuple):
    key: jax.Array
    obs: Any
    env_state: Any
    policy_carry: Any  # the policy's memory ([N, ...] leaves; () without memory)
    returns: Any  # f32[N] return of each copy's first episode so far (a dict per agent for MARL)
    lengths: jax.Array  # i32[N] its length so far
    last_info: Any  # info entries at each copy's last step so far
    active: jax.Array  # bool[N] first episode still running
    t: jax.Array  # i32[] steps taken


def _per_copy_info(info: dict[str, Any], n: int) -> dict[str, Any]:
    """The ``info`` entries that hold one value per copy (leading axis ``n``)."""
    skip = ("final_observation", "done")
    return {
        k: v
        for k, v in info.items()
        if k not in skip
        and all(jnp.ndim(x) >= 1 and jnp.shape(x)[0] == n for x in jax.tree.leaves(v))
    }


def evaluate_policy_episodes(
    env: Any,
    env_params: Any,
    policy: Callable[[Any, jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    max_steps: int,
    obs_fn: Callable[[Any], Any] = lambda obs: obs,
    carry: Any = None,
) -> dict[str, Any]:
    """Per-episode records of ``num_episodes`` episodes, one per copy of ``env``.

    Args:
        env: the single (unbatched) environment.
        env_params: its params: unbatched (every episode the same task) or with a leading
            ``[num_episodes]`` axis on some leaves (one task per episode, e.g. held-out tasks).
        policy: ``(obs[N], key) -> action[N]`` on normalised observations.
        key: evaluation key (see :func:`evaluation_key`).
        num_episodes: ``N``, the number of parallel copies (one episode each).
        max_steps: cap on the number of steps (the episodes' own truncation normally ends
            them first).
        obs_fn: observation transform (frozen normalisation statistics).
        carry: the initial memory of a recurrent policy (leaves ``[N, ...]``); then ``policy``
            is ``(obs[N], key, carry) -> (action[N], carry)``. None: a memoryless policy.

    Returns:
        ``{"return": f32[N], "length": i32[N], **info}``: the undiscounted return and length of
        each copy's first episode, and each per-copy ``info`` entry's value at that episode's
        last step (ThreeBody's ``total_substeps`` and ``energy_error``, for example). With
        per-agent rewards (multi-agent environments) ``"return"`` is the mean over agents of
        each agent's return and ``"return/<agent>"`` holds each agent's.
    """
    policy, carry = _with_memory(policy, carry)
    venv = VecEnv(env, num_episodes)
    key, k_reset = jax.random.split(key)
    obs, env_state = venv.reset(k_reset, env_params)
    # The info and reward structures, from an abstract step (nothing runs).
    probe = jax.eval_shape(
        lambda k, s, o, c: venv.step(k, s, policy(obs_fn(o), k, c)[0], env_params),
        key,
        env_state,
        obs,
        carry,
    )
    zeros = lambda tree: jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), tree)  # noqa: E731
    returns0 = zeros(probe[2])
    probe = probe[5]
    info0 = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), _per_copy_info(probe, num_episodes))

    def cond(c: _EvalCarry) -> jax.Array:
        return jnp.any(c.active) & (c.t < max_steps)

    def body(c: _EvalCarry) -> _EvalCarry:
        key, k_act, k_env = jax.random.split(c.key, 3)
        action, policy_carry = policy(obs_fn(c.obs), k_act, c.policy_carry)
        obs, env_state, reward, terminated, truncated, info = venv.step(
            k_env, c.env_state, action, env_params
        )
        returns = jax.tree.map(
            lambda total, r: total + jnp.where(c.active, r, 0.0), c.returns, _float_rewards(reward)
        )
        lengths = c.lengths + c.active.astype(jnp.int32)
        last_info = select_copies(c.active, _per_copy_info(info, num_episodes), c.last_info)
        active = c.active & ~episode_done(terminated, truncated)
        return _EvalCarry(
            key, obs, env_state, policy_carry, returns, lengths, last_info, active, c.t + 1
        )

    n = num_episodes
    init = _EvalCarry(
        key,
        obs,
        env_state,
        carry,
        returns0,
        jnp.zeros(n, jnp.int32),
        info0,
        jnp.ones(n, bool),
        jnp.int32(0),
    )
    out = jax.lax.while_loop(cond, body, init)
    return {**_return_entries(out.returns), "length": out.lengths, **out.last_info}


def evaluate_policy(
    env: Any,
    env_params: Any,
    policy: Callable[[Any, jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    max_steps: int,
    obs_fn: Callable[[Any], Any] = lambda obs: obs,
) -> jax.Array:
    """Undiscounted returns ``f32[N]`` of ``num_episodes`` episodes, one per copy of ``env``
    (see :func:`evaluate_policy_episodes` for the arguments)."""
    return evaluate_policy_episodes(env, env_params, policy, key, num_episodes, max_steps, obs_fn)[
        "return"
    ]


def uniform_policy(env: Any, env_params: Any = None) -> Callable[[Any, jax.Array], Any]:
    """The uniformly random policy of ``env`` (single- or multi-agent): ``(obs[N], key) ->
    action[N]`` (a dict per agent for multi-agent environments) drawn from the action spaces'
    ``sample``. The baseline that learning results are compared with."""
    from accelrl.envs.multi_agent import MultiAgentEnv

    if isinstance(env, MultiAgentEnv):
        spaces = {a: env.action_space(a, env_params) for a in env.agents}
    else:
        spaces = env.action_space(env_params)

    def policy(obs: Any, key: jax.Array) -> Any:
        n = jax.tree.leaves(obs)[0].shape[0]
        keys = jax.random.split(key, n)
        if isinstance(spaces, dict):
            return {
                a: jax.vmap(sp.sample)(jax.vmap(jax.random.fold_in, (0, None))(keys, i))
                for i, (a, sp) in enumerate(spaces.items())
            }
        return jax.vmap(spaces.sample)(keys)

    return policy


class Rollout(NamedTuple):
    """What a policy visited (leading axes ``[T, N]``): snapshot banks are built from it."""

    env_state: Any
    """The environment state each step acted in."""
    obs: Any
    """The raw (unnormalised) observation each step acted on."""
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    value: jax.Array
    """The agent's value estimate of ``obs`` (``f32``; zeros when no value function is given)."""


def rollout_policy(
    env: Any,
    env_params: Any,
    policy: Callable[[Any, jax.Array], jax.Array],
    key: jax.Array,
    num_envs: int,
    num_steps: int,
    obs_fn: Callable[[Any], Any] = lambda obs: obs,
    value_fn: Callable[[Any], jax.Array] | None = None,
    carry: Any = None,
) -> Rollout:
    """Roll ``policy`` for ``num_steps`` steps of ``num_envs`` fresh copies of ``env`` (episodes
    restart with ``reset_env`` as they end) and return every visited state.

    ``value_fn`` maps normalised observations ``[N, ...]`` to ``f32[N]``. ``carry``: the initial
    memory of a recurrent policy (see :func:`evaluate_policy_episodes`); it is reset to this
    value in copies whose episode ended.
    """
    policy, carry0 = _with_memory(policy, carry)
    venv = VecEnv(env, num_envs)
    key, k_reset = jax.random.split(key)
    obs, env_state = venv.reset(k_reset, env_params)

    def step(loop, _):
        key, obs, env_state, memory = loop
        key, k_act, k_env = jax.random.split(key, 3)
        normed = obs_fn(obs)
        action, memory = policy(normed, k_act, memory)
        value = value_fn(normed) if value_fn is not None else jnp.zeros(num_envs)
        next_obs, next_state, reward, terminated, truncated, _ = venv.step(
            k_env, env_state, action, env_params
        )
        out = Rollout(
            env_state,
            obs,
            action,
            _float_rewards(reward),
            terminated,
            truncated,
            value.astype(jnp.float32),
        )
        memory = select_copies(episode_done(terminated, truncated), carry0, memory)
        return (key, next_obs, next_state, memory), out

    _, traj = jax.lax.scan(step, (key, obs, env_state, carry0), None, num_steps)
    return traj


def evaluate_seeds(
    agent: Any, state: Any, seeds: list[int], num_episodes: int, deterministic: bool = True
) -> dict[str, Any]:
    """Evaluate a seed-batched train state; one row of ``num_episodes`` returns per seed.

    Each seed is evaluated with :func:`evaluation_key(seed)`, which training never uses.

    Returns:
        A JSON-ready summary: ``mean_return`` (over seeds of the per-seed means),
        ``std_return`` (across seeds), ``returns`` (per-seed mean return, aligned with
        ``seeds``), ``episode_returns`` (``[S][num_episodes]``), and the settings.
    """
    import numpy as np

    keys = jnp.stack([evaluation_key(s) for s in seeds])
    records = jax.vmap(lambda s, k: agent.evaluate_episodes(s, k, num_episodes, deterministic))(
        state, keys
    )
    returns = np.asarray(jax.device_get(records["return"]), np.float64)
    per_seed = returns.mean(axis=1)
    extra: dict[str, Any] = {}
    by_agent = {
        k.split("/", 1)[1]: float(np.asarray(v, np.float64).mean())
        for k, v in records.items()
        if k.startswith("return/")
    }
    if by_agent:  # multi-agent: "mean_return" is the mean over agents of each agent's return
        extra["agent_returns"] = by_agent
        teams = getattr(agent, "teams", None) or {"all": tuple(by_agent)}
        extra["team_returns"] = {
            t: float(np.mean([by_agent[a] for a in members])) for t, members in teams.items()
        }
        extra["mean_return_convention"] = "mean over agents of each agent's episode return"
    return {
        **extra,
        "mean_return": float(per_seed.mean()),
        "std_return": float(per_seed.std()),
        "returns": [float(x) for x in per_seed],
        "seeds": [int(s) for s in seeds],
        "episode_returns": returns.tolist(),
        "num_episodes": int(num_episodes),
        "deterministic": bool(deterministic),
        "update_step": int(np.asarray(state.update_step).reshape(-1)[0]),
        "env_steps": int(np.asarray(state.env_steps).reshape(-1)[0]),
        "evaluation_keys": "fold_in(PRNGKey(seed), 0xE7A1); training uses fold_in(PRNGKey(seed), 0x7A1)",
    }


__all__ = [
    "Rollout",
    "evaluate_policy",
    "evaluate_policy_episodes",
    "evaluate_seeds",
    "evaluation_key",
    "max_episode_steps",
    "rollout_policy",
    "training_key",
    "uniform_policy",
]
