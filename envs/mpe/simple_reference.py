"""``MPE_simple_reference_v3``: each agent knows the other's goal landmark and must tell it.

``state.goals = [goal of agent_1 (known to agent_0), goal of agent_0 (known to agent_1)]``:
agent ``i``'s ``goal_b`` is landmark ``goals[i]``, and its reward is ``-|other - goals[i]|``,
mixed with the mean of both as ``(1 - local_ratio) * mean + local_ratio * own``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from accelrl.envs.checks import ParamChecker
from accelrl.envs.mpe.world import (
    DEFAULT_ACCEL,
    MPEEnv,
    MPEParams,
    MPEState,
    WorldLayout,
    base_params_kwargs,
    norm,
)

LANDMARK_COLORS = np.array([[0.75, 0.25, 0.25], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]])


@struct.dataclass
class ReferenceParams(MPEParams):
    """Params of simple_reference."""

    local_ratio: float = 0.5
    """Weight of the agent's own reward; the mean of both agents' gets ``1 - local_ratio``."""


class SimpleReference(MPEEnv):
    """``agent_0``, ``agent_1`` (both move and speak, ``dim_c = 10``); three landmarks.

    Observation ``[self_vel, landmark_rel_pos (3), goal_color, other_comm (10)]`` (21).
    Actions: ``Discrete(50)`` (move ``a % 5``, say ``a // 5``) or ``Box(0, 1, (15,))``.
    """

    scenario = "simple_reference_v3"

    def __init__(self, action_type: str = "discrete"):
        self.layout = WorldLayout(
            agents=("agent_0", "agent_1"),
            landmarks=("landmark 0", "landmark 1", "landmark 2"),
            dim_c=10,
            movable=(True, True),
            silent=(False, False),
            collide=(False,) * 5,
            size=(0.05,) * 5,
            accel=(DEFAULT_ACCEL,) * 2,
            max_speed=(np.inf,) * 2,
        )
        super().__init__(action_type)

    @property
    def default_params(self) -> ReferenceParams:
        return ReferenceParams(**base_params_kwargs(self.layout))

    def check_params(self, params: ReferenceParams) -> None:
        """:meth:`MPEEnv.check_params` plus ``local_ratio`` in [0, 1]."""
        super().check_params(params)
        c = ParamChecker(self.name, params)
        c.require("local_ratio", lambda r: (r >= 0) & (r <= 1), "must be in [0, 1]")

    def sample_goals(self, key):
        return jax.random.randint(key, (2,), 0, len(LANDMARK_COLORS))

    def observations(self, state: MPEState, params: ReferenceParams):
        pos, colors = state.p_pos, jnp.asarray(LANDMARK_COLORS, jnp.float32)
        rows = [
            jnp.concatenate(
                [
                    state.p_vel[i],
                    (pos[2:] - pos[i]).reshape(-1),
                    colors[state.goals[i]],
                    state.c[1 - i],
                ]
            )
            for i in range(2)
        ]
        return dict(zip(self.agents, rows, strict=True))

    def rewards(self, state: MPEState, params: ReferenceParams):
        pos = state.p_pos
        own = jnp.stack([-norm(pos[1 - i] - pos[2 + state.goals[i]]) for i in range(2)])
        rew = jnp.mean(own) * (1.0 - params.local_ratio) + own * params.local_ratio
        return dict(zip(self.agents, list(rew), strict=True))

    def colors(self, state: MPEState) -> np.ndarray:
        g = [int(x) for x in state.goals]
        return np.concatenate([LANDMARK_COLORS[[g[1], g[0]]], LANDMARK_COLORS])
