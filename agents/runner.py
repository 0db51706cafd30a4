"""The host loop: all members of a run in one vmapped program, run segment by segment.

A run's *members* are seeds, or a grid of hparams settings x seeds (the same seed under
different hparams included); config fields fix shapes, so different configs are different
programs and different runs. Between segments (never inside the compiled program) the runner
updates a progress bar, checks the losses for NaNs, writes per-member metrics, saves
checkpoints (every few segments and on a wall-clock period) and calls ``on_segment``, which may
read the state and metrics and return a :class:`SegmentUpdate`: a replacement state and hparams
(PBT exploit and explore), host-side metrics (evaluations, % mastered) or a stop.

Placement: with several devices the member axis is sharded across them: the local devices, or
under ``jax.distributed`` (one process per host, each driving its own devices) every process's;
each process then runs the same host loop and gathers every member's metrics, all write the
checkpoints together (orbax) and process 0 the metrics files. With ``data_parallel=D`` the
devices form a 2-D mesh ``("seeds", "data")`` of ``(N / D, D)``: members over the first axis,
and each member's environment copies over the second (the leaves of the environment state and
observations whose second axis is the ``num_envs`` copies; everything else, parameters and
optimiser state and reset-strategy state included, is replicated across it). The program is the
same single-device program: XLA's partitioner splits the rollout and the minibatches by those
annotations and averages the gradients across ``data`` itself, so a member's results match the
one-device run to float tolerance and a reset strategy keeps one state per member.

>>> runner = Runner(agent, seeds=[0, 1, 2], out_dir="runs/cartpole")
>>> result = runner.train()
>>> grid = Runner(agent, seeds=[0, 1], hparams=[hp_a, hp_b])    # 4 members in one program
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from accelrl.agents.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    leaf_path,
    list_checkpoints,
    load_metadata,
    restore_checkpoint,
    save_checkpoint,
)
from accelrl.agents.configs import hparams_to_dict
from accelrl.agents.core import AgentState
from accelrl.agents.evaluation import training_key
from accelrl.agents.reporting import read_seed_metrics, write_json_atomic, write_seed_metrics

# Metrics that are legitimately NaN (before the first finished episode), with their per-agent
# and per-team forms ("agent_return/<agent>"); all others are checked.
NAN_ALLOWED = ("episode_return", "episode_length", "agent_return", "team_return")


class NaNError(RuntimeError):
    """A loss became NaN or infinite; the run stopped (the last good checkpoint is kept)."""


@dataclasses.dataclass
class RunResult:
    """What a run returns."""

    state: Any
    """Final train state, batched over members (leading axis ``M``)."""
    hparams: Any
    """Hparams, batched over members."""
    metrics: dict[str, np.ndarray]
    """Metric name -> ``f32[M, U]`` for all updates done (including before a resume); host-side
    metrics are NaN where not measured."""
    checkpoint: Path | None
    """Path of the last checkpoint written, if any."""
    train_seconds: float = 0.0
    """Wall-clock training time, summed over every process that worked on the run."""
    failed: np.ndarray | None = None
    """``bool[M]``: members whose checked metrics became non-finite (``nan_policy="mark"``;
    all False under ``"stop"``, which raises instead)."""


@dataclasses.dataclass
class SegmentUpdate:
    """What an ``on_segment`` callback may ask of the runner (every field optional)."""

    state: Any = None
    """Replacement state, batched over members (PBT exploit: copy a member's whole state)."""
    hparams: Any = None
    """Replacement hparams, batched over members (PBT explore); same shapes, no recompiling."""
    metrics: dict[str, Any] | None = None
    """Host-side metrics ``{name: f32[M]}`` recorded at the segment's last update (NaN at the
    other updates; exempt from the NaN stop)."""
    stop: bool = False
    """Stop the run after this segment (a Hyperband rung, an early stop)."""


@dataclasses.dataclass(frozen=True)
class Member:
    """One member of a run: a seed under one hparams setting."""

    index: int
    seed: int
    setting: int
    """Index of the member's hparams setting (0 for a plain multi-seed run)."""


def batch_hparams(hparams: Any, n: int) -> Any:
    """Broadcast every leaf of ``hparams`` to a leading axis of ``n`` (float32)."""
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,)), hparams)


def stack_hparams(settings: Sequence[Any], repeats: int) -> Any:
    """``[s0] * repeats + [s1] * repeats + ...`` stacked leafwise (float32)."""
    rows = [s for s in settings for _ in range(repeats)]
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]), *rows)


def choose_segment(num_updates: int, target_segments: int) -> int:
    """Updates per segment: a divisor of ``num_updates`` near ``num_updates / target_segments``
    (one compiled program for every segment), else the rounded-up quotient."""
    target_segments = max(1, min(target_segments, num_updates))
    ideal = num_updates / target_segments
    divisors = [d for d in range(1, num_updates + 1) if num_updates % d == 0]
    best = min(divisors, key=lambda d: abs(math.log(d / ideal)))
    if 0.5 <= best / ideal <= 2.0:
        return best
    return math.ceil(ideal)


def _strong(tree: Any) -> Any:
    """The same arrays without weak types (``jnp.full((2,), 0.1)`` is weakly typed).

    Dtypes are kept, float64 included (ThreeBody's state): the conversion runs in an x64 scope,
    and only Python scalars take the default (x64-off) dtype.
    """

    def strong(x: Any) -> Any:
        dtype = x.dtype if hasattr(x, "dtype") else jnp.asarray(x).dtype
        with jax.enable_x64(True):
            return jax.lax.convert_element_type(x, dtype)

    return jax.tree.map(strong, tree)


def _has_bad(
    metrics: dict[str, np.ndarray], skip: np.ndarray | None = None
) -> tuple[str, int, int] | None:
    """First ``(name, member index, update index)`` with a non-finite checked metric, ignoring
    the members where ``skip`` (``bool[M]``) is True."""
    for name, v in metrics.items():
        if name.split("/", 1)[0] in NAN_ALLOWED:
            continue
        bad = ~np.isfinite(v)
        if skip is not None:
            bad &= ~skip[:, None]
        if bad.any():
            s, u = np.argwhere(bad)[0]
            return name, int(s), int(u)
    return None


def _bad_members(metrics: dict[str, np.ndarray], n: int) -> np.ndarray:
    """``bool[M]``: members with any non-finite checked metric in ``metrics``."""
    out = np.zeros(n, bool)
    for name, v in metrics.items():
        if name.split("/", 1)[0] not in NAN_ALLOWED:
            out |= ~np.isfinite(v).all(axis=1)
    return out


def _devices() -> list[Any]:
    """Every device of the run: the local ones, or all processes' under ``jax.distributed``."""
    return jax.devices() if jax.process_count() > 1 else jax.local_devices()


def _to_global(x: Any, sharding: NamedSharding) -> jax.Array:
    """A global array of ``sharding`` from ``x``, whose whole value every process holds (a
    global array already laid out so is returned as it is)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return jax.device_put(x, sharding)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _with_sharding(like: jax.ShapeDtypeStruct, sharding: NamedSharding) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(like.shape, like.dtype, sharding=sharding)


def _gather(tree: Any) -> Any:
    """``tree`` as numpy arrays on this host; under ``jax.distributed`` every process gathers
    the whole arrays (a collective: all processes call it together)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def check_data_parallel(data_parallel: Any, agent: Any) -> int:
    """``data_parallel`` as an int, or a one-line ``ValueError`` naming what it must divide."""
    if isinstance(data_parallel, bool) or not isinstance(data_parallel, int) or data_parallel < 1:
        raise ValueError(f"data_parallel must be a positive integer, got {data_parallel!r}")
    n_dev = len(_devices())
    if n_dev % data_parallel:
        raise ValueError(f"data_parallel={data_parallel} does not divide the {n_dev} device(s)")
    n_envs = agent.config.num_envs
    if n_envs % data_parallel:
        raise ValueError(
            f"data_parallel={data_parallel} does not divide num_envs={n_envs} (each device "
            "steps an equal share of a member's environment copies)"
        )
    return data_parallel


@functools.lru_cache(maxsize=16)
def seed_vmapped(agent: Any) -> tuple[Callable, Callable]:
    """Member-vmapped, jitted ``(run, init)`` of ``agent``: ``run(states, hparams, n, start)``
    with leading member axes and the unbatched index ``start`` (``i32[]``) of the first update.
    Cached, so runners of the same agent share compiled programs."""
    run = jax.jit(jax.vmap(agent.run, in_axes=(0, 0, None, None)), static_argnums=2)

    def init(keys: jax.Array, hparams: Any) -> Any:
        # Weak types (e.g. an env's ``time=0`` counter) would not survive a checkpoint round
        # trip, and a restored state would then compile a second program: make them strong.
        return _strong(jax.vmap(agent.init)(keys, hparams))

    return run, jax.jit(init)


class _DataLeaf:
    """Marks where a data setting sits in a state's pytree (a leaf to jax)."""

    def __init__(self, name: str):
        self.name = name


@functools.lru_cache(maxsize=16)
def _set_strategy_data(agent: Any) -> Callable:
    """Jitted ``(states, values) -> states``: each member's reset-strategy data settings
    replaced by ``values`` (``{name: f32[M]}``)."""
    env = agent.env

    def one(state: Any, values: dict[str, jax.Array]) -> Any:
        s_state = env.strategy.with_data(env.strategy_state(state.env_state), values)
        return state.replace(env_state=env.with_strategy_state(state.env_state, s_state))

    return jax.jit(jax.vmap(one))


class Runner:
    """Runs an agent for several members in one vmapped program, in segments.

    Args:
        agent: an :class:`accelrl.agents.Agent`.
        seeds: integer seeds (distinct); training keys are :func:`training_key(seed)`.
        hparams: unbatched hparams (default ``agent.default_hparams()``), or a list of settings
            for a grid: the members are then every setting x every seed, setting-major.
        out_dir: run folder for checkpoints and metrics (None: keep everything in memory).
            Metrics go to ``seed_<s>/`` (one setting) or ``member_<i>/`` with a
            ``member.json`` naming the seed and hparams (a grid).
        metadata: JSON-ready description of the run stored beside each checkpoint.
        segments: about how many segments to split the run into (progress/checkpoint points).
        checkpoint_every: save a checkpoint every this many segments (and at the end).
        checkpoint_seconds: also save when this much wall-clock time passed since the last
            save (None: never), so a kill loses bounded work on long runs.
        keep_checkpoints: how many checkpoints to keep (at least 2: a damaged newest one falls
            back to the one before).
        progress: show a tqdm progress bar.
        on_segment: optional callback ``(runner, state, metrics_of_segment) -> SegmentUpdate |
            None`` after each segment, before that segment's checkpoint (so what it returns is
            what a resumed run continues from); ``metrics_of_segment`` maps names to
            ``f32[M, n]``. It may also call :meth:`set_hparams`.
        nan_policy: ``"stop"`` (default): a non-finite loss stops the run with
            :class:`NaNError`; ``"mark"`` (tuners): the member is marked failed
            (``runner.failed``, ``RunResult.failed``), the others keep training (members are
            independent under the vmap) and its metrics stay as they are.
        data_parallel: devices that share one member's environment copies (the ``data`` axis
            of the mesh; module docstring). 1 (default): members only, as many devices as
            divide the member count. It must divide the device count and the agent's
            ``num_envs``; when the members do not split over the remaining ``N / D`` device
            groups, one group of ``D`` devices runs them all.
    """

    def __init__(
        self,
        agent: Any,
        seeds: Sequence[int],
        hparams: Any = None,
        *,
        out_dir: str | Path | None = None,
        metadata: dict[str, Any] | None = None,
        segments: int = 20,
        checkpoint_every: int = 5,
        checkpoint_seconds: float | None = 300.0,
        keep_checkpoints: int = 2,
        progress: bool = True,
        on_segment: Callable[[Runner, Any, dict[str, np.ndarray]], SegmentUpdate | None]
        | None = None,
        nan_policy: str = "stop",
        data_parallel: int = 1,
        strategy_data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ):
        if nan_policy not in ("stop", "mark"):
            raise ValueError(f"nan_policy must be 'stop' or 'mark', got {nan_policy!r}")
        if not seeds:
            raise ValueError("need at least one seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {list(seeds)}")
        self.agent = agent
        seeds = [int(s) for s in seeds]
        if hparams is None:
            hparams = agent.default_hparams()
        self.grid = isinstance(hparams, list | tuple)
        settings = list(hparams) if self.grid else [hparams]
        if not settings:
            raise ValueError("need at least one hparams setting")
        self.settings = settings
        self.strategy = getattr(agent.env, "strategy", None)
        """The reset strategy of the agent's batched env (None: none to ask)."""
        self.strategy_data = self._check_strategy_data(strategy_data, len(settings))
        self.members = [
            Member(i * len(seeds) + j, s, i)
            for i, _ in enumerate(settings)
            for j, s in enumerate(seeds)
        ]
        self.seeds = [m.seed for m in self.members]  # per member (repeats across settings)
        self.hparams = stack_hparams(settings, len(seeds))  # placed in train()
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.metadata = dict(metadata or {})
        self.segment = choose_segment(agent.num_updates, segments)
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.checkpoint_seconds = checkpoint_seconds
        self.keep_checkpoints = max(2, int(keep_checkpoints))
        self.progress = progress
        self.on_segment = on_segment
        self.nan_policy = nan_policy
        self.failed = np.zeros(len(self.members), bool)
        self.train_seconds = 0.0
        self.restored_from: Path | None = None
        """The checkpoint the last :meth:`restore` read."""
        self._program_metrics: set[str] = set()
        self._run, self._init = seed_vmapped(agent)
        self.data_parallel = check_data_parallel(data_parallel, agent)
        self._mesh = self._make_mesh()

    # -- members ----------------------------------------------------------------------------

    @property
    def folders(self) -> list[str]:
        """Metrics folder of each member: ``seed_<s>`` or, in a grid, ``member_<i>``."""
        if self.grid:
            return [f"member_{m.index}" for m in self.members]
        return [f"seed_{m.seed}" for m in self.members]

    def describe_members(self) -> list[dict[str, Any]]:
        """JSON-ready ``{index, seed, setting, hparams}`` of every member (and
        ``strategy_data`` when the reset strategy has data settings)."""
        out = []
        for m in self.members:
            row = {
                "index": m.index,
                "seed": m.seed,
                "setting": m.setting,
                "hparams": hparams_to_dict(self.settings[m.setting]),
            }
            if self.strategy_data[m.setting]:
                row["strategy_data"] = dict(self.strategy_data[m.setting])
            out.append(row)
        return out

    # -- what tuners change between segments -------------------------------------------------

    def _check_strategy_data(self, data: Any, n_settings: int) -> list[dict[str, float]]:
        """Per hparams setting, every data setting's value (the strategy's defaults under
        ``data``)."""
        names = tuple(getattr(self.strategy, "data_settings", ()))
        defaults = self.strategy.data_defaults() if names else {}
        if data is None:
            rows: list[Any] = [{}] * n_settings
        elif isinstance(data, Mapping):
            rows = [data] * n_settings
        else:
            rows = list(data)
            if len(rows) != n_settings:
                raise ValueError(
                    f"strategy_data has {len(rows)} entries for {n_settings} hparams setting(s)"
                )
        out = []
        for row in rows:
            if row and not names:
                raise ValueError(
                    f"strategy_data {sorted(row)} given, but the reset strategy "
                    f"{getattr(self.strategy, 'name', 'default')!r} has no data settings"
                )
            out.append({**defaults, **(self.strategy.check_data(dict(row)) if row else {})})
        return out

    def set_hparams(self, settings: Sequence[Any]) -> None:
        """Replace every hparams setting (unbatched hparams objects, one per setting, the
        shapes kept): each setting's members train with it from the next segment on."""
        settings = list(settings)
        if len(settings) != len(self.settings):
            raise ValueError(f"set_hparams got {len(settings)} settings for {len(self.settings)}")
        self.settings = settings
        self.hparams = stack_hparams(settings, len(self.members) // len(settings))

    def set_strategy_data(self, state: Any, data: Sequence[Mapping[str, Any] | None]) -> Any:
        """``state`` with each hparams setting's members' strategy data settings replaced
        (``data``: one mapping per setting, None or ``{}`` to keep; checked on the host).

        Returns:
            The new state, batched over members ``[M, ...]`` (same shapes: no recompiling).
        """
        data = list(data)
        if len(data) != len(self.settings):
            raise ValueError(
                f"set_strategy_data got {len(data)} entries for {len(self.settings)} settings"
            )
        for i, row in enumerate(data):
            if row:
                self.strategy_data[i] = {
                    **self.strategy_data[i],
                    **self.strategy.check_data(dict(row)),
                }
        return self._with_strategy_data(state)

    def mark_failed(self, failed: Any) -> None:
        """Set which members count as failed (``bool[M]``; a tuner's exploit copies a
        source's flag into the receiver, a selection keeps its members' flags)."""
        failed = np.asarray(failed, bool)
        if failed.shape != (len(self.members),):
            raise ValueError(f"mark_failed needs bool[{len(self.members)}], got {failed.shape}")
        self.failed = failed.copy()

    def _read_strategy_data(self, state: Any) -> None:
        """Record the strategy data settings a (restored) state holds, per setting (its first
        member's)."""
        if not any(self.strategy_data):
            return
        env = self.agent.env
        held = _gather(env.strategy.data(env.strategy_state(state.env_state)))
        per = len(self.members) // len(self.settings)
        for i in range(len(self.settings)):
            self.strategy_data[i] = {n: float(np.asarray(v)[i * per]) for n, v in held.items()}

    def _with_strategy_data(self, state: Any) -> Any:
        """``state`` holding every member's strategy data (a no-op without data settings)."""
        if not any(self.strategy_data):
            return state
        names = sorted(self.strategy_data[0])
        values = {
            n: jnp.asarray([self.strategy_data[m.setting][n] for m in self.members], jnp.float32)
            for n in names
        }
        return self._place(_set_strategy_data(self.agent)(state, values))

    # -- placement --------------------------------------------------------------------------

    def _make_mesh(self) -> Mesh | None:
        """The ``("seeds", "data")`` mesh, or None for one device (no mesh needed)."""
        all_devices = _devices()
        n_dev, d, n_members = len(all_devices), self.data_parallel, len(self.members)
        if d == 1:  # today's layout: members over every device, when they divide
            if n_dev < 2 or n_members % n_dev:
                if jax.process_count() > 1:
                    raise ValueError(
                        f"a run over {jax.process_count()} processes shards its {n_members} "
                        f"members over the {n_dev} devices, which must divide them"
                    )
                return None
            return jax.make_mesh((n_dev,), ("seeds",), devices=all_devices)
        groups = n_dev // d if n_members % (n_dev // d) == 0 else 1
        # Auto axes: XLA's partitioner propagates the annotations (explicit axes would make the
        # sharding part of every array's type, which the per-copy vmap inside the env refuses).
        auto = (AxisType.Auto, AxisType.Auto)
        devices = all_devices[: groups * d]
        return jax.make_mesh((groups, d), ("seeds", "data"), auto, devices=devices)

    def _shardings(self, tree: Any) -> Any:
        """Per-leaf shardings of ``tree`` (a state or hparams, leading member axis): members
        over ``seeds``; a state's per-copy environment leaves (axis 1 of size ``num_envs``) and
        observations also over ``data``."""
        member = NamedSharding(self._mesh, PartitionSpec("seeds"))
        out = jax.tree.map(lambda _: member, tree)
        if self.data_parallel == 1 or not isinstance(tree, AgentState):
            return out
        per_copy = NamedSharding(self._mesh, PartitionSpec("seeds", "data"))
        n_envs = self.agent.config.num_envs

        def rule(x: Any) -> NamedSharding:
            shape = tuple(x.shape)
            return per_copy if len(shape) >= 2 and shape[1] == n_envs else member

        return out.replace(
            env_state=jax.tree.map(rule, tree.env_state), obs=jax.tree.map(rule, tree.obs)
        )

    def _place(self, tree: Any) -> Any:
        """Put ``tree`` on the mesh (or commit it to the first device): fresh, restored and
        returned states then look the same to ``jit`` and share one compiled program."""
        if self._mesh is None:
            return jax.device_put(tree, jax.local_devices()[0])
        if jax.process_count() > 1:
            # Every process holds the same whole values (the same keys, the same program): each
            # puts its devices' slices of them into global arrays, dtypes kept (float64 too).
            # (device_put would compare the values across processes, and NaN != NaN.)
            with jax.enable_x64(True):
                return jax.tree.map(_to_global, tree, self._shardings(tree))
        return jax.device_put(tree, self._shardings(tree))

    # -- state ------------------------------------------------------------------------------

    def keys(self) -> jax.Array:
        """Training keys ``[M, 2]`` (a member's key depends on its seed only)."""
        return jnp.stack([training_key(s) for s in self.seeds])

    def init_state(self) -> Any:
        """Fresh states for all members (batched, placed on the devices), holding each
        member's strategy data settings."""
        return self._with_strategy_data(self._place(self._init(self.keys(), self.hparams)))

    def restore(self, path: str | Path | None = None) -> tuple[Any, Any]:
        """Restore ``(state, hparams)`` from ``path`` (default: the run folder's newest usable
        checkpoint; a damaged one is skipped with a one-line warning naming it).

        Raises:
            FileNotFoundError: no checkpoint at all.
            CheckpointMismatchError: a readable checkpoint whose leaves or shapes differ from the
                state this runner builds (other than missing strategy data settings, which
                checkpoints older than them lack: filled in from ``strategy_data``).
            CheckpointError: none of the checkpoints could be restored.
        """
        like = jax.eval_shape(self._init, self.keys(), self.hparams)
        hparams_like = self.hparams
        if jax.process_count() > 1:  # orbax restores global arrays laid out as the targets say
            like = jax.tree.map(_with_sharding, like, self._shardings(like))
            hparams_like = jax.eval_shape(lambda h: h, self.hparams)
            hparams_like = jax.tree.map(_with_sharding, hparams_like, self._shardings(hparams_like))
        if path is not None:
            candidates = [Path(path)]
        else:
            if self.out_dir is None:
                raise ValueError("restore needs a checkpoint path or an out_dir")
            candidates = list_checkpoints(self.out_dir / "checkpoints")[::-1]
            if not candidates:
                raise FileNotFoundError(f"no checkpoint under {self.out_dir / 'checkpoints'}")
        errors = []
        optional = self._strategy_data_leaves(like)
        for ckpt in candidates:
            try:
                state, hparams = restore_checkpoint(ckpt, like, hparams_like, optional)
                meta = load_metadata(ckpt)
            except CheckpointMismatchError:
                raise  # not damage: the run's older checkpoints share the layout
            except (CheckpointError, FileNotFoundError, ValueError) as e:
                errors.append(f"{ckpt.name}: {e}")
                if len(candidates) > 1:
                    warnings.warn(
                        f"checkpoint {ckpt} is damaged ({e}); trying an older one", stacklevel=2
                    )
                continue
            self.train_seconds = float(meta.get("train_seconds", 0.0))
            self.restored_from = ckpt
            self.hparams = self._place(hparams)
            state = self._place(state)
            self._read_strategy_data(state)
            return state, self.hparams
        raise CheckpointError(f"no usable checkpoint: {'; '.join(errors)}")

    def _strategy_data_leaves(self, like: Any) -> dict[tuple[str, ...], np.ndarray]:
        """The reset strategy's data-setting leaves of the state ``like`` (by checkpoint leaf
        path), each with every member's value (``f32[M]``) as this runner holds it: the run
        spec's settings unless given otherwise.

        Checkpoints written before those settings moved into the strategy state (runs older
        than the data settings) lack these leaves; :meth:`restore` fills them in from here.
        """
        if not any(self.strategy_data):
            return {}
        env = self.agent.env
        marks = {n: _DataLeaf(n) for n in self.strategy_data[0]}
        s_like = env.strategy_state(like.env_state)
        marked = like.replace(
            env_state=env.with_strategy_state(like.env_state, s_like.replace(**marks))
        )
        out = {}
        for path, leaf in jax.tree_util.tree_flatten_with_path(marked)[0]:
            if isinstance(leaf, _DataLeaf):
                values = [self.strategy_data[m.setting][leaf.name] for m in self.members]
                out[leaf_path(path)] = np.asarray(values, np.float32)
        return out

    def _save(self, state: Any, metrics: dict[str, np.ndarray], step: int) -> Path | None:
        if self.out_dir is None:
            return None
        self._write_metrics(metrics)
        meta = {
            **self.metadata,
            "seeds": sorted(set(self.seeds)),
            "train_seconds": self.train_seconds,  # unrounded: eval.json rounds once
        }
        if self.grid:
            meta["members"] = self.describe_members()
        return save_checkpoint(
            self.out_dir / "checkpoints",
            step,
            state,
            self.hparams,
            meta,
            keep=self.keep_checkpoints,
        )

    def _write_metrics(self, metrics: dict[str, np.ndarray]) -> None:
        if jax.process_index() != 0:  # under jax.distributed: one writer
            return
        write_seed_metrics(self.out_dir, self.seeds, metrics, folders=self.folders)
        if self.grid:
            for m, folder in zip(self.describe_members(), self.folders, strict=True):
                write_json_atomic(self.out_dir / folder / "member.json", m)

    def read_metrics(self) -> dict[str, np.ndarray] | None:
        """The metrics files of the run folder (None when a member's file is missing)."""
        if self.out_dir is None:
            return None
        return read_seed_metrics(self.out_dir, self.seeds, folders=self.folders)

    # -- the loop ---------------------------------------------------------------------------

    def train(
        self,
        state: Any = None,
        metrics: dict[str, np.ndarray] | None = None,
        until: int | None = None,
    ) -> RunResult:
        """Run from ``state`` (default: fresh) until ``until`` updates (default: the agent's
        ``num_updates``) are done, or a callback stops the run.

        Args:
            state: batched state to continue from (e.g. :meth:`restore`).
            metrics: metrics of the updates already done (default: read from the run folder
                when continuing, truncated to the state's update step).
            until: stop after this many updates in all (a Hyperband rung); call ``train``
                again with the returned state to continue.

        Raises:
            NaNError: when a loss becomes non-finite; the last good checkpoint is kept.
        """
        from tqdm.auto import tqdm

        agent = self.agent
        state = self.init_state() if state is None else self._place(state)
        done = int(np.asarray(_gather(state.update_step)).reshape(-1)[0])
        from_folder = metrics is None
        if from_folder:
            metrics = (self.read_metrics() or {}) if done else {}
        metrics = {k: np.asarray(v)[:, :done] for k, v in metrics.items()}
        if self.nan_policy == "mark" and from_folder and metrics:
            # a run resumed from its folder: members that failed before. Metrics a caller
            # passes come with its own flags (mark_failed): a prefix it kept only some
            # columns of is NaN-padded here, which is not a divergence.
            self.failed |= _bad_members(metrics, len(self.members))
        total = agent.num_updates if until is None else min(int(until), agent.num_updates)
        found = list_checkpoints(self.out_dir / "checkpoints") if self.out_dir else []
        last_ckpt = found[-1] if found else None
        n_members = len(self.members)
        bar = tqdm(
            total=total * agent.steps_per_update,
            initial=done * agent.steps_per_update,
            unit=" steps",
            unit_scale=True,
            disable=not self.progress or jax.process_index() != 0,
            dynamic_ncols=True,
            desc="compiling",
            # One rate, stated: environment steps per second summed over the members (tqdm's
            # own per-bar rate would count one member's steps only).
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps per seed "
            "[{elapsed}<{remaining}{postfix}]",
        )
        segment_index = 0
        t0, steps0 = time.perf_counter(), done
        t_mark, last_save = t0, t0
        try:
            while done < total:
                n = min(self.segment, total - done)
                # A callback may have replaced them: keep types and placement (one program).
                self.hparams = self._place(_strong(self.hparams))
                new_state, seg = self._run(state, self.hparams, n, jnp.int32(done))
                seg = {k: np.asarray(v) for k, v in _gather(seg).items()}
                now = time.perf_counter()
                self.train_seconds += now - t_mark
                t_mark = now
                if self.nan_policy == "mark":  # tuners: the member fails, the others go on
                    self.failed |= _bad_members(seg, n_members)
                bad = _has_bad(seg, self.failed)
                if bad is not None:
                    name, s, u = bad
                    raise NaNError(
                        f"non-finite {name} at update {done + u + 1} (env step "
                        f"{(done + u + 1) * agent.steps_per_update}) of {self.folders[s].replace('_', ' ')}; "
                        f"stopped. Last good checkpoint: {last_ckpt or 'none written'}"
                    )
                # The partitioner may lay outputs out otherwise: back on the mesh (a no-op
                # when they already are), so every segment runs the same program.
                state, done = self._place(new_state), done + n
                self._program_metrics = set(seg)
                metrics = _append(metrics, seg, done - n)
                segment_index += 1
                update = self.on_segment(self, state, seg) if self.on_segment is not None else None
                if update is not None:
                    state, metrics = self._apply(update, state, metrics, done)
                stop = update is not None and update.stop
                periodic = (
                    self.checkpoint_seconds is not None
                    and now - last_save >= self.checkpoint_seconds
                )
                if done == total or stop or periodic or segment_index % self.checkpoint_every == 0:
                    last_ckpt = self._save(state, metrics, done) or last_ckpt
                    last_save = time.perf_counter()
                # PROGRESS
                elapsed = time.perf_counter() - t0
                sps = (done - steps0) * agent.steps_per_update * n_members / max(elapsed, 1e-9)
                last = seg["episode_return"][:, -1]
                ret = float(np.nanmean(last)) if np.isfinite(last).any() else float("nan")
                bar.set_description_str(
                    f"training {n_members} seed{'s' if n_members > 1 else ''}", refresh=False
                )
                bar.set_postfix_str(
                    f"{sps:.3g} env steps/s over all seeds, return {ret:.1f}", refresh=False
                )
                bar.update(n * agent.steps_per_update)
                if stop:
                    break
        finally:
            bar.close()
        return RunResult(
            state, self.hparams, metrics, last_ckpt, self.train_seconds, self.failed.copy()
        )

    def _apply(self, update: SegmentUpdate, state: Any, metrics: dict[str, np.ndarray], done: int):
        """Apply a callback's :class:`SegmentUpdate` after the segment ending at ``done``."""
        if update.state is not None:
            state = self._place(_strong(update.state))
        if update.hparams is not None:
            self.hparams = update.hparams
        for name, values in (update.metrics or {}).items():
            if name in self._program_metrics:
                raise ValueError(f"host metric {name!r} would overwrite a metric of the program")
            col = metrics.get(name)
            if col is None:
                col = np.full((len(self.members), done), np.nan, np.float32)
            col = np.asarray(col, np.float32).copy()
            col[:, done - 1] = np.broadcast_to(np.asarray(values, np.float32), (len(self.members),))
            metrics[name] = col
        return state, metrics


def _append(
    metrics: dict[str, np.ndarray], seg: dict[str, np.ndarray], start: int
) -> dict[str, np.ndarray]:
    """Append a segment's columns; columns only one side has are padded with NaN (host-side
    metrics are not in the program's output)."""
    n = next(iter(seg.values())).shape[1]
    out = {}
    for name in set(metrics) | set(seg):
        old = metrics.get(name)
        new = seg.get(name)
        rows = (new if new is not None else old).shape[0]
        if old is None:
            old = np.full((rows, start), np.nan, np.float32)
        if new is None:
            new = np.full((rows, n), np.nan, np.float32)
        out[name] = np.concatenate([old, new], 1)
    return out


__all__ = [
    "NAN_ALLOWED",
    "Member",
    "NaNError",
    "RunResult",
    "Runner",
    "SegmentUpdate",
    "batch_hparams",
    "choose_segment",
    "seed_vmapped",
    "stack_hparams",
]
