"""The regime filter: classify the market from the closed bars and pass when a detected regime is allowed.

The format names the regimes but not how to detect them; the console uses two common TA-Lib readings,
each on the last closed bar:

* trend strength, ADX(14): trending when ADX >= 25, ranging when ADX < 20; between the two the
  market is neither (the usual "no clear trend" band).
* volatility, ATR(14) against its own last 100 values (the current one included): volatile when
  ATR is above their 80th percentile, quiet when below their 20th.

A market can be in one regime of each pair (trending AND volatile), in one only, or in none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from mt5console.core.strategy.filters.context import (
    FilterContext,
    FilterVerdict,
    format_value,
    last_value,
)
from mt5console.core.strategy.indicators import compute
from mt5console.core.strategy.model_types import MarketRegime, RegimeFilter
from mt5console.core.strategy.operands import parse_operand

NAME: Final = "regimeFilter"

ADX_PERIOD: Final = 14
TRENDING_MIN_ADX: Final = 25.0  # ADX >= this: trending
RANGING_BELOW_ADX: Final = 20.0  # ADX < this: ranging

ATR_PERIOD: Final = 14
ATR_PERCENTILE_BARS: Final = 100  # ATR values the percentiles are taken over
VOLATILE_PERCENTILE: Final = 80.0  # ATR above this percentile: volatile
QUIET_PERCENTILE: Final = 20.0  # ATR below this percentile: quiet

ADX: Final = parse_operand(f"adx_{ADX_PERIOD}")
ATR: Final = parse_operand(f"atr_{ATR_PERIOD}")
# TA-Lib's ATR(n) starts on bar n, so ATR_PERCENTILE_BARS values need n + 100 bars; ADX(14) starts
# on bar 27, sooner.
REGIME_MIN_BARS: Final = ATR_PERIOD + ATR_PERCENTILE_BARS


@dataclass(frozen=True, slots=True)
class RegimeReading:
    """The measurements at the last closed bar and the regimes they mean (price units for ATR)."""

    adx: float
    atr: float
    quiet_atr: float  # the 20th percentile of the last 100 ATR values
    volatile_atr: float  # their 80th percentile
    regimes: tuple[MarketRegime, ...]


def regimes_of(adx: float, atr: float, quiet_atr: float, volatile_atr: float) -> tuple[MarketRegime, ...]:
    """The regimes the readings mean, trend first, then volatility."""
    found: list[MarketRegime] = []
    if adx >= TRENDING_MIN_ADX:
        found.append(MarketRegime.TRENDING)
    elif adx < RANGING_BELOW_ADX:
        found.append(MarketRegime.RANGING)
    if atr > volatile_atr:
        found.append(MarketRegime.VOLATILE)
    elif atr < quiet_atr:
        found.append(MarketRegime.QUIET)
    return tuple(found)


def measure_regime(bars: np.ndarray) -> RegimeReading | None:
    """The regime at the last of ``bars``, or None while ADX or the ATR window is still warming up."""
    if len(bars) < REGIME_MIN_BARS:
        return None
    adx = last_value(compute(ADX, bars))
    window = compute(ATR, bars)[-ATR_PERCENTILE_BARS:]
    if adx is None or bool(np.isnan(window).any()):
        return None
    atr = float(window[-1])
    quiet, volatile = (float(v) for v in np.percentile(window, [QUIET_PERCENTILE, VOLATILE_PERCENTILE]))
    return RegimeReading(adx, atr, quiet, volatile, regimes_of(adx, atr, quiet, volatile))


def _describe(reading: RegimeReading, pip: float) -> str:
    def pips(value: float) -> str:
        return format_value(value / pip, 2)

    return (
        f"ADX({ADX_PERIOD}) {format_value(reading.adx, 1)}, ATR({ATR_PERIOD}) {pips(reading.atr)} pips"
        f" vs {QUIET_PERCENTILE:.0f}th-{VOLATILE_PERCENTILE:.0f}th percentile"
        f" {pips(reading.quiet_atr)}-{pips(reading.volatile_atr)} pips"
    )


def check_regime(rule: RegimeFilter, ctx: FilterContext) -> FilterVerdict:
    """Passes when any regime detected at the last closed bar is one of the allowed regimes."""
    allowed = ", ".join(rule.regimes) or "none"
    reading = measure_regime(ctx.bars)
    if reading is None:
        return FilterVerdict(
            False,
            NAME,
            f"regime unknown: ADX({ADX_PERIOD}) and {ATR_PERCENTILE_BARS} ATR({ATR_PERIOD}) values need"
            f" {REGIME_MIN_BARS} closed bars, have {len(ctx.bars)}",
        )
    measured = _describe(reading, ctx.spec.pip)
    detected = ", ".join(reading.regimes)
    if not reading.regimes:
        return FilterVerdict(False, NAME, f"no regime detected ({measured}); allowed: {allowed}")
    if any(regime in rule.regimes for regime in reading.regimes):
        return FilterVerdict(True, NAME, f"market {detected} ({measured}); allowed: {allowed}")
    return FilterVerdict(False, NAME, f"market {detected} ({measured}); allowed: {allowed}")
