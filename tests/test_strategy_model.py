"""The strategy model: valid strategies parse into the typed tree, with defaults, summary and files."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.broker.models import Side, SymbolSpec
from mt5console.core.strategy.condition_tree import Comparator, Comparison, ConditionGroup, Logic
from mt5console.core.strategy.model import (
    AtrLevel,
    FibonacciLevel,
    FixedLevel,
    LevelType,
    MarketRegime,
    NewsImpact,
    PartialMode,
    RiskMethod,
    RiskRewardLevel,
    Strategy,
    StrategyError,
    StructureLevel,
    TradingSession,
    load_strategy_file,
    parse_strategy,
)
from mt5console.core.strategy.operands import parse_operand
from mt5console.core.strategy.summary import summarize
from tests.helpers import SEED_STRATEGY as SEED

MINIMAL: dict[str, Any] = {
    "strategyId": "rsi-dip.v2",
    "symbol": "EURUSD.m",
    "timeframe": "H1",
    "rules": {
        "entry": {"conditions": [{"indicator": "rsi", "condition": "<", "value": 30}]},
        "riskManagement": {"lotSize": 0.1},
    },
}


def eurusd(volume_min: float = 0.01, volume_step: float = 0.01, volume_max: float = 100.0) -> SymbolSpec:
    return SymbolSpec(
        name="EURUSD",
        description="Euro vs US Dollar",
        digits=5,
        point=0.00001,
        pip=0.0001,
        contract_size=100_000,
        tick_size=0.00001,
        tick_value=1.0,
        volume_min=volume_min,
        volume_max=volume_max,
        volume_step=volume_step,
        stops_level=0,
        spread=12,
        currency_base="EUR",
        currency_profit="USD",
        currency_margin="EUR",
        trade_mode=4,
        filling_mode=3,
    )


def test_the_seed_example_parses_into_the_typed_tree() -> None:
    strategy = parse_strategy(copy.deepcopy(SEED))

    assert (strategy.strategy_id, strategy.name, strategy.symbol, strategy.timeframe) == (
        "strategy_123",
        "EMA Scalping Pro",
        "EURUSD",
        "M15",
    )
    (entry,) = strategy.entries
    assert entry.side is Side.BUY
    assert entry.conditions.logic is Logic.OR
    assert entry.conditions.path == "rules.entry"
    cross, nested = entry.conditions.children
    assert cross == Comparison(
        parse_operand("ema_9"), Comparator.CROSSES_ABOVE, parse_operand("ema_21"), "rules.entry.conditions[0]"
    )
    assert isinstance(nested, ConditionGroup)
    assert nested.logic is Logic.AND
    rsi_below, close_above = nested.children
    assert isinstance(rsi_below, Comparison) and isinstance(close_above, Comparison)
    assert rsi_below.right == 30.0 and rsi_below.comparator is Comparator.LESS_THAN
    assert rsi_below.path == "rules.entry.conditions[1].conditions[0]"
    assert close_above.right == parse_operand("bb_lower_20_2")

    exits = strategy.exits
    assert exits.stop_loss == FixedLevel(LevelType.PIPS, 25.0)
    assert exits.take_profit == FixedLevel(LevelType.PIPS, 40.0)
    assert exits.smart.enabled
    assert exits.smart.stop_loss == AtrLevel(2.0, 14)
    assert exits.smart.take_profit == RiskRewardLevel(2.5)
    assert exits.active_stop_loss == AtrLevel(2.0, 14)  # smart replaces plain
    assert exits.active_take_profit == RiskRewardLevel(2.5)
    assert not exits.partial.enabled
    assert exits.partial.mode is PartialMode.SEQUENTIAL
    (level,) = exits.partial.levels
    assert (level.at_r, level.close_percent, level.move_stop_to_r) == (1.0, 50.0, 0.0)
    assert exits.conditions is None

    assert strategy.risk.lot_size == 0.01 and strategy.risk.max_positions == 3
    assert not strategy.risk.dynamic.enabled and strategy.risk.dynamic.method is RiskMethod.ATR

    filters = strategy.filters
    assert filters.session.enabled
    assert filters.session.sessions == (TradingSession.LONDON, TradingSession.NEW_YORK)
    assert filters.spread.enabled and filters.spread.max_spread_pips == 2.0
    assert not filters.volatility.enabled
    assert (filters.volatility.min_atr_pips, filters.volatility.max_atr_pips) == (3.0, 60.0)
    assert filters.news.impact == (NewsImpact.HIGH,) and filters.news.minutes_before == 30
    assert filters.correlation.max_correlation == 0.8 and filters.correlation.lookback_bars == 100
    assert filters.regime.regimes == (MarketRegime.TRENDING,)
    assert filters.mtf.confirm_timeframes == ("H4", "D1")

    assert [operand.name for operand in strategy.operands()] == [
        "bb_lower_20_2",
        "close",
        "ema_21",
        "ema_9",
        "rsi_14",
    ]
    assert strategy.raw == SEED


def test_defaults_are_applied_to_a_minimal_strategy() -> None:
    strategy = parse_strategy(copy.deepcopy(MINIMAL))

    assert strategy.name == "rsi-dip.v2"  # strategyName defaults to the id
    (entry,) = strategy.entries
    assert entry.side is Side.BUY
    assert entry.conditions.logic is Logic.AND
    (comparison,) = entry.conditions.children
    assert isinstance(comparison, Comparison)
    assert comparison.left == parse_operand("rsi_14")  # the alias "<" and the default period
    assert comparison.comparator is Comparator.LESS_THAN
    assert strategy.risk.max_positions == 1
    assert not strategy.risk.dynamic.enabled
    assert strategy.exits.stop_loss is None and strategy.exits.take_profit is None
    assert strategy.exits.active_stop_loss is None
    assert not strategy.exits.smart.enabled and not strategy.exits.partial.enabled
    for block in dataclasses.astuple(strategy.filters):
        assert block[0] is False  # every filter left out is disabled
    assert strategy.filters.spread.max_spread_pips == float("inf")


def test_enabled_defaults_to_true_for_a_block_that_is_written() -> None:
    data = copy.deepcopy(MINIMAL)
    data["rules"]["spreadFilter"] = {"maxSpread": 1.5}
    data["rules"]["exit"] = {"stopLoss": {"type": "atr", "atrMultiplier": 1.5, "atrPeriod": 21}}
    data["rules"]["riskManagement"]["dynamicRisk"] = {"method": "kelly", "riskPercent": 0.5}

    strategy = parse_strategy(data)

    assert strategy.filters.spread.enabled and strategy.filters.spread.max_spread_pips == 1.5
    assert strategy.exits.stop_loss == AtrLevel(1.5, 21)
    assert strategy.risk.dynamic.enabled and strategy.risk.dynamic.method is RiskMethod.KELLY


def test_logic_accepts_upper_and_lower_case() -> None:
    data = copy.deepcopy(SEED)
    data["rules"]["entry"]["logic"] = "or"
    data["rules"]["entry"]["conditions"][1]["logic"] = "And"

    entry = parse_strategy(data).entries[0]

    assert entry.conditions.logic is Logic.OR
    nested = entry.conditions.children[1]
    assert isinstance(nested, ConditionGroup) and nested.logic is Logic.AND


def test_entries_trade_both_sides() -> None:
    data = copy.deepcopy(MINIMAL)
    del data["rules"]["entry"]
    data["rules"]["entries"] = [
        {
            "side": "buy",
            "conditions": [{"indicator": "ema_9", "condition": "crosses_above", "value": "ema_21"}],
        },
        {
            "side": "sell",
            "conditions": [{"indicator": "ema_9", "condition": "crosses_below", "value": "ema_21"}],
        },
    ]

    strategy = parse_strategy(data)

    assert [entry.side for entry in strategy.entries] == [Side.BUY, Side.SELL]
    assert strategy.sides == frozenset({Side.BUY, Side.SELL})
    assert strategy.entries[1].conditions.path == "rules.entries[1]"
    assert [operand.name for operand in strategy.operands()] == ["ema_21", "ema_9"]
    summary = summarize(strategy)
    assert "buys 0.1 lots when ema_9 crosses above ema_21" in summary
    assert "sells 0.1 lots when ema_9 crosses below ema_21" in summary


def test_groups_nest_to_any_depth_and_exit_conditions_add_operands() -> None:
    deepest: dict[str, Any] = {"indicator": "adx", "condition": ">=", "value": 25}
    for depth in range(12):
        logic = "AND" if depth % 2 else "OR"
        deepest = {
            "logic": logic,
            "conditions": [deepest, {"indicator": "close", "condition": ">", "value": 1}],
        }
    data = copy.deepcopy(MINIMAL)
    data["rules"]["entry"]["conditions"].append(deepest)
    data["rules"]["exit"] = {
        "conditions": {"logic": "OR", "conditions": [{"indicator": "rsi_14", "condition": ">", "value": 70}]}
    }

    strategy = parse_strategy(data)

    group = strategy.entries[0].conditions.children[1]
    levels = 0
    while isinstance(group, ConditionGroup):
        levels += 1
        group = group.children[0]
    assert levels == 12
    assert isinstance(group, Comparison) and group.left == parse_operand("adx_14")
    assert group.path == "rules.entry.conditions[1]" + ".conditions[0]" * 12
    # rsi and rsi_14 are one operand; the exit condition's is counted once.
    assert [operand.name for operand in strategy.operands()] == ["adx_14", "close", "rsi_14"]
    assert strategy.exits.conditions is not None and strategy.exits.conditions.path == "rules.exit.conditions"


def test_smart_types_partial_exits_and_filters_are_modelled() -> None:
    data = copy.deepcopy(SEED)
    exit_rules = data["rules"]["exit"]
    exit_rules["smartExit"] = {
        "enabled": True,
        "stopLoss": {"type": "structure", "lookbackBars": 20},
        "takeProfit": {"type": "fibonacci", "level": 1.618},
    }
    exit_rules["partialExits"] = {
        "enabled": True,
        "mode": "parallel",
        "levels": [
            {"atR": 1, "closePercent": 50, "moveStopTo": "breakeven"},
            {"atR": 2, "closePercent": 25, "moveStopTo": 1},
            {"atR": 3, "closePercent": 25},
        ],
    }
    rules = data["rules"]
    rules["newsFilter"] = {
        "enabled": True,
        "minutesBefore": 15,
        "minutesAfter": 45,
        "impact": ["medium", "high"],
    }
    rules["volatilityFilter"] = {"enabled": True, "minAtrPips": 3}
    rules["regimeFilter"] = {"enabled": True, "allowedRegimes": ["trending", "volatile"]}
    rules["mtf"] = {"enabled": True, "confirmTimeframes": ["H4"]}
    rules["riskManagement"]["dynamicRisk"] = {"enabled": True, "method": "volatility", "riskPercent": 0.5}

    strategy = parse_strategy(data)

    assert strategy.exits.active_stop_loss == StructureLevel(20)
    assert strategy.exits.active_take_profit == FibonacciLevel(1.618)
    partial = strategy.exits.partial
    assert partial.enabled and partial.mode is PartialMode.PARALLEL
    assert [(lv.at_r, lv.close_percent, lv.move_stop_to_r) for lv in partial.levels] == [
        (1.0, 50.0, 0.0),
        (2.0, 25.0, 1.0),
        (3.0, 25.0, None),
    ]
    assert (
        strategy.filters.volatility.min_atr_pips == 3
        and strategy.filters.volatility.max_atr_pips == float("inf")
    )
    assert strategy.filters.news.impact == (NewsImpact.MEDIUM, NewsImpact.HIGH)
    assert strategy.filters.regime.regimes == (MarketRegime.TRENDING, MarketRegime.VOLATILE)

    summary = summarize(strategy)
    assert "stop loss beyond the nearest swing of the last 20 bars" in summary
    assert "take profit at the 1.618 Fibonacci extension (smart exit)" in summary
    assert "closes 50% at 1 R (stop to breakeven), 25% at 2 R (stop to 1 R), 25% at 3 R (parallel)" in summary
    assert "not from 15 minutes before to 45 minutes after medium or high-impact news" in summary
    assert "only when ATR >= 3 pips" in summary
    assert "only in a trending or volatile market" in summary
    assert "confirmed on H4" in summary
    assert (
        "each position sized so that one ATR(14) against it costs 0.5% of the balance, whatever the stop"
        in summary
    )


def test_the_summary_states_the_key_facts() -> None:
    summary = summarize(parse_strategy(copy.deepcopy(SEED)))

    assert summary == (
        "EMA Scalping Pro (strategy_123) trades EURUSD on M15: buys 0.01 lots when ema_9 crosses above"
        " ema_21 OR (rsi_14 < 30 AND close > bb_lower_20_2), at most 3 positions; stop loss 2.0 x ATR(14),"
        " take profit 2.5 R (smart exit); only during London, NewYork; only when spread <= 2 pips."
    )


def test_the_summary_uses_the_plain_exits_when_smart_exit_is_off() -> None:
    data = copy.deepcopy(SEED)
    data["rules"]["exit"]["smartExit"]["enabled"] = False
    data["rules"]["sessionFilter"]["enabled"] = False

    summary = summarize(parse_strategy(data))

    assert "stop loss 25 pips, take profit 40 pips;" in summary
    assert "smart exit" not in summary
    assert "London" not in summary


def test_the_summary_says_plainly_when_there_is_no_stop_loss() -> None:
    summary = summarize(parse_strategy(copy.deepcopy(MINIMAL)))

    assert summary == (
        "rsi-dip.v2 (rsi-dip.v2) trades EURUSD.m on H1: buys 0.1 lots when rsi_14 < 30, at most 1 position;"
        " no stop loss, no take profit."
    )


def test_raw_is_an_independent_copy_and_the_model_is_frozen() -> None:
    data = copy.deepcopy(SEED)
    strategy = parse_strategy(data)
    data["rules"]["riskManagement"]["lotSize"] = 5

    assert strategy.raw["rules"]["riskManagement"]["lotSize"] == 0.01  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        strategy.symbol = "GBPUSD"  # type: ignore[misc]
    assert hash(strategy) == hash(parse_strategy(copy.deepcopy(SEED)))


def test_lot_size_is_checked_against_the_symbol_when_a_spec_is_known() -> None:
    data = copy.deepcopy(SEED)
    data["rules"]["riskManagement"]["lotSize"] = 0.03  # 3 steps exactly, despite float division

    assert parse_strategy(data, symbol_spec=lambda symbol: eurusd()).risk.lot_size == 0.03
    data["rules"]["riskManagement"]["lotSize"] = 0.004
    assert parse_strategy(data, symbol_spec=lambda symbol: None).risk.lot_size == 0.004  # unknown symbol

    with pytest.raises(StrategyError) as caught:
        parse_strategy(data, symbol_spec=lambda symbol: eurusd())
    assert str(caught.value) == (
        "rules.riskManagement.lotSize: 0.004 rounds down to 0.00, below EURUSD's minimum 0.01"
    )

    # Above the maximum is valid: "clamped to volume_min..volume_max" (STRATEGY_FORMAT.md); sizing clamps it.
    data["rules"]["riskManagement"]["lotSize"] = 250
    assert parse_strategy(data, symbol_spec=lambda symbol: eurusd()).risk.lot_size == 250

    data["rules"]["riskManagement"]["lotSize"] = 0.05
    with pytest.raises(StrategyError) as caught:
        parse_strategy(data, symbol_spec=lambda symbol: eurusd(volume_min=0.1))
    assert str(caught.value) == "rules.riskManagement.lotSize: 0.05 is below EURUSD's minimum 0.1"


def test_a_strategy_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "ema.json"
    # A byte-order mark, as some Windows editors write, is tolerated.
    path.write_text("\ufeff" + json.dumps(SEED, indent=2), encoding="utf-8")

    strategy = load_strategy_file(path)

    assert isinstance(strategy, Strategy)
    assert strategy == parse_strategy(copy.deepcopy(SEED))


def test_file_errors_name_the_file_and_the_place(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(StrategyError, match=r"nope\.json: no such file"):
        load_strategy_file(missing)

    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "strategyId": "x",\n  "symbol": "EURUSD"\n  "timeframe": "M1"\n}\n')
    with pytest.raises(StrategyError, match=r"broken\.json: invalid JSON at line 4, column 3: Expecting ','"):
        load_strategy_file(broken)

    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([SEED]))
    with pytest.raises(StrategyError, match=r"list\.json: the top level must be a JSON object .*not a list"):
        load_strategy_file(listed)

    twice = tmp_path / "twice.json"
    twice.write_text('{"strategyId": "a", "strategyId": "b"}')
    with pytest.raises(StrategyError, match=r"the key 'strategyId' appears twice"):
        load_strategy_file(twice)

    with pytest.raises(StrategyError, match="is a folder"):
        load_strategy_file(tmp_path)

    invalid = tmp_path / "invalid.json"
    bad = copy.deepcopy(SEED)
    bad["timeframe"] = "M2"
    invalid.write_text(json.dumps(bad))
    with pytest.raises(StrategyError) as caught:
        load_strategy_file(invalid)
    assert [error.path for error in caught.value.errors] == ["timeframe"]
