"""accelrl: vectorized JAX RL environments, agents, curricula and tuning.

Subpackages: :mod:`accelrl.envs`, :mod:`accelrl.agents`, :mod:`accelrl.curricula`,
:mod:`accelrl.autotune`.
"""

import os as _os

__version__ = "0.1.0"

# XLA's CPU "concurrency optimized" scheduler can wedge the CPU thread pool on vmapped
# training programs (seen with SAC vmapped over seeds on jax 0.10.2: all threads idle in futex
# waits, forever). The flag is read when the backend starts, so it is set here, before any
# computation; an explicit setting in XLA_FLAGS wins. Set ACCELRL_KEEP_XLA_FLAGS=1 to opt out.
_XLA_CPU_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if not _os.environ.get("ACCELRL_KEEP_XLA_FLAGS"):
    _flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_concurrency_optimized_scheduler" not in _flags:
        _os.environ["XLA_FLAGS"] = f"{_flags} {_XLA_CPU_FLAG}".strip()
