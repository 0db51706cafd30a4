"""What every accelrl command shares: tyro parsing with one flag style, one-line usage errors,
and one exit path for the library's errors and for Ctrl-C.

Flags are flat and spelt with underscores in ``--help`` (``--total_timesteps``); the dash
spelling (``--total-timesteps``) is accepted too. A usage error is one line,
``PROG: error: REASON`` (tyro's boxed message condensed, its reason kept), exit code 2; a
failure of the run (a bad value found by the library, a busy folder, a damaged checkpoint) is
one line with exit code 1 or 2; Ctrl-C is one line saying how to resume, exit code 130.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Callable
from typing import Any

BOX = re.compile(r"[\u2500-\u257f]")


class UsageError(ValueError):
    """Bad command-line input (reported as one line, exit code 2)."""


class Exit(Exception):
    """Leave the command with ``code`` (``--help`` printed: 0)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def condense(text: str) -> str:
    """tyro's boxed error as one line: its reason, and the first suggestion if any. The box is
    drawn with Unicode (a terminal) or ASCII dashes (a pipe); its top border may carry a title
    ("Value error"), which is dropped."""
    raw = text.splitlines()
    if raw and raw[0].strip()[:1] in ("\u256d", "\u250c", "+", "-") and re.search(r"\w", raw[0]):
        raw = raw[1:]  # the title in the top border
    lines = []
    for line in raw:
        line = BOX.sub("", line).strip().strip("|").strip()
        lines.append("" if re.fullmatch(r"[-+=|\s]*", line) else line)
    blocks: list[list[str]] = [[]]
    for line in lines:
        if not line:
            if blocks[-1]:
                blocks.append([])
            continue
        blocks[-1].append(line)
    blocks = [b for b in blocks if b]
    if not blocks:
        return "invalid arguments"
    head = blocks[0]
    if len(blocks) > 1 and len(head) == 1 and not re.search(r"[:.'-]", head[0]):
        blocks = blocks[1:]  # a title drawn above a rule instead of in the border
    reason = re.sub(r"\s+", " ", " ".join(blocks[0]))
    for block in blocks[1:]:
        if block[0].startswith("Perhaps you meant") and len(block) > 1:
            reason += f" Did you mean: {block[1].split()[0]}?"
            break
    return reason


def parse(
    cls: type, argv: list[str], prog: str, default: Any = None, description: str | None = None
) -> Any:
    """``tyro.cli(cls)`` over ``argv`` with accelrl's flag style.

    Raises:
        UsageError: bad arguments (one line).
        Exit: ``--help`` was printed (code 0).
    """
    import tyro

    if description is not None:
        cls.__doc__ = description
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(
                cls,
                args=argv,
                default=default,
                prog=prog,
                config=(tyro.conf.OmitArgPrefixes,),
                use_underscores=True,
            )
    except SystemExit as e:
        if e.code:
            raise UsageError(condense(captured.getvalue())) from None
        sys.stderr.write(captured.getvalue())
        raise Exit(0) from None


def main_wrapper(
    prog: str, body: Callable[[], int], resume_hint: Callable[[], str] | None = None
) -> int:
    """Run ``body`` and turn every expected failure into one line on stderr and an exit code
    (usage errors and bad values 2; a busy folder, damaged checkpoints, a diverged run 1;
    Ctrl-C 130). Imports nothing heavy: a name error fails before JAX is imported."""
    import warnings

    def one_line(message, category, filename, lineno, line=None):  # no source line
        return f"{prog}: warning: {message}\n"

    warnings.formatwarning = one_line
    try:
        return body()
    except Exit as e:
        return e.code
    except KeyboardInterrupt:
        hint = resume_hint() if resume_hint is not None else ""
        print(f"{prog}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except Exception as e:
        code = _exit_code(e)
        if code is None:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, PermissionError):
            msg = f"cannot write {e.filename}: permission denied"
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return code


def _exit_code(e: Exception) -> int | None:
    """The exit code of an expected failure (None: a bug, shown with its traceback). The
    library's own error classes are looked up only when their modules are loaded."""
    failures = []  # a run that could not go on: exit code 1
    for module, name in (
        ("accelrl.agents.folders", "FolderBusyError"),
        ("accelrl.agents.checkpoint", "CheckpointError"),
        ("accelrl.agents.runner", "NaNError"),
    ):
        if module in sys.modules:
            failures.append(getattr(sys.modules[module], name))
    if isinstance(e, UsageError):
        return 2
    if failures and isinstance(e, tuple(failures)) or isinstance(e, PermissionError):
        return 1
    if isinstance(e, ValueError | TypeError | FileNotFoundError | ImportError | IsADirectoryError):
        return 2
    return None


__all__ = ["Exit", "UsageError", "condense", "main_wrapper", "parse"]
