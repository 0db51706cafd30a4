"""Test-wide settings."""

import os

import accelrl  # noqa: F401  first: its XLA flag must be set before any JAX backend starts

# The command-line tools turn JAX's persistent compilation cache on; tests that call them
# in-process would otherwise switch it on for the whole test process and fill the user's cache.
# tests/scripts/test_train.py checks the cache itself in a subprocess with its own folder.
os.environ.setdefault("ACCELRL_NO_COMPILE_CACHE", "1")
