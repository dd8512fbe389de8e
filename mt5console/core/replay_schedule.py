"""The replay clock's timetable: the bars at whose open the engine might act, found in advance.

The engine acts on a bar's open for the bar that just closed. It can only do something there when
- an entry group holds on the closed bar (the runner then applies the gate, maxPositions, filters,
  stop/target and sizing itself), or
- the strategy has open positions and its exit-condition group holds on the closed bar, or
- the strategy has open positions and partial exits are enabled (judged on each closed bar's high
  and low): then every bar.
On every other bar the engine would evaluate its groups, find them false and return: the replay
skips those bars, and the simulator fast-forwards through them (stops and targets still run).

The groups are evaluated at every bar at once with ``evaluate_all`` over the same full-history
series the runner reads from its primed cache, which agrees bit for bit with the runner's own
``evaluate``: a bar skipped here is a bar on which the runner's evaluation is false.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mt5console.core.strategy.conditions import evaluate_all
from mt5console.core.strategy.indicators import FullHistory
from mt5console.core.strategy.model import Strategy

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Timetable:
    def __init__(self, strategy: Strategy, history: FullHistory, point: float) -> None:
        length = len(history)
        entry: BoolArray = np.zeros(length, dtype=np.bool_)
        for block in strategy.entries:
            entry |= evaluate_all(block.conditions, history.series, point=point, length=length)
        exits = strategy.exits.conditions
        leave: BoolArray = (
            evaluate_all(exits, history.series, point=point, length=length)
            if exits is not None
            else np.zeros(length, dtype=np.bool_)
        )
        self.length = length
        self.entry_signals = int(np.count_nonzero(entry))
        # Bar i closed -> the engine acts at the open of bar i + 1.
        self._entry_turns: IntArray = np.flatnonzero(entry).astype(np.int64) + 1
        self._any_turns: IntArray = np.flatnonzero(entry | leave).astype(np.int64) + 1
        self._every_bar_while_open = strategy.exits.partial.enabled

    def next_turn(self, after: int, positions_open: bool) -> int | None:
        """The first bar after ``after`` at whose open the engine must act; None when none is left.

        ``positions_open``: whether the strategy has positions now. Between two turns positions can
        only close (stops and targets), never open, so a turn chosen because they were open is at
        worst one the engine did not need.
        """
        if positions_open and self._every_bar_while_open:
            turn = after + 1
            return turn if turn < self.length else None
        turns = self._any_turns if positions_open else self._entry_turns
        found = int(np.searchsorted(turns, after, side="right"))
        if found >= len(turns):
            return None
        turn = int(turns[found])
        return turn if turn < self.length else None
