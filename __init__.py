"""accelrl: vectorized JAX RL environments, agents, curricula and tuning.

Subpackages: :mod:`accelrl.envs`, :mod:`accelrl.agents`, :mod:`accelrl.curricula`,
:mod:`accelrl.autotune`.
"""

from accelrl._xla import apply_workarounds as _apply_xla_workarounds

__version__ = "0.1.0"

# XLA reads XLA_FLAGS when the first backend starts, so the CPU work-arounds are set here,
# before any computation (see accelrl._xla: an explicit setting in XLA_FLAGS wins,
# ACCELRL_KEEP_XLA_FLAGS=1 opts out, a backend already running only warns).
_apply_xla_workarounds()
