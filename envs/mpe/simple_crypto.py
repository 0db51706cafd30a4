"""``MPE_simple_crypto_v3``: Alice sends a bit to Bob with a shared key; Eve eavesdrops.

``state.goals = [goal landmark, key landmark]``; the message and the key are the landmarks'
colours, one-hot vectors of size ``dim_c = 4``. Nobody moves. Rewards (utterances ``c``; an
all-zero utterance counts as silence and adds nothing): Eve ``-|c_eve - goal|^2``; Alice and
Bob ``|c_eve - goal|^2 - |c_bob - goal|^2``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from accelrl.envs.mpe.world import DEFAULT_ACCEL, MPEEnv, MPEParams, MPEState, WorldLayout

_DIM_C = 4
_NUM_LANDMARKS = 2


class SimpleCrypto(MPEEnv):
    """``eve_0``, ``bob_0``, ``alice_0`` (speak only); two landmarks.

    Observations: Eve ``[alice_comm]`` (4); Bob ``[key, alice_comm]`` (8); Alice ``[message,
    key]`` (8). Actions: ``Discrete(4)`` (say one-hot word) or ``Box(0, 1, (4,))`` (say it).
    """

    scenario = "simple_crypto_v3"

    def __init__(self, action_type: str = "discrete"):
        self.layout = WorldLayout(
            agents=("eve_0", "bob_0", "alice_0"),
            landmarks=("landmark 0", "landmark 1"),
            dim_c=_DIM_C,
            movable=(False,) * 3,
            silent=(False,) * 3,
            collide=(False,) * 5,
            size=(0.05,) * 5,
            accel=(DEFAULT_ACCEL,) * 3,
            max_speed=(np.inf,) * 3,
        )
        super().__init__(action_type)

    def sample_goals(self, key):
        return jax.random.randint(key, (2,), 0, _NUM_LANDMARKS)

    def observations(self, state: MPEState, params: MPEParams):
        message = jax.nn.one_hot(state.goals[0], _DIM_C)
        secret = jax.nn.one_hot(state.goals[1], _DIM_C)
        alice_c = state.c[2]
        return {
            "eve_0": alice_c,
            "bob_0": jnp.concatenate([secret, alice_c]),
            "alice_0": jnp.concatenate([message, secret]),
        }

    def rewards(self, state: MPEState, params: MPEParams):
        message = jax.nn.one_hot(state.goals[0], _DIM_C)

        def err(c):  # squared error, 0 for silence
            return jnp.where(jnp.all(c == 0), 0.0, jnp.sum(jnp.square(c - message)))

        eve, bob = err(state.c[0]), err(state.c[1])
        good = eve - bob
        return {"eve_0": -eve, "bob_0": good, "alice_0": good}

    def colors(self, state: MPEState) -> np.ndarray:
        goal = int(state.goals[0])
        lms = np.eye(_DIM_C)[:_NUM_LANDMARKS, :3]
        return np.concatenate([[[0.75, 0.25, 0.25]], lms[goal][None], [[0.25] * 3], lms])
