"""Run and study folders that cannot be damaged: one writer at a time, checks before writes.

:class:`FolderLock` owns a folder for the length of a ``with`` block: a lock file created
atomically (``O_CREAT | O_EXCL``) holding the owner's process id and host. A second process is
refused with a message naming the owner; a lock left by a process that no longer runs (killed,
crashed) on this host is taken over. :func:`check_new_folder` refuses a folder that already
holds a run or study, and :func:`check_output_path` refuses an output file that would overwrite
a run's own files.
"""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"

PROTECTED = ("config.json", "search.json", "trials.jsonl", "metrics.json", "metrics.csv",
             "tasks.csv", "member.json", "incumbent.json")  # fmt: skip
"""Files of a run or study folder that outputs never overwrite (with ``checkpoints/`` and
snapshot banks)."""


class FolderBusyError(RuntimeError):
    """Another live process holds the folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class FolderLock:
    """Hold ``folder`` (created if missing) for the length of a ``with`` block.

    Args:
        folder: the run or study folder.
        what: ``"run"`` or ``"study"`` (messages).

    Raises:
        FolderBusyError: another live process holds it (its pid, host and start named).
        PermissionError: the folder cannot be written.
    """

    def __init__(self, folder: str | Path, what: str = "run"):
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_FILE
        self._created: bool = False
        self._held = False

    def __enter__(self) -> FolderLock:
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.owner()
                if owner is not None and self._live(owner):
                    since = time.strftime("%H:%M:%S", time.localtime(owner.get("since", 0)))
                    raise FolderBusyError(
                        f"{self.folder} is in use by another accelrl process (pid "
                        f"{owner.get('pid')} on {owner.get('host')}, since {since}); wait for it "
                        f"to finish or stop it (a {self.what} folder has one writer at a time)"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self._held = True
            return self
        raise FolderBusyError(f"could not take the lock of {self.folder}")

    def owner(self) -> dict[str, Any] | None:
        """The lock file's record (None when it is unreadable, e.g. half written)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _live(owner: dict[str, Any]) -> bool:
        if owner.get("host") != socket.gethostname():
            return True  # another machine's process: cannot tell, assume it runs
        pid = owner.get("pid")
        return isinstance(pid, int) and pid != os.getpid() and _alive(pid)

    def __exit__(self, *exc: Any) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False
        if self._created and exc[0] is not None:
            # A run that failed before writing anything leaves no folder behind.
            try:
                self.folder.rmdir()
            except OSError:
                pass


def check_new_folder(folder: str | Path, what: str = "run") -> None:
    """Refuse ``folder`` for a new run or study when it is a file or already holds one.

    Raises:
        ValueError: naming the folder and the way to continue it.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder")
    marker = "config.json" if what == "run" else "search.json"
    if (folder / marker).exists():
        raise ValueError(f"{folder} already holds a {what}; use --resume {folder} or another --out")


def check_output_path(path: str | Path, flag: str = "--output") -> Path:
    """Refuse an output file that would overwrite a run's or study's own files (``config.json``,
    metrics, checkpoints, task logs, a snapshot bank in use). Returns the resolved path.

    Raises:
        ValueError: naming the file.
    """
    resolved = Path(path).absolute()
    if resolved.is_dir():
        raise ValueError(f"{flag} {path} is a folder, not a file")
    parts = resolved.parts
    if "checkpoints" in parts[:-1]:
        raise ValueError(f"{flag} {path} is inside a run's checkpoints; choose another file")
    folder = resolved.parent
    is_run = (folder / "config.json").is_file() or (folder / "search.json").is_file()
    in_member = (folder.parent / "config.json").is_file()
    if resolved.name in PROTECTED and (is_run or in_member or resolved.exists()):
        raise ValueError(f"{flag} {path} would overwrite a run's own {resolved.name}")
    if resolved.is_file() and zipfile.is_zipfile(resolved):  # a snapshot bank (.npz, .bank)
        raise ValueError(f"{flag} {path} is a snapshot bank; a bank is never overwritten")
    return resolved


__all__ = [
    "LOCK_FILE",
    "PROTECTED",
    "FolderBusyError",
    "FolderLock",
    "check_new_folder",
    "check_output_path",
]
