"""Replayed bars as a symbol's price feed (``SimTerminal(data=...)``).

Each bar yields four ticks, as MetaTrader's tester does in "1 minute OHLC" mode: the open at the
bar's start, then the low and the high (the high first on a bearish bar) a third and two thirds into
the bar, then the close one second before the bar ends. Ask = bid + the row's spread (points). Bars
of longer timeframes are aggregated from the replayed ones; shorter ones do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mt5console.core.broker.sim.csvbars import ReplayBars
from mt5console.core.broker.sim.feed import Bars, FeedError, Quote, Span, Ticks
from mt5console.core.broker.sim.frames import DAY, Frame, bucket_end, first_bucket_at_or_after
from mt5console.core.broker.sim.symbols import SymbolSpec

TICKS_PER_BAR = 4


@dataclass(frozen=True, slots=True)
class ReplayBar:
    """One replayed bar with the times (ms) of its derived ticks."""

    index: int
    time: int  # open time, epoch s
    open: float
    high: float
    low: float
    close: float
    spread: float  # price units
    open_ms: int
    low_ms: int
    high_ms: int
    close_ms: int


class ReplayFeed:
    """Serves the replayed bars of one symbol, revealing only the ticks up to "now"."""

    def __init__(self, spec: SymbolSpec, replay: ReplayBars) -> None:
        self.spec = spec
        self.frame = replay.frame
        raw, digits = replay.bars, spec.digits
        self._bars = Bars(
            raw.time,
            np.round(raw.open, digits),
            np.round(raw.high, digits),
            np.round(raw.low, digits),
            np.round(raw.close, digits),
            raw.volume,
            raw.spread,
        )
        bars, length_ms = self._bars, self.frame.seconds * 1000
        bullish = bars.close >= bars.open
        first_extreme = np.where(bullish, bars.low, bars.high)
        second_extreme = np.where(bullish, bars.high, bars.low)
        offsets = np.array([0, length_ms // 3, 2 * length_ms // 3, length_ms - 1000], dtype=np.int64)
        times = (bars.time[:, None] * 1000 + offsets[None, :]).ravel()
        bids = np.stack([bars.open, first_extreme, second_extreme, bars.close], axis=1).ravel()
        asks = np.round(bids + np.repeat(bars.spread, TICKS_PER_BAR) * spec.point, digits)
        self._ticks = Ticks(times, bids, asks)
        self._starts_ms = bars.time * 1000
        self._ends_ms = self._starts_ms + length_ms

    def __len__(self) -> int:
        return len(self._bars)

    def earliest(self) -> int:
        return int(self._bars.time[0])

    def max_spread(self) -> float:
        return float(self._bars.spread.max()) * self.spec.point

    def _index_at(self, now_ms: int) -> int:
        """The last bar opening at or before now_ms (-1 before the first)."""
        return int(np.searchsorted(self._starts_ms, now_ms, side="right")) - 1

    def is_open(self, now_ms: int) -> bool:
        index = self._index_at(now_ms)
        return index >= 0 and now_ms < int(self._ends_ms[index])

    def bar(self, index: int) -> ReplayBar:
        b, t = self._bars, self._ticks.time_msc
        bullish = b.close[index] >= b.open[index]
        first, second = int(t[index * 4 + 1]), int(t[index * 4 + 2])
        return ReplayBar(
            index=index,
            time=int(b.time[index]),
            open=float(b.open[index]),
            high=float(b.high[index]),
            low=float(b.low[index]),
            close=float(b.close[index]),
            spread=float(b.spread[index]) * self.spec.point,
            open_ms=int(t[index * 4]),
            low_ms=first if bullish else second,
            high_ms=second if bullish else first,
            close_ms=int(t[index * 4 + 3]),
        )

    # ---------------------------------------------------------------- ticks

    def quote(self, now_ms: int) -> Quote | None:
        index = int(np.searchsorted(self._ticks.time_msc, now_ms, side="right")) - 1
        if index < 0:
            return None
        return Quote(
            int(self._ticks.time_msc[index]), float(self._ticks.bid[index]), float(self._ticks.ask[index])
        )

    def ticks(self, after_ms: int, until_ms: int, limit: int | None = None) -> Ticks:
        ticks = self._ticks.between(after_ms, until_ms)
        return ticks.head(limit) if limit is not None else ticks

    def spans(self, after_ms: int, until_ms: int) -> list[Span]:
        keep = (self._ends_ms > after_ms + 1) & (self._starts_ms <= until_ms)
        return [
            Span(int(start), int(end), float(low), float(high))
            for start, end, low, high in zip(
                self._starts_ms[keep],
                self._ends_ms[keep],
                self._bars.low[keep],
                self._bars.high[keep],
                strict=True,
            )
        ]

    # ---------------------------------------------------------------- bars

    def _check_frame(self, frame: Frame) -> None:
        base = self.frame
        if frame.name in ("W1", "MN1"):
            fits = DAY % base.seconds == 0
        else:
            fits = frame.seconds >= base.seconds and frame.seconds % base.seconds == 0
        if not fits:
            raise FeedError(
                f"no {frame.name} bars for {self.spec.name}: the replayed data is {base.name}, "
                f"and only whole multiples of it can be built from it"
            )

    def bars(self, frame: Frame, start: int, end: int, now_ms: int) -> Bars:
        self._check_frame(frame)
        first = first_bucket_at_or_after(frame, start)
        stop = min(bucket_end(frame, end), now_ms // 1000 + 1)
        bars = self._bars
        close_ms = self._ticks.time_msc[TICKS_PER_BAR - 1 :: TICKS_PER_BAR]
        in_range = (bars.time >= first) & (bars.time < stop)
        complete = bars.take(in_range & (close_ms <= now_ms))
        index = self._index_at(now_ms)
        forming = Bars.empty()
        if index >= 0 and now_ms < close_ms[index] and in_range[index]:
            seen = self._ticks.between(int(self._starts_ms[index]) - 1, now_ms)
            share = int(np.ceil(bars.volume[index] * len(seen) / TICKS_PER_BAR))
            forming = seen.to_bar(int(bars.time[index]), share, int(bars.spread[index]))
        return Bars.concat([complete, forming]).to_frame(frame, start, end)
