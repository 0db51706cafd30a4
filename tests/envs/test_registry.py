import json
import subprocess
import sys

import gymnax
import pytest

from accelrl.envs import (
    UnknownEnvironmentError,
    _builtin,
    make,
    register,
    registered_envs,
    registry,
)


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
    assert not bool(
        space_contains(d, {"observation": jnp.ones(3) * 5, "action_mask": jnp.ones(2, bool)})
    )
    assert not bool(space_contains(spaces.Discrete(3), jnp.asarray(3)))
    assert bool(space_contains(spaces.Discrete(3), jnp.asarray(2)))


def test_gymnax_ids_match_installed_gymnax():
    # The registry lists and checks gymnax ids without importing gymnax (its import loads its
    # whole environment zoo); a gymnax upgrade that adds or renames ids must update GYMNAX_IDS.
    assert list(registry.GYMNAX_IDS) == list(gymnax.registered_envs)


def test_builtin_table_matches_what_the_modules_register():
    # In a fresh interpreter: importing accelrl.envs registers nothing (only provides), and
    # importing every environment module registers exactly the provided ids and flags.
    code = """
import importlib, json
from accelrl.envs import _builtin, registry
eager = sorted(registry._REGISTRY)
for module in _builtin.ENV_MODULES:
    importlib.import_module(module)
print(json.dumps({"eager": eager, "registered": sorted(registry._REGISTRY),
                  "left": sorted(registry._PROVIDERS), "multi": sorted(registry._MULTI_AGENT)}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["eager"] == []
    assert out["registered"] == sorted(_builtin.BUILTIN_ENVS)
    assert out["left"] == []
    assert out["multi"] == sorted(i for i, (_, multi) in _builtin.BUILTIN_ENVS.items() if multi)


@pytest.fixture
def isolated_registry(monkeypatch):
    """The registry's tables as copies, restored after the test; no gymnasium mirroring."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_PROVIDERS", dict(registry._PROVIDERS))
    monkeypatch.setattr(registry, "_MULTI_AGENT", set(registry._MULTI_AGENT))
    monkeypatch.setattr(registry, "_register_listeners", [])
    return registry


def _write_module(path, name, body):
    (path / f"{name}.py").write_text(body)
    return name


def test_provided_id_is_listed_and_imported_on_first_make(isolated_registry, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = _write_module(
        tmp_path,
        "accelrl_test_provided_env",
        "import gymnax\n"
        "from accelrl.envs.registry import register\n"
        "register('TestProvided-v0', lambda: gymnax.make('CartPole-v1')[0])\n",
    )
    registry.provide("TestProvided-v0", mod)
    assert "TestProvided-v0" in registry.registered_envs()
    assert mod not in sys.modules
    with pytest.raises(ValueError, match="provided by accelrl_test_provided_env"):
        register("TestProvided-v0", lambda: None)  # only the providing module may register it
    with pytest.raises(ValueError, match="already registered"):
        registry.provide("TestProvided-v0", mod)
    env, params = make("TestProvided-v0")
    assert mod in sys.modules
    assert params.max_steps_in_episode == 500
    assert "TestProvided-v0" not in registry._PROVIDERS
    assert make("TestProvided-v0")[1] == params  # registered now: no second import
    sys.modules.pop(mod, None)


def test_provided_module_that_does_not_register_is_reported(
    isolated_registry, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = _write_module(tmp_path, "accelrl_test_silent_env", "X = 1\n")
    registry.provide("TestSilent-v0", mod)
    with pytest.raises(RuntimeError, match="did not register 'TestSilent-v0'"):
        make("TestSilent-v0")
    sys.modules.pop(mod, None)


def test_provided_multi_agent_flag_must_match(isolated_registry, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = _write_module(
        tmp_path,
        "accelrl_test_flag_env",
        "from accelrl.envs.registry import register\n"
        "register('TestFlag-v0', lambda: None, multi_agent=False)\n",
    )
    registry.provide("TestFlag-v0", mod, multi_agent=True)
    assert registry.is_multi_agent("TestFlag-v0")
    with pytest.raises(ValueError, match="multi_agent=True"):
        make("TestFlag-v0")
    sys.modules.pop(mod, None)


def test_provide_rejects_gymnax_ids(isolated_registry):
    with pytest.raises(ValueError, match="gymnax id"):
        registry.provide("CartPole-v1", "some.module")
