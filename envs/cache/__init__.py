"""CacheReplacement-v0: choose the line to evict from a full cache set (see
docs/envs/cache_replacement.md).

>>> from accelrl.envs import make
>>> env, params = make("CacheReplacement-v0")                 # synthetic Zipf/loop/scan mixture
>>> from accelrl.envs.cache import program_traces
>>> params = env.params_for_traces(program_traces("test", env.episode_length))  # [B, ...]
"""

from accelrl.envs.cache.env import (
    POLICY_NAMES,
    CacheReplacement,
    EnvParams,
    EnvState,
    make_policy,
    next_use_times,
    rollout,
)
from accelrl.envs.cache.reference import BASELINES, s3fifo, simulate
from accelrl.envs.cache.traces import (
    SPLITS,
    Trace,
    matmul_trace,
    program_traces,
    stencil_trace,
    xla_trace,
)
from accelrl.envs.registry import register

register("CacheReplacement-v0", CacheReplacement)

__all__ = [
    "BASELINES",
    "POLICY_NAMES",
    "SPLITS",
    "CacheReplacement",
    "EnvParams",
    "EnvState",
    "Trace",
    "make_policy",
    "matmul_trace",
    "next_use_times",
    "program_traces",
    "rollout",
    "s3fifo",
    "simulate",
    "stencil_trace",
    "xla_trace",
]
