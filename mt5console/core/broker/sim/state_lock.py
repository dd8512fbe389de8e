"""One terminal per state file: a second one would trade the same account from a stale copy of it.

Two terminals on one file each keep the account in memory: one closes a position, the other (which
still has it open) modifies or closes it again and writes it back, and after a restart a closed
position is open again with its loss already in the balance. So a terminal holds a file lock
(core/file_lock.py, as the console's data dir does) on ``<state file>.lock`` from ``initialize()`` to
``shutdown()``, freed by the OS however the process ends. Beside it, ``<state file>.pid`` says who
holds it, for the message a second terminal gets.
"""

from __future__ import annotations

from pathlib import Path

from mt5console.core.file_lock import LockHeld, NotedFileLock


class StateFileLock:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        # thread_local=False: the console calls initialize() and shutdown() on its terminal thread,
        # a script may call them on any thread; the lock belongs to the terminal, not to a thread.
        self._lock = NotedFileLock(
            state_path.with_name(state_path.name + ".lock"),
            state_path.with_name(state_path.name + ".pid"),
            thread_local=False,
        )

    @property
    def held(self) -> bool:
        return self._lock.held

    def acquire(self) -> str | None:
        """Take the state file: None when taken (or already held), else why not, naming the file."""
        if self._lock.held:
            return None
        try:
            self._lock.acquire()
        except LockHeld as held:
            return (
                f"the simulator's state file {self.state_path} is in use by another simulated terminal "
                f"({held.holder}): one account file has one terminal at a time; stop the other "
                "one, or give this one another state file (--sim-state)"
            )
        except OSError as error:
            if self._lock.held:
                return None  # taken; only its note was not written, which just makes messages friendlier
            return (  # a read-only or network drive that refuses locks
                f"cannot lock the simulator's state file {self.state_path} ({error}); "
                "give a local, writable one"
            )
        return None

    def release(self) -> None:
        self._lock.release(force=True)
