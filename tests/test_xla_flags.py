"""Importing accelrl sets the XLA CPU scheduler workaround before the backend starts."""

import os
import subprocess
import sys


def _flags_after_import(env: dict) -> str:
    code = "import accelrl, os, jax.numpy as jnp; jnp.ones(2).sum(); print(os.environ.get('XLA_FLAGS', ''))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_flag_is_added_and_user_setting_wins():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "ACCELRL_KEEP_XLA_FLAGS")}
    assert "xla_cpu_enable_concurrency_optimized_scheduler=false" in _flags_after_import(env)
    env["XLA_FLAGS"] = "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    assert _flags_after_import(env) == "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    env.pop("XLA_FLAGS")
    env["ACCELRL_KEEP_XLA_FLAGS"] = "1"
    assert _flags_after_import(env) == ""
