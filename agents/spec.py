"""A run, described once: :class:`RunSpec`.

A run spec names everything a training run is: the environment (id and ``make`` kwargs), the
reset strategy (a registered name and its settings: the default, a teacher, snapshot starts),
the agent (a registered name, config and hparams overrides, optionally a grid of hparams
settings), the seeds, the host-loop options and, for a curriculum run, what it measures. It is
exactly what a run folder's ``config.json`` holds: the command-line tools parse their flags into
one, ``accelrl-train --config RUN/config.json`` runs one again, tuners sample them, and the
library builds, trains and reloads runs from them (:func:`accelrl.agents.build_run`,
:func:`accelrl.agents.train_run`, :func:`accelrl.agents.load_run`).

>>> spec = RunSpec(env="CartPole-v1", agent="ppo", seeds=(0, 1), config={"total_timesteps": 20_000})
>>> spec = RunSpec.from_file("runs/cartpole/config.json")       # a finished run's spec
>>> spec.to_dict()                                               # JSON-ready, round-trips

A spec as written by a run holds every config and hparams field and every strategy setting with
its default filled in (the resolved spec), so a rebuild does not depend on defaults that may
change later.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from accelrl._typed import from_mapping, to_plain, unknown_name

SEED_LIMIT = 2**32
"""Seeds are integers in ``[0, 2**32)`` (a JAX PRNG key holds 32 bits of a seed: seeds that
differ by ``2**32`` would train identical runs)."""

LOGGERS = ("tensorboard", "wandb")


@dataclasses.dataclass(frozen=True)
class StrategySpec:
    """A reset strategy by registered name (``accelrl.envs.strategies``) and its settings."""

    name: str = "default"
    """``default``, a teacher (``alp_gmm``, ``covar_gmm``, ``riac``, ``random``), ``snapshot``,
    or a strategy registered at run time."""
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The strategy's settings by name (its settings class checks them)."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The host loop's options (they do not change what is trained)."""

    segments: int = 20
    """Host-loop segments (progress, NaN checks, logging and measuring points)."""
    checkpoint_every: int = 5
    """Checkpoint every this many segments, and at the end."""
    checkpoint_seconds: float = 300.0
    """Also checkpoint when this many seconds passed since the last checkpoint."""
    log: tuple[Literal["tensorboard", "wandb"], ...] = ()
    """Extra metric loggers: TensorBoard event files, Weights & Biases (offline mode)."""
    data_parallel: int = 1
    """Devices each member's environment copies are split over (the mesh's data axis; 1: the
    members alone are sharded over the devices)."""

    def __post_init__(self):
        if self.data_parallel < 1:
            raise ValueError(f"data_parallel must be >= 1, got {self.data_parallel}")
        if self.segments < 1 or self.checkpoint_every < 1:
            raise ValueError(
                f"segments and checkpoint_every must be >= 1, got {self.segments} and "
                f"{self.checkpoint_every}"
            )
        if not self.checkpoint_seconds > 0 or self.checkpoint_seconds == float("inf"):
            raise ValueError(
                f"checkpoint_seconds must be a positive finite number, got {self.checkpoint_seconds}"
            )


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a run is (what ``config.json`` holds).

    Shapes: ``seeds`` ``[S]``; ``grid`` ``[G]`` hparams settings; the run trains ``G * S``
    members (``S`` when there is no grid) in one vmapped program.
    """

    env: str
    """Environment id (accelrl or gymnax), e.g. CartPole-v1."""
    agent: str
    """Agent name (a registered agent, e.g. ppo, sac, dqn, ippo)."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds, distinct, each in [0, 2**32)."""
    env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """``make`` keyword arguments."""
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Agent config fields (shapes, sizes, budget) over the agent's defaults for the env."""
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Agent hparams (numbers that keep shapes) over the defaults."""
    grid: tuple[Mapping[str, Any], ...] = ()
    """Optional hparams settings, each over ``hparams``; every setting runs with every seed."""
    reset_strategy: StrategySpec = dataclasses.field(default_factory=StrategySpec)
    """What a fresh start is: the default, a teacher, snapshot starts."""
    curriculum: Mapping[str, Any] | None = None
    """A teacher run's measurements (``accelrl.curricula.report.Measurements``: mastered_every,
    test_tasks, test_seed, episodes_per_task, heatmap_dims, heatmap_moments); None: defaults."""
    run: RunOptions = dataclasses.field(default_factory=RunOptions)
    """Host-loop options."""
    recorded: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Facts recorded when the run started (jax version, backend); not part of what is run."""

    def __post_init__(self):
        for name in ("env", "agent"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        object.__setattr__(self, "seeds", check_seeds(self.seeds))
        for name in ("env_kwargs", "config", "hparams"):
            if not isinstance(getattr(self, name), Mapping):
                raise ValueError(f"{name} must be a mapping, got {getattr(self, name)!r}")
        if isinstance(self.reset_strategy, Mapping):
            object.__setattr__(
                self,
                "reset_strategy",
                from_mapping(StrategySpec, self.reset_strategy, "reset_strategy"),
            )
        if isinstance(self.run, Mapping):
            object.__setattr__(self, "run", from_mapping(RunOptions, self.run, "run"))
        object.__setattr__(self, "grid", tuple(dict(g) for g in self.grid))

    # -- (de)serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``config.json``)."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "run spec") -> RunSpec:
        """A spec from :meth:`to_dict` output (or a hand-written subset: only ``env`` and
        ``agent`` are required). Folders written before the spec existed are read too.

        Raises:
            ValueError: unknown keys (close matches named), missing ``env``/``agent``, or values
                of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a JSON object, got {type(data).__name__}")
        data = _upgrade(dict(data))
        known = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in known:
                raise ValueError(f"{where}: {unknown_name(key, known, 'field')}")
        for key in ("env", "agent"):
            if key not in data:
                raise ValueError(f"{where} needs {key!r}")
        kwargs = dict(data)
        if "seeds" in kwargs:
            if not isinstance(kwargs["seeds"], list | tuple):
                raise ValueError(f"{where}: seeds must be a list of integers")
            kwargs["seeds"] = tuple(kwargs["seeds"])
        kwargs["reset_strategy"] = from_mapping(
            StrategySpec, kwargs.get("reset_strategy") or {}, f"{where} reset_strategy"
        )
        kwargs["run"] = from_mapping(RunOptions, kwargs.get("run") or {}, f"{where} run")
        for key in ("env_kwargs", "config", "hparams", "recorded"):
            if kwargs.get(key) is None:
                kwargs.pop(key, None)
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> RunSpec:
        """A spec file: JSON (a run folder's ``config.json``), TOML, or YAML (with PyYAML).

        Raises:
            FileNotFoundError: no file; ValueError: unreadable or not a spec.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no spec file at {path}")
        text = path.read_text()
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                import tomllib

                data = tomllib.loads(text)
            elif suffix in (".yaml", ".yml"):
                try:
                    import yaml
                except ImportError:
                    raise ValueError(
                        f"{path}: YAML spec files need PyYAML (pip install pyyaml)"
                    ) from None
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except (ValueError, SyntaxError) as e:  # JSONDecodeError, TOMLDecodeError, YAMLError
            raise ValueError(f"{path} is not a valid spec file ({e})") from None
        except Exception as e:  # yaml.YAMLError is not a ValueError
            raise ValueError(f"{path} is not a valid spec file ({e})") from None
        return cls.from_dict(data, where=str(path))

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)

    def identity(self) -> dict[str, Any]:
        """What the run *is* (everything but the host-loop options and recorded facts): two
        specs with equal identities train the same metrics."""
        out = self.to_dict()
        for key in ("run", "recorded"):
            out.pop(key)
        return out


def check_seeds(seeds: Sequence[Any]) -> tuple[int, ...]:
    """Seeds as a tuple of ints: at least one, distinct, each in ``[0, 2**32)``.

    Raises:
        ValueError: naming the offending seed.
    """
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence):
        raise ValueError(f"seeds must be a list of integers, got {seeds!r}")
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise ValueError(f"seeds must be integers, got {s!r}")
        if not 0 <= s < SEED_LIMIT:
            raise ValueError(f"seeds must be in [0, 2**32), got {s}")
        out.append(int(s))
    if not out:
        raise ValueError("need at least one seed")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct, got {out}")
    return tuple(out)


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A ``config.json`` written before the run spec, in the spec's terms."""
    legacy = {k: data.pop(k) for k in ("jax_version", "backend") if k in data}
    if legacy:
        data["recorded"] = {**legacy, **dict(data.get("recorded") or {})}
    record = data.get("reset_strategy")
    if isinstance(record, Mapping) and "settings" not in record and record.get("name") != "default":
        name = record.get("name")
        if "task_space" in record:  # a teacher's describe()
            data["reset_strategy"] = {
                "name": name,
                "settings": {k: v for k, v in record.items() if k != "name"},
            }
    elif isinstance(record, Mapping) and record.get("name") == "snapshot" and "bank" in record:
        # describe()'s resolved values, else the command line's; absent ones take the
        # settings class's defaults
        old = {**dict(record.get("settings") or {}), **record}
        keys = ("bank_hash", "num_clusters", "horizon", "snapshot_steps", "schedule",
                "probability", "limit_fields", "kmeans_iters")  # fmt: skip
        data["reset_strategy"] = {
            "name": "snapshot",
            "settings": {"bank": record["bank"], **{k: old[k] for k in keys if k in old}},
        }
    elif record is None:
        data.pop("reset_strategy", None)
    cur = data.get("curriculum")
    if isinstance(cur, Mapping) and "teacher" in cur:  # accelrl-teach's old record
        data["curriculum"] = {
            k: v
            for k, v in cur.items()
            if k
            in ("mastered_every", "test_tasks", "test_seed", "episodes_per_task", "heatmap_moments")
        }
        if "heatmap_dims" in cur:
            data["curriculum"]["heatmap_dims"] = [str(d) for d in cur["heatmap_dims"]]
    return data


__all__ = ["LOGGERS", "SEED_LIMIT", "RunOptions", "RunSpec", "StrategySpec", "check_seeds"]
