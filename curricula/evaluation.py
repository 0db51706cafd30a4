"""Evaluation as in the literature: the share of a fixed test set of tasks a student masters.

teachDeepRL tests on 50 uniformly drawn tasks, TeachMyAgent on a fixed 100-task grid; a task is
*mastered* when the episode's return exceeds a threshold (230 on Stump Tracks). Here the test set
is 100 tasks drawn uniformly from the task space with a fixed seed (:func:`test_tasks`), the
threshold is the task space's ``mastery_threshold``, and :func:`mastered_hook` measures the
fraction periodically during a :class:`~accelrl.agents.Runner` run (a ``mastered`` column in the
run's metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.curricula.tasks import TaskSpace, apply_tasks, test_tasks


def _episode_params(
    space: TaskSpace, base: Any, reference: Any, tasks: Any, episodes_per_task: int
) -> tuple[Any, int, int]:
    """``(params, n, e)``: per-episode params ``[n * e]`` running each of the ``n`` tasks
    ``e = episodes_per_task`` times, task-major."""
    tasks = jnp.asarray(tasks, jnp.float32)
    e = int(episodes_per_task)
    if e < 1:
        raise ValueError(f"episodes_per_task must be positive, got {episodes_per_task}")
    params = apply_tasks(space, base, jnp.repeat(tasks, e, axis=0), reference=reference)
    return params, tasks.shape[0], e


def _mastered(space: TaskSpace, returns: jax.Array, n: int, e: int) -> jax.Array:
    """``bool[n]``: a task is mastered when the mean return of its ``e`` episodes (``returns``
    ``f32[n * e]``, task-major) exceeds the space's threshold."""
    return returns.reshape(n, e).mean(axis=1) > space.mastery_threshold


def mastered_fraction(
    agent: Any,
    state: Any,
    space: TaskSpace,
    test_tasks: jax.Array,
    key: jax.Array,
    episodes_per_task: int = 1,
) -> jax.Array:
    """Fraction of ``test_tasks`` the agent masters (deterministic policy).

    Each task runs ``episodes_per_task`` fresh episodes (one batched
    ``agent.evaluate(..., env_params=...)`` call with one task per episode); a task is mastered
    when the mean return of its episodes exceeds ``space.mastery_threshold``.

    Args:
        agent: an accelrl agent (its environment is the task space's).
        state: its train state, one seed or batched over members (leading axis ``M``).
        space: the task space.
        test_tasks: ``f32[n, d]`` tasks (e.g. :func:`accelrl.curricula.test_tasks`).
        key: evaluation key (split over members when ``state`` is batched).
        episodes_per_task: episodes per task.

    Returns:
        ``f32[]`` (one seed) or ``f32[M]``, in [0, 1].
    """
    params, n, e = _episode_params(
        space, agent.eval_params, agent.env.default_params, test_tasks, episodes_per_task
    )

    def one(s, k):
        returns = agent.evaluate(s, k, n * e, True, params)
        return jnp.mean(_mastered(space, returns, n, e).astype(jnp.float32))

    if jnp.ndim(state.update_step) == 0:
        return one(state, key)
    members = state.update_step.shape[0]
    return jax.vmap(one)(state, jax.random.split(key, members))


def fixed_action_mastery(
    space: TaskSpace,
    key: jax.Array,
    tasks: jax.Array | None = None,
    *,
    n: int = 100,
    seed: int = 0,
    episodes_per_task: int = 1,
) -> jax.Array:
    """Which test tasks each fixed action masters: the reach of the simplest policies.

    For a task space over an environment with discrete actions, every action ``a`` is played
    at every step of fresh episodes of every test task, evaluated as :func:`mastered_fraction`
    evaluates a student (the space's default params with the task applied, one episode per
    copy, the task mastered when the mean return exceeds ``space.mastery_threshold``). Where
    one fixed action masters as much of the test set as trained students do, or more, the
    measure records how fast a student finds that action, which every task teaches alike, and
    teachers have no region to find (``three_body_ic``: docs/curricula.md).

    Args:
        space: a task space whose environment has a ``Discrete`` action space.
        key: evaluation key (the same key for every action: they see the same starts).
        tasks: ``f32[n, d]`` (default ``test_tasks(space, seed, n)``).
        n, seed: size and seed of the default test set.
        episodes_per_task: episodes per task.

    Returns:
        ``bool[A, n]``: row ``a`` marks the tasks that always playing action ``a`` masters.

    Raises:
        ValueError: the action space is not discrete, or ``episodes_per_task < 1``.
    """
    from accelrl.agents.evaluation import evaluate_policy, max_episode_steps

    env, params = space.make()
    num_actions = getattr(env.action_space(params), "n", None)
    if num_actions is None:
        raise ValueError(
            f"fixed_action_mastery needs discrete actions; {space.env_id} has "
            f"{type(env.action_space(params)).__name__}"
        )
    tasks = test_tasks(space, seed, n) if tasks is None else tasks
    per_episode, count, e = _episode_params(space, params, params, tasks, episodes_per_task)
    steps = max_episode_steps(per_episode)

    @jax.jit
    def masters(action: jax.Array) -> jax.Array:
        def policy(obs: jax.Array, _key: jax.Array) -> jax.Array:
            return jnp.full(obs.shape[:1], action, jnp.int32)

        returns = evaluate_policy(env, per_episode, policy, key, count * e, steps)
        return _mastered(space, returns, count, e)

    return jnp.stack([masters(jnp.int32(a)) for a in range(int(num_actions))])


def mastered_hook(
    space: TaskSpace,
    every: int = 1,
    *,
    tasks: jax.Array | None = None,
    n: int = 100,
    seed: int = 0,
    episodes_per_task: int = 1,
    name: str = "mastered",
) -> Callable[..., Any]:
    """A :class:`~accelrl.agents.Runner` ``on_segment`` callback that adds ``name``
    (``f32[M]``, the fraction of the test set mastered) every ``every`` segments and after the
    last one.

    Args:
        space: the task space.
        every: measure every this many segments (counted from the run's start, so a resumed
            run measures at the same updates).
        tasks: the test set (default ``test_tasks(space, seed, n)``).
        n, seed: size and seed of the default test set.
        episodes_per_task: episodes per test task.
        name: the metrics column.
    """
    from accelrl.agents.evaluation import evaluation_key
    from accelrl.agents.runner import SegmentUpdate

    if every < 1:
        raise ValueError(f"every must be positive, got {every}")
    tasks = test_tasks(space, seed, n) if tasks is None else jnp.asarray(tasks, jnp.float32)

    def on_segment(runner: Any, state: Any, seg_metrics: dict[str, np.ndarray]) -> Any:
        done = int(np.asarray(state.update_step).reshape(-1)[0])
        segment = -(-done // runner.segment)  # segments completed (the last may be short)
        if segment % every and done < runner.agent.num_updates:
            return None
        key = jax.random.fold_in(evaluation_key(seed), done)
        value = mastered_fraction(runner.agent, state, space, tasks, key, episodes_per_task)
        value = np.broadcast_to(np.asarray(value, np.float32), (len(runner.members),))
        return SegmentUpdate(metrics={name: value})

    return on_segment


__all__ = ["fixed_action_mastery", "mastered_fraction", "mastered_hook"]
