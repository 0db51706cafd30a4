"""JAX's persistent compilation cache for the command-line tools.

A repeated run, a resumed run, an evaluation and every tuning trial with the same shapes
compile the same programs; with the cache they load them from disk instead. The tools call
:func:`enable_compilation_cache` before building anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

OPT_OUT = "ACCELRL_NO_COMPILE_CACHE"
"""Set to ``1`` to leave JAX's compilation cache off."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/accelrl/jax`` (``~/.cache/accelrl/jax`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "accelrl" / "jax"


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache, caching every program (JAX's default
    threshold of 1 s compile time would leave small programs uncached).

    The user's own setting wins: with ``ACCELRL_NO_COMPILE_CACHE=1`` nothing changes, and a
    cache directory already set (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is kept.

    Returns:
        The cache directory in use, or None when the cache stays off.
    """
    if os.environ.get(OPT_OUT, "").strip() not in ("", "0"):
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    directory = Path(path) if path is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return directory


__all__ = ["OPT_OUT", "default_cache_dir", "enable_compilation_cache"]
