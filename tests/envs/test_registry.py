import gymnax
import pytest

from accelrl.envs import UnknownEnvironmentError, make, register, registered_envs


def test_unknown_id_lists_close_matches():
    with pytest.raises(UnknownEnvironmentError) as err:
        make("CartPol-v1")
    assert "CartPole-v1" in str(err.value)


def test_unknown_id_without_close_match_still_clear():
    with pytest.raises(UnknownEnvironmentError, match="unknown environment id 'zzzzqqq'"):
        make("zzzzqqq")


def test_gymnax_passthrough_returns_env_and_params():
    env, params = make("CartPole-v1")
    assert isinstance(env, gymnax.environments.environment.Environment)
    assert params.max_steps_in_episode == 500


def test_bad_kwargs_are_reported():
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        make("CartPole-v1", not_a_kwarg=3)


def test_register_rejects_duplicates_and_gymnax_shadowing():
    with pytest.raises(ValueError, match="gymnax id"):
        register("CartPole-v1", lambda: None)
    register("TestRegistryDup-v0", lambda: gymnax.make("CartPole-v1")[0])
    with pytest.raises(ValueError, match="already registered"):
        register("TestRegistryDup-v0", lambda: None)
    assert "TestRegistryDup-v0" in registered_envs()
    assert "CartPole-v1" in registered_envs(include_gymnax=True)
    assert "CartPole-v1" not in registered_envs()


def test_register_rejects_bad_arguments():
    with pytest.raises(ValueError):
        register("", lambda: None)
    with pytest.raises(TypeError):
        register("TestNotCallable-v0", 3)


def test_space_contains_rejects_wrong_values():
    import jax.numpy as jnp
    from gymnax.environments import spaces

    from accelrl.envs.spaces import space_contains

    box = spaces.Box(-1.0, 1.0, (3,), jnp.float32)
    assert bool(space_contains(box, jnp.zeros(3)))
    assert not bool(space_contains(box, jnp.array([0.0, 2.0, 0.0])))
    assert not bool(space_contains(box, jnp.zeros(4)))  # wrong shape
    assert not bool(space_contains(box, jnp.array([0.0, jnp.nan, 0.0])))
    d = spaces.Dict({"observation": box, "action_mask": spaces.Box(0, 1, (2,), jnp.bool_)})
    assert bool(space_contains(d, {"observation": jnp.zeros(3), "action_mask": jnp.ones(2, bool)}))
    assert not bool(space_contains(d, {"observation": jnp.ones(3) * 5, "action_mask": jnp.ones(2, bool)}))
    assert not bool(space_contains(spaces.Discrete(3), jnp.asarray(3)))
    assert bool(space_contains(spaces.Discrete(3), jnp.asarray(2)))
