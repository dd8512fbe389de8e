"""The volatility filter: entries only while ATR(14) of the closed bars, in pips, lies within
[minAtrPips, maxAtrPips] (both inclusive)."""

from __future__ import annotations

import math
from typing import Final

from mt5console.core.strategy.filters.context import (
    FilterContext,
    FilterVerdict,
    format_value,
    last_value,
)
from mt5console.core.strategy.indicators import compute
from mt5console.core.strategy.model_types import VolatilityFilter
from mt5console.core.strategy.operands import parse_operand

NAME: Final = "volatilityFilter"
ATR_PERIOD: Final = 14
ATR: Final = parse_operand(f"atr_{ATR_PERIOD}")
# TA-Lib's ATR gives its first value on bar ``period`` (0-based): one more bar than the period.
ATR_FIRST_VALUE_BARS: Final = ATR_PERIOD + 1


def check_volatility(rule: VolatilityFilter, ctx: FilterContext) -> FilterVerdict:
    """Passes when minAtrPips <= ATR(14) / pip <= maxAtrPips; an ATR still warming up blocks."""
    atr = last_value(compute(ATR, ctx.bars))
    if atr is None:
        return FilterVerdict(
            False,
            NAME,
            f"ATR({ATR_PERIOD}) has no value yet ({ATR_FIRST_VALUE_BARS} closed bars needed,"
            f" have {len(ctx.bars)})",
        )
    # Rounded as the spread is: a hand-set limit equal to the ATR must not fail on binary noise.
    pips = round(atr / ctx.spec.pip, 6)
    measured = f"ATR({ATR_PERIOD}) {format_value(pips, 2)} pips"
    low, high = rule.min_atr_pips, rule.max_atr_pips
    if pips < low:
        return FilterVerdict(False, NAME, f"{measured} < min {format_value(low)}")
    if pips > high:
        return FilterVerdict(False, NAME, f"{measured} > max {format_value(high)}")
    if math.isinf(high):
        return FilterVerdict(True, NAME, f"{measured} >= min {format_value(low)}")
    return FilterVerdict(True, NAME, f"{measured} within {format_value(low)}..{format_value(high)}")
