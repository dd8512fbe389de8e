"""The strategy model: ``parse_strategy`` turns a strategy's JSON into a frozen ``Strategy`` tree.

Everything is validated before anything runs; a bad strategy raises ``StrategyError`` listing every
fault with its field path (``rules.entry.conditions[1].indicator: unknown indicator 'emma_9'``).
The types live in ``model_types`` and are re-exported here. Choices made where the format is silent:
- ``strategyName`` defaults to the id; ``side`` to buy; ``logic`` to AND (any case accepted);
  ``maxPositions`` to 1; ``atrPeriod`` to 14; partial exit ``mode`` to sequential.
- Unknown keys are errors everywhere (a typo such as ``stopLos`` must never be ignored).
- An ``enabled`` flag left out of a block that is given means enabled (a filter you write is a
  filter you get); a block left out is disabled. Fields a block needs are required only while it
  is enabled, but every field given is checked.
- Disabled or absent filters keep neutral values (no spread limit, no sessions...); the news
  filter defaults to 30 minutes before and after high-impact news, the correlation filter to 0.8
  over 100 bars; dynamic risk defaults to the fixed method at 1 %.
- ``exit`` may be absent: the strategy is valid without stop or target (the summary says so).
- ``rr_ratio`` targets and enabled partial exits (both measured in R) need a stop loss; sequential
  partial levels must rise in ``atR``; a fixed-price stop and target of a one-sided strategy must
  lie on the right sides of each other.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from mt5console.core.broker.models import Side, SymbolSpec
from mt5console.core.strategy.exit_parsing import EXIT_FIELDS, read_exits
from mt5console.core.strategy.filter_parsing import FILTER_FIELDS, read_filters
from mt5console.core.strategy.model_types import (
    PLAIN_STOP_TYPES,
    PLAIN_TARGET_TYPES,
    SMART_STOP_TYPES,
    SMART_TARGET_TYPES,
    AtrLevel,
    CorrelationFilter,
    DynamicRisk,
    EntryBlock,
    ExitRules,
    FibonacciLevel,
    Filters,
    FixedLevel,
    LevelType,
    MarketRegime,
    MtfFilter,
    NewsFilter,
    NewsImpact,
    PartialExits,
    PartialLevel,
    PartialMode,
    RegimeFilter,
    RiskManagement,
    RiskMethod,
    RiskRewardLevel,
    SessionFilter,
    SmartExit,
    SpreadFilter,
    StopLossSpec,
    Strategy,
    StructureLevel,
    TakeProfitSpec,
    TradingSession,
    VolatilityFilter,
)
from mt5console.core.strategy.validation import (
    GROUP_FIELDS,
    FieldError,
    Reader,
    Section,
    StrategyError,
    describe,
    format_number,
    join_path,
    read_group,
    read_json_object,
)
from mt5console.core.timeframes import TIMEFRAME_NAMES

__all__ = [
    "PLAIN_STOP_TYPES",
    "PLAIN_TARGET_TYPES",
    "SMART_STOP_TYPES",
    "SMART_TARGET_TYPES",
    "AtrLevel",
    "CorrelationFilter",
    "DynamicRisk",
    "EntryBlock",
    "ExitRules",
    "FibonacciLevel",
    "FieldError",
    "Filters",
    "FixedLevel",
    "LevelType",
    "MarketRegime",
    "MtfFilter",
    "NewsFilter",
    "NewsImpact",
    "PartialExits",
    "PartialLevel",
    "PartialMode",
    "RegimeFilter",
    "RiskManagement",
    "RiskMethod",
    "RiskRewardLevel",
    "SessionFilter",
    "SmartExit",
    "SpreadFilter",
    "StopLossSpec",
    "Strategy",
    "StrategyError",
    "StructureLevel",
    "SymbolSpecLookup",
    "TakeProfitSpec",
    "TradingSession",
    "VolatilityFilter",
    "load_strategy_file",
    "parse_strategy",
]

SymbolSpecLookup = Callable[[str], SymbolSpec | None]

TOP_FIELDS: Final = ("strategyId", "strategyName", "symbol", "timeframe", "rules")
RULES_FIELDS: Final = ("entry", "entries", "exit", "riskManagement", *FILTER_FIELDS)
ENTRY_FIELDS: Final = ("side", *GROUP_FIELDS)
RISK_FIELDS: Final = ("lotSize", "maxPositions", "dynamicRisk")
DYNAMIC_RISK_FIELDS: Final = ("enabled", "method", "riskPercent")
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]+")
MAX_ID_LENGTH: Final = 64
# Broker symbols: EURUSD, EURUSD.m, XAUUSD#, US30.cash, #AAPL, BTCUSD!, EUR/USD, S&P500.
_SYMBOL_PATTERN: Final = re.compile(r"[A-Za-z0-9._#!+\-/$&]{1,32}")


def load_strategy_file(
    path: str | os.PathLike[str], *, symbol_spec: SymbolSpecLookup | None = None
) -> Strategy:
    """Read and validate a strategy file; StrategyError names the file or the faulty fields."""
    return parse_strategy(read_json_object(path), symbol_spec=symbol_spec)


def parse_strategy(data: object, *, symbol_spec: SymbolSpecLookup | None = None) -> Strategy:
    """Validate a strategy's JSON (already decoded) and build its model, or raise StrategyError.

    ``symbol_spec`` looks up the symbol's volume limits; when it returns a spec, a lot size that
    rounds down below the minimum is an error (one above the maximum is clamped when sized).
    """
    if not isinstance(data, dict):
        raise StrategyError([FieldError("", f"a strategy must be a JSON object, not {describe(data)}")])
    reader = Reader()
    reader.check_keys(data, "", TOP_FIELDS)
    top = Section(reader, data, "")
    strategy_id = _read_id(top)
    name = _read_name(top)
    symbol = _read_symbol(top)
    timeframe = top.choice("timeframe", TIMEFRAME_NAMES, "timeframe", required=True)
    rules = top.sub("rules", RULES_FIELDS, required=True)
    entries = exits = risk = filters = None
    if rules is not None:
        entries = _read_entries(rules)
        sides = frozenset(entry.side for entry in entries or ())
        exit_section = rules.sub("exit", EXIT_FIELDS)
        exits = read_exits(exit_section, sides) if exit_section is not None else ExitRules()
        risk = _read_risk(rules, symbol, symbol_spec)
        filters = read_filters(rules, timeframe)
    if (
        reader.errors
        or strategy_id is None
        or symbol is None
        or timeframe is None
        or entries is None
        or exits is None
        or risk is None
        or filters is None
    ):
        # Every None above comes with an error; the fallback message only guards that invariant.
        raise StrategyError(reader.errors or [FieldError("", "the strategy is incomplete")])
    return Strategy(
        strategy_id=strategy_id,
        name=name or strategy_id,
        symbol=symbol,
        timeframe=timeframe,
        entries=entries,
        exits=exits,
        risk=risk,
        filters=filters,
        raw=copy.deepcopy(data),
    )


# --- identity ----------------------------------------------------------------------------------


def _read_id(top: Section) -> str | None:
    value = top.string("strategyId", required=True)
    path = top.path_of("strategyId")
    if value is None:
        return None
    if not value:
        top.reader.error(path, "must not be empty")
    elif len(value) > MAX_ID_LENGTH:
        top.reader.error(path, f"is {len(value)} characters long; at most {MAX_ID_LENGTH}")
    elif not _ID_PATTERN.fullmatch(value):
        bad = "".join(dict.fromkeys(ch for ch in value if not _ID_PATTERN.fullmatch(ch)))
        top.reader.error(path, f"may use only letters, digits, '_', '-' and '.', not {bad!r}")
    else:
        return value
    return None


def _read_name(top: Section) -> str | None:
    """The display name; blank or absent means the id is shown."""
    value = top.string("strategyName")
    if value is not None and len(value.strip()) > 200:
        top.reader.error(top.path_of("strategyName"), "is longer than 200 characters")
        return None
    return value.strip() if value else None


def _read_symbol(top: Section) -> str | None:
    value = top.string("symbol", required=True)
    if value is None:
        return None
    if not value:
        top.reader.error(top.path_of("symbol"), "must not be empty")
    elif not _SYMBOL_PATTERN.fullmatch(value) or not any(ch.isalnum() for ch in value):
        top.reader.error(
            top.path_of("symbol"),
            f"{value!r} is not a broker symbol"
            " (letters, digits and . _ # ! + - / $ &, at most 32 characters)",
        )
    else:
        return value
    return None


# --- entries -----------------------------------------------------------------------------------


def _read_entries(rules: Section) -> tuple[EntryBlock, ...] | None:
    reader = rules.reader
    if rules.has("entry") and rules.has("entries"):
        reader.error(rules.path, "has both 'entry' and 'entries'; give one of them")
    elif not rules.has("entry") and not rules.has("entries"):
        reader.error(rules.path_of("entry"), "is required (or 'entries', a list of entry blocks)")
        return None
    blocks: list[EntryBlock | None] = []
    if rules.has("entry"):
        blocks.append(_read_entry(rules.sub("entry", ENTRY_FIELDS)))
    items = rules.items("entries")
    if items == []:
        reader.error(rules.path_of("entries"), "must list at least one entry block")
    for index, item in enumerate(items or []):
        blocks.append(
            _read_entry(reader.section(item, join_path(rules.path_of("entries"), index), ENTRY_FIELDS))
        )
    valid = tuple(block for block in blocks if block is not None)
    return valid if valid and len(valid) == len(blocks) else None


def _read_entry(section: Section | None) -> EntryBlock | None:
    if section is None:
        return None
    side = section.choice("side", list(Side), "side", default=Side.BUY)
    group = read_group(section)
    return EntryBlock(side, group) if side is not None and group is not None else None


# --- risk --------------------------------------------------------------------------------------


def _read_risk(
    rules: Section, symbol: str | None, symbol_spec: SymbolSpecLookup | None
) -> RiskManagement | None:
    section = rules.sub("riskManagement", RISK_FIELDS, required=True)
    if section is None:
        return None
    lot_size = section.number("lotSize", required=True, above=0)
    if lot_size is not None and symbol is not None and symbol_spec is not None:
        spec = symbol_spec(symbol)
        if spec is not None:
            _check_lot_size(section, lot_size, spec)
    max_positions = section.integer("maxPositions", default=1, minimum=1)
    dynamic = DynamicRisk()
    dynamic_section = section.sub("dynamicRisk", DYNAMIC_RISK_FIELDS)
    if dynamic_section is not None:
        enabled = dynamic_section.boolean("enabled", default=True)
        method = dynamic_section.choice("method", list(RiskMethod), "risk method", default=RiskMethod.FIXED)
        percent = dynamic_section.number("riskPercent", required=bool(enabled), above=0, maximum=100)
        if enabled is None or method is None or (percent is None and dynamic_section.has("riskPercent")):
            return None
        dynamic = DynamicRisk(enabled, method, percent if percent is not None else DynamicRisk().risk_percent)
    if lot_size is None or max_positions is None:
        return None
    return RiskManagement(lot_size, max_positions, dynamic)


def _check_lot_size(section: Section, lot_size: float, spec: SymbolSpec) -> None:
    """A lot size below the symbol's minimum once rounded down (the format: "an error, never a silent
    minimum lot"). One above the maximum is valid: the format clamps it to ``volume_max``, as sizing does."""
    path = section.path_of("lotSize")
    # Decimal on the shortest repr: 0.03 / 0.01 must be 3 steps, not 2.9999999999999996.
    lot = Decimal(repr(lot_size))
    step = Decimal(repr(spec.volume_step))
    rounded = (lot / step).to_integral_value(rounding=ROUND_FLOOR) * step if step > 0 else lot
    decimals = max(0, -int(step.normalize().as_tuple().exponent)) if step > 0 else 2
    shown, minimum = format_number(lot_size), format_number(spec.volume_min)
    if rounded < Decimal(repr(spec.volume_min)):
        if rounded == lot:
            section.reader.error(path, f"{shown} is below {spec.name}'s minimum {minimum}")
        else:
            section.reader.error(
                path, f"{shown} rounds down to {rounded:.{decimals}f}, below {spec.name}'s minimum {minimum}"
            )
