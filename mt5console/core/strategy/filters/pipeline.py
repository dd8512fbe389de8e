"""Running a strategy's enabled filters, and what they need from the executor.

``check_filters`` runs the enabled filters in a fixed order, cheapest first, and stops at the
first that blocks: the clock (session), the tick (spread), the news refusal, one indicator on the
strategy's bars (volatility), two (regime), the confirm timeframes' bars (mtf), other symbols'
bars (correlation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from mt5console.core.strategy.filters import correlation, mtf, news, regime, session, spread, volatility
from mt5console.core.strategy.filters.context import BarsKey, FilterContext, FilterVerdict, OpenExposure
from mt5console.core.strategy.model_types import Filters
from mt5console.core.strategy.operands import warmup_bars

Check = Callable[[Any, FilterContext], FilterVerdict]

# (name, the rule in Filters, its check), in the order check_filters runs them.
FILTER_ORDER: Final[tuple[tuple[str, str, Check], ...]] = (
    (session.NAME, "session", session.check_session),
    (spread.NAME, "spread", spread.check_spread),
    (news.NAME, "news", news.check_news),
    (volatility.NAME, "volatility", volatility.check_volatility),
    (regime.NAME, "regime", regime.check_regime),
    (mtf.NAME, "mtf", mtf.check_mtf),
    (correlation.NAME, "correlation", correlation.check_correlation),
)


def check_filters(filters: Filters, ctx: FilterContext) -> list[FilterVerdict]:
    """The verdicts of the enabled filters in ``FILTER_ORDER``, up to and including the first block.

    The entry may go ahead when every verdict passed (an empty list: no filter is enabled).
    """
    verdicts: list[FilterVerdict] = []
    for _name, field, check in FILTER_ORDER:
        rule = getattr(filters, field)
        if not rule.enabled:
            continue
        verdict = check(rule, ctx)
        verdicts.append(verdict)
        if not verdict.passed:
            break
    return verdicts


def entry_allowed(verdicts: Iterable[FilterVerdict]) -> bool:
    return all(verdict.passed for verdict in verdicts)


def unsupported_enabled_filters(filters: Filters) -> list[str]:
    """Why the enabled filters cannot run here; the executor refuses to start a strategy with any."""
    problem = news.news_support_problem(filters.news)
    return [problem] if problem is not None else []


def required_data(
    filters: Filters, symbol: str, timeframe: str, open_exposure: Iterable[OpenExposure] = ()
) -> set[BarsKey]:
    """The (symbol, timeframe) closed bars beyond the strategy's own that the enabled filters read.

    Without ``open_exposure`` (when the strategy starts): the mtf confirm timeframes, to subscribe
    to. The correlation filter's symbols are those of the positions open at decision time, which
    cannot be known in advance: called at decision time with ``open_exposure``, the answer adds
    ``timeframe`` of every other symbol held, for the executor to fetch into ``ctx.other_bars``.
    """
    needed: set[BarsKey] = set()
    if filters.mtf.enabled:
        needed |= {(symbol, frame) for frame in filters.mtf.confirm_timeframes}
    if filters.correlation.enabled:
        needed |= {(held.symbol, timeframe) for held in open_exposure if held.symbol != symbol}
    needed.discard((symbol, timeframe))
    return needed


def history_bars(filters: Filters) -> int:
    """Closed bars per series the enabled filters want for their TA-Lib values to settle (0: none)."""
    wanted = [0]
    if filters.volatility.enabled:
        wanted.append(warmup_bars(volatility.ATR))
    if filters.regime.enabled:
        # A full percentile window of settled ATR values, and a settled ADX.
        wanted.append(regime.ATR_PERCENTILE_BARS + max(warmup_bars(regime.ATR), warmup_bars(regime.ADX)))
    if filters.mtf.enabled:
        wanted.append(mtf.MTF_HISTORY_BARS)
    if filters.correlation.enabled:
        wanted.append(filters.correlation.lookback_bars + 1)
    return max(wanted)
