"""Host-side input checks: constructor arguments through ``make`` and ``check_params``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelrl.envs import make, registered_envs
from accelrl.envs.checks import check_choice, check_int, check_params, check_real


def test_check_int_refuses_floats_strings_and_bools():
    assert check_int("n", 5, minimum=1) == 5
    assert check_int("n", np.int64(5)) == 5 and type(check_int("n", np.int64(5))) is int
    for bad in ("5", 5.5, 5.0, True, np.float32(5), None, [5]):
        with pytest.raises(TypeError, match=r"^n must be an integer, got "):
            check_int("n", bad)
    with pytest.raises(ValueError, match=r"^n must be >= 1, got 0$"):
        check_int("n", 0, minimum=1)
    with pytest.raises(ValueError, match=r"^n must be <= 3, got 4$"):
        check_int("n", 4, maximum=3)


def test_check_real_and_check_choice():
    assert check_real("x", 2) == 2.0 and check_real("x", np.float32(0.5), low=0.0) == 0.5
    assert check_real("x", float("inf"), finite=False) == float("inf")
    for bad in ("0.5", True, None, 1j):
        with pytest.raises(TypeError, match=r"^x must be a real number"):
            check_real("x", bad)
    with pytest.raises(ValueError, match=r"^x must be finite, got nan$"):
        check_real("x", float("nan"), finite=False)
    with pytest.raises(ValueError, match=r"^x must be > 0.0, got 0.0$"):
        check_real("x", 0.0, low=0.0, low_open=True)
    with pytest.raises(ValueError, match=r"^x must be <= 1.0, got 1.5$"):
        check_real("x", 1.5, high=1.0)
    assert check_choice("c", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"^c must be one of \['a', 'b'\], got 'z'$"):
        check_choice("c", "z", ("a", "b"))
    with pytest.raises(TypeError, match=r"^c must be one of"):
        check_choice("c", 1, ("a", "b"))


# (id, kwargs, error, message) for every constructor argument of every accelrl environment.
BAD_KWARGS = [
    ("ThreeBody-v0", {"num_actions": "5"}, TypeError, "num_actions must be an integer"),
    ("ThreeBody-v0", {"num_actions": 5.5}, TypeError, "num_actions must be an integer"),
    ("ThreeBody-v0", {"num_actions": 5.0}, TypeError, "num_actions must be an integer"),
    ("ThreeBody-v0", {"num_actions": True}, TypeError, "num_actions must be an integer"),
    ("ThreeBody-v0", {"num_actions": 0}, ValueError, "num_actions must be >= 1"),
    ("ThreeBody-v0", {"preset": 3}, TypeError, "preset must be a string"),
    ("ThreeBody-v0", {"preset": "papr"}, ValueError, "unknown ThreeBody preset 'papr'"),
    ("ThreeBodyContinuous-v0", {"preset": ["paper"]}, TypeError, "preset must be a string"),
    ("ThreeBodyContinuous-v0", {"preset": "fast"}, ValueError, "unknown ThreeBody preset"),
    ("MallocGame-v0", {"max_buffers": "768"}, TypeError, "max_buffers must be an integer"),
    ("MallocGame-v0", {"max_buffers": 0}, ValueError, "max_buffers must be >= 1"),
    ("MallocGame-v0", {"max_live": 2.5}, TypeError, "max_live must be an integer"),
    ("MallocGame-v0", {"num_candidates": 0}, ValueError, "num_candidates must be >= 1"),
    ("MallocGame-v0", {"num_bins": 16.0}, TypeError, "num_bins must be an integer"),
    ("MallocGame-v0", {"lookahead": -1}, ValueError, "lookahead must be >= 0"),
    ("MallocGame-v0", {"alignment": 0}, ValueError, "alignment must be >= 1"),
    ("MallocGame-v0", {"set_size": 1.5}, TypeError, "set_size must be an integer"),
    ("MallocGame-v0", {"capacity_fraction": 0.0}, ValueError, "capacity_fraction must be > 0"),
    ("MallocGame-v0", {"capacity_fraction": float("nan")}, ValueError, "must be finite"),
    ("MallocGame-v0", {"capacity_fraction": "0.5"}, TypeError, "must be a real number"),
    ("MallocGame-v0", {"order": "random"}, ValueError, "order must be one of"),
    ("MallocGame-v0", {"order": 0}, TypeError, "order must be one of"),
    ("MallocGame-v0", {"default_workload": "train"}, TypeError, "must be a Workload or None"),
    ("MPE_simple_v3", {"action_type": "box"}, ValueError, "action_type must be one of"),
    ("MPE_simple_v3", {"action_type": 1}, TypeError, "action_type must be one of"),
    ("MPE_simple_spread_v3", {"num_agents": 0}, ValueError, "num_agents must be >= 1"),
    ("MPE_simple_spread_v3", {"num_agents": 3.0}, TypeError, "num_agents must be an integer"),
    ("MPE_simple_adversary_v3", {"num_good": "2"}, TypeError, "num_good must be an integer"),
    ("MPE_simple_tag_v3", {"num_adversaries": 0}, ValueError, "num_adversaries must be >= 1"),
    ("MPE_simple_tag_v3", {"num_obstacles": -1}, ValueError, "num_obstacles must be >= 0"),
    ("MPE_simple_world_comm_v3", {"num_food": 0}, ValueError, "num_food must be >= 1"),
    ("MPE_simple_world_comm_v3", {"num_forests": 1.5}, TypeError, "num_forests must be an"),
    ("MPE_simple_crypto_v3", {"action_type": "Discrete"}, ValueError, "action_type must be"),
]


@pytest.mark.parametrize(("env_id", "kwargs", "error", "match"), BAD_KWARGS)
def test_make_refuses_bad_constructor_arguments(env_id, kwargs, error, match):
    with pytest.raises(error, match=match) as err:
        make(env_id, **kwargs)
    assert "\n" not in str(err.value)


def test_make_accepts_numpy_integers_and_good_values():
    env, _ = make("ThreeBody-v0", num_actions=np.int64(4), preset="paper")
    assert env.num_actions == 4
    env, _ = make("MPE_simple_spread_v3", num_agents=np.int32(2), action_type="continuous")
    assert env.num_agents == 2 and env.continuous


def _nan_obs(env, params) -> bool:
    obs, _ = env.reset_env(jax.random.key(0), params)
    return not all(bool(jnp.all(jnp.isfinite(o))) for o in jax.tree.leaves(obs))


def test_every_accelrl_default_params_pass():
    for env_id in registered_envs():
        if env_id.startswith("Test"):  # toy envs registered by other tests
            continue
        env, params = make(env_id)
        check_params(env, params)


def test_three_body_params_that_give_nan_are_refused():
    env, params = make("ThreeBody-v0")
    cases = [
        ({"masses": jnp.zeros(3)}, r"masses\[0\] = 0, must be > 0"),
        ({"masses": jnp.array([1.0, 1.0, -2.0])}, r"masses\[2\] = -2, must be > 0"),
        ({"initial_speed_kms": float("nan")}, r"initial_speed_kms is nan"),
        ({"G": 0.0}, r"G = 0, must be > 0"),
    ]
    for change, match in cases:
        bad = params.replace(**change)
        assert _nan_obs(env, bad), change  # what the check prevents
        with pytest.raises(ValueError, match=r"^ThreeBody-v0 params: " + match):
            check_params(env, bad)
    more = [  # no NaN at reset, but no meaningful episode either
        ({"masses": jnp.array([1.0, 0.0, 1.0])}, r"masses\[1\] = 0, must be > 0"),
        ({"check_interval": -0.1}, r"check_interval = -0.1, must be > 0"),
        ({"mu_values": jnp.zeros(10)}, r"mu_values\[0\] = 0, must be > 0"),
        ({"energy_reference": 0.0}, r"energy_reference = 0"),
        ({"reward_error_cap": 0.0}, r"reward_error_cap = 0, must be > 0"),
        ({"num_checks": 0}, r"num_checks = 0, must be an integer >= 1"),
        ({"max_substeps_per_decision": 2.5}, r"max_substeps_per_decision = 2.5"),
        ({"criterion": 2}, r"criterion = 2, unknown criterion"),
        ({"step_limit_terminates": 0.5}, r"step_limit_terminates = 0.5, must be a bool"),
        ({"w_energy": float("inf")}, r"w_energy = inf, must be finite"),
        (
            {"ic_high": jnp.array([20.0, 10.0, -11.0, 20.0])},
            r"ic_high\[2\] = -11, must be >= ic_low",
        ),
        ({"log_mu_low": 0.0}, r"log_mu_high = -1, must be >= log_mu_low"),
        (
            {"ic_low": jnp.zeros(4), "ic_high": jnp.array([0.0, 0.0, 1.0, 1.0])},
            r"ic_low == ic_high puts bodies 0 and 1",
        ),
        ({"masses": jnp.ones(4)}, r"masses has shape \(4,\), expected \(3,\)"),
    ]
    for change, match in more:
        with pytest.raises(ValueError, match=r"^ThreeBody-v0 params: " + match):
            check_params(env, params.replace(**change))
    check_params(env, params.replace(reward_error_cap=float("inf")))  # the paper's preset


def test_mpe_and_malloc_params_are_checked():
    env, params = make("MPE_simple_spread_v3")
    bad = params.replace(mass=params.mass.at[0].set(0.0))
    obs, state = env.reset_env(jax.random.key(0), bad)
    act = {a: jnp.asarray(1) for a in env.agents}
    obs, *_ = env.step_env(jax.random.key(1), state, act, bad)
    assert not bool(jnp.all(jnp.isfinite(obs["agent_0"])))  # what the check prevents
    for change, match in [
        ({"mass": params.mass.at[0].set(0.0)}, r"mass\[0\] = 0, must be > 0"),
        ({"contact_margin": 0.0}, r"contact_margin = 0"),
        ({"damping": 1.5}, r"damping = 1.5, must be in \[0, 1\]"),
        ({"max_steps_in_episode": 0}, r"max_steps_in_episode = 0"),
        ({"local_ratio": -0.5}, r"local_ratio = -0.5"),
        ({"max_speed": jnp.full(3, -1.0)}, r"max_speed\[0\] = -1, must be >= 0"),
    ]:
        with pytest.raises(ValueError, match=r"^MPE_simple_spread_v3 params: " + match):
            check_params(env, params.replace(**change))
    check_params(env, params.replace(max_speed=jnp.full(3, jnp.inf)))  # inf: no speed cap

    from accelrl.envs.malloc import MallocGame, Workload

    def workload(seed):
        rng = np.random.default_rng(seed)
        start = rng.integers(0, 20, 8)
        end = start + rng.integers(0, 5, 8)
        size = rng.integers(1, 60, 8)
        return Workload(size=size, start=start, end=end, benefit=size * 1.0, name=f"w{seed}")

    game, p = MallocGame.for_workloads([workload(0), workload(1)])
    check_params(game, p, batch_size=2)
    for change, match in [
        ({"horizon": p.horizon.at[1].set(0.0)}, r"horizon\[1\] = 0, must be > 0"),
        ({"order": p.order.at[0, 0].set(p.order[0, 1])}, r"order is not a permutation"),
        ({"end": p.end.at[0, 0].set(-1)}, r"end\[0, 0\] = -1"),
        ({"num_buffers": p.num_buffers.at[0].set(0)}, r"num_buffers\[0\] = 0, out of range"),
        ({"alignment": p.alignment.at[1].set(0)}, r"alignment\[1\] = 0"),
    ]:
        with pytest.raises(ValueError, match=r"^MallocGame-v0 params: " + match):
            check_params(game, p.replace(**change), batch_size=2)


def test_generic_checks_structure_shape_batch_and_nan():
    env, params = make("ThreeBody-v0")
    cart, cart_params = make("CartPole-v1")
    with pytest.raises(TypeError, match=r"^ThreeBody-v0 params must be its EnvParams"):
        check_params(env, cart_params)
    batched = params.replace(masses=jnp.ones((4, 3)))
    check_params(env, batched, batch_size=4)
    with pytest.raises(ValueError, match=r"masses has shape \(4, 3\), expected \(3,\)$"):
        check_params(env, batched)
    with pytest.raises(ValueError, match=r"expected \(3,\) or \(5, 3\)$"):
        check_params(env, batched, batch_size=5)
    with pytest.raises(ValueError, match=r"masses\[2, 1\] = -1, must be > 0"):
        check_params(env, batched.replace(masses=batched.masses.at[2, 1].set(-1.0)), batch_size=4)
    # gymnax environments get the generic checks: a NaN anywhere is refused
    with pytest.raises(ValueError, match=r"^CartPole-v1 params: gravity is nan$"):
        check_params(cart, cart_params.replace(gravity=float("nan")))
    check_params(cart, cart_params)
