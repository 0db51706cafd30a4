"""Workloads of the memory-mapping game: buffers with sizes, live ranges and benefits.

A :class:`Workload` is host-side numpy data: for each buffer its size in bytes (int64, real
training steps exceed 2 GiB), its inclusive live range ``[start, end]`` in the program's
schedule, and its *benefit*, the seconds saved by putting it in fast memory.

Cost model (after XLA's memory-space assignment): a buffer's uses move
``bytes_moved`` bytes (written once by its producer, read by each consumer; a slicing consumer
reads only what it slices). Moving them over fast instead of slow memory saves
``bytes_moved * (1 / slow_bw - 1 / fast_bw)`` seconds, optionally capped by the consumers'
compute time (an instruction cannot run faster than its arithmetic; see
``accelrl.envs.malloc.xla_dump``). Inputs without access data (the MiniMalloc CSVs) fall back
to ``bytes_moved = size``, which makes the game plain packing (benefit proportional to size).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_SLOW_BW = 1.0e12
"""Default slow-memory (HBM-like) bandwidth in bytes/s."""
DEFAULT_FAST_BW = 1.0e13
"""Default fast-memory (on-chip) bandwidth in bytes/s."""

DATA_DIR = Path(__file__).parent / "data"
DATASET_NPZ = DATA_DIR / "workloads.npz"
DATASET_JSON = DATA_DIR / "workloads.json"
LARGE_NPZ = DATA_DIR / "workloads_large.npz"
LARGE_JSON = DATA_DIR / "workloads_large.json"
"""The large set: training steps of deeper and wider models (1,600-4,000 buffers), the split
``"large"`` of its own files (``make_workloads.py --large``)."""

ORDERS = (
    "xla",
    "benefit_per_size",
    "benefit",
    "size",
    "start",
    "duration",
    "benefit_per_area",
)
"""The named offering orders, the one list every greedy rule and the game draw from (sort keys
and tie-breaks in :meth:`Workload.order`)."""

CSV_INT_MAX = int(np.iinfo(np.int64).max)
"""Largest value a MiniMalloc CSV field may hold (a :class:`Workload` stores int64)."""
_CSV_INT = re.compile(r"[+-]?[0-9]+")


def _shorten(text: str, limit: int = 40) -> str:
    """``text``, or its start and length when longer than ``limit`` (one-line error messages)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _csv_records(reader, path: Path):
    """``(line number, row)`` for each record of a ``csv.reader``, a ``csv.Error`` (e.g. a field
    over the field-size limit) re-raised as a ``ValueError`` naming the file and line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ValueError(f"{path}:{reader.line_num}: malformed CSV: {e}") from None
        yield reader.line_num, row


def benefit_seconds(
    bytes_moved: np.ndarray, fast_bw: float = DEFAULT_FAST_BW, slow_bw: float = DEFAULT_SLOW_BW
) -> np.ndarray:
    """Seconds saved by serving ``bytes_moved`` from fast instead of slow memory.

    Args:
        bytes_moved: [N] bytes each buffer's uses move.
        fast_bw: fast-memory bandwidth (bytes/s), must exceed ``slow_bw``.
        slow_bw: slow-memory bandwidth (bytes/s).

    Returns:
        [N] float64 seconds, ``bytes_moved * (1/slow_bw - 1/fast_bw)``.
    """
    if not (fast_bw > slow_bw > 0):
        raise ValueError(f"need fast_bw > slow_bw > 0, got fast_bw={fast_bw}, slow_bw={slow_bw}")
    return np.asarray(bytes_moved, np.float64) * (1.0 / slow_bw - 1.0 / fast_bw)


@dataclasses.dataclass(frozen=True, eq=False)
class Workload:
    """One program's buffers (host-side numpy arrays, index = buffer id)."""

    size: np.ndarray
    """[N] int64 bytes, >= 0."""
    start: np.ndarray
    """[N] int64 first schedule step at which the buffer is live (inclusive)."""
    end: np.ndarray
    """[N] int64 last schedule step at which the buffer is live (inclusive), >= start."""
    benefit: np.ndarray
    """[N] float64 seconds saved when the buffer lives in fast memory, >= 0."""
    bytes_moved: np.ndarray | None = None
    """[N] int64 bytes the buffer's uses move (None: unknown, benefit was given directly)."""
    name: str = "workload"
    """Human-readable name, e.g. ``"resnet/train/b8"``."""

    def __post_init__(self) -> None:
        size = np.asarray(self.size, np.int64).reshape(-1)
        start = np.asarray(self.start, np.int64).reshape(-1)
        end = np.asarray(self.end, np.int64).reshape(-1)
        benefit = np.asarray(self.benefit, np.float64).reshape(-1)
        n = size.shape[0]
        for field, arr in (("start", start), ("end", end), ("benefit", benefit)):
            if arr.shape[0] != n:
                raise ValueError(f"{self.name}: {field} has {arr.shape[0]} entries, size has {n}")
        if n and size.min() < 0:
            raise ValueError(f"{self.name}: negative size for buffer {int(np.argmin(size))}")
        if n and start.min() < 0:
            raise ValueError(f"{self.name}: negative start for buffer {int(np.argmin(start))}")
        bad = np.flatnonzero(end < start)
        if bad.size:
            raise ValueError(f"{self.name}: buffer {int(bad[0])} ends before it starts")
        if n and not (np.all(np.isfinite(benefit)) and benefit.min() >= 0):
            raise ValueError(f"{self.name}: benefits must be finite and >= 0")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "benefit", benefit)
        if self.bytes_moved is not None:
            moved = np.asarray(self.bytes_moved, np.int64).reshape(-1)
            if moved.shape[0] != n:
                raise ValueError(f"{self.name}: bytes_moved has {moved.shape[0]} entries, not {n}")
            object.__setattr__(self, "bytes_moved", moved)

    # ---- derived quantities -------------------------------------------------------------------
    @property
    def num_buffers(self) -> int:
        return int(self.size.shape[0])

    @property
    def horizon(self) -> int:
        """Number of schedule steps (``max(end) + 1``)."""
        return int(self.end.max()) + 1 if self.num_buffers else 0

    @property
    def total_benefit(self) -> float:
        return float(self.benefit.sum())

    def live_profile(self) -> tuple[np.ndarray, np.ndarray]:
        """Bytes and number of buffers live at every schedule step: ([T] int64, [T] int64)."""
        t = self.horizon
        d_bytes = np.zeros(t + 1, np.int64)
        d_count = np.zeros(t + 1, np.int64)
        np.add.at(d_bytes, self.start, self.size)
        np.add.at(d_bytes, self.end + 1, -self.size)
        np.add.at(d_count, self.start, 1)
        np.add.at(d_count, self.end + 1, -1)
        return np.cumsum(d_bytes)[:t], np.cumsum(d_count)[:t]

    @property
    def peak_live_bytes(self) -> int:
        """The most bytes live at one schedule step (a lower bound on any full packing)."""
        return int(self.live_profile()[0].max()) if self.num_buffers else 0

    @property
    def peak_live_count(self) -> int:
        """The most buffers live at one schedule step."""
        return int(self.live_profile()[1].max()) if self.num_buffers else 0

    def overlaps(self) -> np.ndarray:
        """[N, N] bool: buffers i and j (i != j) are live at a common step."""
        o = (self.start[:, None] <= self.end[None, :]) & (self.start[None, :] <= self.end[:, None])
        np.fill_diagonal(o, False)
        return o

    # ---- benefit / ordering -------------------------------------------------------------------
    def with_bandwidths(
        self, fast_bw: float = DEFAULT_FAST_BW, slow_bw: float = DEFAULT_SLOW_BW
    ) -> Workload:
        """The same buffers with benefits recomputed from ``bytes_moved`` (uncapped model)."""
        moved = self.size if self.bytes_moved is None else self.bytes_moved
        return dataclasses.replace(self, benefit=benefit_seconds(moved, fast_bw, slow_bw))

    def memory_boundedness(self) -> np.ndarray:
        """[N] ``benefit / sqrt(size)``, XLA's ordering key."""
        return self.benefit / np.sqrt(np.maximum(self.size, 1))

    def order(self, kind: str = "start") -> np.ndarray:
        """The order in which buffers are offered: [N] int64 permutation of buffer ids.

        ``duration`` is ``end - start + 1`` (steps live), sizes count as at least 1 byte in
        ratios. Every order ends with the buffer id, so it is a total order. The benefit-based
        orders break ties as XLA does (size descending, duration descending, start).

        * ``"xla"``: ``benefit / sqrt(size)`` (memory-boundedness) descending, then size
          descending, duration descending, start, id (XLA's memory-space-assignment order);
        * ``"benefit_per_size"``: ``benefit / size`` descending, then size descending, duration
          descending, start, id (benefit density, the fractional knapsack order);
        * ``"benefit"``: benefit descending, then size descending, duration descending, start, id;
        * ``"size"``: size descending, then duration descending, id (XLA's heap packer);
        * ``"start"``: start, then size descending, id (the sweep-line order, the default);
        * ``"duration"``: duration descending, then size descending, start, id (XLA's
          "temporal" heap order);
        * ``"benefit_per_area"``: ``benefit / (size * duration)`` descending, then size
          descending, duration descending, start, id (benefit per byte-step of the time x
          address plane a buffer occupies).

        Raises:
            ValueError: ``kind`` is not one of :data:`ORDERS`.
        """
        ids = np.arange(self.num_buffers)
        dur = self.end - self.start + 1
        size = np.maximum(self.size, 1).astype(np.float64)
        xla_ties = (ids, self.start, -dur, -self.size)
        if kind == "start":
            keys = (ids, -self.size, self.start)
        elif kind == "xla":
            keys = (*xla_ties, -self.memory_boundedness())
        elif kind == "size":
            keys = (ids, -dur, -self.size)
        elif kind == "benefit_per_size":
            keys = (*xla_ties, -self.benefit / size)
        elif kind == "benefit":
            keys = (*xla_ties, -self.benefit)
        elif kind == "duration":
            keys = (ids, self.start, -self.size, -dur)
        elif kind == "benefit_per_area":
            keys = (*xla_ties, -self.benefit / (size * dur))
        else:
            raise ValueError(f"unknown order {kind!r}; choose one of {ORDERS}")
        return np.lexsort(keys)

    # ---- MiniMalloc CSV -----------------------------------------------------------------------
    @classmethod
    def from_minimalloc_csv(
        cls,
        path: str | Path,
        fast_bw: float = DEFAULT_FAST_BW,
        slow_bw: float = DEFAULT_SLOW_BW,
    ) -> Workload:
        """Read MiniMalloc's ``id,lower,upper,size`` CSV (half-open lifespans ``[lower, upper)``).

        Buffers keep the file's row order as ids. Without access data, ``bytes_moved = size``
        (benefit proportional to size). The file must be UTF-8 (a leading BOM is allowed);
        values are plain base-10 integers.

        Raises:
            ValueError: naming the file and line for bytes that are not UTF-8, a malformed CSV
                record, a missing column, a non-integer, a value above the int64 maximum
                (:data:`CSV_INT_MAX`), a negative size, ``upper <= lower``, a negative ``lower``
                or an ``id`` already used on an earlier line.
        """
        path = Path(path)
        data = path.read_bytes()
        bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
        try:
            text = data[bom:].decode("utf-8")
        except UnicodeDecodeError as e:
            before = data[bom : bom + e.start].decode("utf-8")
            lineno = len(io.StringIO(before, newline="").readlines()) or 1
            if before.endswith(("\n", "\r")):
                lineno += 1  # the bad byte opens a new line
            raise ValueError(
                f"{path}:{lineno}: not UTF-8 text "
                f"(byte 0x{data[bom + e.start]:02x} at offset {bom + e.start})"
            ) from None
        rows: list[tuple[int, int, int]] = []
        reader = csv.reader(io.StringIO(text, newline=""))
        records = _csv_records(reader, path)
        first = next(records, None)
        if first is None:
            raise ValueError(f"{path}: empty file (expected header id,lower,upper,size)")
        header = [h.strip() for h in first[1]]
        missing = [c for c in ("lower", "upper", "size") if c not in header]
        if missing:
            raise ValueError(f"{path}:{first[0]}: missing column(s) {missing} in header {header}")
        col = {c: header.index(c) for c in ("lower", "upper", "size")}
        id_col = header.index("id") if "id" in header else None
        seen: dict[str, int] = {}
        for lineno, row in records:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}: {row}"
                )
            if id_col is not None:
                bid = row[id_col].strip()
                if bid in seen:
                    raise ValueError(
                        f"{path}:{lineno}: duplicate id {_shorten(bid)!r} "
                        f"(already on line {seen[bid]})"
                    )
                seen[bid] = lineno
            vals = {}
            for c, i in col.items():
                text = row[i].strip()
                if not _CSV_INT.fullmatch(text):
                    raise ValueError(f"{path}:{lineno}: {c}={_shorten(text)!r} is not an integer")
                if len(text.lstrip("+-").lstrip("0")) > 19 or int(text) > CSV_INT_MAX:
                    if not text.startswith("-"):
                        raise ValueError(
                            f"{path}:{lineno}: {c}={_shorten(text)} exceeds the int64 maximum "
                            f"{CSV_INT_MAX}"
                        )
                    raise ValueError(f"{path}:{lineno}: negative {c} {_shorten(text)}")
                vals[c] = int(text)
            if vals["size"] < 0:
                raise ValueError(f"{path}:{lineno}: negative size {vals['size']}")
            if vals["lower"] < 0:
                raise ValueError(f"{path}:{lineno}: negative lower {vals['lower']}")
            if vals["upper"] <= vals["lower"]:
                raise ValueError(f"{path}:{lineno}: upper={vals['upper']} <= lower={vals['lower']}")
            rows.append((vals["lower"], vals["upper"], vals["size"]))
        if not rows:
            raise ValueError(f"{path}: no buffers")
        arr = np.asarray(rows, np.int64)
        size = arr[:, 2]
        return cls(
            size=size,
            start=arr[:, 0],
            end=arr[:, 1] - 1,
            benefit=benefit_seconds(size, fast_bw, slow_bw),
            bytes_moved=None,
            name=path.name.split(".")[0],
        )

    def to_minimalloc_csv(self, path: str | Path) -> None:
        """Write MiniMalloc's ``id,lower,upper,size`` CSV (``upper = end + 1``)."""
        with Path(path).open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["id", "lower", "upper", "size"])
            for i in range(self.num_buffers):
                w.writerow([i, int(self.start[i]), int(self.end[i]) + 1, int(self.size[i])])


# ---- the shipped dataset ----------------------------------------------------------------------
def save_dataset(
    workloads: Sequence[Workload],
    meta: dict,
    npz_path: Path = DATASET_NPZ,
    json_path: Path = DATASET_JSON,
) -> None:
    """Write workloads as one compressed npz (concatenated arrays) plus a json index."""
    counts = np.asarray([w.num_buffers for w in workloads], np.int64)
    cat = lambda f: np.concatenate([getattr(w, f) for w in workloads])  # noqa: E731
    moved = np.concatenate([w.size if w.bytes_moved is None else w.bytes_moved for w in workloads])
    np.savez_compressed(
        npz_path,
        counts=counts,
        size=cat("size"),
        start=cat("start").astype(np.int32),
        end=cat("end").astype(np.int32),
        benefit=cat("benefit"),
        bytes_moved=moved,
    )
    index = dict(meta)
    index["names"] = [w.name for w in workloads]
    json_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


def dataset_index(json_path: Path = DATASET_JSON) -> dict:
    """The shipped dataset's json index (names, split, cost-model settings, models)."""
    return json.loads(Path(json_path).read_text())


SPLITS = ("train", "validation", "test", "large")
"""The shipped dataset's splits (see :func:`load_dataset`)."""


def validation_programs(train_models: Sequence[str], batches: Sequence[int]) -> list[str]:
    """The programs held out of training for validation: one per training model.

    The ``i``-th training model (sorted by name) gives its ``fwd`` program when ``i`` is even and
    its ``train`` program when odd, at the middle batch size of ``batches``, so both modes and
    every training model are represented while most of each model's programs stay in training.

    Returns:
        Program names ``"<model>/<mode>/b<batch>"``.
    """
    batch = sorted(batches)[len(batches) // 2]
    return [f"{m}/{('fwd', 'train')[i % 2]}/b{batch}" for i, m in enumerate(sorted(train_models))]


def load_dataset(
    split: str | None = None, npz_path: Path | None = None, json_path: Path | None = None
) -> list[Workload]:
    """Load the shipped workloads.

    Args:
        split: ``"train"`` (the training models' programs, less the validation ones),
            ``"validation"`` (the index's ``"validation"`` programs: one per training model,
            see :func:`validation_programs`; never trained on), ``"test"`` (the held-out
            models' programs: models never seen in training), ``"large"`` (the large set:
            training steps of 1,600-4,000 buffers, from its own files, never trained on) or
            None for all of the main set (train, validation and test).
        npz_path, json_path: the files (default: the shipped main set, or the large set's
            for ``"large"``).

    Returns:
        list of :class:`Workload`, named ``"<model>/<mode>/b<batch>"``, in the index's order.

    Raises:
        ValueError: an unknown split, or a split the index does not name.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    large = split == "large"
    npz_path = npz_path or (LARGE_NPZ if large else DATASET_NPZ)
    json_path = json_path or (LARGE_JSON if large else DATASET_JSON)
    index = dataset_index(json_path)
    held = set(index.get("validation", []))
    if split == "validation" and not held:
        raise ValueError(f"{json_path} names no validation programs")
    if large and "large" not in index["split"]:
        raise ValueError(f"{json_path} is not a large set (no 'large' split)")
    with np.load(npz_path) as z:
        data = {k: z[k] for k in z.files}
    bounds = np.concatenate([[0], np.cumsum(data["counts"])])
    models = set(index["split"]["train" if split in ("validation", None) else split])

    def keep(name: str) -> bool:
        if split is None:
            return True
        if split == "validation":
            return name in held
        return name.split("/")[0] in models and not (split == "train" and name in held)

    out = []
    for k, name in enumerate(index["names"]):
        if not keep(name):
            continue
        sl = slice(bounds[k], bounds[k + 1])
        out.append(
            Workload(
                size=data["size"][sl],
                start=data["start"][sl],
                end=data["end"][sl],
                benefit=data["benefit"][sl],
                bytes_moved=data["bytes_moved"][sl],
                name=name,
            )
        )
    return out
