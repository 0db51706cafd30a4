"""``MPE_simple_v3``: one agent, one landmark; reward ``-|agent - landmark|^2`` (debugging)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from accelrl.envs.mpe.world import DEFAULT_ACCEL, MPEEnv, MPEParams, MPEState, WorldLayout


class Simple(MPEEnv):
    """One agent sees a landmark. Observation ``[self_vel, landmark_rel_pos]`` (4)."""

    scenario = "simple_v3"

    def __init__(self, action_type: str = "discrete"):
        self.layout = WorldLayout(
            agents=("agent_0",),
            landmarks=("landmark 0",),
            dim_c=0,
            movable=(True,),
            silent=(True,),
            collide=(False, False),
            size=(0.05, 0.05),
            accel=(DEFAULT_ACCEL,),
            max_speed=(np.inf,),
        )
        super().__init__(action_type)

    def observations(self, state: MPEState, params: MPEParams):
        return {"agent_0": jnp.concatenate([state.p_vel[0], state.p_pos[1] - state.p_pos[0]])}

    def rewards(self, state: MPEState, params: MPEParams):
        return {"agent_0": -jnp.sum(jnp.square(state.p_pos[0] - state.p_pos[1]))}

    def colors(self, state: MPEState) -> np.ndarray:
        return np.array([[0.25, 0.25, 0.25], [0.75, 0.25, 0.25]])
