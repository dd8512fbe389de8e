"""The stop loss and take profit of a new position, as absolute prices (STRATEGY_FORMAT.md, "Exits").

``initial_levels`` is pure: the executor gives it the strategy's exit rules, the side, the expected
entry price, the symbol's specification and the closed bars, and gets back prices to send with the
order, or an ``ExitLevelError`` saying why the entry must be refused.

Choices the format leaves open, made here:

* Prices are rounded to the nearest multiple of the symbol's tick size, then to its digits. The risk
  distance is measured to the ROUNDED stop, so R multiples (targets, partial exits) use the stop the
  broker really holds.
* ``atr``: TA-Lib's ATR(period) over the bars given, last value (bars are closed bars, oldest first).
* ``structure`` (smart stop): beyond "the nearest swing high/low of ``lookbackBars``", by a buffer
  of one pip; a sell's stop adds the symbol's current spread on top, because bars are bid prices and
  a sell's stop is triggered by the ask. A swing low is a bar whose low is below the lows of the two
  bars before and the two after it (a fractal, as MetaTrader's Fractals indicator draws them); the
  nearest is the latest one in the last ``lookbackBars`` bars whose stop lies on the losing side of
  the entry. When those bars hold none, the lowest low (highest high) of them is taken.
* ``fibonacci`` (smart target): the trend-based extension of MetaTrader's "Fibonacci Expansion" tool,
  with the entry as its third point: target = entry + level x (H - L) for a buy, entry - level x
  (H - L) for a sell, where L and H are the lowest low and highest high of the last
  ``FIBONACCI_LOOKBACK_BARS`` bars (the last swing). Unlike the two-point extension measured from L,
  it always lies on the profitable side of the entry, whatever the entry is.
* A stop or target closer to the entry than the symbol's ``stops_level`` is refused, not widened: a
  wider stop changes the risk (and so the size) the strategy chose, and the trader should decide that.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from mt5console.core.broker.models import Side, SymbolSpec
from mt5console.core.strategy.indicators import check_bars, compute
from mt5console.core.strategy.model_types import (
    AtrLevel,
    ExitRules,
    FibonacciLevel,
    FixedLevel,
    LevelType,
    RiskRewardLevel,
    StopLossSpec,
    StructureLevel,
    TakeProfitSpec,
)
from mt5console.core.strategy.operands import parse_operand, warmup_bars
from mt5console.core.strategy.risk import pips_to_price, price_to_pips
from mt5console.core.strategy.validation import format_number

FIBONACCI_LOOKBACK_BARS: Final = 20
STRUCTURE_BUFFER_PIPS: Final = 1.0

# Enum members bound once: reading ``Side.BUY`` goes through the enum's metaclass on every use.
_BUY: Final = Side.BUY
_PRICE: Final = LevelType.PRICE
_PERCENT: Final = LevelType.PERCENT


class ExitLevelError(ValueError):
    """A stop or target that cannot be placed; the executor refuses the entry and logs the message."""


@dataclass(frozen=True, slots=True)
class Levels:
    """Absolute prices to send with the order (None: no stop / no target)."""

    stop_loss: float | None
    take_profit: float | None
    risk_distance: float | None  # entry-to-stop distance in price; None without a stop
    description: str  # for the log: "SL 25 pips = 1.08150, TP 2.5 R = 1.09025 (62.5 pips)"


def round_price(price: float, spec: SymbolSpec) -> float:
    """``price`` on the symbol's price grid: the nearest multiple of tick_size, written to its digits."""
    tick = spec.tick_size if spec.tick_size > 0 else spec.point
    on_grid = round(price / tick) * tick if tick > 0 else price
    return round(on_grid, spec.digits)


def format_price(price: float, spec: SymbolSpec) -> str:
    return format(price, _price_format(spec.digits))


@functools.lru_cache(maxsize=32)
def _price_format(digits: int) -> str:
    return f".{digits}f"


# A level's number as its label writes it ("25", "2.5"): the same few values on every entry, so
# looked up rather than formatted again. typed: 25 and 25.0 are kept apart (they print alike).
_number_label = functools.lru_cache(maxsize=256, typed=True)(format_number)


def _pips_text(distance: float, spec: SymbolSpec) -> str:
    return f"{format_number(round(price_to_pips(distance, spec), 1))} pips"


class _Bars:
    """The closed bars, checked once and only when a level reads them; ATR computed once per period."""

    __slots__ = ("_atr", "_bars", "_checked")

    def __init__(self, bars: np.ndarray) -> None:
        self._bars = bars
        self._checked = False
        self._atr: dict[int, float] = {}

    def all(self) -> np.ndarray:
        if not self._checked:
            check_bars(self._bars)
            self._checked = True
        return self._bars

    def last(self, needed: int, what: str) -> np.ndarray:
        bars = self.all()
        if len(bars) < needed:
            raise ExitLevelError(f"{what} needs {needed} closed bars, only {len(bars)} available")
        return bars[-needed:]

    def atr(self, period: int) -> float:
        if period not in self._atr:
            bars = self.all()
            value = float(compute(parse_operand(f"atr_{period}"), bars)[-1]) if len(bars) else math.nan
            if not math.isfinite(value):
                raise ExitLevelError(
                    f"ATR({period}) has no value yet: need more bars"
                    f" (at least {period + 1} closed bars, {len(bars)} available)"
                )
            if value <= 0:
                raise ExitLevelError(f"ATR({period}) is 0: the last bars have no range")
            self._atr[period] = value
        return self._atr[period]


def _direction(side: Side) -> float:
    # +1 for a buy (targets above, stops below the entry), -1 for a sell.
    return 1.0 if side is _BUY else -1.0


def _absolute_price(role: str, value: float, side: Side, entry: float, spec: SymbolSpec) -> float:
    """A ``price`` level, checked to be on the right side of the entry for its role."""
    wants_above = (role == "take profit") == (side is _BUY)
    if (value > entry) != wants_above or value == entry:
        where = "above" if wants_above else "below"
        raise ExitLevelError(
            f"{role} price {format_price(value, spec)} is not {where} the {side.value} entry"
            f" {format_price(entry, spec)}: a {side.value}'s {role} must be {where} its entry"
        )
    return value


def _stop(
    spec_level: StopLossSpec, side: Side, entry: float, spec: SymbolSpec, bars: _Bars
) -> tuple[float, str]:
    """The raw stop price and its label ("25 pips", "2 x ATR(14)")."""
    sign = _direction(side)
    if isinstance(spec_level, FixedLevel):
        if spec_level.type == _PRICE:
            return _absolute_price("stop loss", spec_level.value, side, entry, spec), "price"
        if spec_level.type == _PERCENT:
            label = f"{_number_label(spec_level.value)}%"
            return entry - sign * entry * spec_level.value / 100, label
        label = f"{_number_label(spec_level.value)} pips"
        return entry - sign * pips_to_price(spec_level.value, spec), label
    if isinstance(spec_level, AtrLevel):
        label = f"{_number_label(spec_level.multiplier)} x ATR({spec_level.period})"
        return entry - sign * spec_level.multiplier * bars.atr(spec_level.period), label
    return _structure_stop(spec_level, side, entry, spec, bars)


def _structure_stop(
    level: StructureLevel, side: Side, entry: float, spec: SymbolSpec, bars: _Bars
) -> tuple[float, str]:
    window = bars.last(level.lookback_bars, "the structure stop")
    buffer = pips_to_price(STRUCTURE_BUFFER_PIPS, spec)
    label = f"structure ({level.lookback_bars} bars)"
    if side is _BUY:
        lows = [float(low) for low in window["low"]]
        swing = _nearest_swing([-low for low in lows], lambda i: lows[i] - buffer < entry)
        low = lows[swing] if swing is not None else min(lows)
        stop = low - buffer
        if stop >= entry:
            raise ExitLevelError(
                f"structure stop: the lowest low of the last {level.lookback_bars} bars"
                f" ({format_price(low, spec)}) less 1 pip is not below the buy entry"
                f" {format_price(entry, spec)}"
            )
        return stop, label
    highs = [float(high) for high in window["high"]]
    above = buffer + spec.spread * spec.point
    swing = _nearest_swing(highs, lambda i: highs[i] + above > entry)
    high = highs[swing] if swing is not None else max(highs)
    stop = high + above
    if stop <= entry:
        raise ExitLevelError(
            f"structure stop: the highest high of the last {level.lookback_bars} bars"
            f" ({format_price(high, spec)}) plus 1 pip and the spread is not above the sell entry"
            f" {format_price(entry, spec)}"
        )
    return stop, label


SWING_SIDE_BARS: Final = 2  # bars on each side a swing must stand out from (MetaTrader's fractals)


def _nearest_swing(peaks: list[float], usable: Callable[[int], bool]) -> int | None:
    """The index of the latest swing high in ``peaks`` (above the two values before and the two
    after it) for which ``usable`` holds; None when there is none. A swing low is a swing high of
    the negated lows. Written out: a few dozen bars, once per entry, no library has it."""
    for i in range(len(peaks) - 1 - SWING_SIDE_BARS, SWING_SIDE_BARS - 1, -1):
        neighbours = peaks[i - SWING_SIDE_BARS : i] + peaks[i + 1 : i + 1 + SWING_SIDE_BARS]
        if all(peaks[i] > value for value in neighbours) and usable(i):
            return i
    return None


def _target(
    spec_level: TakeProfitSpec,
    side: Side,
    entry: float,
    spec: SymbolSpec,
    bars: _Bars,
    risk_distance: float | None,
) -> tuple[float, str]:
    """The raw target price and its label ("40 pips", "2.5 R")."""
    sign = _direction(side)
    if isinstance(spec_level, FixedLevel):
        if spec_level.type == _PRICE:
            return _absolute_price("take profit", spec_level.value, side, entry, spec), "price"
        if spec_level.type == _PERCENT:
            label = f"{_number_label(spec_level.value)}%"
            return entry + sign * entry * spec_level.value / 100, label
        label = f"{_number_label(spec_level.value)} pips"
        return entry + sign * pips_to_price(spec_level.value, spec), label
    if isinstance(spec_level, AtrLevel):
        label = f"{_number_label(spec_level.multiplier)} x ATR({spec_level.period})"
        return entry + sign * spec_level.multiplier * bars.atr(spec_level.period), label
    if isinstance(spec_level, RiskRewardLevel):
        if risk_distance is None:
            raise ExitLevelError(
                f"take profit {format_number(spec_level.ratio)} R is a multiple of the stop distance,"
                " but the strategy has no stop loss"
            )
        return entry + sign * spec_level.ratio * risk_distance, f"{_number_label(spec_level.ratio)} R"
    return _fibonacci_target(spec_level, side, entry, spec, bars)


def _fibonacci_target(
    level: FibonacciLevel, side: Side, entry: float, spec: SymbolSpec, bars: _Bars
) -> tuple[float, str]:
    window = bars.last(FIBONACCI_LOOKBACK_BARS, "the fibonacci target")
    swing_range = float(np.max(window["high"])) - float(np.min(window["low"]))
    if not swing_range > 0:
        raise ExitLevelError(
            f"fibonacci target: the last {FIBONACCI_LOOKBACK_BARS} bars have no range (high = low)"
        )
    label = f"fib {_number_label(level.level)}"
    return entry + _direction(side) * level.level * swing_range, label


def _placed(role: str, raw: float, side: Side, entry: float, spec: SymbolSpec) -> float:
    """The rounded price, refused when it is not a price, not beyond the entry, or inside the stops level."""
    price = round_price(raw, spec)
    if not (math.isfinite(price) and price > 0):
        raise ExitLevelError(f"{role} would be at {format_price(raw, spec)}, which is not a valid price")
    wants_above = (role == "take profit") == (side is _BUY)
    if (price > entry) != wants_above or price == entry:
        raise ExitLevelError(
            f"{role} {format_price(price, spec)} is not {'above' if wants_above else 'below'}"
            f" the {side.value} entry {format_price(entry, spec)} once rounded to the price grid"
        )
    distance_points = abs(price - entry) / spec.point
    if spec.stops_level > 0 and distance_points < spec.stops_level - 1e-6:
        minimum = spec.stops_level * spec.point
        raise ExitLevelError(
            f"{role} {format_price(price, spec)} is {format_number(round(distance_points, 1))} points"
            f" ({_pips_text(abs(price - entry), spec)}) from the entry {format_price(entry, spec)};"
            f" {spec.name} needs at least {spec.stops_level} points ({_pips_text(minimum, spec)})."
            " The entry is refused rather than the level widened, which would change the risk"
        )
    return price


def _describe(tag: str, label: str, price: float, entry: float, spec: SymbolSpec) -> str:
    text = f"{tag} {label} = {format_price(price, spec)}"
    if not label.endswith("pips"):
        text += f" ({_pips_text(abs(price - entry), spec)})"
    return text


def bars_needed(exits: ExitRules) -> int:
    """Closed bars the active stop and target read when a position opens (0: none).

    The live feed must fetch at least this many, or an ``atr`` level with a long ``atrPeriod`` or a
    ``structure`` stop with a long ``lookbackBars`` would refuse every entry for want of bars.
    """
    needed = [0]
    for level in (exits.active_stop_loss, exits.active_take_profit):
        if isinstance(level, AtrLevel):
            needed.append(warmup_bars(parse_operand(f"atr_{level.period}")))
        elif isinstance(level, StructureLevel):
            needed.append(level.lookback_bars)
        elif isinstance(level, FibonacciLevel):
            needed.append(FIBONACCI_LOOKBACK_BARS)
    return max(needed)


def initial_levels(
    exits: ExitRules, side: Side, entry_price: float, spec: SymbolSpec, bars: np.ndarray
) -> Levels:
    """The stop loss and take profit of a position entered at ``entry_price``.

    Uses ``exits.active_stop_loss`` / ``active_take_profit`` (the smart ones when enabled). ``bars``
    (closed bars in the MetaTrader5 rates dtype, oldest first) are read only by atr, structure and
    fibonacci levels. Raises ExitLevelError, naming the level and the numbers, when a level cannot be
    placed (no ATR yet, too few bars, a price on the wrong side, closer than the stops level...).
    """
    if not (math.isfinite(entry_price) and entry_price > 0):
        raise ExitLevelError(f"the entry price must be a positive number, not {entry_price}")
    if not isinstance(side, Side):
        raise ExitLevelError(f"side must be buy or sell, not {side!r}")
    source = _Bars(bars)
    parts: list[str] = []
    stop_loss: float | None = None
    risk_distance: float | None = None
    stop_spec = exits.active_stop_loss
    if stop_spec is not None:
        raw, label = _stop(stop_spec, side, entry_price, spec, source)
        stop_loss = _placed("stop loss", raw, side, entry_price, spec)
        # Both prices are on the grid: rounding to the digits removes binary float noise from R.
        risk_distance = round(abs(entry_price - stop_loss), spec.digits)
        parts.append(_describe("SL", label, stop_loss, entry_price, spec))
    else:
        parts.append("no SL")
    take_profit: float | None = None
    target_spec = exits.active_take_profit
    if target_spec is not None:
        raw, label = _target(target_spec, side, entry_price, spec, source, risk_distance)
        take_profit = _placed("take profit", raw, side, entry_price, spec)
        parts.append(_describe("TP", label, take_profit, entry_price, spec))
    else:
        parts.append("no TP")
    return Levels(stop_loss, take_profit, risk_distance, ", ".join(parts))
