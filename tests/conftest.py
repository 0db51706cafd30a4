"""Test-wide settings."""

import os
import sys
from pathlib import Path

import pytest

import accelrl  # noqa: F401  first: its XLA flag must be set before any JAX backend starts

# The command-line tools turn JAX's persistent compilation cache on; tests that call them
# in-process would otherwise switch it on for the whole test process and fill the user's cache.
# tests/scripts/test_train.py checks the cache itself in a subprocess with its own folder.
os.environ.setdefault("ACCELRL_NO_COMPILE_CACHE", "1")


class Interrupted(Exception):
    """Raised by :func:`interrupt_run`'s callback: a process dying mid-run."""


@pytest.fixture
def interrupt_run():
    """``interrupt_run(agent, seeds, out_dir, hparams=None)``: a 2-segment run that dies in its
    second segment, after the first segment's checkpoint (callbacks run before checkpoints)."""

    def run(agent, seeds, out_dir, hparams=None):
        from accelrl.agents import Runner

        calls = []

        def die(runner, state, seg):
            calls.append(1)
            if len(calls) == 2:
                raise Interrupted

        runner = Runner(agent, seeds, hparams, out_dir=out_dir, segments=2, checkpoint_every=1,
                        progress=False, on_segment=die)  # fmt: skip
        with pytest.raises(Interrupted):
            runner.train()

    return run


# The benchmark and experiment scripts live outside the package (the wheel leaves them out) and
# import their siblings by bare name, as they do when run by path: their tests import them so.
_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
for _folder in ("bench", "experiments"):
    if str(_SCRIPTS / _folder) not in sys.path:
        sys.path.insert(0, str(_SCRIPTS / _folder))
