"""The multi-timeframe filter: every confirm timeframe's trend must agree with the entry's side.

The format lists the confirm timeframes (all higher than the strategy's) but not the rule; the
console uses a common, explainable one on each confirm timeframe's last closed bar:

* a buy needs an uptrend: close > EMA(50) AND EMA(20) > EMA(50);
* a sell needs a downtrend: close < EMA(50) AND EMA(20) < EMA(50).

Equal values agree with neither side. The EMAs are TA-Lib's over the bars the executor supplies;
TA-Lib seeds an EMA from the first bars, so the executor should supply at least ``MTF_HISTORY_BARS``
closed bars of each confirm timeframe for the values to settle.
"""

from __future__ import annotations

from typing import Final

from mt5console.core.broker.models import Side
from mt5console.core.strategy.filters.context import FilterContext, FilterVerdict, last_value
from mt5console.core.strategy.indicators import compute
from mt5console.core.strategy.model_types import MtfFilter
from mt5console.core.strategy.operands import parse_operand, warmup_bars

NAME: Final = "mtf"
FAST_EMA_PERIOD: Final = 20
SLOW_EMA_PERIOD: Final = 50
FAST_EMA: Final = parse_operand(f"ema_{FAST_EMA_PERIOD}")
SLOW_EMA: Final = parse_operand(f"ema_{SLOW_EMA_PERIOD}")
MTF_HISTORY_BARS: Final = warmup_bars(SLOW_EMA)


def _price(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def confirm_timeframe(timeframe: str, side: Side, ctx: FilterContext) -> tuple[bool, str]:
    """Whether ``timeframe``'s trend agrees with ``side``, and the readings that say so."""
    bars = ctx.series(ctx.symbol, timeframe)
    if bars is None:
        return False, f"no {ctx.symbol} {timeframe} bars to confirm with"
    fast = last_value(compute(FAST_EMA, bars))
    slow = last_value(compute(SLOW_EMA, bars))
    if fast is None or slow is None:
        return False, (
            f"EMA({SLOW_EMA_PERIOD}) on {timeframe} has no value yet"
            f" ({SLOW_EMA_PERIOD} closed bars needed, have {len(bars)})"
        )
    close = float(bars["close"][-1])
    digits = ctx.spec.digits
    # The comparisons the side needs, and whether each holds; the reason shows the actual relation.
    holds, fails = (">", "<=") if side is Side.BUY else ("<", ">=")
    close_ok = close > slow if side is Side.BUY else close < slow
    fast_ok = fast > slow if side is Side.BUY else fast < slow
    readings = (
        f"close {_price(close, digits)} {holds if close_ok else fails}"
        f" EMA{SLOW_EMA_PERIOD} {_price(slow, digits)},"
        f" EMA{FAST_EMA_PERIOD} {_price(fast, digits)} {holds if fast_ok else fails} EMA{SLOW_EMA_PERIOD}"
    )
    trend = "up" if side is Side.BUY else "down"
    if close_ok and fast_ok:
        return True, f"{timeframe} {trend}trend ({readings})"
    return False, f"{timeframe} does not confirm {side.value} ({readings})"


def check_mtf(rule: MtfFilter, ctx: FilterContext) -> FilterVerdict:
    """Passes when every confirm timeframe agrees with ``ctx.side``; the first that does not blocks."""
    confirmed: list[str] = []
    for timeframe in rule.confirm_timeframes:
        agrees, reason = confirm_timeframe(timeframe, ctx.side, ctx)
        if not agrees:
            return FilterVerdict(False, NAME, reason)
        confirmed.append(reason)
    if not confirmed:
        return FilterVerdict(False, NAME, "no confirm timeframe is listed")
    return FilterVerdict(True, NAME, "; ".join(confirmed))
