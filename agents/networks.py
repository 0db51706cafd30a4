"""Networks shared by the agents (flax linen).

* :class:`MLP`: a multilayer perceptron with orthogonal initialisation (the torso of every
  agent here; SAC builds its actor and twin critics from it).
* :class:`ActorCritic`: policy and value heads for PPO, over discrete, masked-discrete
  (observation dict ``{"observation", "action_mask"}``) or continuous actions, with a separate
  or a shared torso. It returns a distrax distribution and the value estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from accelrl.agents.distributions import diag_gaussian, masked_categorical

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """Look up an activation by name (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def split_observation(obs: Any) -> tuple[jax.Array, jax.Array | None]:
    """Features and action mask of an observation.

    Args:
        obs: ``f32[..., F]`` or a dict ``{"observation": f32[..., F], "action_mask": bool[..., K]}``.

    Returns:
        ``(features f32[..., F], mask bool[..., K] or None)``.
    """
    if isinstance(obs, dict):
        return jnp.asarray(obs["observation"], jnp.float32), obs["action_mask"]
    return jnp.asarray(obs, jnp.float32), None


class MLP(nn.Module):
    """Multilayer perceptron on the last axis: ``f32[..., F] -> f32[..., out_dim]``.

    Hidden layers use orthogonal initialisation with gain ``hidden_scale`` and zero biases
    (the PPO implementation details of Huang et al., 2022); the output layer uses ``out_scale``.
    """

    hidden_sizes: Sequence[int]
    """Width of each hidden layer, e.g. ``(64, 64)``."""
    activation: str = "tanh"
    """Name of the hidden activation (see :data:`ACTIVATIONS`)."""
    out_dim: int | None = None
    """Size of the output layer; None returns the last hidden layer's activations."""
    out_scale: float = 1.0
    """Orthogonal-initialisation gain of the output layer."""
    hidden_scale: float = float(np.sqrt(2.0))
    """Orthogonal-initialisation gain of the hidden layers."""
    layer_norm: bool = False
    """Apply LayerNorm after every hidden dense layer (before the activation)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for width in self.hidden_sizes:
            x = nn.Dense(width, kernel_init=nn.initializers.orthogonal(self.hidden_scale))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)
        return x


class ActorCritic(nn.Module):
    """Policy and value function: ``obs -> (pi, value)``.

    The observation is ``f32[..., F]`` or, for masked-discrete actions, a dict with
    ``"observation"`` ``f32[..., F]`` and ``"action_mask"`` ``bool[..., K]``; invalid actions
    are never sampled. Continuous policies are a diagonal Gaussian with a state-independent
    learned log standard deviation (actions are clipped to the bounds by the agent, outside the
    log-probability, as in CleanRL/PureJaxRL).

    Returns:
        ``pi``: a distrax distribution with batch shape ``[...]`` (event ``[]`` for discrete,
        ``[D]`` for continuous); ``value``: ``f32[...]``.
    """

    action_dim: int
    """Number of discrete actions ``K``, or the continuous action dimension ``D``."""
    continuous: bool = False
    """Diagonal-Gaussian policy (True) or categorical (False)."""
    hidden_sizes: Sequence[int] = (64, 64)
    """Hidden layer widths of the actor and critic torsos."""
    activation: str = "tanh"
    """Hidden activation name."""
    shared_torso: bool = False
    """One torso feeding both heads (True) or separate actor and critic networks (False)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of continuous policies."""

    @nn.compact
    def __call__(self, obs: Any) -> tuple[distrax.Distribution, jax.Array]:
        x, mask = split_observation(obs)
        if self.shared_torso:
            h = MLP(self.hidden_sizes, self.activation, name="torso")(x)
            out = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01), name="actor_head")(h)
            value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), name="critic_head")(h)
        else:
            out = MLP(self.hidden_sizes, self.activation, self.action_dim, out_scale=0.01, name="actor")(x)
            value = MLP(self.hidden_sizes, self.activation, 1, out_scale=1.0, name="critic")(x)
        if self.continuous:
            if mask is not None:
                raise ValueError("action masks are only supported with discrete actions")
            log_std = self.param(
                "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
            )
            pi = diag_gaussian(out, log_std)
        else:
            pi = masked_categorical(out, mask)
        return pi, value[..., 0]


__all__ = ["ACTIVATIONS", "MLP", "ActorCritic", "activation_fn", "split_observation"]
