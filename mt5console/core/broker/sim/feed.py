"""What every price feed of the simulator offers, and the column containers they share.

A feed is a pure function of time: asked at ``now_ms`` it reveals only the ticks at or before
``now_ms``, and the bars built from them (the forming bar holds the ticks so far). Two feeds exist:
the seeded walk (walk.py) and replayed bars (replay.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim.frames import Frame, bucket_starts, first_bucket_at_or_after
from mt5console.core.broker.sim.symbols import SymbolSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

TICKS_DTYPE: Final = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)
EARLIEST: Final = 788_918_400  # 1995-01-01 00:00 UTC: the walk's history starts here


class FeedError(Exception):
    """A request the feed cannot serve (e.g. M1 bars of replayed H1 data); the text says why."""


def _f64(values: Sequence[float] | F64) -> F64:
    return np.asarray(values, dtype=np.float64)


def _i64(values: Sequence[int] | I64) -> I64:
    return np.asarray(values, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Bars:
    """Bars as columns; ``time`` is the bar's open time in epoch seconds, oldest first."""

    time: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64  # tick volume
    spread: I64  # points, the spread of the bar's first tick

    @staticmethod
    def empty() -> Bars:
        none_f, none_i = _f64([]), _i64([])
        return Bars(none_i, none_f, none_f, none_f, none_f, none_i, none_i)

    @staticmethod
    def one(time: int, open: float, high: float, low: float, close: float, volume: int, spread: int) -> Bars:
        """A single bar."""
        return Bars(
            _i64([time]),
            _f64([open]),
            _f64([high]),
            _f64([low]),
            _f64([close]),
            _i64([volume]),
            _i64([spread]),
        )

    def __len__(self) -> int:
        return int(self.time.size)

    @staticmethod
    def concat(parts: Sequence[Bars]) -> Bars:
        parts = [part for part in parts if len(part)]
        if not parts:
            return Bars.empty()
        if len(parts) == 1:
            return parts[0]
        return Bars(
            np.concatenate([p.time for p in parts]),
            np.concatenate([p.open for p in parts]),
            np.concatenate([p.high for p in parts]),
            np.concatenate([p.low for p in parts]),
            np.concatenate([p.close for p in parts]),
            np.concatenate([p.volume for p in parts]),
            np.concatenate([p.spread for p in parts]),
        )

    def take(self, which: Mask | slice) -> Bars:
        return Bars(
            self.time[which],
            self.open[which],
            self.high[which],
            self.low[which],
            self.close[which],
            self.volume[which],
            self.spread[which],
        )

    def aggregate(self, starts: I64) -> Bars:
        """Merge consecutive bars that share a bucket start (``starts`` is non-decreasing)."""
        if not len(self):
            return self
        keys, first = np.unique(starts, return_index=True)
        last = np.append(first[1:], len(self)) - 1
        return Bars(
            keys.astype(np.int64),
            self.open[first],
            np.maximum.reduceat(self.high, first),
            np.minimum.reduceat(self.low, first),
            self.close[last],
            np.add.reduceat(self.volume, first),
            self.spread[first],
        )

    def merged(self, time: int) -> Bars:
        """All bars as one bar opening at ``time`` (empty stays empty)."""
        if not len(self):
            return self
        return self.aggregate(np.full(len(self), time, dtype=np.int64))

    def to_frame(self, frame: Frame, start: int, end: int) -> Bars:
        """Aggregate into ``frame`` and keep the bars whose open time lies in [start, end]."""
        bars = self.aggregate(bucket_starts(frame, self.time))
        keep = (bars.time >= first_bucket_at_or_after(frame, start)) & (bars.time <= end)
        return bars.take(keep)

    def to_rates(self) -> npt.NDArray[np.void]:
        rates = np.zeros(len(self), dtype=RATES_DTYPE)
        rates["time"] = self.time
        rates["open"] = self.open
        rates["high"] = self.high
        rates["low"] = self.low
        rates["close"] = self.close
        rates["tick_volume"] = self.volume
        rates["spread"] = self.spread
        return rates


@dataclass(frozen=True, slots=True)
class Ticks:
    """Ticks as columns, in time order; prices are bid and ask (no last price: FX-style quotes)."""

    time_msc: I64
    bid: F64
    ask: F64

    @staticmethod
    def empty() -> Ticks:
        return Ticks(_i64([]), _f64([]), _f64([]))

    def __len__(self) -> int:
        return int(self.time_msc.size)

    @staticmethod
    def concat(parts: Sequence[Ticks]) -> Ticks:
        parts = [part for part in parts if len(part)]
        if not parts:
            return Ticks.empty()
        if len(parts) == 1:
            return parts[0]
        return Ticks(
            np.concatenate([p.time_msc for p in parts]),
            np.concatenate([p.bid for p in parts]),
            np.concatenate([p.ask for p in parts]),
        )

    def between(self, after_ms: int, until_ms: int) -> Ticks:
        """The ticks with after_ms < time_msc <= until_ms."""
        lo = int(self.time_msc.searchsorted(after_ms, side="right"))
        hi = int(self.time_msc.searchsorted(until_ms, side="right"))
        return Ticks(self.time_msc[lo:hi], self.bid[lo:hi], self.ask[lo:hi])

    def to_bar(self, time: int, volume: int, spread: int) -> Bars:
        """The bar these ticks make (bid prices), opening at ``time``; empty when there are none."""
        if not len(self):
            return Bars.empty()
        return Bars(
            _i64([time]),
            self.bid[:1],
            _f64([float(self.bid.max())]),
            _f64([float(self.bid.min())]),
            self.bid[-1:],
            _i64([volume]),
            _i64([spread]),
        )

    def head(self, count: int) -> Ticks:
        return Ticks(self.time_msc[:count], self.bid[:count], self.ask[:count])

    def to_array(self) -> npt.NDArray[np.void]:
        ticks = np.zeros(len(self), dtype=TICKS_DTYPE)
        ticks["time"] = self.time_msc // 1000
        ticks["time_msc"] = self.time_msc
        ticks["bid"] = self.bid
        ticks["ask"] = self.ask
        # Flags say what changed since the previous tick; the first of a batch, or a tick that
        # repeats its predecessor's prices, is reported as a bid and ask quote.
        flags = np.zeros(len(self), dtype=np.uint32)
        if len(self) > 1:
            flags[1:] |= np.where(np.diff(self.bid) != 0, c.TICK_FLAG_BID, 0).astype(np.uint32)
            flags[1:] |= np.where(np.diff(self.ask) != 0, c.TICK_FLAG_ASK, 0).astype(np.uint32)
        flags[flags == 0] = c.TICK_FLAG_BID | c.TICK_FLAG_ASK
        ticks["flags"] = flags
        return ticks


@dataclass(frozen=True, slots=True)
class Quote:
    """One tick: what symbol_info_tick reports and what market orders fill at."""

    time_msc: int
    bid: float
    ask: float


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time with the lowest and highest bid in it: a cheap first look for SL/TP checks."""

    start_ms: int
    end_ms: int  # exclusive
    low: float
    high: float


class Feed(Protocol):
    """A symbol's prices as a function of time."""

    spec: SymbolSpec

    def bars(self, frame: Frame, start: int, end: int, now_ms: int) -> Bars:
        """Bars of ``frame`` opening in [start, end] (epoch s), built from the ticks up to now_ms."""
        ...

    def earliest(self) -> int:
        """Epoch second before which the feed has no prices."""
        ...

    def ticks(self, after_ms: int, until_ms: int, limit: int | None = None) -> Ticks:
        """Ticks with after_ms < time <= until_ms, at most ``limit`` of them (the first ones)."""
        ...

    def quote(self, now_ms: int) -> Quote | None:
        """The latest tick at or before now_ms (None before the feed's first tick)."""
        ...

    def is_open(self, now_ms: int) -> bool:
        """Whether the symbol trades at now_ms."""
        ...

    def spans(self, after_ms: int, until_ms: int) -> list[Span]:
        """Cover (after_ms, until_ms] with spans whose bid range bounds every tick in them."""
        ...

    def max_spread(self) -> float:
        """The widest spread (price units) the feed ever quotes: bounds the ask from the bid."""
        ...
