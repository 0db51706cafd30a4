"""XLA flag work-arounds, applied when :mod:`accelrl` is imported (before JAX starts a backend).

XLA reads ``XLA_FLAGS`` once, when the first backend starts, and aborts the whole process on a
flag its build does not know. So a flag is only added while no backend runs yet, and only for
jaxlib versions whose XLA is known to accept it; the installed version is read from the package
metadata, so deciding imports neither jax nor jaxlib.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Workaround:
    """One ``--name=value`` entry of ``XLA_FLAGS`` and the first jaxlib whose XLA accepts it."""

    name: str
    value: str
    minimum: tuple[int, int, int]
    """First jaxlib release known to accept the flag (checked in the released wheels)."""
    reason: str

    @property
    def flag(self) -> str:
        return f"--{self.name}={self.value}"


CPU_SCHEDULER = Workaround(
    "xla_cpu_enable_concurrency_optimized_scheduler",
    "false",
    (0, 4, 30),  # the name is in jaxlib 0.4.30's xla_extension.so and absent from 0.4.29's
    "XLA's CPU 'concurrency optimized' scheduler can wedge the CPU thread pool on vmapped "
    "training programs (SAC vmapped over seeds on jax 0.10.2: all threads idle in futex waits, "
    "forever)",
)
YNN_REDUCE = Workaround(
    "xla_cpu_experimental_ynn_fusion_type",
    "-reduce",  # XLA's default set of YNNPACK fusions minus reductions
    (0, 9, 0),  # the flag is absent from jaxlib 0.8.0; 0.9.0 accepts "-reduce"
    "XLA:CPU hands reductions to YNNPACK (jaxlib 0.10); in the curricula's in-program mixture "
    "fit (small batched reductions in a while loop) each is a thread-pool round trip that also "
    "splits XLA's own fusions: the fit runs 1.5-1.9x faster without them, and the training "
    "programs measured showed no difference beyond process-to-process noise "
    "(scripts/bench_xla_flags.py, docs/xla_flags.md)",
)
WORKAROUNDS = (CPU_SCHEDULER, YNN_REDUCE)
"""Added to ``XLA_FLAGS`` on import, in this order, each where its jaxlib accepts it."""

OPT_OUT_ENV = "ACCELRL_KEEP_XLA_FLAGS"
"""Set to a non-empty value to leave ``XLA_FLAGS`` untouched."""

_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)(.*)")
_PRE_RELEASE = re.compile(r"[.\-_]?(dev|rc|c|a|b|alpha|beta|pre|preview)\d*", re.IGNORECASE)


def flag_supported(
    version: str | None, minimum: tuple[int, int, int] = CPU_SCHEDULER.minimum
) -> bool:
    """Whether a jaxlib of ``version`` accepts the flag (first released in ``minimum``).

    Unknown or unparsable versions and pre-releases of ``minimum`` itself (``0.4.30.dev...``,
    ``0.4.30rc1``) count as unsupported: an unknown flag aborts the process, a missing
    work-around does not.
    """
    match = _RELEASE.match((version or "").strip())
    if match is None:
        return False
    release = tuple(int(g) for g in match.groups()[:3])
    if release == minimum:
        return _PRE_RELEASE.match(match.group(4)) is None
    return release > minimum


def installed_jaxlib_version() -> str | None:
    """jaxlib's version from the installed distribution's metadata (None if not installed)."""
    try:
        return importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return None


def backend_started() -> bool:
    """Whether this process has already started a JAX backend, without starting one."""
    xla_bridge = sys.modules.get("jax._src.xla_bridge")
    if xla_bridge is None:  # jax not imported (or not far enough to start anything)
        return False
    try:
        initialized = getattr(xla_bridge, "backends_are_initialized", None)
        if initialized is not None:
            return bool(initialized())
        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # a private API changed shape: assume nothing started
        return False


def apply_workarounds() -> list[str]:
    """Add each of :data:`WORKAROUNDS` to ``XLA_FLAGS`` where that is safe and wanted.

    Nothing changes when ``ACCELRL_KEEP_XLA_FLAGS`` is set, or when a JAX backend has already
    started (the flags could no longer take effect; this warns). A flag is skipped when
    ``XLA_FLAGS`` already names it (an explicit setting wins) or when the installed jaxlib is
    not known to accept it (an unknown flag aborts the process).

    Returns:
        The flags added.
    """
    if os.environ.get(OPT_OUT_ENV):
        return []
    flags = os.environ.get("XLA_FLAGS", "")
    wanted = [w for w in WORKAROUNDS if w.name not in flags]
    if not wanted:
        return []
    if backend_started():
        warnings.warn(
            f"accelrl was imported after a JAX backend started, so XLA_FLAGS is read already: "
            f"{' '.join(w.flag for w in wanted)} (work-arounds for a CPU thread-pool hang and "
            f"slow CPU reductions, see accelrl._xla) not applied. Import accelrl before running "
            f"JAX code (importing gymnax already starts a backend), or set them in XLA_FLAGS "
            f"yourself ({OPT_OUT_ENV}=1 silences this).",
            stacklevel=2,
        )
        return []
    version = installed_jaxlib_version()
    added = [w.flag for w in wanted if flag_supported(version, w.minimum)]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    return added
