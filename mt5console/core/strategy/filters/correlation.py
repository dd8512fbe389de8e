"""The correlation filter: no entry that piles onto exposure the account already holds in a
strongly correlated symbol.

The format gives ``maxCorrelation`` and ``lookbackBars`` but no symbols. The executor passes the
open positions on OTHER symbols (of every strategy, with their side) as ``ctx.open_exposure`` and,
at decision time, fetches the strategy's timeframe bars of those symbols into ``ctx.other_bars``
(``required_data(..., open_exposure=...)`` lists them; they cannot be known when the strategy
starts). Positions on the strategy's own symbol are not weighed here: ``maxPositions`` governs them.

For each such symbol: the Pearson correlation of bar-to-bar close returns over the last
``lookbackBars`` returns (``lookbackBars + 1`` bars whose open times both series share). The
entry is blocked when |correlation| > maxCorrelation AND the exposure would add up: the same side
as the open position for a positive correlation, the opposite side for a negative one. An entry
that hedges an open position passes. Too few shared bars, or a series without price movement
(correlation undefined), block: the filter cannot vouch for the entry.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from mt5console.core.broker.models import Side
from mt5console.core.strategy.filters.context import FilterContext, FilterVerdict, format_value
from mt5console.core.strategy.model_types import CorrelationFilter

NAME: Final = "correlationFilter"


def return_correlation(first: np.ndarray, second: np.ndarray, lookback: int) -> float | None:
    """Pearson correlation of close-to-close returns over the last ``lookback`` returns of the bars
    both series share (by open time); None with fewer shared bars, NaN when a series is flat."""
    _, first_at, second_at = np.intersect1d(
        np.asarray(first["time"], dtype=np.int64),
        np.asarray(second["time"], dtype=np.int64),
        assume_unique=True,
        return_indices=True,
    )
    if len(first_at) < lookback + 1:
        return None
    a = np.asarray(first["close"], dtype=np.float64)[first_at[-(lookback + 1) :]]
    b = np.asarray(second["close"], dtype=np.float64)[second_at[-(lookback + 1) :]]
    returns_a = np.diff(a) / a[:-1]
    returns_b = np.diff(b) / b[:-1]
    if float(np.std(returns_a)) == 0.0 or float(np.std(returns_b)) == 0.0:
        return math.nan  # a flat series has no correlation; np.corrcoef would warn and say NaN
    return float(np.corrcoef(returns_a, returns_b)[0, 1])


def _adds_up(correlation: float, side: Side, open_side: Side) -> bool:
    return (side is open_side) if correlation > 0 else (side is not open_side)


def check_correlation(rule: CorrelationFilter, ctx: FilterContext) -> FilterVerdict:
    """Passes unless the entry would add to open exposure in a symbol correlated beyond the limit."""
    limit = format_value(rule.max_correlation, 2)
    others = [exposure for exposure in ctx.open_exposure if exposure.symbol != ctx.symbol]
    if not others:
        return FilterVerdict(True, NAME, "no open position on another symbol")
    measured: dict[str, float] = {}  # one correlation per symbol, however many positions it holds
    for exposure in others:
        symbol = exposure.symbol
        if symbol not in measured:
            bars = ctx.series(symbol, ctx.timeframe)
            if bars is None:
                return FilterVerdict(
                    False, NAME, f"no {symbol} {ctx.timeframe} bars to correlate {ctx.symbol} with"
                )
            correlation = return_correlation(ctx.bars, bars, rule.lookback_bars)
            if correlation is None:
                return FilterVerdict(
                    False,
                    NAME,
                    f"{ctx.symbol} and {symbol} share fewer than {rule.lookback_bars + 1}"
                    f" {ctx.timeframe} bars; the correlation over {rule.lookback_bars} bars is unknown",
                )
            if math.isnan(correlation):
                return FilterVerdict(
                    False,
                    NAME,
                    f"correlation of {ctx.symbol} with {symbol} is undefined (no price movement"
                    f" over {rule.lookback_bars} bars)",
                )
            measured[symbol] = correlation
        correlation = measured[symbol]
        if abs(correlation) > rule.max_correlation and _adds_up(correlation, ctx.side, exposure.side):
            return FilterVerdict(
                False,
                NAME,
                f"{ctx.side.value} {ctx.symbol} adds to the open {exposure.side.value} {symbol}:"
                f" correlation {format_value(correlation, 2)} beyond ±{limit}"
                f" over {rule.lookback_bars} bars",
            )
    summary = ", ".join(f"{symbol} {format_value(value, 2)}" for symbol, value in measured.items())
    return FilterVerdict(True, NAME, f"correlation with {summary} adds no exposure beyond ±{limit}")
