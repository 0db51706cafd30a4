"""``MPE_simple_tag_v3``: predators (adversaries) chase faster prey (good agents) among obstacles.

Rewards: each adversary ``+10`` per (prey, adversary) contact anywhere (shared); each prey
``-10`` per adversary in contact and ``-bound(|x|)`` per coordinate for leaving the area.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from accelrl.envs.checks import check_int
from accelrl.envs.mpe.world import (
    MPEEnv,
    MPEParams,
    MPEState,
    WorldLayout,
    base_params_kwargs,
    bound_penalty,
    is_collision,
)


@struct.dataclass
class TagParams(MPEParams):
    """Params of simple_tag."""

    terminate_on_success: bool = False
    """End the episode once every prey is in contact with an adversary."""


class SimpleTag(MPEEnv):
    """``adversary_0..`` then ``agent_0..``; ``num_obstacles`` landmarks.

    Observation ``[self_vel, self_pos, obstacle_rel_pos, other_rel_pos, other_prey_vel]``
    (16 for adversaries, 14 for the prey with the defaults).

    Args:
        num_good: number of prey.
        num_adversaries: number of predators.
        num_obstacles: number of obstacles.
        action_type: ``"discrete"`` or ``"continuous"``.
    """

    scenario = "simple_tag_v3"

    def __init__(
        self,
        num_good: int = 1,
        num_adversaries: int = 3,
        num_obstacles: int = 2,
        action_type: str = "discrete",
    ):
        num_good = check_int("simple_tag: num_good", num_good, minimum=1)
        num_adversaries = check_int("simple_tag: num_adversaries", num_adversaries, minimum=1)
        num_obstacles = check_int("simple_tag: num_obstacles", num_obstacles, minimum=0)
        na, ng = num_adversaries, num_good
        n = na + ng
        self.num_adversaries = na
        self.layout = WorldLayout(
            agents=tuple(f"adversary_{i}" for i in range(na))
            + tuple(f"agent_{i}" for i in range(ng)),
            landmarks=tuple(f"landmark {i}" for i in range(num_obstacles)),
            dim_c=2,
            movable=(True,) * n,
            silent=(True,) * n,
            collide=(True,) * (n + num_obstacles),
            size=(0.075,) * na + (0.05,) * ng + (0.2,) * num_obstacles,
            accel=(3.0,) * na + (4.0,) * ng,
            max_speed=(1.0,) * na + (1.3,) * ng,
            landmark_range=0.9,
        )
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int32)
        self._other_prey = np.array(
            [[j for j in range(na, n) if j != i] for i in range(na, n)], np.int32
        ).reshape(ng, ng - 1)
        super().__init__(action_type)

    @property
    def default_params(self) -> TagParams:
        return TagParams(**base_params_kwargs(self.layout))

    def _contacts(self, state: MPEState, params: TagParams) -> jnp.ndarray:
        """``bool[adversaries, prey]`` contact matrix."""
        na, n = self.num_adversaries, self.num_agents
        pos, size = state.p_pos, params.size
        return is_collision(pos[:na, None], pos[None, na:n], size[:na, None], size[None, na:n])

    def observations(self, state: MPEState, params: TagParams):
        na, n = self.num_adversaries, self.num_agents
        pos, vel = state.p_pos[:n], state.p_vel[:n]
        rel_lm = (state.p_pos[None, n:] - pos[:, None]).reshape(n, -1)
        rel_other = (pos[self._others] - pos[:, None]).reshape(n, -1)
        base = jnp.concatenate([vel, pos, rel_lm, rel_other], axis=1)
        adv = jnp.concatenate(
            [base[:na], jnp.broadcast_to(vel[na:].reshape(-1), (na, 2 * (n - na)))], 1
        )
        other_prey_vel = vel[self._other_prey].reshape(n - na, -1)
        prey = jnp.concatenate([base[na:], other_prey_vel], axis=1)
        return dict(zip(self.agents, list(adv) + list(prey), strict=True))

    def rewards(self, state: MPEState, params: TagParams):
        na, n = self.num_adversaries, self.num_agents
        contacts = self._contacts(state, params)
        adv = 10.0 * jnp.sum(contacts).astype(jnp.float32)
        prey = -10.0 * jnp.sum(contacts, axis=0).astype(jnp.float32)
        prey = prey - jnp.sum(bound_penalty(state.p_pos[na:n]), axis=1)
        rew = jnp.concatenate([jnp.full(na, adv), prey])
        return dict(zip(self.agents, list(rew), strict=True))

    def is_terminal(self, state: MPEState, params: TagParams):
        caught = jnp.any(self._contacts(state, params), axis=0)
        return params.terminate_on_success & jnp.all(caught)

    def colors(self, state: MPEState) -> np.ndarray:
        na, n = self.num_adversaries, self.num_agents
        nl = len(self.layout.landmarks)
        return np.array(
            [[0.85, 0.35, 0.35]] * na + [[0.35, 0.85, 0.35]] * (n - na) + [[0.25] * 3] * nl
        )
