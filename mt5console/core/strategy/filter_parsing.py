"""Reading the filter blocks of a strategy's rules: session, spread, volatility, news, correlation,
regime and mtf. Each block is optional; see ``model`` for the defaults."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final, TypeVar

from mt5console.core.strategy.model_types import (
    CorrelationFilter,
    Filters,
    MarketRegime,
    MtfFilter,
    NewsFilter,
    NewsImpact,
    RegimeFilter,
    SessionFilter,
    SpreadFilter,
    TradingSession,
    VolatilityFilter,
)
from mt5console.core.strategy.validation import (
    Section,
    format_number,
    join_path,
)
from mt5console.core.timeframes import TIMEFRAME_NAMES, TIMEFRAME_SECONDS

F = TypeVar("F")

FILTER_FIELDS: Final = {
    "sessionFilter": ("enabled", "allowedSessions"),
    "spreadFilter": ("enabled", "maxSpread"),
    "volatilityFilter": ("enabled", "minAtrPips", "maxAtrPips"),
    "newsFilter": ("enabled", "minutesBefore", "minutesAfter", "impact"),
    "correlationFilter": ("enabled", "maxCorrelation", "lookbackBars"),
    "regimeFilter": ("enabled", "allowedRegimes"),
    "mtf": ("enabled", "confirmTimeframes"),
}


def read_filters(rules: Section, timeframe: str | None) -> Filters | None:
    session = _read_filter(rules, "sessionFilter", _session_filter, SessionFilter())
    spread = _read_filter(rules, "spreadFilter", _spread_filter, SpreadFilter())
    volatility = _read_filter(rules, "volatilityFilter", _volatility_filter, VolatilityFilter())
    news = _read_filter(rules, "newsFilter", _news_filter, NewsFilter())
    correlation = _read_filter(rules, "correlationFilter", _correlation_filter, CorrelationFilter())
    regime = _read_filter(rules, "regimeFilter", _regime_filter, RegimeFilter())
    mtf = _read_filter(
        rules, "mtf", lambda section, enabled: _mtf_filter(section, enabled, timeframe), MtfFilter()
    )
    if (
        session is None
        or spread is None
        or volatility is None
        or news is None
        or correlation is None
        or regime is None
        or mtf is None
    ):
        return None
    return Filters(session, spread, volatility, news, correlation, regime, mtf)


def _read_filter(rules: Section, key: str, read: Callable[[Section, bool], F | None], absent: F) -> F | None:
    """A filter block: ``absent`` when left out, None when invalid (after reporting why)."""
    section = rules.sub(key, FILTER_FIELDS[key])
    if section is None:
        return None if rules.has(key) else absent
    enabled = section.boolean("enabled", default=True)
    # With a broken flag the fields given are still checked, but none is demanded.
    result = read(section, bool(enabled))
    return result if enabled is not None else None


def _session_filter(section: Section, enabled: bool) -> SessionFilter | None:
    sessions = section.choices("allowedSessions", list(TradingSession), "session", required=enabled)
    return SessionFilter(enabled, sessions) if sessions is not None else None


def _spread_filter(section: Section, enabled: bool) -> SpreadFilter | None:
    max_spread = section.number("maxSpread", required=enabled, above=0)
    if max_spread is None:
        return None if enabled or section.has("maxSpread") else SpreadFilter(False)
    return SpreadFilter(enabled, max_spread)


def _volatility_filter(section: Section, enabled: bool) -> VolatilityFilter | None:
    low = section.number("minAtrPips", minimum=0)
    high = section.number("maxAtrPips", minimum=0)
    if (section.has("minAtrPips") and low is None) or (section.has("maxAtrPips") and high is None):
        return None
    if enabled and low is None and high is None:
        section.reader.error(section.path, "needs minAtrPips or maxAtrPips (or both) while enabled")
        return None
    bounds = VolatilityFilter(
        enabled, low if low is not None else 0.0, high if high is not None else math.inf
    )
    if bounds.min_atr_pips >= bounds.max_atr_pips:
        section.reader.error(
            section.path_of("maxAtrPips"),
            f"must be greater than minAtrPips ({format_number(bounds.min_atr_pips)})",
        )
        return None
    return bounds


def _news_filter(section: Section, enabled: bool) -> NewsFilter | None:
    defaults = NewsFilter()
    before = section.number("minutesBefore", default=defaults.minutes_before, minimum=0)
    after = section.number("minutesAfter", default=defaults.minutes_after, minimum=0)
    impact = defaults.impact
    if section.has("impact"):
        impact = section.choices("impact", list(NewsImpact), "impact level", required=enabled) or ()
        if not impact and (enabled or section.data["impact"] != []):
            return None
    if before is None or after is None:
        return None
    return NewsFilter(enabled, before, after, impact)


def _correlation_filter(section: Section, enabled: bool) -> CorrelationFilter | None:
    defaults = CorrelationFilter()
    limit = section.number("maxCorrelation", default=defaults.max_correlation, above=0, maximum=1)
    bars = section.integer("lookbackBars", default=defaults.lookback_bars, minimum=10)
    return CorrelationFilter(enabled, limit, bars) if limit is not None and bars is not None else None


def _regime_filter(section: Section, enabled: bool) -> RegimeFilter | None:
    regimes = section.choices("allowedRegimes", list(MarketRegime), "regime", required=enabled)
    return RegimeFilter(enabled, regimes) if regimes is not None else None


def _mtf_filter(section: Section, enabled: bool, timeframe: str | None) -> MtfFilter | None:
    frames = section.choices("confirmTimeframes", TIMEFRAME_NAMES, "timeframe", required=enabled)
    if frames is None:
        return None
    # Only an enabled block must look above the strategy's timeframe: a platform sends its default
    # block (disabled, H4 and D1) with every strategy, an H4 or D1 one too (STRATEGY_FORMAT.md's example).
    if enabled and timeframe is not None:
        for index, frame in enumerate(frames):
            if TIMEFRAME_SECONDS[frame] <= TIMEFRAME_SECONDS[timeframe]:
                section.reader.error(
                    join_path(section.path_of("confirmTimeframes"), index),
                    f"{frame} is not higher than the strategy's timeframe {timeframe}",
                )
                return None
    return MtfFilter(enabled, frames)
