"""Indicator series computed with TA-Lib on closed bars, and the cache that shares them.

Bars are numpy structured arrays with the MetaTrader5 rates dtype (``time``, ``open``, ``high``,
``low``, ``close``, ``tick_volume``, ``spread``, ``real_volume``), oldest first, closed bars only.
Every series is float64, as long as the bars, NaN while the indicator warms up, and exactly what
TA-Lib returns for the same parameters on the same bars: nothing here re-implements an indicator.

Which bars the values are computed over
---------------------------------------
The values are "the values of TA-Lib over the bars available". EMA, RSI, ATR, ADX, MACD, SAR and
OBV are seeded by TA-Lib from the first bars of the series, so a series computed on a window of
the history is NOT equal to the one computed on the full history; the two converge as the window
grows. The engine therefore never mixes the two for one run:

* Live: the market poller fetches a fixed-length window of closed bars; the values are TA-Lib's over
  that window. The window must be at least ``warmup_bars(operand)`` long for the values to settle.
  ``IndicatorCache.series`` computes each (symbol, timeframe, operand) once per closed bar and hands
  the same read-only array to every strategy.
* Replay: every bar from the start of the data up to the current one is available, and TA-Lib is
  causal (the value at bar i reads only bars 0..i), so the series computed ONCE over the whole
  history, read at index i, is bit for bit TA-Lib's value over bars 0..i (tests check this).
  ``FullHistory`` holds those full series; the replay loop either evaluates conditions at an index
  (``conditions.evaluate(group, history.series, index=i, ...)``), or primes the cache with
  ``IndicatorCache.prime`` so that the unchanged live code path gets O(1) views of the full series
  instead of a TA-Lib computation per bar.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import talib
from talib._ta_lib import MA_Type  # talib re-exports it at run time, but only this is typed

from mt5console.core.strategy.operands import Operand

FloatArray = npt.NDArray[np.float64]

REQUIRED_FIELDS: Final[tuple[str, ...]] = ("time", "open", "high", "low", "close", "tick_volume")

# Families whose TA-Lib function returns several outputs: one call fills every sibling.
_SIBLINGS: Final[dict[str, tuple[str, ...]]] = {
    "macd": ("macd", "macd_signal", "macd_hist"),
    "macd_signal": ("macd", "macd_signal", "macd_hist"),
    "macd_hist": ("macd", "macd_signal", "macd_hist"),
    "bb_upper": ("bb_upper", "bb_middle", "bb_lower"),
    "bb_middle": ("bb_upper", "bb_middle", "bb_lower"),
    "bb_lower": ("bb_upper", "bb_middle", "bb_lower"),
    "stoch_k": ("stoch_k", "stoch_d"),
    "stoch_d": ("stoch_k", "stoch_d"),
}


class BarsError(ValueError):
    """Bars that are not a one-dimensional array of the MetaTrader5 rates dtype."""


def check_bars(bars: np.ndarray) -> None:
    """Raise BarsError naming what is wrong unless ``bars`` looks like MetaTrader5 rates."""
    if not isinstance(bars, np.ndarray):
        raise BarsError(f"bars must be a numpy structured array, not {type(bars).__name__}")
    if bars.ndim != 1:
        raise BarsError(f"bars must be one-dimensional, not {bars.ndim}-dimensional")
    missing = _missing_fields(bars.dtype.names or ())
    if missing:
        raise BarsError(f"bars lack the rates field(s) {', '.join(missing)}")


@functools.lru_cache(maxsize=64)
def _missing_fields(names: tuple[str, ...]) -> tuple[str, ...]:
    # Asked once per bar per series with the same few dtypes: the answer is looked up, not rebuilt.
    return tuple(name for name in REQUIRED_FIELDS if name not in names)


def _column(bars: np.ndarray, field: str) -> FloatArray:
    # TA-Lib wants contiguous float64; tick_volume is uint64 in the rates dtype.
    return np.ascontiguousarray(bars[field], dtype=np.float64)


def _sibling_name(operand: Operand, family: str) -> str:
    # Canonical names are the family followed by the formatted parameters, shared by siblings.
    return family + operand.name[len(operand.kind) :]


def compute_related(operand: Operand, bars: np.ndarray) -> dict[str, FloatArray]:
    """The operand's series plus those of its siblings filled by the same TA-Lib call.

    Keys are canonical operand names: ``macd_12_26_9`` gives the MACD line, signal and histogram.
    """
    check_bars(bars)
    kind, params = operand.kind, operand.params
    if kind == "bar":
        return {operand.name: _column(bars, operand.field)}
    close = _column(bars, "close")
    outputs: tuple[FloatArray, ...]
    if kind in ("macd", "macd_signal", "macd_hist"):
        fast, slow, signal = (int(p) for p in params)
        outputs = talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    elif kind in ("bb_upper", "bb_middle", "bb_lower"):
        period, deviations = int(params[0]), float(params[1])
        outputs = talib.BBANDS(
            close, timeperiod=period, nbdevup=deviations, nbdevdn=deviations, matype=MA_Type.SMA
        )
    elif kind in ("stoch_k", "stoch_d"):
        k_period, d_period, slowing = (int(p) for p in params)
        outputs = talib.STOCH(
            _column(bars, "high"), _column(bars, "low"), close,
            fastk_period=k_period, slowk_period=slowing, slowk_matype=MA_Type.SMA,
            slowd_period=d_period, slowd_matype=MA_Type.SMA,
        )  # fmt: skip
    else:
        return {operand.name: _single(operand, bars, close)}
    return {
        _sibling_name(operand, family): series
        for family, series in zip(_SIBLINGS[kind], outputs, strict=True)
    }


_CLOSE_ONLY: Final[dict[str, Callable[..., FloatArray]]] = {
    "ema": talib.EMA,
    "sma": talib.SMA,
    "rsi": talib.RSI,
}
_HIGH_LOW_CLOSE: Final[dict[str, Callable[..., FloatArray]]] = {
    "atr": talib.ATR,
    "cci": talib.CCI,
    "adx": talib.ADX,
    "plus_di": talib.PLUS_DI,
    "minus_di": talib.MINUS_DI,
}


def _single(operand: Operand, bars: np.ndarray, close: FloatArray) -> FloatArray:
    kind, params = operand.kind, operand.params
    if kind in _CLOSE_ONLY:
        return _CLOSE_ONLY[kind](close, timeperiod=int(params[0]))
    if kind in _HIGH_LOW_CLOSE:
        return _HIGH_LOW_CLOSE[kind](
            _column(bars, "high"), _column(bars, "low"), close, timeperiod=int(params[0])
        )
    if kind == "sar":
        return talib.SAR(
            _column(bars, "high"), _column(bars, "low"),
            acceleration=float(params[0]), maximum=float(params[1]),
        )  # fmt: skip
    if kind == "obv":
        return talib.OBV(close, _column(bars, "tick_volume"))
    raise ValueError(f"no TA-Lib computation for operand {operand.name!r} (family {kind!r})")


def compute(operand: Operand, bars: np.ndarray) -> FloatArray:
    """The operand's series over ``bars``: float64, same length, NaN during warm-up."""
    return compute_related(operand, bars)[operand.name]


def _read_only(series: FloatArray) -> FloatArray:
    # Shared by every strategy: a strategy writing into it would corrupt the others' values.
    series.flags.writeable = False
    return series


class FullHistory:
    """The replay path: each series computed once over the whole history, then read by index.

    ``series(operand)[i]`` is TA-Lib's value over bars 0..i (TA-Lib is causal), so a replay loop
    indexes into it per bar instead of recomputing on a window.
    """

    def __init__(self, bars: np.ndarray) -> None:
        check_bars(bars)
        # A contiguous copy: searchsorted on the strided field view would copy it on every call.
        times = np.ascontiguousarray(bars["time"], dtype=np.int64)
        if times.size > 1 and not bool(np.all(np.diff(times) > 0)):
            raise BarsError("bars must be in strictly increasing time order (oldest first)")
        self.bars = bars
        self.times = times
        self.computations = 0
        self._series: dict[str, FloatArray] = {}
        # The last lookup: every operand of one bar asks for the same bar, so one search serves all.
        self._last_lookup: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.bars)

    def series(self, operand: Operand) -> FloatArray:
        """The full-length, read-only series of ``operand``, computed on first use."""
        found = self._series.get(operand.name)
        if found is None:
            self.computations += 1
            for name, series in compute_related(operand, self.bars).items():
                self._series.setdefault(name, _read_only(series))
            found = self._series[operand.name]
        return found

    def index_of(self, bar_time: int) -> int:
        """The position of the bar opened at ``bar_time`` (epoch seconds); KeyError if absent."""
        last = self._last_lookup
        if last is not None and last[0] == bar_time:
            return last[1]
        position = int(self.times.searchsorted(bar_time))  # the method: np.searchsorted costs 3x
        if position >= len(self.times) or int(self.times[position]) != bar_time:
            raise KeyError(f"no bar at time {bar_time} in the history")
        self._last_lookup = (bar_time, position)
        return position


@dataclass(slots=True)
class _Entry:
    last_time: int | None
    count: int
    series: FloatArray


class IndicatorCache:
    """Series shared by every strategy: computed once per closed bar per (symbol, timeframe, operand).

    An entry is keyed by (symbol, timeframe, operand name) and stamped with the last closed bar's
    time and the bar count; a request with the same stamp returns the same array object (a hit),
    another stamp replaces the entry (memory stays bounded: one entry per key, the latest bar).
    ``misses`` counts TA-Lib computations, ``hits`` the requests answered without one.
    """

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._histories: dict[tuple[str, str], FullHistory] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def prime(self, symbol: str, timeframe: str, history: FullHistory) -> None:
        """Answer later requests whose bars lie inside ``history`` with views of its full series."""
        self._histories[(symbol, timeframe)] = history

    def discard(self, symbol: str, timeframe: str) -> None:
        """Forget every entry and primed history of (symbol, timeframe), e.g. when its poller stops."""
        self._histories.pop((symbol, timeframe), None)
        for key in [key for key in self._entries if key[:2] == (symbol, timeframe)]:
            del self._entries[key]

    def series(self, symbol: str, timeframe: str, operand: Operand, bars: np.ndarray) -> FloatArray:
        """The operand's read-only series over ``bars`` (closed bars, oldest first)."""
        check_bars(bars)
        count = len(bars)
        times = bars["time"]  # the column once: each read of a field builds a view
        # No closed bar yet gives an empty series (conditions read it as "no value"), not an error.
        last_time = int(times[-1]) if count else None
        key = (symbol, timeframe, operand.name)
        entry = self._entries.get(key)
        if entry is not None and entry.last_time == last_time and entry.count == count:
            self.hits += 1
            return entry.series
        history = self._histories.get((symbol, timeframe))
        viewed = (
            None
            if history is None or last_time is None
            else _history_view(history, operand, times, last_time)
        )
        if viewed is not None:
            view, computed = viewed
            if computed:
                self.misses += 1
            else:
                self.hits += 1
            self._entries[key] = _Entry(last_time, count, view)
            return view
        self.misses += 1
        # Siblings filled by the same TA-Lib call (MACD signal, other bands) are kept too: a strategy
        # reading macd and macd_signal then costs one computation per bar, and there are at most three.
        for name, series in compute_related(operand, bars).items():
            self._entries[(symbol, timeframe, name)] = _Entry(last_time, count, _read_only(series))
        return self._entries[key].series


def _history_view(
    history: FullHistory, operand: Operand, times: np.ndarray, last_time: int
) -> tuple[FloatArray, bool] | None:
    """A view of the primed full series aligned with the bars of open ``times`` (the last one
    ``last_time``), and whether it had to be computed; None when they are not a window of it."""
    try:
        end = history.index_of(last_time) + 1
    except KeyError:
        return None
    start = end - len(times)
    if start < 0 or int(history.times[start]) != int(times[0]):
        return None  # not a window of the primed history: compute on the bars given
    before = history.computations
    full = history.series(operand)
    # Same length as the bars, valued over the whole history up to the last bar.
    return full[start:end], history.computations > before
