"""accelrl environments: one registry (``make``), base classes, batched wrappers, adapters.

>>> from accelrl.envs import make
>>> env, params = make("CartPole-v1")          # gymnax passthrough
>>> env, params = make("ThreeBody-v0")          # accelrl environment

Importing this package registers every accelrl id with gymnasium under ``accelrl/<id>``. It does
not import gymnax or the environment modules (gymnax imports its whole environment zoo: seconds);
``make`` imports them on first use of one of their ids.
"""

import importlib

from accelrl.envs.checks import check_params
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

# accelrl's ids and the modules that register them (imported by ``make`` on first use).
from accelrl.envs import _builtin  # noqa: E402  isort: skip
from accelrl.envs.gymnasium_adapter import register_all as _register_gymnasium  # noqa: E402

_register_gymnasium()


def __getattr__(name: str):
    """``accelrl.envs.mpe`` etc. without an explicit import (they are no longer imported eagerly)."""
    module = f"{__name__}.{name}"
    if module in _builtin.ENV_MODULES:
        return importlib.import_module(module)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "check_params",
    "is_multi_agent",
    "make",
    "register",
    "registered_envs",
]
