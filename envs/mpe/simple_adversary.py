"""``MPE_simple_adversary_v3``: good agents hide the goal landmark from an adversary.

``state.goals = [goal landmark]``. Rewards: adversary ``-|adversary - goal|``; good agents
``-min_good |good - goal| + |adversary - goal|``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.checks import check_int
from accelrl.envs.mpe.world import DEFAULT_ACCEL, MPEEnv, MPEParams, MPEState, WorldLayout, norm


class SimpleAdversary(MPEEnv):
    """``adversary_0`` then ``agent_0..agent_{N-1}``; N landmarks.

    Observations: good ``[goal_rel_pos, landmark_rel_pos (N), other_rel_pos (N)]`` (``4N + 2``);
    adversary ``[landmark_rel_pos (N), other_rel_pos (N)]`` (``4N``).

    Args:
        num_good: N (mpe2's ``N``), the number of good agents and of landmarks.
        action_type: ``"discrete"`` or ``"continuous"``.
    """

    scenario = "simple_adversary_v3"

    def __init__(self, num_good: int = 2, action_type: str = "discrete"):
        num_good = check_int("simple_adversary: num_good", num_good, minimum=1)
        n = num_good + 1
        self.layout = WorldLayout(
            agents=("adversary_0",) + tuple(f"agent_{i}" for i in range(num_good)),
            landmarks=tuple(f"landmark {i}" for i in range(num_good)),
            dim_c=2,
            movable=(True,) * n,
            silent=(True,) * n,
            collide=(False,) * (n + num_good),
            size=(0.15,) * n + (0.08,) * num_good,
            accel=(DEFAULT_ACCEL,) * n,
            max_speed=(np.inf,) * n,
        )
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int32)
        super().__init__(action_type)

    def sample_goals(self, key):
        return jax.random.randint(key, (1,), 0, len(self.layout.landmarks))

    def observations(self, state: MPEState, params: MPEParams):
        n = self.num_agents
        pos = state.p_pos[:n]
        goal = state.p_pos[n + state.goals[0]]
        rel_lm = (state.p_pos[None, n:] - pos[:, None]).reshape(n, -1)
        rel_other = (pos[self._others] - pos[:, None]).reshape(n, -1)
        rows = jnp.concatenate([goal - pos, rel_lm, rel_other], axis=1)
        obs = {"adversary_0": rows[0, 2:]}
        obs.update(zip(self.agents[1:], list(rows[1:]), strict=True))
        return obs

    def rewards(self, state: MPEState, params: MPEParams):
        n = self.num_agents
        goal = state.p_pos[n + state.goals[0]]
        d = norm(state.p_pos[:n] - goal)
        good = -jnp.min(d[1:]) + d[0]
        rew = jnp.concatenate([-d[:1], jnp.full(n - 1, good)])
        return dict(zip(self.agents, list(rew), strict=True))

    def colors(self, state: MPEState) -> np.ndarray:
        n, nl = self.num_agents, len(self.layout.landmarks)
        lms = np.full((nl, 3), 0.15)
        lms[int(state.goals[0])] = [0.15, 0.65, 0.15]
        return np.concatenate([[[0.85, 0.35, 0.35]], [[0.35, 0.35, 0.85]] * (n - 1), lms])
