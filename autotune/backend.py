"""How a study trains configurations: trials and groups, scores, and the backends that train
groups (the :class:`~accelrl.agents.runner.Runner` one; tests plug in synthetic objectives).

* **Groups.** Configurations that share the values of the space's *config* dimensions
  (shape-changing: agent config fields and the reset strategy's shape-changing settings) form
  a group: one compiled program whose members are its configurations x the tuning seeds
  (setting-major: member ``i * S + j`` is configuration ``i`` on seed ``j``).
* **Backends.** A :class:`Backend` opens a :class:`GroupRun` for a group: ``advance(steps)``
  trains every member up to a number of environment steps and scores each configuration,
  ``select`` keeps some configurations (a successive-halving promotion: they continue, they
  do not restart), ``exploit`` copies one configuration's whole train state into another
  (PBT), ``set_values`` changes a configuration's hparams and strategy data settings between
  segments (same shapes, no recompiling) and ``evaluate`` scores the final states on the test
  seeds. :class:`RunnerBackend` is the real one (a :class:`~accelrl.agents.runner.Runner` grid
  built from a run spec by :func:`accelrl.agents.build_run`).
* **Scores.** A configuration's score on a seed is the mean of the ``episode_return`` metric
  over the last ``score_updates`` updates done (default: the last 10%, at least one), or a
  score the run's reset strategy offers (a teacher's ``mastered``). A configuration with a
  seed that has no score (no finished episode, or a member whose losses turned non-finite:
  the runner marks it failed, ``nan_policy="mark"``, and trains the others) has no score and
  cannot be the incumbent.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

SCORE_FRACTION = 0.1
"""Fraction of the last updates whose returns make a seed's score (default ``score_updates``)."""

ENV_KWARG, ENV_PARAM = "env.", "env_params."
"""How a space names the environment's ``make`` kwargs and params (``env.num_agents``,
``env_params.max_steps_in_episode``)."""

Schedule = list[tuple[int, dict[str, Any]]]
"""Hparams values over a run: ``[(env_steps, values)]``, each applied from that step on (the
first at step 0); a PBT lineage."""


# ----------------------------------------------------------------------------------------------
# Trials and groups


@dataclasses.dataclass(frozen=True)
class Trial:
    """One drawn configuration."""

    trial_id: int
    """Index of the draw (0-based, in sampling order)."""
    values: dict[str, Any]
    """``{dimension: value}`` for every dimension of the space."""


def shape_key(values: Mapping[str, Any], config_names: Sequence[str]) -> tuple:
    """The group key of a configuration: its config (shape-changing) values, by name."""
    return tuple((n, values[n]) for n in sorted(config_names))


def group_trials(
    trials: Sequence[Trial], config_names: Sequence[str]
) -> list[tuple[dict[str, Any], list[Trial]]]:
    """Trials grouped by their config values: ``[(config_values, trials)]`` in the order of
    each group's first trial (trials keep their order inside a group)."""
    groups: dict[tuple, list[Trial]] = {}
    for t in trials:
        groups.setdefault(shape_key(t.values, config_names), []).append(t)
    return [(dict(key), members) for key, members in groups.items()]


def final_return_scores(
    episode_return: np.ndarray, n_settings: int, n_seeds: int, score_updates: int | None = None
) -> np.ndarray:
    """Per configuration and seed, the mean ``episode_return`` over the last updates.

    Args:
        episode_return: ``f32[M, U]`` from a grid :class:`Runner` (``M = n_settings * n_seeds``
            members, setting-major).
        score_updates: how many of the last updates to average (default: ``SCORE_FRACTION``
            of ``U``, at least 1).

    Returns:
        ``f64[n_settings, n_seeds]``; NaN where a member finished no episode in the window.
    """
    r = np.asarray(episode_return, np.float64)
    if r.ndim != 2 or r.shape[0] != n_settings * n_seeds:
        raise ValueError(
            f"episode_return must be [{n_settings} * {n_seeds}, U], got shape {r.shape}"
        )
    updates = r.shape[1]
    k = score_updates or max(1, math.ceil(SCORE_FRACTION * updates))
    window = r[:, -min(k, updates) :]
    count = np.isfinite(window).sum(axis=1)
    total = np.where(np.isfinite(window), window, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_member = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return per_member.reshape(n_settings, n_seeds)


def trial_score(seed_scores: np.ndarray) -> float:
    """Mean over seeds, NaN if any seed has no score."""
    s = np.asarray(seed_scores, np.float64)
    return float(s.mean()) if np.all(np.isfinite(s)) else float("nan")


# ----------------------------------------------------------------------------------------------
# Backends: how a group is trained (the runner; tests plug in synthetic objectives)


@dataclasses.dataclass
class GroupOutcome:
    """What training one group on the tuning seeds gives."""

    seed_scores: np.ndarray
    """``f64[N, S]`` score of each configuration on each seed (NaN: none)."""
    errors: list[str | None]
    """Per configuration: None, or why it has no score (divergence)."""
    env_steps: int = 0
    """Environment steps each member has taken so far."""
    seconds: float = 0.0
    """Wall-clock seconds of the group (compilation included)."""


class GroupRun(Protocol):
    """A group of configurations training together (one program), advanced step by step."""

    values: list[dict[str, Any]]
    """Each configuration's current hparams values (``N`` entries)."""
    steps: int
    """Environment steps each member has taken."""

    def advance(self, steps: int, window: int | None = None) -> GroupOutcome:
        """Train every member until ``steps`` environment steps (rounded up to whole updates,
        at most the budget) and score each configuration over the last ``window`` updates
        (None: the backend's ``score_updates``)."""
        ...

    def select(self, idx: Sequence[int]) -> None:
        """Keep only configurations ``idx`` (in that order); they continue from their state."""
        ...

    def exploit(self, dst: int, src: int) -> None:
        """Copy configuration ``src``'s whole train state (parameters, optimiser state,
        environments, statistics) and hparams into ``dst``, seed by seed; ``dst`` continues on
        a fresh RNG stream."""
        ...

    def set_values(self, i: int, values: Mapping[str, Any]) -> None:
        """Change configuration ``i``'s hparams from the next update on."""
        ...

    def evaluate(self, episodes: int | None = None) -> tuple[np.ndarray, list[str | None]]:
        """``(f64[N, S] mean evaluation return, per-configuration error or None)``."""
        ...


class Backend(Protocol):
    """Trains groups of configurations; :class:`RunnerBackend` is the real one."""

    base_config: Any
    """The config drawn config values replace fields of (its ``validate()`` is the space's
    constraint check); None: no constraint."""
    budget: int
    """Environment steps per configuration and seed of a full run."""

    def defaults(self, names: Sequence[str]) -> dict[str, Any]:
        """The default configuration's value of each named field."""
        ...

    def open(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> GroupRun:
        """A fresh :class:`GroupRun` of configurations sharing ``config_values``
        (``settings``: each one's hparams values) on ``seeds``."""
        ...

    def train(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> GroupOutcome:
        """Train configurations that share ``config_values`` on ``seeds`` for the whole budget
        and score them."""
        ...

    def test(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
        schedules: Sequence[Schedule | None] | None = None,
    ) -> tuple[np.ndarray, list[str | None]]:
        """Train on the test ``seeds`` for the whole budget (following each configuration's
        :data:`Schedule` when given), then evaluate: ``(f64[N, S] mean evaluation return,
        per-configuration error or None)``."""
        ...

    def describe(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """JSON-ready full description of a configuration (every config and hparams field)."""
        ...


class GroupBackend:
    """``train`` and ``test`` written once over :meth:`open` (chunks of at most
    ``max_members`` members, whole configurations each)."""

    budget: int
    max_members: int | None = None

    def open(self, config_values, settings, seeds) -> GroupRun:  # pragma: no cover - abstract
        raise NotImplementedError

    def _chunks(self, n: int, n_seeds: int) -> list[range]:
        per = n if self.max_members is None else max(1, self.max_members // n_seeds)
        return [range(i, min(i + per, n)) for i in range(0, n, per)]

    def train(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> GroupOutcome:
        t0 = time.perf_counter()
        n, s = len(settings), len(seeds)
        scores = np.full((n, s), np.nan)
        errors: list[str | None] = [None] * n
        env_steps = 0
        for chunk in self._chunks(n, s):
            idx = list(chunk)
            outcome = self.open(config_values, [settings[i] for i in idx], seeds).advance(
                self.budget
            )
            for k, i in enumerate(idx):
                errors[i] = outcome.errors[k]
                scores[i] = outcome.seed_scores[k]
            env_steps = outcome.env_steps
        return GroupOutcome(scores, errors, env_steps, time.perf_counter() - t0)

    def test(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
        schedules: Sequence[Schedule | None] | None = None,
    ) -> tuple[np.ndarray, list[str | None]]:
        n, s = len(settings), len(seeds)
        schedules = list(schedules) if schedules is not None else [None] * n
        returns = np.full((n, s), np.nan)
        errors: list[str | None] = [None] * n
        for chunk in self._chunks(n, s):
            idx = list(chunk)
            run = self.open(config_values, [settings[i] for i in idx], seeds)
            # apply every schedule's changes at their steps (a change at step 0 is the start)
            changes = sorted(
                {st for i in idx for st, _ in (schedules[i] or []) if 0 < st < self.budget}
            )
            for k, i in enumerate(idx):
                for st, values in schedules[i] or []:
                    if st <= 0:
                        run.set_values(k, values)
            for at in changes:
                run.advance(at)
                for k, i in enumerate(idx):
                    for st, values in schedules[i] or []:
                        if st == at:
                            run.set_values(k, values)
            outcome = run.advance(self.budget)
            chunk_returns, chunk_errors = run.evaluate()
            for k, i in enumerate(idx):
                errors[i] = outcome.errors[k] or chunk_errors[k]
                returns[i] = np.nan if errors[i] else chunk_returns[k]
        return returns, errors


def seed_errors(failed: np.ndarray, seeds: Sequence[int]) -> list[str | None]:
    """Per configuration, which seeds diverged (``failed``: ``bool[N, S]``), or None."""
    seeds = np.asarray(list(seeds))
    return [
        f"non-finite training metrics on seed(s) {seeds[row].tolist()}" if row.any() else None
        for row in np.asarray(failed, bool)
    ]


class RunnerBackend(GroupBackend):
    """Trains groups as :class:`~accelrl.agents.runner.Runner` grids built by
    :func:`accelrl.agents.build`.

    Args:
        run: the run every configuration is (a :class:`~accelrl.agents.spec.RunSpec` or its
            mapping): environment and ``make`` kwargs, agent, the config and hparams fields
            every configuration shares, the reset strategy (a teacher, snapshot starts) with
            its fixed settings, and a teacher run's measurements (``curriculum``: the fixed
            test set of tasks the ``mastered`` score uses). ``config["total_timesteps"]`` is
            the budget (environment steps per configuration and seed; absent: the agent's
            default for the environment); every group is built for the whole budget, so a
            run stopped early (a Hyperband rung) is the prefix of a full run: PPO's learning
            rate anneals over the whole budget, SAC's buffer is sized for it. A space names
            the strategy's settings ``<prefix>.<setting>`` (``teacher.fit_rate``,
            ``snapshot.probability``): data settings are vmapped per member like hparams, the
            others group configurations into programs like config fields. The run's seeds,
            grid and host-loop options are not used (:meth:`open` takes the seeds).
        score: ``"return"`` (the mean training return over the last updates; evaluation
            return on the test seeds) or a score the reset strategy offers (a teacher's
            ``"mastered"``: the fraction of its test set of tasks mastered at the end).
        score_updates: updates averaged into a seed's score (see :func:`final_return_scores`).
        eval_episodes: evaluation episodes per test seed (default: the config's
            ``eval_episodes``).
        max_members: most members (configurations x seeds) in one program; a larger group is
            run in chunks of whole configurations (None: no limit).
        segments: about how many host round trips a full run makes (progress points).
        progress: show the runner's progress bars.
    """

    def __init__(
        self,
        run: Any,
        *,
        score: str = "return",
        score_updates: int | None = None,
        eval_episodes: int | None = None,
        max_members: int | None = None,
        segments: int = 10,
        progress: bool = False,
    ):
        from accelrl.agents import agent_spec
        from accelrl.agents.spec import RunSpec
        from accelrl.envs.strategies import strategy

        if isinstance(run, Mapping):
            run = RunSpec.from_dict(run, where="study run")
        self.run = run
        self.env_id = run.env
        self.agent_name = run.agent
        self.overrides = {**run.config, **run.hparams}
        budget = self.overrides.pop("total_timesteps", None)
        self.env_kwargs = dict(run.env_kwargs)
        self.reset_strategy = run.reset_strategy
        self.strategy_entry = strategy(run.reset_strategy.name)
        self.curriculum = None if run.curriculum is None else dict(run.curriculum)
        if score != "return" and score not in self.strategy_entry.scores:
            offered = ", ".join(["return", *self.strategy_entry.scores])
            raise ValueError(
                f"score {score!r} is not offered by the {run.reset_strategy.name!r} reset "
                f"strategy (scores: {offered})"
            )
        self.score = score
        if budget is None:
            budget = agent_spec(run.agent).default_config(run.env)[0].total_timesteps
        self.budget = int(budget)
        self.overrides["total_timesteps"] = self.budget
        self.score_updates = score_updates
        self.eval_episodes = eval_episodes
        self.max_members = max_members
        self.segments = segments
        self.progress = progress
        self._built: dict[tuple, tuple[Any, Any, Any]] = {}
        self._specs: dict[tuple, Any] = {}
        self.base_agent, self.base_config, self.base_hparams = self._build({})
        self.base_strategy_settings = dict(self._spec({}).reset_strategy.settings)
        self._scorer = None
        if score != "return":
            self._scorer = self.strategy_entry.scores[score](
                self.strategy_entry.settings(self.base_strategy_settings), self._spec({})
            )

    @property
    def prefix(self) -> str:
        """What a space names the strategy's settings with (``teacher``, ``snapshot``)."""
        return self.strategy_entry.prefix

    def split_values(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(agent fields, strategy settings by their own names)`` of a configuration (its
        environment dimensions are :meth:`env_values`)."""
        head = f"{self.prefix}."
        agent = {k: v for k, v in values.items() if "." not in k}
        strat = {k[len(head) :]: v for k, v in values.items() if k.startswith(head)}
        return agent, strat

    def env_values(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(make kwargs, env params)`` among a configuration's values (``env.<kwarg>``,
        ``env_params.<field>``), by their own names."""
        kw = {k[len(ENV_KWARG) :]: v for k, v in values.items() if k.startswith(ENV_KWARG)}
        par = {k[len(ENV_PARAM) :]: v for k, v in values.items() if k.startswith(ENV_PARAM)}
        return kw, par

    def env_dims(self) -> tuple[str, ...]:
        """The environment dimensions a space may name: ``env.<kwarg>`` for every keyword of
        the environment's constructor and, with the default resets, ``env_params.<field>``
        for every field of its params (a teacher sets the task params itself). Both change
        the program (the agent holds its env and params): configurations are grouped by
        them."""
        import inspect

        from accelrl.envs import make

        env, params = make(self.env_id, **self.env_kwargs)
        try:
            sig = inspect.signature(type(env))
            kwargs = [n for n, p in sig.parameters.items()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]  # fmt: skip
        except (TypeError, ValueError):
            kwargs = []
        out = [ENV_KWARG + n for n in kwargs]
        if self.reset_strategy.name == "default":
            out += [ENV_PARAM + n for n in getattr(params, "__dataclass_fields__", {})]
        return tuple(out)

    def _env_default(self, name: str) -> Any:
        """The run's value of an environment dimension (``defaults``)."""
        import inspect

        from accelrl.envs import make

        env, params = make(self.env_id, **self.env_kwargs)
        if name.startswith(ENV_PARAM):
            value = getattr(params, name[len(ENV_PARAM) :])
            return np.asarray(value).item() if np.ndim(value) == 0 else value
        own = name[len(ENV_KWARG) :]
        if own in self.env_kwargs:
            return self.env_kwargs[own]
        return inspect.signature(type(env)).parameters[own].default

    def strategy_data(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The strategy's data settings among a configuration's values (own names)."""
        data = self.strategy_entry.data_settings
        return {k: v for k, v in self.split_values(values)[1].items() if k in data}

    def _spec(self, config_values: Mapping[str, Any]) -> Any:
        """The resolved run spec of a group (config values: agent config fields and the
        strategy's shape-changing settings)."""
        self._build(config_values)
        return self._specs[shape_key(config_values, list(config_values))]

    def _build(self, config_values: Mapping[str, Any]) -> tuple[Any, Any, Any]:
        """``(agent, config, hparams)`` of a group, built once (one compiled program each)."""
        from accelrl.agents import build
        from accelrl.agents.build import build_run, make_spec
        from accelrl.agents.configs import config_to_dict, hparams_to_dict
        from accelrl.agents.spec import RunSpec, StrategySpec

        key = shape_key(config_values, list(config_values))
        if key not in self._built:
            agent_values, strat_values = self.split_values(config_values)
            env_kw, env_par = self.env_values(config_values)
            env_kwargs = {**self.env_kwargs, **env_kw}
            overrides = {**self.overrides, **agent_values}
            if self.reset_strategy.name == "default" and not self.curriculum:
                if env_par:  # the params every copy steps with
                    from accelrl.envs import make

                    env, params = make(self.env_id, **env_kwargs)
                    built = build(env, self.agent_name, overrides,
                                  env_params=params.replace(**env_par), env_id=self.env_id)  # fmt: skip
                else:
                    built = build(self.env_id, self.agent_name, overrides, env_kwargs)
                self._built[key] = built
                self._specs[key] = RunSpec(
                    env=self.env_id, agent=self.agent_name, env_kwargs=env_kwargs,
                    config=config_to_dict(built[1]), hparams=hparams_to_dict(built[2]),
                )  # fmt: skip
            else:
                if env_par:
                    raise ValueError(
                        "env_params dimensions need the default resets (a reset strategy sets "
                        "the params of each episode itself)"
                    )
                spec = make_spec(
                    self.env_id, self.agent_name, overrides, env_kwargs=env_kwargs,
                    reset_strategy=StrategySpec(
                        self.reset_strategy.name,
                        {**self.reset_strategy.settings, **strat_values},
                    ),
                    curriculum=self.curriculum,
                )  # fmt: skip
                run = build_run(spec)
                self._built[key] = (run.agent, run.config, run.hparams)
                self._specs[key] = run.spec
        return self._built[key]

    def defaults(self, names: Sequence[str]) -> dict[str, Any]:
        out = {}
        head = f"{self.prefix}."
        for n in names:
            if n.startswith((ENV_KWARG, ENV_PARAM)):
                out[n] = self._env_default(n)
                continue
            if n.startswith(head):
                out[n] = self.base_strategy_settings[n[len(head) :]]
                continue
            source = self.base_config if hasattr(self.base_config, n) else self.base_hparams
            value = getattr(source, n)
            out[n] = short_float(value) if source is self.base_hparams else value
        return out

    def describe(self, values: Mapping[str, Any]) -> dict[str, Any]:
        from accelrl.agents.configs import config_to_dict, hparams_to_dict

        agent_values, strat_values = self.split_values(values)
        data = self.strategy_entry.data_settings
        head = f"{self.prefix}."
        config_part = {k: v for k, v in agent_values.items() if hasattr(self.base_config, k)}
        config_part.update({head + k: v for k, v in strat_values.items() if k not in data})
        config_part.update(
            {k: v for k, v in values.items() if k.startswith((ENV_KWARG, ENV_PARAM))}
        )
        _, config, hparams = self._build(config_part)
        hparams = hparams.replace(
            **{k: v for k, v in agent_values.items() if not hasattr(self.base_config, k)}
        )
        env_kw, env_par = self.env_values(values)
        out = {
            "env": self.env_id,
            "env_kwargs": {**self.env_kwargs, **env_kw},
            **({"env_params": dict(env_par)} if env_par else {}),
            "agent": self.agent_name,
            "config": config_to_dict(config),
            "hparams": {k: short_float(v) for k, v in hparams_to_dict(hparams).items()},
        }
        if self.reset_strategy.name != "default":
            settings = dict(self._spec(config_part).reset_strategy.settings)
            settings.update({k: v for k, v in strat_values.items() if k in data})
            out["reset_strategy"] = {"name": self.reset_strategy.name, "settings": settings}
        return out

    def full_settings(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every strategy setting a configuration runs with, as ``<prefix>.<setting>``
        (the searched ones from ``values``, the rest the run's)."""
        if self.reset_strategy.name == "default":
            return {}
        head = f"{self.prefix}."
        out = {head + k: v for k, v in self.base_strategy_settings.items()}
        out.update({k: v for k, v in values.items() if k.startswith(head)})
        return out

    def hparams(self, base: Any, values: Mapping[str, Any]) -> Any:
        """``base`` with ``values`` replaced, float32 and range-checked."""
        from accelrl.agents import check_hparams
        from accelrl.agents.core import float32_tree

        hp = float32_tree(base.replace(**self.split_values(values)[0]))
        check_hparams(hp)
        return hp

    def open(
        self,
        config_values: Mapping[str, Any],
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ) -> RunnerGroupRun:
        agent, config, base = self._build(config_values)
        return RunnerGroupRun(self, agent, config, base, settings, seeds)


class RunnerGroupRun:
    """A :class:`GroupRun` over a :class:`~accelrl.agents.runner.Runner` grid (see there)."""

    def __init__(
        self,
        backend: RunnerBackend,
        agent: Any,
        config: Any,
        base_hparams: Any,
        settings: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
    ):
        self.backend, self.agent, self.config, self.base = backend, agent, config, base_hparams
        self.seeds = [int(s) for s in seeds]
        self.values = [dict(s) for s in settings]
        self.state: Any = None
        self.metrics: dict[str, np.ndarray] = {}
        self._exploits = 0
        self.runner = self._make_runner(np.zeros(len(self.values) * len(self.seeds), bool))

    def _make_runner(self, failed: np.ndarray) -> Any:
        from accelrl.agents.runner import Runner

        runner = Runner(
            self.agent,
            self.seeds,
            [self.backend.hparams(self.base, v) for v in self.values],
            segments=self.backend.segments,
            progress=self.backend.progress,
            checkpoint_seconds=None,
            nan_policy="mark",
            strategy_data=[self.backend.strategy_data(v) for v in self.values],
        )
        runner.mark_failed(failed)
        return runner

    @property
    def steps(self) -> int:
        done = 0 if self.state is None else int(np.asarray(self.state.update_step).reshape(-1)[0])
        return done * self.agent.steps_per_update

    def _members(self, idx: Sequence[int]) -> np.ndarray:
        s = len(self.seeds)
        return np.asarray([i * s + j for i in idx for j in range(s)], np.int32)

    def advance(self, steps: int, window: int | None = None) -> GroupOutcome:
        t0 = time.perf_counter()
        until = min(self.agent.num_updates, math.ceil(int(steps) / self.agent.steps_per_update))
        result = self.runner.train(self.state, self.metrics, until=until)
        self.state, self.metrics = result.state, result.metrics
        n, s = len(self.values), len(self.seeds)
        if self.backend._scorer is not None:  # the strategy's score of the current state
            scores = self._strategy_scores()
        else:
            scores = final_return_scores(
                result.metrics["episode_return"], n, s, window or self.backend.score_updates
            )
        failed = np.asarray(self.runner.failed).reshape(n, s)
        errors = seed_errors(failed, self.seeds)
        scores[failed.any(axis=1)] = np.nan  # a configuration that diverged on any seed
        return GroupOutcome(scores, errors, self.steps, time.perf_counter() - t0)

    def select(self, idx: Sequence[int]) -> None:
        import jax

        members = self._members(idx)
        failed = self.runner.failed[members]
        if self.state is not None:
            self.state = jax.tree.map(lambda x: x[members], self.state)
        self.metrics = {k: np.asarray(v)[members] for k, v in self.metrics.items()}
        self.values = [self.values[i] for i in idx]
        self.runner = self._make_runner(failed)

    def exploit(self, dst: int, src: int) -> None:
        import jax
        import jax.numpy as jnp

        if self.state is None:
            raise RuntimeError("exploit needs a trained state: advance first")
        to, frm = jnp.asarray(self._members([dst])), jnp.asarray(self._members([src]))
        self._exploits += 1
        state = jax.tree.map(lambda x: x.at[to].set(x[frm]), self.state)
        # a new RNG stream: the copied keys folded with a count of exploits and the member
        keys = jax.vmap(lambda k, m: jax.random.fold_in(jax.random.fold_in(k, self._exploits), m))(
            state.key[to], to
        )
        self.state = state.replace(key=state.key.at[to].set(keys))
        failed = self.runner.failed.copy()
        failed[np.asarray(to)] = failed[np.asarray(frm)]
        self.runner.mark_failed(failed)
        self.set_values(dst, self.values[src])

    def _strategy_scores(self) -> np.ndarray:
        """``f64[N, S]``: the backend's strategy score (``mastered``) of every member's state."""
        values = self.backend._scorer(self.agent, self.state)
        return np.asarray(values, np.float64).reshape(len(self.values), len(self.seeds))

    def set_values(self, i: int, values: Mapping[str, Any]) -> None:
        """Change configuration ``i``'s hparams and strategy data settings (both keep shapes)
        from the next update on."""
        self.values[i] = {**self.values[i], **dict(values)}
        self.runner.set_hparams([self.backend.hparams(self.base, v) for v in self.values])
        data = self.backend.strategy_data(values)
        if data:
            if self.state is None:
                self.state = self.runner.init_state()
            rows = [data if k == i else None for k in range(len(self.values))]
            self.state = self.runner.set_strategy_data(self.state, rows)

    def evaluate(self, episodes: int | None = None) -> tuple[np.ndarray, list[str | None]]:
        from accelrl.agents.evaluation import evaluate_seeds

        if self.state is None:
            raise RuntimeError("evaluate needs a trained state: advance first")
        n, s = len(self.values), len(self.seeds)
        if self.backend._scorer is not None:
            returns = self._strategy_scores()
        else:
            episodes = int(episodes or self.backend.eval_episodes or self.config.eval_episodes)
            member_seeds = [sd for _ in range(n) for sd in self.seeds]
            summary = evaluate_seeds(self.agent, self.state, member_seeds, episodes)
            returns = np.asarray(summary["returns"], np.float64).reshape(n, s)
        failed = np.asarray(self.runner.failed).reshape(n, s)
        returns[failed.any(axis=1)] = np.nan
        return returns, seed_errors(failed, self.seeds)


def short_float(x: Any) -> float:
    """A float32 hparam as the shortest float that rounds to it (1e-3, not 0.0010000000474...)."""
    return float(str(np.float32(np.asarray(x))))


def finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
