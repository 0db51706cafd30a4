"""``MPE_simple_speaker_listener_v4``: a speaker guides a listener to the goal landmark.

``state.goals = [goal landmark]``. Both agents get ``-|listener - goal|^2``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.mpe.world import DEFAULT_ACCEL, MPEEnv, MPEParams, MPEState, WorldLayout

LANDMARK_COLORS = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]])


class SimpleSpeakerListener(MPEEnv):
    """``speaker_0`` (speaks, cannot move), ``listener_0`` (moves, silent); three landmarks.

    Observations: speaker ``[goal_color]`` (3); listener ``[self_vel, landmark_rel_pos (3),
    speaker_comm]`` (11). Actions: speaker ``Discrete(3)``/``Box(0, 1, (3,))``; listener
    ``Discrete(5)``/``Box(0, 1, (5,))``.
    """

    scenario = "simple_speaker_listener_v4"

    def __init__(self, action_type: str = "discrete"):
        self.layout = WorldLayout(
            agents=("speaker_0", "listener_0"),
            landmarks=("landmark 0", "landmark 1", "landmark 2"),
            dim_c=3,
            movable=(False, True),
            silent=(False, True),
            collide=(False,) * 5,
            size=(0.075, 0.075, 0.04, 0.04, 0.04),
            accel=(DEFAULT_ACCEL,) * 2,
            max_speed=(np.inf,) * 2,
        )
        super().__init__(action_type)

    def sample_goals(self, key):
        return jax.random.randint(key, (1,), 0, len(LANDMARK_COLORS))

    def observations(self, state: MPEState, params: MPEParams):
        pos = state.p_pos
        listener = jnp.concatenate([state.p_vel[1], (pos[2:] - pos[1]).reshape(-1), state.c[0]])
        return {
            "speaker_0": jnp.asarray(LANDMARK_COLORS, jnp.float32)[state.goals[0]],
            "listener_0": listener,
        }

    def rewards(self, state: MPEState, params: MPEParams):
        r = -jnp.sum(jnp.square(state.p_pos[1] - state.p_pos[2 + state.goals[0]]))
        return {"speaker_0": r, "listener_0": r}

    def colors(self, state: MPEState) -> np.ndarray:
        listener = LANDMARK_COLORS[int(state.goals[0])] + 0.45
        return np.concatenate([[[0.25] * 3], listener[None], LANDMARK_COLORS])
