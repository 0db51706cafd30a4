"""``accelrl._lax.run_if``: a branch whose work is skipped under vmap when no element asks."""

import jax
import jax.numpy as jnp
import numpy as np

from accelrl._lax import run_if


def _counting(calls):
    def fn(x):
        jax.debug.callback(lambda: calls.append(1))
        return {"a": x["a"] + 10.0, "b": x["b"] * 2}

    return fn


def test_unbatched_is_a_cond():
    calls = []
    f = jax.jit(lambda p, x: run_if(p, _counting(calls), x))
    x = {"a": jnp.float32(1.0), "b": jnp.int32(3)}
    out = f(jnp.bool_(True), x)
    assert float(out["a"]) == 11.0 and int(out["b"]) == 6
    out = f(jnp.bool_(False), x)
    jax.effects_barrier()
    assert float(out["a"]) == 1.0 and int(out["b"]) == 3 and len(calls) == 1


def test_batched_runs_once_when_any_and_never_when_none():
    calls = []
    f = jax.jit(jax.vmap(lambda p, x: run_if(p, _counting(calls), x)))
    x = {"a": jnp.array([1.0, 2.0, 3.0]), "b": jnp.array([1, 2, 3])}
    out = f(jnp.array([True, False, True]), x)
    np.testing.assert_array_equal(out["a"], [11.0, 2.0, 13.0])
    np.testing.assert_array_equal(out["b"], [2, 2, 6])
    jax.effects_barrier()
    assert len(calls) == 1  # one batched call
    out = f(jnp.zeros(3, bool), x)
    jax.effects_barrier()
    np.testing.assert_array_equal(out["a"], x["a"])
    assert len(calls) == 1  # nothing asked: fn did not run
    # the control: lax.cond with a batched predicate becomes a select and runs fn anyway
    g = jax.jit(jax.vmap(lambda p, x: jax.lax.cond(p, _counting(calls), lambda x: x, x)))
    g(jnp.zeros(3, bool), x)
    jax.effects_barrier()
    assert len(calls) == 2


def test_a_closure_over_a_traced_value_is_refused():
    """Work on a closed-over traced value would be hoisted out of the loop (run every call)."""
    import pytest

    def f(p, x, k):
        return run_if(p, lambda x: x + jax.random.uniform(k), x)

    with pytest.raises(TypeError, match="closes over traced values"):
        jax.jit(f)(jnp.bool_(True), jnp.float32(1.0), jax.random.key(0))
    # through the operand (the key advanced, so draws stay in the branch) it runs
    g = jax.jit(
        lambda p, x, k: run_if(
            p, lambda c: (c[0] + jax.random.uniform(c[1]), jax.random.fold_in(c[1], 1)), (x, k)
        )[0]
    )
    assert float(g(jnp.bool_(False), jnp.float32(1.0), jax.random.key(0))) == 1.0
    assert float(g(jnp.bool_(True), jnp.float32(1.0), jax.random.key(0))) > 1.0
