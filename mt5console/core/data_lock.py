"""One console per data dir: a second one on the same dir would trade the same strategies again.

The lock (core/file_lock.py) is on ``<data dir>/mt5console.lock``, held while the console runs and freed
by the OS when the process ends, however it ends. Beside it, ``mt5console.pid`` says who holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from mt5console.core.file_lock import LockHeld, NotedFileLock

LOCK_FILE: Final = "mt5console.lock"
HOLDER_FILE: Final = "mt5console.pid"


class DataDirUnavailable(Exception):
    """The data dir cannot be taken; the message says why and what to do."""


class DataDirInUse(DataDirUnavailable):
    """Another console holds the data dir; the message names it and what to do."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = NotedFileLock(data_dir / LOCK_FILE, data_dir / HOLDER_FILE)

    def acquire(self) -> None:
        """Take the data dir, or raise DataDirInUse at once (no waiting)."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except LockHeld as held:
            raise DataDirInUse(
                f"the data dir {self.data_dir} is in use by another mt5console ({held.holder}): two "
                "consoles on one data dir would trade the same strategies twice; stop the other one, "
                "or give this one another --data-dir"
            ) from None
        except OSError as error:  # a read-only or network drive that refuses locks
            if self._lock.held:
                raise  # the lock is taken, its note could not be written: as before, said as it is
            raise DataDirUnavailable(
                f"cannot lock the data dir {self.data_dir} ({error}); give a local, writable --data-dir"
            ) from None

    def release(self) -> None:
        self._lock.release()
