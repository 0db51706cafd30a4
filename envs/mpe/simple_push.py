"""``MPE_simple_push_v3``: an adversary pushes the good agent away from the goal landmark.

``state.goals = [goal landmark]``. Rewards: agent ``-|agent - goal|``; adversary
``|agent - goal| - |adversary - goal|``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.mpe.world import (
    DEFAULT_ACCEL,
    MPEEnv,
    MPEParams,
    MPEState,
    WorldLayout,
    norm,
)

_NUM_LANDMARKS = 2


def landmark_colors() -> np.ndarray:
    """``[L, 3]``: grey with channel ``i + 1`` raised (mpe2's push/adversary-style colours)."""
    c = np.full((_NUM_LANDMARKS, 3), 0.1)
    for i in range(_NUM_LANDMARKS):
        c[i, i + 1] += 0.8
    return c


class SimplePush(MPEEnv):
    """``adversary_0``, ``agent_0``; two landmarks.

    Observations: agent ``[self_vel, goal_rel_pos, self_color, landmark_rel_pos (2),
    landmark_colors (2), other_rel_pos]`` (19); adversary ``[self_vel, landmark_rel_pos (2),
    other_rel_pos]`` (8).
    """

    scenario = "simple_push_v3"

    def __init__(self, action_type: str = "discrete"):
        self.layout = WorldLayout(
            agents=("adversary_0", "agent_0"),
            landmarks=("landmark 0", "landmark 1"),
            dim_c=2,
            movable=(True, True),
            silent=(True, True),
            collide=(True, True, False, False),
            size=(0.05,) * 4,
            accel=(DEFAULT_ACCEL,) * 2,
            max_speed=(np.inf,) * 2,
        )
        super().__init__(action_type)

    def sample_goals(self, key):
        return jax.random.randint(key, (1,), 0, _NUM_LANDMARKS)

    def _agent_color(self, goal: jax.Array) -> jax.Array:
        return jnp.full(3, 0.25) + 0.5 * jax.nn.one_hot(goal + 1, 3)

    def observations(self, state: MPEState, params: MPEParams):
        pos, vel = state.p_pos, state.p_vel
        lms = pos[2:]
        goal = lms[state.goals[0]]
        lm_colors = jnp.asarray(landmark_colors(), jnp.float32).reshape(-1)
        adv = jnp.concatenate([vel[0], (lms - pos[0]).reshape(-1), pos[1] - pos[0]])
        good = jnp.concatenate(
            [
                vel[1],
                goal - pos[1],
                self._agent_color(state.goals[0]),
                (lms - pos[1]).reshape(-1),
                lm_colors,
                pos[0] - pos[1],
            ]
        )
        return {"adversary_0": adv, "agent_0": good}

    def rewards(self, state: MPEState, params: MPEParams):
        goal = state.p_pos[2 + state.goals[0]]
        d_good = norm(state.p_pos[1] - goal)
        d_adv = norm(state.p_pos[0] - goal)
        return {"adversary_0": d_good - d_adv, "agent_0": -d_good}

    def colors(self, state: MPEState) -> np.ndarray:
        goal = int(state.goals[0])
        good = np.full(3, 0.25)
        good[goal + 1] += 0.5
        return np.concatenate([[[0.75, 0.25, 0.25]], good[None], landmark_colors()])
