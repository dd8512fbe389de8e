"""Entry filters pass and block at their edges, in a fixed cheap-first order, and refuse news."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
import pytest
import talib

from mt5console.core.broker.models import Side, SymbolSpec, Tick
from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.strategy.filters import (
    FILTER_ORDER,
    NEWS_UNSUPPORTED,
    FilterContext,
    FilterContextError,
    OpenExposure,
    check_correlation,
    check_filters,
    check_mtf,
    check_news,
    check_regime,
    check_session,
    check_spread,
    check_volatility,
    entry_allowed,
    history_bars,
    measure_regime,
    open_sessions,
    regimes_of,
    required_data,
    return_correlation,
    unsupported_enabled_filters,
)
from mt5console.core.strategy.filters.regime import REGIME_MIN_BARS
from mt5console.core.strategy.model import parse_strategy
from mt5console.core.strategy.model_types import (
    CorrelationFilter,
    Filters,
    MarketRegime,
    MtfFilter,
    NewsFilter,
    RegimeFilter,
    SessionFilter,
    SpreadFilter,
    TradingSession,
    VolatilityFilter,
)
from tests.market_data import eurusd_rates

EURUSD_SPEC = SymbolSpec(
    name="EURUSD", description="Euro vs US Dollar", digits=5, point=0.00001, pip=0.0001,
    contract_size=100_000, tick_size=0.00001, tick_value=1.0, volume_min=0.01, volume_max=100,
    volume_step=0.01, stops_level=0, spread=10, currency_base="EUR", currency_profit="USD",
    currency_margin="EUR", trade_mode=4, filling_mode=3,
)  # fmt: skip
NOON = datetime(2024, 3, 5, 12, 30, tzinfo=UTC)  # London and New York both open
START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())


def rates(
    values: npt.ArrayLike, *, half_range: float = 0.0005, step: int = 900, start: int = START
) -> np.ndarray:
    """Bars closing at ``values``, each ``2 * half_range`` high to low around its open and close."""
    closes = np.asarray(values, dtype=np.float64)
    bars = np.zeros(len(closes), dtype=RATES_DTYPE)
    bars["time"] = start + step * np.arange(len(closes), dtype=np.int64)
    bars["close"] = closes
    bars["open"] = np.concatenate(([closes[0]], closes[:-1])) if len(closes) else closes
    bars["high"] = np.maximum(bars["open"], closes) + half_range
    bars["low"] = np.minimum(bars["open"], closes) - half_range
    bars["tick_volume"] = 100
    return bars


FLAT = rates(np.full(60, 1.1))


def context(
    *,
    now: datetime = NOON,
    bars: np.ndarray = FLAT,
    side: Side = Side.BUY,
    tick: Tick | None = None,
    other_bars: Mapping[tuple[str, str], np.ndarray] | None = None,
    exposure: tuple[OpenExposure, ...] = (),
    timeframe: str = "M15",
) -> FilterContext:
    return FilterContext(
        now=now, spec=EURUSD_SPEC, timeframe=timeframe, side=side, bars=bars, tick=tick,
        other_bars=other_bars or {}, open_exposure=exposure,
    )  # fmt: skip


def tick(bid: float, ask: float) -> Tick:
    return Tick("EURUSD", NOON, bid, ask, 0.0, 0)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 3, 5, hour, minute, second, tzinfo=UTC)


# --- session -----------------------------------------------------------------------------------

LONDON_NY = SessionFilter(True, (TradingSession.LONDON, TradingSession.NEW_YORK))
SYDNEY = SessionFilter(True, (TradingSession.SYDNEY,))


@pytest.mark.parametrize(
    ("rule", "moment", "passed"),
    [
        (LONDON_NY, at(6, 59, 59), False),  # before London opens
        (LONDON_NY, at(7), True),  # London's start is inclusive
        (LONDON_NY, at(15, 59, 59), True),
        (LONDON_NY, at(16), True),  # London closed, New York open
        (LONDON_NY, at(20, 59, 59), True),
        (LONDON_NY, at(21), False),  # New York's end is exclusive
        (SYDNEY, at(20, 59, 59), False),
        (SYDNEY, at(21), True),
        (SYDNEY, at(23, 59, 59), True),
        (SYDNEY, at(0), True),  # wraps midnight
        (SYDNEY, at(5, 59, 59), True),
        (SYDNEY, at(6), False),
        (SessionFilter(True, (TradingSession.TOKYO,)), at(0), True),
        (SessionFilter(True, (TradingSession.TOKYO,)), at(9), False),
    ],
)
def test_session_boundaries(rule: SessionFilter, moment: datetime, passed: bool) -> None:
    assert check_session(rule, context(now=moment)).passed is passed


def test_session_reasons_name_the_sessions_and_the_utc_time() -> None:
    blocked = check_session(LONDON_NY, context(now=at(6, 12)))
    assert blocked.name == "sessionFilter"
    assert blocked.reason == "outside sessions London, NewYork (now 06:12 UTC)"
    assert (
        check_session(LONDON_NY, context(now=at(13))).reason == "in session London, NewYork (now 13:00 UTC)"
    )


def test_session_reads_any_timezone_as_utc() -> None:
    # 08:30 in UTC+2 is 06:30 UTC: London is still closed.
    plus_two = datetime(2024, 3, 5, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    verdict = check_session(LONDON_NY, context(now=plus_two))
    assert not verdict.passed and "06:30 UTC" in verdict.reason
    assert open_sessions(at(7, 30)) == (TradingSession.TOKYO, TradingSession.LONDON)


def test_context_refuses_naive_time_and_foreign_tick() -> None:
    with pytest.raises(FilterContextError, match="timezone aware"):
        context(now=datetime(2024, 3, 5, 12, 0))  # naive: the point of the test
    with pytest.raises(FilterContextError, match="tick is for GBPUSD"):
        context(tick=Tick("GBPUSD", NOON, 1.2, 1.2001, 0.0, 0))
    with pytest.raises(FilterContextError, match="increasing time order"):
        context(bars=FLAT[::-1])
    with pytest.raises(FilterContextError, match="other_bars key"):
        context(other_bars={("EURUSD", "H2"): FLAT})


# --- spread ------------------------------------------------------------------------------------


def test_spread_exactly_at_the_max_passes_and_a_point_more_blocks() -> None:
    rule = SpreadFilter(True, 2.0)
    at_max = check_spread(rule, context(tick=tick(1.10000, 1.10020)))
    assert at_max.passed, at_max.reason
    assert at_max.reason == "spread 2.0 pips <= max 2.0"
    # (1.08024 - 1.08004) / 0.0001 is 2.000000000002 in binary floating point: still 2 pips.
    noisy = check_spread(rule, context(tick=tick(1.08004, 1.08024)))
    assert noisy.passed, noisy.reason
    over = check_spread(rule, context(tick=tick(1.10000, 1.10021)))
    assert not over.passed
    assert over.reason == "spread 2.1 pips > max 2.0"


def test_spread_without_tick_or_with_a_crossed_quote_blocks() -> None:
    rule = SpreadFilter(True, 2.0)
    missing = check_spread(rule, context(tick=None))
    assert not missing.passed and "no tick for EURUSD" in missing.reason
    crossed = check_spread(rule, context(tick=tick(1.10010, 1.10000)))
    assert not crossed.passed and "crossed quote" in crossed.reason


# --- volatility --------------------------------------------------------------------------------


def test_volatility_bounds_are_inclusive_in_pips() -> None:
    # Flat closes with a 10-pip high-low range: every true range, hence ATR(14), is 10 pips.
    bars = rates(np.full(40, 1.1), half_range=0.0005)
    ctx = context(bars=bars)
    assert check_volatility(VolatilityFilter(True, 10.0, 60.0), ctx).passed
    assert check_volatility(VolatilityFilter(True, 3.0, 10.0), ctx).passed
    low = check_volatility(VolatilityFilter(True, 10.1, 60.0), ctx)
    assert not low.passed and low.reason == "ATR(14) 10.0 pips < min 10.1"
    high = check_volatility(VolatilityFilter(True, 3.0, 9.9), ctx)
    assert not high.passed and high.reason == "ATR(14) 10.0 pips > max 9.9"
    assert (
        check_volatility(VolatilityFilter(True, 3.0, math.inf), ctx).reason == "ATR(14) 10.0 pips >= min 3.0"
    )


def test_volatility_blocks_while_atr_has_no_value() -> None:
    rule = VolatilityFilter(True, 0.0, 100.0)
    short = check_volatility(rule, context(bars=rates(np.full(14, 1.1))))
    assert not short.passed
    assert short.reason.startswith("ATR(14) has no value yet") and "have 14" in short.reason
    assert check_volatility(rule, context(bars=rates(np.full(15, 1.1)))).passed  # the first ATR value


# --- regime ------------------------------------------------------------------------------------


def test_regime_thresholds_at_their_edges() -> None:
    assert regimes_of(25.0, 1.0, 0.5, 2.0) == (MarketRegime.TRENDING,)
    assert regimes_of(24.999, 1.0, 0.5, 2.0) == ()
    assert regimes_of(20.0, 1.0, 0.5, 2.0) == ()
    assert regimes_of(19.999, 1.0, 0.5, 2.0) == (MarketRegime.RANGING,)
    assert regimes_of(22.0, 2.0, 0.5, 2.0) == ()  # at the 80th percentile is not above it
    assert regimes_of(22.0, 2.001, 0.5, 2.0) == (MarketRegime.VOLATILE,)
    assert regimes_of(22.0, 0.5, 0.5, 2.0) == ()
    assert regimes_of(30.0, 0.499, 0.5, 2.0) == (MarketRegime.TRENDING, MarketRegime.QUIET)


EURUSD_BARS = eurusd_rates()


def _expected_regimes() -> list[tuple[int, tuple[MarketRegime, ...]]]:
    """Per bar, the regimes straight from TA-Lib over the whole EURUSD history (TA-Lib is causal)."""
    high, low, close = (EURUSD_BARS[f].astype(np.float64) for f in ("high", "low", "close"))
    adx = talib.ADX(high, low, close, timeperiod=14)
    atr = talib.ATR(high, low, close, timeperiod=14)
    found = []
    for i in range(REGIME_MIN_BARS - 1, 1500):
        window = atr[i - 99 : i + 1]
        p20, p80 = np.percentile(window, 20), np.percentile(window, 80)
        regimes: list[MarketRegime] = []
        if adx[i] >= 25:
            regimes.append(MarketRegime.TRENDING)
        elif adx[i] < 20:
            regimes.append(MarketRegime.RANGING)
        if atr[i] > p80:
            regimes.append(MarketRegime.VOLATILE)
        elif atr[i] < p20:
            regimes.append(MarketRegime.QUIET)
        found.append((i, tuple(regimes)))
    return found


EXPECTED_REGIMES = _expected_regimes()


@pytest.mark.parametrize(
    "wanted",
    [
        (MarketRegime.TRENDING, MarketRegime.VOLATILE),
        (MarketRegime.RANGING, MarketRegime.QUIET),
        (MarketRegime.TRENDING,),
        (),
    ],
)
def test_regime_on_eurusd_bars(wanted: tuple[MarketRegime, ...]) -> None:
    index = next(i for i, regimes in EXPECTED_REGIMES if regimes == wanted)
    bars = EURUSD_BARS[: index + 1]
    reading = measure_regime(bars)
    assert reading is not None and reading.regimes == wanted
    ctx = context(bars=bars, timeframe="H1")
    if wanted:
        allowed = check_regime(RegimeFilter(True, (wanted[-1],)), ctx)
        assert allowed.passed and f"market {', '.join(wanted)}" in allowed.reason
        assert f"ADX(14) {reading.adx:.1f}" in allowed.reason
    others = tuple(regime for regime in MarketRegime if regime not in wanted)
    blocked = check_regime(RegimeFilter(True, others), ctx)
    assert not blocked.passed
    if not wanted:
        assert blocked.reason.startswith("no regime detected (ADX(14) ")


def test_regime_needs_a_full_atr_window() -> None:
    assert measure_regime(EURUSD_BARS[: REGIME_MIN_BARS - 1]) is None
    assert measure_regime(EURUSD_BARS[:REGIME_MIN_BARS]) is not None
    short = check_regime(RegimeFilter(True, tuple(MarketRegime)), context(bars=EURUSD_BARS[:50]))
    assert not short.passed and "regime unknown" in short.reason and "have 50" in short.reason


# --- mtf ---------------------------------------------------------------------------------------

UP = rates(1.0 + 0.001 * np.arange(200), step=14400)
DOWN = rates(1.2 - 0.001 * np.arange(200), step=14400)
# A long rise, then a sharp drop: the close falls under EMA(50) while EMA(20) is still above it.
DROP = rates(np.concatenate((1.0 + 0.001 * np.arange(195), 1.194 - 0.012 * np.arange(1, 6))), step=14400)


def test_mtf_agreement_and_disagreement() -> None:
    rule = MtfFilter(True, ("H4",))
    up = {("EURUSD", "H4"): UP}
    buy = check_mtf(rule, context(other_bars=up, side=Side.BUY))
    assert buy.passed and buy.reason.startswith("H4 uptrend (close 1.19900 > EMA50")
    sell = check_mtf(rule, context(other_bars=up, side=Side.SELL))
    assert not sell.passed and sell.reason.startswith("H4 does not confirm sell (close 1.19900 >= EMA50")
    down = {("EURUSD", "H4"): DOWN}
    assert check_mtf(rule, context(other_bars=down, side=Side.SELL)).passed
    assert not check_mtf(rule, context(other_bars=down, side=Side.BUY)).passed


def test_mtf_needs_both_close_and_fast_ema_on_the_side() -> None:
    rule = MtfFilter(True, ("H4",))
    drop = {("EURUSD", "H4"): DROP}
    buy = check_mtf(rule, context(other_bars=drop, side=Side.BUY))
    assert not buy.passed and "<= EMA50" in buy.reason and "EMA20" in buy.reason
    sell = check_mtf(rule, context(other_bars=drop, side=Side.SELL))
    assert not sell.passed and ">= EMA50" in sell.reason


def test_mtf_every_timeframe_must_agree_and_missing_bars_block() -> None:
    rule = MtfFilter(True, ("H4", "D1"))
    mixed = {("EURUSD", "H4"): UP, ("EURUSD", "D1"): DOWN}
    verdict = check_mtf(rule, context(other_bars=mixed))
    assert not verdict.passed and verdict.reason.startswith("D1 does not confirm buy")
    both = check_mtf(rule, context(other_bars={("EURUSD", "H4"): UP, ("EURUSD", "D1"): UP}))
    assert both.passed and "H4 uptrend" in both.reason and "D1 uptrend" in both.reason
    missing = check_mtf(rule, context(other_bars={("EURUSD", "H4"): UP}))
    assert not missing.passed and missing.reason == "no EURUSD D1 bars to confirm with"
    short = check_mtf(MtfFilter(True, ("H4",)), context(other_bars={("EURUSD", "H4"): UP[:49]}))
    assert not short.passed and "EMA(50) on H4 has no value yet" in short.reason


# --- correlation -------------------------------------------------------------------------------

RETURNS = np.random.default_rng(7).normal(0.0, 0.001, 150)
NOISE = np.random.default_rng(8).normal(0.0, 0.001, 150)
EUR = rates(1.1 * np.cumprod(1 + RETURNS))
SAME = rates(1.3 * np.cumprod(1 + RETURNS))  # the same returns: correlation 1
MIRROR = rates(1.3 * np.cumprod(1 - RETURNS))  # the negated returns: correlation -1
UNRELATED = rates(1.3 * np.cumprod(1 + NOISE))
CORRELATION = CorrelationFilter(True, 0.8, 100)


def correlated(other: np.ndarray, open_side: Side, side: Side = Side.BUY) -> FilterContext:
    return context(
        bars=EUR, side=side, other_bars={("GBPUSD", "M15"): other},
        exposure=(OpenExposure("GBPUSD", open_side),),
    )  # fmt: skip


def test_return_correlation_of_itself_its_negative_and_noise() -> None:
    assert return_correlation(EUR, SAME, 100) == pytest.approx(1.0)
    assert return_correlation(EUR, MIRROR, 100) == pytest.approx(-1.0)
    noise = return_correlation(EUR, UNRELATED, 100)
    assert noise is not None and abs(noise) < 0.3
    assert return_correlation(EUR, SAME[:100], 100) is None  # 100 bars give only 99 returns
    flat = return_correlation(EUR, rates(np.full(150, 1.3)), 100)
    assert flat is not None and math.isnan(flat)  # a flat series has no correlation


def test_correlation_blocks_only_exposure_that_adds_up() -> None:
    same_side = check_correlation(CORRELATION, correlated(SAME, Side.BUY))
    assert not same_side.passed
    assert same_side.reason.startswith("buy EURUSD adds to the open buy GBPUSD: correlation 1.0 beyond ±0.8")
    assert check_correlation(CORRELATION, correlated(SAME, Side.SELL)).passed  # a hedge
    mirrored = check_correlation(CORRELATION, correlated(MIRROR, Side.SELL))
    assert not mirrored.passed and "correlation -1.0" in mirrored.reason
    assert check_correlation(CORRELATION, correlated(MIRROR, Side.BUY)).passed
    assert not check_correlation(CORRELATION, correlated(MIRROR, Side.BUY, side=Side.SELL)).passed
    noise = check_correlation(CORRELATION, correlated(UNRELATED, Side.BUY))
    assert noise.passed and noise.reason.startswith("correlation with GBPUSD ")
    # "above" the limit: a limit of 1 lets even a perfect correlation through.
    assert check_correlation(CorrelationFilter(True, 1.0, 100), correlated(SAME, Side.BUY)).passed


def test_correlation_aligns_bars_by_time_and_uses_the_last_lookback() -> None:
    # GBPUSD lacks ten bars in the middle; only the shared times are compared.
    gapped = np.delete(SAME, np.arange(60, 70))
    assert return_correlation(EUR, gapped, 100) == pytest.approx(1.0)
    # Unrelated early bars and identical last 101: only the last 100 returns count.
    tail = rates(np.concatenate((1.3 * np.cumprod(1 + NOISE[:49]), SAME["close"][49:] * 1.0)))
    assert return_correlation(EUR, tail, 100) == pytest.approx(1.0)
    assert abs(return_correlation(EUR, tail, 140) or 1.0) < 0.99


def test_correlation_without_data_blocks_and_own_symbol_is_ignored() -> None:
    nothing = check_correlation(CORRELATION, context(bars=EUR, exposure=(OpenExposure("GBPUSD", Side.BUY),)))
    assert not nothing.passed and nothing.reason == "no GBPUSD M15 bars to correlate EURUSD with"
    short = check_correlation(CORRELATION, correlated(SAME[:80], Side.BUY))
    assert not short.passed and "fewer than 101" in short.reason
    flat = check_correlation(CORRELATION, correlated(rates(np.full(150, 1.3)), Side.BUY))
    assert not flat.passed and "undefined" in flat.reason
    own = check_correlation(CORRELATION, context(bars=EUR, exposure=(OpenExposure("EURUSD", Side.BUY),)))
    assert own.passed and own.reason == "no open position on another symbol"


# --- check_filters, required_data, news --------------------------------------------------------

ALL_BUT_NEWS = Filters(
    session=LONDON_NY,
    spread=SpreadFilter(True, 2.0),
    volatility=VolatilityFilter(True, 1.0, 100.0),
    correlation=CORRELATION,
    regime=RegimeFilter(True, tuple(MarketRegime)),
    mtf=MtfFilter(True, ("H4",)),
)


NOISE_LONG = 1.3 * np.cumprod(1 + np.random.default_rng(9).normal(0.0, 0.001, 2000))


def replace_closes(bars: np.ndarray, closes: npt.ArrayLike) -> np.ndarray:
    copy = rates(closes)
    copy["time"] = bars["time"]
    return copy


def test_check_filters_runs_enabled_filters_cheap_first_and_all_pass() -> None:
    bars = EURUSD_BARS[: next(i for i, r in EXPECTED_REGIMES if r) + 1]
    ctx = FilterContext(
        now=NOON, spec=EURUSD_SPEC, timeframe="H1", side=Side.BUY, bars=bars, tick=tick(1.1, 1.1001),
        other_bars={("EURUSD", "H4"): UP, ("GBPUSD", "H1"): replace_closes(bars, NOISE_LONG[: len(bars)])},
        open_exposure=(OpenExposure("GBPUSD", Side.BUY),),
    )  # fmt: skip
    verdicts = check_filters(ALL_BUT_NEWS, ctx)
    assert [v.name for v in verdicts] == [
        "sessionFilter", "spreadFilter", "volatilityFilter", "regimeFilter", "mtf", "correlationFilter",
    ]  # fmt: skip
    assert entry_allowed(verdicts), [str(v) for v in verdicts]
    assert [name for name, _, _ in FILTER_ORDER][2] == "newsFilter"


def test_check_filters_stops_at_the_first_block() -> None:
    # Every later filter would block too (no bars for mtf or correlation, too few for ATR).
    early = context(now=at(3), bars=FLAT[:10], tick=None, exposure=(OpenExposure("GBPUSD", Side.BUY),))
    verdicts = check_filters(ALL_BUT_NEWS, early)
    assert [(v.name, v.passed) for v in verdicts] == [("sessionFilter", False)]
    later = replace(early, now=NOON)
    verdicts = check_filters(ALL_BUT_NEWS, later)
    assert [(v.name, v.passed) for v in verdicts] == [("sessionFilter", True), ("spreadFilter", False)]
    assert not entry_allowed(verdicts)
    no_session = replace(ALL_BUT_NEWS, session=SessionFilter(False, ()))
    verdicts = check_filters(no_session, replace(later, tick=tick(1.1, 1.1001)))
    assert [(v.name, v.passed) for v in verdicts] == [("spreadFilter", True), ("volatilityFilter", False)]
    assert check_filters(Filters(), later) == []


def test_required_data_lists_confirm_timeframes_and_held_symbols() -> None:
    assert required_data(Filters(), "EURUSD", "M15") == set()
    assert required_data(ALL_BUT_NEWS, "EURUSD", "M15") == {("EURUSD", "H4")}
    held = (
        OpenExposure("GBPUSD", Side.BUY),
        OpenExposure("EURUSD", Side.SELL),
        OpenExposure("USDCHF", Side.SELL),
    )
    assert required_data(ALL_BUT_NEWS, "EURUSD", "M15", held) == {
        ("EURUSD", "H4"), ("GBPUSD", "M15"), ("USDCHF", "M15"),
    }  # fmt: skip
    assert required_data(Filters(), "EURUSD", "M15", held) == set()
    assert history_bars(Filters()) == 0
    assert history_bars(Filters(correlation=CorrelationFilter(True, 0.8, 300))) == 301
    assert history_bars(ALL_BUT_NEWS) >= REGIME_MIN_BARS


def test_an_enabled_news_filter_is_refused_not_pretended() -> None:
    message = (
        "newsFilter: no economic calendar source is configured; the console cannot filter entries by news"
    )
    assert message == NEWS_UNSUPPORTED
    assert unsupported_enabled_filters(Filters(news=NewsFilter(enabled=True))) == [message]
    assert unsupported_enabled_filters(Filters(news=NewsFilter(enabled=False))) == []
    # From a strategy as written, and inside check_filters should the executor ever get that far.
    strategy = parse_strategy(
        {
            "strategyId": "s1", "symbol": "EURUSD", "timeframe": "M15",
            "rules": {
                "entry": {"conditions": [{"indicator": "close", "condition": "greater_than", "value": 1}]},
                "riskManagement": {"lotSize": 0.01},
                "newsFilter": {"enabled": True, "minutesBefore": 15, "minutesAfter": 15, "impact": ["high"]},
            },
        }
    )  # fmt: skip
    assert unsupported_enabled_filters(strategy.filters) == [message]
    verdicts = check_filters(strategy.filters, context())
    assert [(v.name, v.passed) for v in verdicts] == [("newsFilter", False)]
    assert "no economic calendar source" in verdicts[0].reason
    assert not check_news(strategy.filters.news, context()).passed
