"""Helpers shared by the benchmark scripts: timing calls, and peer virtual environments.

* :func:`time_fn` times repeated calls of a function after warm-up calls, blocking on JAX
  outputs, and returns a :class:`Timing` (wall and process-CPU seconds per call, medians).
* :class:`PeerVenv` is a virtual environment for a framework whose pins conflict with accelrl's
  (rejax, stable-baselines3, JaxMARL): created once with its requirements, then used to run a
  script or a code string under its interpreter.
* Generated page blocks (the results protocol, ``accelrl.results``): :func:`results_record`
  starts a raw results file that names its generator and page,
  :func:`write_blocks` rewrites a page's ``<!-- name: begin -->`` ... ``<!-- name: end -->``
  blocks, :func:`render_from_results` re-renders a page from its raw results file alone (a
  script's ``--from_results PATH``): thin wrappers over ``accelrl.results``.

Only the standard library is imported here, at module level or later (except by
:func:`results_record`, :func:`write_blocks` and :func:`render_from_results`, which import ``accelrl.results`` when
called): the peer environments import this file too (a script run by path finds it beside
itself; a code string run by :meth:`PeerVenv.command` gets it as ``_bench``), and jax is used
only where the caller's process has imported it already.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# Timing


def block(out: Any) -> Any:
    """Wait until every JAX array in the pytree ``out`` is computed; return ``out``.

    A no-op when jax is not imported in this process (nothing can be a JAX array then); leaves
    that are not arrays (numbers, compiled executables, torch tensors) are skipped.
    """
    jax = sys.modules.get("jax")
    if jax is None:
        return out
    leaves = [x for x in jax.tree_util.tree_leaves(out) if hasattr(x, "block_until_ready")]
    for x in leaves:
        x.block_until_ready()
    return out


@dataclass(frozen=True)
class Timing:
    """Timings of the calls made by :func:`time_fn`."""

    times: tuple[float, ...]
    """Wall-clock seconds of each timed call (output blocked on)."""
    cpu_times: tuple[float, ...]
    """Process CPU seconds (all threads) of each timed call."""
    warmup_times: tuple[float, ...] = ()
    """Wall-clock seconds of each warm-up call; the first one includes compilation."""
    result: Any = field(default=None, repr=False, compare=False)
    """What the last call returned."""

    @property
    def median(self) -> float:
        """Median wall-clock seconds per timed call."""
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        """Median process CPU seconds per timed call."""
        return statistics.median(self.cpu_times)

    @property
    def total(self) -> float:
        """Wall-clock seconds of all timed calls together."""
        return math.fsum(self.times)

    @property
    def cpu_total(self) -> float:
        """Process CPU seconds of all timed calls together."""
        return math.fsum(self.cpu_times)

    @property
    def first_s(self) -> float:
        """Wall-clock seconds of the first call (warm-up if any, so compilation included)."""
        return (self.warmup_times or self.times)[0]

    def rates(self, work: float) -> list[float]:
        """``work`` per second of each timed call (e.g. steps/s per repeat)."""
        return [work / t for t in self.times]


def time_fn(fn: Callable[..., Any], *args: Any, warmup: int = 2, repeats: int = 5) -> Timing:
    """Call ``fn(*args)`` ``warmup`` times untimed, then ``repeats`` times timed.

    Every call's output is blocked on (:func:`block`) before its clock stops, so asynchronous
    JAX dispatch is timed to completion. To time a chain of calls (each one continuing the
    state of the one before), pass a closure that updates the state it holds.

    Args:
        fn: the function to time.
        *args: its positional arguments, the same for every call.
        warmup: untimed calls first (compilation, caches); their wall-clock seconds are kept.
        repeats: timed calls, at least one.

    Returns:
        The :class:`Timing`, with the last call's output as ``result``.
    """
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    out = None
    warmup_times = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        out = block(fn(*args))
        warmup_times.append(time.perf_counter() - t0)
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = block(fn(*args))
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    return Timing(tuple(times), tuple(cpu_times), tuple(warmup_times), out)


class SeedProgram:
    """A seed-vmapped training program (the runner's ``seed_vmapped``) advanced ``per_call``
    updates per call, to time updates: ``seeds`` seeds from ``training_key(0..seeds-1)``."""

    def __init__(self, agent: Any, hparams: Any, seeds: int, per_call: int):
        import jax.numpy as jnp

        from accelrl.agents.evaluation import training_key
        from accelrl.agents.runner import batch_hparams, seed_vmapped

        self.run, init = seed_vmapped(agent)
        self.hparams = batch_hparams(hparams, seeds)
        self.state = init(jnp.stack([training_key(i) for i in range(seeds)]), self.hparams)
        self.per_call = per_call
        self.done = 0
        """Updates run so far."""

    def advance(self) -> float:
        """Run ``per_call`` more updates; wall-clock seconds, the new state blocked on."""
        import jax.numpy as jnp

        t0 = time.perf_counter()
        self.state, _ = self.run(self.state, self.hparams, self.per_call, jnp.int32(self.done))
        block(self.state)
        self.done += self.per_call
        return time.perf_counter() - t0


def time_round_robin(programs: Mapping[str, SeedProgram], rounds: int) -> dict[str, list[float]]:
    """Seconds per update of each program over ``rounds`` calls, one call of each program per
    round (so drift on a shared machine hits them alike)."""
    times: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(rounds):
        for name, prog in programs.items():
            times[name].append(prog.advance() / prog.per_call)
    return times


def median(values: Iterable[float]) -> float:
    """Median of ``values``; NaN when there are none (infinities are kept: a seed that never
    reached a threshold counts as infinitely slow)."""
    values = list(values)
    return statistics.median(values) if values else math.nan


def ratio(a: float | None, b: float | None) -> float:
    """``a / b``, or NaN when either is missing, NaN or infinite, or ``b`` is zero."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return math.nan
    return a / b


def median_ratio(a: Iterable[float], b: Iterable[float]) -> float:
    """``median(a) / median(b)`` (NaN where :func:`ratio` is undefined)."""
    return ratio(median(a), median(b))


# ---------------------------------------------------------------------------------------------
# Peer virtual environments


def venv_root() -> Path:
    """Where peer environments live: ``$ACCELRL_VENVS`` or ``~/.cache/accelrl/venvs``."""
    return Path(os.environ.get("ACCELRL_VENVS", Path.home() / ".cache" / "accelrl" / "venvs"))


HELPERS = Path(__file__).resolve()
"""This file; code strings run in a peer environment import it as ``_bench``."""


def _helpers_prelude() -> str:
    """Code that makes this file importable as ``_bench`` (by path: no ``sys.path`` entry)."""
    return (
        "import importlib.util as _ilu, sys as _sys\n"
        f"_spec = _ilu.spec_from_file_location('_bench', {str(HELPERS)!r})\n"
        "_sys.modules['_bench'] = _mod = _ilu.module_from_spec(_spec)\n"
        "_spec.loader.exec_module(_mod)\n"
        "del _ilu, _sys, _spec, _mod\n"
    )


@dataclass(frozen=True)
class PeerVenv:
    """A virtual environment for a peer framework whose pins conflict with accelrl's.

    :meth:`ensure` creates it once (``python -m venv --clear``, then one ``pip install`` per
    entry of ``requirements``, in order) and records the requirements in a marker file; it is
    created again when they change. :meth:`command`, :meth:`run` and :meth:`popen` run a
    script or a code string under its interpreter, with ``PYTHONPATH`` removed from the
    environment so that nothing of accelrl's environment leaks in.
    """

    path: Path
    """The environment's folder."""
    requirements: Sequence[Sequence[str]]
    """pip requirement lines, one ``pip install`` per inner sequence, in order (e.g. CPU torch
    before what depends on it); a plain string is one step of its own. Stored as tuples."""
    probe: str | None = None
    """A module whose successful import marks an environment made before markers existed as
    ready (its marker is then written)."""

    MARKER = ".accelrl-bench-ready"

    def __post_init__(self):
        steps = tuple((r,) if isinstance(r, str) else tuple(r) for r in self.requirements)
        if not steps or not all(steps):
            raise ValueError(f"requirements must be non-empty pip install steps: {steps!r}")
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "requirements", steps)

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.path / "bin" / "python"

    @property
    def marker(self) -> Path:
        """Written after a successful set-up; holds the requirements as JSON."""
        return self.path / self.MARKER

    def _marker_text(self) -> str:
        return json.dumps([list(r) for r in self.requirements])

    def setup_commands(self) -> list[list[str]]:
        """The commands :meth:`ensure` runs to create the environment, in order."""
        cmds = [[sys.executable, "-m", "venv", "--clear", str(self.path)]]
        for reqs in self.requirements:
            cmds.append([str(self.python), "-m", "pip", "install", "-q", *reqs])
        return cmds

    def is_ready(self) -> bool:
        """Whether the environment exists with these requirements (see :attr:`probe`)."""
        if not self.python.exists():
            return False
        if self.marker.exists():
            return self.marker.read_text() == self._marker_text()
        if self.probe is not None:
            check = [str(self.python), "-c", f"import {self.probe}"]
            if subprocess.run(check, capture_output=True, env=self.env()).returncode == 0:
                self.marker.write_text(self._marker_text())
                return True
        return False

    def ensure(self) -> Path:
        """Create the environment unless :meth:`is_ready`; return its interpreter."""
        if self.is_ready():
            return self.python
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create, *installs = self.setup_commands()
        print(f"[setup] creating {self.path}", file=sys.stderr, flush=True)
        subprocess.run(create, check=True)
        for cmd, reqs in zip(installs, self.requirements, strict=True):
            print(
                f"[setup] {self.path.name}: pip install {' '.join(reqs)}",
                file=sys.stderr,
                flush=True,
            )
            subprocess.run(cmd, check=True)
        self.marker.write_text(self._marker_text())
        return self.python

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """This process's environment without ``PYTHONPATH``, updated with ``extra``."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(extra or {})
        return env

    def command(
        self,
        *args: str,
        script: str | os.PathLike | None = None,
        code: str | None = None,
        unbuffered: bool = False,
    ) -> list[str]:
        """The command line running ``script`` (a file) or ``code`` (a string) with ``args``.

        A code string starts with a prelude that makes this helper module importable as
        ``_bench``; a script run by path finds it beside itself when it lives in ``scripts/``.
        """
        if (script is None) == (code is None):
            raise ValueError("give exactly one of script= and code=")
        cmd = [str(self.python)] + (["-u"] if unbuffered else [])
        if script is not None:
            cmd.append(str(script))
        else:
            cmd += ["-c", _helpers_prelude() + code]
        return cmd + [str(a) for a in args]

    def run(
        self,
        *args: str,
        script: str | os.PathLike | None = None,
        code: str | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess:
        """``subprocess.run`` of :meth:`command` under :meth:`env` (``kwargs`` passed on)."""
        return subprocess.run(
            self.command(*args, script=script, code=code), env=self.env(env), **kwargs
        )

    def popen(
        self,
        *args: str,
        script: str | os.PathLike | None = None,
        code: str | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.Popen:
        """``subprocess.Popen`` of :meth:`command` (unbuffered) under :meth:`env`."""
        cmd = self.command(*args, script=script, code=code, unbuffered=True)
        return subprocess.Popen(cmd, env=self.env(env), **kwargs)


# ---------------------------------------------------------------------------------------------
# Generated page blocks (the results protocol)


def add_results_options(parser: Any) -> None:
    """Add the options every results script shares to an ``argparse`` parser:
    ``--allow_dirty`` (write a results file from uncommitted changes; the page says so),
    ``--from_results PATH`` (re-render the page from a raw results file alone) and ``--page``
    (with ``--from_results``: the page to rewrite, default the record's)."""
    parser.add_argument("--allow_dirty", action="store_true", help="run from uncommitted changes")
    parser.add_argument("--from_results", type=Path, default=None, help="only re-render the page")
    parser.add_argument(
        "--page",
        type=Path,
        default=None,
        help="with --from_results: the page (default: the record's)",
    )


@dataclass(frozen=True)
class ResultsArgs:
    """The same options for the ``tyro``-style scripts: their ``Args`` inherit these fields."""

    allow_dirty: bool = False
    """Run from a tree with uncommitted changes (the block then says so)."""
    from_results: Path | None = None
    """Only re-render the page's block from this raw results file."""
    page: Path | None = None
    """With ``--from_results``: the page to rewrite (default: the record's)."""


def open_results(
    args: Any, argv: Sequence[str], generator: str, page: str, results: str, quick_out: str
) -> tuple[Path, dict[str, Any], bool]:
    """A results script's first step: ``(out, record, allow_dirty)``. ``out`` is ``args.out``,
    else ``quick_out`` for ``--quick`` or the repository's ``results`` file (``check_output``:
    a quick run never writes into docs/); ``record`` the provenance of ``python generator
    *argv``. Refuses a tree with uncommitted changes (``SystemExit``) before any work unless
    ``--allow_dirty`` or ``--quick``."""
    from accelrl.results import REPO, check_output

    out = Path(args.out or (quick_out if args.quick else REPO / results))
    check_output(out, args.quick)
    record = results_record(["python", generator, *argv], generator, page)
    allow_dirty = args.allow_dirty or args.quick
    if record["clean_tree"] is False and not allow_dirty:
        raise SystemExit("the tree has uncommitted changes: commit them, or pass --allow_dirty")
    return out, record, allow_dirty


def host_load(load_start: tuple[float, ...]) -> dict[str, Any]:
    """The record's ``host``: CPUs and the load average at the start and now."""
    return {"cpus": os.cpu_count(), "load_start": load_start, "load_end": os.getloadavg()}


def close_results(
    out: Path,
    record: dict[str, Any],
    allow_dirty: bool,
    render: Callable[[dict[str, Any]], dict[str, str]],
    results: str,
    page: str,
    show: str | None = None,
) -> None:
    """A results script's last step: write the raw results file, print block ``show`` (if
    given), and render the page's blocks when ``out`` is the repository's ``results`` file."""
    from accelrl.results import REPO, write_results

    blocks = render(record)
    write_results(out, record, allow_dirty=allow_dirty)
    if show is not None:
        print(blocks[show])
    print(f"wrote {out}")
    if Path(out).resolve() == (REPO / results).resolve():
        write_blocks(REPO / page, blocks)
        print(f"rendered {page}")


def results_record(command: str | Sequence[str], generator: str, page: str) -> dict[str, Any]:
    """:func:`accelrl.results.results_record` (imported when called, see the module doc)."""
    from accelrl.results import results_record as record

    return record(command, generator, page)


def write_blocks(page: str | os.PathLike, blocks: Mapping[str, str]) -> Path:
    """:func:`accelrl.results.write_blocks` (imported when called, see the module doc)."""
    from accelrl.results import write_blocks as write

    return write(page, blocks)


def render_from_results(
    path: str | os.PathLike,
    render: Callable[[dict[str, Any]], Mapping[str, str]],
    page: str | os.PathLike | None = None,
) -> Path:
    """A script's ``--from_results PATH``: re-render the page's generated blocks from the raw
    results file alone (nothing is run or timed).

    Args:
        path: the raw results file (``docs/results/*.json``).
        render: the script's pure ``record -> {block name: markdown}``.
        page: the page to rewrite (default: the record's ``page``, from the repository root).

    Returns:
        The page's path.

    Raises:
        SystemExit: not a raw results file, no page keys, or the page lacks a block's markers
            (one line).
    """
    from accelrl.results import REPO, check_page_record, load_results, write_blocks

    try:
        record = load_results(path)
        check_page_record(record)
        return write_blocks(REPO / record["page"] if page is None else page, render(record))
    except (OSError, ValueError) as e:
        raise SystemExit(f"--from_results: {e}") from None
