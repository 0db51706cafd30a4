"""Runs built by the library: ``build`` an agent, ``build_run`` a run spec, ``load_run`` a folder.

The command-line tools, the curricula, the tuners and the experiments all go through these
functions, so a run is configured the same way everywhere:

>>> agent, config, hparams = build("CartPole-v1", "ppo", {"total_timesteps": 20_000})
>>> built = build_run(RunSpec(env="Pendulum-v1", agent="ppo",
...                           reset_strategy=StrategySpec("alp_gmm", {"task_space": "pendulum_dynamics"})))
>>> agent, state, config, hparams = load_run("runs/cartpole")   # state: [S, ...] over seeds

A run folder's ``config.json`` is its resolved :class:`~accelrl.agents.spec.RunSpec`
(:func:`write_spec`): the env id and ``make`` kwargs, the agent, the seeds, every config and
hparams field and the reset strategy with every setting, so ``--resume``, ``accelrl-eval`` and
:func:`load_run` rebuild the same environment, strategy and agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax

from accelrl.agents.configs import apply_overrides, config_to_dict, hparams_to_dict
from accelrl.agents.core import float32_tree
from accelrl.agents.registry import agent_spec
from accelrl.agents.spec import RunSpec, StrategySpec
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
    strategy: Any = None,
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
        strategy: a reset strategy (``accelrl.envs.reset.ResetStrategy``) for a single ``env``:
            the agent runs ``VecEnv(env, config.num_envs, strategy)`` (the config owns the
            number of copies).

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
    if strategy is not None:
        if isinstance(env, BatchedEnv):
            raise ValueError("a reset strategy applies to a single environment, not a batched one")
        from accelrl.envs.vec import VecEnv

        env = VecEnv(env, config.num_envs, strategy)
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


class BuiltRun(NamedTuple):
    """A run built from a spec: ``agent``; its ``config``; ``hparams`` (one setting, or a list
    of ``G`` settings for a grid); ``spec``: the resolved spec (every config and hparams field,
    every strategy setting), which is what the run folder's ``config.json`` holds."""

    agent: Any
    config: Any
    hparams: Any
    spec: RunSpec


def build_run(spec: RunSpec) -> BuiltRun:
    """Validate a spec and build its agent (with the batched env and reset strategy it names),
    without compiling.

    Raises:
        UnknownAgentError, UnknownEnvironmentError, UnknownStrategyError, ValueError (unknown
        or invalid fields and settings), TypeError, FileNotFoundError (a missing snapshot bank):
        all before any compilation.
    """
    from accelrl.envs.strategies import StrategyContext, settings_dict, strategy

    entry = strategy(spec.reset_strategy.name)
    settings = entry.settings(spec.reset_strategy.settings)
    made = entry.build(settings, StrategyContext(spec.env, dict(spec.env_kwargs), spec.agent))
    aspec = agent_spec(spec.agent)
    _check_names(spec.config, aspec.config_cls, "config")
    _check_names(spec.hparams, aspec.hparams_cls, "hparams")
    for setting in spec.grid:
        _check_names(setting, aspec.hparams_cls, "grid")
    agent, config, hparams = build(
        made.env,
        spec.agent,
        {**spec.config, **spec.hparams},
        env_params=made.params,
        env_id=spec.env,
        strategy=made.strategy,
    )
    from accelrl.agents.runner import check_data_parallel

    check_data_parallel(spec.run.data_parallel, agent)  # the devices and num_envs it splits
    resolved = spec.replace(
        config=config_to_dict(config),
        hparams=hparams_to_dict(hparams),
        reset_strategy=StrategySpec(spec.reset_strategy.name, settings_dict(made.settings)),
    )
    if entry.resolve is not None:  # the strategy's own parts of the spec (a teacher's measures)
        resolved = entry.resolve(made.settings, resolved)
    elif spec.curriculum is not None:
        raise ValueError(
            f"curriculum measurements need a teacher, not the {spec.reset_strategy.name!r} strategy"
        )
    if spec.grid:  # G settings, each over the run's hparams
        hparams = [float32_tree(apply_overrides(config, hparams, dict(g))[1]) for g in spec.grid]
        for h in hparams:
            check_hparams(h)
    return BuiltRun(agent, config, hparams, resolved)


def make_spec(
    env: str, agent: str, overrides: Mapping[str, Any] | None = None, **fields: Any
) -> RunSpec:
    """A :class:`RunSpec` from agent ``overrides`` by field name (config and hparams fields
    together, sorted into the spec's two maps by the agent's classes) and other spec
    ``fields`` (``seeds``, ``env_kwargs``, ``reset_strategy``, ``run``, ...).

    Raises:
        UnknownAgentError; ValueError: a name that is neither a config nor an hparams field.
    """
    import dataclasses

    from accelrl._typed import unknown_name

    aspec = agent_spec(agent)
    c_names = [f.name for f in dataclasses.fields(aspec.config_cls)]
    h_names = [f.name for f in dataclasses.fields(aspec.hparams_cls)]
    config, hparams = {}, {}
    for raw, value in dict(overrides or {}).items():
        name = raw.replace("-", "_")
        if name in c_names:
            config[name] = value
        elif name in h_names:
            hparams[name] = value
        else:
            raise unknown_name(name, c_names + h_names, f"{agent} field")
    return RunSpec(env=env, agent=agent, config=config, hparams=hparams, **fields)


def _check_names(values: Mapping[str, Any], cls: type, what: str) -> None:
    import dataclasses

    from accelrl._typed import unknown_name

    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key.replace("-", "_") not in names:
            raise unknown_name(key, names, f"{what} field")


def read_spec(run_dir: str | Path) -> RunSpec:
    """The spec of a run folder (its ``config.json``).

    Raises:
        FileNotFoundError: no ``config.json`` (not a run folder).
        ValueError: a ``config.json`` that is not valid JSON or not a run spec.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {CONFIG_FILE} (not an accelrl run folder)")
    try:
        return RunSpec.from_file(path)
    except ValueError as e:
        raise ValueError(f"{path} cannot be read as a run ({e})") from None


def write_spec(run_dir: str | Path, spec: RunSpec) -> Path:
    """Write ``run_dir/config.json`` atomically (a temporary file, then a rename)."""
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(spec.to_dict(), indent=2))
    tmp.replace(path)
    return path


def load_run(run_dir: str | Path) -> tuple[Any, Any, Any, Any]:
    """Reload a finished or interrupted run folder, whatever its reset strategy (a teacher,
    snapshot starts with the bank's hash checked) or agent (multi-agent included).

    Args:
        run_dir: a folder written by :func:`accelrl.agents.train_run` (``accelrl-train``,
            ``accelrl-teach``).

    Returns:
        ``(agent, state, config, hparams)``: ``state`` is the newest checkpoint's train state,
        batched over the run's members (leading axis ``M``: seeds, or settings x seeds), or
        None when the run has no checkpoint yet; ``hparams`` are the run's (unbatched; a list
        for a grid).

    Raises:
        FileNotFoundError, ValueError: not a run folder, or one that cannot be rebuilt;
        CheckpointError: no readable checkpoint.
    """
    from accelrl.agents.checkpoint import latest_checkpoint
    from accelrl.agents.runner import Runner

    built = build_run(read_spec(run_dir))
    state = None
    if latest_checkpoint(Path(run_dir) / "checkpoints") is not None:
        runner = Runner(
            built.agent,
            built.spec.seeds,
            built.hparams,
            out_dir=run_dir,
            progress=False,
            data_parallel=built.spec.run.data_parallel,
        )
        state, _ = runner.restore()
    return built.agent, state, built.config, built.hparams


__all__ = [
    "CONFIG_FILE",
    "HPARAM_RANGES",
    "BuiltRun",
    "build",
    "build_run",
    "check_hparams",
    "env_name",
    "load_run",
    "make_spec",
    "read_spec",
    "write_spec",
]
