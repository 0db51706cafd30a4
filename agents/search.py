"""Planning with Gumbel MuZero search (``mctx``) on an environment that is its own model.

In the spirit of mallocMuZero (Wang et al., arXiv 2305.07440), but with the true dynamics
instead of a learned model: every tree node holds an environment state, and expanding a node
plays the action with the environment's ``step_env`` (never ``reset``: the episode ends at its
terminal state, where the discount becomes 0). A trained policy-value network (PPO's
actor-critic) supplies the prior logits and the value of every node; the search improves the
prior with Gumbel sequential halving at the root (Danihelka et al., 2022,
``mctx.gumbel_muzero_policy``).

Illegal actions: ``mctx``'s ``invalid_actions`` applies only at the root, so the prior logits
of *every* node are masked with that node's ``action_mask`` (to
:data:`accelrl.agents.distributions.MASKED_LOGIT`), and the root also passes
``invalid_actions``. An illegal action therefore never gets a visit. Observations without an
``action_mask`` (plain discrete actions) leave every action legal.

The same search (one :meth:`GumbelSearch.recurrent_fn`) serves test-time planning with a PPO
network and the acting and training targets of the ``gumbel_az`` agent
(:mod:`accelrl.agents.gumbel_az`). The model is only exact for environments whose ``step_env``
ignores its key: :func:`check_deterministic` refuses the others.

Everything is batched over a leading axis of copies (one program per copy: the env params
carry the same axis) and jittable, e.g. a whole evaluation episode is one ``lax.scan``:

>>> search = GumbelSearch(env, agent.network.apply, SearchConfig(num_simulations=16))
>>> final_states, returns = search.episodes(agent_state.params, test_params, key)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from accelrl.agents.base import UnsupportedEnvironmentError
from accelrl.agents.distributions import mask_logits

NetworkApply = Callable[[Any, Any], tuple[Any, jax.Array]]
"""``apply(net_params, obs[B, ...]) -> (pi, value f32[B])`` with ``pi.logits f32[B, A]``."""


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Static settings of the search (they fix the compiled program)."""

    num_simulations: int = 16
    """Simulations (node expansions) per decision."""
    max_num_considered_actions: int = 16
    """Actions sampled at the root by Gumbel top-k (capped at the number of actions)."""
    gumbel_scale: float = 1.0
    """Scale of the root Gumbel noise; 0 makes the search deterministic given the network."""
    discount: float = 1.0
    """Discount between non-terminal nodes (1: undiscounted episodic return; 0 at the end)."""
    value_scale: float = 0.1
    """``mctx.qtransform_completed_by_mix_value``'s ``value_scale``."""
    maxvisit_init: float = 50.0
    """``mctx.qtransform_completed_by_mix_value``'s ``maxvisit_init``."""

    def validate(self) -> SearchConfig:
        """Raise ``ValueError`` naming the field for impossible settings; return ``self``."""
        for name in ("num_simulations", "max_num_considered_actions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SearchConfig.{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"SearchConfig.discount must be in [0, 1], got {self.discount}")
        if self.gumbel_scale < 0 or self.value_scale <= 0 or self.maxvisit_init <= 0:
            raise ValueError(
                "SearchConfig.gumbel_scale must be >= 0, value_scale and maxvisit_init > 0"
            )
        return self


def check_deterministic(env: Any, who: str = "GumbelSearch") -> None:
    """Refuse an environment that does not declare a deterministic ``step_env``.

    An environment declares it with the class attribute ``deterministic_step = True`` (a
    promise that ``step_env``'s result does not depend on its key, checked for the built-in
    ones in ``tests/envs/test_deterministic_step.py``); resets may be random.

    Raises:
        UnsupportedEnvironmentError: one line naming the environment and the flag.
    """
    if getattr(env, "deterministic_step", False) is not True:
        raise UnsupportedEnvironmentError(
            f"{who} uses the environment as its own model and needs a deterministic step_env; "
            f"{type(env).__name__} does not declare deterministic_step = True"
        )


def _action_mask(obs: Any) -> jax.Array | None:
    return obs["action_mask"] if isinstance(obs, dict) and "action_mask" in obs else None


class GumbelSearch:
    """Gumbel MuZero search over a single-agent, masked-discrete gymnax environment.

    Args:
        env: the (unbatched) environment; its observations may be dicts with ``"action_mask"``
            (``bool[A]``, True = legal) and its ``step_env(key, state, action, params)`` is the
            model (``deterministic_step = True`` required, see :func:`check_deterministic`).
        apply: the policy-value network (:data:`NetworkApply`), e.g. ``agent.network.apply``
            of a trained PPO agent (the observations it gets are the environment's own).
        config: search settings.
    """

    def __init__(self, env: Any, apply: NetworkApply, config: SearchConfig = SearchConfig()):
        import mctx  # noqa: F401  (fail early, with the import error, if mctx is missing)

        check_deterministic(env)
        self.env = env
        self.apply = apply
        self.config = config.validate()

    # -- one decision -------------------------------------------------------------------------

    def _evaluate(self, net_params: Any, obs: dict) -> tuple[jax.Array, jax.Array]:
        """Masked prior logits ``f32[B, A]`` and values ``f32[B]`` of a batch of nodes."""
        pi, value = self.apply(net_params, obs)
        return mask_logits(pi.logits, _action_mask(obs)), value

    def recurrent_fn(self, params: tuple[Any, Any], key: jax.Array, action, state):
        """``mctx``'s recurrent function: expand a batch of nodes by playing ``action i32[B]``
        with ``step_env`` from env ``state`` (leaves ``[B, ...]``); ``params`` is ``(net_params,
        env_params [B, ...])``. A node at or past the end of its episode has reward 0,
        discount 0 and value 0. Returns ``(mctx.RecurrentFnOutput, next states)``."""
        import mctx

        net_params, env_params = params
        batch = action.shape[0]
        was_terminal = jax.vmap(self.env.is_terminal)(state, env_params)
        obs, state, reward, terminated, _ = jax.vmap(self.env.step_env)(
            jax.random.split(key, batch), state, action, env_params
        )
        logits, value = self._evaluate(net_params, obs)
        end = terminated | was_terminal
        out = mctx.RecurrentFnOutput(
            reward=jnp.where(was_terminal, 0.0, reward).astype(jnp.float32),
            discount=jnp.where(end, 0.0, self.config.discount).astype(jnp.float32),
            prior_logits=logits,
            value=jnp.where(end, 0.0, value).astype(jnp.float32),
        )
        return out, state

    def search(
        self, net_params: Any, env_params: Any, key: jax.Array, obs: dict, state: Any
    ) -> Any:
        """One search from a batch of roots.

        Args:
            net_params: the network's parameters.
            env_params: env params with a leading ``[B]`` axis on every leaf (one per root).
            key: PRNG key.
            obs: the roots' observations (leaves ``[B, ...]``).
            state: the roots' env states (leaves ``[B, ...]``).

        Returns:
            ``mctx.PolicyOutput``: ``action i32[B]`` (the chosen, always legal action),
            ``action_weights f32[B, A]`` (the improved policy) and the ``search_tree``.
        """
        import mctx

        cfg = self.config
        mask = _action_mask(obs)
        logits, value = self._evaluate(net_params, obs)
        root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=state)
        num_actions = logits.shape[-1]
        qtransform = lambda tree, node: mctx.qtransform_completed_by_mix_value(  # noqa: E731
            tree, node, value_scale=cfg.value_scale, maxvisit_init=cfg.maxvisit_init
        )
        return mctx.gumbel_muzero_policy(
            params=(net_params, env_params),
            rng_key=key,
            root=root,
            recurrent_fn=self.recurrent_fn,
            num_simulations=cfg.num_simulations,
            invalid_actions=None if mask is None else ~jnp.asarray(mask, bool),
            max_num_considered_actions=min(cfg.max_num_considered_actions, num_actions),
            gumbel_scale=cfg.gumbel_scale,
            qtransform=qtransform,
        )

    # -- whole episodes ------------------------------------------------------------------------

    def episodes(
        self, net_params: Any, env_params: Any, key: jax.Array, num_steps: int | None = None
    ) -> tuple[Any, jax.Array]:
        """Play one episode per copy, every action chosen by a search (jittable).

        Args:
            net_params: the network's parameters.
            env_params: env params with a leading ``[B]`` axis (one episode per copy).
            key: PRNG key.
            num_steps: most steps to play (default ``env_params.max_steps_in_episode``); the
                loop stops early once every copy's episode ended, and copies whose episode
                ended before the others keep stepping at no reward and no change to their
                return.

        Returns:
            ``(final env states [B, ...], returns f32[B])``: undiscounted returns of the
            first episode of each copy.
        """
        out = self.episode_records(net_params, env_params, key, num_steps)
        return out["state"], out["return"]

    def episode_records(
        self, net_params: Any, env_params: Any, key: jax.Array, num_steps: int | None = None
    ) -> dict[str, Any]:
        """:meth:`episodes` with lengths: ``{"state": final env states [B, ...], "return":
        f32[B], "length": i32[B]}`` (length: steps until the episode ended, ``num_steps`` for
        one still running)."""
        batch = jax.tree.leaves(env_params)[0].shape[0]
        steps = int(num_steps or env_params.max_steps_in_episode)
        key, k_reset = jax.random.split(key)
        obs, state = jax.vmap(self.env.reset_env)(jax.random.split(k_reset, batch), env_params)

        def running(carry):
            t, _, _, state, _, _ = carry
            return (t < steps) & ~jnp.all(jax.vmap(self.env.is_terminal)(state, env_params))

        def body(carry):
            t, key, obs, state, ret, length = carry
            key, k_search, k_step = jax.random.split(key, 3)
            action = self.search(net_params, env_params, k_search, obs, state).action
            done = jax.vmap(self.env.is_terminal)(state, env_params)
            obs, state, reward, _, _ = jax.vmap(self.env.step_env)(
                jax.random.split(k_step, batch), state, action, env_params
            )
            return t + 1, key, obs, state, ret + jnp.where(done, 0.0, reward), length + ~done

        # A while loop: it stops once every copy's episode ended (or after ``steps``).
        zero = jnp.zeros(batch, jnp.float32)
        start = (jnp.int32(0), key, obs, state, zero, jnp.zeros(batch, jnp.int32))
        _, _, obs, state, ret, length = jax.lax.while_loop(running, body, start)
        return {"state": state, "return": ret, "length": length}


__all__ = ["GumbelSearch", "NetworkApply", "SearchConfig", "check_deterministic"]
