"""Fast start and fast failure: what ``import accelrl.envs`` loads, checked in a fresh interpreter.

Importing gymnax imports its whole environment zoo (matplotlib, seaborn, scipy.stats, pandas:
seconds), and accelrl's environment modules import gymnax (their base class). So importing
``accelrl.envs``, listing ids and failing on an unknown id must import none of them; ``make``
imports them on first use. Importing gymnax also starts a JAX backend, after which XLA_FLAGS and
platform settings no longer take effect. No timings here (machines are noisy): only which modules
are loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Heavy modules that importing accelrl.envs must not load (plotting, gymnax's zoo, agent-side
# libraries) and accelrl's own environment modules, imported by ``make`` on first use.
NOT_ON_IMPORT = (
    "gymnax",
    "seaborn",
    "matplotlib",
    "scipy.stats",
    "pandas",
    "PIL",
    "imageio",
    "tqdm",
    "orbax",
    "distrax",
    "tensorflow_probability",
    "accelrl.envs.three_body",
    "accelrl.envs.malloc",
    "accelrl.envs.mpe",
)


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    prelude = textwrap.dedent(
        f"""
        import json, sys
        WATCH = {NOT_ON_IMPORT!r}
        def loaded():
            return sorted(m for m in WATCH if m in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_lists_and_fails_fast_without_heavy_modules():
    out = _run(
        """
        import accelrl.envs as envs
        after_import = loaded()
        from jax._src import xla_bridge
        backend = xla_bridge.backends_are_initialized()  # gymnax's import starts one
        all_ids = envs.registered_envs(include_gymnax=True)
        try:
            envs.make("CartPol-v1")
        except envs.UnknownEnvironmentError as err:
            message = str(err)
        import gymnasium
        in_gymnasium = "accelrl/ThreeBody-v0" in gymnasium.registry
        print(json.dumps({"after_import": after_import, "after_lookups": loaded(),
                          "ids": all_ids, "message": message, "in_gymnasium": in_gymnasium,
                          "backend": backend}))
        """
    )
    assert out["after_import"] == [], f"import accelrl.envs loaded {out['after_import']}"
    assert out["after_lookups"] == [], f"listing ids / an unknown id loaded {out['after_lookups']}"
    assert "CartPole-v1" in out["ids"] and "ThreeBody-v0" in out["ids"]
    assert "CartPole-v1" in out["message"]
    assert out["in_gymnasium"]
    # No JAX backend yet: XLA_FLAGS and jax.config platform settings made after the import apply.
    assert not out["backend"]


def test_make_imports_gymnax_and_env_modules_on_demand():
    out = _run(
        """
        import accelrl.envs as envs
        env, params = envs.make("CartPole-v1")
        after_gymnax = loaded()
        env, params = envs.make("MPE_simple_v3")
        after_mpe = loaded()
        malloc_game = envs.malloc.MallocGame.__name__  # submodule attribute, imported on access
        print(json.dumps({"after_gymnax": after_gymnax, "after_mpe": after_mpe,
                          "n_agents": env.num_agents, "malloc_game": malloc_game,
                          "no_such": hasattr(envs, "no_such_module")}))
        """
    )
    assert "gymnax" in out["after_gymnax"]
    assert "accelrl.envs.mpe" not in out["after_gymnax"]
    assert "accelrl.envs.mpe" in out["after_mpe"]
    assert "accelrl.envs.three_body" not in out["after_mpe"]
    assert out["n_agents"] == 1
    assert out["malloc_game"] == "MallocGame" and not out["no_such"]
