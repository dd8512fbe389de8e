"""Bad strategies are rejected with the field path and the reason; every fault is listed at once."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mt5console.core.broker.models import SymbolSpec
from mt5console.core.strategy.model import FieldError, StrategyError, parse_strategy
from tests.helpers import SEED_STRATEGY

# The seed example with every optional part switched on, so each part's faults can be provoked.
VALID: dict[str, Any] = copy.deepcopy(SEED_STRATEGY)
VALID["rules"]["exit"]["partialExits"].update(
    enabled=True,
    levels=[
        {"atR": 1.0, "closePercent": 50, "moveStopTo": "breakeven"},
        {"atR": 2.0, "closePercent": 25, "moveStopTo": 1},
    ],
)
for _part in ("volatilityFilter", "newsFilter", "correlationFilter", "regimeFilter", "mtf"):
    VALID["rules"][_part]["enabled"] = True

_DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _walk(data: Any, path: str) -> tuple[Any, str | int]:
    keys: list[str | int] = [int(index) if index else name for name, index in _STEP.findall(path)]
    for key in keys[:-1]:
        data = data[key]
    return data, keys[-1]


def put(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change to the valid strategy: set (or, with _DELETE, remove) the value at a field path."""

    def change(data: dict[str, Any]) -> None:
        parent, key = _walk(data, path)
        if value is _DELETE:
            del parent[key]
        else:
            parent[key] = copy.deepcopy(value)

    return change


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    return put(path, _DELETE)


@dataclass(frozen=True)
class Case:
    changes: tuple[Callable[[dict[str, Any]], None], ...]
    path: str
    fragment: str


def case(path: str, fragment: str, *changes: Callable[[dict[str, Any]], None]) -> Case:
    return Case(changes, path, fragment)


E = "rules.entry.conditions"
X = "rules.exit"
P = "rules.exit.partialExits"

CASES: dict[str, Case] = {
    # identity
    "id missing": case("strategyId", "is required", drop("strategyId")),
    "id empty": case("strategyId", "must not be empty", put("strategyId", "")),
    "id with a space": case("strategyId", "only letters, digits", put("strategyId", "my strategy")),
    "id too long": case("strategyId", "at most 64", put("strategyId", "s" * 65)),
    "id a number": case("strategyId", "must be a string, not the number 123", put("strategyId", 123)),
    "name a list": case("strategyName", "must be a string", put("strategyName", ["x"])),
    "symbol missing": case("symbol", "is required", drop("symbol")),
    "symbol with a space": case("symbol", "is not a broker symbol", put("symbol", "EUR USD")),
    "timeframe lower case": case("timeframe", "did you mean 'M15'", put("timeframe", "m15")),
    "timeframe unknown": case("timeframe", "unknown timeframe 'H2'", put("timeframe", "H2")),
    "unknown top-level key": case("description", "unknown field 'description'", put("description", "x")),
    # rules and entries
    "rules missing": case("rules", "is required", drop("rules")),
    "rules a list": case("rules", "must be an object, not a list", put("rules", [])),
    "rules key typo": case("rules.spreadFiltr", "did you mean 'spreadFilter'", put("rules.spreadFiltr", {})),
    "entry and entries": case(
        "rules", "has both 'entry' and 'entries'", put("rules.entries", [VALID["rules"]["entry"]])
    ),
    "no entry at all": case("rules.entry", "is required", drop("rules.entry")),
    "entries empty": case(
        "rules.entries", "at least one entry block", drop("rules.entry"), put("rules.entries", [])
    ),
    "side unknown": case("rules.entry.side", "unknown side 'long'", put("rules.entry.side", "long")),
    "side upper case": case("rules.entry.side", "did you mean 'sell'", put("rules.entry.side", "SELL")),
    "logic unknown": case("rules.entry.logic", "unknown logic 'XOR'", put("rules.entry.logic", "XOR")),
    "conditions empty": case(E, "an empty group is invalid", put(E, [])),
    "conditions missing": case(E, "is required", drop(E)),
    "nested group empty": case(
        f"{E}[1].conditions", "an empty group is invalid", put(f"{E}[1].conditions", [])
    ),
    "condition a string": case(f"{E}[0]", "must be a condition object", put(f"{E}[0]", "ema_9 > ema_21")),
    "unknown indicator": case(
        f"{E}[0].indicator", "unknown indicator 'emma_9'", put(f"{E}[0].indicator", "emma_9")
    ),
    "indicator upper case": case(f"{E}[0].indicator", "lower case", put(f"{E}[0].indicator", "EMA_9")),
    "indicator bad period": case(
        f"{E}[1].conditions[0].indicator",
        "period must be between",
        put(f"{E}[1].conditions[0].indicator", "rsi_0"),
    ),
    "indicator missing": case(f"{E}[0].indicator", "is required", drop(f"{E}[0].indicator")),
    "unknown comparator": case(
        f"{E}[0].condition", "did you mean 'crosses_above'", put(f"{E}[0].condition", "crosses_abov")
    ),
    "comparator a number": case(f"{E}[0].condition", "must be a string", put(f"{E}[0].condition", 1)),
    "value a boolean": case(
        f"{E}[1].conditions[0].value", "not true", put(f"{E}[1].conditions[0].value", True)
    ),
    "value a quoted number": case(
        f"{E}[1].conditions[0].value", "without quotes", put(f"{E}[1].conditions[0].value", "30")
    ),
    "value NaN": case(f"{E}[1].conditions[0].value", "finite", put(f"{E}[1].conditions[0].value", math.nan)),
    "two numbers cross": case(
        f"{E}[0].condition", "two numbers cannot cross", put(f"{E}[0].indicator", 1), put(f"{E}[0].value", 2)
    ),
    "extra key in a condition": case(f"{E}[0].period", "unknown field 'period'", put(f"{E}[0].period", 9)),
    "logic on a comparison": case(f"{E}[0].logic", "unknown field 'logic'", put(f"{E}[0].logic", "AND")),
    "extra key in a group": case(f"{E}[1].side", "unknown field 'side'", put(f"{E}[1].side", "buy")),
    # exits
    "exit key typo": case(f"{X}.stopLos", "did you mean 'stopLoss'", put(f"{X}.stopLos", {})),
    "stop type typo": case(f"{X}.stopLoss.type", "did you mean 'pips'", put(f"{X}.stopLoss.type", "pip")),
    "stop type missing": case(f"{X}.stopLoss.type", "is required", drop(f"{X}.stopLoss.type")),
    "stop value negative": case(
        f"{X}.stopLoss.value", "greater than 0, not -5", put(f"{X}.stopLoss.value", -5)
    ),
    "stop value a string": case(
        f"{X}.stopLoss.value", "must be a number, not the string '25'", put(f"{X}.stopLoss.value", "25")
    ),
    "stop value missing": case(f"{X}.stopLoss.value", "is required", drop(f"{X}.stopLoss.value")),
    "stop rr_ratio": case(
        f"{X}.stopLoss.type", "for take profit only", put(f"{X}.stopLoss", {"type": "rr_ratio", "rrRatio": 2})
    ),
    "plain stop structure": case(
        f"{X}.stopLoss.type",
        "smart stop loss only",
        put(f"{X}.stopLoss", {"type": "structure", "lookbackBars": 20}),
    ),
    "smart target structure": case(
        f"{X}.smartExit.takeProfit.type",
        "smart stop loss only",
        put(f"{X}.smartExit.takeProfit", {"type": "structure", "lookbackBars": 20}),
    ),
    "plain target fibonacci": case(
        f"{X}.takeProfit.type",
        "smart take profit only",
        put(f"{X}.takeProfit", {"type": "fibonacci", "level": 1.6}),
    ),
    "percent stop 100": case(
        f"{X}.stopLoss.value", "less than 100", put(f"{X}.stopLoss", {"type": "percent", "value": 100})
    ),
    "price stop zero": case(
        f"{X}.stopLoss.value", "greater than 0", put(f"{X}.stopLoss", {"type": "price", "value": 0})
    ),
    "price target under the stop of a buy": case(
        f"{X}.takeProfit.value",
        "must be above its stop loss (1.09)",
        put(f"{X}.stopLoss", {"type": "price", "value": 1.09}),
        put(f"{X}.takeProfit", {"type": "price", "value": 1.08}),
    ),
    "field of another type": case(
        f"{X}.smartExit.stopLoss.value",
        "does not apply to type 'atr'",
        put(f"{X}.smartExit.stopLoss.value", 20),
    ),
    "atr multiplier missing": case(
        f"{X}.smartExit.stopLoss.atrMultiplier", "is required", drop(f"{X}.smartExit.stopLoss.atrMultiplier")
    ),
    "atr period fractional": case(
        f"{X}.smartExit.stopLoss.atrPeriod", "whole number", put(f"{X}.smartExit.stopLoss.atrPeriod", 2.5)
    ),
    "rr_ratio without a plain stop": case(
        f"{X}.takeProfit",
        "needs a stop loss (rules.exit.stopLoss)",
        drop(f"{X}.stopLoss"),
        put(f"{X}.takeProfit", {"type": "rr_ratio", "rrRatio": 2}),
        put(f"{P}.enabled", False),
    ),
    "rr_ratio without a smart stop": case(
        f"{X}.smartExit.takeProfit",
        "needs a stop loss (rules.exit.smartExit.stopLoss)",
        drop(f"{X}.smartExit.stopLoss"),
        put(f"{P}.enabled", False),
    ),
    "rr_ratio zero": case(
        f"{X}.smartExit.takeProfit.rrRatio", "greater than 0", put(f"{X}.smartExit.takeProfit.rrRatio", 0)
    ),
    "fibonacci without level": case(
        f"{X}.smartExit.takeProfit.level",
        "is required",
        put(f"{X}.smartExit.takeProfit", {"type": "fibonacci"}),
    ),
    "structure lookback too short": case(
        f"{X}.smartExit.stopLoss.lookbackBars",
        "at least 2",
        put(f"{X}.smartExit.stopLoss", {"type": "structure", "lookbackBars": 1}),
    ),
    "smart enabled not a boolean": case(
        f"{X}.smartExit.enabled", "true or false", put(f"{X}.smartExit.enabled", "yes")
    ),
    "exit conditions a list": case(f"{X}.conditions", "must be an object", put(f"{X}.conditions", [])),
    "exit conditions empty": case(
        f"{X}.conditions.conditions", "an empty group is invalid", put(f"{X}.conditions", {"conditions": []})
    ),
    # partial exits
    "partial close zero": case(
        f"{P}.levels[0].closePercent", "greater than 0", put(f"{P}.levels[0].closePercent", 0)
    ),
    "partial close over 100": case(
        f"{P}.levels[0].closePercent", "at most 100", put(f"{P}.levels[0].closePercent", 120)
    ),
    "partial closes add up over 100": case(
        f"{P}.levels", "closePercent adds up to 110", put(f"{P}.levels[1].closePercent", 60)
    ),
    "partial atR zero": case(f"{P}.levels[0].atR", "greater than 0", put(f"{P}.levels[0].atR", 0)),
    "partial levels out of order": case(
        f"{P}.levels[1].atR",
        "greater than the previous level's atR (1)",
        put(f"{P}.levels[1].atR", 0.5),
        drop(f"{P}.levels[1].moveStopTo"),
    ),
    "partial no levels": case(f"{P}.levels", "at least one level", put(f"{P}.levels", [])),
    "partial mode unknown": case(
        f"{P}.mode", "unknown partial exit mode 'serial'", put(f"{P}.mode", "serial")
    ),
    "move stop typo": case(
        f"{P}.levels[0].moveStopTo", "'breakeven' or a number", put(f"{P}.levels[0].moveStopTo", "break even")
    ),
    "move stop past the level": case(
        f"{P}.levels[1].moveStopTo", "less than the level's atR (2)", put(f"{P}.levels[1].moveStopTo", 2)
    ),
    "move stop negative": case(
        f"{P}.levels[1].moveStopTo", "at least 0", put(f"{P}.levels[1].moveStopTo", -1)
    ),
    "partial exits without a stop": case(
        P,
        "need a stop loss (rules.exit.stopLoss)",
        put(f"{X}.smartExit.enabled", False),
        drop(f"{X}.stopLoss"),
    ),
    # risk
    "lot missing": case("rules.riskManagement.lotSize", "is required", drop("rules.riskManagement.lotSize")),
    "lot zero": case(
        "rules.riskManagement.lotSize", "greater than 0", put("rules.riskManagement.lotSize", 0)
    ),
    "lot a string": case(
        "rules.riskManagement.lotSize", "not the string '0.1'", put("rules.riskManagement.lotSize", "0.1")
    ),
    "lot infinite": case(
        "rules.riskManagement.lotSize", "finite", put("rules.riskManagement.lotSize", math.inf)
    ),
    "risk missing": case("rules.riskManagement", "is required", drop("rules.riskManagement")),
    "max positions zero": case(
        "rules.riskManagement.maxPositions", "at least 1", put("rules.riskManagement.maxPositions", 0)
    ),
    "max positions fractional": case(
        "rules.riskManagement.maxPositions", "whole number", put("rules.riskManagement.maxPositions", 1.5)
    ),
    "max positions a boolean": case(
        "rules.riskManagement.maxPositions", "not true", put("rules.riskManagement.maxPositions", True)
    ),
    "risk method unknown": case(
        "rules.riskManagement.dynamicRisk.method",
        "unknown risk method 'martingale'",
        put("rules.riskManagement.dynamicRisk.method", "martingale"),
    ),
    "risk percent negative": case(
        "rules.riskManagement.dynamicRisk.riskPercent",
        "greater than 0",
        put("rules.riskManagement.dynamicRisk.riskPercent", -1),
    ),
    "dynamic risk without percent": case(
        "rules.riskManagement.dynamicRisk.riskPercent",
        "is required",
        put("rules.riskManagement.dynamicRisk", {"enabled": True, "method": "kelly"}),
    ),
    # filters
    "session near miss": case(
        "rules.sessionFilter.allowedSessions[1]",
        "did you mean 'NewYork'",
        put("rules.sessionFilter.allowedSessions[1]", "new york"),
    ),
    "session twice": case(
        "rules.sessionFilter.allowedSessions[1]",
        "listed twice",
        put("rules.sessionFilter.allowedSessions[1]", "London"),
    ),
    "sessions empty": case(
        "rules.sessionFilter.allowedSessions",
        "at least one session",
        put("rules.sessionFilter.allowedSessions", []),
    ),
    "sessions a string": case(
        "rules.sessionFilter.allowedSessions",
        "must be a list of sessions",
        put("rules.sessionFilter.allowedSessions", "London"),
    ),
    "filter enabled a string": case(
        "rules.sessionFilter.enabled", "true or false", put("rules.sessionFilter.enabled", "yes")
    ),
    "spread zero": case(
        "rules.spreadFilter.maxSpread", "greater than 0", put("rules.spreadFilter.maxSpread", 0)
    ),
    "spread missing while enabled": case(
        "rules.spreadFilter.maxSpread", "is required", drop("rules.spreadFilter.maxSpread")
    ),
    "volatility inverted": case(
        "rules.volatilityFilter.maxAtrPips",
        "greater than minAtrPips (60)",
        put("rules.volatilityFilter.minAtrPips", 60),
    ),
    "volatility negative": case(
        "rules.volatilityFilter.minAtrPips", "at least 0", put("rules.volatilityFilter.minAtrPips", -1)
    ),
    "volatility without bounds": case(
        "rules.volatilityFilter",
        "needs minAtrPips or maxAtrPips",
        put("rules.volatilityFilter", {"enabled": True}),
    ),
    "news minutes negative": case(
        "rules.newsFilter.minutesBefore", "at least 0", put("rules.newsFilter.minutesBefore", -5)
    ),
    "news impact unknown": case(
        "rules.newsFilter.impact[0]",
        "unknown impact level 'critical'",
        put("rules.newsFilter.impact", ["critical"]),
    ),
    "correlation above 1": case(
        "rules.correlationFilter.maxCorrelation",
        "at most 1",
        put("rules.correlationFilter.maxCorrelation", 1.5),
    ),
    "correlation zero": case(
        "rules.correlationFilter.maxCorrelation",
        "greater than 0",
        put("rules.correlationFilter.maxCorrelation", 0),
    ),
    "correlation lookback short": case(
        "rules.correlationFilter.lookbackBars", "at least 10", put("rules.correlationFilter.lookbackBars", 5)
    ),
    "regime near miss": case(
        "rules.regimeFilter.allowedRegimes[0]",
        "did you mean 'trending'",
        put("rules.regimeFilter.allowedRegimes", ["trendy"]),
    ),
    "mtf not higher": case(
        "rules.mtf.confirmTimeframes[0]",
        "M5 is not higher than the strategy's timeframe M15",
        put("rules.mtf.confirmTimeframes", ["M5"]),
    ),
    "mtf same timeframe": case(
        "rules.mtf.confirmTimeframes[1]", "not higher", put("rules.mtf.confirmTimeframes", ["H4", "M15"])
    ),
    "mtf unknown timeframe": case(
        "rules.mtf.confirmTimeframes[0]", "unknown timeframe 'H3'", put("rules.mtf.confirmTimeframes", ["H3"])
    ),
    "filter not an object": case(
        "rules.regimeFilter", "must be an object, not true", put("rules.regimeFilter", True)
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_strategy_is_rejected_with_the_path_and_the_reason(name: str) -> None:
    bad = CASES[name]
    data = copy.deepcopy(VALID)
    parse_strategy(copy.deepcopy(data))  # the base is valid: the change alone is the fault
    for change in bad.changes:
        change(data)

    with pytest.raises(StrategyError) as caught:
        parse_strategy(data)

    errors = caught.value.errors
    assert [error.path for error in errors] == [bad.path], str(caught.value)
    assert bad.fragment in errors[0].message
    assert str(caught.value) == f"{bad.path}: {errors[0].message}"


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_a_strategy_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategy([VALID])
    assert caught.value.errors == [FieldError("", "a strategy must be a JSON object, not a list")]
    assert str(caught.value) == "a strategy must be a JSON object, not a list"


def test_a_lot_size_below_the_symbol_minimum_names_the_minimum() -> None:
    spec = SymbolSpec(
        name="EURUSD", description="", digits=5, point=1e-5, pip=1e-4, contract_size=100_000, tick_size=1e-5,
        tick_value=1.0, volume_min=0.01, volume_max=100, volume_step=0.01, stops_level=0, spread=10,
        currency_base="EUR", currency_profit="USD", currency_margin="EUR", trade_mode=4, filling_mode=3,
    )  # fmt: skip
    data = copy.deepcopy(VALID)
    data["rules"]["riskManagement"]["lotSize"] = 0.004

    with pytest.raises(StrategyError) as caught:
        parse_strategy(data, symbol_spec=lambda symbol: spec if symbol == "EURUSD" else None)

    assert caught.value.errors == [
        FieldError("rules.riskManagement.lotSize", "0.004 rounds down to 0.00, below EURUSD's minimum 0.01")
    ]


def test_every_fault_of_a_payload_is_listed_in_one_pass() -> None:
    data = copy.deepcopy(VALID)
    data["strategyId"] = "bad id!"
    data["timeframe"] = "M10"
    data["rules"]["entry"]["conditions"][1]["conditions"][0]["indicator"] = "emma_9"
    data["rules"]["entry"]["conditions"].append({"indicator": "rsi", "condition": "above", "value": 50})
    data["rules"]["exit"]["stopLos"] = {"type": "pips", "value": 10}
    data["rules"]["exit"]["partialExits"]["levels"][0]["closePercent"] = 0
    data["rules"]["riskManagement"]["lotSize"] = "0.1"
    data["rules"]["sessionFilter"]["allowedSessions"] = ["london"]
    data["rules"]["correlationFilter"]["lookbackBars"] = 3

    with pytest.raises(StrategyError) as caught:
        parse_strategy(data)

    lines = str(caught.value).splitlines()
    assert [error.path for error in caught.value.errors] == [
        "strategyId",
        "timeframe",
        "rules.entry.conditions[1].conditions[0].indicator",
        "rules.entry.conditions[2].condition",
        "rules.exit.stopLos",
        "rules.exit.partialExits.levels[0].closePercent",
        "rules.riskManagement.lotSize",
        "rules.sessionFilter.allowedSessions[0]",
        "rules.correlationFilter.lookbackBars",
    ]
    assert lines[2] == "rules.entry.conditions[1].conditions[0].indicator: unknown indicator 'emma_9'"
    assert "did you mean 'London'" in lines[7]
    assert len(lines) == 9


def test_nothing_of_the_input_is_changed_by_a_rejection() -> None:
    data = copy.deepcopy(VALID)
    data["rules"]["exit"]["stopLoss"]["value"] = -1
    before = copy.deepcopy(data)

    with pytest.raises(StrategyError):
        parse_strategy(data)

    assert data == before


def test_a_hostile_nesting_depth_is_an_error_not_a_crash() -> None:
    group: dict[str, Any] = {"indicator": "close", "condition": ">", "value": 1}
    for _ in range(200):
        group = {"logic": "AND", "conditions": [group]}
    data = copy.deepcopy(VALID)
    data["rules"]["entry"]["conditions"] = [group]

    with pytest.raises(StrategyError) as caught:
        parse_strategy(data)

    (error,) = caught.value.errors
    assert error.path == "rules.entry.conditions[0]" + ".conditions[0]" * 64
    assert error.message == "groups are nested more than 64 levels deep"
