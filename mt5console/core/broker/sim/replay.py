"""Replayed bars as a symbol's price feed (``SimTerminal(data=...)``).

Each bar yields four ticks, as MetaTrader's tester does in "1 minute OHLC" mode: the open at the
bar's start, then the low and the high (the high first on a bearish bar) a third and two thirds into
the bar, then the close one second before the bar ends. Ask = bid + the row's spread (points). Bars
of longer timeframes are aggregated from the replayed ones; shorter ones do not exist.

``BarPrices`` holds, per bar, what the bar rule of stops.py reads (bid and ask open/high/low, the
times of the ticks it dates hits at), computed once for the whole data, so that a stop can be found
over thousands of bars with one numpy comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mt5console.core.broker.sim.csvbars import ReplayBars
from mt5console.core.broker.sim.feed import Bars, FeedError, Quote, Span, Ticks
from mt5console.core.broker.sim.frames import DAY, Frame, bucket_end, bucket_starts, first_bucket_at_or_after
from mt5console.core.broker.sim.replay_rates import TICKS_PER_BAR, Rates, ReplayRates
from mt5console.core.broker.sim.symbols import SymbolSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


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


@dataclass(frozen=True, slots=True)
class BarPrices:
    """Columns over every replayed bar: bid and ask (= the ticks' ask) prices and tick times (ms)."""

    bid_open: F64
    bid_high: F64
    bid_low: F64
    ask_open: F64
    ask_high: F64
    ask_low: F64
    open_ms: I64
    low_ms: I64
    high_ms: I64
    close_ms: I64
    first_extreme_ms: I64  # the earlier of low_ms and high_ms: a third into the bar
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

    def __len__(self) -> int:
        return int(self.open_ms.size)


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
        self.prices = self._bar_prices(bullish)
        # Bars opening on their own timeframe's boundaries are served as they are in that timeframe
        # (aggregating them into it would change nothing).
        self._aligned = bool(np.all(bucket_starts(self.frame, bars.time) == bars.time))
        self._rates = ReplayRates(bars, self._ticks)
        # The last tick quoted, by index: ticks never change, and a stepped replay quotes the tick
        # its clock stands on many times per step.
        self._quoted: tuple[int, Quote] | None = None
        self._length = len(bars)  # asked on every step of a stepped replay

    def _bar_prices(self, bullish: npt.NDArray[np.bool_]) -> BarPrices:
        bars, times = self._bars, self._ticks.time_msc.reshape(-1, TICKS_PER_BAR)
        asks = self._ticks.ask.reshape(-1, TICKS_PER_BAR)
        # Ticks 1 and 2 are the low and the high, in the bar's order: the asks are the ticks' own.
        first_ask, second_ask = asks[:, 1], asks[:, 2]
        first_ms, second_ms = times[:, 1], times[:, 2]
        ask_high = np.where(bullish, second_ask, first_ask)
        ask_low = np.where(bullish, first_ask, second_ask)
        return BarPrices(
            bid_open=bars.open,
            bid_high=bars.high,
            bid_low=bars.low,
            ask_open=asks[:, 0].copy(),
            ask_high=ask_high,
            ask_low=ask_low,
            open_ms=times[:, 0].copy(),
            low_ms=np.where(bullish, first_ms, second_ms),
            high_ms=np.where(bullish, second_ms, first_ms),
            close_ms=times[:, 3].copy(),
            first_extreme_ms=first_ms.copy(),
            buy_reach=np.column_stack([bars.low, -bars.high]),
            sell_reach=np.column_stack([-ask_high, ask_low]),
        )

    def __len__(self) -> int:
        return self._length

    def earliest(self) -> int:
        return int(self._bars.time[0])

    def max_spread(self) -> float:
        return float(self._bars.spread.max()) * self.spec.point

    def index_at(self, now_ms: int) -> int:
        """The last bar opening at or before now_ms (-1 before the first)."""
        return int(self._starts_ms.searchsorted(now_ms, side="right")) - 1

    def rates(self) -> Rates:
        """Every replayed bar, complete, as copy_rates_* serves them (MetaTrader5 rates dtype): a copy."""
        return self._rates.copy(0, len(self._rates))

    def is_open(self, now_ms: int) -> bool:
        index = self.index_at(now_ms)
        return index >= 0 and now_ms < int(self._ends_ms[index])

    def bar(self, index: int) -> ReplayBar:
        b, p = self._bars, self.prices
        return ReplayBar(
            index=index,
            time=int(b.time[index]),
            open=float(b.open[index]),
            high=float(b.high[index]),
            low=float(b.low[index]),
            close=float(b.close[index]),
            spread=float(b.spread[index]) * self.spec.point,
            open_ms=int(p.open_ms[index]),
            low_ms=int(p.low_ms[index]),
            high_ms=int(p.high_ms[index]),
            close_ms=int(p.close_ms[index]),
        )

    # ---------------------------------------------------------------- ticks

    def last_tick(self, now_ms: int) -> int:
        """The index of the last tick at or before now_ms (-1 before the first): what it reveals of
        the bars (see ``rates_from_pos``) and quotes is all a moment is to this feed."""
        return int(self._ticks.time_msc.searchsorted(now_ms, side="right")) - 1

    def quote(self, now_ms: int) -> Quote | None:
        index = self.last_tick(now_ms)
        return self.tick_quote(index) if index >= 0 else None

    def tick_quote(self, index: int) -> Quote:
        """The quote of tick ``index`` (bar ``index // TICKS_PER_BAR``'s tick ``index % TICKS_PER_BAR``)."""
        quoted = self._quoted
        if quoted is not None and quoted[0] == index:
            return quoted[1]
        ticks = self._ticks
        quote = Quote(ticks.time_msc.item(index), ticks.bid.item(index), ticks.ask.item(index))
        self._quoted = (index, quote)
        return quote

    def bar_tick(self, bar: int, at_open: bool) -> tuple[int, int]:
        """Bar ``bar``'s open tick (at_open) or its close tick: its index and its time (ms)."""
        if at_open:
            return bar * TICKS_PER_BAR, self.prices.open_ms.item(bar)
        return bar * TICKS_PER_BAR + TICKS_PER_BAR - 1, self.prices.close_ms.item(bar)

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

    def rates_from_pos(self, frame: Frame, last_tick: int, start_pos: int, count: int) -> Rates | None:
        """copy_rates_from_pos on the replayed timeframe once tick ``last_tick`` is seen (see
        ``last_tick`` and replay_rates.py): rows of the bars, no search. None when ``frame`` is not
        served as the bars are (another timeframe, or bars off their timeframe's boundaries):
        ``bars`` then aggregates them.
        """
        if frame.value != self.frame.value or not self._aligned:
            return None
        return self._rates.from_pos(last_tick, start_pos, count)

    def bars(self, frame: Frame, start: int, end: int, now_ms: int) -> Bars:
        self._check_frame(frame)
        first = first_bucket_at_or_after(frame, start)
        stop = min(bucket_end(frame, end), now_ms // 1000 + 1)
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
        if frame.value == self.frame.value and self._aligned:
            return found  # [first, stop) of aligned bars is exactly what to_frame would keep
        return found.to_frame(frame, start, end)
