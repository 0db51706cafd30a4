"""Baseline mappers and the one placement checker every method is judged by.

Every solver returns ``offsets``: int64 [N] byte offsets in fast memory, ``-1`` for a buffer
left in slow memory. Buffers occupy their size rounded up to ``alignment`` and start at
multiples of ``alignment``, as in the game.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelrl.envs.malloc.workload import ORDERS, Workload


class PlacementError(ValueError):
    """Raised by :func:`validate` for an invalid placement."""


def aligned_sizes(workload: Workload, alignment: int) -> np.ndarray:
    """[N] int64 sizes rounded up to a multiple of ``alignment``."""
    if alignment < 1:
        raise ValueError(f"alignment must be >= 1, got {alignment}")
    return -(-workload.size // alignment) * alignment


def validate(workload: Workload, capacity: int, offsets: Any, alignment: int = 1) -> float:
    """Check a placement; return its benefit as a fraction of the workload's total.

    Args:
        workload: the buffers.
        capacity: fast-memory size in bytes.
        offsets: [N] int byte offsets, -1 for slow memory.
        alignment: offsets must be multiples of it; sizes count rounded up to it.

    Returns:
        ``sum(benefit[placed]) / sum(benefit)`` (0 when the total benefit is 0).

    Raises:
        PlacementError: wrong length, an offset < -1 or unaligned, a buffer beyond
            ``capacity``, or two placed buffers live at a common step with overlapping
            address ranges (the first such pair is named).
    """
    off = np.asarray(offsets)
    if off.shape != (workload.num_buffers,):
        raise PlacementError(f"offsets has shape {off.shape}, expected ({workload.num_buffers},)")
    if not np.issubdtype(off.dtype, np.integer):
        raise PlacementError(f"offsets must be integers, got dtype {off.dtype}")
    off = off.astype(np.int64)
    if np.any(off < -1):
        i = int(np.flatnonzero(off < -1)[0])
        raise PlacementError(f"buffer {i}: offset {off[i]} < -1")
    placed = off >= 0
    size = aligned_sizes(workload, alignment)
    bad = np.flatnonzero(placed & (off % alignment != 0))
    if bad.size:
        i = int(bad[0])
        raise PlacementError(f"buffer {i}: offset {off[i]} is not a multiple of {alignment}")
    over = np.flatnonzero(placed & (off + size > capacity))
    if over.size:
        i = int(over[0])
        raise PlacementError(
            f"buffer {i}: [{off[i]}, {off[i] + size[i]}) exceeds capacity {capacity}"
        )
    # pairwise overlap in time x address among placed buffers (sweep in start order)
    ids = np.flatnonzero(placed & (size > 0))
    ids = ids[np.argsort(workload.start[ids], kind="stable")]
    active: list[int] = []
    for i in ids:
        s = workload.start[i]
        active = [j for j in active if workload.end[j] >= s]
        for j in active:
            if off[i] < off[j] + size[j] and off[j] < off[i] + size[i]:
                raise PlacementError(
                    f"buffers {j} and {i} overlap: live [{workload.start[j]}, {workload.end[j]}]"
                    f" and [{workload.start[i]}, {workload.end[i]}], addresses "
                    f"[{off[j]}, {off[j] + size[j]}) and [{off[i]}, {off[i] + size[i]})"
                )
        active.append(int(i))
    total = workload.total_benefit
    return float(workload.benefit[placed].sum() / total) if total > 0 else 0.0


def placed_bytes_fraction(workload: Workload, offsets: Any) -> float:
    """Fraction of the workload's bytes that ``offsets`` puts in fast memory."""
    off = np.asarray(offsets)
    return float(workload.size[off >= 0].sum() / max(workload.size.sum(), 1))


def _fit(
    chunks: list[tuple[int, int]], size: int, capacity: int, alignment: int, best: bool
) -> int:
    """Offset for ``size`` bytes among ``chunks`` ((offset, end) of time-overlapping placed
    buffers): lowest gap (first fit) or smallest gap that fits (best fit); -1 if none."""
    chunks = sorted(chunks)
    choice, choice_gap = -1, None
    cur = 0
    for lo, hi in chunks + [(capacity, capacity)]:
        if lo >= cur:
            gap = lo - cur
            if gap >= size and cur + size <= capacity:
                if not best:
                    return cur
                if choice_gap is None or gap < choice_gap:
                    choice, choice_gap = cur, gap
        cur = max(cur, -(-hi // alignment) * alignment)
    return choice


RULES = ("lowest", "best")
"""Greedy offset rules: ``"lowest"`` offset that fits (first fit; the game's action 1) and
``"best"`` fit (the smallest gap that fits, lowest on ties; XLA's heap packer)."""


def _greedy(
    workload: Workload, capacity: int, alignment: int, order: np.ndarray, best: bool
) -> np.ndarray:
    size = aligned_sizes(workload, alignment)
    offsets = np.full(workload.num_buffers, -1, np.int64)
    placed = np.zeros(workload.num_buffers, bool)
    for i in order:
        i = int(i)
        near = np.flatnonzero(
            placed & (workload.start <= workload.end[i]) & (workload.end >= workload.start[i])
        )
        chunks = list(
            zip(offsets[near].tolist(), (offsets[near] + size[near]).tolist(), strict=True)
        )
        off = _fit(chunks, int(size[i]), capacity, alignment, best)
        if off >= 0:
            offsets[i] = off
            placed[i] = True
    return offsets


def greedy(
    workload: Workload, capacity: int, alignment: int = 1, order: str = "xla", rule: str = "lowest"
) -> np.ndarray:
    """One pass over the buffers in a named order, each placed by an offset rule or spilled.

    Args:
        workload: the buffers.
        capacity: fast-memory bytes.
        alignment: bytes per address unit.
        order: one of :data:`~accelrl.envs.malloc.workload.ORDERS` (keys in ``Workload.order``).
        rule: ``"lowest"`` (the lowest offset where the buffer fits: first fit) or ``"best"``
            (the smallest gap between time-overlapping placed chunks that fits); a buffer that
            fits nowhere stays in slow memory.

    Returns:
        [N] int64 byte offsets, -1 = slow memory.

    Raises:
        ValueError: an unknown order or rule.
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}")
    perm = workload.order(order)
    return _greedy(workload, int(capacity), int(alignment), perm, best=rule == "best")


def greedy_rules() -> list[tuple[str, str]]:
    """Every ``(rule, order)`` pair: :data:`RULES` x :data:`~accelrl.envs.malloc.workload.ORDERS`."""
    return [(rule, order) for rule in RULES for order in ORDERS]


def portfolio(
    workload: Workload, capacity: int, alignment: int = 1
) -> tuple[np.ndarray, tuple[str, str]]:
    """The best of every greedy rule on this program (a non-learned method in its own right).

    Runs :func:`greedy` for each pair of :func:`greedy_rules` and keeps the placement with the
    highest :func:`validate`d benefit (the first in ``greedy_rules()`` order on ties).

    Returns:
        ``(offsets, (rule, order))``: [N] int64 byte offsets (-1 = slow memory) and the pair
        that produced them.
    """
    best, best_value, best_pair = None, -1.0, (RULES[0], ORDERS[0])
    for rule, order in greedy_rules():
        off = greedy(workload, capacity, alignment, order, rule)
        value = validate(workload, capacity, off, alignment)
        if value > best_value:
            best, best_value, best_pair = off, value, (rule, order)
    return best, best_pair


def xla_best_fit(workload: Workload, capacity: int, alignment: int = 1) -> np.ndarray:
    """XLA-style greedy: memory-boundedness order, best-fit gap, spill what fits nowhere.

    Order: ``benefit / sqrt(size)`` descending, then size descending, then duration
    descending, then start (``Workload.order("xla")``). For each buffer, the gaps between
    time-overlapping placed chunks (candidate offset after a chunk = its end rounded up to the
    alignment) are walked in offset order and the smallest gap that fits is taken
    (``greedy(..., order="xla", rule="best")``).

    Returns:
        [N] int64 byte offsets, -1 = slow memory.
    """
    return greedy(workload, capacity, alignment, "xla", "best")


def first_fit(
    workload: Workload, capacity: int, alignment: int = 1, order: str = "start"
) -> np.ndarray:
    """First fit (the lowest gap that fits), by default in schedule order (start, then larger
    first): ``greedy(..., order=order, rule="lowest")``.

    Returns:
        [N] int64 byte offsets, -1 = slow memory.
    """
    return greedy(workload, capacity, alignment, order, "lowest")


def capacity_lp_bound(workload: Workload, capacity: int, alignment: int = 1) -> float:
    """Upper bound on the normalised benefit of any placement, from the capacity alone.

    The linear relaxation ``max sum(b_i x_i)`` subject to ``sum(size_i x_i) <= capacity`` over
    the buffers live at each buffer's start (every set of simultaneously live buffers is one of
    these), ``0 <= x_i <= 1``, sizes rounded up to ``alignment``. It ignores fragmentation, so
    it bounds every method; solved with scipy's HiGHS in well under a second for the shipped
    programs, where CP-SAT may find no solution at all in its time limit.

    Returns:
        The bound as a fraction of the total benefit (0 when the total is 0).
    """
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    total = workload.total_benefit
    if total <= 0:
        return 0.0
    size = aligned_sizes(workload, alignment).astype(np.float64)
    times = np.unique(workload.start)
    live = (workload.start[None, :] <= times[:, None]) & (workload.end[None, :] >= times[:, None])
    rows, cols = np.nonzero(live)
    a = csr_matrix((size[cols], (rows, cols)), shape=live.shape)
    res = linprog(
        -workload.benefit / total,
        A_ub=a,
        b_ub=np.full(len(times), float(capacity)),
        bounds=(0.0, 1.0),
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError(f"capacity LP failed: {res.message}")
    return float(min(1.0, -res.fun + 1e-9))


def optimal(
    workload: Workload,
    capacity: int,
    time_limit: float = 5.0,
    alignment: int = 1,
    num_workers: int = 1,
    return_info: bool = False,
    hint: Any = None,
):
    """Best mapping by CP-SAT (the ``ortools`` extra): exact when solved to optimality.

    Model: per buffer a presence literal and an offset (in alignment units); optional
    intervals in time ``[start, end + 1)`` and address ``[offset, offset + size)`` with
    ``AddNoOverlap2D``; maximise the summed benefit (scaled to integers, 1e6 per workload
    total). Intended for small workloads (tens of buffers).

    Args:
        workload: the buffers.
        capacity: fast-memory bytes.
        time_limit: solver wall-clock limit in seconds.
        alignment: bytes per address unit.
        num_workers: CP-SAT search workers.
        return_info: also return ``{"status", "objective", "bound"}`` (normalised benefits;
            ``bound`` is an upper bound on every method's return).
        hint: optional [N] byte offsets (-1 = slow memory) of a valid placement, e.g.
            :func:`xla_best_fit`'s, given to CP-SAT as a solution hint: on programs too large
            to solve in ``time_limit`` the search starts from it instead of from nothing.

    Returns:
        [N] int64 byte offsets, -1 = slow memory (and the info dict when ``return_info``).

    Raises:
        RuntimeError: if the solver finds no feasible solution within ``time_limit`` (the
            empty mapping is always feasible, so this means a solver failure).
    """
    from ortools.sat.python import cp_model  # lazy: optional dependency

    units = -(-workload.size // alignment)
    cap = int(capacity) // alignment
    total = workload.total_benefit
    weights = np.rint(workload.benefit / (total if total > 0 else 1.0) * 1e6).astype(np.int64)
    model = cp_model.CpModel()
    present, offs, x_iv, y_iv = [], [], [], []
    for i in range(workload.num_buffers):
        u = int(units[i])
        lit = model.NewBoolVar(f"p{i}")
        if u > cap:
            model.Add(lit == 0)
        off = model.NewIntVar(0, max(cap - u, 0), f"o{i}")
        s, e = int(workload.start[i]), int(workload.end[i]) + 1
        x_iv.append(model.NewOptionalFixedSizeIntervalVar(s, e - s, lit, f"x{i}"))
        y_iv.append(model.NewOptionalFixedSizeIntervalVar(off, u, lit, f"y{i}"))
        present.append(lit)
        offs.append(off)
    if hint is not None:
        hint = np.asarray(hint, np.int64)
        if hint.shape != (workload.num_buffers,):
            raise ValueError(f"hint has shape {hint.shape}, expected ({workload.num_buffers},)")
        for i in range(workload.num_buffers):
            model.AddHint(present[i], bool(hint[i] >= 0))
            model.AddHint(offs[i], int(max(hint[i], 0) // alignment))
    model.AddNoOverlap2D(x_iv, y_iv)
    model.Maximize(sum(int(w) * p for w, p in zip(weights, present, strict=True)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = int(num_workers)
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise RuntimeError(f"CP-SAT found no solution: {solver.StatusName(status)}")
    offsets = np.full(workload.num_buffers, -1, np.int64)
    for i in range(workload.num_buffers):
        if solver.Value(present[i]):
            offsets[i] = solver.Value(offs[i]) * alignment
    if not return_info:
        return offsets
    info = {
        "status": solver.StatusName(status),
        "objective": solver.ObjectiveValue() / 1e6,
        "bound": solver.BestObjectiveBound() / 1e6,
    }
    return offsets, info
