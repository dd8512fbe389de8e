"""What every entry filter reads (``FilterContext``) and what it answers (``FilterVerdict``).

Filters are pure functions of the context: no broker, no clock, no I/O. The executor gathers the
moment of the decision, the tick, the symbol spec, the closed bars and the open exposure, builds one
context per entry decision, and hands it to ``check_filters``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np

from mt5console.core.broker.models import Side, SymbolSpec, Tick
from mt5console.core.strategy.indicators import BarsError, check_bars
from mt5console.core.timeframes import TIMEFRAME_NAMES

BarsKey = tuple[str, str]  # (symbol, timeframe)


class FilterContextError(ValueError):
    """A filter context built from bad input; the message names the field and what is wrong."""


@dataclass(frozen=True, slots=True)
class FilterVerdict:
    """One filter's answer: ``passed`` or not, the filter's JSON name, and a reason for the log."""

    passed: bool
    name: str  # the strategy-format key: "sessionFilter", "spreadFilter", ..., "mtf"
    reason: str

    def __str__(self) -> str:
        return f"{self.name} {'passed' if self.passed else 'blocked'}: {self.reason}"


@dataclass(frozen=True, slots=True)
class OpenExposure:
    """An open position on some symbol, from any strategy: what the correlation filter weighs."""

    symbol: str
    side: Side


@dataclass(frozen=True, slots=True, eq=False)
class FilterContext:
    """Everything the filters may read about one entry decision.

    ``bars`` are the strategy's own closed bars (MetaTrader5 rates dtype, oldest first).
    ``other_bars`` maps (symbol, timeframe) to closed bars of the other series the filters need:
    the mtf confirm timeframes of this symbol, and this timeframe of every symbol in
    ``open_exposure`` (see ``required_data``). A series the filters need but that is missing
    blocks the entry with a reason; it is never guessed.
    """

    now: datetime  # the moment of the decision, timezone aware
    spec: SymbolSpec
    timeframe: str  # the strategy's timeframe
    side: Side  # the side of the entry being decided
    bars: np.ndarray
    tick: Tick | None = None
    other_bars: Mapping[BarsKey, np.ndarray] = field(default_factory=dict)
    open_exposure: tuple[OpenExposure, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.now, datetime):
            raise FilterContextError(f"now must be a datetime, not {type(self.now).__name__}")
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise FilterContextError(f"now must be timezone aware (UTC), not naive {self.now.isoformat()}")
        if self.timeframe not in TIMEFRAME_NAMES:
            raise FilterContextError(
                f"timeframe {self.timeframe!r} is not one of {', '.join(TIMEFRAME_NAMES)}"
            )
        if not isinstance(self.side, Side):
            raise FilterContextError(f"side must be a Side (buy or sell), not {self.side!r}")
        if not (math.isfinite(self.spec.pip) and self.spec.pip > 0):
            raise FilterContextError(
                f"spec.pip of {self.spec.name} must be a positive number, not {self.spec.pip}"
            )
        if self.tick is not None and self.tick.symbol != self.spec.name:
            raise FilterContextError(
                f"tick is for {self.tick.symbol}, not for the strategy's {self.spec.name}"
            )
        _check_series("bars", self.bars)
        for key, series in self.other_bars.items():
            if not (isinstance(key, tuple) and len(key) == 2 and key[1] in TIMEFRAME_NAMES):
                raise FilterContextError(f"other_bars key {key!r} is not a (symbol, timeframe) pair")
            _check_series(f"other_bars[{key[0]}, {key[1]}]", series)
        # A read-only copy: the executor may keep mutating its own dict after the decision.
        object.__setattr__(self, "other_bars", MappingProxyType(dict(self.other_bars)))
        object.__setattr__(self, "open_exposure", tuple(self.open_exposure))

    @property
    def symbol(self) -> str:
        return self.spec.name

    def series(self, symbol: str, timeframe: str) -> np.ndarray | None:
        """Closed bars of (symbol, timeframe): the strategy's own, or one of ``other_bars``."""
        if (symbol, timeframe) == (self.symbol, self.timeframe):
            return self.bars
        return self.other_bars.get((symbol, timeframe))


def _check_series(label: str, bars: np.ndarray) -> None:
    try:
        check_bars(bars)
    except BarsError as error:
        raise FilterContextError(f"{label}: {error}") from None
    times = np.asarray(bars["time"], dtype=np.int64)
    if times.size > 1 and not bool(np.all(np.diff(times) > 0)):
        raise FilterContextError(f"{label}: bars must be in strictly increasing time order (oldest first)")


def format_value(value: float, decimals: int = 3) -> str:
    """A number for a reason: at most ``decimals`` decimals and at least one (2.0, 2.4, 2.125)."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{decimals}f}"
    if "." not in text:
        return text
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_utc(moment: datetime) -> str:
    """``06:12 UTC``: the wall-clock time of a timezone-aware moment, in UTC."""
    return f"{moment.astimezone(UTC):%H:%M} UTC"


def last_value(series: np.ndarray) -> float | None:
    """The value at the last closed bar, or None while the indicator warms up (NaN) or with no bars."""
    if series.size == 0:
        return None
    value = float(series[-1])
    return None if math.isnan(value) else value
