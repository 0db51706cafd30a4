"""``MPE_simple_world_comm_v3``: tag with food, forests that hide, and a speaking leader.

Landmarks are, in order: obstacles (collide), food, forests. An agent inside a forest (disc
overlap) is seen only by agents in the same forest and by the leader; an agent outside all
forests is seen by everyone outside all forests. Unseen agents appear at relative position
(0, 0) with velocity (0, 0).

Rewards: good agents ``-5`` per adversary in contact, ``-2 * bound(|x|)`` per coordinate,
``+2`` per food in contact, ``-0.05 *`` distance to the nearest food; adversaries ``+5`` per
(good, adversary) contact anywhere (shared) and ``-0.1 *`` distance to the nearest good agent.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from accelrl.envs.checks import check_int
from accelrl.envs.mpe.world import (
    MPEEnv,
    MPEParams,
    MPEState,
    WorldLayout,
    bound_penalty,
    is_collision,
    norm,
)


class SimpleWorldComm(MPEEnv):
    """``leadadversary_0``, ``adversary_0..``, ``agent_0..``; obstacles, food, forests.

    Observations: adversaries (leader included) ``[self_vel, self_pos, landmark_rel_pos,
    other_rel_pos, other_good_vel, self_in_forest (+-1 per forest), leader_comm]`` (34 with
    the defaults); good agents ``[self_vel, self_pos, landmark_rel_pos, other_rel_pos,
    self_in_forest, other_good_vel]`` (28). The leader's actions are ``Discrete(20)`` (move
    ``a % 5``, say ``a // 5``) or ``Box(0, 1, (9,))``; the others move only.

    Args:
        num_good: good agents. num_adversaries: adversaries including the leader.
        num_obstacles: obstacles. num_food: food. num_forests: forests.
        action_type: ``"discrete"`` or ``"continuous"``.
    """

    scenario = "simple_world_comm_v3"

    def __init__(
        self,
        num_good: int = 2,
        num_adversaries: int = 4,
        num_obstacles: int = 1,
        num_food: int = 2,
        num_forests: int = 2,
        action_type: str = "discrete",
    ):
        num_good = check_int("simple_world_comm: num_good", num_good, minimum=1)
        num_adversaries = check_int(
            "simple_world_comm: num_adversaries", num_adversaries, minimum=1
        )
        num_food = check_int("simple_world_comm: num_food", num_food, minimum=1)
        num_obstacles = check_int("simple_world_comm: num_obstacles", num_obstacles, minimum=0)
        num_forests = check_int("simple_world_comm: num_forests", num_forests, minimum=0)
        na, ng = num_adversaries, num_good
        n = na + ng
        self.num_adversaries, self.num_obstacles = na, num_obstacles
        self.num_food, self.num_forests = num_food, num_forests
        names = ["leadadversary_0"] + [f"adversary_{i}" for i in range(na - 1)]
        names += [f"agent_{i}" for i in range(ng)]
        self.layout = WorldLayout(
            agents=tuple(names),
            landmarks=tuple(f"landmark {i}" for i in range(num_obstacles))
            + tuple(f"food {i}" for i in range(num_food))
            + tuple(f"forest {i}" for i in range(num_forests)),
            dim_c=4,
            movable=(True,) * n,
            silent=(False,) + (True,) * (n - 1),
            collide=(True,) * (n + num_obstacles) + (False,) * (num_food + num_forests),
            size=(0.075,) * na
            + (0.045,) * ng
            + (0.2,) * num_obstacles
            + (0.03,) * num_food
            + (0.3,) * num_forests,
            accel=(3.0,) * na + (4.0,) * ng,
            max_speed=(1.0,) * na + (1.3,) * ng,
            landmark_range=0.9,
        )
        super().__init__(action_type)

    def _slices(self):
        n = self.num_agents
        food0 = n + self.num_obstacles
        forest0 = food0 + self.num_food
        return n, food0, forest0

    def observations(self, state: MPEState, params: MPEParams):
        na = self.num_adversaries
        n, _, forest0 = self._slices()
        pos, vel, size = state.p_pos[:n], state.p_vel[:n], params.size
        # FOREST VISIBILITY
        inside = is_collision(
            pos[:, None], state.p_pos[None, forest0:], size[:n, None], size[None, forest0:]
        )  # [A, forests]
        outside_all = ~jnp.any(inside, axis=1)
        shared = jnp.any(inside[:, None] & inside[None], axis=2)  # [A, A]
        visible = shared | (outside_all[:, None] & outside_all[None])
        visible = visible.at[0].set(True)  # the leader sees everyone
        in_forest = jnp.where(inside, 1.0, -1.0)
        rel_lm = (state.p_pos[None, n:] - pos[:, None]).reshape(n, -1)
        leader_c = state.c[0]
        rows = []
        for i in range(n):
            others = np.array([j for j in range(n) if j != i], np.int32)
            goods = others[others >= na]
            seen = visible[i]
            other_pos = jnp.where(seen[others, None], pos[others] - pos[i], 0.0).reshape(-1)
            other_vel = jnp.where(seen[goods, None], vel[goods], 0.0).reshape(-1)
            head = [vel[i], pos[i], rel_lm[i], other_pos]
            if i < na:
                rows.append(jnp.concatenate(head + [other_vel, in_forest[i], leader_c]))
            else:
                rows.append(jnp.concatenate(head + [in_forest[i], other_vel]))
        return dict(zip(self.agents, rows, strict=True))

    def rewards(self, state: MPEState, params: MPEParams):
        na = self.num_adversaries
        n, food0, forest0 = self._slices()
        pos, size = state.p_pos, params.size
        good_pos, food = pos[na:n], pos[food0:forest0]
        contacts = is_collision(
            pos[:na, None], good_pos[None], size[:na, None], size[None, na:n]
        )  # [adversaries, good]
        eaten = is_collision(
            good_pos[:, None], food[None], size[na:n, None], size[None, food0:forest0]
        )
        good = -5.0 * jnp.sum(contacts, axis=0)
        good = good - 2.0 * jnp.sum(bound_penalty(good_pos), axis=1)
        good = good + 2.0 * jnp.sum(eaten, axis=1)
        good = good - 0.05 * jnp.min(norm(good_pos[:, None] - food[None]), axis=1)
        adv = -0.1 * jnp.min(norm(pos[:na, None] - good_pos[None]), axis=1)
        adv = adv + 5.0 * jnp.sum(contacts)
        rew = jnp.concatenate([adv, good]).astype(jnp.float32)
        return dict(zip(self.agents, list(rew), strict=True))

    def colors(self, state: MPEState) -> np.ndarray:
        na, n = self.num_adversaries, self.num_agents
        rows = [[0.65, 0.15, 0.15]] + [[0.95, 0.45, 0.45]] * (na - 1)
        rows += [[0.45, 0.95, 0.45]] * (n - na)
        rows += [[0.25] * 3] * self.num_obstacles + [[0.15, 0.15, 0.65]] * self.num_food
        rows += [[0.6, 0.9, 0.6]] * self.num_forests
        return np.array(rows)
