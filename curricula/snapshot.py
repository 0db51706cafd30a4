"""Snapshot starts (S3RL): start some of a student's episodes from states a teacher visited.

Zhao et al., *Snapshot Reinforcement Learning* (arXiv 2403.00673; code sdpkjc/snapshotrl). The
student is unmodified; only what a fresh start is changes, so this is a reset strategy
(:mod:`accelrl.envs.reset`) and PPO, SAC and any registered agent run on it unchanged:

1. **Collection** (:func:`collect`, :func:`collect_from_run`, ``accelrl-snapshot``): roll a
   trained teacher, keep the best whole episodes by return, and store the full environment state
   every ``every`` steps (the reset state included) with its raw observation, the teacher's value
   estimate there and the steps the episode had already run. A :class:`SnapshotBank` is written
   to a ``.npz`` of plain arrays plus a JSON header (:func:`save_bank`, :func:`load_bank`); it
   never holds pickled objects and is loaded with ``allow_pickle=False``.
2. **Status classification**: 1-D K-means on the teacher values (:func:`kmeans_1d`, in JAX),
   empty clusters dropped; a start picks a cluster uniformly, then a snapshot uniformly in it.
3. **Student trajectory truncation**: an episode started from a snapshot gets at most
   ``horizon`` (T) more steps and is then *truncated* (the agent bootstraps), even past the
   environment's own step limit: the copy's params get that limit raised to elapsed + T.
4. **Schedule**: snapshot starts for the first ``snapshot_steps`` environment steps (or with a
   linearly decaying probability), then the environment's own resets.

>>> bank = collect_from_run("runs/mcc", episodes=10, every=10)        # or accelrl-snapshot
>>> save_bank(bank, "runs/mcc.bank")
>>> bank = load_bank("runs/mcc.bank", env_id="MountainCarContinuous-v0")
>>> venv = VecEnv(env, 16, SnapshotStarts.for_agent(bank, "sac"))       # K = 4 for SAC
>>> agent, config, hparams = build(venv, "sac", {...}, env_id="MountainCarContinuous-v0")

The bank lives in the strategy as constants of the compiled program, not in its state: a bank
is fixed for a run, so its arrays are closed over once (not replicated per seed under the
runner's vmap, and not written into every checkpoint); a run records the bank's path and content
hash instead, and strategies compare equal when their banks' hashes and settings do. Banks are
small (10 episodes of a few hundred steps, one snapshot per 10 steps: hundreds of states).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from accelrl.curricula import kmeans
from accelrl.envs.reset import (
    NO_LIMIT,
    ResetStrategy,
    Starts,
    StepRecord,
    reset_copies,
)
from accelrl.envs.vec import select_copies

# -- defaults (the paper's; see docs/snapshot.md) -------------------------------------------------

PAPER_EPISODES = 10
"""Teacher episodes kept (snapshotrl collects 10 and keeps the top 10 by return)."""
PAPER_EVERY = 10
"""A snapshot every this many steps of each kept episode (plus the reset state)."""
PAPER_NUM_CLUSTERS = 6
"""K of the status classification for TD3 and PPO students (snapshotrl code defaults)."""
PAPER_NUM_CLUSTERS_SAC = 4
"""K for SAC students (snapshotrl's SAC code default; its README example runs SAC with 6)."""
PAPER_HORIZON = 100
"""T: steps an episode started from a snapshot may run before it is truncated."""
PAPER_SNAPSHOT_STEPS = 100_000
"""Environment steps (summed over copies) during which episodes start from snapshots."""

STEP_LIMIT_FIELDS = ("max_steps_in_episode", "max_decisions")
"""Params fields holding an environment's own step limit (gymnax's name; ThreeBody's
``max_decisions``). A snapshot start raises those that exist to at least elapsed + T."""

BANK_FORMAT = "accelrl-snapshot-bank"
BANK_VERSION = 1
SCHEDULES = ("constant", "linear")


class BankError(ValueError):
    """A bank file that cannot be used: not a bank, pickled data, a corrupted content, or a bank
    collected on another environment or state structure (the message names what differs)."""


# -- the bank -----------------------------------------------------------------------------------


def _to_device(tree: Any) -> Any:
    """Leaves as jax arrays, created inside an x64 scope so float64 stays float64."""
    with jax.enable_x64(True):
        return jax.tree.map(jnp.asarray, tree)


def _leaf_table(tree: Any, leading: int = 1) -> list[dict[str, Any]]:
    """``[{"path", "dtype", "shape"}]`` of a pytree's leaves in flatten order (``shape`` without
    the ``leading`` batch axes)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [
        {
            "path": jax.tree_util.keystr(path),
            "dtype": np.dtype(leaf.dtype).name,
            "shape": [int(s) for s in leaf.shape[leading:]],
        }
        for path, leaf in flat
    ]


def _structure_diff(what: str, expected: list[dict], got: list[dict]) -> list[str]:
    """Human-readable differences between two leaf tables (empty when they agree)."""
    out: list[str] = []
    exp = {e["path"]: e for e in expected}
    have = {g["path"]: g for g in got}
    missing = [p for p in exp if p not in have]
    extra = [p for p in have if p not in exp]
    if missing:
        out.append(f"{what}: the environment has leaves the bank lacks: {', '.join(missing)}")
    if extra:
        out.append(f"{what}: the bank has leaves the environment lacks: {', '.join(extra)}")
    for p, e in exp.items():
        g = have.get(p)
        if g is None:
            continue
        if e["dtype"] != g["dtype"]:
            out.append(f"{what}{p}: dtype {g['dtype']} in the bank, {e['dtype']} in the env")
        if list(e["shape"]) != list(g["shape"]):
            out.append(f"{what}{p}: shape {g['shape']} in the bank, {e['shape']} in the env")
    if not out and [e["path"] for e in expected] != [g["path"] for g in got]:
        out.append(f"{what}: the same leaves in another order")
    return out


def _check_leaves(tree: Any, what: str) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise NotImplementedError(
                f"{what}{jax.tree_util.keystr(path)} is a typed PRNG key; banks store plain "
                "arrays (keep raw uint32 keys in the env state)"
            )


@dataclass(frozen=True, eq=False)
class SnapshotBank:
    """Stored teacher states: ``M`` snapshots, every leaf with leading axis ``[M]``.

    Leaves are jax arrays made inside an x64 scope (float64 physics state stays float64).
    Build one with :func:`collect` or :func:`bank_from_rollout`, write it with :func:`save_bank`,
    read it with :func:`load_bank`.
    """

    env_id: str
    """Environment id the snapshots come from (checked against the student's)."""
    env_kwargs: Mapping[str, Any]
    """Its ``make`` keyword arguments (JSON-ready)."""
    env_state: Any
    """Environment state pytree, leaves ``[M, ...]``."""
    obs: Any
    """Raw (unnormalised) observation of each state, ``[M, ...]``."""
    value: Any
    """``f32[M]`` the teacher's value estimate there (its own observation normalisation)."""
    elapsed: Any
    """``i32[M]`` steps the episode had run when the snapshot was taken (0: the reset state)."""
    episode: Any
    """``i32[M]`` index of the kept teacher episode (0: the best by return)."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """How it was collected (JSON-ready: run folder, teacher seed, returns, settings)."""

    def __post_init__(self):
        set_ = partial(object.__setattr__, self)
        set_("env_kwargs", dict(self.env_kwargs))
        set_("info", dict(self.info))
        _check_leaves(self.env_state, "env_state")
        set_("env_state", _to_device(self.env_state))
        set_("obs", _to_device(self.obs))
        set_("value", jnp.asarray(self.value, jnp.float32))
        set_("elapsed", jnp.asarray(self.elapsed, jnp.int32))
        set_("episode", jnp.asarray(self.episode, jnp.int32))
        sizes = {int(x.shape[0]) for x in jax.tree.leaves((self.env_state, self.obs))}
        sizes |= {int(self.value.shape[0]), int(self.elapsed.shape[0]), int(self.episode.shape[0])}
        if len(sizes) != 1:
            raise ValueError(f"bank arrays disagree on the number of snapshots: {sorted(sizes)}")
        if self.size < 1:
            raise ValueError("a bank needs at least one snapshot")

    @property
    def size(self) -> int:
        """``M``, the number of snapshots."""
        return int(self.value.shape[0])

    def __len__(self) -> int:
        return self.size

    def arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` entries (numpy; no header)."""
        out = {
            "value": np.asarray(self.value),
            "elapsed": np.asarray(self.elapsed),
            "episode": np.asarray(self.episode),
        }
        for group, tree in (("state", self.env_state), ("obs", self.obs)):
            for i, leaf in enumerate(jax.tree.leaves(tree)):
                out[f"{group}_{i:04d}"] = np.asarray(leaf)
        return out

    def structure(self) -> dict[str, list[dict[str, Any]]]:
        """Leaf tables of the state and the observation (paths, dtypes, per-snapshot shapes)."""
        return {"state": _leaf_table(self.env_state), "obs": _leaf_table(self.obs)}

    @cached_property
    def content_hash(self) -> str:
        """``sha256:<hex>`` over the env id and kwargs, the leaf paths and every array's name,
        dtype, shape and bytes (not over ``info``)."""
        return _content_hash(self.env_id, self.env_kwargs, self.structure(), self.arrays())

    def header(self) -> dict[str, Any]:
        """The JSON header written next to the arrays."""
        return {
            "format": BANK_FORMAT,
            "version": BANK_VERSION,
            "env": self.env_id,
            "env_kwargs": self.env_kwargs,
            "num_snapshots": self.size,
            "structure": self.structure(),
            "treedef": {
                "state": str(jax.tree.structure(self.env_state)),
                "obs": str(jax.tree.structure(self.obs)),
            },
            "content_hash": self.content_hash,
            "info": self.info,
        }


def _content_hash(
    env_id: str, env_kwargs: Mapping[str, Any], structure: Mapping, arrays: Mapping
) -> str:
    h = hashlib.sha256()
    head = {"env": env_id, "env_kwargs": dict(env_kwargs), "structure": structure}
    h.update(json.dumps(head, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def save_bank(bank: SnapshotBank, path: str | os.PathLike) -> Path:
    """Write ``bank`` to exactly ``path`` (no suffix added), atomically: a ``.npz`` (zip of
    ``.npy`` arrays, no pickles) with a ``header`` entry holding UTF-8 JSON."""
    path = Path(path)
    arrays = bank.arrays()
    header = json.dumps(bank.header(), indent=1).encode()
    arrays["header"] = np.frombuffer(header, np.uint8)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)
    return path


def expected_structure(env: Any, params: Any = None) -> tuple[Any, Any]:
    """Abstract ``(obs, env_state)`` of one fresh ``reset_env`` of ``env`` (no compute)."""
    params = env.default_params if params is None else params
    return jax.eval_shape(env.reset_env, jax.random.key(0), params)


def check_structure(bank: SnapshotBank | Mapping, env: Any, params: Any = None) -> None:
    """Raise :class:`BankError` naming every leaf whose path, dtype or shape differs between
    ``bank`` (a bank or a header's ``structure``) and ``env``'s state and observation."""
    got = bank.structure() if isinstance(bank, SnapshotBank) else bank
    obs, state = expected_structure(env, params)
    diffs = _structure_diff("state", _leaf_table(state, 0), got["state"])
    diffs += _structure_diff("obs", _leaf_table(obs, 0), got["obs"])
    if diffs:
        raise BankError(
            "the snapshot bank does not fit this environment's state structure:\n  "
            + "\n  ".join(diffs)
        )


def load_bank(
    path: str | os.PathLike,
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    env: Any = None,
) -> SnapshotBank:
    """Read a bank written by :func:`save_bank` (``np.load(allow_pickle=False)``; the arrays are
    made jax arrays inside an x64 scope, so float64 state comes back float64).

    Args:
        path: the bank file.
        env_id: the student's environment id; a bank from another id is refused.
        env_kwargs: the student's ``make`` kwargs; when given, a bank collected with other
            kwargs is refused (None: not checked).
        env: the environment object whose state structure the bank must have (default: ``make``
            of the bank's id and kwargs).

    Raises:
        FileNotFoundError: no file at ``path``.
        BankError: not a bank file, a pickled object array, content that does not match its
            hash, another env id or kwargs, or another state structure (named leaf by leaf).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no snapshot bank at {path}")
    if not zipfile.is_zipfile(path):  # np.load would take anything else for a pickle
        raise BankError(f"{path} is not a snapshot bank (.npz) file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle: refused
        raise BankError(
            f"{path} holds pickled (object) arrays; a snapshot bank never does, refusing to "
            f"load it ({e})"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise BankError(f"{path} is not a snapshot bank (.npz) file ({e})") from None
    if not isinstance(arrays, dict) or "header" not in arrays:
        raise BankError(f"{path} is not a snapshot bank: no header entry")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BankError(f"{path}: the header is not JSON ({e})") from None
    if header.get("format") != BANK_FORMAT:
        raise BankError(f"{path} is not a snapshot bank (format {header.get('format')!r})")
    if header.get("version") != BANK_VERSION:
        raise BankError(f"{path}: bank version {header.get('version')}, expected {BANK_VERSION}")
    if env_id is not None and header["env"] != env_id:
        raise BankError(
            f"{path} was collected on {header['env']} but the student's environment is {env_id}"
        )
    if env_kwargs is not None and dict(env_kwargs) != dict(header["env_kwargs"]):
        keys = sorted(set(env_kwargs) | set(header["env_kwargs"]))
        differ = [
            f"{k}: bank {header['env_kwargs'].get(k, '<unset>')!r}, "
            f"student {dict(env_kwargs).get(k, '<unset>')!r}"
            for k in keys
            if dict(env_kwargs).get(k, "<unset>") != header["env_kwargs"].get(k, "<unset>")
        ]
        raise BankError(
            f"{path} was collected with other env kwargs on {header['env']}: " + "; ".join(differ)
        )
    structure = header["structure"]
    names = {"value", "elapsed", "episode"}
    names |= {f"state_{i:04d}" for i in range(len(structure["state"]))}
    names |= {f"obs_{i:04d}" for i in range(len(structure["obs"]))}
    if set(arrays) != names:
        raise BankError(
            f"{path}: entries {sorted(set(arrays) ^ names)} do not match the header's structure"
        )
    digest = _content_hash(header["env"], header["env_kwargs"], structure, arrays)
    if digest != header["content_hash"]:
        raise BankError(
            f"{path}: content hash {digest} does not match the header's "
            f"{header['content_hash']} (corrupted or edited)"
        )
    size = int(arrays["value"].shape[0])
    recorded = header.get("num_snapshots")
    if recorded is not None and recorded != size:
        raise BankError(f"{path}: the header says {recorded} snapshots, the arrays hold {size}")
    for name in ("elapsed", "episode"):
        if arrays[name].shape[:1] != (size,):
            raise BankError(f"{path}: {name} holds {arrays[name].shape[:1]} entries, not {size}")
    for group in ("state", "obs"):
        for i, leaf in enumerate(structure[group]):
            a = arrays[f"{group}_{i:04d}"]
            if a.shape[:1] != (size,):
                raise BankError(
                    f"{path}: {group}{leaf['path']} holds {a.shape[0]} snapshots, not {size}"
                )
            if a.dtype.name != leaf["dtype"] or list(a.shape[1:]) != leaf["shape"]:
                raise BankError(f"{path}: {group}{leaf['path']} disagrees with the header")
    if env is None:
        from accelrl.envs import make

        env, _ = make(header["env"], **header["env_kwargs"])
    check_structure(structure, env)
    obs_abs, state_abs = expected_structure(env)
    state = jax.tree.unflatten(
        jax.tree.structure(state_abs),
        [arrays[f"state_{i:04d}"] for i in range(len(structure["state"]))],
    )
    obs = jax.tree.unflatten(
        jax.tree.structure(obs_abs),
        [arrays[f"obs_{i:04d}"] for i in range(len(structure["obs"]))],
    )
    bank = SnapshotBank(
        env_id=header["env"],
        env_kwargs=header["env_kwargs"],
        env_state=state,
        obs=obs,
        value=arrays["value"],
        elapsed=arrays["elapsed"],
        episode=arrays["episode"],
        info=header.get("info", {}),
    )
    if bank.content_hash != header["content_hash"]:  # the rebuilt tree must hash the same
        raise BankError(f"{path}: the rebuilt bank does not reproduce the header's hash")
    return bank


# -- collection ---------------------------------------------------------------------------------


def bank_from_rollout(
    rollout: Any,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    episodes: int = PAPER_EPISODES,
    every: int = PAPER_EVERY,
    info: Mapping[str, Any] | None = None,
) -> SnapshotBank:
    """Keep the best ``episodes`` whole episodes of a rollout and snapshot them every ``every``
    steps (the reset state included).

    Args:
        rollout: an :class:`accelrl.agents.evaluation.Rollout` (leading ``[T, N]``) of ``N``
            copies started fresh at step 0; each copy's *first* episode is a candidate.
        env_id, env_kwargs: the environment it ran (recorded and checked on load).
        episodes: how many candidates to keep, best return first. Episodes that ended within
            ``T`` steps rank before ones cut off by the rollout's end (kept by their partial
            return when there are not enough complete ones).
        every: snapshot period in steps.
        info: extra JSON-ready collection record.
    """
    if episodes < 1 or every < 1:
        raise ValueError(f"episodes and every must be >= 1, got {episodes} and {every}")
    r = jax.device_get(rollout)
    done = np.asarray(r.terminated, bool) | np.asarray(r.truncated, bool)
    horizon, n = done.shape
    if n < episodes:
        raise ValueError(f"the rollout has {n} candidate episodes, fewer than episodes={episodes}")
    reward = np.asarray(r.reward, np.float64)
    lengths, returns, complete = [], [], []
    for c in range(n):
        ends = np.flatnonzero(done[:, c])
        length = int(ends[0]) + 1 if len(ends) else horizon
        lengths.append(length)
        returns.append(float(reward[:length, c].sum()))
        complete.append(bool(len(ends)))
    order = sorted(range(n), key=lambda c: (not complete[c], -returns[c], c))[:episodes]
    t_idx = np.concatenate([np.arange(0, lengths[c], every) for c in order])
    n_idx = np.concatenate([np.full(len(range(0, lengths[c], every)), c) for c in order])
    ep = np.concatenate([np.full(len(range(0, lengths[c], every)), e) for e, c in enumerate(order)])
    take = lambda x: np.asarray(x)[t_idx, n_idx]  # noqa: E731
    record = {
        "episodes": int(episodes),
        "every": int(every),
        "candidates": int(n),
        "rollout_steps": int(horizon),
        "episode_returns": [returns[c] for c in order],
        "episode_lengths": [lengths[c] for c in order],
        "episode_complete": [complete[c] for c in order],
        "episode_candidates": [int(c) for c in order],
        "candidate_returns": returns,
        **dict(info or {}),
    }
    return SnapshotBank(
        env_id=env_id,
        env_kwargs=dict(env_kwargs or {}),
        env_state=jax.tree.map(take, r.env_state),
        obs=jax.tree.map(take, r.obs),
        value=take(r.value).astype(np.float32),
        elapsed=t_idx.astype(np.int32),
        episode=ep.astype(np.int32),
        info=record,
    )


def collect(
    agent: Any,
    state: Any,
    key: jax.Array,
    *,
    episodes: int = PAPER_EPISODES,
    every: int = PAPER_EVERY,
    candidates: int | None = None,
    num_steps: int | None = None,
    deterministic: bool = False,
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
) -> SnapshotBank:
    """Roll a teacher (one seed's train ``state``) and build a bank from its best episodes.

    Args:
        agent: an :class:`accelrl.agents.Agent`; its ``rollout`` gives raw observations and
            values from the teacher's own observation normalisation.
        state: one seed's train state (select it from a seed-batched one with
            ``jax.tree.map(lambda x: x[i], state)``).
        key: rollout key.
        episodes, every: see :func:`bank_from_rollout`.
        candidates: parallel episodes rolled (default ``episodes``: the paper collects 10 and
            keeps the top 10); the best ``episodes`` are kept.
        num_steps: rollout length (default: the env's ``max_steps_in_episode``, so every
            candidate finishes its first episode).
        deterministic: act with the policy's mode (the reference does for TD3; it samples for
            SAC and PPO).
        env_id, env_kwargs: recorded in the bank (default: the env's name, no kwargs).
    """
    from accelrl.agents.build import env_name
    from accelrl.agents.evaluation import max_episode_steps

    candidates = episodes if candidates is None else int(candidates)
    num_steps = max_episode_steps(agent.eval_params) if num_steps is None else int(num_steps)
    rollout = agent.rollout(state, key, candidates, num_steps, bool(deterministic))
    record = {"deterministic": bool(deterministic), **dict(info or {})}
    return bank_from_rollout(
        rollout,
        env_id or env_name(agent.env),
        env_kwargs,
        episodes=episodes,
        every=every,
        info=record,
    )


def teacher_seed(run_dir: str | os.PathLike, agent: Any = None, state: Any = None) -> int:
    """The run's best seed by evaluation return: from ``eval.json`` (per-seed ``returns``), or,
    when the run has none, by evaluating ``state`` (seed-batched) now."""
    from accelrl.agents.build import read_spec

    seeds = list(read_spec(run_dir).seeds)
    path = Path(run_dir) / "eval.json"
    if path.is_file():
        ev = json.loads(path.read_text())
        returns, ev_seeds = ev.get("returns"), [int(s) for s in ev.get("seeds", seeds)]
    elif agent is not None and state is not None:
        from accelrl.agents.evaluation import evaluate_seeds

        ev_seeds = seeds
        returns = evaluate_seeds(agent, state, seeds, agent.config.eval_episodes)["returns"]
    else:
        raise FileNotFoundError(f"{run_dir} has no eval.json; pass the agent and state")
    if not returns or len(returns) != len(ev_seeds):
        raise ValueError(f"{path} has no per-seed returns")
    best = max(range(len(ev_seeds)), key=lambda i: (returns[i], -i))
    return ev_seeds[best]


def collect_from_run(
    run_dir: str | os.PathLike,
    *,
    seed: int = 0,
    teacher: int | None = None,
    episodes: int = PAPER_EPISODES,
    every: int = PAPER_EVERY,
    candidates: int | None = None,
    num_steps: int | None = None,
    deterministic: bool = False,
) -> SnapshotBank:
    """:func:`collect` from a trained run folder (``accelrl-train`` output).

    Args:
        run_dir: the teacher's run folder (``config.json`` and a checkpoint).
        seed: the rollout key is ``jax.random.key(seed)``.
        teacher: the run's seed to use as teacher (default: :func:`teacher_seed`, the best by
            evaluation return).
        episodes, every, candidates, num_steps, deterministic: see :func:`collect`.
    """
    from accelrl.agents import load_run, read_spec

    spec = read_spec(run_dir)
    agent, state, _, _ = load_run(run_dir)
    if state is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to collect from")
    seeds = list(spec.seeds)
    teacher = teacher_seed(run_dir, agent, state) if teacher is None else int(teacher)
    if teacher not in seeds:
        raise ValueError(f"teacher seed {teacher} is not one of the run's seeds {seeds}")
    one = jax.tree.map(lambda x: x[seeds.index(teacher)], state)
    info = {
        "run": str(Path(run_dir).resolve()),
        "agent": spec.agent,
        "teacher_seed": teacher,
        "seed": int(seed),
        "teacher_env_steps": int(np.asarray(one.env_steps)),
    }
    return collect(
        agent,
        one,
        jax.random.key(seed),
        episodes=episodes,
        every=every,
        candidates=candidates,
        num_steps=num_steps,
        deterministic=deterministic,
        env_id=spec.env,
        env_kwargs=dict(spec.env_kwargs),
        info=info,
    )


# -- status classification ------------------------------------------------------------------------


def _plus_plus(key: jax.Array, x: jax.Array, w: jax.Array, n: jax.Array, k: jax.Array, k_max: int):
    """k-means++ seeding of ``k`` of ``k_max`` centres (the rest stay at +inf) over the points
    with weight ``w`` (1 real, 0 padding; the first ``n`` are real): the first centre uniformly,
    each next one with probability proportional to the squared distance to the nearest centre so
    far (uniform over real points when all are 0).

    One candidate per centre, from a key per centre: not the greedy rule of
    :func:`accelrl.curricula.kmeans.plus_plus` that the mixtures use, because switching changes
    the clusters of existing banks (on 43 of 205 random test inputs, better or worse), so
    snapshot runs would not repeat; the Lloyd iterations are the shared ones."""
    keys = jax.random.split(key, k_max)
    centers = jnp.full(k_max, jnp.inf).at[0].set(x[jax.random.randint(keys[0], (), 0, n)])

    def pick(i, centers):
        chosen = jnp.arange(k_max)[None, :] < i
        d2 = w * jnp.where(chosen, (x[:, None] - centers[None, :]) ** 2, jnp.inf).min(1)
        logits = jnp.log(jnp.where(d2.sum() > 0, d2, w))
        return centers.at[i].set(x[jax.random.categorical(keys[i], logits)])

    return jax.lax.fori_loop(1, k, pick, centers)


@partial(jax.jit, static_argnums=(3, 4, 5))
def _kmeans_padded(x, n, k, k_max, iters, n_init, seed):
    w = (jnp.arange(x.shape[0]) < n).astype(jnp.float32)
    valid = w > 0
    active = jnp.arange(k_max) < k
    points = x[:, None]  # [N, 1]
    ordered = jnp.sort(jnp.where(valid, x, jnp.inf))
    q = jnp.minimum(((jnp.arange(k_max) + 0.5) / k * n).astype(jnp.int32), x.shape[0] - 1)
    quantiles = jnp.where(active, ordered[q], jnp.inf)
    keys = jax.random.split(jax.random.key(seed), n_init)
    seeded = jax.vmap(lambda key: _plus_plus(key, x, w, n, k, k_max))(keys)
    inits = jnp.concatenate([quantiles[None], seeded])[..., None]  # [n_init + 1, k_max, 1]

    def run(c):
        c = kmeans.lloyd(points, valid, c, active, iters)
        return c[:, 0], jnp.sum(w * (x - c[kmeans.assign(points, c, active), 0]) ** 2)

    runs, inertia = jax.vmap(run)(inits)
    centers = runs[jnp.argmin(inertia)]
    labels = kmeans.assign(points, centers[:, None], active)
    counts = ((labels[:, None] == jnp.arange(k_max)[None, :]) * w[:, None]).sum(0)
    rank = jnp.argsort(jnp.where(counts > 0, centers, jnp.inf), stable=True)
    relabel = jnp.argsort(rank)  # old label -> rank
    return centers[rank], relabel[labels].astype(jnp.int32), counts[rank].astype(jnp.int32)


def kmeans_1d(
    values: Any, k: int, iters: int = 100, n_init: int = 10, seed: int = 0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """K-means on ``N`` scalars (``1 <= k <= N``), in JAX, deterministic for a given ``seed``.

    Lloyd's iterations (:func:`accelrl.curricula.kmeans.lloyd`, to a fixed point or ``iters``)
    from ``n_init`` k-means++ seedings (keys from ``seed``; the reference uses scikit-learn's
    k-means++ with ``random_state=0``) plus one from the ``(i + 0.5) / k`` quantiles of the
    values; the run with the lowest within-cluster sum of squares wins. A
    centre that loses all its points keeps its place and ends empty (the caller drops it).
    ``N`` is padded to a power of two >= 256 (weight 0) and ``k`` to >= 8 centres (the extra
    ones at +inf, never nearest), so banks of similar size and any K <= 8 share one compile.

    Returns:
        ``(centers f32[k], labels i32[N], counts i32[k])``: clusters ranked by centre (label 0
        the lowest value), empty ones last with count 0.
    """
    x = np.asarray(values, np.float32).reshape(-1)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    size = max(256, 1 << (n - 1).bit_length())
    k_max = max(8, 1 << (int(k) - 1).bit_length())
    padded = np.concatenate([x, np.full(size - n, x[0], np.float32)])
    centers, labels, counts = _kmeans_padded(
        jnp.asarray(padded), n, int(k), k_max, int(iters), int(n_init), seed
    )
    return centers[:k], labels[:n], counts[:k]


# -- the reset strategy -------------------------------------------------------------------------


@struct.dataclass
class SnapshotState:
    """State of :class:`SnapshotStarts` (inside the batched env state)."""

    env_steps: jax.Array
    """``i32[]`` environment steps so far, summed over copies (saturates at the phase's end)."""
    episodes: jax.Array
    """``i32[]`` episodes started (the initial reset included)."""
    snapshot_episodes: jax.Array
    """``i32[]`` of those, started from a snapshot."""
    index: jax.Array
    """``i32[B]`` the snapshot each copy's current episode started from (-1: a normal reset)."""
    probability: jax.Array
    """``f32[]`` the snapshot-start probability of the phase (a data setting: members of one
    program may differ in it, PBT copies and perturbs it)."""


def paper_settings(agent: str) -> dict[str, Any]:
    """The reference's defaults for a student ``agent`` (K = 4 for SAC, 6 otherwise)."""
    k = PAPER_NUM_CLUSTERS_SAC if agent.lower() == "sac" else PAPER_NUM_CLUSTERS
    return {
        "num_clusters": k,
        "horizon": PAPER_HORIZON,
        "snapshot_steps": PAPER_SNAPSHOT_STEPS,
        "schedule": "constant",
        "probability": 1.0,
    }


class SnapshotStarts(ResetStrategy):
    """Start episodes from a :class:`SnapshotBank` (S3RL), then from the environment's resets.

    Args:
        bank: the snapshots.
        num_clusters: K of the status classification (K-means on the teacher values,
            ``min(K, M)``, empty clusters dropped); None or 1: one cluster (uniform over all
            snapshots, the "no classification" ablation).
        horizon: T, steps an episode started from a snapshot runs before it is truncated; the
            copy's step-limit params (:data:`STEP_LIMIT_FIELDS`) are raised to at least
            elapsed + T so it may run past the environment's own limit. None: no truncation of
            its own (the "no STT" ablation; the env's limit still counts the elapsed steps).
        snapshot_steps: N, length of the snapshot phase in environment steps (summed over
            copies, counted every step).
        schedule: ``"constant"``: a fresh start is a snapshot start with ``probability`` while
            fewer than N steps have run, then never; ``"linear"``: with ``probability * (1 -
            steps / N)``, decaying to 0 at N.
        probability: the snapshot-start probability of the phase (1: every start, the paper).
        limit_fields: params fields raised for snapshot starts.
        kmeans_iters: Lloyd iterations.

    State: :class:`SnapshotState`. Metrics: ``snapshot_fraction`` (fraction of all episodes so
    far that started from a snapshot) and ``snapshot_probability`` (the current probability).
    """

    name = "snapshots"

    def __init__(
        self,
        bank: SnapshotBank,
        *,
        num_clusters: int | None = PAPER_NUM_CLUSTERS,
        horizon: int | None = PAPER_HORIZON,
        snapshot_steps: int = PAPER_SNAPSHOT_STEPS,
        schedule: str = "constant",
        probability: float = 1.0,
        limit_fields: Sequence[str] = STEP_LIMIT_FIELDS,
        kmeans_iters: int = 100,
    ):
        if not isinstance(bank, SnapshotBank):
            raise TypeError(f"bank must be a SnapshotBank, got {type(bank).__name__}")
        if num_clusters is not None and int(num_clusters) < 1:
            raise ValueError(f"num_clusters must be >= 1 or None, got {num_clusters}")
        if horizon is not None and int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1 or None, got {horizon}")
        if not 0 <= int(snapshot_steps) < 2**31 - 2**24:
            raise ValueError(f"snapshot_steps must be in [0, 2**31 - 2**24), got {snapshot_steps}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if not 0.0 <= float(probability) <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        self.bank = bank
        self.num_clusters = None if num_clusters is None else int(num_clusters)
        self.horizon = None if horizon is None else int(horizon)
        self.snapshot_steps = int(snapshot_steps)
        self.schedule = schedule
        self.probability = float(probability)
        self.limit_fields = tuple(limit_fields)
        self.kmeans_iters = int(kmeans_iters)
        # STATUS CLASSIFICATION (once, in JAX): sampling tables as numpy constants.
        m = bank.size
        k = min(self.num_clusters or 1, m)
        if k > 1:
            centers, labels, counts = kmeans_1d(bank.value, k, self.kmeans_iters)
        else:
            centers = jnp.mean(bank.value)[None]
            labels, counts = jnp.zeros(m, jnp.int32), jnp.array([m], jnp.int32)
        counts = np.asarray(counts)
        self.labels = np.asarray(labels)
        """``i32[M]`` cluster of each snapshot (ranked by teacher value)."""
        self.cluster_sizes = counts[counts > 0]
        """``i32[C]`` snapshots per non-empty cluster."""
        self.cluster_centers = np.asarray(centers)[counts > 0]
        """``f32[C]`` mean teacher value of each non-empty cluster."""
        self._members = np.argsort(self.labels, stable=True).astype(np.int32)
        self._offsets = (np.cumsum(counts) - counts)[counts > 0].astype(np.int32)

    @classmethod
    def for_agent(cls, bank: SnapshotBank, agent: str, **overrides: Any) -> SnapshotStarts:
        """The paper's settings for a student ``agent`` (:func:`paper_settings`) with
        ``overrides`` on top."""
        return cls(bank, **{**paper_settings(agent), **overrides})

    # -- identity: a fixed bank is a compile-time constant --------------------------------------

    def _identity(self) -> tuple:
        return (
            type(self),
            self.bank.content_hash,
            self.num_clusters,
            self.horizon,
            self.snapshot_steps,
            self.schedule,
            self.probability,
            self.limit_fields,
            self.kmeans_iters,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SnapshotStarts) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    # -- schedule and sampling ------------------------------------------------------------------

    data_settings = ("probability",)
    data_ranges = {"probability": (0.0, 1.0)}

    def probability_at(self, env_steps: jax.Array, probability: Any = None) -> jax.Array:
        """``f32[]`` probability that a fresh start is a snapshot start after ``env_steps``
        (``probability``: the phase's, default the constructor's; the state holds a run's)."""
        steps = jnp.asarray(env_steps, jnp.float32)
        prob = self.probability if probability is None else probability
        n = float(max(self.snapshot_steps, 1))
        if self.snapshot_steps == 0:
            p = 0.0
        elif self.schedule == "linear":
            p = prob * jnp.clip(1.0 - steps / n, 0.0, 1.0)
        else:
            p = jnp.where(steps < self.snapshot_steps, prob, 0.0)
        return jnp.asarray(p, jnp.float32)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``i32[n]`` snapshot indices: a non-empty cluster uniformly, then a member uniformly."""
        k_cluster, k_member = jax.random.split(key)
        c = jax.random.randint(k_cluster, (n,), 0, len(self.cluster_sizes))
        size = jnp.asarray(self.cluster_sizes, jnp.int32)[c]
        u = jax.random.uniform(k_member, (n,))
        j = jnp.minimum((u * size).astype(jnp.int32), size - 1)
        return jnp.asarray(self._members)[jnp.asarray(self._offsets)[c] + j]

    # -- the strategy ---------------------------------------------------------------------------

    def init(self, key: jax.Array, env: Any, params: Any, num_envs: int) -> SnapshotState:
        check_structure(self.bank, env)  # at trace time: a wrong bank fails before running
        zero = jnp.int32(0)
        return SnapshotState(
            zero, zero, zero, jnp.full(num_envs, -1, jnp.int32), jnp.float32(self.probability)
        )

    def starts(
        self, key: jax.Array, state: SnapshotState, env: Any, params: Any, mask: jax.Array
    ) -> tuple[Starts, SnapshotState]:
        n = mask.shape[0]
        k_reset, k_use, k_pick = jax.random.split(key, 3)
        use = mask & (
            jax.random.uniform(k_use, (n,))
            < self.probability_at(state.env_steps, state.probability)
        )
        j = self.sample(k_pick, n)
        obs, env_state = reset_copies(env, k_reset, params)
        with jax.enable_x64(True):  # float64 leaves (ThreeBody) are gathered and kept as is
            snap_state = jax.tree.map(lambda x: x[j], self.bank.env_state)
            snap_obs = jax.tree.map(lambda x: x[j], self.bank.obs)
            env_state = select_copies(use, snap_state, env_state)
            obs = select_copies(use, snap_obs, obs)
        limit = jnp.full(n, NO_LIMIT, jnp.int32)
        if self.horizon is not None:
            limit = jnp.where(use, self.horizon, limit)
            elapsed = jnp.asarray(self.bank.elapsed)[j] + self.horizon
            params = self._raise_limits(params, use, elapsed)
        state = state.replace(
            episodes=state.episodes + mask.sum(dtype=jnp.int32),
            snapshot_episodes=state.snapshot_episodes + use.sum(dtype=jnp.int32),
            index=jnp.where(mask, jnp.where(use, j, -1), state.index),
        )
        return Starts(obs, env_state, params, limit), state

    def _raise_limits(self, params: Any, use: jax.Array, limit: jax.Array) -> Any:
        fields = getattr(params, "__dataclass_fields__", {})
        new = {}
        for name in self.limit_fields:
            if name in fields:
                old = jnp.asarray(getattr(params, name))
                raised = jnp.maximum(old, limit.astype(old.dtype))
                new[name] = jnp.where(use, raised, old)
        return params.replace(**new) if new else params

    def observe(self, state: SnapshotState, record: StepRecord) -> SnapshotState:
        b = record.done.shape[0]
        # saturate: only "before or after the phase" (and the linear fraction) matters
        steps = jnp.minimum(state.env_steps + b, max(self.snapshot_steps, 1))
        return state.replace(env_steps=steps)

    def metrics(self, state: SnapshotState) -> dict[str, jax.Array]:
        frac = state.snapshot_episodes / jnp.maximum(state.episodes, 1)
        return {
            "snapshot_fraction": frac.astype(jnp.float32),
            "snapshot_probability": self.probability_at(state.env_steps, state.probability),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bank_hash": self.bank.content_hash,
            "env": self.bank.env_id,
            "num_snapshots": self.bank.size,
            "num_clusters": self.num_clusters,
            "clusters_used": int(len(self.cluster_sizes)),
            "horizon": self.horizon,
            "snapshot_steps": self.snapshot_steps,
            "schedule": self.schedule,
            "probability": self.probability,
            "limit_fields": list(self.limit_fields),
            "kmeans_iters": self.kmeans_iters,
        }


# -- snapshot starts as a registered reset strategy ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class SnapshotSettings:
    """Settings of the ``"snapshot"`` reset strategy (S3RL snapshot starts from a bank)."""

    bank: str
    """The bank file (``accelrl-snapshot``); recorded as an absolute path."""
    bank_hash: str | None = None
    """The bank's content hash; given, a bank whose content differs is refused (filled in
    when a run starts, so a resumed run checks its bank)."""
    num_clusters: int | None = None
    """K, status clusters of the teacher values (None: the paper's, 4 for SAC, 6 otherwise)."""
    horizon: int | None = PAPER_HORIZON
    """T, steps an episode started from a snapshot runs before it is truncated (None: none)."""
    snapshot_steps: int = PAPER_SNAPSHOT_STEPS
    """N, environment steps of the snapshot phase (then normal resets)."""
    schedule: Literal["constant", "linear"] = "constant"
    """Snapshot-start probability over the phase: constant, or decaying linearly to 0."""
    probability: float = 1.0
    """The snapshot-start probability of the phase."""
    limit_fields: tuple[str, ...] = STEP_LIMIT_FIELDS
    """Params fields raised for snapshot starts."""
    kmeans_iters: int = 100
    """Lloyd iterations of the status classification."""


def _build_snapshot_strategy(settings: SnapshotSettings, context: Any) -> Any:
    from accelrl.envs import make
    from accelrl.envs.strategies import StrategyBuild

    path = Path(settings.bank).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"no snapshot bank at {path} (write one with accelrl-snapshot)")
    env, params = make(context.env_id, **dict(context.env_kwargs))
    bank = load_bank(path, context.env_id, dict(context.env_kwargs), env=env)
    if settings.bank_hash is not None and bank.content_hash != settings.bank_hash:
        raise ValueError(
            f"snapshot bank {path} changed since the run started (hash {bank.content_hash[:12]}, "
            f"recorded {settings.bank_hash[:12]})"
        )
    num_clusters = settings.num_clusters or paper_settings(context.agent)["num_clusters"]
    strategy = SnapshotStarts(
        bank,
        num_clusters=num_clusters,
        horizon=settings.horizon,
        snapshot_steps=settings.snapshot_steps,
        schedule=settings.schedule,
        probability=settings.probability,
        limit_fields=settings.limit_fields,
        kmeans_iters=settings.kmeans_iters,
    )
    resolved = dataclasses.replace(
        settings, bank=str(path), bank_hash=bank.content_hash, num_clusters=num_clusters
    )
    return StrategyBuild(env, params, strategy, resolved)


def _register() -> None:
    from accelrl.envs.strategies import register_strategy

    register_strategy(
        "snapshot",
        SnapshotSettings,
        _build_snapshot_strategy,
        description="S3RL snapshot starts from a bank of a teacher's states",
        data_settings=SnapshotStarts.data_settings,
    )


_register()


__all__ = [
    "SnapshotSettings",
    "BANK_FORMAT",
    "BANK_VERSION",
    "PAPER_EPISODES",
    "PAPER_EVERY",
    "PAPER_HORIZON",
    "PAPER_NUM_CLUSTERS",
    "PAPER_NUM_CLUSTERS_SAC",
    "PAPER_SNAPSHOT_STEPS",
    "STEP_LIMIT_FIELDS",
    "BankError",
    "SnapshotBank",
    "SnapshotStarts",
    "SnapshotState",
    "bank_from_rollout",
    "check_structure",
    "collect",
    "collect_from_run",
    "expected_structure",
    "kmeans_1d",
    "load_bank",
    "paper_settings",
    "save_bank",
    "teacher_seed",
]
