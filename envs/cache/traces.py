"""Address traces of the cache-replacement game: programs generated in the package, no download.

A :class:`Trace` is host-side numpy data: byte addresses and a program-counter-like id per
access. Two sources (the synthetic families are generated inside the environment's reset from
:class:`accelrl.envs.cache.EnvParams`, see :mod:`accelrl.envs.cache.env`):

* **Tiled kernels** (:func:`matmul_trace`, :func:`stencil_trace`): the data accesses of loop
  nests over row-major float32 arrays, at element granularity, with consecutive accesses to the
  same cache line merged (a load/store unit coalesces them). The pc id names the array (matmul:
  A=0, B=1, C=2; stencil: input=0, output=1).
* **XLA programs** (:func:`xla_trace`): the buffer access order of the shipped XLA workloads
  (``accelrl.envs.malloc``'s dataset of 84 compiled training and inference steps). A buffer is
  written at its first live step and read at its last; buffers that move more bytes than their
  size (several consumers) get up to 3 more reads spread evenly over their live range. Each
  access touches the buffer's first ``min(lines, 16)`` lines; buffers are laid out one after
  another (64-byte aligned). pc 0 = write, 1 = read.

Splits (:func:`program_traces`): XLA programs of the memory-mapping dataset's training models
(train, less ``gnn`` and ``mixer``), ``gnn``/``mixer`` (validation) and its held-out models
(test); kernels with different sizes and tilings per split. Every trace is repeated (as a
training loop repeats its step) until it is ``min_length`` long.
"""

from __future__ import annotations

import dataclasses

import numpy as np

ELEMENT_BYTES = 4
"""float32 elements of the kernels' arrays."""
MERGE_LINE = 64
"""Line size (bytes) at which consecutive kernel accesses are merged."""
XLA_LINES_PER_ACCESS = 16
"""Lines of a buffer touched per XLA access (its first ones)."""
XLA_VALIDATION_MODELS = ("gnn", "mixer")
"""Training models of the XLA dataset held out for validation."""

SPLITS = ("train", "validation", "test")

# (rows = cols = n, tile) per split; disjoint sizes and tilings.
MATMUL_SPLIT = {
    "train": ((32, 8), (48, 16), (64, 16)),
    "validation": ((40, 8),),
    "test": ((56, 8), (64, 32)),
}
STENCIL_SPLIT = {
    "train": ((64, 16), (96, 32)),
    "validation": ((80, 16),),
    "test": ((112, 16),),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Trace:
    """One program's accesses (host-side numpy)."""

    addr: np.ndarray
    """[L] int64 byte addresses, >= 0."""
    pc: np.ndarray
    """[L] int32 program-counter-like id of each access, in ``0..3``."""
    name: str = "trace"

    def __post_init__(self) -> None:
        addr = np.asarray(self.addr, np.int64).reshape(-1)
        pc = np.asarray(self.pc, np.int32).reshape(-1)
        if addr.shape != pc.shape:
            raise ValueError(f"{self.name}: addr has {addr.size} entries, pc has {pc.size}")
        if addr.size == 0:
            raise ValueError(f"{self.name}: empty trace")
        if addr.min() < 0 or addr.max() >= 2**31:
            raise ValueError(f"{self.name}: addresses must lie in [0, 2**31)")
        if pc.min() < 0 or pc.max() > 3:
            raise ValueError(f"{self.name}: pc ids must lie in 0..3")
        object.__setattr__(self, "addr", addr)
        object.__setattr__(self, "pc", pc)

    def __len__(self) -> int:
        return int(self.addr.size)

    def lines(self, line_size: int) -> np.ndarray:
        """[L] int64 cache-line ids ``addr // line_size``."""
        return self.addr // int(line_size)

    def repeated(self, min_length: int) -> Trace:
        """The trace repeated end to end until it has at least ``min_length`` accesses."""
        reps = -(-int(min_length) // len(self))
        if reps <= 1:
            return self
        return Trace(np.tile(self.addr, reps), np.tile(self.pc, reps), self.name)


def _merge(addr: np.ndarray, pc: np.ndarray, name: str) -> Trace:
    """Drop accesses to the same 64-byte line as the access before them."""
    line = addr // MERGE_LINE
    keep = np.ones(addr.size, bool)
    keep[1:] = line[1:] != line[:-1]
    return Trace(addr[keep], pc[keep], name)


def matmul_trace(n: int, tile: int) -> Trace:
    """C += A @ B for n x n row-major float32 arrays, tiled (i0, j0, k0 | i, k, j).

    Inner statement ``C[i, j] += A[i, k] * B[k, j]`` reads A, B, C and writes C (same line as
    the read, merged). Arrays are laid out A, B, C one after another.
    """
    if n < 1 or tile < 1 or n % tile:
        raise ValueError(f"matmul_trace: need n, tile >= 1 and tile | n, got n={n}, tile={tile}")
    size = n * n * ELEMENT_BYTES
    t = np.arange(tile)
    tiles = np.arange(0, n, tile)
    i0, j0, k0 = np.meshgrid(tiles, tiles, tiles, indexing="ij")
    i0, j0, k0 = (x.reshape(-1, 1, 1, 1) for x in (i0, j0, k0))
    i = i0 + t.reshape(1, -1, 1, 1)
    k = k0 + t.reshape(1, 1, -1, 1)
    j = j0 + t.reshape(1, 1, 1, -1)
    shape = np.broadcast_shapes(i.shape, k.shape, j.shape)
    a = np.broadcast_to((i * n + k) * ELEMENT_BYTES, shape)
    b = np.broadcast_to(size + (k * n + j) * ELEMENT_BYTES, shape)
    c = np.broadcast_to(2 * size + (i * n + j) * ELEMENT_BYTES, shape)
    addr = np.stack([a, b, c], -1).reshape(-1)
    pc = np.broadcast_to(np.arange(3, dtype=np.int32), (*shape, 3)).reshape(-1)
    return _merge(addr, pc, f"matmul/n{n}/t{tile}")


def stencil_trace(n: int, tile: int, sweeps: int = 2) -> Trace:
    """``sweeps`` 5-point Jacobi sweeps over an n x n float32 grid, tiled (i0, j0 | i, j),
    alternating input/output arrays; the boundary is left out."""
    if n < 3 or tile < 1 or sweeps < 1:
        raise ValueError(
            f"stencil_trace: need n >= 3, tile, sweeps >= 1, got {n}, {tile}, {sweeps}"
        )
    size = n * n * ELEMENT_BYTES
    addrs, pcs = [], []
    for s in range(sweeps):
        src, dst = (s % 2) * size, ((s + 1) % 2) * size
        for i0 in range(1, n - 1, tile):
            for j0 in range(1, n - 1, tile):
                i = np.arange(i0, min(i0 + tile, n - 1)).reshape(-1, 1)
                j = np.arange(j0, min(j0 + tile, n - 1)).reshape(1, -1)
                i, j = np.broadcast_arrays(i, j)
                reads = [
                    (i + di) * n + (j + dj) for di, dj in ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))
                ]
                elems = np.stack(
                    [*(src + r * ELEMENT_BYTES for r in reads), dst + (i * n + j) * ELEMENT_BYTES],
                    -1,
                )
                addrs.append(elems.reshape(-1))
                pcs.append(
                    np.broadcast_to(np.array([0] * 5 + [1], np.int32), elems.shape).reshape(-1)
                )
    return _merge(np.concatenate(addrs), np.concatenate(pcs), f"stencil/n{n}/t{tile}")


def xla_trace(workload) -> Trace:
    """The buffer access order of one XLA program (an ``accelrl.envs.malloc.Workload``)."""
    size = np.maximum(np.asarray(workload.size, np.int64), 1)
    start, end = np.asarray(workload.start), np.asarray(workload.end)
    moved = workload.bytes_moved if workload.bytes_moved is not None else size
    lines = -(-size // MERGE_LINE)
    base = np.concatenate([[0], np.cumsum(lines * MERGE_LINE)[:-1]])
    extra = np.clip(np.round(np.asarray(moved) / size).astype(np.int64) - 2, 0, 3)
    events = []  # (step, kind, buffer)
    for b in range(size.size):
        events.append((start[b], 0, b))
        events.append((end[b], 1, b))
        for r in range(1, extra[b] + 1):
            events.append((start[b] + (end[b] - start[b]) * r // (extra[b] + 1), 1, b))
    events.sort()
    addrs, pcs = [], []
    for _, kind, b in events:
        n_lines = min(int(lines[b]), XLA_LINES_PER_ACCESS)
        addrs.append(base[b] + MERGE_LINE * np.arange(n_lines))
        pcs.append(np.full(n_lines, kind, np.int32))
    return Trace(np.concatenate(addrs), np.concatenate(pcs), f"xla/{workload.name}")


def program_traces(split: str, min_length: int = 0) -> list[Trace]:
    """The program traces of one split, each repeated to at least ``min_length`` accesses.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        min_length: repeat shorter traces up to this many accesses.

    Returns:
        Kernels first (matmul, stencil), then the split's XLA programs in dataset order.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    from accelrl.envs.malloc.workload import load_dataset

    traces = [matmul_trace(n, t) for n, t in MATMUL_SPLIT[split]]
    traces += [stencil_trace(n, t) for n, t in STENCIL_SPLIT[split]]
    workloads = load_dataset("test" if split == "test" else "train")
    for w in workloads:
        model = w.name.split("/")[0]
        if split == "test" or (model in XLA_VALIDATION_MODELS) == (split == "validation"):
            traces.append(xla_trace(w))
    return [t.repeated(min_length) for t in traces]
