"""accelrl: vectorized JAX RL environments, agents, curricula and tuning.

Subpackages: :mod:`accelrl.envs`, :mod:`accelrl.agents`, :mod:`accelrl.curricula`,
:mod:`accelrl.autotune`.
"""

__version__ = "0.1.0"
