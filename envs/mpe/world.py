"""The shared particle world of the MPE scenarios: layout, state, params, physics, actions.

Semantics follow PettingZoo's MPE as maintained in ``mpe2`` 1.1 (``_mpe_utils/core.py`` and
``simple_env.py``): entities are the agents followed by the landmarks; each step decodes the
actions into forces and utterances, adds soft contact forces between colliding entities, then
integrates semi-implicitly (position with the old velocity, then damping, force and the speed
cap). Scenarios (one module each) only add their goals, observations, rewards and colours; the
base class :class:`MPEEnv` owns everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from accelrl.envs.checks import ParamChecker, check_choice
from accelrl.envs.multi_agent import MultiAgentEnv

#: Discrete movement actions ``[no_action, left, right, down, up]`` as unit directions.
MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], np.float32)
#: Number of discrete movement actions (``dim_p * 2 + 1``).
NUM_MOVES = 5
#: Acceleration of agents whose scenario sets none (mpe2's ``sensitivity``).
DEFAULT_ACCEL = 5.0


@dataclass(frozen=True)
class WorldLayout:
    """Static description of a world: everything that fixes shapes, names and roles."""

    agents: tuple[str, ...]
    """Agent names in mpe2's order (the dict keys of observations, actions, rewards)."""
    landmarks: tuple[str, ...]
    """Landmark names (entities after the agents; world_comm: obstacles, food, forests)."""
    dim_c: int
    """Communication channel size (``state.c`` is ``[num_agents, dim_c]``)."""
    movable: tuple[bool, ...]
    """Per agent: whether it moves (landmarks never move)."""
    silent: tuple[bool, ...]
    """Per agent: whether it cannot speak (its utterance is all zeros)."""
    collide: tuple[bool, ...]
    """Per entity (agents then landmarks): whether it takes part in contact forces."""
    size: tuple[float, ...]
    """Per entity: default radius (a param: ``params.size``)."""
    accel: tuple[float, ...]
    """Per agent: default acceleration multiplier of the movement action."""
    max_speed: tuple[float, ...]
    """Per agent: default speed cap (``inf`` for none)."""
    agent_range: float = 1.0
    """Initial agent positions are uniform in ``[-agent_range, agent_range]^2``."""
    landmark_range: float = 1.0
    """Initial landmark positions are uniform in ``[-landmark_range, landmark_range]^2``."""

    def __post_init__(self):
        n_a, n_e = len(self.agents), len(self.agents) + len(self.landmarks)
        for name, value, n in [
            ("movable", self.movable, n_a),
            ("silent", self.silent, n_a),
            ("accel", self.accel, n_a),
            ("max_speed", self.max_speed, n_a),
            ("collide", self.collide, n_e),
            ("size", self.size, n_e),
        ]:
            if len(value) != n:
                raise ValueError(f"WorldLayout.{name} has {len(value)} entries, expected {n}")

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def num_entities(self) -> int:
        return len(self.agents) + len(self.landmarks)

    @cached_property
    def contact_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Entity index pairs ``(i, j)``, ``i < j``, that exert contact forces (mpe2's order)."""
        movable = list(self.movable) + [False] * len(self.landmarks)
        pairs = [
            (i, j)
            for i in range(self.num_entities)
            for j in range(i + 1, self.num_entities)
            if self.collide[i] and self.collide[j] and (movable[i] or movable[j])
        ]
        i = np.array([p[0] for p in pairs], np.int32)
        j = np.array([p[1] for p in pairs], np.int32)
        return i, j

    @cached_property
    def contact_incidence(self) -> np.ndarray:
        """``[E, P]`` matrix mapping pair forces to entity forces (+ on i, - on j, movable only)."""
        i, j = self.contact_pairs
        movable = np.array(list(self.movable) + [False] * len(self.landmarks))
        m = np.zeros((self.num_entities, len(i)), np.float32)
        for p, (a, b) in enumerate(zip(i, j, strict=True)):
            m[a, p] = 1.0 if movable[a] else 0.0
            m[b, p] = -1.0 if movable[b] else 0.0
        return m


@struct.dataclass
class MPEState:
    """State of one MPE world."""

    p_pos: jax.Array
    """Entity positions ``float32[E, 2]`` (agents, then landmarks)."""
    p_vel: jax.Array
    """Entity velocities ``float32[E, 2]``."""
    c: jax.Array
    """Agent utterances ``float32[A, dim_c]`` (zeros for silent agents)."""
    goals: jax.Array
    """Scenario-specific goal indices ``int32[G]`` (see each scenario; ``G`` may be 0)."""
    time: jax.Array
    """Steps taken in the episode (``int32`` scalar)."""


@struct.dataclass
class MPEParams:
    """Params every MPE world has (all keep shapes; vary them per copy for randomisation)."""

    max_steps_in_episode: int
    """Episode length (mpe2's ``max_cycles``)."""
    dt: float
    """Integration time step."""
    damping: float
    """Fraction of velocity lost per step."""
    contact_force: float
    """Stiffness of the soft contact force."""
    contact_margin: float
    """Softness of the contact (softplus width)."""
    size: jax.Array
    """Entity radii ``float32[E]``."""
    mass: jax.Array
    """Entity masses ``float32[E]``."""
    accel: jax.Array
    """Agent acceleration multipliers ``float32[A]``."""
    max_speed: jax.Array
    """Agent speed caps ``float32[A]`` (``inf`` for none)."""


def base_params_kwargs(layout: WorldLayout, max_steps: int = 25) -> dict[str, Any]:
    """Keyword arguments of :class:`MPEParams` with mpe2's defaults for ``layout``."""
    return dict(
        max_steps_in_episode=max_steps,
        dt=0.1,
        damping=0.25,
        contact_force=100.0,
        contact_margin=1e-3,
        size=jnp.asarray(layout.size, jnp.float32),
        mass=jnp.ones(layout.num_entities, jnp.float32),
        accel=jnp.asarray(layout.accel, jnp.float32),
        max_speed=jnp.asarray(layout.max_speed, jnp.float32),
    )


# ---------------------------------------------------------------------------------------------
# Shared maths
# ---------------------------------------------------------------------------------------------
def norm(x: jax.Array) -> jax.Array:
    """Euclidean norm over the last axis."""
    return jnp.sqrt(jnp.sum(jnp.square(x), axis=-1))


def is_collision(pos_a: jax.Array, pos_b: jax.Array, size_a: jax.Array, size_b: jax.Array):
    """Whether discs overlap (mpe2's ``is_collision``), broadcasting over leading axes."""
    return norm(pos_a - pos_b) < size_a + size_b


def bound_penalty(x: jax.Array) -> jax.Array:
    """mpe2's out-of-area penalty ``bound(|x|)`` of tag and world_comm, elementwise."""
    x = jnp.abs(x)
    return jnp.where(
        x < 0.9, 0.0, jnp.where(x < 1.0, (x - 0.9) * 10.0, jnp.minimum(jnp.exp(2 * x - 2), 10.0))
    )


def contact_forces(layout: WorldLayout, p_pos: jax.Array, params: MPEParams) -> jax.Array:
    """Soft contact forces ``float32[E, 2]`` on every entity (zero on immovable ones)."""
    i, j = layout.contact_pairs
    if len(i) == 0:
        return jnp.zeros_like(p_pos)
    delta = p_pos[i] - p_pos[j]  # [P, 2]
    dist = norm(delta)
    dist_min = params.size[i] + params.size[j]
    k = params.contact_margin
    penetration = jnp.logaddexp(0.0, -(dist - dist_min) / k) * k
    pair_force = params.contact_force * delta / dist[:, None] * penetration[:, None]
    # a constant [E, P] matmul: measured 6x faster at batch 8192 than a masked dense E x E sum
    return jnp.asarray(layout.contact_incidence) @ pair_force


def integrate(
    layout: WorldLayout, state: MPEState, u: jax.Array, params: MPEParams
) -> tuple[jax.Array, jax.Array]:
    """One physics step: ``(p_pos, p_vel)`` after action forces ``u`` ``[A, 2]`` and contacts."""
    n_l = len(layout.landmarks)
    force = contact_forces(layout, state.p_pos, params)
    force = force + jnp.concatenate([u, jnp.zeros((n_l, 2), u.dtype)])
    # INTEGRATE (position with the old velocity, then damping, force and the speed cap)
    p_pos = state.p_pos + state.p_vel * params.dt
    p_vel = state.p_vel * (1.0 - params.damping) + force / params.mass[:, None] * params.dt
    cap = jnp.concatenate([params.max_speed, jnp.full((n_l,), jnp.inf, jnp.float32)])[:, None]
    speed = norm(p_vel)[:, None]
    p_vel = jnp.where(speed > cap, p_vel / jnp.where(speed > 0, speed, 1.0) * cap, p_vel)
    movable = np.array(list(layout.movable) + [False] * n_l)[:, None]
    return jnp.where(movable, p_pos, state.p_pos), jnp.where(movable, p_vel, state.p_vel)


# ---------------------------------------------------------------------------------------------
# Base environment
# ---------------------------------------------------------------------------------------------
class MPEEnv(MultiAgentEnv):
    """Base of the MPE scenarios: reset, step, action decoding, spaces, world state, render.

    Subclasses set ``self.layout`` in ``__init__`` and implement
    :meth:`observations` and :meth:`rewards`; they may override :meth:`sample_goals`,
    :meth:`colors`, :meth:`is_terminal` and :meth:`default_params`.

    Args:
        action_type: ``"discrete"`` (default) or ``"continuous"``.

    Inputs: constructor arguments and :meth:`check_params` are checked on the host (the
    PettingZoo adapter checks actions, too). Inside jitted code nothing is checked, by JAX's
    conventions and mpe2's: a discrete action is decoded as movement ``a % 5`` and word
    ``a // 5`` (so 17 moves as 2 does, and a word past ``dim_c`` says nothing); continuous
    actions are clipped to ``[0, 1]``; params :meth:`check_params` would refuse (a zero mass
    or contact margin) give NaN positions.
    """

    layout: WorldLayout
    scenario: str = ""

    def __init__(self, action_type: str = "discrete"):
        check_choice(f"{type(self).__name__}: action_type", action_type, ("discrete", "continuous"))
        self.action_type = action_type
        self.agents = self.layout.agents

    @property
    def continuous(self) -> bool:
        return self.action_type == "continuous"

    @property
    def name(self) -> str:
        return f"MPE_{self.scenario}"

    @property
    def default_params(self) -> MPEParams:
        return MPEParams(**base_params_kwargs(self.layout))

    def check_params(self, params: MPEParams) -> None:
        """Refuse params that would give NaN or meaningless physics (host side, not in jit).

        Called by :func:`accelrl.envs.checks.check_params` after its structure, shape and NaN
        checks; leaves may carry a leading batch axis. Scenario params classes with more
        fields extend it.

        Raises:
            ValueError: one line naming the field and the first offending index:
                ``max_steps_in_episode`` an integer >= 1; ``dt``, ``mass`` and
                ``contact_margin`` > 0 and finite; ``damping`` in [0, 1]; ``contact_force``,
                ``size`` and ``accel`` >= 0 and finite; ``max_speed`` >= 0 (``inf``: no cap).
        """
        c = ParamChecker(self.name, params)
        c.integer("max_steps_in_episode", minimum=1)
        c.positive("dt", "mass", "contact_margin")
        c.require("damping", lambda d: (d >= 0) & (d <= 1), "must be in [0, 1]")
        c.nonnegative("contact_force", "size", "accel")
        c.nonnegative("max_speed", finite=False)

    # -- scenario hooks ---------------------------------------------------------------------
    def sample_goals(self, key: jax.Array) -> jax.Array:
        """Goal indices ``int32[G]`` for a fresh episode."""
        return jnp.zeros((0,), jnp.int32)

    def observations(self, state: MPEState, params: MPEParams) -> dict[str, jax.Array]:
        raise NotImplementedError

    def rewards(self, state: MPEState, params: MPEParams) -> dict[str, jax.Array]:
        raise NotImplementedError

    def is_terminal(self, state: MPEState, params: MPEParams) -> jax.Array:
        """Early success (scalar bool); checked only on steps that do not truncate."""
        return jnp.asarray(False)

    def colors(self, state: MPEState) -> np.ndarray:
        """Entity colours ``float[E, 3]`` in ``[0, 1]`` as mpe2 sets them (for rendering)."""
        raise NotImplementedError

    # -- spaces -----------------------------------------------------------------------------
    def _index(self, agent: str) -> int:
        try:
            return self.agents.index(agent)
        except ValueError:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.agents}") from None

    def action_size(self, agent: str) -> int:
        """Discrete: number of actions; continuous: vector length (mpe2's ``space_dim``)."""
        i = self._index(agent)
        movable, silent, dim_c = self.layout.movable[i], self.layout.silent[i], self.layout.dim_c
        if movable:
            n = NUM_MOVES
        else:
            n = 0 if self.continuous else 1
        if not silent:
            n = n + dim_c if self.continuous else n * dim_c
        return n

    def action_space(self, agent: str, params: Any = None):
        n = self.action_size(agent)
        if self.continuous:
            return spaces.Box(0.0, 1.0, (n,), jnp.float32)
        return spaces.Discrete(n)

    @cached_property
    def _obs_sizes(self) -> dict[str, int]:
        obs, _ = jax.eval_shape(self.reset_env, jax.random.key(0), self.default_params)
        return {a: int(o.shape[0]) for a, o in obs.items()}

    def observation_space(self, agent: str, params: Any = None):
        self._index(agent)
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_sizes[agent],), jnp.float32)

    # -- actions ----------------------------------------------------------------------------
    def decode_actions(
        self, actions: dict[str, jax.Array], params: MPEParams
    ) -> tuple[jax.Array, jax.Array]:
        """Action dict -> forces ``float32[A, 2]`` and utterances ``float32[A, dim_c]``.

        Discrete: movement ``a % 5`` as ``[none, left, right, down, up]``, utterance one-hot of
        ``a // 5`` (speakers that cannot move: one-hot of ``a``). Continuous (clipped to
        ``[0, 1]`` like mpe2's ``ClipOutOfBoundsWrapper``): force ``(a[2] - a[1], a[4] - a[3])``,
        utterance ``a[5:]`` (``a`` for speakers that cannot move).
        """
        dim_c = self.layout.dim_c
        if self._uniform_movers:  # every agent moves and is silent: decode all at once
            a = jnp.stack([jnp.asarray(actions[agent]) for agent in self.agents])
            if self.continuous:
                a = jnp.clip(a.astype(jnp.float32), 0.0, 1.0)
                u = jnp.stack([a[:, 2] - a[:, 1], a[:, 4] - a[:, 3]], axis=1)
            else:
                u = jnp.asarray(MOVES)[a.astype(jnp.int32) % NUM_MOVES]
            c = jnp.zeros((self.num_agents, dim_c), jnp.float32)
            return (u * params.accel[:, None]).astype(jnp.float32), c
        us, cs = [], []
        for i, agent in enumerate(self.agents):
            a = actions[agent]
            movable, silent = self.layout.movable[i], self.layout.silent[i]
            if self.continuous:
                a = jnp.clip(jnp.asarray(a, jnp.float32), 0.0, 1.0)
                u = jnp.stack([a[2] - a[1], a[4] - a[3]]) if movable else jnp.zeros(2)
                rest = a[NUM_MOVES:] if movable else a
                c = jnp.zeros(dim_c) if silent else rest
            else:
                a = jnp.asarray(a, jnp.int32)
                u = jnp.asarray(MOVES)[a % NUM_MOVES] if movable else jnp.zeros(2)
                word = a // NUM_MOVES if movable else a
                c = jnp.zeros(dim_c) if silent else jax.nn.one_hot(word, dim_c)
            us.append(u * params.accel[i])
            cs.append(c)
        return jnp.stack(us).astype(jnp.float32), jnp.stack(cs).astype(jnp.float32)

    @property
    def _uniform_movers(self) -> bool:
        return all(self.layout.movable) and all(self.layout.silent)

    # -- reset / step -----------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: MPEParams) -> tuple[dict, MPEState]:
        key_a, key_l, key_g = jax.random.split(key, 3)
        lay = self.layout
        p_agents = jax.random.uniform(
            key_a, (lay.num_agents, 2), minval=-lay.agent_range, maxval=lay.agent_range
        )
        p_land = jax.random.uniform(
            key_l, (len(lay.landmarks), 2), minval=-lay.landmark_range, maxval=lay.landmark_range
        )
        state = MPEState(
            p_pos=jnp.concatenate([p_agents, p_land]).astype(jnp.float32),
            p_vel=jnp.zeros((lay.num_entities, 2), jnp.float32),
            c=jnp.zeros((lay.num_agents, lay.dim_c), jnp.float32),
            goals=self.sample_goals(key_g),
            time=jnp.zeros((), jnp.int32),
        )
        return self.observations(state, params), state

    def step_env(self, key: jax.Array, state: MPEState, actions: dict, params: MPEParams):
        u, c = self.decode_actions(actions, params)
        p_pos, p_vel = integrate(self.layout, state, u, params)
        state = state.replace(p_pos=p_pos, p_vel=p_vel, c=c, time=state.time + 1)
        obs = self.observations(state, params)
        rewards = {a: jnp.asarray(r, jnp.float32) for a, r in self.rewards(state, params).items()}
        # mpe2 checks truncation first: a success on the last step is a truncation
        term = self.is_terminal(state, params) & ~self.is_truncated(state, params)
        terminated = {a: term for a in self.agents}
        terminated["__all__"] = term
        return obs, state, rewards, terminated, {}

    def world_state(self, state: MPEState, params: MPEParams | None = None) -> jax.Array:
        """All agents' observations concatenated in agent order (mpe2's ``state()``)."""
        params = self.default_params if params is None else params
        return self.world_state_from_obs(self.observations(state, params))

    #: Name prefixes of the agents on the adversary team (mpe2's ``adversary=True`` agents).
    ADVERSARY_PREFIXES = ("adversary_", "leadadversary_", "eve_")

    @property
    def teams(self) -> dict[str, tuple[str, ...]]:
        """``{"adversaries": ..., "agents": ...}`` where the scenario has adversaries (tag,
        adversary, push, crypto's eve, world_comm with its lead adversary), else one team
        ``"agents"``."""
        adv = tuple(a for a in self.agents if a.startswith(self.ADVERSARY_PREFIXES))
        rest = tuple(a for a in self.agents if a not in adv)
        return {"adversaries": adv, "agents": rest} if adv else {"agents": rest}

    def render(self, states: list, params: Any = None) -> np.ndarray:
        """RGB frame ``uint8[700, 700, 3]`` of the last state, drawn as PettingZoo draws it."""
        from accelrl.envs.mpe.render import render_frame

        return render_frame(self, states)


def stack_obs(agents: tuple[str, ...], rows: list[jax.Array]) -> dict[str, jax.Array]:
    """Dict of ``float32`` observations from one row per agent."""
    return {a: jnp.asarray(r, jnp.float32) for a, r in zip(agents, rows, strict=True)}
