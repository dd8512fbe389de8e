"""The spread filter: entries only while the current spread is at most ``maxSpread`` pips."""

from __future__ import annotations

from typing import Final

from mt5console.core.strategy.filters.context import FilterContext, FilterVerdict, format_value
from mt5console.core.strategy.model_types import SpreadFilter

NAME: Final = "spreadFilter"

# ask - bid carries binary noise (1.10020 - 1.10000 = 0.000200000000000089): rounding the spread
# to a millionth of a pip removes it, so a spread exactly at the limit passes, as written.
_PIP_DECIMALS: Final = 6


def spread_pips(bid: float, ask: float, pip: float) -> float:
    """(ask - bid) in pips, free of float noise."""
    return round((ask - bid) / pip, _PIP_DECIMALS)


def check_spread(rule: SpreadFilter, ctx: FilterContext) -> FilterVerdict:
    """Passes when (ask - bid) / pip <= maxSpread; no tick (or a crossed quote) blocks."""
    tick = ctx.tick
    if tick is None:
        return FilterVerdict(False, NAME, f"no tick for {ctx.symbol}: the spread is unknown")
    spread = spread_pips(tick.bid, tick.ask, ctx.spec.pip)
    limit = format_value(rule.max_spread_pips)
    if spread < 0:
        return FilterVerdict(False, NAME, f"crossed quote for {ctx.symbol} (bid {tick.bid} > ask {tick.ask})")
    if spread > rule.max_spread_pips:
        return FilterVerdict(False, NAME, f"spread {format_value(spread)} pips > max {limit}")
    return FilterVerdict(True, NAME, f"spread {format_value(spread)} pips <= max {limit}")
