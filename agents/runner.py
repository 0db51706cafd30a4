"""The host loop: all seeds in one vmapped program, run segment by segment.

Between segments (never inside the compiled program) the runner updates a tqdm progress bar
(steps/s and current return), checks the losses for NaNs, writes per-seed metrics and saves
checkpoints. With several local devices the seed axis is sharded across them.

>>> runner = Runner(agent, seeds=[0, 1, 2], out_dir="runs/cartpole")
>>> result = runner.train()
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from accelrl.agents.checkpoint import latest_checkpoint, restore_checkpoint, save_checkpoint
from accelrl.agents.evaluation import training_key
from accelrl.agents.reporting import read_seed_metrics, write_seed_metrics

# Metrics that are legitimately NaN (before the first finished episode); all others are checked.
NAN_ALLOWED = ("episode_return", "episode_length")


class NaNError(RuntimeError):
    """A loss became NaN or infinite; the run stopped (the last good checkpoint is kept)."""


@dataclasses.dataclass
class RunResult:
    """What a run returns."""

    state: Any
    """Final train state, batched over seeds (leading axis ``S``)."""
    hparams: Any
    """Hparams, batched over seeds."""
    metrics: dict[str, np.ndarray]
    """Metric name -> ``f32[S, U]`` for all updates done (including before a resume)."""
    checkpoint: Path | None
    """Path of the last checkpoint written, if any."""


def batch_hparams(hparams: Any, n: int) -> Any:
    """Broadcast every leaf of ``hparams`` to a leading axis of ``n`` (float32)."""
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,)), hparams)


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


def _has_bad(metrics: dict[str, np.ndarray]) -> tuple[str, int, int] | None:
    """First ``(name, seed index, update index)`` with a non-finite checked metric."""
    for name, v in metrics.items():
        if name in NAN_ALLOWED:
            continue
        bad = ~np.isfinite(v)
        if bad.any():
            s, u = np.argwhere(bad)[0]
            return name, int(s), int(u)
    return None


@functools.lru_cache(maxsize=16)
def seed_vmapped(agent: Any) -> tuple[Callable, Callable]:
    """Seed-vmapped, jitted ``(run, init)`` of ``agent``: ``run(states, hparams, n)`` with
    leading seed axes. Cached, so runners of the same agent share compiled programs."""
    run = jax.jit(jax.vmap(agent.run, in_axes=(0, 0, None)), static_argnums=2)

    def init(keys: jax.Array, hparams: Any) -> Any:
        # Weak types (e.g. an env's ``time=0`` counter) would not survive a checkpoint round
        # trip, and a restored state would then compile a second program: make them strong.
        return _strong(jax.vmap(agent.init)(keys, hparams))

    return run, jax.jit(init)


class Runner:
    """Runs an agent for several seeds in one vmapped program, in segments.

    Args:
        agent: an object following :class:`accelrl.agents.base.Agent`.
        seeds: integer seeds; training keys are :func:`training_key(seed)`.
        hparams: unbatched hparams (default ``agent.default_hparams()``).
        out_dir: run folder for checkpoints and metrics (None: keep everything in memory).
        metadata: JSON-ready description of the run stored beside each checkpoint.
        segments: about how many segments to split the run into (progress/checkpoint points).
        checkpoint_every: save a checkpoint every this many segments (and at the end).
        progress: show a tqdm progress bar.
        on_segment: optional callback ``(runner, state, metrics_of_segment) -> None`` after each
            segment (after its checkpoint); it may change ``runner.hparams`` (data, no
            recompilation), e.g. for a schedule or a tuner.
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
        progress: bool = True,
        on_segment: Callable[[Runner, Any, dict[str, np.ndarray]], None] | None = None,
    ):
        if not seeds:
            raise ValueError("need at least one seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {list(seeds)}")
        self.agent = agent
        self.seeds = [int(s) for s in seeds]
        hp = agent.default_hparams() if hparams is None else hparams
        self.hparams = batch_hparams(hp, len(self.seeds))  # placed in train()
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.metadata = dict(metadata or {})
        self.segment = choose_segment(agent.num_updates, segments)
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.progress = progress
        self.on_segment = on_segment
        self._run, self._init = seed_vmapped(agent)
        self._sharding = self._make_sharding()

    # -- placement --------------------------------------------------------------------------

    def _make_sharding(self) -> NamedSharding | None:
        n_dev = jax.local_device_count()
        if n_dev < 2 or len(self.seeds) % n_dev:
            return None
        mesh = jax.make_mesh((n_dev,), ("seeds",), devices=jax.local_devices())
        return NamedSharding(mesh, PartitionSpec("seeds"))

    def _place(self, tree: Any) -> Any:
        """Put ``tree`` on the seed sharding (or commit it to the first device): fresh and
        restored states then look the same to ``jit`` and share one compiled program."""
        return jax.device_put(tree, self._sharding or jax.local_devices()[0])

    # -- state ------------------------------------------------------------------------------

    def keys(self) -> jax.Array:
        """Training keys ``[S, 2]``."""
        return jnp.stack([training_key(s) for s in self.seeds])

    def init_state(self) -> Any:
        """Fresh states for all seeds (batched, placed on the devices)."""
        return self._place(self._init(self.keys(), self.hparams))

    def restore(self, path: str | Path | None = None) -> tuple[Any, Any]:
        """Restore ``(state, hparams)`` from ``path`` (default: the run folder's newest)."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("restore needs a checkpoint path or an out_dir")
            path = latest_checkpoint(self.out_dir / "checkpoints")
            if path is None:
                raise FileNotFoundError(f"no checkpoint under {self.out_dir / 'checkpoints'}")
        like = jax.eval_shape(self._init, self.keys(), self.hparams)
        state, hparams = restore_checkpoint(path, like, self.hparams)
        self.hparams = self._place(hparams)
        return self._place(state), self.hparams

    def _save(self, state: Any, metrics: dict[str, np.ndarray], step: int) -> Path | None:
        if self.out_dir is None:
            return None
        write_seed_metrics(self.out_dir, self.seeds, metrics)
        meta = {**self.metadata, "seeds": self.seeds}
        return save_checkpoint(self.out_dir / "checkpoints", step, state, self.hparams, meta)

    # -- the loop ---------------------------------------------------------------------------

    def train(self, state: Any = None, metrics: dict[str, np.ndarray] | None = None) -> RunResult:
        """Run from ``state`` (default: fresh) until ``agent.num_updates`` updates are done.

        Args:
            state: batched state to continue from (e.g. :meth:`restore`).
            metrics: metrics of the updates already done (default: read from the run folder
                when continuing, truncated to the state's update step).

        Raises:
            NaNError: when a loss becomes non-finite; the last good checkpoint is kept.
        """
        from tqdm.auto import tqdm

        agent = self.agent
        state = self.init_state() if state is None else self._place(state)
        done = int(np.asarray(state.update_step).reshape(-1)[0])
        if metrics is None:
            metrics = {}
            if done and self.out_dir is not None:
                metrics = read_seed_metrics(self.out_dir, self.seeds) or {}
        metrics = {k: np.asarray(v)[:, :done] for k, v in metrics.items()}
        total = agent.num_updates
        last_ckpt = latest_checkpoint(self.out_dir / "checkpoints") if self.out_dir else None
        bar = tqdm(
            total=total * agent.steps_per_update,
            initial=done * agent.steps_per_update,
            unit="step",
            unit_scale=True,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        segment_index = 0
        t0, steps0 = time.perf_counter(), done
        try:
            while done < total:
                n = min(self.segment, total - done)
                # A callback may have replaced them: keep types and placement (one program).
                self.hparams = self._place(_strong(self.hparams))
                new_state, seg = self._run(state, self.hparams, n)
                seg = {k: np.asarray(v) for k, v in jax.device_get(seg).items()}
                bad = _has_bad(seg)
                if bad is not None:
                    name, s, u = bad
                    raise NaNError(
                        f"non-finite {name} at update {done + u + 1} (env step "
                        f"{(done + u + 1) * agent.steps_per_update}) of seed {self.seeds[s]}; "
                        f"stopped. Last good checkpoint: {last_ckpt or 'none written'}"
                    )
                state, done = new_state, done + n
                metrics = {k: np.concatenate([metrics[k], v], 1) if k in metrics else v for k, v in seg.items()}
                segment_index += 1
                if done == total or segment_index % self.checkpoint_every == 0:
                    last_ckpt = self._save(state, metrics, done) or last_ckpt
                if self.on_segment is not None:
                    self.on_segment(self, state, seg)
                # PROGRESS
                elapsed = time.perf_counter() - t0
                sps = (done - steps0) * agent.steps_per_update * len(self.seeds) / max(elapsed, 1e-9)
                ret = np.nanmean(seg["episode_return"][:, -1]) if np.isfinite(seg["episode_return"][:, -1]).any() else float("nan")
                bar.update(n * agent.steps_per_update)
                bar.set_postfix({"steps/s": f"{sps:.3g}", "return": f"{ret:.1f}"}, refresh=False)
        finally:
            bar.close()
        return RunResult(state=state, hparams=self.hparams, metrics=metrics, checkpoint=last_ckpt)


__all__ = ["NAN_ALLOWED", "NaNError", "RunResult", "Runner", "batch_hparams", "choose_segment", "seed_vmapped"]
