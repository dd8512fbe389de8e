"""Reading the ``rules.exit`` block: plain and smart stop/target, partial exits, exit conditions."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

from mt5console.core.broker.models import Side
from mt5console.core.strategy.condition_tree import ConditionGroup
from mt5console.core.strategy.model_types import (
    PLAIN_STOP_TYPES,
    PLAIN_TARGET_TYPES,
    SMART_STOP_TYPES,
    SMART_TARGET_TYPES,
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
from mt5console.core.strategy.validation import (
    GROUP_FIELDS,
    Section,
    describe,
    format_number,
    join_path,
    read_group,
)

EXIT_FIELDS: Final = ("stopLoss", "takeProfit", "smartExit", "partialExits", "conditions")
SMART_FIELDS: Final = ("enabled", "stopLoss", "takeProfit")
PARTIAL_FIELDS: Final = ("enabled", "mode", "levels")
PARTIAL_LEVEL_FIELDS: Final = ("atR", "closePercent", "moveStopTo")
LEVEL_FIELDS: Final[dict[LevelType, tuple[str, ...]]] = {
    LevelType.PIPS: ("type", "value"),
    LevelType.PRICE: ("type", "value"),
    LevelType.PERCENT: ("type", "value"),
    LevelType.ATR: ("type", "atrMultiplier", "atrPeriod"),
    LevelType.RR_RATIO: ("type", "rrRatio"),
    LevelType.STRUCTURE: ("type", "lookbackBars"),
    LevelType.FIBONACCI: ("type", "level"),
}
# Why a known type is refused where it was written.
_ONLY_FOR: Final = {
    LevelType.RR_RATIO: "for take profit only",
    LevelType.STRUCTURE: "for the smart stop loss only (smartExit.stopLoss)",
    LevelType.FIBONACCI: "for the smart take profit only (smartExit.takeProfit)",
}
_ANY_LEVEL_FIELD: Final = tuple(dict.fromkeys(name for names in LEVEL_FIELDS.values() for name in names))


def read_exits(section: Section, sides: frozenset[Side]) -> ExitRules | None:
    reader = section.reader
    stop, target = _read_stop_and_target(section, PLAIN_STOP_TYPES, PLAIN_TARGET_TYPES, sides)
    smart = SmartExit()
    smart_section = section.sub("smartExit", SMART_FIELDS)
    if smart_section is not None:
        enabled = smart_section.boolean("enabled", default=True)
        smart_stop, smart_target = _read_stop_and_target(
            smart_section, SMART_STOP_TYPES, SMART_TARGET_TYPES, sides
        )
        smart = SmartExit(bool(enabled), smart_stop, smart_target)
    partial = PartialExits()
    partial_section = section.sub("partialExits", PARTIAL_FIELDS)
    if partial_section is not None:
        partial = _read_partial_exits(partial_section) or partial
        stop_block = smart_section if smart.enabled and smart_section is not None else section
        if partial.enabled and not stop_block.has("stopLoss"):
            reader.error(
                partial_section.path,
                f"partial exits are measured in R (the initial risk) and need a stop loss"
                f" ({stop_block.path_of('stopLoss')})",
            )
    conditions: ConditionGroup | None = None
    group_section = section.sub("conditions", GROUP_FIELDS)
    if group_section is not None:
        conditions = read_group(group_section)
    return ExitRules(stop, target, smart, partial, conditions)


def _read_stop_and_target(
    block: Section,
    stop_types: Sequence[LevelType],
    target_types: Sequence[LevelType],
    sides: frozenset[Side],
) -> tuple[StopLossSpec | None, TakeProfitSpec | None]:
    stop: StopLossSpec | None = None
    target: TakeProfitSpec | None = None
    if block.has("stopLoss"):
        level = _read_level(block, "stopLoss", stop_types, "stop loss")
        stop = level if isinstance(level, FixedLevel | AtrLevel | StructureLevel) else None
    if block.has("takeProfit"):
        level = _read_level(block, "takeProfit", target_types, "take profit")
        target = (
            level if isinstance(level, FixedLevel | AtrLevel | RiskRewardLevel | FibonacciLevel) else None
        )
        if isinstance(target, RiskRewardLevel) and not block.has("stopLoss"):
            block.reader.error(
                block.path_of("takeProfit"),
                f"type 'rr_ratio' is a multiple of the stop distance and needs a stop loss"
                f" ({block.path_of('stopLoss')})",
            )
    _check_price_order(block, stop, target, sides)
    return stop, target


def _read_level(
    block: Section, key: str, allowed: Sequence[LevelType], role: str
) -> FixedLevel | AtrLevel | RiskRewardLevel | StructureLevel | FibonacciLevel | None:
    section = block.sub(key, _ANY_LEVEL_FIELD)
    if section is None:
        return None
    reader = section.reader
    type_path = section.path_of("type")
    raw_type = section.require("type")
    if raw_type is None:
        return None
    if isinstance(raw_type, str) and raw_type in list(LevelType) and raw_type not in allowed:
        reader.error(
            type_path,
            f"{role} type {raw_type!r} is {_ONLY_FOR[LevelType(raw_type)]};"
            f" expected one of {', '.join(allowed)}",
        )
        return None
    level_type = reader.choice(raw_type, type_path, allowed, f"{role} type")
    if level_type is None:
        return None
    for name in section.data:
        if name in _ANY_LEVEL_FIELD and name not in LEVEL_FIELDS[level_type]:
            takes = ", ".join(LEVEL_FIELDS[level_type][1:])
            reader.error(
                section.path_of(name), f"does not apply to type {level_type.value!r} (it takes {takes})"
            )
    if level_type in (LevelType.PIPS, LevelType.PRICE, LevelType.PERCENT):
        below = 100.0 if level_type == LevelType.PERCENT else None
        value = section.number("value", required=True, above=0, below=below)
        return FixedLevel(level_type, value) if value is not None else None
    if level_type == LevelType.ATR:
        multiplier = section.number("atrMultiplier", required=True, above=0)
        period = section.integer("atrPeriod", default=14, minimum=1)
        return AtrLevel(multiplier, period) if multiplier is not None and period is not None else None
    if level_type == LevelType.RR_RATIO:
        ratio = section.number("rrRatio", required=True, above=0)
        return RiskRewardLevel(ratio) if ratio is not None else None
    if level_type == LevelType.STRUCTURE:
        bars = section.integer("lookbackBars", required=True, minimum=2)
        return StructureLevel(bars) if bars is not None else None
    fib = section.number("level", required=True, above=0)
    return FibonacciLevel(fib) if fib is not None else None


def _check_price_order(
    block: Section, stop: StopLossSpec | None, target: TakeProfitSpec | None, sides: frozenset[Side]
) -> None:
    """Absolute stop and target prices must bracket the entry: below/above for a buy, mirrored for a sell."""
    if not (isinstance(stop, FixedLevel) and isinstance(target, FixedLevel) and len(sides) == 1):
        return
    if stop.type != LevelType.PRICE or target.type != LevelType.PRICE:
        return
    (side,) = sides
    wrong = stop.value >= target.value if side == Side.BUY else stop.value <= target.value
    if wrong:
        relation = "above" if side == Side.BUY else "below"
        block.reader.error(
            join_path(block.path_of("takeProfit"), "value"),
            f"a {side.value}'s take profit ({format_number(target.value)}) must be {relation}"
            f" its stop loss ({format_number(stop.value)})",
        )


def _read_partial_exits(section: Section) -> PartialExits | None:
    reader = section.reader
    enabled = section.boolean("enabled", default=True)
    mode = section.choice("mode", list(PartialMode), "partial exit mode", default=PartialMode.SEQUENTIAL)
    items = section.items("levels", required=bool(enabled))
    levels_path = section.path_of("levels")
    if enabled and items == []:
        reader.error(levels_path, "must list at least one level while partial exits are enabled")
    levels: list[PartialLevel | None] = []
    for index, item in enumerate(items or []):
        level_section = reader.section(item, join_path(levels_path, index), PARTIAL_LEVEL_FIELDS)
        levels.append(_read_partial_level(level_section) if level_section is not None else None)
    valid = [level for level in levels if level is not None]
    if len(valid) != len(levels) or enabled is None or mode is None:
        return None
    total = sum(level.close_percent for level in valid)
    if total > 100 + 1e-9:
        reader.error(
            levels_path, f"closePercent adds up to {format_number(total)}; at most 100 can be closed"
        )
    if mode == PartialMode.SEQUENTIAL:
        for index, (before, level) in enumerate(itertools.pairwise(valid), start=1):
            if level.at_r <= before.at_r:
                reader.error(
                    join_path(join_path(levels_path, index), "atR"),
                    f"must be greater than the previous level's atR ({format_number(before.at_r)}):"
                    " sequential levels are taken in order",
                )
    return PartialExits(enabled, mode, tuple(valid))


def _read_partial_level(section: Section) -> PartialLevel | None:
    at_r = section.number("atR", required=True, above=0)
    close_percent = section.number("closePercent", required=True, above=0, maximum=100)
    move: float | None = None
    if section.has("moveStopTo"):
        raw = section.data["moveStopTo"]
        path = section.path_of("moveStopTo")
        if raw == "breakeven":
            move = 0.0
        elif isinstance(raw, str):
            section.reader.error(path, f"must be 'breakeven' or a number of R, not {describe(raw)}")
            return None
        else:
            move = section.reader.number(raw, path, minimum=0)
            if move is None:
                return None
            if at_r is not None and move >= at_r:
                section.reader.error(
                    path,
                    f"must be less than the level's atR ({format_number(at_r)}): the stop cannot move"
                    " to where the level closes",
                )
                return None
    if at_r is None or close_percent is None:
        return None
    return PartialLevel(at_r, close_percent, move)
