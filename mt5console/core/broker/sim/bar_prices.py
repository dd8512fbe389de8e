"""The four ticks of every replayed bar, as columns over the bars.

Each bar yields four ticks, as MetaTrader's tester does in "1 minute OHLC" mode: the open at the
bar's start, then the low and the high (the high first on a bearish bar) a third and two thirds into
the bar, then the close one second before the bar ends. Ask = bid + the bar's spread (points),
rounded to the symbol's digits.

The ticks are kept per bar (an open, a low, a high and a close column of bids, asks and times)
rather than as one array of four ticks per bar: a stepped replay only ever stands on a bar's open
or its close, and the bar rule of stops.py reads whole bars, so the tick arrays are built only for
the bars a caller asks ticks of (``ticks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from mt5console.core.broker.sim.feed import Bars, Quote, Ticks

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
A = TypeVar("A", npt.NDArray[np.int64], npt.NDArray[np.float64])
TICKS_PER_BAR: Final = 4


def tick_offsets_ms(length_ms: int) -> tuple[int, int, int, int]:
    """When a bar's four ticks come, in ms after its open: the open, a third and two thirds into
    the bar, and one second before its end."""
    return 0, length_ms // 3, 2 * length_ms // 3, length_ms - 1000


@dataclass(frozen=True, slots=True)
class BarPrices:
    """Columns over every replayed bar: bid and ask of its four ticks, and their times (ms)."""

    bid_open: F64
    bid_high: F64
    bid_low: F64
    bid_close: F64
    ask_open: F64
    ask_high: F64
    ask_low: F64
    ask_close: F64
    open_ms: I64
    low_ms: I64
    high_ms: I64
    close_ms: I64
    first_extreme_ms: I64  # the earlier of low_ms and high_ms: a third into the bar
    bullish: npt.NDArray[np.bool_]  # close >= open: the low comes before the high
    # For stops.first_bar_hit's search, one comparison per window of bars: per bar, what reaches a
    # stop and what reaches a target, both as "at or below a level" (a high at or above a level is
    # its negation at or below the level's; negating is exact), so that one ``<=`` against the two
    # levels marks the bars reaching either. A buy's are [bid_low, -bid_high], a sell's
    # [-ask_high, ask_low].
    buy_reach: F64
    sell_reach: F64
    # Where first_bar_hit puts the two levels it compares a window with: a two-float array of its
    # own, since numpy converts a tuple of two floats anew on every comparison, at several times the
    # comparison's cost. Scratch, like the feed's other per-call state: the simulator is called from
    # one thread, as the module it stands for must be.
    limits: F64 = field(default_factory=lambda: np.empty(2))

    @staticmethod
    def of(bars: Bars, length_ms: int, point: float, digits: int) -> BarPrices:
        """The ticks of ``bars`` (bid prices, already rounded to ``digits``) of ``length_ms`` each."""
        bullish = bars.close >= bars.open
        spread: F64 = bars.spread.astype(np.float64) * point  # price units

        def ask(bid: F64) -> F64:
            return np.round(bid + spread, digits)

        ask_high, ask_low = ask(bars.high), ask(bars.low)
        _, first, second, last = tick_offsets_ms(length_ms)
        open_ms = bars.time * 1000
        first_ms, second_ms = open_ms + first, open_ms + second
        return BarPrices(
            bid_open=bars.open,
            bid_high=bars.high,
            bid_low=bars.low,
            bid_close=bars.close,
            ask_open=ask(bars.open),
            ask_high=ask_high,
            ask_low=ask_low,
            ask_close=ask(bars.close),
            open_ms=open_ms,
            low_ms=np.where(bullish, first_ms, second_ms),
            high_ms=np.where(bullish, second_ms, first_ms),
            close_ms=open_ms + last,
            first_extreme_ms=first_ms,
            bullish=bullish,
            buy_reach=np.column_stack([bars.low, -bars.high]),
            sell_reach=np.column_stack([-ask_high, ask_low]),
        )

    def __len__(self) -> int:
        return int(self.open_ms.size)

    def quote(self, bar: int, tick: int) -> Quote:
        """Bar ``bar``'s tick ``tick`` (0: the open ... TICKS_PER_BAR - 1: the close)."""
        if tick == 0:
            times, bids, asks = self.open_ms, self.bid_open, self.ask_open
        elif tick == TICKS_PER_BAR - 1:
            times, bids, asks = self.close_ms, self.bid_close, self.ask_close
        elif (tick == 1) == self.bullish.item(bar):  # the low: first on a bullish bar
            times, bids, asks = self.low_ms, self.bid_low, self.ask_low
        else:
            times, bids, asks = self.high_ms, self.bid_high, self.ask_high
        return Quote(times.item(bar), bids.item(bar), asks.item(bar))

    def ticks(self, first: int, stop: int) -> Ticks:
        """The ticks of bars [first, stop), in time order."""
        bars = slice(first, stop)
        bullish = self.bullish[bars]
        return Ticks(
            _in_time_order(
                bullish, self.open_ms[bars], self.low_ms[bars], self.high_ms[bars], self.close_ms[bars]
            ),
            _in_time_order(
                bullish, self.bid_open[bars], self.bid_low[bars], self.bid_high[bars], self.bid_close[bars]
            ),
            _in_time_order(
                bullish, self.ask_open[bars], self.ask_low[bars], self.ask_high[bars], self.ask_close[bars]
            ),
        )


def _in_time_order(bullish: npt.NDArray[np.bool_], open_: A, low: A, high: A, close: A) -> A:
    """One column per tick of each bar (its open, low, high, close) as one array of the ticks in
    time order: bar by bar, the open, the extreme that comes first, the other one, the close."""
    first, second = np.where(bullish, low, high), np.where(bullish, high, low)
    ordered: A = np.stack([open_, first, second, close], axis=1).ravel()
    return ordered
