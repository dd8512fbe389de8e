"""Indicator series equal TA-Lib's on real EURUSD H1 bars; the cache shares them per closed bar."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
import talib
from backtesting.test import EURUSD
from talib._ta_lib import MA_Type

from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.strategy.indicators import (
    BarsError,
    FullHistory,
    IndicatorCache,
    check_bars,
    compute,
    compute_related,
)
from mt5console.core.strategy.operands import parse_operand
from tests.market_data import eurusd_rates

Floats = npt.NDArray[np.float64]
SMA = MA_Type.SMA


BARS = eurusd_rates()
BARS["spread"] = 2
OPEN = EURUSD["Open"].to_numpy(dtype=np.float64)
H = EURUSD["High"].to_numpy(dtype=np.float64)
L = EURUSD["Low"].to_numpy(dtype=np.float64)
C = EURUSD["Close"].to_numpy(dtype=np.float64)
V = EURUSD["Volume"].to_numpy(dtype=np.float64)


def stoch(k: int, d: int, slowing: int, which: int) -> Floats:
    result: Floats = talib.STOCH(
        H, L, C, fastk_period=k, slowk_period=slowing, slowk_matype=SMA, slowd_period=d, slowd_matype=SMA
    )[which]
    return result


# What each operand must equal, written straight from TA-Lib's documented calls on the DataFrame.
EXPECTED: dict[str, Callable[[], Floats]] = {
    "open": lambda: OPEN,
    "high": lambda: H,
    "low": lambda: L,
    "close": lambda: C,
    "price": lambda: C,
    "volume": lambda: V,
    "ema": lambda: talib.EMA(C, 20),
    "ema_9": lambda: talib.EMA(C, 9),
    "sma": lambda: talib.SMA(C, 20),
    "sma_50": lambda: talib.SMA(C, 50),
    "rsi": lambda: talib.RSI(C, 14),
    "rsi_7": lambda: talib.RSI(C, 7),
    "macd": lambda: talib.MACD(C, 12, 26, 9)[0],
    "macd_signal": lambda: talib.MACD(C, 12, 26, 9)[1],
    "macd_hist": lambda: talib.MACD(C, 12, 26, 9)[2],
    "macd_8_21_5": lambda: talib.MACD(C, 8, 21, 5)[0],
    "macd_signal_8_21_5": lambda: talib.MACD(C, 8, 21, 5)[1],
    "macd_hist_8_21_5": lambda: talib.MACD(C, 8, 21, 5)[2],
    "atr": lambda: talib.ATR(H, L, C, 14),
    "atr_5": lambda: talib.ATR(H, L, C, 5),
    "cci": lambda: talib.CCI(H, L, C, 20),
    "cci_14": lambda: talib.CCI(H, L, C, 14),
    "bb_upper": lambda: talib.BBANDS(C, 20, 2.0, 2.0, SMA)[0],
    "bb_middle": lambda: talib.BBANDS(C, 20, 2.0, 2.0, SMA)[1],
    "bb_lower": lambda: talib.BBANDS(C, 20, 2.0, 2.0, SMA)[2],
    "bb_upper_20_2.5": lambda: talib.BBANDS(C, 20, 2.5, 2.5, SMA)[0],
    "bb_middle_10_1.5": lambda: talib.BBANDS(C, 10, 1.5, 1.5, SMA)[1],
    "bb_lower_30_3": lambda: talib.BBANDS(C, 30, 3.0, 3.0, SMA)[2],
    "adx": lambda: talib.ADX(H, L, C, 14),
    "adx_20": lambda: talib.ADX(H, L, C, 20),
    "plus_di": lambda: talib.PLUS_DI(H, L, C, 14),
    "plus_di_7": lambda: talib.PLUS_DI(H, L, C, 7),
    "minus_di": lambda: talib.MINUS_DI(H, L, C, 14),
    "minus_di_21": lambda: talib.MINUS_DI(H, L, C, 21),
    "stoch_k": lambda: stoch(14, 3, 3, 0),
    "stoch_d": lambda: stoch(14, 3, 3, 1),
    "stoch_d_5_3_3": lambda: stoch(5, 3, 3, 1),
    # D and slowing differ here, so swapping them would show.
    "stoch_k_21_5_4": lambda: stoch(21, 5, 4, 0),
    "stoch_d_21_5_4": lambda: stoch(21, 5, 4, 1),
    "sar": lambda: talib.SAR(H, L, 0.02, 0.2),
    "sar_0.01_0.1": lambda: talib.SAR(H, L, 0.01, 0.1),
    "sar_0.04_0.3": lambda: talib.SAR(H, L, 0.04, 0.3),
    "obv": lambda: talib.OBV(C, V),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_operand_equals_talib(name: str) -> None:
    series = compute(parse_operand(name), BARS)
    assert series.dtype == np.float64
    assert series.shape == (len(BARS),)
    np.testing.assert_array_equal(series, EXPECTED[name](), strict=False)
    assert np.isfinite(series[-100:]).all()  # warm over the last bars of 5000


def test_warm_up_is_nan_then_values() -> None:
    ema_9 = compute(parse_operand("ema_9"), BARS)
    assert np.isnan(ema_9[:8]).all()
    assert np.isfinite(ema_9[8:]).all()


def test_custom_parameters_change_the_series() -> None:
    # Guards against parameters being ignored: each custom series differs from its default.
    for custom, default in [("ema_9", "ema"), ("bb_upper_20_2.5", "bb_upper"), ("sar_0.01_0.1", "sar")]:
        a = compute(parse_operand(custom), BARS)
        b = compute(parse_operand(default), BARS)
        assert not np.array_equal(a, b, equal_nan=True)


def test_related_series_come_from_one_call() -> None:
    related = compute_related(parse_operand("macd_signal_8_21_5"), BARS)
    assert set(related) == {"macd_8_21_5", "macd_signal_8_21_5", "macd_hist_8_21_5"}
    np.testing.assert_array_equal(related["macd_hist_8_21_5"], talib.MACD(C, 8, 21, 5)[2])
    assert set(compute_related(parse_operand("bb_lower_20_2.5"), BARS)) == {
        "bb_upper_20_2.5",
        "bb_middle_20_2.5",
        "bb_lower_20_2.5",
    }


def test_too_few_bars_give_nan_not_an_error() -> None:
    for name in ("ema_9", "adx", "macd", "stoch_d", "sar"):
        series = compute(parse_operand(name), BARS[:3])
        assert series.shape == (3,)
        assert np.isnan(series[-1]) or name == "sar"
    assert compute(parse_operand("rsi"), BARS[:0]).shape == (0,)


def test_bad_bars_are_rejected_with_the_reason() -> None:
    with pytest.raises(BarsError, match="structured array"):
        check_bars([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(BarsError, match="tick_volume"):
        compute(parse_operand("obv"), np.zeros(5, dtype=[("time", "<i8"), ("open", "<f8"),
                                                       ("high", "<f8"), ("low", "<f8"),
                                                       ("close", "<f8")]))  # fmt: skip
    with pytest.raises(BarsError, match="one-dimensional"):
        compute(parse_operand("ema"), np.zeros((2, 3), dtype=RATES_DTYPE))


# --- the replay path: full-history series read at an index ---------------------------------------

PREFIX_OPERANDS = ["ema_9", "rsi", "atr", "adx", "plus_di", "macd_hist", "stoch_d", "sar", "obv", "cci",
                   "bb_lower", "sma_50"]  # fmt: skip


@pytest.mark.parametrize("name", PREFIX_OPERANDS)
def test_full_history_at_index_equals_talib_over_the_bars_available(name: str) -> None:
    history = FullHistory(BARS)
    operand = parse_operand(name)
    full = history.series(operand)
    for end in (1, 2, 15, 40, 41, 100, 777, 2500, len(BARS)):
        window = compute(operand, BARS[:end])
        np.testing.assert_array_equal(full[end - 1], window[-1])


def test_window_series_differ_from_full_history_for_seeded_indicators() -> None:
    # Documented behaviour: EMA is seeded from the first bars, so a window is not the full history.
    full = compute(parse_operand("ema_20"), BARS)
    window = compute(parse_operand("ema_20"), BARS[-200:])
    assert window[-1] != full[-1]
    assert abs(window[-1] - full[-1]) < 1e-4  # but 200 bars are enough for them to converge


def test_full_history_computes_each_series_once_and_shares_siblings() -> None:
    history = FullHistory(BARS)
    first = history.series(parse_operand("macd"))
    assert history.series(parse_operand("macd_12_26_9")) is first
    history.series(parse_operand("macd_signal"))
    assert history.computations == 1
    assert not first.flags.writeable
    assert history.index_of(int(BARS["time"][123])) == 123
    with pytest.raises(KeyError, match="no bar at time"):
        history.index_of(int(BARS["time"][123]) + 1)


def test_full_history_rejects_unordered_bars() -> None:
    with pytest.raises(BarsError, match="increasing time"):
        FullHistory(BARS[::-1])


# --- the cache -----------------------------------------------------------------------------------


def test_two_strategies_asking_for_ema_9_on_one_bar_cause_one_computation() -> None:
    cache = IndicatorCache()
    bars = BARS[:1000]
    first = cache.series("EURUSD", "H1", parse_operand("ema_9"), bars)
    second = cache.series("EURUSD", "H1", parse_operand("ema_9"), bars.copy())
    assert second is first
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(first, talib.EMA(C[:1000], 9))


def test_a_new_closed_bar_recomputes() -> None:
    cache = IndicatorCache()
    operand = parse_operand("rsi_7")
    before = cache.series("EURUSD", "H1", operand, BARS[:1000])
    after = cache.series("EURUSD", "H1", operand, BARS[1:1001])  # same count, the window moved on
    assert after is not before
    assert cache.misses == 2
    np.testing.assert_array_equal(after, talib.RSI(C[1:1001], 7))
    longer = cache.series("EURUSD", "H1", operand, BARS[:1001])  # same last bar, more bars
    assert cache.misses == 3
    np.testing.assert_array_equal(longer, talib.RSI(C[:1001], 7))


def test_cache_keeps_one_entry_per_key_and_separates_symbols() -> None:
    cache = IndicatorCache()
    operands = [parse_operand(name) for name in ("ema_9", "ema_21", "atr")]
    for end in range(300, 340):
        for operand in operands:
            cache.series("EURUSD", "H1", operand, BARS[end - 300 : end])
    assert len(cache) == 3
    cache.series("GBPUSD", "H1", operands[0], BARS[:300])
    cache.series("EURUSD", "M15", operands[0], BARS[:300])
    assert len(cache) == 5
    assert cache.misses == 40 * 3 + 2
    cache.discard("EURUSD", "H1")
    assert len(cache) == 2


def test_cached_series_are_read_only() -> None:
    cache = IndicatorCache()
    series = cache.series("EURUSD", "H1", parse_operand("close"), BARS[:50])
    with pytest.raises(ValueError, match="read-only"):
        series[-1] = 0.0


def test_macd_and_its_signal_cost_one_computation_per_bar() -> None:
    cache = IndicatorCache()
    line = cache.series("EURUSD", "H1", parse_operand("macd"), BARS[:500])
    signal = cache.series("EURUSD", "H1", parse_operand("macd_signal"), BARS[:500])
    assert cache.misses == 1
    np.testing.assert_array_equal(line, talib.MACD(C[:500])[0])
    np.testing.assert_array_equal(signal, talib.MACD(C[:500])[1])


def test_no_closed_bar_yet_gives_an_empty_series() -> None:
    cache = IndicatorCache()
    assert cache.series("EURUSD", "H1", parse_operand("ema_9"), BARS[:0]).shape == (0,)


def test_primed_cache_serves_views_of_the_full_history_without_recomputing() -> None:
    cache = IndicatorCache()
    history = FullHistory(BARS)
    cache.prime("EURUSD", "H1", history)
    operand = parse_operand("adx")
    full = compute(operand, BARS)
    for end in range(500, 600):
        window = BARS[end - 300 : end]
        series = cache.series("EURUSD", "H1", operand, window)
        assert series.shape == (300,)  # aligned with the bars given
        np.testing.assert_array_equal(series, full[end - 300 : end])
    assert cache.misses == 1  # one TA-Lib call over the whole history
    assert history.computations == 1
    # Bars that are not a window of the primed history are computed on their own.
    foreign = BARS[:300].copy()
    foreign["time"] += 7
    np.testing.assert_array_equal(cache.series("EURUSD", "H1", operand, foreign), compute(operand, foreign))
    assert cache.misses == 2
