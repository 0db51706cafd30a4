"""MallocGame-v0: mapping an ML program's buffers into fast memory (see docs/envs/malloc_game.md).

>>> from accelrl.envs import make
>>> env, params = make("MallocGame-v0")                     # first training program
>>> from accelrl.envs.malloc import MallocGame, load_dataset
>>> env, params = MallocGame.for_workloads(load_dataset("train"))  # [B, N] params, one per copy
"""

from accelrl.envs.malloc.game import (
    EnvParams,
    EnvState,
    MallocGame,
    best_fit_policy,
    lowest_offset_policy,
    offsets_in_bytes,
    play,
    random_policy,
    required_slots,
    rollout,
    sweep_for,
    workload_from_params,
)
from accelrl.envs.malloc.plot import figure_to_rgb, plot_placement
from accelrl.envs.malloc.solvers import (
    RULES,
    PlacementError,
    capacity_lp_bound,
    first_fit,
    greedy,
    greedy_rules,
    optimal,
    placed_bytes_fraction,
    portfolio,
    validate,
    xla_best_fit,
)
from accelrl.envs.malloc.workload import (
    DEFAULT_FAST_BW,
    DEFAULT_SLOW_BW,
    ORDERS,
    SPLITS,
    Workload,
    benefit_seconds,
    dataset_index,
    load_dataset,
    validation_programs,
)
from accelrl.envs.registry import register

register("MallocGame-v0", MallocGame)

__all__ = [
    "DEFAULT_FAST_BW",
    "DEFAULT_SLOW_BW",
    "ORDERS",
    "RULES",
    "SPLITS",
    "EnvParams",
    "EnvState",
    "MallocGame",
    "PlacementError",
    "Workload",
    "benefit_seconds",
    "best_fit_policy",
    "capacity_lp_bound",
    "dataset_index",
    "figure_to_rgb",
    "first_fit",
    "greedy",
    "greedy_rules",
    "load_dataset",
    "lowest_offset_policy",
    "offsets_in_bytes",
    "optimal",
    "placed_bytes_fraction",
    "play",
    "plot_placement",
    "portfolio",
    "random_policy",
    "required_slots",
    "rollout",
    "sweep_for",
    "validate",
    "validation_programs",
    "workload_from_params",
    "xla_best_fit",
]
