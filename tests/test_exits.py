"""Initial stop/target prices and the partial-exit plan, with hand-computed numbers."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import talib

from mt5console.core.broker.models import Side, SymbolSpec
from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.strategy.exits import (
    FIBONACCI_LOOKBACK_BARS,
    ExitLevelError,
    initial_levels,
    round_price,
)
from mt5console.core.strategy.indicators import BarsError
from mt5console.core.strategy.model_types import (
    AtrLevel,
    ExitRules,
    FibonacciLevel,
    FixedLevel,
    LevelType,
    PartialExits,
    PartialLevel,
    PartialMode,
    RiskRewardLevel,
    SmartExit,
    StopLossSpec,
    StructureLevel,
    TakeProfitSpec,
)
from mt5console.core.strategy.partials import CloseVolume, MoveStop, PartialPlan, PartialPlanError
from tests.market_data import EURUSD, USDJPY, eurusd_rates, make_spec

NO_BARS = np.zeros(0, dtype=RATES_DTYPE)


XAUUSD = make_spec("XAUUSD", 2, 0.01, 0.01, contract_size=100.0)


def pips(value: float) -> FixedLevel:
    return FixedLevel(LevelType.PIPS, value)


def rules(stop: StopLossSpec | None, target: TakeProfitSpec | None) -> ExitRules:
    return ExitRules(stop_loss=stop, take_profit=target)


def bars_of(highs: list[float], lows: list[float]) -> np.ndarray:
    bars = np.zeros(len(highs), dtype=RATES_DTYPE)
    bars["time"] = 1_700_000_000 + 3600 * np.arange(len(highs))
    bars["high"], bars["low"] = highs, lows
    bars["open"] = bars["close"] = (np.array(highs) + np.array(lows)) / 2
    return bars


# --- fixed distances ------------------------------------------------------------------------------


def test_pips_stop_and_risk_reward_target_on_a_eurusd_buy() -> None:
    levels = initial_levels(rules(pips(25), RiskRewardLevel(2.5)), Side.BUY, 1.08400, EURUSD, NO_BARS)
    assert levels.stop_loss == 1.08150
    assert levels.take_profit == 1.09025  # 1.08400 + 2.5 x 0.00250
    assert levels.risk_distance == pytest.approx(0.0025, abs=1e-12)
    assert levels.description == "SL 25 pips = 1.08150, TP 2.5 R = 1.09025 (62.5 pips)"


def test_a_sell_mirrors_the_buy() -> None:
    levels = initial_levels(rules(pips(25), RiskRewardLevel(2.5)), Side.SELL, 1.08400, EURUSD, NO_BARS)
    assert (levels.stop_loss, levels.take_profit) == (1.08650, 1.07775)


def test_pips_on_usdjpy_and_xauusd() -> None:
    jpy = initial_levels(rules(pips(25), pips(40)), Side.BUY, 150.123, USDJPY, NO_BARS)
    assert (jpy.stop_loss, jpy.take_profit) == (149.873, 150.523)
    assert jpy.risk_distance == pytest.approx(0.25)
    # XAUUSD has 2 digits: pip = point = 0.01, so 250 pips = 2.50.
    gold = initial_levels(rules(pips(250), pips(500)), Side.SELL, 2350.50, XAUUSD, NO_BARS)
    assert (gold.stop_loss, gold.take_profit) == (2353.00, 2345.50)


def test_percent_levels_are_of_the_entry_price_and_rounded_to_the_digits() -> None:
    # 0.5% of 1.08400 = 0.00542; 2% of 2350.50 = 47.01.
    euro = initial_levels(
        rules(FixedLevel(LevelType.PERCENT, 0.5), None), Side.SELL, 1.08400, EURUSD, NO_BARS
    )
    assert euro.stop_loss == 1.08942
    assert euro.description == "SL 0.5% = 1.08942 (54.2 pips), no TP"
    gold = initial_levels(rules(None, FixedLevel(LevelType.PERCENT, 2)), Side.BUY, 2350.50, XAUUSD, NO_BARS)
    assert gold.take_profit == 2397.51
    assert gold.stop_loss is None and gold.risk_distance is None


def test_prices_are_rounded_to_the_tick_size() -> None:
    index = make_spec("US500", 2, 0.01, 0.01, tick_size=0.25)
    # 0.123% of 5000.00 = 6.15 -> 4993.85, on a 0.25 grid 4993.75.
    levels = initial_levels(
        rules(FixedLevel(LevelType.PERCENT, 0.123), None), Side.BUY, 5000.00, index, NO_BARS
    )
    assert levels.stop_loss == 4993.75
    assert levels.risk_distance == pytest.approx(6.25)
    assert round_price(1.084004, EURUSD) == 1.08400


def test_absolute_prices_must_lie_on_the_right_side_of_the_entry() -> None:
    good = rules(FixedLevel(LevelType.PRICE, 1.08100), FixedLevel(LevelType.PRICE, 1.09000))
    levels = initial_levels(good, Side.BUY, 1.08400, EURUSD, NO_BARS)
    assert (levels.stop_loss, levels.take_profit) == (1.08100, 1.09000)
    assert levels.description == "SL price = 1.08100 (30 pips), TP price = 1.09000 (60 pips)"
    with pytest.raises(
        ExitLevelError, match=re.escape("stop loss price 1.08100 is not above the sell entry 1.08400")
    ):
        initial_levels(good, Side.SELL, 1.08400, EURUSD, NO_BARS)
    wrong_target = rules(None, FixedLevel(LevelType.PRICE, 1.08000))
    with pytest.raises(
        ExitLevelError, match=re.escape("take profit price 1.08000 is not above the buy entry")
    ):
        initial_levels(wrong_target, Side.BUY, 1.08400, EURUSD, NO_BARS)


def test_risk_reward_needs_a_stop() -> None:
    with pytest.raises(ExitLevelError, match=r"2.5 R is a multiple of the stop distance.*no stop loss"):
        initial_levels(rules(None, RiskRewardLevel(2.5)), Side.BUY, 1.08400, EURUSD, NO_BARS)


def test_no_stop_and_no_target() -> None:
    levels = initial_levels(ExitRules(), Side.BUY, 1.08400, EURUSD, NO_BARS)
    assert levels == type(levels)(None, None, None, "no SL, no TP")


def test_a_level_inside_the_stops_level_refuses_the_entry() -> None:
    strict = make_spec("EURUSD", 5, 0.00001, 0.0001, stops_level=30)
    with pytest.raises(ExitLevelError) as raised:
        initial_levels(rules(pips(2), None), Side.BUY, 1.08400, strict, NO_BARS)
    message = str(raised.value)
    assert "stop loss 1.08380 is 20 points (2 pips) from the entry 1.08400" in message
    assert "EURUSD needs at least 30 points (3 pips)" in message
    assert "refused rather than the level widened" in message
    with pytest.raises(ExitLevelError, match=re.escape("take profit 1.08410 is 10 points")):
        initial_levels(rules(pips(5), pips(1)), Side.BUY, 1.08400, strict, NO_BARS)
    at_limit = initial_levels(rules(pips(3), pips(3)), Side.BUY, 1.08400, strict, NO_BARS)
    assert (at_limit.stop_loss, at_limit.take_profit) == (1.08370, 1.08430)


def test_a_level_below_zero_is_refused() -> None:
    with pytest.raises(ExitLevelError, match=r"take profit would be at .* not a valid price"):
        initial_levels(rules(None, pips(20_000)), Side.SELL, 1.08400, EURUSD, NO_BARS)


@pytest.mark.parametrize("entry", [0.0, -1.0, float("nan")])
def test_a_bad_entry_price_is_refused(entry: float) -> None:
    with pytest.raises(ExitLevelError, match="entry price must be a positive number"):
        initial_levels(rules(pips(25), None), Side.BUY, entry, EURUSD, NO_BARS)


# --- ATR, structure, fibonacci --------------------------------------------------------------------


def test_atr_levels_use_talib_atr_over_the_bars() -> None:
    bars = eurusd_rates(200)
    atr = float(talib.ATR(bars["high"].copy(), bars["low"].copy(), bars["close"].copy(), timeperiod=14)[-1])
    entry = float(bars["close"][-1])
    levels = initial_levels(rules(AtrLevel(2.0), AtrLevel(3.0, period=14)), Side.BUY, entry, EURUSD, bars)
    assert levels.stop_loss == round(entry - 2 * atr, 5)
    assert levels.take_profit == round(entry + 3 * atr, 5)
    assert levels.description.startswith(f"SL 2 x ATR(14) = {levels.stop_loss:.5f} (")
    # Another period is another ATR.
    atr_5 = float(talib.ATR(bars["high"].copy(), bars["low"].copy(), bars["close"].copy(), timeperiod=5)[-1])
    other = initial_levels(rules(AtrLevel(1.0, period=5), None), Side.SELL, entry, EURUSD, bars)
    assert other.stop_loss == round(entry + atr_5, 5)
    assert atr_5 != pytest.approx(atr)


def test_atr_without_enough_bars_is_a_clear_error() -> None:
    with pytest.raises(ExitLevelError, match=re.escape("ATR(14) has no value yet: need more bars")):
        initial_levels(rules(AtrLevel(2.0), None), Side.BUY, 1.07, EURUSD, eurusd_rates(14))
    with pytest.raises(ExitLevelError, match=re.escape("ATR(14) has no value yet")):
        initial_levels(rules(AtrLevel(2.0), None), Side.BUY, 1.07, EURUSD, NO_BARS)
    assert initial_levels(rules(AtrLevel(2.0), None), Side.BUY, 1.07, EURUSD, eurusd_rates(15)).stop_loss
    flat = bars_of([1.08] * 30, [1.08] * 30)
    with pytest.raises(ExitLevelError, match=re.escape("ATR(14) is 0: the last bars have no range")):
        initial_levels(rules(None, AtrLevel(2.0)), Side.BUY, 1.08, EURUSD, flat)


def test_bars_that_are_not_rates_are_named() -> None:
    with pytest.raises(BarsError, match="lack the rates field"):
        initial_levels(rules(AtrLevel(2.0), None), Side.BUY, 1.07, EURUSD, np.zeros(30))


def test_structure_stop_beyond_the_swing_low_and_high() -> None:
    # The oldest bar's extremes lie outside the 5-bar lookback and must be ignored.
    highs = [1.10000, 1.08500, 1.08600, 1.08550, 1.08450, 1.08480]
    lows = [1.07000, 1.08300, 1.08250, 1.08200, 1.08350, 1.08380]
    bars = bars_of(highs, lows)
    buy = initial_levels(rules(StructureLevel(5), pips(40)), Side.BUY, 1.08400, EURUSD, bars)
    assert buy.stop_loss == 1.08190  # lowest low 1.08200 less 1 pip
    assert buy.description.startswith("SL structure (5 bars) = 1.08190 (21 pips)")
    sell = initial_levels(rules(StructureLevel(5), None), Side.SELL, 1.08400, EURUSD, bars)
    assert sell.stop_loss == 1.08622  # highest high 1.08600 + 1 pip + the 12-point spread
    with pytest.raises(ExitLevelError, match="structure stop needs 5 closed bars, only 3 available"):
        initial_levels(rules(StructureLevel(5), None), Side.BUY, 1.08400, EURUSD, bars[-3:])
    with pytest.raises(ExitLevelError, match=r"lowest low .* \(1.08200\) less 1 pip is not below"):
        initial_levels(rules(StructureLevel(5), None), Side.BUY, 1.08150, EURUSD, bars)


def test_structure_stop_takes_the_nearest_swing_not_the_lowest_low() -> None:
    # "beyond the nearest swing high/low of lookbackBars": a swing low has two higher lows each side.
    lows = [1.0820, 1.0810, 1.0800, 1.0815, 1.0825, 1.0835, 1.0832, 1.0830, 1.0836, 1.0840, 1.0845, 1.0850]
    highs = [low + 0.0010 for low in lows]
    bars = bars_of(highs, lows)
    buy = initial_levels(rules(StructureLevel(12), None), Side.BUY, 1.08550, EURUSD, bars)
    assert buy.stop_loss == 1.08290  # the swing low 1.08300 (bar 7), not the window's lowest 1.08000
    # Entered below that swing (the price fell through it): the one before it, 1.08000, is the stop.
    below = initial_levels(rules(StructureLevel(12), None), Side.BUY, 1.08280, EURUSD, bars)
    assert below.stop_loss == 1.07990
    # No swing in a steady rise: the lowest low of the bars.
    rising = bars_of([1.0810 + i * 0.0005 for i in range(8)], [1.0800 + i * 0.0005 for i in range(8)])
    assert (
        initial_levels(rules(StructureLevel(8), None), Side.BUY, 1.0850, EURUSD, rising).stop_loss == 1.0799
    )
    # A sell mirrors it on the highs: the nearest swing high, plus 1 pip and the 12-point spread.
    mirrored = bars_of([2.17 - low for low in lows], [2.17 - low - 0.0010 for low in lows])
    sell = initial_levels(rules(StructureLevel(12), None), Side.SELL, 1.08150, EURUSD, mirrored)
    assert sell.stop_loss == 1.08722  # the swing high 1.08700 (bar 7), not the highest 1.09000


def test_fibonacci_target_extends_the_last_swing_from_the_entry() -> None:
    count = FIBONACCI_LOOKBACK_BARS
    highs = [1.08600] * count
    lows = [1.08400] * count
    highs[5], lows[12] = 1.09000, 1.08000  # the swing: range 0.01000
    bars = bars_of([1.2, *highs], [1.0, *lows])  # an older bar outside the lookback
    buy = initial_levels(rules(pips(25), FibonacciLevel(1.618)), Side.BUY, 1.08500, EURUSD, bars)
    assert buy.take_profit == 1.10118  # 1.08500 + 1.618 x 0.01000
    assert buy.description.endswith("TP fib 1.618 = 1.10118 (161.8 pips)")
    sell = initial_levels(rules(pips(25), FibonacciLevel(1.0)), Side.SELL, 1.08500, EURUSD, bars)
    assert sell.take_profit == 1.07500
    with pytest.raises(ExitLevelError, match=f"needs {count} closed bars, only {count - 1}"):
        initial_levels(rules(None, FibonacciLevel(1.618)), Side.BUY, 1.085, EURUSD, bars[-count + 1 :])


def test_smart_exits_replace_the_plain_ones_only_when_enabled() -> None:
    bars = bars_of([1.08600] * 20, [1.08200] * 20)
    smart = SmartExit(True, StructureLevel(10), RiskRewardLevel(2.0))
    exits = ExitRules(stop_loss=pips(25), take_profit=pips(40), smart=smart)
    levels = initial_levels(exits, Side.BUY, 1.08400, EURUSD, bars)
    assert (levels.stop_loss, levels.take_profit) == (1.08190, 1.08820)  # 2 x 21 pips
    plain = dataclasses.replace(exits, smart=dataclasses.replace(smart, enabled=False))
    levels = initial_levels(plain, Side.BUY, 1.08400, EURUSD, bars)
    assert (levels.stop_loss, levels.take_profit) == (1.08150, 1.08800)


# --- partial exits --------------------------------------------------------------------------------

ENTRY, RISK = 1.08400, 0.00250  # 1 R = 25 pips


def plan(
    *levels: PartialLevel,
    mode: PartialMode = PartialMode.SEQUENTIAL,
    side: Side = Side.BUY,
    volume: float = 0.10,
    spec: SymbolSpec = EURUSD,
) -> PartialPlan:
    return PartialPlan.create(PartialExits(True, mode, levels), side, ENTRY, RISK, volume, spec)


HALF_AT_1R_TO_BE = PartialLevel(1.0, 50, 0.0)
QUARTER_AT_2R_TO_1R = PartialLevel(2.0, 25, 1.0)


def test_sequential_levels_close_a_share_of_the_original_volume_and_move_the_stop() -> None:
    partials = plan(HALF_AT_1R_TO_BE, QUARTER_AT_2R_TO_1R)
    assert partials.on_price(1.08649, 1.08661) == []  # 0.1 pip short of 1 R
    first = partials.on_price(1.08650, 1.08662)
    assert first == [
        CloseVolume(0.05, 0, "partial exit 1 at 1 R (1.08650): close 50% of 0.10 lots = 0.05"),
        MoveStop(1.08400, 0),
    ]
    assert partials.on_price(1.08700, 1.08712) == []  # a level fires once
    second = partials.on_price(1.08900, 1.08912)
    # 25% of the ORIGINAL 0.10 = 0.025, rounded down to 0.02; the stop moves to +1 R.
    assert [type(a) for a in second] == [CloseVolume, MoveStop]
    assert second[0].volume == 0.02 and second[0].level_index == 1  # type: ignore[union-attr]
    assert second[1] == MoveStop(1.08650, 1)
    assert partials.remaining_volume == 0.03 and partials.done


def test_a_sell_plan_reads_the_ask() -> None:
    partials = plan(HALF_AT_1R_TO_BE, side=Side.SELL)
    assert partials.on_price(1.08138, 1.08151) == []  # the bid is there, the ask is not
    assert partials.on_price(1.08138, 1.08150) == [
        CloseVolume(0.05, 0, "partial exit 1 at 1 R (1.08150): close 50% of 0.10 lots = 0.05"),
        MoveStop(1.08400, 0),
    ]


def test_sequential_levels_wait_for_the_ones_before_them() -> None:
    far_first = (PartialLevel(2.0, 30, None), PartialLevel(1.0, 30, None))
    partials = plan(*far_first)
    assert partials.on_price(1.08700, 1.08712) == []  # 1.2 R: level 2 is reached but level 1 is not
    fired = partials.on_price(1.08900, 1.08912)
    assert [a.level_index for a in fired] == [0, 1]
    parallel = plan(*far_first, mode=PartialMode.PARALLEL)
    assert [a.level_index for a in parallel.on_price(1.08700, 1.08712)] == [1]
    assert [a.level_index for a in parallel.on_price(1.08900, 1.08912)] == [0]


def test_a_price_jump_fires_several_levels_and_one_best_stop_move() -> None:
    for mode in PartialMode:
        partials = plan(HALF_AT_1R_TO_BE, QUARTER_AT_2R_TO_1R, mode=mode)
        actions = partials.on_price(1.09200, 1.09212)  # 3.2 R
        assert [(type(a).__name__, a.level_index) for a in actions] == [
            ("CloseVolume", 0), ("CloseVolume", 1), ("MoveStop", 1),
        ]  # fmt: skip
        assert actions[-1] == MoveStop(1.08650, 1)
        assert partials.stop == 1.08650


def test_the_stop_never_moves_back() -> None:
    partials = plan(PartialLevel(1.0, 30, 0.5), PartialLevel(2.0, 30, 0.0), mode=PartialMode.PARALLEL)
    assert partials.on_price(1.08650, 1.08662)[-1] == MoveStop(1.08525, 0)
    assert partials.on_price(1.08900, 1.08912) == [
        CloseVolume(0.03, 1, "partial exit 2 at 2 R (1.08900): close 30% of 0.10 lots = 0.03")
    ]


def test_a_share_that_rounds_to_nothing_closes_the_whole_remainder() -> None:
    partials = plan(HALF_AT_1R_TO_BE, volume=0.01)
    actions = partials.on_price(1.08650, 1.08662)
    assert actions == [
        CloseVolume(
            0.01, 0,
            "partial exit 1 at 1 R (1.08650): close the remaining 0.01 lots"
            " (50% of 0.01 lots rounds down to 0.00)",
        )
    ]  # fmt: skip
    assert partials.done  # fully closed: no stop to move


def test_a_share_that_would_leave_less_than_the_minimum_closes_the_remainder() -> None:
    spec = make_spec("EURUSD", 5, 0.00001, 0.0001, volume_min=0.05)
    partials = plan(PartialLevel(1.0, 60, 0.0), volume=0.10, spec=spec)
    (close,) = partials.on_price(1.08650, 1.08662)
    assert isinstance(close, CloseVolume) and close.volume == 0.10
    assert "would leave 0.04, below EURUSD's minimum 0.05" in close.reason


def test_levels_adding_up_to_100_percent_close_everything() -> None:
    partials = plan(PartialLevel(1.0, 50, None), PartialLevel(2.0, 50, None), volume=0.03)
    assert partials.on_price(1.08650, 1.08662)[0].volume == 0.01  # type: ignore[union-attr]
    (last,) = partials.on_price(1.08900, 1.08912)
    assert isinstance(last, CloseVolume) and last.volume == 0.02
    assert "the levels add up to 100%" in last.reason


def test_a_close_never_exceeds_what_is_open_at_the_terminal() -> None:
    partials = plan(HALF_AT_1R_TO_BE)
    # The trader closed 0.07 of the 0.10 by hand: only 0.03 is left, and no stop is moved after it.
    (close,) = partials.on_price(1.08650, 1.08662, open_volume=0.03)
    assert isinstance(close, CloseVolume) and close.volume == 0.03


def test_the_state_survives_a_restart_without_firing_twice() -> None:
    partials = plan(HALF_AT_1R_TO_BE, QUARTER_AT_2R_TO_1R)
    partials.on_price(1.08650, 1.08662)
    saved = json.loads(json.dumps(partials.to_dict()))
    resumed = PartialPlan.from_dict(saved, EURUSD)
    assert resumed.fired == frozenset({0}) and resumed.stop == 1.08400
    assert resumed.remaining_volume == 0.05
    assert resumed.on_price(1.08650, 1.08662) == []  # a fresh plan would close 0.05 here again
    assert plan(HALF_AT_1R_TO_BE, QUARTER_AT_2R_TO_1R).on_price(1.08650, 1.08662) != []
    actions = resumed.on_price(1.08900, 1.08912)
    assert actions[0] == CloseVolume(
        0.02, 1, "partial exit 2 at 2 R (1.08900): close 25% of 0.10 lots = 0.02"
    )
    assert resumed.to_dict()["fired"] == [0, 1]


def test_a_plan_needs_a_stop_and_enabled_levels() -> None:
    enabled = PartialExits(True, PartialMode.SEQUENTIAL, (HALF_AT_1R_TO_BE,))
    with pytest.raises(PartialPlanError, match=r"measured in R .* has no stop loss"):
        PartialPlan.create(enabled, Side.BUY, ENTRY, None, 0.10, EURUSD)
    with pytest.raises(PartialPlanError, match="not enabled"):
        PartialPlan.create(dataclasses.replace(enabled, enabled=False), Side.BUY, ENTRY, RISK, 0.10, EURUSD)
    with pytest.raises(PartialPlanError, match="original volume must be a positive number"):
        PartialPlan.create(enabled, Side.BUY, ENTRY, RISK, 0.0, EURUSD)
    with pytest.raises(PartialPlanError, match="at least one level"):
        PartialPlan.create(dataclasses.replace(enabled, levels=()), Side.BUY, ENTRY, RISK, 0.10, EURUSD)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"symbol": "GBPUSD"}, "is for 'GBPUSD', not 'EURUSD'"),
        ({"fired": [0, 7]}, "'fired' must list level indexes from 0 to 1"),
        ({"side": "long"}, "'side' is 'long', expected one of buy, sell"),
        ({"version": 99}, "has version 99"),
        ({"initialRisk": -0.1}, "'initialRisk' must be a positive number"),
    ],
)
def test_a_bad_saved_state_is_refused_by_name(change: dict[str, object], message: str) -> None:
    saved = plan(HALF_AT_1R_TO_BE, QUARTER_AT_2R_TO_1R).to_dict() | change
    with pytest.raises(PartialPlanError, match=re.escape(message)):
        PartialPlan.from_dict(saved, EURUSD)
    missing = plan(HALF_AT_1R_TO_BE).to_dict()
    del missing["closedVolume"]
    with pytest.raises(PartialPlanError, match="lacks 'closedVolume'"):
        PartialPlan.from_dict(missing, EURUSD)
