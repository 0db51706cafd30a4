"""Control flow that stays cheap under ``vmap``.

``jax.lax.cond`` with a batched predicate (inside a ``vmap`` over seeds, say) becomes a
``select``: both branches run on every call. :func:`run_if` is a branch that, batched, still
runs its work only when some element of the batch asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp

T = TypeVar("T")


def _closes_over_tracers(fn: Callable, operand) -> bool:
    consts = jax.make_jaxpr(fn)(operand).consts
    return any(isinstance(c, jax.core.Tracer) for c in consts)


def run_if(pred: jax.Array, fn: Callable[[T], T], operand: T) -> T:
    """``fn(operand)`` where ``pred`` (``bool[]``), else ``operand``.

    Unbatched it behaves as ``lax.cond(pred, fn, identity, operand)``. Under ``vmap`` with a
    batched ``pred`` it is a ``while_loop`` of at most one iteration: ``fn`` runs once for the
    whole batch when any element's ``pred`` holds, and not at all otherwise, and each element
    keeps ``fn``'s result only where its own ``pred`` holds (a ``lax.cond`` would run ``fn``
    on every call).

    ``fn`` must return a pytree with ``operand``'s structure, shapes and dtypes, and must take
    every traced value it uses through ``operand`` (a key, params, a mask), never from its
    closure (a closure over a traced value raises a ``TypeError``). XLA moves work that depends
    only on loop-invariant values out of the loop, where it runs on every call; an operand
    leaf that ``fn`` returns unchanged is loop-invariant, so ``fn`` should return a random key
    it draws from advanced (``jax.random.fold_in(key, 1)``), or the draws are hoisted. (An
    ``optimization_barrier`` on the carry would pin the work inside, but it fails under a
    vmap whose inputs are sharded over a mesh axis on jax 0.10.)
    """
    if _closes_over_tracers(fn, operand):
        raise TypeError(
            "run_if: fn closes over traced values; pass them in operand (XLA would hoist the "
            "work on them out of the branch and run it on every call)"
        )

    def body(carry):
        flag, x = carry
        return jnp.zeros_like(flag), fn(x)

    return jax.lax.while_loop(lambda c: c[0], body, (jnp.asarray(pred, bool), operand))[1]


__all__ = ["run_if"]
