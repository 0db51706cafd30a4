"""Action distributions shared by the agents, built on distrax.

* :func:`masked_categorical` for discrete actions (with an optional validity mask),
* :func:`diag_gaussian` for continuous actions (PPO),
* :func:`tanh_gaussian` for bounded continuous actions (SAC): a diagonal Gaussian squashed by
  ``tanh`` and scaled affinely onto ``[low, high]``; ``log_prob`` includes the Jacobian.

All functions accept arbitrary leading batch dimensions.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp

# Logit given to invalid actions. Large and finite rather than -inf: with -inf, entropy and
# KL terms compute 0 * -inf = NaN; with this value the probability underflows to exactly 0,
# and Gumbel-max sampling can never pick it (Gumbel noise in float32 is bounded by ~90).
MASKED_LOGIT = -1e9


def mask_logits(logits: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Replace the logits of invalid actions by :data:`MASKED_LOGIT`.

    Args:
        logits: ``f32[..., K]``.
        mask: ``bool[..., K]`` (True = valid) or None (all valid).

    Returns:
        ``f32[..., K]``. A row with no valid action is left unmasked (uniform over the raw
        logits), so that sampling stays well defined; environments must not produce it.
    """
    if mask is None:
        return logits
    mask = jnp.asarray(mask, bool)
    any_valid = jnp.any(mask, axis=-1, keepdims=True)
    return jnp.where(mask | ~any_valid, logits, MASKED_LOGIT)


def masked_categorical(logits: jax.Array, mask: jax.Array | None = None) -> distrax.Categorical:
    """Categorical over ``K`` actions that never samples an invalid one.

    Args:
        logits: ``f32[..., K]`` unnormalised log-probabilities.
        mask: ``bool[..., K]``, True where the action is valid; None means all valid.

    Returns:
        A ``distrax.Categorical`` with batch shape ``[...]``; invalid actions have probability
        exactly 0 (their log-probability is about ``-1e9``) and contribute 0 to the entropy.
    """
    return distrax.Categorical(logits=mask_logits(logits, mask))


def diag_gaussian(mean: jax.Array, log_std: jax.Array) -> distrax.MultivariateNormalDiag:
    """Diagonal Gaussian over ``D``-dimensional actions.

    Args:
        mean: ``f32[..., D]``.
        log_std: ``f32[..., D]`` or broadcastable to it (e.g. a state-independent ``f32[D]``).

    Returns:
        ``distrax.MultivariateNormalDiag`` with event shape ``[D]``; ``log_prob`` sums over ``D``.
    """
    scale = jnp.broadcast_to(jnp.exp(log_std), mean.shape)
    return distrax.MultivariateNormalDiag(loc=mean, scale_diag=scale)


class MaskedDiagGaussian:
    """Diagonal Gaussian over padded action vectors: only the dimensions where ``mask`` is True
    count (multi-agent teams whose agents have different action sizes share one padded head).

    ``log_prob`` and ``entropy`` sum distrax's per-dimension ``Normal`` terms over the valid
    dimensions; ``sample`` and ``mode`` are 0 in the padding.

    Args:
        mean: ``f32[..., D]``.
        log_std: broadcastable to ``mean``.
        mask: ``bool[..., D]`` broadcastable to ``mean`` (True = a real action dimension).
    """

    def __init__(self, mean: jax.Array, log_std: jax.Array, mask: jax.Array):
        self.mask = jnp.broadcast_to(jnp.asarray(mask, bool), mean.shape)
        self.normal = distrax.Normal(mean, jnp.broadcast_to(jnp.exp(log_std), mean.shape))

    def _masked_sum(self, x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.where(self.mask, x, 0.0), axis=-1)

    def sample(self, seed: jax.Array) -> jax.Array:
        """``f32[..., D]``."""
        return jnp.where(self.mask, self.normal.sample(seed=seed), 0.0)

    def mode(self) -> jax.Array:
        """The mean, ``f32[..., D]`` (0 in the padding)."""
        return jnp.where(self.mask, self.normal.mode(), 0.0)

    def log_prob(self, value: jax.Array) -> jax.Array:
        """``f32[...]``: the log-density of the valid dimensions."""
        return self._masked_sum(self.normal.log_prob(value))

    def entropy(self) -> jax.Array:
        """``f32[...]``: the entropy of the valid dimensions."""
        return self._masked_sum(self.normal.entropy())


def tanh_gaussian(
    mean: jax.Array, log_std: jax.Array, low: jax.Array | float, high: jax.Array | float
) -> distrax.Transformed:
    """Diagonal Gaussian squashed by ``tanh`` and rescaled onto ``[low, high]``.

    ``y = (high + low) / 2 + (high - low) / 2 * tanh(x)`` with ``x ~ N(mean, exp(log_std))``;
    ``log_prob(y) = log N(x) - sum_d log|dy_d / dx_d|`` (distrax's numerically stable ``tanh``
    log-determinant). Use ``sample_and_log_prob`` for the policy loss: it never inverts
    ``tanh``, so actions at the bounds do not produce infinities.

    Args:
        mean: ``f32[..., D]`` pre-squash mean.
        log_std: ``f32[..., D]`` pre-squash log standard deviation.
        low: lower action bounds, ``f32[D]`` or scalar.
        high: upper action bounds, ``f32[D]`` or scalar.

    Returns:
        A ``distrax.Transformed`` distribution with event shape ``[D]``.
    """
    low = jnp.broadcast_to(jnp.asarray(low, mean.dtype), mean.shape[-1:])
    high = jnp.broadcast_to(jnp.asarray(high, mean.dtype), mean.shape[-1:])
    base = diag_gaussian(mean, log_std)
    squash = distrax.Chain(
        [distrax.ScalarAffine(shift=(high + low) / 2, scale=(high - low) / 2), distrax.Tanh()]
    )
    return distrax.Transformed(base, distrax.Block(squash, ndims=1))


def tanh_gaussian_mode(
    mean: jax.Array, low: jax.Array | float, high: jax.Array | float
) -> jax.Array:
    """Deterministic action of a :func:`tanh_gaussian` policy: the squashed mean, ``f32[..., D]``."""
    low = jnp.asarray(low, mean.dtype)
    high = jnp.asarray(high, mean.dtype)
    return (high + low) / 2 + (high - low) / 2 * jnp.tanh(mean)


__all__ = [
    "MASKED_LOGIT",
    "MaskedDiagGaussian",
    "diag_gaussian",
    "mask_logits",
    "masked_categorical",
    "tanh_gaussian",
    "tanh_gaussian_mode",
]
