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

CPU_SCHEDULER_FLAG_NAME = "xla_cpu_enable_concurrency_optimized_scheduler"
CPU_SCHEDULER_FLAG = f"--{CPU_SCHEDULER_FLAG_NAME}=false"
"""XLA's CPU "concurrency optimized" scheduler can wedge the CPU thread pool on vmapped training
programs (seen with SAC vmapped over seeds on jax 0.10.2: all threads idle in futex waits,
forever), so accelrl turns it off."""

CPU_SCHEDULER_MIN_JAXLIB = (0, 4, 30)
"""First jaxlib whose XLA knows the flag (checked in the released wheels: the flag's name is in
jaxlib 0.4.30's ``xla_extension.so`` and absent from 0.4.29's)."""

OPT_OUT_ENV = "ACCELRL_KEEP_XLA_FLAGS"
"""Set to a non-empty value to leave ``XLA_FLAGS`` untouched."""

_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)(.*)")
_PRE_RELEASE = re.compile(r"[.\-_]?(dev|rc|c|a|b|alpha|beta|pre|preview)\d*", re.IGNORECASE)


def flag_supported(
    version: str | None, minimum: tuple[int, int, int] = CPU_SCHEDULER_MIN_JAXLIB
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


def apply_cpu_scheduler_workaround() -> bool:
    """Add :data:`CPU_SCHEDULER_FLAG` to ``XLA_FLAGS`` where that is safe and wanted.

    Nothing changes when ``ACCELRL_KEEP_XLA_FLAGS`` is set, when ``XLA_FLAGS`` already sets the
    flag (an explicit setting wins), when a JAX backend has already started (the flag could no
    longer take effect; this warns), or when the installed jaxlib is not known to accept the
    flag.

    Returns:
        Whether the flag was added.
    """
    if os.environ.get(OPT_OUT_ENV):
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if CPU_SCHEDULER_FLAG_NAME in flags:
        return False
    if backend_started():
        warnings.warn(
            f"accelrl was imported after a JAX backend started, so XLA_FLAGS is read already: "
            f"{CPU_SCHEDULER_FLAG} (a work-around for a CPU thread-pool hang) is not applied. "
            f"Import accelrl before running JAX code (importing gymnax already starts a "
            f"backend), or set it in XLA_FLAGS yourself ({OPT_OUT_ENV}=1 silences this).",
            stacklevel=2,
        )
        return False
    if not flag_supported(installed_jaxlib_version()):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {CPU_SCHEDULER_FLAG}".strip()
    return True
