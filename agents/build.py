"""Runs built by the library: ``build`` an agent from an env and a name, ``load_run`` a run folder.

The command-line tools, the curricula and the tuners all go through these two functions, so a
run is configured the same way everywhere:

>>> agent, config, hparams = build("CartPole-v1", "ppo", {"total_timesteps": 20_000})
>>> agent, state, config, hparams = load_run("runs/cartpole")   # state: [S, ...] over seeds

A run folder's ``config.json`` (written by :func:`write_run_config`) records the env id, its
``make`` kwargs, the agent, the seeds, every config and hparams field and any reset strategy,
so ``--resume`` and ``accelrl-eval`` rebuild the same environment and agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

from accelrl.agents.configs import apply_overrides, config_to_dict, hparams_to_dict
from accelrl.agents.core import float32_tree
from accelrl.agents.registry import agent_spec
from accelrl.envs.vec import BatchedEnv

CONFIG_FILE = "config.json"


def env_name(env: Any) -> str:
    """The id-like name of an environment object (for per-family defaults)."""
    single = env.env if isinstance(env, BatchedEnv) else env
    name = getattr(single, "name", None)
    return name if isinstance(name, str) else type(single).__name__


def build(
    env: str | Any,
    agent: str,
    overrides: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    env_params: Any = None,
    env_id: str | None = None,
) -> tuple[Any, Any, Any]:
    """Validate everything and build ``(agent, config, hparams)`` without compiling.

    The config starts from the agent's registered defaults for the environment (its id, else
    its family, else generic), the hparams from the agent's defaults plus that entry's hparams;
    ``overrides`` (config and hparams fields by name, typed values or strings) go on top.

    Args:
        env: an environment id (made with ``make(env, **env_kwargs)``), or an environment
            object: single, or batched with a reset strategy or wrappers inside (a curriculum,
            snapshot starts), used as is (its ``num_envs`` becomes the config's).
        agent: a registered agent name (``registered_agents()``).
        overrides: ``{field: value}`` for config or hparams fields.
        env_kwargs: ``make`` keyword arguments (only with an id).
        env_params: environment params (default: those ``make`` returns, or the env's
            defaults).
        env_id: the id whose defaults apply when ``env`` is an object (default: its name).

    Returns:
        ``(agent, config, hparams)``; hparams unbatched, every leaf ``f32[]``.

    Raises:
        UnknownAgentError, UnknownEnvironmentError, ValueError (unknown or invalid fields,
        impossible sizes), UnsupportedEnvironmentError: all before any compilation.
    """
    spec = agent_spec(agent)
    if isinstance(env, str):
        from accelrl.envs import make

        env_id = env
        env, made_params = make(env, **dict(env_kwargs or {}))
        env_params = made_params if env_params is None else env_params
    else:
        if env_kwargs:
            raise ValueError("env_kwargs apply to an environment id, not to an environment object")
        env_id = env_id or env_name(env)
    config, hp_defaults = spec.default_config(env_id)
    overrides = dict(overrides or {})
    if isinstance(env, BatchedEnv) and "num_envs" not in overrides:
        overrides["num_envs"] = env.num_envs  # a batched env fixes the batch size
    # Config first (shapes): unknown names in either class are rejected here.
    config, _ = apply_overrides(config, spec.hparams_cls(), overrides)
    built = spec.builder(config, env, env_params)
    hparams = built.default_hparams().replace(**hp_defaults)
    hp_names = set(hparams.__dataclass_fields__)
    _, hparams = apply_overrides(
        config, hparams, {k: v for k, v in overrides.items() if k.replace("-", "_") in hp_names}
    )
    hparams = float32_tree(hparams)
    check_hparams(hparams)
    return built, config, hparams


# Ranges of hparams that have one, by field name (inclusive bounds; None = unbounded).
HPARAM_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    # name: (low, high, low_exclusive)
    "gamma": (0.0, 1.0, False),
    "gae_lambda": (0.0, 1.0, False),
    "tau": (0.0, 1.0, False),
    "learning_rate": (0.0, None, True),
    "actor_lr": (0.0, None, True),
    "critic_lr": (0.0, None, True),
    "alpha_lr": (0.0, None, True),
    "alpha": (0.0, None, True),
    "clip_eps": (0.0, None, False),
    "value_clip_eps": (0.0, None, False),
    "ent_coef": (0.0, None, False),
    "vf_coef": (0.0, None, False),
    "max_grad_norm": (0.0, None, True),
    "reward_scale": (0.0, None, True),
    "epsilon_start": (0.0, 1.0, False),
    "epsilon_end": (0.0, 1.0, False),
    "exploration_fraction": (0.0, 1.0, True),
    "weight_decay": (0.0, None, False),
    "huber_delta": (0.0, None, True),
}


def check_hparams(hparams: Any) -> None:
    """Raise ``ValueError`` for hparams outside their range (gamma and lambda in [0, 1],
    coefficients >= 0, learning rates > 0) or non-finite; batched hparams are checked leafwise."""
    import numpy as np

    for name in hparams.__dataclass_fields__:
        value = np.asarray(jax.device_get(getattr(hparams, name)), np.float64)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"hparam {name} must be finite, got {value.tolist()}")
        low, high, low_excl = HPARAM_RANGES.get(name, (None, None, False))
        too_low = low is not None and np.any(value <= low if low_excl else value < low)
        too_high = high is not None and np.any(value > high)
        if too_low or too_high:
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            interval = f"{'(' if low_excl else '['}{lo}, {hi}]"
            raise ValueError(f"hparam {name} must be in {interval}, got {value.tolist()}")


def run_config(
    env_id: str,
    agent: str,
    seeds: Sequence[int],
    config: Any,
    hparams: Any,
    env_kwargs: Mapping[str, Any] | None = None,
    reset_strategy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-ready description of a run (``config.json``): enough to rebuild it."""
    return {
        "env": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "agent": agent,
        "seeds": [int(s) for s in seeds],
        "config": config_to_dict(config),
        "hparams": hparams_to_dict(hparams),
        "reset_strategy": None if reset_strategy is None else dict(reset_strategy),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
    }


def write_run_config(run_dir: str | Path, meta: Mapping[str, Any]) -> Path:
    """Write ``run_dir/config.json`` atomically (temporary file, then rename)."""
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(dict(meta), indent=2))
    tmp.replace(path)
    return path


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder.

    Raises:
        FileNotFoundError: no ``config.json`` (not a run folder).
        ValueError: a ``config.json`` that is not valid JSON or lacks the run's keys.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {CONFIG_FILE} (not an accelrl run folder)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    missing = [k for k in ("env", "agent", "seeds", "config", "hparams") if k not in meta]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    return meta


def build_from_config(
    meta: Mapping[str, Any], env: Any = None, env_params: Any = None
) -> tuple[Any, Any, Any]:
    """``build`` the agent a ``config.json`` describes (``env``: an environment object to use
    instead of making the recorded id, e.g. one with a reset strategy)."""
    overrides = {**meta["config"], **meta["hparams"]}
    if env is None:
        return build(meta["env"], meta["agent"], overrides, meta.get("env_kwargs") or {})
    return build(env, meta["agent"], overrides, env_params=env_params, env_id=meta["env"])


def load_run(run_dir: str | Path, env: Any = None) -> tuple[Any, Any, Any, Any]:
    """Reload a finished or interrupted run folder.

    Args:
        run_dir: a folder written by ``accelrl-train`` (or a :class:`Runner` with
            :func:`write_run_config`).
        env: optional environment object to build the agent on (the caller rebuilds an
            environment with a reset strategy and passes it in); default: ``make`` of the
            recorded id and kwargs.

    Returns:
        ``(agent, state, config, hparams)``: ``state`` is the newest checkpoint's train state,
        batched over the run's seeds (leading axis ``S``, in ``config.json``'s seed order), or
        None when the run has no checkpoint yet; ``hparams`` are the run's (unbatched).
    """
    from accelrl.agents.checkpoint import latest_checkpoint
    from accelrl.agents.runner import Runner

    meta = read_run_config(run_dir)
    agent, config, hparams = build_from_config(meta, env)
    state = None
    if latest_checkpoint(Path(run_dir) / "checkpoints") is not None:
        runner = Runner(agent, meta["seeds"], hparams, out_dir=run_dir, progress=False)
        state, _ = runner.restore()
    return agent, state, config, hparams


__all__ = [
    "CONFIG_FILE",
    "HPARAM_RANGES",
    "build",
    "build_from_config",
    "check_hparams",
    "env_name",
    "load_run",
    "read_run_config",
    "run_config",
    "write_run_config",
]
