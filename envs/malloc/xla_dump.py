"""Workloads from real programs: XLA buffer-assignment dumps, or a jaxpr as a fallback.

XLA writes, for every program it compiles with
``XLA_FLAGS="--xla_dump_to=DIR --xla_dump_hlo_as_text --xla_dump_buffer_assignment_analysis"``
(flags read once at backend start, so extraction runs one subprocess per batch of programs;
see ``scripts/make_workloads.py``):

* ``*-live-range.txt``: ``name{index}:start-end`` inclusive schedule steps per HLO value;
* ``*-buffer-assignment.txt``: ``value: <id name{index} @pos> (size=S,offset=O)`` lines;
* ``*-buffer-assignment-values.txt``: per value its uses (``instruction, operand k``);
* ``*after_optimizations.txt``: the scheduled HLO (opcodes, shapes, fused computations).

Bytes moved by a value (the cost model of :mod:`accelrl.envs.malloc.workload`): its size,
written once by a producing instruction (not for parameters, constants and aliases), plus,
for each use, the bytes the consumer reads: the whole value, only the consumer's output for
slicing consumers (slice/dynamic-slice/gather, or fusions named after them), nothing for
aliasing uses (tuple, get-tuple-element, bitcast, while/call/conditional operands, the
in-place operand 0 of a dynamic-update-slice). Loop bodies are counted once (per iteration).

Compute cap (optional, ``peak_flops``): an instruction cannot get faster than its arithmetic,
so the seconds a value saves through instruction ``u`` are at most
``max(0, bytes(u) / slow_bw - flops(u) / peak_flops)``, where ``bytes(u)`` sums what ``u``
reads and writes and ``flops(u)`` counts ``2 * M * N * K`` for dots, the analogous product for
convolutions (also inside fusions) and one flop per output element otherwise.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from accelrl.envs.malloc.workload import DEFAULT_FAST_BW, DEFAULT_SLOW_BW, Workload

_BYTES = {
    "pred": 1,
    "s8": 1,
    "u8": 1,
    "s16": 2,
    "u16": 2,
    "f16": 2,
    "bf16": 2,
    "s32": 4,
    "u32": 4,
    "f32": 4,
    "s64": 8,
    "u64": 8,
    "f64": 8,
    "c64": 8,
    "c128": 16,
    "s4": 1,
    "u4": 1,
    "f8e4m3fn": 1,
    "f8e5m2": 1,
}
_ALIAS_OPS = {"tuple", "get-tuple-element", "bitcast", "while", "call", "conditional", "parameter"}
_NO_WRITE_OPS = {
    "parameter",
    "constant",
    "tuple",
    "get-tuple-element",
    "bitcast",
    "while",
    "call",
    "conditional",
}
_SLICE_OPS = {"slice", "dynamic-slice", "gather"}

_ARRAY_RE = re.compile(r"\b([a-z][a-z0-9]*)\[([\d,]*)\]")
_LIVE_RE = re.compile(r"^\s*(\S+?)(\{[\d,]*\}):(\d+)-(\d+)\s*$")
_VALUE_RE = re.compile(
    r"value: <(\d+) (\S+?)(\{[\d,]*\})?(?: \(phi\))? @\d+> \(size=(\d+),offset=\d+\)"
)
_VALUE_HEAD_RE = re.compile(r"^<(\d+) (\S+?)(\{[\d,]*\})?(?: \(phi\))? @\d+>")
_USE_RE = re.compile(r"^\s+(\S+?)(?: \{[\d,]*\})?, operand (\d+)")
_INSTR_RE = re.compile(r"^\s*(?:ROOT )?%(\S+) = (.*)$")
_COMP_RE = re.compile(r"^(?:ENTRY )?%(\S+) \(.*\{\s*$")


def _shape_info(type_text: str) -> tuple[int, list[list[int]]]:
    """Total bytes and the array shapes in an HLO type string (tuples flattened)."""
    total, shapes = 0, []
    for dtype, dims in _ARRAY_RE.findall(type_text):
        if dtype not in _BYTES:
            continue
        shape = [int(d) for d in dims.split(",") if d]
        total += _BYTES[dtype] * int(np.prod(shape, dtype=np.int64))
        shapes.append(shape)
    return total, shapes


def _split_type(rest: str) -> tuple[str, str]:
    """Split ``"<type> <opcode>(...)..."`` into type text and the remainder."""
    if rest.startswith("("):
        depth = 0
        for k, ch in enumerate(rest):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                return rest[: k + 1], rest[k + 1 :].lstrip()
    head, _, tail = rest.partition(" ")
    return head, tail


class HloInstr:
    """One parsed HLO instruction (only what the cost model needs)."""

    __slots__ = ("name", "opcode", "out_bytes", "out_shape", "operands", "attrs")

    def __init__(self, name: str, rest: str):
        type_text, tail = _split_type(rest)
        self.name = name
        self.out_bytes, shapes = _shape_info(type_text)
        self.out_shape = shapes[0] if len(shapes) == 1 else None
        m = re.match(r"([a-z][a-z0-9\-]*)\((.*?)\)(.*)$", tail)
        self.opcode = m.group(1) if m else tail.split("(")[0]
        self.operands = re.findall(r"%([\w.\-]+)", m.group(2)) if m else []
        self.attrs = m.group(3) if m else ""


def parse_hlo(text: str) -> dict[str, dict[str, HloInstr]]:
    """Computations of an HLO module text: ``{computation: {instruction: HloInstr}}``."""
    comps: dict[str, dict[str, HloInstr]] = {}
    current = None
    for line in text.splitlines():
        if current is None:
            m = _COMP_RE.match(line)
            if m:
                current = m.group(1)
                comps[current] = {}
            continue
        if line.strip() == "}":
            current = None
            continue
        m = _INSTR_RE.match(line)
        if m:
            comps[current][m.group(1)] = HloInstr(m.group(1), m.group(2))
    return comps


def instruction_flops(comps: dict[str, dict[str, HloInstr]]) -> dict[str, float]:
    """Estimated flops of every instruction (fusions: their dots/convolutions + elementwise)."""
    shapes = {n: i.out_shape for c in comps.values() for n, i in c.items()}

    def own(ins: HloInstr) -> float:
        out = float(np.prod(ins.out_shape)) if ins.out_shape is not None else 0.0
        if ins.opcode == "dot" and ins.operands:
            lhs = shapes.get(ins.operands[0]) or []
            m = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", ins.attrs)
            dims = [int(d) for d in m.group(1).split(",") if d] if m else []
            k = float(np.prod([lhs[d] for d in dims if d < len(lhs)])) if dims else 1.0
            return 2.0 * out * k
        if ins.opcode == "convolution" and len(ins.operands) > 1:
            rhs = shapes.get(ins.operands[1]) or []
            m = re.search(r"dim_labels=\w+_(\w+)->", ins.attrs)
            o = m.group(1).find("o") if m else -1
            feat = rhs[o] if 0 <= o < len(rhs) else 1
            return 2.0 * out * float(np.prod(rhs)) / max(feat, 1)
        return out

    def comp_flops(name: str, seen: frozenset) -> float:
        if name in seen or name not in comps:
            return 0.0
        return sum(total(i, seen | {name}) for i in comps[name].values())

    def total(ins: HloInstr, seen: frozenset = frozenset()) -> float:
        if ins.opcode == "fusion":
            m = re.search(r"calls=%([\w.\-]+)", ins.attrs)
            return comp_flops(m.group(1), seen) if m else own(ins)
        if ins.opcode in ("parameter", "constant", "tuple", "get-tuple-element", "bitcast"):
            return 0.0
        return own(ins)

    return {n: total(i) for c in comps.values() for n, i in c.items()}


def _read_bytes(value_size: int, consumer: HloInstr | None, operand: int) -> int:
    if consumer is None:
        return value_size
    op, name = consumer.opcode, consumer.name
    if op in _ALIAS_OPS:
        return 0
    if "dynamic-update-slice" in name or op == "dynamic-update-slice":
        return 0 if operand == 0 else value_size
    if op in _SLICE_OPS or (op == "fusion" and ("slice" in name or "gather" in name)):
        return min(value_size, consumer.out_bytes)
    return value_size


def workload_from_dump(
    dump_dir: str | Path,
    module: str,
    fast_bw: float = DEFAULT_FAST_BW,
    slow_bw: float = DEFAULT_SLOW_BW,
    peak_flops: float | None = 1.0e14,
    name: str | None = None,
) -> Workload:
    """Parse one compiled module's dumps into a :class:`Workload`.

    Args:
        dump_dir: the ``--xla_dump_to`` directory.
        module: a substring identifying the module's files, e.g. ``"jit_mlp_train_b8."``.
        fast_bw, slow_bw: bandwidths of the cost model (bytes/s).
        peak_flops: compute cap (flop/s); None disables it.
        name: workload name (default: ``module``).

    Raises:
        FileNotFoundError: no (or several) dumps match ``module`` (a warm compilation cache
            writes none).
    """
    dump_dir = Path(dump_dir)

    def one(suffix: str) -> Path:
        found = [p for p in dump_dir.iterdir() if module in p.name and p.name.endswith(suffix)]
        if len(found) != 1:
            raise FileNotFoundError(f"{len(found)} files match *{module}*{suffix} in {dump_dir}")
        return found[0]

    live: dict[str, tuple[int, int]] = {}
    for line in one("-live-range.txt").read_text().splitlines():
        m = _LIVE_RE.match(line)
        if m:
            live[m.group(1) + m.group(2)] = (int(m.group(3)), int(m.group(4)))
    sizes: dict[int, tuple[str, int]] = {}
    for m in _VALUE_RE.finditer(one("-buffer-assignment.txt").read_text()):
        key = m.group(2) + (m.group(3) or "{}")
        sizes[int(m.group(1))] = (key, int(m.group(4)))
    uses: dict[int, list[tuple[str, int]]] = defaultdict(list)
    current = None
    for line in one("-buffer-assignment-values.txt").read_text().splitlines():
        m = _VALUE_HEAD_RE.match(line)
        if m:
            current = int(m.group(1))
            continue
        m = _USE_RE.match(line)
        if m and current is not None:
            uses[current].append((m.group(1), int(m.group(2))))
    comps = parse_hlo(one("after_optimizations.txt").read_text())
    instrs = {n: i for c in comps.values() for n, i in c.items()}
    flops = instruction_flops(comps) if peak_flops else {}

    # VALUES: live, non-empty
    ids = sorted(v for v, (key, size) in sizes.items() if size > 0 and key in live)
    size = np.asarray([sizes[v][1] for v in ids], np.int64)
    start = np.asarray([live[sizes[v][0]][0] for v in ids], np.int64)
    end = np.asarray([live[sizes[v][0]][1] for v in ids], np.int64)
    # BYTES MOVED per (value, instruction)
    per_instr: dict[str, list[tuple[int, int]]] = defaultdict(list)  # instr -> (k, bytes)
    for k, v in enumerate(ids):
        key = sizes[v][0]
        producer = instrs.get(key.split("{")[0])
        if producer is not None and producer.opcode not in _NO_WRITE_OPS:
            per_instr[producer.name].append((k, int(size[k])))
        for consumer, operand in uses.get(v, []):
            b = _read_bytes(int(size[k]), instrs.get(consumer), operand)
            if b:
                per_instr[consumer].append((k, b))
    moved = np.zeros(len(ids), np.int64)
    benefit = np.zeros(len(ids), np.float64)
    delta = 1.0 / slow_bw - 1.0 / fast_bw
    for instr, parts in per_instr.items():
        total_bytes = sum(b for _, b in parts)
        slack = np.inf
        if peak_flops:
            slack = max(0.0, total_bytes / slow_bw - flops.get(instr, 0.0) / peak_flops)
        # the instruction's saving is shared by its values in proportion to their bytes
        cap = min(total_bytes * delta, slack)
        for k, b in parts:
            moved[k] += b
            benefit[k] += cap * b / total_bytes
    return Workload(
        size=size,
        start=start,
        end=end,
        benefit=benefit,
        bytes_moved=moved,
        name=name or module,
    )


def workload_from_jaxpr(
    fn: Callable[..., Any],
    *args: Any,
    fast_bw: float = DEFAULT_FAST_BW,
    slow_bw: float = DEFAULT_SLOW_BW,
    name: str = "jaxpr",
) -> Workload:
    """Fallback without XLA dumps: one buffer per jaxpr variable (before fusion).

    Inputs are live from step 0; an equation's outputs from its index; every buffer until its
    last use (program outputs until the end). ``bytes_moved = size * (written + reads)``.
    Sub-jaxprs (scan/cond bodies) count as one equation.
    """
    import jax

    closed = jax.make_jaxpr(fn)(*args)
    jaxpr = closed.jaxpr
    n_eqn = len(jaxpr.eqns)
    info: dict[Any, list[int]] = {}  # var -> [start, end, size, writes, reads]

    def nbytes(v) -> int:
        aval = v.aval
        return int(np.prod(aval.shape, dtype=np.int64)) * np.dtype(aval.dtype).itemsize

    for v in list(jaxpr.invars) + list(jaxpr.constvars):
        info[v] = [0, 0, nbytes(v), 0, 0]
    for k, eqn in enumerate(jaxpr.eqns):
        for v in eqn.invars:
            if v in info:  # literals are not buffers
                info[v][1] = max(info[v][1], k)
                info[v][4] += 1
        for v in eqn.outvars:
            info[v] = [k, k, nbytes(v), 1, 0]
    for v in jaxpr.outvars:
        if v in info:
            info[v][1] = n_eqn
    rows = np.asarray([r for r in info.values() if r[2] > 0], np.int64).reshape(-1, 5)
    moved = rows[:, 2] * (rows[:, 3] + rows[:, 4])
    from accelrl.envs.malloc.workload import benefit_seconds

    return Workload(
        size=rows[:, 2],
        start=rows[:, 0],
        end=rows[:, 1],
        benefit=benefit_seconds(moved, fast_bw, slow_bw),
        bytes_moved=moved,
        name=name,
    )
