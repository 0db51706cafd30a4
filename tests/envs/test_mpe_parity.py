"""Parity of the MPE scenarios with PettingZoo's MPE (mpe2), and tests that the checker can fail."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpe2")

from accelrl.envs.mpe import MPE_SCENARIOS  # noqa: E402
from accelrl.envs.mpe.parity import (  # noqa: E402
    check_episodes,
    check_step,
    compiled_env,
    params_for_reference,
    random_actions,
    reference_env,
)

IDS = list(MPE_SCENARIOS)
ACTION_TYPES = ["discrete", "continuous"]


@pytest.mark.parametrize("action_type", ACTION_TYPES)
@pytest.mark.parametrize("env_id", IDS)
def test_parity_random_episodes(env_id, action_type):
    report = check_episodes(env_id, action_type, episodes=2, seed=1)
    assert report.ok, report.mismatches[:5]
    assert report.steps == 50
    # the state comparison ran for every field
    for f in ("p_pos", "p_vel", "c", "goals", "time"):
        assert f"state.{f}" in report.max_error


@pytest.mark.parametrize(
    "env_id, env_kwargs, scenario_params, ref_kwargs",
    [
        ("MPE_simple_spread_v3", {"num_agents": 4}, {"local_ratio": 0.2}, {"local_ratio": 0.2}),
        (
            "MPE_simple_tag_v3",
            {"num_good": 2, "num_adversaries": 2, "num_obstacles": 1},
            {},
            {},
        ),
        ("MPE_simple_adversary_v3", {"num_good": 3}, {}, {}),
        (
            "MPE_simple_world_comm_v3",
            {"num_good": 3, "num_adversaries": 2, "num_food": 1, "num_forests": 3},
            {},
            {},
        ),
        ("MPE_simple_reference_v3", {}, {"local_ratio": 0.9}, {"local_ratio": 0.9}),
    ],
)
def test_parity_non_default_settings(env_id, env_kwargs, scenario_params, ref_kwargs):
    report = check_episodes(
        env_id,
        "continuous",
        episodes=1,
        seed=2,
        max_cycles=10,
        env_kwargs=env_kwargs,
        scenario_params=scenario_params,
        ref_kwargs=ref_kwargs,
    )
    assert report.ok, report.mismatches[:5]
    assert report.steps == 10


# -- targeted events: place the reference's entities, then compare one step --------------------
def _setup(env_id, action_type="discrete", seed=0, ref_kwargs=None, scenario_params=None, **kw):
    env, compiled = compiled_env(env_id, action_type, **kw)
    params = params_for_reference(env, 25, **(scenario_params or {}))
    ref = reference_env(env_id, action_type, 25, **kw, **(ref_kwargs or {}))
    ref.reset(seed=seed)
    return env, params, ref, compiled


def _place(ref, positions: dict[int, tuple[float, float]], velocities=None):
    world = ref.unwrapped.world
    entities = world.agents + world.landmarks
    for i, p in positions.items():
        entities[i].state.p_pos = np.array(p, np.float64)
    for i, v in (velocities or {}).items():
        entities[i].state.p_vel = np.array(v, np.float64)


def _noop(env):
    if env.continuous:
        return {a: np.zeros(env.action_size(a), np.float32) for a in env.agents}
    return {a: np.int64(0) for a in env.agents}


def test_tag_contacts_bounds_obstacles_and_speed_cap():
    env, params, ref, compiled = _setup("MPE_simple_tag_v3")
    # adversary_0 touches the prey, prey out of the area, adversary_1 inside an obstacle,
    # adversary_2 faster than its cap
    _place(
        ref,
        {0: (0.93, 0.3), 3: (0.97, 0.35), 1: (-0.3, -0.3), 4: (-0.25, -0.32), 2: (0.0, 0.6)},
        velocities={2: (3.0, -2.0)},
    )
    report: dict = {}
    errs = check_step(env, params, ref, _noop(env), compiled=compiled, report=report)
    assert not errs, errs
    raw = ref.unwrapped  # the events happened in the reference
    adversary, prey = raw.world.agents[0], raw.world.agents[3]
    assert raw.scenario.reward(adversary, raw.world) >= 10
    assert raw.scenario.reward(prey, raw.world) < -10


def test_tag_terminate_on_success():
    env, params, ref, compiled = _setup(
        "MPE_simple_tag_v3",
        ref_kwargs={"terminate_on_success": True},
        scenario_params={"terminate_on_success": True},
    )
    _place(ref, {0: (0.1, 0.1), 3: (0.15, 0.12), 4: (-0.8, 0.8), 5: (0.8, -0.8)})
    errs = check_step(env, params, ref, _noop(env), compiled=compiled)
    assert not errs, errs
    assert not ref.agents  # the reference terminated the episode


def test_spread_collisions_and_success():
    env, params, ref, compiled = _setup(
        "MPE_simple_spread_v3",
        ref_kwargs={"terminate_on_success": True},
        scenario_params={"terminate_on_success": True},
    )
    lm = {3: (-0.7, -0.7), 4: (0.7, 0.7), 5: (0.7, -0.7)}
    _place(ref, {0: lm[3], 1: lm[4], 2: lm[5], **lm})
    errs = check_step(env, params, ref, _noop(env), compiled=compiled)
    assert not errs, errs
    assert not ref.agents  # success ended the episode
    ref.reset(seed=1)
    _place(ref, {0: (0.0, 0.0), 1: (0.1, 0.1), 2: (0.2, -0.1)})
    errs = check_step(env, params, ref, _noop(env), compiled=compiled)
    assert not errs, errs


def test_world_comm_forests_food_and_leader():
    env, params, ref, compiled = _setup("MPE_simple_world_comm_v3")
    # landmarks: 6 obstacle, 7-8 food, 9-10 forests; agents: 0 leader, 1-3 adversaries, 4-5 good
    f0, f1 = (-0.5, -0.5), (0.5, 0.5)
    _place(
        ref,
        {
            9: f0,
            10: f1,
            6: (0.0, -0.8),
            7: (0.52, 0.48),
            8: (-0.9, 0.9),
            4: (0.5, 0.5),  # good in forest 1, on food 0
            1: (0.45, 0.55),  # adversary in forest 1: sees agent_0
            2: (-0.5, -0.45),  # adversary in forest 0
            5: (1.1, -0.2),  # good outside, out of the area
            3: (0.0, 0.0),  # adversary outside
            0: (-0.9, -0.9),  # leader sees everyone
        },
    )
    actions = random_actions(env, np.random.default_rng(0))
    errs = check_step(env, params, ref, actions, compiled=compiled)
    assert not errs, errs


@pytest.mark.parametrize("action_type", ACTION_TYPES)
def test_crypto_silence_counts_as_no_guess(action_type):
    env, params, ref, compiled = _setup("MPE_simple_crypto_v3", action_type)
    errs = check_step(env, params, ref, _noop(env), compiled=compiled)
    assert not errs, errs


# -- the checker must be able to fail ----------------------------------------------------------
@pytest.mark.parametrize(
    "env_id, field, corrupt",
    [
        (
            "MPE_simple_push_v3",
            "state.p_pos",
            lambda s: s.replace(p_pos=s.p_pos.at[-1, 0].add(1e-3)),
        ),
        (
            "MPE_simple_push_v3",
            "state.p_vel",
            lambda s: s.replace(p_vel=s.p_vel.at[0, 1].add(1e-3)),
        ),
        ("MPE_simple_push_v3", "state.time", lambda s: s.replace(time=s.time + 1)),
        ("MPE_simple_crypto_v3", "state.c", lambda s: s.replace(c=s.c.at[0, 0].add(1.0))),
        ("MPE_simple_crypto_v3", "state.goals", lambda s: s.replace(goals=1 - s.goals)),
    ],
)
def test_checker_detects_a_perturbed_state_field(env_id, field, corrupt):
    report = check_episodes(env_id, "continuous", episodes=1, corrupt=corrupt)
    assert not report.ok
    assert any(field in m for m in report.mismatches), report.mismatches


def test_checker_detects_wrong_physics_and_rewards():
    env, compiled = compiled_env("MPE_simple_spread_v3")
    ref = reference_env("MPE_simple_spread_v3")
    ref.reset(seed=0)
    rng = np.random.default_rng(0)
    wrong = params_for_reference(env).replace(damping=0.3)
    errs = []
    for _ in range(3):
        errs += check_step(env, wrong, ref, random_actions(env, rng), compiled=compiled)
    assert any("state.p_vel" in e for e in errs) and any("obs[" in e for e in errs)
    report = check_episodes(
        "MPE_simple_spread_v3", episodes=1, scenario_params={"local_ratio": 0.4}
    )
    assert not report.ok and any("reward[" in m for m in report.mismatches)


@pytest.mark.slow
@pytest.mark.parametrize("action_type", ACTION_TYPES)
@pytest.mark.parametrize("env_id", IDS)
def test_parity_sweep(env_id, action_type):
    """500 random episodes x 25 steps per scenario and action type."""
    report = check_episodes(env_id, action_type, episodes=500, seed=7, stop_at_first=False)
    assert report.ok, report.mismatches[:10]
    assert report.steps == 500 * 25
