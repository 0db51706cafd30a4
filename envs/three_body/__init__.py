"""ThreeBody-v0: adaptive time-step control of the chaotic gravitational three-body problem.

Reproduces the formulation of Saz Ulibarrena & Portegies Zwart (arXiv 2502.12809): an agent
chooses the time-step parameter ``mu`` of a 4th-order Hermite integrator (shared adaptive step
``dt = mu * collision time``) once per check interval of 0.1 yr, trading energy error against
compute. Planar, three unit-mass bodies, units au / Msun / yr (``G = 4 pi^2``).

Physics runs in float64 inside ``jax.enable_x64(True)`` scopes (DESIGN.md, Precision), so the
rest of a program stays float32: the environment state holds float64 ``jax.Array`` leaves and
the observations handed to agents are float32.

Load balance: close encounters need ~100x more substeps than quiet stretches, and a vmapped
``while_loop`` runs every copy until the slowest is done. The environment therefore ends a
decision at the next check time *or* after ``max_substeps_per_decision`` (C) substeps, whichever
comes first. Check times stay on the 0.1 yr grid, so the trajectory does not depend on C; the
agent just gets extra decisions inside close encounters (``info["reached_check"]`` is False for
them) and these do not count toward the episode's 100 check times. The paper's decision
process (one decision per check time, C unbounded; the authors' unbounded terminal penalty and
their termination at the step limit) is the preset ``"paper"``: ``make("ThreeBody-v0",
preset="paper")``.

Modules: :mod:`.physics` (forces, energy, units), :mod:`.integrator` (Hermite substeps and the
lockstep batched loop), :mod:`.env` (the environments), :mod:`.render` (trajectory images).
Pure functions usable without the environment: :func:`integrate`, :func:`total_energy`,
:func:`hermite_init`, :func:`hermite_substep`, :func:`hermite_advance`, :func:`forces`,
:func:`coincident_bodies`.
"""

from accelrl.envs.registry import register
from accelrl.envs.three_body.env import (
    DEFAULT_MAX_SUBSTEPS_PER_DECISION,
    PAPER_MU_VALUES,
    PRESETS,
    UNBOUNDED_SUBSTEPS,
    EnvParams,
    EnvState,
    ThreeBody,
    ThreeBodyContinuous,
    evaluation_params,
    initial_conditions,
    paper_reward,
    preset_params,
)
from accelrl.envs.three_body.integrator import (
    CRITERIA,
    HermiteState,
    coincident_bodies,
    hermite_advance,
    hermite_init,
    hermite_substep,
    integrate,
)
from accelrl.envs.three_body.physics import (
    G_AU_MSUN_YR,
    KMS_IN_AU_PER_YR,
    as_float64,
    forces,
    total_energy,
)
from accelrl.envs.three_body.render import render_orbits

register("ThreeBody-v0", ThreeBody)
register("ThreeBodyContinuous-v0", ThreeBodyContinuous)

__all__ = [
    "CRITERIA",
    "DEFAULT_MAX_SUBSTEPS_PER_DECISION",
    "G_AU_MSUN_YR",
    "KMS_IN_AU_PER_YR",
    "PAPER_MU_VALUES",
    "PRESETS",
    "UNBOUNDED_SUBSTEPS",
    "EnvParams",
    "EnvState",
    "HermiteState",
    "ThreeBody",
    "ThreeBodyContinuous",
    "as_float64",
    "coincident_bodies",
    "evaluation_params",
    "forces",
    "hermite_advance",
    "hermite_init",
    "hermite_substep",
    "initial_conditions",
    "integrate",
    "paper_reward",
    "preset_params",
    "render_orbits",
    "total_energy",
]
