"""Step-by-step parity of the accelrl MPE scenarios against PettingZoo's MPE (``mpe2``).

For each step the checker copies the reference world into an accelrl state (every entity's
``p_pos``/``p_vel``, agents' utterances ``c``, the step count and the scenario's goal indices;
crypto's key; world_comm's food and forests are landmarks, so their positions come along),
checks that the colours implied by the copied goals are the reference's, steps both with the
same actions and compares observations, rewards, terminations, truncations, the world state
(mpe2's ``state()``) and the next state. Needs the ``mpe2`` package (dev extra).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.mpe.world import MPEEnv, MPEParams, MPEState

#: accelrl constructor argument -> mpe2 constructor argument (where the names differ).
_KWARG_NAMES = {
    "MPE_simple_spread_v3": {"num_agents": "N"},
    "MPE_simple_adversary_v3": {"num_good": "N"},
}


@dataclass(frozen=True)
class ParityReport:
    """Outcome of :func:`check_episodes`."""

    env_id: str
    """The accelrl id checked."""
    action_type: str
    """``"discrete"`` or ``"continuous"``."""
    steps: int
    """Steps compared."""
    max_error: dict[str, float] = field(default_factory=dict)
    """Largest absolute difference seen per compared quantity."""
    mismatches: tuple[str, ...] = ()
    """Descriptions of the failed comparisons (empty when the check passed)."""

    @property
    def ok(self) -> bool:
        return not self.mismatches


def reference_env(env_id: str, action_type: str = "discrete", max_cycles: int = 25, **kwargs):
    """The mpe2 ``ParallelEnv`` for an accelrl id and constructor arguments."""
    module = importlib.import_module("mpe2." + env_id.removeprefix("MPE_"))
    names = _KWARG_NAMES.get(env_id, {})
    ref_kwargs = {names.get(k, k): v for k, v in kwargs.items()}
    return module.parallel_env(
        continuous_actions=action_type == "continuous", max_cycles=max_cycles, **ref_kwargs
    )


def _reference_goals(env: MPEEnv, world: Any) -> np.ndarray:
    """The scenario's goal indices read off the mpe2 world (see each scenario's docstring)."""
    lms = world.landmarks

    def index_of(landmark):
        return next(i for i, lm in enumerate(lms) if lm is landmark)

    scenario = env.scenario
    if scenario in ("simple_push_v3", "simple_adversary_v3"):
        return np.array([index_of(world.agents[0].goal_a)])
    if scenario == "simple_crypto_v3":
        key = world.agents[2].key
        key_index = next(i for i, lm in enumerate(lms) if np.array_equal(lm.color, key))
        return np.array([index_of(world.agents[0].goal_a), key_index])
    if scenario == "simple_speaker_listener_v4":
        return np.array([index_of(world.agents[0].goal_b)])
    if scenario == "simple_reference_v3":
        return np.array([index_of(world.agents[0].goal_b), index_of(world.agents[1].goal_b)])
    return np.zeros(0)


def state_from_reference(env: MPEEnv, ref: Any) -> MPEState:
    """Copy the mpe2 world of ``ref`` (a ParallelEnv or raw env) into an accelrl state."""
    raw = ref.unwrapped
    world = raw.world
    entities = world.agents + world.landmarks
    dim_c = env.layout.dim_c
    return MPEState(
        p_pos=jnp.asarray(np.stack([e.state.p_pos for e in entities]), jnp.float32),
        p_vel=jnp.asarray(np.stack([e.state.p_vel for e in entities]), jnp.float32),
        c=jnp.asarray(
            np.stack([np.asarray(a.state.c, np.float64).reshape(dim_c) for a in world.agents]),
            jnp.float32,
        ),
        goals=jnp.asarray(_reference_goals(env, world), jnp.int32),
        time=jnp.asarray(raw.steps, jnp.int32),
    )


def reference_colors(ref: Any) -> np.ndarray:
    """Entity colours ``[E, 3]`` of the mpe2 world (first three channels)."""
    world = ref.unwrapped.world
    return np.stack([np.asarray(e.color, np.float64)[:3] for e in world.agents + world.landmarks])


def _compare(name: str, ours: Any, theirs: Any, atol: float, report: dict, errors: list):
    a, b = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if a.shape != b.shape:
        errors.append(f"{name}: shape {a.shape} != reference {b.shape}")
        report[name] = float("inf")
        return
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    report[name] = max(report.get(name, 0.0), err)
    if not err <= atol:  # also catches NaN
        errors.append(f"{name}: max |ours - reference| = {err:.3g} > {atol:g}")


def check_step(
    env: MPEEnv,
    params: MPEParams,
    ref: Any,
    actions: dict[str, np.ndarray],
    *,
    atol: float = 1e-4,
    corrupt: Callable[[MPEState], MPEState] | None = None,
    compiled: tuple[Callable, Callable] | None = None,
    report: dict[str, float] | None = None,
) -> list[str]:
    """Step ``ref`` (mpe2) and ``env`` from the same state with ``actions``; list mismatches.

    Args:
        env, params: the accelrl scenario and its params.
        ref: the mpe2 ParallelEnv, mid-episode (it is stepped).
        actions: one action per agent (numpy).
        atol: absolute tolerance for every compared quantity.
        corrupt: applied to accelrl's next state before the comparison (tests of the checker).
        compiled: ``compile_env(env)`` (pass it to avoid recompiling every step).
        report: dict updated with the largest error per quantity.

    Returns:
        Descriptions of the failed comparisons (empty if everything matched).
    """
    report = {} if report is None else report
    errors: list[str] = []
    transition, world_state = compiled or compile_env(env)
    state = state_from_reference(env, ref)
    _compare("colors", env.colors(state)[:, :3], reference_colors(ref), atol, report, errors)
    jactions = {a: jnp.asarray(v) for a, v in actions.items()}
    obs, nxt, rew, term, trunc, _ = transition(jax.random.key(0), state, jactions, params)
    if corrupt is not None:
        nxt = corrupt(nxt)
    obs_r, rew_r, term_r, trunc_r, _ = ref.step(actions)
    nxt_r = state_from_reference(env, ref)
    for a in env.agents:
        _compare(f"obs[{a}]", obs[a], obs_r[a], atol, report, errors)
        _compare(f"reward[{a}]", rew[a], rew_r[a], atol, report, errors)
        _compare(f"terminated[{a}]", term[a], term_r[a], 0, report, errors)
        _compare(f"truncated[{a}]", trunc[a], trunc_r[a], 0, report, errors)
    raw = ref.unwrapped
    if not bool(trunc["__all__"] | term["__all__"]):  # mpe2's state() is defined mid-episode
        _compare("world_state", world_state(nxt, params), raw.state(), atol, report, errors)
    for f in ("p_pos", "p_vel", "c", "goals", "time"):
        _compare(f"state.{f}", getattr(nxt, f), getattr(nxt_r, f), atol, report, errors)
    return errors


def compile_env(env: MPEEnv) -> tuple[Callable, Callable]:
    """Jitted ``(env.transition, env.world_state)``."""
    return jax.jit(env.transition), jax.jit(env.world_state)


@functools.lru_cache(maxsize=64)
def _compiled_env(env_id: str, action_type: str, kwargs_items: tuple) -> tuple:
    from accelrl.envs.registry import make

    env, _ = make(env_id, action_type=action_type, **dict(kwargs_items))
    return env, compile_env(env)


def compiled_env(env_id: str, action_type: str = "discrete", **kwargs) -> tuple:
    """``(env, compile_env(env))`` for an id, cached so repeated checks compile once."""
    return _compiled_env(env_id, action_type, tuple(sorted(kwargs.items())))


def random_actions(env: MPEEnv, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Uniform random actions (numpy) for every agent."""
    out = {}
    for a in env.agents:
        n = env.action_size(a)
        if env.continuous:
            out[a] = rng.uniform(0.0, 1.0, n).astype(np.float32)
        else:
            out[a] = np.int64(rng.integers(n))
    return out


def params_for_reference(env: MPEEnv, max_cycles: int = 25, **scenario_params) -> MPEParams:
    """accelrl params matching an mpe2 env built with ``max_cycles`` and ``scenario_params``."""
    return env.default_params.replace(max_steps_in_episode=max_cycles, **scenario_params)


def check_episodes(
    env_id: str,
    action_type: str = "discrete",
    episodes: int = 3,
    seed: int = 0,
    *,
    max_cycles: int = 25,
    atol: float = 1e-4,
    corrupt: Callable[[MPEState], MPEState] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    ref_kwargs: dict[str, Any] | None = None,
    scenario_params: dict[str, Any] | None = None,
    stop_at_first: bool = True,
) -> ParityReport:
    """Run ``episodes`` random episodes of ``env_id`` in lockstep with mpe2.

    Args:
        env_id: an ``MPE_*`` id.
        action_type: ``"discrete"`` or ``"continuous"``.
        episodes: episodes to compare (``max_cycles`` steps each).
        seed: seeds mpe2's resets and the random actions.
        max_cycles: episode length for both.
        atol: absolute tolerance.
        corrupt: see :func:`check_step`.
        env_kwargs: constructor arguments (accelrl names; translated for mpe2).
        ref_kwargs: extra mpe2-only constructor arguments (e.g. ``local_ratio``).
        scenario_params: accelrl params fields to set (e.g. ``local_ratio``).
        stop_at_first: stop at the first failing step.
    """
    env_kwargs = env_kwargs or {}
    env, compiled = compiled_env(env_id, action_type, **env_kwargs)
    params = params_for_reference(env, max_cycles, **(scenario_params or {}))
    ref = reference_env(env_id, action_type, max_cycles, **env_kwargs, **(ref_kwargs or {}))
    rng = np.random.default_rng(seed)
    report: dict[str, float] = {}
    mismatches: list[str] = []
    steps = 0
    for ep in range(episodes):
        ref.reset(seed=seed * 100_003 + ep)
        for t in range(max_cycles):
            errs = check_step(
                env,
                params,
                ref,
                random_actions(env, rng),
                atol=atol,
                corrupt=corrupt,
                compiled=compiled,
                report=report,
            )
            steps += 1
            mismatches += [f"episode {ep} step {t}: {e}" for e in errs]
            if not ref.agents:
                break
            if mismatches and stop_at_first:
                break
        if mismatches and stop_at_first:
            break
    ref.close()
    return ParityReport(env_id, action_type, steps, report, tuple(mismatches))
