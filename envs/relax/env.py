"""The Relax-v0 environments: choose SOR's omega for each linear system of a sequence.

One step solves the pending instance with the chosen omega and draws the next one; the
observation is the next instance's context and the cost just paid. Solves run in float64
inside ``jax.enable_x64(True)`` scopes; observations are float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from accelrl.envs.checks import ParamChecker, check_choice, check_int
from accelrl.envs.relax.instances import (
    F64,
    FAMILIES,
    VARIANCES,
    heat_initial,
    heat_system,
    sample_offset,
    truncated_normal,
)
from accelrl.envs.relax.solvers import MAX_ITERATIONS, TOLERANCE, sor_solve, ssor_pcg_solve

OMEGA_LOW: float = 1.0
"""Lowest omega of the default grid (and of the continuous variant's range)."""

OMEGA_HIGH: float = 1.9
"""Highest omega of the default grid (and of the continuous variant's range)."""

DEFAULT_GRID_SIZE: dict[str, int] = {"shift": 10, "heat": 24}
"""Unknowns per side by family: ``numgrid('S', 12)`` (100 unknowns) and the heat script's
coarsest ``nx = 25`` (24 x 24 = 576)."""

DEFAULT_NUM_INSTANCES: dict[str, int] = {"shift": 100, "heat": 5000}
"""Instances per episode by family: short i.i.d. sequences for shift; the heat script's whole
simulation (5,000 steps of 0.001 from t = 0) for heat, whose systems depend on the time."""


@struct.dataclass
class EnvParams:
    """Everything a curriculum or tuner may vary (shapes fixed)."""

    omega_values: jax.Array = struct.field(
        default_factory=lambda: jnp.linspace(OMEGA_LOW, OMEGA_HIGH, 19, dtype=jnp.float32)
    )
    """Discrete actions: the omegas to choose from, shape (num_actions,)."""
    omega_low: float = OMEGA_LOW
    """Continuous variant: lowest omega (actions are clipped to [low, high])."""
    omega_high: float = OMEGA_HIGH
    """Continuous variant: highest omega."""
    num_instances: int = 100
    """T: linear systems per episode (the paper's sequences have 5,000); truncates."""
    tolerance: float = TOLERANCE
    """Relative residual at which a solve stops."""
    cost_scale: float = 100.0
    """Reward = -(iterations - 1) / cost_scale (the authors' 100)."""
    c_low: float = -0.15
    """Shift family: ``c = c_low + c_scale * Beta(beta_a, beta_b)``."""
    c_scale: float = 0.6
    """Shift family: width of the offset's range."""
    beta_a: float = VARIANCES["high"][0]
    """Shift family: first Beta parameter (0.5 high variance, 2 low variance)."""
    beta_b: float = VARIANCES["high"][1]
    """Shift family: second Beta parameter (1.5 high variance, 6 low variance)."""
    dt: float = 5.0 / 5000
    """Heat family: time step."""
    kappa_up: float = 0.1
    """Heat family: ``kappa(t) = max(kappa_up sin(2 pi t), -kappa_down sin(2 pi t))``."""
    kappa_down: float = 10.0
    """Heat family: see ``kappa_up``."""
    forcing_height: float = 32.0
    """Heat family: height of the moving source bump."""
    forcing_radius: float = 0.125
    """Heat family: radius of the source bump."""
    forcing_orbit: float = 0.25
    """Heat family: radius of the source's circle around the centre."""
    forcing_turns: float = 8.0
    """Heat family: source turns per time unit."""
    initial_radius: float = 0.25
    """Heat family: radius of the initial bump."""

    @property
    def max_steps_in_episode(self) -> int:
        """gymnax's name for the step cap: ``num_instances``."""
        return self.num_instances


@struct.dataclass
class EnvState:
    """The pending instance and the episode's counters; vectors are float64 [n, n]."""

    context: jax.Array
    """The pending instance's context: the offset c (shift) or kappa at the half step (heat)
    (float64)."""
    alpha: jax.Array
    """Pending matrix ``alpha L + beta I`` (float64)."""
    beta: jax.Array
    """See ``alpha`` (float64)."""
    b: jax.Array
    """Pending right-hand side, float64 [n, n]."""
    u: jax.Array
    """Heat family: the current solution (the warm start), float64 [n, n]; zeros for shift."""
    sim_time: jax.Array
    """Heat family: simulation time of the pending step (float64)."""
    sequence_seed: jax.Array
    """Seed of the episode's instance sequence (uint32, drawn from the reset key; instance t
    uses ``fold_in(key(seed), t)``), so the sequence depends on the reset key alone and
    policies can be compared on the same instances."""
    last_iterations: jax.Array
    """Iterations of the last solve (int32; 0 at reset)."""
    total_iterations: jax.Array
    """Iterations since reset (int32)."""
    time: jax.Array
    """Instances solved (int32)."""


class Relax(environment.Environment):
    """Choose SOR's relaxation parameter omega (discrete, ``num_actions`` values) per instance.

    Observation (2 float32): the pending instance's context (c, or the diffusion coefficient)
    and the last cost ``(iterations - 1) / cost_scale`` (0 at reset).
    Reward: ``-(iterations - 1) / cost_scale`` of the instance just solved.
    Episode: ``num_instances`` instances, then truncation; never terminated.

    Args:
        family: ``"shift"`` (SOR on ``L + c I``) or ``"heat"`` (SSOR-preconditioned CG on the
            heat equation's Crank-Nicolson systems, warm-started).
        grid_size: unknowns per side (default 10 for shift, 24 for heat).
        num_actions: size of the default omega grid over ``[1, 1.9]``.
        num_instances: T, the default params' instances per episode (default 100 for shift,
            5,000 for heat).
        variance: ``"high"`` or ``"low"``: the default params' offset distribution (shift).
        max_iterations: iteration cap of a solve (10,000).
    """

    def __init__(
        self,
        family: str = "shift",
        grid_size: int | None = None,
        num_actions: int = 19,
        num_instances: int | None = None,
        variance: str = "high",
        max_iterations: int = MAX_ITERATIONS,
    ):
        super().__init__()
        family = check_choice("Relax: family", family, FAMILIES)
        variance = check_choice("Relax: variance", variance, VARIANCES)
        grid_size = DEFAULT_GRID_SIZE[family] if grid_size is None else grid_size
        if num_instances is None:
            num_instances = DEFAULT_NUM_INSTANCES[family]
        grid_size = check_int("Relax: grid_size", grid_size, minimum=2)
        num_actions = check_int("Relax: num_actions", num_actions, minimum=1)
        num_instances = check_int("Relax: num_instances", num_instances, minimum=1)
        max_iterations = check_int("Relax: max_iterations", max_iterations, minimum=1)
        self.family = family
        """Instance family (``"shift"`` or ``"heat"``)."""
        self.grid_size = grid_size
        """Unknowns per side n (N = n^2 unknowns)."""
        self._num_actions = num_actions
        self.num_instances = num_instances
        """T of ``default_params``."""
        self.variance = variance
        """Offset distribution of ``default_params`` (shift family)."""
        self.max_iterations = max_iterations
        """Iteration cap of one solve."""

    @property
    def name(self) -> str:
        return "Relax-v0"

    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def default_params(self) -> EnvParams:
        a, b = VARIANCES[self.variance]
        omegas = jnp.linspace(OMEGA_LOW, OMEGA_HIGH, self._num_actions, dtype=jnp.float32)
        return EnvParams(omega_values=omegas, num_instances=self.num_instances, beta_a=a, beta_b=b)

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def check_params(self, params: EnvParams) -> None:
        """Refuse params that would give a meaningless sequence (host side, not in jit).

        Called by :func:`accelrl.envs.checks.check_params` after its structure, shape and NaN
        checks; leaves may carry leading batch axes.

        Raises:
            ValueError: one line naming the field and the first offending index: omegas
                (grid and continuous range) in (0, 2) with ``omega_low <= omega_high``,
                ``num_instances`` an integer >= 1, ``tolerance``, ``cost_scale``, ``c_scale``,
                the Beta parameters, ``dt`` and the bump radii > 0, the rest finite.
        """
        c = ParamChecker(self.name, params)
        c.positive("omega_values", "omega_low", "omega_high", "tolerance", "cost_scale")
        c.positive("c_scale", "beta_a", "beta_b", "dt", "forcing_radius", "initial_radius")
        for field in ("omega_values", "omega_low", "omega_high"):
            c.require(field, lambda v: v < 2.0, "must be < 2 (SOR diverges from omega = 2)")
        c.require("omega_high", lambda h: h >= c.value("omega_low"), "must be >= omega_low")
        c.integer("num_instances", minimum=1)
        c.nonnegative("kappa_up", "kappa_down")
        c.finite("c_low", "forcing_height", "forcing_orbit", "forcing_turns")

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)

    def action_to_omega(self, action: jax.Array, params: EnvParams) -> jax.Array:
        """omega for an action index (float32 scalar)."""
        return jnp.asarray(params.omega_values, jnp.float32)[jnp.asarray(action, jnp.int32)]

    # --- instances and solves ------------------------------------------------------------

    def _instance(
        self, seed: jax.Array, t: jax.Array, u: jax.Array, sim_time: jax.Array, params
    ) -> dict[str, jax.Array]:
        """Instance ``t`` of the sequence (x64 scope): context, alpha, beta, b."""
        n = self.grid_size
        if self.family == "shift":
            with jax.enable_x64(False):  # draws in 32-bit mode (same streams in any mode)
                key = jax.random.fold_in(jax.random.key(seed), t)
                k_c, k_b = jax.random.split(key)
                c = sample_offset(k_c, params)
                b = truncated_normal(k_b, n)
            c = c.astype(F64)
            return {"context": c, "alpha": jnp.ones((), F64), "beta": c, "b": b.astype(F64)}
        alpha, beta, b, kappa = heat_system(u, sim_time, params)
        return {"context": kappa, "alpha": alpha, "beta": beta, "b": b}

    def solve(self, state: EnvState, omega: jax.Array, params: EnvParams):
        """Solve the pending instance with ``omega`` (x64 scope): ``(iterations, x [n, n])``."""
        if self.family == "shift":
            return sor_solve(
                state.alpha,
                state.beta,
                state.b,
                jnp.zeros_like(state.b),
                omega,
                params.tolerance,
                self.max_iterations,
            )
        return ssor_pcg_solve(
            state.alpha,
            state.beta,
            state.b,
            state.u,
            omega,
            params.tolerance,
            self.max_iterations,
        )

    # --- dynamics ------------------------------------------------------------------------

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        n = self.grid_size
        seed = jax.random.bits(key, (), jnp.uint32)  # drawn in the default (32-bit) mode
        with jax.enable_x64(True):
            if self.family == "heat":
                u = heat_initial(n, params).astype(F64)
            else:
                u = jnp.zeros((n, n), F64)
            t0 = jnp.zeros((), jnp.int32)
            sim_time = jnp.zeros((), F64)
            inst = self._instance(seed, t0, u, sim_time, params)
            state = EnvState(
                u=u,
                sim_time=sim_time,
                sequence_seed=seed,
                last_iterations=t0,
                total_iterations=t0,
                time=t0,
                **inst,
            )
        return self.get_obs(state, params), state

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        omega = self.action_to_omega(action, params)
        with jax.enable_x64(True):
            iterations, x = self.solve(state, omega, params)
            if self.family == "heat":
                u = x
                sim_time = state.sim_time + jnp.asarray(params.dt).astype(F64)
            else:
                u, sim_time = state.u, state.sim_time
            t = state.time + 1
            inst = self._instance(state.sequence_seed, t, u, sim_time, params)
            new = EnvState(
                u=u,
                sim_time=sim_time,
                sequence_seed=state.sequence_seed,
                last_iterations=iterations,
                total_iterations=state.total_iterations + iterations,
                time=t,
                **inst,
            )
        reward = -(iterations - 1).astype(jnp.float32) / params.cost_scale
        info = {
            "iterations": iterations,
            "omega": omega,
            "context": state.context.astype(jnp.float32),
            "total_iterations": new.total_iterations,
        }
        return self.get_obs(new, params), new, reward, jnp.zeros((), bool), info

    def get_obs(self, state: EnvState, params: EnvParams, key: Any = None) -> jax.Array:
        cost = (state.last_iterations - 1).astype(jnp.float32) / params.cost_scale
        cost = jnp.where(state.time == 0, 0.0, cost)
        return jnp.stack([state.context.astype(jnp.float32), cost])

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.zeros((), bool)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.time >= params.num_instances


class RelaxContinuous(Relax):
    """Relax with a continuous action: omega in ``[omega_low, omega_high]``, shape (1,)."""

    def __init__(
        self,
        family: str = "shift",
        grid_size: int | None = None,
        num_instances: int | None = None,
        variance: str = "high",
        max_iterations: int = MAX_ITERATIONS,
    ):
        super().__init__(family, grid_size, 19, num_instances, variance, max_iterations)

    @property
    def name(self) -> str:
        return "RelaxContinuous-v0"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        return spaces.Box(params.omega_low, params.omega_high, (1,), jnp.float32)

    def action_to_omega(self, action: jax.Array, params: EnvParams) -> jax.Array:
        omega = jnp.reshape(jnp.asarray(action, jnp.float32), (-1,))[0]
        return jnp.clip(omega, params.omega_low, params.omega_high)
