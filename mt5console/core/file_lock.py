"""An OS file lock that says who holds it: one owner for a data dir, or for a simulator's state file.

The lock is filelock's (fcntl on POSIX, msvcrt on Windows), freed by the OS when the process ends,
however it ends: a kill -9 leaves no stale lock. Beside it, a note (``pid N, started ...``) says who
holds it, for the message a second owner gets.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout


class LockHeld(Exception):
    """Another owner holds the lock; ``holder`` is its note ("pid N, started ...")."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class NotedFileLock:
    def __init__(self, lock_path: Path, note_path: Path, *, thread_local: bool = True) -> None:
        self.note_path = note_path
        self._lock = FileLock(lock_path, timeout=0, thread_local=thread_local)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> None:
        """Take the lock at once, then write the note. LockHeld when another owner has it; OSError
        when the lock cannot be taken (a read-only or network drive), or the note not written (the
        lock is then held: ``held`` says so)."""
        try:
            self._lock.acquire()
        except Timeout:  # before OSError: filelock's Timeout is a TimeoutError, an OSError
            raise LockHeld(self.holder()) from None
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.note_path.write_text(f"pid {os.getpid()}, started {started}\n", encoding="utf-8")

    def release(self, *, force: bool = False) -> None:
        if self._lock.is_locked:
            self.note_path.unlink(missing_ok=True)
            self._lock.release(force=force)

    def holder(self) -> str:
        try:
            return self.note_path.read_text(encoding="utf-8").strip() or "its pid is not known"
        except OSError:
            return "its pid is not known"
