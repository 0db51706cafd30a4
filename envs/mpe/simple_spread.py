"""``MPE_simple_spread_v3``: N agents cover N landmarks without colliding.

Reward: ``(1 - local_ratio) * global + local_ratio * local`` with global ``-sum over landmarks of
the nearest agent's distance`` and local ``-1`` per other agent in contact.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from accelrl.envs.checks import ParamChecker, check_int
from accelrl.envs.mpe.world import (
    DEFAULT_ACCEL,
    MPEEnv,
    MPEParams,
    MPEState,
    WorldLayout,
    base_params_kwargs,
    norm,
    stack_obs,
)


@struct.dataclass
class SpreadParams(MPEParams):
    """Params of simple_spread."""

    local_ratio: float = 0.5
    """Weight of the local (collision) reward; the global reward gets ``1 - local_ratio``."""
    collision_penalty: bool = True
    """Whether contacts cost -1 (mpe2's curriculum stage 0 switches it off)."""
    terminate_on_success: bool = False
    """End the episode once every landmark has an agent within ``capture_radius``."""
    capture_radius: float = 0.1
    """Distance at which an agent covers a landmark."""


class SimpleSpread(MPEEnv):
    """N agents (``agent_i``), N landmarks.

    Observation ``[self_vel, self_pos, landmark_rel_pos (N), other_rel_pos (N-1),
    other_comm (N-1, zeros: agents are silent)]`` (``6N`` floats).

    Args:
        num_agents: N (mpe2's ``N``).
        action_type: ``"discrete"`` or ``"continuous"``.
    """

    scenario = "simple_spread_v3"

    def __init__(self, num_agents: int = 3, action_type: str = "discrete"):
        num_agents = check_int("simple_spread: num_agents", num_agents, minimum=1)
        n = num_agents
        self.layout = WorldLayout(
            agents=tuple(f"agent_{i}" for i in range(n)),
            landmarks=tuple(f"landmark {i}" for i in range(n)),
            dim_c=2,
            movable=(True,) * n,
            silent=(True,) * n,
            collide=(True,) * n + (False,) * n,
            size=(0.15,) * n + (0.05,) * n,
            accel=(DEFAULT_ACCEL,) * n,
            max_speed=(np.inf,) * n,
        )
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int32)
        self._others = self._others.reshape(n, n - 1)
        super().__init__(action_type)

    @property
    def default_params(self) -> SpreadParams:
        return SpreadParams(**base_params_kwargs(self.layout))

    def check_params(self, params: SpreadParams) -> None:
        """:meth:`MPEEnv.check_params` plus ``local_ratio`` in [0, 1], ``capture_radius`` >= 0
        and the two flags 0 or 1."""
        super().check_params(params)
        c = ParamChecker(self.name, params)
        c.require("local_ratio", lambda r: (r >= 0) & (r <= 1), "must be in [0, 1]")
        c.nonnegative("capture_radius")
        c.flag("collision_penalty", "terminate_on_success")

    def _split(self, state: MPEState):
        n = self.num_agents
        return state.p_pos[:n], state.p_pos[n:]

    def observations(self, state: MPEState, params: SpreadParams):
        n = self.num_agents
        agents, lms = self._split(state)
        rel_lm = (lms[None] - agents[:, None]).reshape(n, -1)
        rel_other = (agents[self._others] - agents[:, None]).reshape(n, -1)
        comm = state.c[self._others].reshape(n, -1)
        rows = jnp.concatenate([state.p_vel[:n], agents, rel_lm, rel_other, comm], axis=1)
        return stack_obs(self.agents, list(rows))

    def rewards(self, state: MPEState, params: SpreadParams):
        n = self.num_agents
        agents, lms = self._split(state)
        size = params.size[:n]
        dists = norm(agents[:, None] - agents[None])  # [N, N]
        contact = (dists < size[:, None] + size[None]) & ~np.eye(n, dtype=bool)
        local = -jnp.sum(contact, axis=1).astype(jnp.float32)
        local = jnp.where(params.collision_penalty, local, 0.0)
        glob = -jnp.sum(jnp.min(norm(agents[:, None] - lms[None]), axis=0))
        rew = glob * (1.0 - params.local_ratio) + local * params.local_ratio
        return dict(zip(self.agents, list(rew), strict=True))

    def is_terminal(self, state: MPEState, params: SpreadParams):
        agents, lms = self._split(state)
        covered = jnp.min(norm(agents[:, None] - lms[None]), axis=0) < params.capture_radius
        return params.terminate_on_success & jnp.all(covered)

    def colors(self, state: MPEState) -> np.ndarray:
        n = self.num_agents
        return np.array([[0.35, 0.35, 0.85]] * n + [[0.25, 0.25, 0.25]] * n)
