"""One terminal per state file: a second one would trade the same account from a stale copy of it.

Two terminals on one file each keep the account in memory: one closes a position, the other (which
still has it open) modifies or closes it again and writes it back, and after a restart a closed
position is open again with its loss already in the balance. So a terminal holds an OS file lock
(filelock: fcntl on POSIX, msvcrt on Windows) on ``<state file>.lock`` from ``initialize()`` to
``shutdown()``; the OS frees it when the process ends, however it ends (a kill -9 leaves no stale
lock). Beside it, ``<state file>.pid`` says who holds it, for the message a second terminal gets.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout


class StateFileLock:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self._holder = state_path.with_name(state_path.name + ".pid")
        # thread_local=False: the console calls initialize() and shutdown() on its terminal thread,
        # a script may call them on any thread; the lock belongs to the terminal, not to a thread.
        self._lock = FileLock(state_path.with_name(state_path.name + ".lock"), timeout=0, thread_local=False)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> str | None:
        """Take the state file: None when taken (or already held), else why not, naming the file."""
        if self._lock.is_locked:
            return None
        try:
            self._lock.acquire()
        except Timeout:  # before OSError: filelock's Timeout is a TimeoutError, an OSError
            return (
                f"the simulator's state file {self.state_path} is in use by another simulated terminal "
                f"({self._holder_text()}): one account file has one terminal at a time; stop the other "
                "one, or give this one another state file (--sim-state)"
            )
        except OSError as error:  # a read-only or network drive that refuses locks
            return (
                f"cannot lock the simulator's state file {self.state_path} ({error}); "
                "give a local, writable one"
            )
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        try:
            self._holder.write_text(f"pid {os.getpid()}, started {started}\n", encoding="utf-8")
        except OSError:
            pass  # the lock is what counts; the note only makes the message friendlier
        return None

    def release(self) -> None:
        if self._lock.is_locked:
            self._holder.unlink(missing_ok=True)
            self._lock.release(force=True)

    def _holder_text(self) -> str:
        try:
            return self._holder.read_text(encoding="utf-8").strip() or "its pid is not known"
        except OSError:
            return "its pid is not known"
