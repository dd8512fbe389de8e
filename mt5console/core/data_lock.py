"""One console per data dir: a second one on the same dir would trade the same strategies again.

The lock is an OS file lock (filelock: fcntl on POSIX, msvcrt on Windows) on ``<data dir>/mt5console.lock``,
held while the console runs and freed by the OS when the process ends, however it ends: a kill -9
leaves no stale lock behind. Beside it, ``mt5console.pid`` says who holds it, for the message.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from filelock import FileLock, Timeout

LOCK_FILE: Final = "mt5console.lock"
HOLDER_FILE: Final = "mt5console.pid"


class DataDirUnavailable(Exception):
    """The data dir cannot be taken; the message says why and what to do."""


class DataDirInUse(DataDirUnavailable):
    """Another console holds the data dir; the message names it and what to do."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = FileLock(data_dir / LOCK_FILE, timeout=0)

    def acquire(self) -> None:
        """Take the data dir, or raise DataDirInUse at once (no waiting)."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except Timeout:  # before OSError: filelock's Timeout is a TimeoutError, an OSError
            raise DataDirInUse(
                f"the data dir {self.data_dir} is in use by another mt5console ({self._holder()}): two "
                "consoles on one data dir would trade the same strategies twice; stop the other one, "
                "or give this one another --data-dir"
            ) from None
        except OSError as error:  # a read-only or network drive that refuses locks
            raise DataDirUnavailable(
                f"cannot lock the data dir {self.data_dir} ({error}); give a local, writable --data-dir"
            ) from None
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        (self.data_dir / HOLDER_FILE).write_text(f"pid {os.getpid()}, started {started}\n", encoding="utf-8")

    def release(self) -> None:
        if self._lock.is_locked:
            (self.data_dir / HOLDER_FILE).unlink(missing_ok=True)
            self._lock.release()

    def _holder(self) -> str:
        try:
            return (self.data_dir / HOLDER_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return "its pid is not known"
