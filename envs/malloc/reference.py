"""Straightforward pure-Python implementation of MallocGame's rules (one game at a time).

The benchmark baseline and the test oracle for :mod:`accelrl.envs.malloc.game`: plain lists
and loops, the same candidates, mask, rewards, placements and observation features. It keeps
all placed buffers (no sweep table), so it also checks that the sweep-line eviction is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelrl.envs.malloc.game import BUFFER_FEATURES, FEATURE_CLIP, EnvParams


def _clip(x: float) -> float:
    return min(max(x, 0.0), FEATURE_CLIP)


class ReferenceGame:
    """One game over unbatched ``EnvParams`` (converted to Python lists once).

    Args:
        params: unbatched params from :meth:`MallocGame.params_for`.
        num_candidates: K.
        num_bins: address bins of the free-memory summary.
        lookahead: following buffers described in the observation.
        max_live: slot limit (placements are masked when this many placed buffers are live
            relative to the sweep, as in the JAX game).
    """

    def __init__(
        self, params: EnvParams, num_candidates: int, num_bins: int, lookahead: int, max_live: int
    ):
        n = int(params.num_buffers)
        self.n = n
        self.size = [int(x) for x in np.asarray(params.size)[:n]]
        self.start = [int(x) for x in np.asarray(params.start)[:n]]
        self.end = [int(x) for x in np.asarray(params.end)[:n]]
        self.benefit = [float(x) for x in np.asarray(params.benefit)[:n]]
        self.order = [int(x) for x in np.asarray(params.order)[:n]]
        self.capacity = int(params.capacity)
        self.K, self.B, self.lookahead, self.max_live = (
            num_candidates,
            num_bins,
            lookahead,
            max_live,
        )
        self.horizon = max(self.end) + 1

    def reset(self) -> dict:
        self.t = 0
        self.offset = [-1] * self.n
        self.placed: list[int] = []
        self.ret = 0.0
        return self._offer()

    def _overlapping(self, i: int) -> list[int]:
        return [
            j for j in self.placed if self.start[j] <= self.end[i] and self.end[j] >= self.start[i]
        ]

    def _offer(self) -> dict:
        if self.t >= self.n:
            self.cand, self.can_place = [], False
            return self._observe([])
        i = self.order[self.t]
        # slots the JAX game would still hold (for the table-full rule only)
        sweep = min(self.start[self.order[u]] for u in range(self.t, self.n))
        live = [j for j in self.placed if self.end[j] >= sweep]
        self.can_place = len(live) < self.max_live
        ov = self._overlapping(i)
        s = self.size[i]
        cands = {0} | {self.offset[j] + self.size[j] for j in ov}
        feasible = sorted(
            c
            for c in cands
            if c + s <= self.capacity
            and all(not (c < self.offset[j] + self.size[j] and self.offset[j] < c + s) for j in ov)
        )
        self.cand = feasible[: self.K]
        return self._observe(ov)

    def _buffer(self, step: int) -> list[float]:
        if step >= self.n:
            return [0.0] * BUFFER_FEATURES
        i = self.order[step]
        cap, h = max(self.capacity, 1), self.horizon
        f = [
            1.0,
            self.size[i] / cap,
            self.start[i] / h,
            self.end[i] / h,
            (self.end[i] - self.start[i] + 1) / h,
            self.benefit[i] * self.n,
        ]
        return [_clip(x) for x in f]

    def _observe(self, ov: list[int]) -> dict:
        cap = max(self.capacity, 1)
        feats: list[float] = []
        for d in range(1 + self.lookahead):
            feats += self._buffer(self.t + d)
        cand_f, gap_f = [0.0] * self.K, [0.0] * self.K
        for k, c in enumerate(self.cand):
            above = min([self.offset[j] for j in ov if self.offset[j] >= c], default=cap)
            cand_f[k], gap_f[k] = c / cap, (above - c) / cap
        width = cap / self.B
        occ = []
        for b in range(self.B):
            lo_b, hi_b = b * width, (b + 1) * width
            tot = 0.0
            for j in ov:
                lo, hi = self.offset[j], self.offset[j] + self.size[j]
                tot += max(min(hi, hi_b) - max(lo, lo_b), 0.0)
            occ.append(min(max(tot / width, 0.0), 1.0))
        glob = [
            self.t / max(self.n, 1),
            max([self.offset[j] + self.size[j] for j in ov], default=0) / cap,
            sum(self.size[j] for j in ov) / cap,
            self.ret,
        ]
        feats += cand_f + gap_f + occ + glob
        mask = [True] + [k < len(self.cand) and self.can_place for k in range(self.K)]
        return {"observation": [_clip(x) for x in feats], "action_mask": mask}

    def step(self, action: int) -> tuple[dict, float, bool]:
        """Play ``action``; returns ``(obs, reward, terminated)``. Illegal actions spill."""
        i = self.order[self.t]
        reward = 0.0
        if 1 <= action <= len(self.cand) and self.can_place:
            self.offset[i] = self.cand[action - 1]
            self.placed.append(i)
            reward = self.benefit[i]
        self.ret += reward
        self.t += 1
        obs = self._offer()
        return obs, reward, self.t >= self.n


def reference_episode(game: ReferenceGame, actions: Any) -> dict[str, Any]:
    """Play ``actions`` (one per step, extra ones ignored); return observations, rewards, offsets."""
    obs = game.reset()
    out: dict[str, Any] = {"obs": [obs], "rewards": []}
    for a in actions:
        obs, r, done = game.step(int(a))
        out["obs"].append(obs)
        out["rewards"].append(r)
        if done:
            break
    out["offsets"] = list(game.offset)
    return out


def best_reachable(game: ReferenceGame) -> float:
    """Highest return any action sequence reaches in ``game`` (exhaustive search).

    Exponential in the number of buffers, for tiny workloads only: it measures how much the
    offering order and K restrict the reachable placements (compare with ``optimal``).
    """
    game.reset()

    def search() -> float:
        if game.t >= game.n:
            return game.ret
        saved = (game.t, list(game.offset), list(game.placed), game.ret, game.cand, game.can_place)
        legal = [0] + [a for a in range(1, len(game.cand) + 1) if game.can_place]
        best = 0.0
        for a in legal:
            game.step(a)
            best = max(best, search())
            game.t, offset, placed, game.ret, game.cand, game.can_place = saved
            game.offset, game.placed = list(offset), list(placed)
        return best

    return search()
