"""What each strategy last signalled and was last refused, read back from the stored log.

A runner's status (its last signal and refusal) lives in memory: after a restart a stopped strategy
has no runner, and a restored one starts with a blank status, so their rows would say "—" although
the strategy did signal. The executor logs every signal and refusal, and the log sink keeps those
lines in the store's events table: the latest of them say what the rows said before the restart.
The lines are read by their shape, as the replay reads the refusals (``ENTRY_BLOCKED``); a change of
that shape shows up in this module's tests.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Protocol

from mt5console.core.strategy.executor import ENTRY_BLOCKED, RunnerStatus

# As the executor says a signal it acted on: "buy signal on EURUSD M1: <the conditions' trace>". One
# it did not take reads "... M1 not taken: ...", which this does not match (the symbol and timeframe
# are single words before the colon).
SIGNAL_LINE = re.compile(r"(buy|sell) signal on (\S+) (\S+): (.+)", re.DOTALL)
EVENTS_READ = 5000  # the latest stored log lines read at start; an older signal is not looked for


class StoredLine(Protocol):
    @property
    def time(self) -> datetime: ...
    @property
    def source(self) -> str: ...
    @property
    def message(self) -> str: ...


def last_activity(lines: Iterable[StoredLine], strategy_ids: Collection[str]) -> dict[str, RunnerStatus]:
    """The last signal and refusal of each of ``strategy_ids`` in ``lines`` (oldest first), as the
    runner's status would hold them; strategies without either are left out."""
    found: dict[str, RunnerStatus] = {}
    for line in lines:
        if line.source not in strategy_ids:
            continue
        signal = SIGNAL_LINE.fullmatch(line.message)
        if signal is not None:
            status = found.setdefault(line.source, RunnerStatus())
            status.last_signal = f"{signal[1]} {signal[4]}"  # as the runner words it
            status.last_signal_time = line.time
        elif line.message.startswith(ENTRY_BLOCKED):
            status = found.setdefault(line.source, RunnerStatus())
            status.last_blocked = line.message[len(ENTRY_BLOCKED) :]
            status.last_blocked_time = line.time
    return found
