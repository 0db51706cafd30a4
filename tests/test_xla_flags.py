"""Importing accelrl sets the XLA CPU work-arounds (scheduler, YNNPACK reductions) before the
backend starts."""

import json
import os
import subprocess
import sys

import pytest

from accelrl import _xla

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
YNN = "--xla_cpu_experimental_ynn_fusion_type=-reduce"
BOTH = f"{FLAG} {YNN}"


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", _xla.OPT_OUT_ENV)}


def _run(code: str, env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _flags_after_import(env: dict) -> str:
    code = (
        "import accelrl, os, jax.numpy as jnp; jnp.ones(2).sum(); "
        "print(os.environ.get('XLA_FLAGS', ''))"
    )
    return _run(code, env)


def test_flag_is_added_and_user_setting_wins():
    env = _clean_env()
    assert FLAG in _flags_after_import(env)
    env["XLA_FLAGS"] = "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    assert (
        _flags_after_import(env) == f"--xla_cpu_enable_concurrency_optimized_scheduler=true {YNN}"
    )
    env["XLA_FLAGS"] = "--xla_cpu_experimental_ynn_fusion_type="
    assert _flags_after_import(env) == f"--xla_cpu_experimental_ynn_fusion_type= {FLAG}"
    env.pop("XLA_FLAGS")
    env[_xla.OPT_OUT_ENV] = "1"
    assert _flags_after_import(env) == ""


def test_backend_already_started_warns_and_leaves_flags():
    code = """
import json, os, warnings
import jax.numpy as jnp
jnp.ones(2).sum()  # starts the CPU backend before accelrl is imported
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import accelrl
print(json.dumps({"flags": os.environ.get("XLA_FLAGS", ""),
                  "warnings": [str(w.message) for w in caught]}))
"""
    out = json.loads(_run(code, _clean_env()))
    assert out["flags"] == ""
    assert any("backend started" in w and FLAG in w and YNN in w for w in out["warnings"]), out[
        "warnings"
    ]


def test_jax_imported_without_backend_still_gets_the_flag():
    code = "import jax, accelrl, os; print(os.environ.get('XLA_FLAGS', ''))"
    assert _run(code, _clean_env()) == BOTH


@pytest.mark.parametrize(("jaxlib", "flags"), [("0.4.29", ""), ("0.8.1", FLAG), ("0.9.0", BOTH)])
def test_old_jaxlib_skips_the_flags_it_does_not_know(jaxlib, flags):
    code = f"""
import importlib.metadata as md
real = md.version
md.version = lambda name: {jaxlib!r} if name == "jaxlib" else real(name)
import accelrl, os
print(repr(os.environ.get("XLA_FLAGS", "")))
"""
    assert _run(code, _clean_env()) == repr(flags)


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("0.4.29", False),
        ("0.4.30", True),
        ("0.4.31", True),
        ("0.10.2", True),
        ("1.0.0", True),
        ("0.4.30.dev20240601", False),
        ("0.4.30rc1", False),
        ("0.4.31.dev20240701", True),
        ("0.4.30.post1", True),
        ("0.4.30+cuda12", True),
        ("0.3.25", False),
        ("", False),
        (None, False),
        ("not-a-version", False),
    ],
)
def test_flag_supported(version, supported):
    assert _xla.flag_supported(version) is supported


def test_installed_jaxlib_is_supported():
    version = _xla.installed_jaxlib_version()
    assert version is not None
    assert all(_xla.flag_supported(version, w.minimum) for w in _xla.WORKAROUNDS)


@pytest.fixture
def fresh(monkeypatch):
    """No XLA_FLAGS, no opt-out, no backend, a supported jaxlib; the patches are undone after."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv(_xla.OPT_OUT_ENV, raising=False)
    monkeypatch.setattr(_xla, "backend_started", lambda: False)
    monkeypatch.setattr(_xla, "installed_jaxlib_version", lambda: "0.10.2")
    return monkeypatch


def test_apply_adds_the_flag_to_existing_flags(fresh):
    fresh.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert _xla.apply_workarounds() == [FLAG, YNN]
    assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {BOTH}"
    assert _xla.apply_workarounds() == []  # already there: added once
    assert os.environ["XLA_FLAGS"].count(FLAG) == 1 and os.environ["XLA_FLAGS"].count(YNN) == 1


def test_apply_respects_opt_out_and_old_jaxlib(fresh):
    fresh.setenv(_xla.OPT_OUT_ENV, "1")
    assert _xla.apply_workarounds() == [] and "XLA_FLAGS" not in os.environ
    fresh.delenv(_xla.OPT_OUT_ENV)
    fresh.setattr(_xla, "installed_jaxlib_version", lambda: None)
    assert _xla.apply_workarounds() == [] and "XLA_FLAGS" not in os.environ
    fresh.setattr(_xla, "installed_jaxlib_version", lambda: "0.8.3")
    assert _xla.apply_workarounds() == [FLAG] and os.environ["XLA_FLAGS"] == FLAG


def test_apply_warns_once_a_backend_runs(fresh):
    fresh.setattr(_xla, "backend_started", lambda: True)
    with pytest.warns(UserWarning, match="backend started"):
        assert _xla.apply_workarounds() == []
    assert "XLA_FLAGS" not in os.environ
