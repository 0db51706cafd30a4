"""Relax-v0: choose SOR's relaxation parameter omega across a sequence of linear systems.

Reproduces the setting of Khodak et al., "Learning to Relax: Setting Solver Parameters Across a
Sequence of Linear System Instances" (facts from the authors' MATLAB, ``mkhodak/learning-to-relax``;
the code here is new): each step the agent picks omega for the next system of a sequence, sees
that system's context (the diagonal offset c, or the heat equation's diffusion coefficient) and
the last cost, and pays the iterations the solver needed: reward ``-(iterations - 1) / 100``.
Two instance families (:mod:`.instances`): ``L + c I`` on a 10 x 10 grid with c drawn from the
paper's high- or low-variance Beta distributions, solved by SOR in natural ordering from zero;
and the 2-D heat equation's Crank-Nicolson systems, solved by SSOR-preconditioned CG warm-started
at the previous step's solution.

Solves run in float64 inside ``jax.enable_x64(True)`` scopes (DESIGN.md, Precision), as capped
``lax.while_loop``s (relative residual 1e-8, at most 10,000 iterations); observations are float32.

Modules: :mod:`.solvers` (SOR, SSOR-PCG, the spectral omega), :mod:`.instances` (the families),
:mod:`.env` (the environments), :mod:`.baselines` (best fixed omega in hindsight,
instance-optimal omega by golden-section search, Tsallis-INF and Tsallis-INF-CB),
:mod:`.reference` (NumPy/SciPy solvers: the test oracle and benchmark baseline).
"""

from accelrl.envs.registry import register
from accelrl.envs.relax.env import (
    DEFAULT_GRID_SIZE,
    OMEGA_HIGH,
    OMEGA_LOW,
    EnvParams,
    EnvState,
    Relax,
    RelaxContinuous,
)
from accelrl.envs.relax.instances import FAMILIES, VARIANCES
from accelrl.envs.relax.solvers import (
    MAX_ITERATIONS,
    TOLERANCE,
    laplacian_apply,
    sor_solve,
    spectral_omega,
    ssor_pcg_solve,
)

register("Relax-v0", Relax)
register("RelaxContinuous-v0", RelaxContinuous)

__all__ = [
    "DEFAULT_GRID_SIZE",
    "FAMILIES",
    "MAX_ITERATIONS",
    "OMEGA_HIGH",
    "OMEGA_LOW",
    "TOLERANCE",
    "VARIANCES",
    "EnvParams",
    "EnvState",
    "Relax",
    "RelaxContinuous",
    "laplacian_apply",
    "sor_solve",
    "spectral_omega",
    "ssor_pcg_solve",
]
