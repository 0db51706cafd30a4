"""Ray Tune backend: the in-process tuners' trainable under Ray's ASHA and PBT schedulers.

``ray_search(run_spec, space, scheduler="asha" | "pbt", trials=N, out=DIR)``
runs ``N`` Ray trials. A trial is one configuration (values of a
:class:`~accelrl.autotune.spaces.SearchSpace`) trained on *all* tuning seeds in one vmapped
:class:`~accelrl.agents.runner.Runner` program, exactly as the in-process tuners train a
configuration:

1. **Build.** The trial drives the in-process tuners' own run group: a
   :class:`~accelrl.autotune.backend.RunnerBackend` (made once per worker process and search)
   opens the configuration's group (``backend.open(config_values, [hparams_values], seeds)``:
   the same build, hparams checks and ``Runner(nan_policy="mark")``), so a reused Ray actor
   (``reuse_actors=True``) that trains or restores the same config values again runs the
   program it already compiled; JAX's persistent compilation cache (on by default,
   ``accelrl.agents.compile_cache``) shares programs between worker processes. Rows are the
   in-process rows (:func:`~accelrl.autotune.folder.trial_row`) with Ray's statuses.
2. **Segments and reports.** ``run.advance(steps)`` advances one runner segment
   (about ``budget / segments`` environment steps); after each one the trial calls
   ``tune.report`` with ``env_steps`` (per seed; the schedulers' ``time_attr``, so decisions
   are reproducible, unlike Ray's wall-clock default), ``score`` (the in-process tuners' score:
   mean over seeds of the mean ``episode_return`` over the last ``score_updates`` updates, by
   default the last 10% of the *full* run's updates, so rungs compare like with like; NaN when a
   seed has none or diverged) and ``objective`` (``score``, or ``-inf`` when it is NaN, which is
   what the schedulers rank: a trial without a score is stopped by ASHA and replaced by PBT).
3. **Checkpoints.** Every ``checkpoint_interval`` environment steps (PBT: the perturbation
   interval) and at the end, the report carries a Ray checkpoint: an accelrl checkpoint
   (:func:`~accelrl.agents.checkpoint.save_checkpoint`: the vmapped Runner state and hparams,
   bit-for-bit continuable) whose side-file also holds the ``episode_return`` history, the
   diverged seeds and the hparams schedule. A trial started with ``tune.get_checkpoint()``
   (Ray restarting it after a failure or a PBT pause, or PBT exploiting another trial)
   restores the state from it and trains with the hparams of its *current* Ray config. After
   an exploit (a checkpoint written by another trial) the RNG keys are folded with the new
   owner, so the copy does not replay the original's randomness.

**PBT.** Ray's :class:`~ray.tune.schedulers.PopulationBasedTraining` with ``time_attr =
"env_steps"`` and the reference defaults (quantile fraction 0.25, resample probability 0.25,
perturbation factors 1.2 and 0.8; asynchronous). Only *hparams* dimensions are mutated: they
are data of the compiled program. *Config* dimensions change shapes (a checkpoint of one
cannot be loaded into another), so they stay as drawn for the trial's own lineage; an exploit
copies the whole config of the trial it clones, config values included, together with the
checkpoint they fit. Ray's mutation (a resample from the dimension's distribution, or a
multiplication by 1.2 or 0.8, or a shift to a neighbouring choice) can leave the dimension's
range; :class:`ClipToSpace`, the ``custom_explore_fn``, clips every mutated hparams value back
to the space (Floats to ``[low, high]``, log or linear alike; Ints rounded, then clipped;
numeric Categoricals to the nearest choice).

**ASHA.** Ray's :class:`~ray.tune.schedulers.ASHAScheduler` on ``env_steps``: ``max_t =
budget``, rungs from ``grace_period`` (default: one report) growing by ``reduction_factor``.

Rows (``out / "trials.jsonl"``, one per finished Ray trial, appended by
:func:`~accelrl.autotune.study.append_row` as each trial finishes, so a killed study
keeps its finished trials) are described in :func:`trial_row`. Ray's own experiment folder
(results, checkpoints, error files) is ``out / "ray"``.

Ray's PBT draws its mutations from Python's global ``random`` and decides asynchronously as
reports arrive, so a PBT search is not reproducible from ``seed``; the initial configurations
are (``space.sample(numpy.random.default_rng(seed), trials, ...)``, as in random search).
Resuming an interrupted Ray search is not supported: start a new ``out`` folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelrl.agents.spec import check_seeds
from accelrl.autotune.protocol import DEFAULT_TUNING_SEEDS
from accelrl.autotune.spaces import (
    Categorical,
    Dimension,
    Float,
    Int,
    SearchSpace,
    default_space,
    values_to_json,
)
from accelrl.autotune.study import (
    SCORE_FRACTION,
    TRIALS_FILE,
    SearchResult,
    append_row,
    open_study,
    read_rows,
    trial_score,
)
from accelrl.autotune.tuners import register_tuner

MIN_RAY_VERSION = (2, 41)
"""Oldest Ray with ``tune.report(metrics, checkpoint=...)`` and ``tune.get_checkpoint()``."""
INSTALL_HINT = "pip install 'accelrl[ray]'  (ray[tune]>=2.41)"
SCHEDULERS = ("asha", "pbt")
PBT_QUANTILE_FRACTION = 0.25
PBT_RESAMPLE_PROBABILITY = 0.25
PBT_PERTURBATION_FACTORS = (1.2, 0.8)
INDEX_KEY = "trial_index"
"""Ray config key of the draw a trial starts from (copied with the config by a PBT exploit)."""


# ----------------------------------------------------------------------------------------------
# Ray, imported on demand


def require_ray() -> tuple[Any, Any]:
    """``(ray, ray.tune)``.

    Raises:
        ImportError: Ray is not installed, or older than 2.41 (with the install command).
    """
    try:
        import ray
        from ray import tune
    except ImportError as e:
        raise ImportError(
            f"the Ray Tune backend needs Ray Tune, which is not installed: {INSTALL_HINT}"
        ) from e
    version = tuple(int(p) for p in ray.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_RAY_VERSION:
        raise ImportError(
            f"the Ray Tune backend needs ray >= 2.41 (tune.report(..., checkpoint=...)), "
            f"found {ray.__version__}: {INSTALL_HINT}"
        )
    return ray, tune


# ----------------------------------------------------------------------------------------------
# PBT explore: clip Ray's mutations to the space


def clip_value(dim: Dimension, value: Any) -> Any:
    """``value`` moved into ``dim``'s range: Floats clipped to ``[low, high]`` (the bounds are
    the same for log and linear dimensions), Ints rounded then clipped, numeric Categoricals
    snapped to the nearest choice (a value already among the choices is kept).

    Raises:
        ValueError: a NaN, or a value that cannot be mapped onto a non-numeric categorical.
    """
    if isinstance(dim, Categorical):
        plain = value.item() if isinstance(value, np.generic) else value
        for c in dim.choices:
            if type(c) is type(plain) and c == plain:
                return c
        numeric = [c for c in dim.choices if _is_number(c)]
        if not _is_number(value) or len(numeric) != len(dim.choices):
            raise ValueError(f"{value!r} is not one of the choices {list(dim.choices)}")
        if math.isnan(float(value)):
            raise ValueError("cannot clip NaN to a categorical dimension")
        return min(numeric, key=lambda c: (abs(float(c) - float(value)), float(c)))
    if not _is_number(value):
        raise ValueError(f"cannot clip {value!r} to [{dim.low}, {dim.high}]: not a number")
    if math.isnan(float(value)):
        raise ValueError(f"cannot clip NaN to [{dim.low}, {dim.high}]")
    x = min(max(float(value), dim.low), dim.high)  # +-inf included
    return int(min(max(round(x), dim.low), dim.high)) if isinstance(dim, Int) else float(x)


@dataclasses.dataclass(frozen=True)
class ClipToSpace:
    """PBT's ``custom_explore_fn``: Ray calls it with the explored config (after its own
    resample or perturbation) and trains with what it returns.

    Args:
        space: the search space.
        names: the dimensions PBT mutates (the space's hparams dimensions).
    """

    space: SearchSpace
    names: tuple[str, ...]

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with every mutated dimension clipped into the space (others untouched)."""
        out = dict(config)
        for name in self.names:
            out[name] = clip_value(self.space[name], config[name])
        return out


def hyperparam_mutations(space: SearchSpace, names: Sequence[str]) -> dict[str, Any]:
    """Ray PBT ``hyperparam_mutations`` for the dimensions ``names``: the distribution each one
    is resampled from (``tune.loguniform``/``tune.uniform``, ``tune.lograndint``/
    ``tune.randint``, or the list of choices, sorted when numeric so that a shift moves to a
    neighbouring value). Needs Ray."""
    _, tune = require_ray()
    out: dict[str, Any] = {}
    for name in names:
        dim = space[name]
        if isinstance(dim, Float):
            out[name] = (tune.loguniform if dim.log else tune.uniform)(dim.low, dim.high)
        elif isinstance(dim, Int):
            out[name] = (tune.lograndint if dim.log else tune.randint)(dim.low, dim.high + 1)
        else:
            choices = list(dim.choices)
            out[name] = sorted(choices) if all(_is_number(c) for c in choices) else choices
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(
        x, bool | np.bool_
    )


# ----------------------------------------------------------------------------------------------
# Rows


def trial_row(
    trial_id: int,
    initial: Mapping[str, Any],
    seeds: Sequence[int],
    result: Mapping[str, Any] | None,
    *,
    scheduler: str,
    ray_trial_id: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The ``trials.jsonl`` row of one finished Ray trial.

    Args:
        trial_id: the draw the Ray trial started from (its index in the sampled
            configurations).
        initial: that draw's values ``{name: value}``.
        seeds: the tuning seeds (``S`` of them).
        result: the trial's last report (None if it reported nothing): ``score``,
            ``seed_scores`` (``S`` floats, NaN for none), ``failed_seeds``, ``env_steps``,
            ``finished``, ``values`` and ``schedule`` (JSON strings).
        scheduler: ``"asha"`` or ``"pbt"``.
        ray_trial_id: Ray's id of the trial.
        error: why the trial failed, if it did.

    Returns:
        ``{trial_id, config, seeds, score, seed_scores, status, env_steps, scheduler,
        ray_trial_id}`` plus ``error`` when there is one and, for PBT, ``initial_config`` and
        ``schedule``. ``config`` is what the trial trained with at its end (PBT: after its
        last exploit and explore; ASHA: the draw). ``score`` is the mean over seeds of the
        final-return window at the last report (None without one). ``status``: ``"error"``
        (Ray trial failed; no score), ``"diverged"`` (non-finite losses on some seed; no
        score), ``"stopped"`` (ended before its budget: an ASHA stop), ``"no_score"`` or
        ``"ok"``. ``env_steps`` per seed at the last report. ``schedule`` is
        ``[[env_steps, values], ...]``: the values the final model was trained with from each
        of those steps on, following its lineage through exploits.
    """
    from accelrl.autotune.folder import trial_row as study_row

    result = dict(result or {})
    values = json.loads(result["values"]) if "values" in result else values_to_json(initial)
    raw = result.get("seed_scores", [None] * len(seeds))
    if len(raw) != len(seeds):
        raise ValueError(f"{len(raw)} seed scores for {len(seeds)} seeds")
    seed_scores = np.asarray([np.nan if x is None else float(x) for x in raw], np.float64)
    failed = [int(s) for s in result.get("failed_seeds", [])]
    diverged = f"non-finite training metrics on seed(s) {failed}" if failed else None
    # the in-process tuners' row (score, seed scores, diverged), then Ray's own statuses
    row = study_row(
        trial_id, values, seeds, seed_scores, error or diverged, int(result.get("env_steps", 0)),
        scheduler=scheduler, ray_trial_id=ray_trial_id,
    )  # fmt: skip
    if error is not None:  # the Ray trial failed
        row["status"], row["score"] = "error", None
    elif failed:  # as in-process: a configuration that diverged on any seed has no score
        row["score"] = None
    elif not failed and not result.get("finished", False):
        row["status"] = "stopped"
    if scheduler == "pbt":
        row["initial_config"] = values_to_json(initial)
        row["schedule"] = (
            json.loads(result["schedule"])
            if "schedule" in result
            else [[0, values_to_json(initial)]]
        )
    return row


def extend_schedule(
    schedule: list[list[Any]], env_steps: int, values: Mapping[str, Any]
) -> list[list[Any]]:
    """``schedule`` (``[[env_steps, values], ...]``) with ``values`` in force from
    ``env_steps`` on: appended when they differ from the last entry's values; an entry at the
    same step is replaced (a second exploit before any training)."""
    out = [list(e) for e in schedule]
    if out and out[-1][1] == values:
        return out
    if out and out[-1][0] == env_steps:
        out.pop()
        if out and out[-1][1] == values:
            return out
    out.append([int(env_steps), dict(values)])
    return out


# ----------------------------------------------------------------------------------------------
# The trainable (runs in Ray's worker processes)


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    """What every trial of a search shares (shipped once to the workers)."""

    run: dict[str, Any]
    """The run every trial trains (``RunSpec.to_dict()``; its ``total_timesteps``, the
    budget, resolved)."""
    seeds: tuple[int, ...]
    config_names: tuple[str, ...]
    hparams_names: tuple[str, ...]
    segments: int
    """About how many reports a trial makes (the runner's segments)."""
    checkpoint_interval: int
    """Report a checkpoint when this many environment steps passed since the last one."""
    score_updates: int | None
    compile_cache: bool


_BACKENDS: dict[str, Any] = {}


def _backend(setup: TrialSetup) -> Any:
    """The in-process backend the trainable drives, made once per worker process and search
    (its groups, built once per distinct config values, keep their compiled programs)."""
    key = json.dumps(dataclasses.asdict(setup), sort_keys=True, default=repr)
    if key not in _BACKENDS:
        from accelrl.autotune.backend import RunnerBackend

        _BACKENDS[key] = RunnerBackend(
            setup.run, score_updates=setup.score_updates, segments=setup.segments
        )
    return _BACKENDS[key]


def _fold_keys(state: Any, tag: int) -> Any:
    """``state`` with every member's RNG key folded with ``tag`` (a new stream)."""
    import jax

    return state.replace(key=jax.vmap(jax.random.fold_in, (0, None))(state.key, tag))


def train_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray trainable: train one configuration on all of ``setup.seeds`` in one vmapped
    Runner, reporting after every segment (see the module docstring).

    Args:
        config: Ray's trial config: ``trial_index`` and a value for every dimension.
        setup: the search's shared settings.
    """
    # Several trials may share a GPU: do not let the first one take all its memory.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from ray import tune

    from accelrl.agents.checkpoint import latest_checkpoint, load_metadata, save_checkpoint

    if setup.compile_cache:
        from accelrl.agents.compile_cache import enable_compilation_cache

        enable_compilation_cache()

    names = setup.config_names + setup.hparams_names
    values = {n: config[n] for n in names}
    values_json = values_to_json(values)
    # the same run group the in-process tuners train (one configuration x the seeds)
    run = _backend(setup).open(
        {n: values[n] for n in setup.config_names},
        [{n: values[n] for n in setup.hparams_names}],
        setup.seeds,
    )
    runner, agent, seeds = run.runner, run.agent, list(setup.seeds)
    n_seeds = len(seeds)
    spu, total = agent.steps_per_update, agent.num_updates
    window = setup.score_updates or max(1, math.ceil(SCORE_FRACTION * total))  # the full run's
    owner = tune.get_context().get_trial_id() or ""

    # RESTORE (Ray restart, PBT pause or exploit)
    schedule: list[list[Any]] = [[0, values_json]]
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as directory:
            path = latest_checkpoint(directory)
            if path is None:
                raise RuntimeError(f"Ray checkpoint {directory} holds no accelrl checkpoint")
            state, _ = runner.restore(path)
            meta = load_metadata(path)
        done = int(meta["update_step"])
        run.state = state
        run.set_values(0, run.values[0])  # the config's hparams, not the checkpoint's
        run.metrics = {
            "episode_return": np.asarray(meta["episode_return"], np.float32).reshape(n_seeds, done)
        }
        runner.mark_failed(np.asarray(meta["failed"], bool).reshape(-1))
        schedule = extend_schedule(meta["schedule"], done * spu, values_json)
        if meta.get("owner") != owner:  # an exploit: the copy gets its own randomness
            run.state = _fold_keys(state, zlib.crc32(f"{owner}:{done}".encode()) & 0x7FFFFFFF)
    last_checkpoint = run.steps

    # TRAIN, segment by segment (a restored final checkpoint is only reported again)
    while True:
        done = run.steps // spu
        outcome = run.advance(min(total, done + runner.segment) * spu, window=window)
        done = run.steps // spu
        failed = np.asarray(runner.failed, bool).copy()
        seed_scores = outcome.seed_scores[0]  # NaN on failed seeds' configuration
        score = trial_score(seed_scores)
        env_steps = outcome.env_steps
        finished = done >= total
        metrics = {
            "env_steps": env_steps,
            "updates": done,
            "score": score,
            "objective": score if math.isfinite(score) else float("-inf"),
            "seed_scores": [float(x) for x in seed_scores],
            "failed_seeds": [s for s, f in zip(seeds, failed, strict=True) if f],
            "finished": finished,
            INDEX_KEY: int(config[INDEX_KEY]),
            "values": json.dumps(values_json),
            "schedule": json.dumps(schedule),
        }
        if finished or env_steps - last_checkpoint >= setup.checkpoint_interval:
            meta = {
                "env": setup.run["env"],
                "agent": setup.run["agent"],
                "owner": owner,
                "seeds": seeds,
                "values": values_json,
                "schedule": schedule,
                "episode_return": np.asarray(run.metrics["episode_return"]).tolist(),
                "failed": failed.tolist(),
                "train_seconds": runner.train_seconds,
            }
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, done, run.state, runner.hparams, meta, keep=1)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
            last_checkpoint = env_steps
        else:
            tune.report(metrics)
        if finished:
            break


def _finished(trial_id: str, result: dict[str, Any]) -> bool:
    """Ray stopper: the trial's last report is its final one (PBT must not act on it)."""
    return bool(result.get("finished", False))


class _DrawValue:
    """``tune.sample_from`` resolver: dimension ``name`` of the draw the trial starts from."""

    def __init__(self, draws: Sequence[Mapping[str, Any]], name: str):
        self.draws = [dict(d) for d in draws]
        self.name = name

    def __call__(self, config: Mapping[str, Any]) -> Any:
        return self.draws[int(config[INDEX_KEY])][self.name]


# ----------------------------------------------------------------------------------------------
# The driver


class _RowWriter:
    """Driver-side bookkeeping: the draw each Ray trial started from, and its row once it
    finishes (written at once, so an interrupted study keeps its finished trials)."""

    def __init__(self, path: Path, draws, seeds, scheduler, log):
        self.path = path
        self.draws = draws
        self.seeds = seeds
        self.scheduler = scheduler
        self.log = log
        self.origin: dict[str, int] = {}
        self.rows: dict[str, dict[str, Any]] = {}

    def on_result(self, ray_trial_id: str, result: Mapping[str, Any]) -> None:
        if INDEX_KEY in result:  # the first report precedes any exploit: the trial's own draw
            self.origin.setdefault(ray_trial_id, int(result[INDEX_KEY]))

    def finish(
        self,
        ray_trial_id: str,
        config: Mapping[str, Any],
        result: Mapping[str, Any] | None,
        error: str | None,
    ) -> None:
        if ray_trial_id in self.rows:
            return
        index = self.origin.get(ray_trial_id, int(config.get(INDEX_KEY, -1)))
        if not 0 <= index < len(self.draws):
            raise RuntimeError(f"Ray trial {ray_trial_id} has no draw index ({index})")
        result = result if result and "env_steps" in result else None
        row = trial_row(
            index,
            self.draws[index],
            self.seeds,
            result,
            scheduler=self.scheduler,
            ray_trial_id=ray_trial_id,
            error=error,
        )
        append_row(self.path, row)
        self.rows[ray_trial_id] = row
        self.log(
            f"trial {row['trial_id']} ({ray_trial_id}) {row['status']}: score {row['score']}, "
            f"{row['env_steps']} env steps per seed"
        )


def _error_text(trial: Any) -> str:
    try:
        err = trial.get_error()
    except Exception:  # an unreadable error file: still record the failure
        err = None
    text = str(err).strip() if err is not None else ""
    last = text.splitlines()[-1] if text else ""
    return (last or "Ray trial failed (see its error file under out/ray)")[:500]


def ray_search(
    run: Any,
    space: SearchSpace | None = None,
    *,
    scheduler: str,
    trials: int,
    out: str | Path,
    tuning_seeds: Sequence[int] = DEFAULT_TUNING_SEEDS,
    seed: int = 0,
    num_cpus: int | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    segments: int = 10,
    perturbation_interval: int | None = None,
    grace_period: int | None = None,
    reduction_factor: float = 4,
    score_updates: int | None = None,
    max_failures: int = 0,
    compile_cache: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Tune the run ``run`` with Ray Tune's ASHA or PBT; see the module docstring.

    Args:
        run: the run every trial trains (a :class:`~accelrl.agents.spec.RunSpec` or its
            mapping, with the default resets): environment, ``make`` kwargs, agent, the
            config and hparams fields fixed for every trial; ``config["total_timesteps"]``
            is the budget, environment steps per seed of a full trial (absent: the agent's
            default). Its seeds are not used (``tuning_seeds``).
        space: the search space (default: ``default_space(run.agent)``).
        scheduler: ``"asha"`` or ``"pbt"``.
        trials: Ray trials (configurations; PBT's population).
        out: run folder (created); must not hold ``trials.jsonl`` rows already.
        tuning_seeds: the seeds every trial trains on, vmapped in one program (default 0-4).
        seed: seed of the initial draws (``numpy.random.default_rng(seed)``).
        num_cpus: CPUs of the local Ray instance this call starts when Ray is not running
            (ignored when it is: an existing ``ray.init`` is used and left running).
        cpus_per_trial: Ray CPUs each trial requests.
        gpus_per_trial: Ray GPUs each trial requests (fractions share a GPU; each trial's JAX
            does not preallocate GPU memory).
        segments: about how many reports a trial makes (the runner's segments).
        perturbation_interval: PBT perturbation interval in environment steps per seed
            (default: a quarter of the reports, at least one); also the checkpoint interval.
        grace_period: ASHA's first rung in environment steps (default: one report).
        reduction_factor: ASHA's reduction factor (Ray's default 4).
        score_updates: updates averaged into a seed's score (default: the last 10% of the
            full run's updates).
        max_failures: Ray restarts of a failed trial (from its last checkpoint).
        compile_cache: turn on JAX's persistent compilation cache in the workers (default
            directory; ``ACCELRL_NO_COMPILE_CACHE=1`` in the workers' environment still wins).
        log: called with one line per finished trial (default: silent).

    Returns:
        The rows written to ``out / "trials.jsonl"`` (see :func:`trial_row`), by
        ``trial_id``; one per Ray trial.

    Raises:
        ImportError: Ray is not installed (``pip install 'accelrl[ray]'``).
        ValueError: an unknown scheduler, bad sizes or seeds, a run with another reset
            strategy, an invalid space, PBT on a space without hparams dimensions, a folder
            with rows already.
    """
    from accelrl.agents.spec import RunSpec
    from accelrl.autotune.backend import RunnerBackend

    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
    if int(trials) < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if int(segments) < 1:
        raise ValueError(f"segments must be >= 1, got {segments}")
    seeds = check_seeds(tuning_seeds)  # the run spec's check (distinct ints in [0, 2**32))
    if isinstance(run, Mapping):
        run = RunSpec.from_dict(run, where="study run")
    if run.reset_strategy.name != "default" or run.curriculum:
        raise ValueError("Ray Tune studies tune runs with the default resets")
    if int(run.config.get("total_timesteps", 1)) < 1:
        raise ValueError(
            f"budget must be >= 1 environment step, got {run.config['total_timesteps']}"
        )
    # the run with its budget resolved, as every trial's backend builds it
    driver = RunnerBackend(run, segments=int(segments))
    budget = driver.budget
    run = dataclasses.replace(run, config={**run.config, "total_timesteps": budget})
    agent = run.agent
    space = (default_space(agent) if space is None else space).validate(agent)
    config_names, hparams_names = space.split(agent)
    if scheduler == "pbt" and not hparams_names:
        raise ValueError(
            "PBT mutates hparams dimensions only (config dimensions change the compiled "
            f"program), and this space has none: {list(space)}"
        )
    ray, tune = require_ray()
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

    from accelrl.agents.runner import choose_segment

    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    trials_path = out / TRIALS_FILE
    if read_rows(trials_path):
        raise ValueError(
            f"{trials_path} already holds trials; the Ray backend does not resume a search: "
            "use a new folder"
        )
    log = log or (lambda _line: None)

    # DRAW the initial configurations (constraints: the agent's config.validate())
    base_agent, base_config = driver.base_agent, driver.base_config
    draws = space.sample(
        np.random.default_rng(seed), int(trials), agent=agent, base_config=base_config
    )
    report_steps = (
        choose_segment(base_agent.num_updates, int(segments)) * base_agent.steps_per_update
    )
    interval = (
        int(perturbation_interval)
        if perturbation_interval is not None
        else max(1, int(segments) // 4) * report_steps
    )
    if interval < 1:
        raise ValueError(f"perturbation_interval must be >= 1, got {perturbation_interval}")

    if scheduler == "pbt":
        sched = PopulationBasedTraining(
            time_attr="env_steps",
            metric="objective",
            mode="max",
            perturbation_interval=interval,
            hyperparam_mutations=hyperparam_mutations(space, hparams_names),
            quantile_fraction=PBT_QUANTILE_FRACTION,
            resample_probability=PBT_RESAMPLE_PROBABILITY,
            perturbation_factors=PBT_PERTURBATION_FACTORS,
            custom_explore_fn=ClipToSpace(space, tuple(hparams_names)),
            synch=False,
        )
        keep = 4  # an exploited checkpoint is always among its owner's two newest
    else:
        grace = int(grace_period) if grace_period is not None else report_steps
        sched = ASHAScheduler(
            time_attr="env_steps",
            metric="objective",
            mode="max",
            max_t=int(budget),
            grace_period=min(max(1, grace), int(budget)),
            reduction_factor=reduction_factor,
        )
        keep = 2

    setup = TrialSetup(
        run=run.to_dict(),
        seeds=seeds,
        config_names=tuple(config_names),
        hparams_names=tuple(hparams_names),
        segments=int(segments),
        checkpoint_interval=interval,
        score_updates=score_updates,
        compile_cache=bool(compile_cache),
    )
    param_space: dict[str, Any] = {INDEX_KEY: tune.grid_search(list(range(int(trials))))}
    for name in space:
        param_space[name] = tune.sample_from(_DrawValue(draws, name))
    writer = _RowWriter(trials_path, draws, seeds, scheduler, log)

    class _Rows(tune.Callback):
        """Feeds the row writer from the driver's trial events."""

        def __init__(self, writer: _RowWriter | None):
            self.writer = writer

        def __getstate__(self) -> dict[str, Any]:
            # Ray pickles the run config into its experiment folder; the writer (a file and
            # the log callable) stays in this process (a Ray search is not resumed).
            return {"writer": None}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if self.writer is not None:
                self.writer.on_result(trial.trial_id, result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            if self.writer is not None:
                self.writer.finish(trial.trial_id, trial.config, trial.last_result, None)

        def on_trial_error(self, iteration, trials, trial, **info):
            if self.writer is not None:
                error = _error_text(trial)
                self.writer.finish(trial.trial_id, trial.config, trial.last_result, error)

    trainable = tune.with_resources(
        tune.with_parameters(train_trial, setup=setup),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
    )
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(scheduler=sched, num_samples=1, reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"{scheduler}_{agent}_{run.env}".replace("/", "_"),
                storage_path=str(out / "ray"),
                stop=_finished,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=keep),
                failure_config=tune.FailureConfig(max_failures=int(max_failures)),
                callbacks=[_Rows(writer)],
                verbose=0,
            ),
        )
        grid = tuner.fit()
        # Trials the callbacks did not see finish (none expected): rows from the result grid.
        for result in grid:
            metrics = result.metrics or {}
            ray_id = str(metrics.get("trial_id") or Path(result.path).name)
            if ray_id in writer.rows:
                continue
            error = None if result.error is None else str(result.error).strip()[-500:]
            writer.finish(ray_id, result.config or {}, metrics, error)
    finally:
        if started:
            ray.shutdown()
    rows = sorted(writer.rows.values(), key=lambda r: r["trial_id"])
    scored = [r for r in rows if r["status"] == "ok"]
    best = max(scored, key=lambda r: (r["score"], -r["trial_id"]), default=None)
    log(
        f"{scheduler}: {len(rows)} trials ({len(scored)} ran their whole budget with a score); "
        + (f"best: trial {best['trial_id']} score {best['score']:.4g}" if best else "no score")
    )
    return rows


@dataclasses.dataclass(frozen=True)
class RaySettings:
    """Ray Tune's settings (``search.json`` records them beside the study spec; the method is
    ``ray_asha`` or ``ray_pbt``). The fields after ``seed`` go to :func:`ray_search`."""

    scheduler: str = "asha"
    """``"asha"`` or ``"pbt"``."""
    trials: int = 8
    """Ray trials (configurations; PBT's population)."""
    seed: int = 0
    """Seed of the initial draws."""
    num_cpus: int | None = None
    """CPUs of the local Ray instance (ignored when Ray is running)."""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    segments: int = 10
    perturbation_interval: int | None = None
    grace_period: int | None = None
    reduction_factor: float = 4
    max_failures: int = 0
    compile_cache: bool = True

    def __post_init__(self):
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")


def ray_study(settings: RaySettings, spec: Any, out: str | Path) -> SearchResult:
    """:func:`ray_search`, then the protocol's last step as the in-process tuners do it
    (:func:`~accelrl.autotune.report.finish`): the incumbent (the best score among the trials
    that ran their whole budget; a PBT incumbent's schedule is replayed) and the default
    retrained on the test seeds in this process and reported with ``report.md`` and plots.
    Plain runs only (the default resets, the return score)."""
    if spec.run.reset_strategy.name != "default" or spec.score != "return" or spec.run.curriculum:
        raise ValueError("Ray Tune studies tune runs with the default resets and the return score")
    scheduler = settings.scheduler
    study = open_study(f"ray_{scheduler}", settings, spec, out)
    extra = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    for name in ("scheduler", "trials", "seed"):
        extra.pop(name)
    run = dataclasses.replace(spec.run, config={**spec.run.config, "total_timesteps": study.budget})
    rows = ray_search(
        run, study.space, scheduler=scheduler, trials=settings.trials, out=study.out,
        tuning_seeds=study.tuning_seeds, seed=settings.seed, score_updates=spec.score_updates,
        log=study.log, **extra,
    )  # fmt: skip
    return study.conclude(
        rows, [r for r in rows if r["status"] == "ok"],
        "mean over tuning seeds of the mean episode_return over the last "
        + (f"{spec.score_updates} updates" if spec.score_updates else "10% of the full run's updates")
        + " at the trial's last report; incumbent among the trials that ran their whole budget",
    )  # fmt: skip


for _scheduler in SCHEDULERS:
    register_tuner(f"ray_{_scheduler}", RaySettings, ray_study,
                   title=f"{'ASHA' if _scheduler == 'asha' else 'Population-based training'} "
                   "(Ray Tune)")  # fmt: skip


__all__ = [
    "INDEX_KEY",
    "INSTALL_HINT",
    "MIN_RAY_VERSION",
    "PBT_PERTURBATION_FACTORS",
    "PBT_QUANTILE_FRACTION",
    "PBT_RESAMPLE_PROBABILITY",
    "RaySettings",
    "SCHEDULERS",
    "ClipToSpace",
    "TrialSetup",
    "clip_value",
    "extend_schedule",
    "hyperparam_mutations",
    "ray_search",
    "ray_study",
    "require_ray",
    "train_trial",
    "trial_row",
]
