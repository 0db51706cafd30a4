"""The ThreeBody-v0 environments: params, state, reset and step, reward and observation.

One decision chooses the Hermite time-step parameter ``mu`` and integrates to the next check
time (0.1 yr grid) or for ``max_substeps_per_decision`` substeps, whichever comes first (see the
package docstring). Physics runs in float64 inside ``jax.enable_x64(True)`` scopes; the state
holds float64 leaves and observations are float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from accelrl.envs.checks import ParamChecker, check_int
from accelrl.envs.three_body.integrator import (
    CRITERIA,
    HermiteState,
    hermite_advance,
    hermite_init,
)
from accelrl.envs.three_body.physics import F64, G_AU_MSUN_YR, KMS_IN_AU_PER_YR, total_energy
from accelrl.envs.three_body.render import render_orbits

PAPER_MU_VALUES: tuple[float, ...] = tuple(float(v) for v in 10.0 ** np.linspace(-4, -1, 10))
"""The paper's 10 log-spaced time-step parameters, 1e-4 ... 1e-1."""

DEFAULT_MAX_SUBSTEPS_PER_DECISION: int = 32
"""Default cap C on Hermite substeps per decision (measured trade-off: docs/envs/three_body.md)."""

UNBOUNDED_SUBSTEPS: int = 2**31 - 1
"""A substep cap C no decision reaches (the largest int32): one decision per check time."""


@struct.dataclass
class EnvParams:
    """Everything a curriculum or tuner may vary (shapes fixed). Defaults: the paper's setup."""

    mu_values: jax.Array = struct.field(
        default_factory=lambda: jnp.asarray(PAPER_MU_VALUES, jnp.float32)
    )
    """Discrete actions: the time-step parameters to choose from, shape (num_actions,)."""
    log_mu_low: float = -4.0
    """Continuous variant: lowest log10 mu (actions are clipped to [low, high])."""
    log_mu_high: float = -1.0
    """Continuous variant: highest log10 mu."""
    initial_mu: float = 1e-4
    """mu reported in the state at reset (the paper starts at 1e-4)."""
    check_interval: float = 0.1
    """Physical time between check times, yr."""
    num_checks: int = 100
    """Check times per episode (100 in training = 10 yr, 300 in evaluation)."""
    max_decisions: int = 10_000
    """Cap on all decisions (check times plus extra decisions inside encounters): truncates.
    With C = 32, fixed mu = 1e-4 averages ~80 decisions per check interval (~8,000 for 100)."""
    max_substeps_per_decision: int = DEFAULT_MAX_SUBSTEPS_PER_DECISION
    """C: a decision ends after this many substeps if the check time is not reached."""
    criterion: int = 0
    """Step criterion: 0 collision time (AMUSE Hermite, the paper), 1 Aarseth."""
    energy_error_limit: float = 0.1
    """Terminate when |dE| exceeds this."""
    w_energy: float = 3000.0
    """W0: weight of the energy-error term."""
    w_action: float = 4.0
    """W2: weight of the W2 / |log10 mu| term (rewards large steps)."""
    w_compute: float = 0.0
    """Extra compute-cost term: reward -= w_compute * substeps of the decision (0 = paper)."""
    energy_term_per_time: bool = True
    """Divide the energy term by t (the paper: errors weigh less as the episode goes on);
    False: the undivided term at every decision (preset ``"steady"``)."""
    time_weighted_reward: bool = True
    """Scale the paper's reward by the fraction of the check interval a decision covered (1 for
    decisions that land on check times; extra decisions inside encounters earn their share)."""
    energy_reference: float = 1e-10
    """Error at which the energy term changes sign (the 1e-10 in log10(|dE| / 1e-10))."""
    reward_error_cap: float = 0.1
    """|dE| is clipped to this in the reward (keeps the terminal reward finite near |dE| = 1);
    ``inf``: the authors' unbounded terminal penalty (preset ``"paper"``)."""
    step_limit_terminates: bool = False
    """Reaching ``num_checks`` check times *terminates* the episode (no bootstrap), as the
    authors' environment does; False (default) truncates it."""
    ic_low: jax.Array = struct.field(
        default_factory=lambda: jnp.asarray([5.0, 0.0, -10.0, 5.0], jnp.float32)
    )
    """Lower bounds of (x1, y1, x2, y2), au."""
    ic_high: jax.Array = struct.field(
        default_factory=lambda: jnp.asarray([20.0, 10.0, 0.0, 20.0], jnp.float32)
    )
    """Upper bounds of (x1, y1, x2, y2), au."""
    masses: jax.Array = struct.field(default_factory=lambda: jnp.ones(3, jnp.float32))
    """Masses, Msun, shape (3,)."""
    initial_speed_kms: float = 10.0
    """Speed of bodies 0 (+y) and 1 (-x) at reset, km/s."""
    G: float = G_AU_MSUN_YR
    """Gravitational constant, au^3 / (Msun yr^2)."""

    @property
    def max_steps_in_episode(self) -> int:
        """gymnax's name for the step cap (evaluation loops read it): ``max_decisions``."""
        return self.max_decisions


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # The authors' decision process (facts: shared/reference/three_body.md): one decision per
    # 0.1 yr check time (C unbounded, so every decision reaches its check time and t in the
    # reward is the integer decision index), the unbounded terminal penalty (no |dE| clip in
    # the reward) and termination, not truncation, at the step limit. max_decisions equals
    # num_checks: with one decision per check time they coincide.
    "paper": {
        "max_substeps_per_decision": UNBOUNDED_SUBSTEPS,
        "reward_error_cap": float("inf"),
        "step_limit_terminates": True,
        "max_decisions": 100,
    },
    # The default formulation with the energy term not divided by t: an error costs the same
    # late in an episode as early (the paper's 1/t makes late errors nearly free, while the
    # evaluation judges the final |dE| after 300 check times).
    "steady": {"energy_term_per_time": False},
    # The default formulation with every reward weight divided by 100: the same optimal
    # policy, returns of order 1 (for learners without a reward-scale setting, such as SAC,
    # whose critic regresses the raw returns and whose entropy temperature is relative to them).
    "scaled": {"w_energy": 30.0, "w_action": 0.04},
}
"""Named ``EnvParams`` overrides: ``make("ThreeBody-v0", preset=name)`` (``accelrl-train
--env_kwargs '{"preset": "paper"}'``) makes an environment whose ``default_params`` carry them.
``"default"`` is the fast default formulation (C = 32, clipped terminal penalty, truncation);
``"steady"`` is it without the 1/t on the energy term; ``"scaled"`` is it with the reward
divided by 100."""


def preset_params(name: str, params: EnvParams | None = None) -> EnvParams:
    """``params`` (default: ``EnvParams()``) with the overrides of preset ``name``.

    Raises:
        ValueError: an unknown preset name (the message lists the known ones).
    """
    _check_preset(name)
    params = EnvParams() if params is None else params
    return params.replace(**PRESETS[name])


def _check_preset(name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"ThreeBody preset must be a string, got {name!r} ({type(name).__name__})")
    if name not in PRESETS:
        raise ValueError(f"unknown ThreeBody preset {name!r}; choose one of {sorted(PRESETS)}")


def evaluation_params(params: EnvParams | None = None) -> EnvParams:
    """The paper's evaluation protocol: 300 check times (30 yr) instead of 100 (and 3x the
    decision cap)."""
    params = EnvParams() if params is None else params
    return params.replace(num_checks=300, max_decisions=3 * params.max_decisions)


@struct.dataclass
class EnvState:
    """One episode's state; physics leaves are float64 jax arrays."""

    hermite: HermiteState
    """Integrator state (float64)."""
    energy0: jax.Array
    """Energy at reset (float64)."""
    energy_error: jax.Array
    """Relative energy error (E - E0) / E0 (float64)."""
    mu: jax.Array
    """Time-step parameter of the last decision (float32)."""
    checks: jax.Array
    """Check times reached (int32)."""
    time: jax.Array
    """Decisions taken (int32)."""
    substeps: jax.Array
    """Substeps of the last decision (int32)."""
    total_substeps: jax.Array
    """Substeps since reset: the compute cost (int32)."""
    blew_up: jax.Array
    """Whether the integration produced a non-finite state (bool; the last finite is kept)."""


def _param64(x: Any) -> jax.Array:
    """A float param as float64, rounded to float32 first (call inside an x64 scope).

    Params passed through ``jit`` in the default mode arrive as float32 while Python floats stay
    exact; rounding both the same way keeps reset and step consistent (E0 and E use one G).
    """
    return jnp.asarray(x, jnp.float32).astype(F64)


def _uniform53(bits: jax.Array) -> jax.Array:
    """Float64 uniforms in [0, 1) with 53 random bits from uint32 pairs [..., 2] (x64 scope)."""
    hi = (bits[..., 0] >> 6).astype(F64)  # 26 bits
    lo = (bits[..., 1] >> 5).astype(F64)  # 27 bits
    return (hi * 2.0**27 + lo) / 2.0**53


def initial_conditions(key: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
    """The paper's initial-condition distribution, in the centre-of-mass frame (float64).

    Returns:
        ``(pos (3, 2), vel (3, 2))`` in au and au/yr.
    """
    bits = jax.random.bits(key, (4, 2), jnp.uint32)  # drawn in the default (32-bit) mode
    with jax.enable_x64(True):
        low = _param64(params.ic_low)
        high = _param64(params.ic_high)
        k = low + (high - low) * _uniform53(bits)
        zero = jnp.zeros((), F64)
        pos = jnp.stack([jnp.stack([zero, zero]), k[0:2], k[2:4]])
        v = _param64(params.initial_speed_kms) * KMS_IN_AU_PER_YR
        vel = jnp.stack([jnp.stack([zero, v]), jnp.stack([-v, zero]), jnp.stack([zero, zero])])
        m = _param64(params.masses)[:, None]
        pos = pos - jnp.sum(m * pos, 0) / jnp.sum(m)
        vel = vel - jnp.sum(m * vel, 0) / jnp.sum(m)
        return pos, vel


def paper_reward(energy_error: jax.Array, mu: jax.Array, t: jax.Array, params: EnvParams):
    """The paper's reward R = -W0 log10(|dE| / 1e-10) / (|log10|dE||^3 t) + W2 / |log10 mu|.

    Args:
        energy_error: relative energy error dE (any sign); |dE| is clipped to
            [1e-16, ``params.reward_error_cap``] so the value stays finite.
        mu: time-step parameter of the decision.
        t: time in check intervals (the paper's decision index).
        params: weights ``w_energy`` (W0), ``w_action`` (W2) and ``energy_reference`` (1e-10).

    Returns:
        Scalar float64 (inside an x64 scope; float32 outside). A non-finite ``energy_error``
        (a blown-up integration) counts as |dE| = 1 when the cap is unbounded, the formula's
        singular point, floored to a finite value by the ``1e-6`` below.
    """
    abs_err = jnp.abs(energy_error)
    abs_err = jnp.where(jnp.isfinite(abs_err), abs_err, jnp.minimum(params.reward_error_cap, 1.0))
    abs_err = jnp.clip(abs_err, 1e-16, params.reward_error_cap)
    log_err = jnp.log10(abs_err)
    log_ref = jnp.log10(jnp.asarray(params.energy_reference, abs_err.dtype))
    denom = jnp.maximum(jnp.abs(log_err), 1e-6) ** 3 * t
    energy_term = -params.w_energy * (log_err - log_ref) / denom
    abs_log_mu = jnp.maximum(jnp.abs(jnp.log10(jnp.asarray(mu, abs_err.dtype))), 1e-6)
    return energy_term + params.w_action / abs_log_mu


class ThreeBody(environment.Environment):
    """Choose the Hermite time-step parameter mu (discrete, ``num_actions`` values).

    Observation (13 float32): x, y of the 3 bodies / 10 au; vx, vy in N-body velocity units
    (sqrt(G M_total / 1 au)); -log10|dE| (0 at reset).
    Reward (paper): R = -W0 log10(|dE| / 1e-10) / (|log10|dE||^3 t) + W2 / |log10 mu|
    with t the physical time in check intervals (at least 1), R = 0 at the first decision of an
    episode; a decision cut short by the substep cap earns the covered fraction of the interval
    (``time_weighted_reward``); minus ``w_compute * substeps`` (0 by default).

    Args:
        num_actions: number of log-spaced mu values (an integer >= 1; floats and strings are
            refused).
        preset: a :data:`PRESETS` name.

    Inputs: the constructor and :meth:`check_params` check on the host (the adapters and agents
    call it). Inside jitted code nothing is checked, by JAX's conventions: an out-of-range
    discrete action indexes ``mu_values`` clamped (``-1`` and ``99`` both pick an end value),
    a continuous action is clipped to ``[log_mu_low, log_mu_high]``, and params that
    :meth:`check_params` would refuse (masses <= 0, a NaN speed) give NaN observations.
    """

    def __init__(self, num_actions: int = 10, preset: str = "default"):
        super().__init__()
        num_actions = check_int("ThreeBody: num_actions", num_actions, minimum=1)
        _check_preset(preset)
        self._num_actions = num_actions
        self.preset = preset
        """Name of the :data:`PRESETS` entry ``default_params`` applies."""

    @property
    def name(self) -> str:
        return "ThreeBody-v0"

    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def default_params(self) -> EnvParams:
        values = 10.0 ** np.linspace(-4, -1, self._num_actions)
        return preset_params(self.preset, EnvParams(mu_values=jnp.asarray(values, jnp.float32)))

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (13,), jnp.float32)

    def check_params(self, params: EnvParams) -> None:
        """Refuse params that would give NaN or a meaningless episode (host side, not in jit).

        Called by :func:`accelrl.envs.checks.check_params` after its structure, shape and NaN
        checks; leaves may carry leading batch axes.

        Raises:
            ValueError: one line naming the field and the first offending index: masses, G,
                check_interval, mu_values, initial_mu and energy_reference must be > 0 and
                finite; reward_error_cap and energy_error_limit > 0 (``inf`` allowed);
                num_checks, max_decisions, max_substeps_per_decision integers >= 1;
                criterion one of :data:`CRITERIA`'s values; the weights, the speed and the
                initial-condition box finite, with ``ic_low <= ic_high``, ``log_mu_low <=
                log_mu_high`` and no two bodies forced to one position.
        """
        c = ParamChecker(self.name, params)
        c.trailing_shape("masses", (3,))
        c.trailing_shape("ic_low", (4,))
        c.trailing_shape("ic_high", (4,))
        c.positive("masses", "G", "check_interval", "mu_values", "initial_mu", "energy_reference")
        c.positive("reward_error_cap", "energy_error_limit", finite=False)
        c.integer("num_checks", "max_decisions", "max_substeps_per_decision", minimum=1)
        c.require("criterion", lambda v: np.isin(v, list(CRITERIA.values())), "unknown criterion")
        c.flag("energy_term_per_time", "time_weighted_reward", "step_limit_terminates")
        c.finite("w_energy", "w_action", "w_compute", "initial_speed_kms", "ic_low", "ic_high")
        c.finite("log_mu_low", "log_mu_high")
        low, high = c.value("ic_low"), c.value("ic_high")
        c.require("ic_high", lambda h: h >= low, "must be >= ic_low")
        c.require("log_mu_high", lambda h: h >= c.value("log_mu_low"), "must be >= log_mu_low")
        # bodies whose box is a single point: body 0 sits at the origin (before the COM shift)
        fixed = np.stack(
            [np.zeros_like(low[..., 0:2]), low[..., 0:2], low[..., 2:4]], axis=-2
        )  # [..., 3, 2]
        point = np.stack(
            [np.ones(low.shape[:-1], bool)]
            + [np.all(low[..., k : k + 2] == high[..., k : k + 2], axis=-1) for k in (0, 2)],
            axis=-1,
        )  # [..., 3]
        for i, j in ((0, 1), (0, 2), (1, 2)):
            same = point[..., i] & point[..., j]
            same &= np.all(fixed[..., i, :] == fixed[..., j, :], axis=-1)
            if same.any():
                raise ValueError(
                    f"{self.name} params: ic_low == ic_high puts bodies {i} and {j} at the same "
                    "position (an infinite force)"
                )

    def action_to_mu(self, action: jax.Array, params: EnvParams) -> jax.Array:
        """mu for an action index (float32 scalar)."""
        return jnp.asarray(params.mu_values, jnp.float32)[jnp.asarray(action, jnp.int32)]

    # --- dynamics ------------------------------------------------------------------------

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        with jax.enable_x64(True):
            pos, vel = initial_conditions(key, params)
            mass, G = _param64(params.masses), _param64(params.G)
            h = hermite_init(pos, vel, mass, G, params.criterion)
            state = EnvState(
                hermite=h,
                energy0=total_energy(pos, vel, mass, G),
                energy_error=jnp.zeros((), F64),
                mu=jnp.asarray(params.initial_mu, jnp.float32),
                checks=jnp.zeros((), jnp.int32),
                time=jnp.zeros((), jnp.int32),
                substeps=jnp.zeros((), jnp.int32),
                total_substeps=jnp.zeros((), jnp.int32),
                blew_up=jnp.zeros((), bool),
            )
        return self.get_obs(state, params), state

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        mu = self.action_to_mu(action, params)
        with jax.enable_x64(True):
            mass, G = _param64(params.masses), _param64(params.G)
            interval = _param64(params.check_interval)

            # INTEGRATE to the next check time or for C substeps
            t_check = (state.checks + 1).astype(F64) * interval
            h, n = hermite_advance(
                state.hermite,
                mass,
                G,
                mu.astype(F64),
                t_check,
                params.max_substeps_per_decision,
                params.criterion,
            )
            energy = total_energy(h.pos, h.vel, mass, G)
            error = (energy - state.energy0) / state.energy0

            # CLOSE ENCOUNTERS: keep the last finite state and terminate
            finite = jnp.all(jnp.isfinite(h.pos)) & jnp.all(jnp.isfinite(h.vel))
            finite = finite & jnp.isfinite(error) & jnp.isfinite(h.t)
            h = jax.tree.map(lambda a, b: jnp.where(finite, a, b), h, state.hermite)
            error = jnp.where(finite, error, jnp.asarray(jnp.inf, F64))
            reached = finite & (h.t >= t_check)

            # REWARD (paper's, with t in check intervals)
            t_units = jnp.maximum(h.t / interval, 1.0)
            t_units = jnp.where(params.energy_term_per_time, t_units, 1.0)
            reward = paper_reward(error, mu, t_units, params)
            # a decision covering part of a check interval earns that fraction (no effect when
            # decisions land on check times; keeps the return per physical time independent of C)
            t_prev_check = state.checks.astype(F64) * interval
            whole = ~finite | (reached & (state.hermite.t == t_prev_check))
            covered = jnp.where(whole, 1.0, (h.t - state.hermite.t) / interval)
            reward = reward * jnp.where(params.time_weighted_reward, covered, 1.0)
            reward = reward - params.w_compute * n.astype(F64)
            reward = jnp.where(state.time == 0, 0.0, reward).astype(jnp.float32)

            new = EnvState(
                hermite=h,
                energy0=state.energy0,
                energy_error=jnp.where(finite, error, state.energy_error),
                mu=mu,
                checks=state.checks + reached.astype(jnp.int32),
                time=state.time + 1,
                substeps=n,
                total_substeps=state.total_substeps + n,
                blew_up=~finite,
            )
            terminated = (~finite) | (jnp.abs(error) > params.energy_error_limit)
            at_limit = new.checks >= params.num_checks
            terminated = terminated | (params.step_limit_terminates & at_limit)
            info = {
                # a blow-up reports |dE| = 1 (finite, and far beyond any termination limit)
                "energy_error": jnp.where(finite, jnp.abs(error), 1.0).astype(jnp.float32),
                "substeps": n,
                "total_substeps": new.total_substeps,
                "reached_check": reached,
                "checks": new.checks,
                "physical_time": h.t.astype(jnp.float32),
                "mu": mu,
                "blew_up": ~finite,
            }
        return self.get_obs(new, params), new, reward, terminated, info

    def get_obs(self, state: EnvState, params: EnvParams, key: Any = None) -> jax.Array:
        with jax.enable_x64(True):
            h = state.hermite
            v_unit = jnp.sqrt(_param64(params.G) * jnp.sum(_param64(params.masses)))
            err = jnp.abs(state.energy_error)
            log_err = jnp.where(err > 0.0, -jnp.log10(jnp.maximum(err, 1e-16)), 0.0)
            obs = jnp.concatenate(
                [h.pos.reshape(-1) / 10.0, h.vel.reshape(-1) / v_unit, log_err[None]]
            )
            return obs.astype(jnp.float32)

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return self.is_terminated(state, params) | self.is_truncated(state, params)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        with jax.enable_x64(True):
            failed = state.blew_up | (jnp.abs(state.energy_error) > params.energy_error_limit)
        at_limit = state.checks >= params.num_checks
        return failed | (params.step_limit_terminates & at_limit)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """The step limit (``num_checks`` check times, unless ``step_limit_terminates``) or the
        decision cap ``max_decisions``, on an episode that did not terminate at that limit."""
        at_limit = state.checks >= params.num_checks
        limit_ends = params.step_limit_terminates & at_limit
        return ~limit_ends & (at_limit | (state.time >= params.max_decisions))

    # --- rendering ---------------------------------------------------------------------------

    def render(self, states: list, params: EnvParams | None = None, size: int = 400) -> np.ndarray:
        """Orbits so far: ``states`` since reset (the last is current) -> uint8 [H, W, 3]."""
        return render_orbits(states, size=size)


class ThreeBodyContinuous(ThreeBody):
    """ThreeBody with a continuous action: log10 mu in [log_mu_low, log_mu_high], shape (1,).

    Actions outside the bounds are clipped to them inside jit; the gymnasium adapter refuses
    only NaN, infinities and other shapes.
    """

    def __init__(self, preset: str = "default"):
        _check_preset(preset)
        super().__init__(num_actions=10, preset=preset)

    @property
    def name(self) -> str:
        return "ThreeBodyContinuous-v0"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        return spaces.Box(params.log_mu_low, params.log_mu_high, (1,), jnp.float32)

    def action_to_mu(self, action: jax.Array, params: EnvParams) -> jax.Array:
        log_mu = jnp.clip(jnp.reshape(action, (-1,))[0], params.log_mu_low, params.log_mu_high)
        return (10.0**log_mu).astype(jnp.float32)
