"""Replayed bars as a symbol's price feed (``SimTerminal(data=...)``).

Each bar yields four ticks (bar_prices.py): its open, its low and high in the bar's order, its
close. Bars of longer timeframes are aggregated from the replayed ones; shorter ones do not exist.

``BarPrices`` holds, per bar, what the bar rule of stops.py reads and what the ticks are made of,
computed once for the whole data, so that a stop can be found over thousands of bars with one numpy
comparison. A moment of the replay is the index of its last tick (``last_tick``), found from the
bars' open times without any array of the ticks themselves.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from mt5console.core.broker.sim.bar_prices import TICKS_PER_BAR, BarPrices, tick_offsets_ms
from mt5console.core.broker.sim.csvbars import ReplayBars
from mt5console.core.broker.sim.feed import Bars, FeedError, Quote, Span, Ticks
from mt5console.core.broker.sim.frames import DAY, Frame, bucket_end, first_bucket_at_or_after
from mt5console.core.broker.sim.replay_rates import Rates, ReplayRates
from mt5console.core.broker.sim.symbols import SymbolSpec


class ReplayFeed:
    """Serves the replayed bars of one symbol, revealing only the ticks up to "now"."""

    def __init__(self, spec: SymbolSpec, replay: ReplayBars) -> None:
        self.spec = spec
        self.frame = replay.frame
        self.exported_by_metatrader = replay.exported_by_metatrader
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
        self._length_ms = self.frame.seconds * 1000
        self._tick_offsets = tick_offsets_ms(self._length_ms)
        self.prices = BarPrices.of(self._bars, self._length_ms, spec.point, digits)
        self._rates = ReplayRates(self._bars)
        # The last tick quoted, by index: ticks never change, and a stepped replay quotes the tick
        # its clock stands on many times per step.
        self._quoted: tuple[int, Quote] | None = None
        self._length = len(self._bars)  # asked on every step of a stepped replay

    def __len__(self) -> int:
        return self._length

    def earliest(self) -> int:
        return int(self._bars.time[0])

    def max_spread(self) -> float:
        return float(self._bars.spread.max()) * self.spec.point

    def index_at(self, now_ms: int) -> int:
        """The last bar opening at or before now_ms (-1 before the first)."""
        return int(self.prices.open_ms.searchsorted(now_ms, side="right")) - 1

    def rates(self) -> Rates:
        """Every replayed bar, complete, as copy_rates_* serves them (MetaTrader5 rates dtype): a copy."""
        return self._rates.copy(0, len(self._rates))

    def is_open(self, now_ms: int) -> bool:
        index = self.index_at(now_ms)
        return index >= 0 and now_ms < self.prices.open_ms.item(index) + self._length_ms

    # ---------------------------------------------------------------- ticks

    def last_tick(self, now_ms: int) -> int:
        """The index of the last tick at or before now_ms (-1 before the first): what it reveals of
        the bars (see ``rates_from_pos``) and quotes is all a moment is to this feed.

        A bar's ticks all come before the next bar opens (bars are at least a bar's length apart),
        so the ticks at or before now_ms are those of the bars before the last one opened, and
        those of its ticks whose offset into it has passed.
        """
        bar = self.index_at(now_ms)
        if bar < 0:
            return -1
        seen = bisect_right(self._tick_offsets, now_ms - self.prices.open_ms.item(bar))
        return bar * TICKS_PER_BAR + seen - 1

    def quote(self, now_ms: int) -> Quote | None:
        index = self.last_tick(now_ms)
        return self.tick_quote(index) if index >= 0 else None

    def tick_quote(self, index: int) -> Quote:
        """The quote of tick ``index`` (bar ``index // TICKS_PER_BAR``'s tick ``index % TICKS_PER_BAR``)."""
        quoted = self._quoted
        if quoted is not None and quoted[0] == index:
            return quoted[1]
        quote = self.prices.quote(*divmod(index, TICKS_PER_BAR))
        self._quoted = (index, quote)
        return quote

    def bar_tick(self, bar: int, at_open: bool) -> tuple[int, int]:
        """Bar ``bar``'s open tick (at_open) or its close tick: its index and its time (ms)."""
        if at_open:
            return bar * TICKS_PER_BAR, self.prices.open_ms.item(bar)
        return bar * TICKS_PER_BAR + TICKS_PER_BAR - 1, self.prices.close_ms.item(bar)

    def ticks(self, after_ms: int, until_ms: int, limit: int | None = None) -> Ticks:
        # The bars holding such ticks: from the one open at after_ms (its later ticks) to the one
        # open at until_ms; with a limit, no further than the bars that many ticks can fill.
        first = max(self.index_at(after_ms), 0)
        stop = max(self.index_at(until_ms) + 1, first)
        if limit is not None:
            stop = min(stop, first + limit // TICKS_PER_BAR + 2)
        ticks = self.prices.ticks(first, stop).between(after_ms, until_ms)
        return ticks.head(limit) if limit is not None else ticks

    def spans(self, after_ms: int, until_ms: int) -> list[Span]:
        starts = self.prices.open_ms
        ends = starts + self._length_ms
        keep = (ends > after_ms + 1) & (starts <= until_ms)
        return [
            Span(int(start), int(end), float(low), float(high))
            for start, end, low, high in zip(
                starts[keep],
                ends[keep],
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

    def rates_from_pos(self, frame: Frame, last_tick: int, start_pos: int, count: int) -> Rates | None:
        """copy_rates_from_pos on the replayed timeframe once tick ``last_tick`` is seen (see
        ``last_tick`` and replay_rates.py): rows of the bars, no search. None for another
        timeframe: ``bars`` then aggregates them.
        """
        if frame.value != self.frame.value:
            return None
        return self._rates.from_pos(last_tick, start_pos, count)

    def bars(self, frame: Frame, start: int, end: int, now_ms: int) -> Bars:
        """The bars of ``frame`` opening in [start, end] that have opened by now_ms.

        The replayed timeframe is served as stored, as a terminal serves its history: bars off
        their timeframe's boundaries (H1 bars at :30) keep their own open times. Longer timeframes
        put each bar into the one of their bars that its open time falls in.
        """
        self._check_frame(frame)
        native = frame.value == self.frame.value
        if native:
            first, stop = start, min(end + 1, now_ms // 1000 + 1)
        else:
            first, stop = (
                first_bucket_at_or_after(frame, start),
                min(bucket_end(frame, end), now_ms // 1000 + 1),
            )
        bars, close_ms = self._bars, self.prices.close_ms
        # Times and close times both rise: the bars in range, and the complete ones, are slices
        # (found in O(log n), so a replay asking for a window per bar never scans the whole data).
        low = int(np.searchsorted(bars.time, first, side="left"))
        high = int(np.searchsorted(bars.time, stop, side="left"))
        completed = int(np.searchsorted(close_ms, now_ms, side="right"))
        complete = bars.take(slice(low, max(low, min(high, completed))))
        index = self.index_at(now_ms)
        forming = Bars.empty()
        if index >= 0 and now_ms < close_ms[index] and low <= index < high:
            seen = self.last_tick(now_ms) - index * TICKS_PER_BAR + 1
            o, h, low_price, c, volume = self._rates.forming(index, seen)
            forming = Bars.one(int(bars.time[index]), o, h, low_price, c, volume, int(bars.spread[index]))
        found = Bars.concat([complete, forming])
        return found if native else found.to_frame(frame, start, end)
