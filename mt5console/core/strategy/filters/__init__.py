"""Entry filters: session, spread, volatility, regime, multi-timeframe, correlation and news.

Each filter is a pure function ``check_x(rule, ctx) -> FilterVerdict`` of a ``FilterContext``
(no broker, no I/O). The executor calls ``check_filters`` before every entry, ``required_data``
to know which extra bars to fetch, and refuses to start a strategy for which
``unsupported_enabled_filters`` lists anything (an enabled news filter: there is no calendar).
"""

from mt5console.core.strategy.filters.context import (
    FilterContext,
    FilterContextError,
    FilterVerdict,
    OpenExposure,
)
from mt5console.core.strategy.filters.correlation import check_correlation, return_correlation
from mt5console.core.strategy.filters.mtf import check_mtf
from mt5console.core.strategy.filters.news import NEWS_UNSUPPORTED, check_news
from mt5console.core.strategy.filters.pipeline import (
    FILTER_ORDER,
    check_filters,
    entry_allowed,
    history_bars,
    required_data,
    unsupported_enabled_filters,
)
from mt5console.core.strategy.filters.regime import RegimeReading, check_regime, measure_regime, regimes_of
from mt5console.core.strategy.filters.session import SESSION_HOURS, check_session, in_session, open_sessions
from mt5console.core.strategy.filters.spread import check_spread, spread_pips
from mt5console.core.strategy.filters.volatility import check_volatility

__all__ = [
    "FILTER_ORDER",
    "NEWS_UNSUPPORTED",
    "SESSION_HOURS",
    "FilterContext",
    "FilterContextError",
    "FilterVerdict",
    "OpenExposure",
    "RegimeReading",
    "check_correlation",
    "check_filters",
    "check_mtf",
    "check_news",
    "check_regime",
    "check_session",
    "check_spread",
    "check_volatility",
    "entry_allowed",
    "history_bars",
    "in_session",
    "measure_regime",
    "open_sessions",
    "regimes_of",
    "required_data",
    "return_correlation",
    "spread_pips",
    "unsupported_enabled_filters",
]
