"""Where log lines go besides the screen: the events table and a rotating log file in the data dir.

Every line is on disk before the next event is handled ("it never loses what happened").
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from mt5console.core.events import Event, Level, LogLine
from mt5console.core.store import Store

LOG_FILE = "mt5console.log"


def format_line(line: LogLine) -> str:
    stamp = line.time.strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}Z {line.level.value:<7} {line.source:<9} {line.message}"


class LogSink:
    """An event subscriber writing LogLines to SQLite and to ``logs/mt5console.log``."""

    def __init__(self, store: Store, log_dir: Path, *, verbose: bool = False) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self._store = store
        self._verbose = verbose
        self._file = logging.handlers.RotatingFileHandler(
            log_dir / LOG_FILE, maxBytes=5_000_000, backupCount=5, encoding="utf-8"
        )
        self._file.setFormatter(logging.Formatter("%(message)s"))
        # A private logger so that rotation works and nothing propagates to the root handlers.
        self._logger = logging.Logger(f"mt5console.logfile.{id(self)}")
        self._logger.addHandler(self._file)

    def __call__(self, event: Event) -> None:
        if not isinstance(event, LogLine):
            return
        if event.level is Level.DEBUG and not self._verbose:
            return
        self._store.log_event(event.level.value, event.source, event.message, event.time)
        self._logger.info(format_line(event))

    def close(self) -> None:
        self._file.close()
