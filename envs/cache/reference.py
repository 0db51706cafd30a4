"""Pure-Python set-associative cache simulator: the independent reference for the JAX game.

Written from the rules in the module docstring of :mod:`accelrl.envs.cache.env`, not from its
code: plain lists and dicts, one access at a time. Policies choose the victim way of a full
set on a miss; a miss with an empty way fills the lowest empty way. Besides the rules the game
offers (:data:`POLICIES`) it runs S3-FIFO (Yang et al., SOSP 2023), which keeps queues the game
state does not have, per set: a small FIFO of ``max(1, round(0.1 W))`` lines, a main FIFO of the
rest and a ghost FIFO of as many evicted line ids as the main queue holds; a line hit again
while in the small queue moves to main when it leaves the small queue, otherwise it becomes a
ghost; a miss on a ghost goes to main directly; main evicts like CLOCK with frequencies capped
at 3.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence

POLICIES = ("belady", "lru", "lfu", "fifo", "random", "replay")
"""Victim rules of :func:`simulate` (``"replay"`` plays given victims, e.g. an agent's)."""


def next_uses(lines: Sequence[int]) -> list[float]:
    """For each access the index of the next access to the same line (``inf`` if none)."""
    seen: dict[int, int] = {}
    out = [float("inf")] * len(lines)
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] in seen:
            out[i] = seen[lines[i]]
        seen[lines[i]] = i
    return out


def simulate(
    lines: Sequence[int],
    num_sets: int,
    ways: int,
    policy: str,
    seed: int = 0,
    victims: Sequence[int] | None = None,
) -> int:
    """Hits of ``policy`` on a trace of line ids, from an empty cache.

    Args:
        lines: line id of every access.
        num_sets: sets; a line lives in set ``line % num_sets``.
        ways: lines per set.
        policy: one of :data:`POLICIES`; ties: Belady and the others evict the lowest way, LFU
            the least recently used among the least frequent.
        seed: RNG seed of ``"random"``.
        victims: the way chosen at each decision, in order (``"replay"`` only).

    Returns:
        Number of hits.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {POLICIES}")
    if policy == "replay" and victims is None:
        raise ValueError("policy 'replay' needs victims")
    lines = [int(x) for x in lines]
    nxt = next_uses(lines)
    rng = random.Random(seed)
    victims = iter(() if victims is None else victims)
    # per set: list of ways, each a dict or None
    cache: list[list[dict | None]] = [[None] * ways for _ in range(num_sets)]
    hits = 0
    for t, line in enumerate(lines):
        ways_ = cache[line % num_sets]
        found = [w for w, e in enumerate(ways_) if e is not None and e["line"] == line]
        if found:
            e = ways_[found[0]]
            hits += 1
            e["last"], e["count"], e["next"] = t, e["count"] + 1, nxt[t]
            continue
        empty = [w for w, e in enumerate(ways_) if e is None]
        if empty:
            way = empty[0]
        else:
            way = _victim(policy, ways_, rng, victims)
        ways_[way] = {"line": line, "last": t, "born": t, "count": 1, "next": nxt[t]}
    return hits


def _victim(policy: str, entries: list, rng: random.Random, victims) -> int:
    idx = range(len(entries))
    if policy == "belady":
        far = max(e["next"] for e in entries)
        return next(w for w in idx if entries[w]["next"] == far)
    if policy == "lru":
        return min(idx, key=lambda w: entries[w]["last"])
    if policy == "lfu":
        return min(idx, key=lambda w: (entries[w]["count"], entries[w]["last"]))
    if policy == "fifo":
        return min(idx, key=lambda w: entries[w]["born"])
    if policy == "random":
        return rng.randrange(len(entries))
    return int(next(victims))


def s3fifo(lines: Sequence[int], num_sets: int, ways: int) -> int:
    """Hits of S3-FIFO, run independently in every set (see the module docstring)."""
    small_cap = max(1, round(0.1 * ways))
    main_cap = ways - small_cap
    sets = [
        {"small": deque(), "main": deque(), "ghost": deque(), "freq": {}} for _ in range(num_sets)
    ]
    hits = 0
    for line in (int(x) for x in lines):
        st = sets[line % num_sets]
        freq = st["freq"]
        if line in freq:
            hits += 1
            freq[line] = min(freq[line] + 1, 3)
            continue
        while len(st["small"]) + len(st["main"]) >= ways:
            _s3_evict(st, small_cap, main_cap)
        freq[line] = 0
        if line in st["ghost"]:
            st["ghost"].remove(line)
            st["main"].append(line)
        else:
            st["small"].append(line)
    return hits


def _s3_evict(st: dict, small_cap: int, main_cap: int) -> None:
    small, main, ghost, freq = st["small"], st["main"], st["ghost"], st["freq"]
    if len(small) >= small_cap or not main:
        while small:
            line = small.popleft()
            if freq[line] > 0:
                freq[line] = 0
                main.append(line)
                if len(main) > main_cap:
                    _s3_evict_main(main, freq)
                    return
            else:
                del freq[line]
                ghost.append(line)
                if len(ghost) > main_cap:
                    ghost.popleft()
                return
    _s3_evict_main(main, freq)


def _s3_evict_main(main: deque, freq: dict) -> None:
    while main:
        line = main.popleft()
        if freq[line] > 0:
            freq[line] -= 1
            main.append(line)
        else:
            del freq[line]
            return


BASELINES: dict[str, Callable[..., int]] = {
    "s3fifo": s3fifo,
    **{p: (lambda lines, s, w, p=p, seed=0: simulate(lines, s, w, p, seed)) for p in POLICIES[:5]},
}
"""Host-side baselines by name: ``fn(lines, num_sets, ways) -> hits``."""
