"""What every tuner shares: trials and groups, backends that train them, the run folder, and
the protocol's last step (the incumbent and the default retrained on the test seeds).

* **Groups.** Configurations that share the values of the space's *config* dimensions
  (shape-changing) form a group: one compiled program whose members are its configurations x
  the tuning seeds (setting-major: member ``i * S + j`` is configuration ``i`` on seed ``j``).
* **Backends.** A :class:`Backend` opens a :class:`GroupRun` for a group: ``advance(steps)``
  trains every member up to a number of environment steps and scores each configuration,
  ``select`` keeps some configurations (a successive-halving promotion: they continue, they
  do not restart), ``exploit`` copies one configuration's whole train state into another
  (PBT), ``set_values`` changes a configuration's hparams between segments (same shapes, no
  recompiling) and ``evaluate`` runs evaluation episodes. :class:`RunnerBackend` is the real
  one (a :class:`~accelrl.agents.runner.Runner` grid built by :func:`accelrl.agents.build`);
  tests plug in synthetic objectives.
* **Scores.** A configuration's score on a seed is the mean of the ``episode_return`` metric
  over the last ``score_updates`` updates done (default: the last 10%, at least one);
  ``episode_return`` is the mean return of the episodes that finished in an update, carried
  forward through updates where none did. A configuration with a seed that has no score (no
  finished episode, or a member whose losses turned non-finite: the runner marks it failed,
  ``nan_policy="mark"``, and trains the others) has no score and cannot be the incumbent.
* **Run folder.** ``search.json`` (the settings; a second call on the folder with the same
  settings resumes it), ``trials.jsonl`` (one line per finished trial, appended with one
  ``write`` and an ``fsync``, deduplicated by ``trial_id`` when read), ``incumbent.json``,
  ``report.md`` and plots (:func:`finish`).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from accelrl.autotune.protocol import summarize
from accelrl.autotune.spaces import SearchSpace, values_to_json

TRIALS_FILE = "trials.jsonl"
INCUMBENT_FILE = "incumbent.json"
SEARCH_FILE = "search.json"
REPORT_FILE = "report.md"
SCORE_FRACTION = 0.1
"""Fraction of the last updates whose returns make a seed's score (default ``score_updates``)."""

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
        env_id: environment id (``accelrl.envs.make``).
        agent: registered agent name.
        budget: environment steps per configuration and seed (``total_timesteps``); None: the
            agent's default for the environment. Every group is built for the whole budget,
            so a run stopped early (a Hyperband rung) is the prefix of a full run: PPO's
            learning rate anneals over the whole budget, SAC's buffer is sized for it.
        overrides: config and hparams fields fixed for every configuration (not searched).
        env_kwargs: ``make`` keyword arguments.
        reset_strategy: the run's reset strategy (a teacher, snapshot starts) with its fixed
            settings (:class:`~accelrl.agents.spec.StrategySpec`; None: the default). A space
            names its settings ``<prefix>.<setting>`` (``teacher.fit_rate``,
            ``snapshot.probability``): data settings are vmapped per member like hparams,
            the others group configurations into programs like config fields.
        curriculum: a teacher run's measurements (``RunSpec.curriculum``: the fixed test set
            of tasks the ``mastered`` score uses).
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
        env_id: str,
        agent: str,
        budget: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        *,
        reset_strategy: Any = None,
        curriculum: Mapping[str, Any] | None = None,
        score: str = "return",
        score_updates: int | None = None,
        eval_episodes: int | None = None,
        max_members: int | None = None,
        segments: int = 10,
        progress: bool = False,
    ):
        from accelrl.agents import agent_spec
        from accelrl.agents.spec import StrategySpec
        from accelrl.envs.strategies import strategy

        self.env_id = env_id
        self.agent_name = agent
        self.overrides = dict(overrides or {})
        if "total_timesteps" in self.overrides:
            raise ValueError("give the run length as budget, not as a total_timesteps override")
        self.env_kwargs = dict(env_kwargs or {})
        if reset_strategy is None:
            reset_strategy = StrategySpec()
        elif isinstance(reset_strategy, Mapping):
            reset_strategy = StrategySpec(**reset_strategy)
        self.reset_strategy = reset_strategy
        self.strategy_entry = strategy(reset_strategy.name)
        self.curriculum = None if curriculum is None else dict(curriculum)
        if score != "return" and score not in self.strategy_entry.scores:
            offered = ", ".join(["return", *self.strategy_entry.scores])
            raise ValueError(
                f"score {score!r} is not offered by the {reset_strategy.name!r} reset strategy "
                f"(scores: {offered})"
            )
        self.score = score
        if budget is None:
            budget = agent_spec(agent).default_config(env_id)[0].total_timesteps
        self.budget = int(budget)
        self.overrides["total_timesteps"] = self.budget
        self.score_updates = score_updates
        self.eval_episodes = eval_episodes
        self.max_members = max_members
        self.segments = segments
        self.progress = progress
        self._built: dict[tuple, tuple[Any, Any, Any]] = {}
        self._specs: dict[tuple, Any] = {}
        _, self.base_config, self.base_hparams = self._build({})
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
        """``(agent fields, strategy settings by their own names)`` of a configuration."""
        head = f"{self.prefix}."
        agent = {k: v for k, v in values.items() if not k.startswith(head)}
        strat = {k[len(head) :]: v for k, v in values.items() if k.startswith(head)}
        return agent, strat

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
            overrides = {**self.overrides, **agent_values}
            if self.reset_strategy.name == "default" and not self.curriculum:
                built = build(self.env_id, self.agent_name, overrides, self.env_kwargs)
                self._built[key] = built
                self._specs[key] = RunSpec(
                    env=self.env_id, agent=self.agent_name, env_kwargs=self.env_kwargs,
                    config=config_to_dict(built[1]), hparams=hparams_to_dict(built[2]),
                )  # fmt: skip
            else:
                spec = make_spec(
                    self.env_id, self.agent_name, overrides, env_kwargs=self.env_kwargs,
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
        _, config, hparams = self._build(config_part)
        hparams = hparams.replace(
            **{k: v for k, v in agent_values.items() if not hasattr(self.base_config, k)}
        )
        out = {
            "env": self.env_id,
            "env_kwargs": self.env_kwargs,
            "agent": self.agent_name,
            "config": config_to_dict(config),
            "hparams": {k: short_float(v) for k, v in hparams_to_dict(hparams).items()},
        }
        if self.reset_strategy.name != "default":
            settings = dict(self._spec(config_part).reset_strategy.settings)
            settings.update({k: v for k, v in strat_values.items() if k in data})
            out["reset_strategy"] = {"name": self.reset_strategy.name, "settings": settings}
        return out

    def study_settings(self) -> dict[str, Any]:
        """What ``search.json`` records of the run besides the agent (only what differs from
        a plain run: older studies keep resuming)."""
        out: dict[str, Any] = {}
        if self.reset_strategy.name != "default":
            out["reset_strategy"] = {
                "name": self.reset_strategy.name,
                "settings": values_to_json(dict(self.reset_strategy.settings)),
            }
        if self.curriculum is not None:
            out["curriculum"] = values_to_json(self.curriculum)
        if self.score != "return":
            out["score"] = self.score
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


# ----------------------------------------------------------------------------------------------
# The run folder


def append_row(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one JSON line to ``path`` durably: a single ``O_APPEND`` write of the whole line,
    then ``fsync`` (a kill leaves the file without the line or with all of it, except a torn
    last line on a crash mid-write, which :func:`read_rows` skips)."""
    data = (json.dumps(dict(row), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: str | Path) -> dict[int, dict[str, Any]]:
    """``trial_id -> row`` of a ``trials.jsonl`` (first row per id kept; an unparsable last
    line, a write torn by a crash, is skipped with a warning).

    Raises:
        ValueError: an unparsable line that is not the last one (a damaged file).
    """
    path = Path(path)
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    rows: dict[int, dict[str, Any]] = {}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            tid = int(row["trial_id"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if i == len(lines) - 1:
                warnings.warn(f"{path}: skipping a torn last line", stacklevel=2)
                continue
            raise ValueError(f"{path}: line {i + 1} is not a trial row: {line[:80]!r}") from None
        rows.setdefault(tid, row)
    return rows


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False))
    tmp.replace(path)


def short_float(x: Any) -> float:
    """A float32 hparam as the shortest float that rounds to it (1e-3, not 0.0010000000474...)."""
    return float(str(np.float32(np.asarray(x))))


def finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclasses.dataclass
class SearchResult:
    """What :func:`random_search` returns (also in ``out``)."""

    out: Path
    """The run folder."""
    rows: list[dict[str, Any]]
    """Every finished trial's row, by ``trial_id``."""
    incumbent: dict[str, Any]
    """The ``incumbent.json`` content."""


RECORDED_LATER = ("bootstrap_reps",)
"""Settings that ``search.json`` records since a later version (absent from older studies)."""


def check_resume(
    out: Path, settings: dict[str, Any], growable: Sequence[str] = ("trials",)
) -> None:
    """Write ``search.json``, or check that the one in ``out`` holds the same settings (the
    ``growable`` keys may change between calls).

    Raises:
        ValueError: ``out`` holds a search with other settings.
    """
    path = out / SEARCH_FILE
    if not path.exists():
        write_json(path, settings)
        return
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is damaged (not valid JSON: {e})") from None
    if not isinstance(old, dict):
        raise ValueError(f"{path} is damaged (not a JSON object)")
    changed = sorted(
        k
        for k in set(old) | set(settings)
        if k not in growable
        and old.get(k) != settings.get(k)
        and not (k in RECORDED_LATER and k not in old)  # a study started before it was kept
    )
    if changed:
        raise ValueError(
            f"{out} holds a search with other settings ({', '.join(changed)} differ); use a new "
            "folder, or the same settings to resume it"
        )
    write_json(path, settings)


def values_from_json(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`~accelrl.autotune.spaces.values_to_json` for ``space``'s dimensions
    (lists back to the tuple choices they were; other keys, such as the reset strategy's
    settings a row records without searching them, are left out)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in space}


def best_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The scored row with the highest score (ties: the lower ``trial_id``), or None."""
    scored = [r for r in rows if r.get("score") is not None]
    if not scored:
        return None
    return max(scored, key=lambda r: (r["score"], -r["trial_id"]))


def search_settings(
    method: str, env_id: str, agent: str, space: SearchSpace, **kw: Any
) -> dict[str, Any]:
    """The ``search.json`` content: what a resume must match."""
    return {
        "method": method,
        "env": env_id,
        "agent": agent,
        "space": json.loads(space.to_configspace_json()),
        **kw,
    }


def finish(
    out: Path,
    *,
    method: str,
    env_id: str,
    agent: str,
    space: SearchSpace,
    backend: Backend,
    rows: Sequence[Mapping[str, Any]],
    incumbent_row: Mapping[str, Any],
    tuning_seeds: Sequence[int],
    test_seeds: Sequence[int],
    budget: int,
    score: str,
    bootstrap_reps: int = 50_000,
    log: Callable[[str], None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The protocol's last step, shared by every tuner: retrain the incumbent (following its
    ``schedule`` when the row has one, as PBT's do) and the agent's default configuration on
    the test seeds with the same budget, evaluate both, and write ``incumbent.json``,
    ``report.md`` and the plots.

    Returns:
        The ``incumbent.json`` content.
    """
    log = log or (lambda _line: None)
    config_names, hparams_names = space.split(agent, getattr(backend, "strategy_entry", None))
    inc_values = values_from_json(space, incumbent_row["config"])
    schedule = incumbent_row.get("schedule")
    inc_schedule = (
        [(int(st), values_from_json(space, v)) for st, v in schedule] if schedule else None
    )
    default_values = backend.defaults(list(space))
    entries = {"incumbent": (inc_values, inc_schedule), "default": (default_values, None)}
    tested: dict[str, dict[str, Any]] = {}
    trials = [Trial(i, v) for i, (v, _) in enumerate(entries.values())]
    for config_values, members in group_trials(trials, config_names):
        labels = [list(entries)[t.trial_id] for t in members]
        returns, errors = backend.test(
            config_values,
            [{n: t.values[n] for n in hparams_names} for t in members],
            test_seeds,
            [
                None
                if entries[lab][1] is None
                else [(st, {n: v[n] for n in hparams_names if n in v}) for st, v in entries[lab][1]]
                for lab in labels
            ],
        )
        for label, r, error in zip(labels, returns, errors, strict=True):
            if error or not np.all(np.isfinite(r)):
                tested[label] = {"error": error or "no evaluation return", "scores": None}
            else:
                tested[label] = summarize(r[:, None], reps=bootstrap_reps)

    scored = [r for r in rows if r.get("score") is not None]
    incumbent = {
        "method": method,
        "env": env_id,
        "agent": agent,
        "trial_id": incumbent_row["trial_id"],
        "config": incumbent_row["config"],
        **({"schedule": incumbent_row["schedule"]} if schedule else {}),
        "tuning": {"seeds": list(tuning_seeds), "score": incumbent_row["score"]},
        "test": {
            "seeds": list(test_seeds),
            "incumbent": tested["incumbent"],
            "default": {**tested["default"], "config": values_to_json(default_values)},
            "scores_are": (
                "mean undiscounted return of the evaluation episodes of each test seed"
                if getattr(backend, "score", "return") == "return"
                else f"the reset strategy's {backend.score!r} score of each test seed's final "
                "state (a teacher's mastered: the fraction of its fixed test set of tasks "
                "mastered)"
            )
            + ", after training on that seed with the same budget"
            + (" following the incumbent's hparams schedule" if schedule else "")
            + f" (runs x tasks = {len(test_seeds)} x 1)",
        },
        "full": backend.describe(inc_values),
        "budget": {
            "env_steps_per_configuration_and_seed": budget,
            "trials": len(rows),
            "trials_scored": len(scored),
            "tuning_env_steps": tuning_env_steps(rows),
        },
        "score": score,
        **dict(extra or {}),
    }
    write_json(out / INCUMBENT_FILE, incumbent)
    plots = write_plots(out, rows, incumbent)
    (out / REPORT_FILE).write_text(report(incumbent, rows, plots))
    log(
        f"incumbent: trial {incumbent_row['trial_id']} (score {incumbent_row['score']:.4g}); "
        f"see {out / REPORT_FILE}"
    )
    return incumbent


def tuning_env_steps(rows: Sequence[Mapping[str, Any]]) -> int:
    """Environment steps the rows' trials took, summed over trials and their seeds."""
    return int(sum(int(r.get("env_steps") or 0) * len(r.get("seeds") or [1]) for r in rows))


def anytime_curve(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Best tuning score so far against tuning environment steps spent, in the order the rows
    were written: ``(f64[R] cumulative steps, f64[R] best score so far, NaN before any)``."""
    steps = np.cumsum([int(r.get("env_steps") or 0) * len(r.get("seeds") or [1]) for r in rows])
    best, out = -np.inf, []
    for r in rows:
        if r.get("score") is not None:
            best = max(best, float(r["score"]))
        out.append(best if np.isfinite(best) else np.nan)
    return steps.astype(np.float64), np.asarray(out, np.float64)


def write_plots(
    out: Path, rows: Sequence[Mapping[str, Any]], incumbent: Mapping[str, Any]
) -> list[str]:
    """``incumbent_over_budget.png`` (best tuning score against tuning steps) and, for rows
    with schedules (PBT), ``pbt_schedules.png`` (each hparam over steps; the incumbent's
    lineage drawn bold). Returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    x, y = anytime_curve(rows)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.step(x, y, where="post", color="C0")
    ax.set_xlabel("tuning environment steps (all trials x seeds)")
    ax.set_ylabel("best tuning score so far")
    ax.set_title(f"{incumbent['method']}: {incumbent['agent']} on {incumbent['env']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "incumbent_over_budget.png", dpi=100)
    plt.close(fig)
    written.append("incumbent_over_budget.png")

    with_schedules = [r for r in rows if r.get("schedule")]
    if with_schedules:
        names = [
            n
            for n, v in with_schedules[0]["schedule"][0][1].items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if names:
            fig, axes = plt.subplots(
                len(names), 1, figsize=(5, 1.8 * len(names)), sharex=True, squeeze=False
            )
            for ax, name in zip(axes[:, 0], names, strict=True):
                for r in with_schedules:
                    bold = r["trial_id"] == incumbent["trial_id"]
                    xs = [st for st, _ in r["schedule"]] + [int(r.get("env_steps") or 0)]
                    ys = [v[name] for _, v in r["schedule"]]
                    ax.step(
                        xs, ys + ys[-1:], where="post",
                        color="C3" if bold else "0.6", lw=2 if bold else 0.7,
                        zorder=3 if bold else 1,
                    )  # fmt: skip
                ax.set_ylabel(name, fontsize=8)
                values = [v[name] for r in with_schedules for _, v in r["schedule"]]
                if min(values) > 0 and max(values) / min(values) > 50:
                    ax.set_yscale("log")
            axes[-1, 0].set_xlabel("environment steps per seed")
            axes[0, 0].set_title("PBT schedules (bold: the incumbent)", fontsize=9)
            fig.tight_layout()
            fig.savefig(out / "pbt_schedules.png", dpi=100)
            plt.close(fig)
            written.append("pbt_schedules.png")
    return written


def _fmt(entry: Mapping[str, Any]) -> str:
    if entry.get("scores") is None:
        return f"failed: {entry.get('error')}"
    lo, hi = entry["ci"]
    return f"{entry['iqm']:.4g} [{lo:.4g}, {hi:.4g}]"


METHOD_TITLES = {
    "random": "Random search",
    "hyperband": "Hyperband",
    "successive_halving": "Successive halving",
    "pbt": "Population-based training",
    "tpe": "TPE (Optuna)",
    "ray_asha": "ASHA (Ray Tune)",
    "ray_pbt": "Population-based training (Ray Tune)",
}


def report(
    incumbent: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], plots: Sequence[str] = ()
) -> str:
    """``report.md``: settings, the incumbent against the default on the test seeds, plots."""
    test = incumbent["test"]
    budget = incumbent["budget"]
    title = METHOD_TITLES.get(incumbent["method"], incumbent["method"])
    lines = [
        f"# {title}: {incumbent['agent']} on {incumbent['env']}",
        "",
        f"- trials: {len(rows)} ({budget['trials_scored']} scored), at most "
        f"{budget['env_steps_per_configuration_and_seed']} environment steps per "
        f"configuration and seed; {budget['tuning_env_steps']} tuning environment steps in all",
        f"- tuning seeds {incumbent['tuning']['seeds']}, test seeds {test['seeds']}",
        f"- score: {incumbent['score']}",
        "",
        "| configuration | tuning score | test IQM [95% CI] |",
        "| --- | ---: | --- |",
        f"| incumbent (trial {incumbent['trial_id']}) | {incumbent['tuning']['score']:.4g} | "
        f"{_fmt(test['incumbent'])} |",
        f"| default | | {_fmt(test['default'])} |",
        "",
        f"Incumbent: `{json.dumps(incumbent['config'])}`",
        "",
    ]
    if incumbent.get("schedule"):
        lines += [
            f"Its schedule (PBT lineage, replayed on the test seeds): "
            f"`{json.dumps(incumbent['schedule'])}`",
            "",
        ]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Setting up a study (every tuner's first step)


@dataclasses.dataclass
class Study:
    """A tuner's view of its run folder and backend (:func:`open_study`)."""

    out: Path
    space: SearchSpace
    backend: Backend
    budget: int | None
    """Environment steps per configuration and seed of a full run (None: unknown to a
    synthetic backend)."""
    tuning_seeds: tuple[int, ...]
    test_seeds: tuple[int, ...]
    config_names: tuple[str, ...]
    hparams_names: tuple[str, ...]
    done: dict[int, dict[str, Any]]
    """Finished trials' rows already in ``trials.jsonl`` (by ``trial_id``)."""

    @property
    def trials_path(self) -> Path:
        return self.out / TRIALS_FILE

    def record(self, row: Mapping[str, Any]) -> None:
        """Append a finished trial's row (once per ``trial_id``)."""
        if row["trial_id"] in self.done:
            return
        full = getattr(self.backend, "full_settings", None)
        if full is not None:  # every strategy setting the trial ran with, searched or not
            row = {**row, "config": {**values_to_json(full(row["config"])), **row["config"]}}
        append_row(self.trials_path, row)
        self.done[int(row["trial_id"])] = dict(row)

    def rows(self) -> list[dict[str, Any]]:
        """Every finished trial's row, in the order they were written."""
        return list(read_rows(self.trials_path).values())

    def conclude(
        self,
        method: str,
        env_id: str,
        agent: str,
        rows: Sequence[Mapping[str, Any]],
        candidates: Sequence[Mapping[str, Any]],
        score: str,
        *,
        bootstrap_reps: int,
        log: Callable[[str], None] | None,
        extra: Mapping[str, Any] | None = None,
        space: SearchSpace | None = None,
    ) -> SearchResult:
        """The best of ``candidates`` is the incumbent; :func:`finish` tests and reports it.

        Raises:
            RuntimeError: no candidate has a score.
        """
        strategy_score = getattr(self.backend, "score", "return")
        if strategy_score != "return":
            score = (
                f"the reset strategy's {strategy_score!r} score of each tuning seed's state at "
                "the end of the trial, mean over the tuning seeds"
            )
        inc = best_row(candidates)
        if inc is None:
            raise RuntimeError(
                f"none of the {len(candidates)} candidate trials produced a score "
                f"(see {self.trials_path})"
            )
        incumbent = finish(
            self.out,
            method=method,
            env_id=env_id,
            agent=agent,
            space=self.space if space is None else space,
            backend=self.backend,
            rows=rows,
            incumbent_row=inc,
            tuning_seeds=self.tuning_seeds,
            test_seeds=self.test_seeds,
            budget=self.budget,
            score=score,
            bootstrap_reps=bootstrap_reps,
            log=log,
            extra=extra,
        )
        return SearchResult(self.out, [dict(r) for r in rows], incumbent)


def _only_value(dim: Any, value: Any) -> bool:
    """Whether ``dim`` can take ``value`` and nothing else (a one-choice Categorical)."""
    from accelrl.autotune.spaces import Categorical

    plain = tuple(value) if isinstance(value, list) else value
    return isinstance(dim, Categorical) and set(dim.choices) == {plain}


_HELD_LOCKS: list[Any] = []
"""Study folder locks this process holds (released at exit; ``release_studies`` earlier)."""


def release_studies() -> None:
    """Release every study folder lock this process holds."""
    while _HELD_LOCKS:
        _HELD_LOCKS.pop().__exit__(None, None, None)


atexit.register(release_studies)


def open_study(
    method: str,
    env_id: str,
    agent: str,
    space: SearchSpace | None,
    budget: int | None,
    out: str | Path,
    tuning_seeds: Sequence[int],
    test_seeds: Sequence[int],
    *,
    overrides: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    score_updates: int | None = None,
    eval_episodes: int | None = None,
    max_members: int | None = None,
    progress: bool = False,
    backend: Backend | None = None,
    settings: Mapping[str, Any] | None = None,
    growable: Sequence[str] = ("trials",),
    shared: bool = False,
) -> Study:
    """Check the seeds and the space, make the backend, take ``out`` (a lock: one writer at a
    time, unless ``shared``), create or check it (a folder holding the same search resumes) and
    read the finished trials.

    Args:
        shared: several processes work on the study together (TPE on a journal storage,
            which coordinates them), so no folder lock is taken.

    Raises:
        ValueError: overlapping seeds, an invalid space, a folder holding another search.
        FolderBusyError: another live process holds the study folder.
    """
    from accelrl.autotune.protocol import check_seeds
    from accelrl.autotune.spaces import default_space

    tuning_seeds, test_seeds = check_seeds(tuning_seeds, test_seeds)
    fixed = {k.replace("-", "_"): v for k, v in (overrides or {}).items()}
    if space is None:  # the agent's default space searches what the overrides leave free
        space = default_space(agent)
        space = space.without(*sorted(set(fixed) & set(space)))
    else:  # an override of a searched field must be the only value the dimension takes
        clash = sorted(n for n in set(fixed) & set(space) if not _only_value(space[n], fixed[n]))
        if clash:
            raise ValueError(
                f"--overrides fixes {', '.join(clash)}, which the search space also searches; "
                "drop it from one of them"
            )
    strategy = getattr(backend, "strategy_entry", None)
    space = space.validate(agent, strategy)
    if not len(space):
        raise ValueError("the search space is empty: give it at least one dimension")
    if backend is None:
        backend = RunnerBackend(
            env_id,
            agent,
            budget,
            overrides,
            env_kwargs,
            score_updates=score_updates,
            eval_episodes=eval_episodes,
            max_members=max_members,
            progress=progress,
        )
    if budget is None:
        budget = getattr(backend, "budget", None)
    budget = None if budget is None else int(budget)
    config_names, hparams_names = space.split(agent, strategy)
    # a run with a reset strategy (or another score) records it; studies without keep their
    # search.json as before (they still resume)
    run_settings = getattr(backend, "study_settings", lambda: {})()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    lock = None
    if not shared:  # held until the process ends (a dead holder's lock is taken over)
        from accelrl.agents.folders import FolderLock

        lock = FolderLock(out, "study").__enter__()
        _HELD_LOCKS.append(lock)
    out.mkdir(parents=True, exist_ok=True)
    check_resume(
        out,
        search_settings(
            method,
            env_id,
            agent,
            space,
            budget=budget,
            tuning_seeds=list(tuning_seeds),
            test_seeds=list(test_seeds),
            overrides=values_to_json(dict(overrides or {})),
            env_kwargs=dict(env_kwargs or {}),
            score_updates=score_updates,
            eval_episodes=eval_episodes,
            **run_settings,
            **dict(settings or {}),
        ),
        growable,
    )
    return Study(
        out,
        space,
        backend,
        budget,
        tuning_seeds,
        test_seeds,
        config_names,
        hparams_names,
        read_rows(out / TRIALS_FILE),
    )


def trial_row(
    trial_id: int,
    values: Mapping[str, Any],
    seeds: Sequence[int],
    seed_scores: np.ndarray,
    error: str | None,
    env_steps: int,
    **extra: Any,
) -> dict[str, Any]:
    """A ``trials.jsonl`` row: ``trial_id``, ``config``, ``seeds``, ``score`` (mean over seeds,
    None when a seed has none), ``seed_scores``, ``status`` (``ok``, ``no_score``,
    ``diverged``, or ``extra["status"]``), ``env_steps`` (per seed) and ``extra``."""
    score = trial_score(seed_scores)
    status = "diverged" if error else ("ok" if math.isfinite(score) else "no_score")
    row = {
        "trial_id": int(trial_id),
        "config": values_to_json(values),
        "seeds": [int(s) for s in seeds],
        "score": finite_or_none(score),
        "seed_scores": [finite_or_none(float(x)) for x in seed_scores],
        "status": status,
        "env_steps": int(env_steps),
    }
    row.update(extra)
    if error:
        row["status"], row["error"] = "diverged", error
    return row
