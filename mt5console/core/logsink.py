"""Where log lines go besides the screen: the events table and a rotating log file in the data dir.

Every line is on disk before the next event is handled ("it never loses what happened").
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from mt5console.core.events import Event, Level, LogLine, TickUpdated
from mt5console.core.store import Store

LOG_FILE = "mt5console.log"
PRICES_EVERY = timedelta(minutes=1)
# The first prices line waits this long after the first tick, so that the first poll's symbols are in it.
FIRST_PRICES_AFTER = timedelta(seconds=1)


def format_line(line: LogLine) -> str:
    stamp = line.time.strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}Z {line.level.value:<7} {line.source:<9} {line.message}"


class FrontEndLines:
    """The lines a front end (the log pane, headless stdout) shows for the runtime's events.

    Every LogLine at INFO and above. With ``verbose``: DEBUG lines too, and the last quote of every
    symbol in one ``prices`` line a minute. A line per tick (six a second on six symbols) buried the
    per-bar lines that verbose is for; the screen shows live prices in its panes anyway.
    """

    def __init__(self, *, verbose: bool, prices_every: timedelta = PRICES_EVERY) -> None:
        self._verbose = verbose
        self._prices_every = prices_every
        self._quotes: dict[str, str] = {}
        self._prices_due: datetime | None = None

    def line(self, event: Event) -> LogLine | None:
        if isinstance(event, LogLine):
            return event if (event.level is not Level.DEBUG or self._verbose) else None
        if isinstance(event, TickUpdated) and self._verbose:
            return self._prices(event)
        return None

    def _prices(self, event: TickUpdated) -> LogLine | None:
        tick = event.tick
        self._quotes[tick.symbol] = f"{tick.bid}/{tick.ask}"
        if self._prices_due is None:
            self._prices_due = event.time + FIRST_PRICES_AFTER
            return None
        if event.time < self._prices_due:
            return None
        self._prices_due = event.time + self._prices_every
        quotes = "  ".join(f"{symbol} {quote}" for symbol, quote in self._quotes.items())
        return LogLine(level=Level.DEBUG, source="prices", message=quotes, time=event.time)


class KeptOpenRotation(logging.handlers.RotatingFileHandler):
    """A rotating log file that goes on being written when its rollover cannot rename it.

    Windows refuses to rename a file another program holds open (a trader following the log with
    ``Get-Content -Wait``, an editor): the stock handler then lost every later line, each with a
    traceback on stderr; and as it shifts the backups before it moves the live file, each attempt cost
    the oldest backup. Here the live file is moved aside first, and only then are the backups shifted;
    when it cannot be moved, the file grows on past its size, the refusal is written into it once, and
    the rollover is tried again after RETRY_SECONDS.
    """

    RETRY_SECONDS = 60.0

    def __init__(self, filename: Path, *, max_bytes: int, backup_count: int) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self._retry_at = 0.0
        self._refusal_said = False

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return time.monotonic() >= self._retry_at and bool(super().shouldRollover(record))

    def doRollover(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        moving = f"{self.baseFilename}.rotating"
        try:
            os.replace(self.baseFilename, moving)
        except OSError as error:
            self._refused(error)
            return
        try:
            for number in range(self.backupCount - 1, 0, -1):
                older = f"{self.baseFilename}.{number}"
                if os.path.exists(older):
                    os.replace(older, f"{self.baseFilename}.{number + 1}")
            os.replace(moving, f"{self.baseFilename}.1")
        except OSError as error:  # a backup held open: the live file goes back, nothing is lost
            with contextlib.suppress(OSError):
                os.replace(moving, self.baseFilename)
            self._refused(error)
            return
        self.stream = self._open()

    def _refused(self, error: OSError) -> None:
        self._retry_at = time.monotonic() + self.RETRY_SECONDS
        self.stream = self._open()
        if not self._refusal_said:
            self._refusal_said = True
            self.stream.write(
                f"(the log file could not be rotated: {error}; is it open in another program? "
                f"writing on in this file, and trying again every {self.RETRY_SECONDS:.0f} s)\n"
            )


class LogSink:
    """An event subscriber writing LogLines to SQLite and to ``logs/mt5console.log``."""

    def __init__(
        self, store: Store, log_dir: Path, *, verbose: bool = False, max_bytes: int = 5_000_000
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self._store = store
        self._verbose = verbose
        self._file = KeptOpenRotation(log_dir / LOG_FILE, max_bytes=max_bytes, backup_count=5)
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
