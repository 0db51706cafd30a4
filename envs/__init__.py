"""accelrl environments: one registry (``make``), base classes, batched wrappers, adapters.

>>> from accelrl.envs import make
>>> env, params = make("CartPole-v1")          # gymnax passthrough
>>> env, params = make("ThreeBody-v0")          # accelrl environment

Importing this package registers every accelrl id with gymnasium under ``accelrl/<id>``.
"""

from accelrl.envs.multi_agent import MultiAgentEnv, MultiAgentEnvParams
from accelrl.envs.registry import (
    GYMNAX_KNOWN_FAULTS,
    UnknownEnvironmentError,
    is_multi_agent,
    make,
    register,
    registered_envs,
)
from accelrl.envs.vec import (
    BatchedEnv,
    BatchedWrapper,
    EpisodeStatistics,
    NormalizeObservation,
    VecEnv,
    as_batched,
)

# Environment modules register their ids on import (keep this list in sync with docs/envs/).
from accelrl.envs import _builtin  # noqa: E402,F401  isort: skip
from accelrl.envs.gymnasium_adapter import register_all as _register_gymnasium  # noqa: E402

_register_gymnasium()

__all__ = [
    "GYMNAX_KNOWN_FAULTS",
    "BatchedEnv",
    "BatchedWrapper",
    "EpisodeStatistics",
    "MultiAgentEnv",
    "MultiAgentEnvParams",
    "NormalizeObservation",
    "UnknownEnvironmentError",
    "VecEnv",
    "as_batched",
    "is_multi_agent",
    "make",
    "register",
    "registered_envs",
]
