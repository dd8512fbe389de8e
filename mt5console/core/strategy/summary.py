"""A strategy in one plain-language paragraph, for ``mt5console check`` and the strategies pane.

The summary is written from the parsed model (never from the raw JSON), so it says what the engine
will actually do: the active stop and target (the smart ones when smart exit is enabled), only the
filters that are enabled, "no stop loss" plainly when there is none, and the volume as risk.py sizes
it (a lot size only where the volume is that lot size).
"""

from __future__ import annotations

from typing import Final

from mt5console.core.broker.models import Side
from mt5console.core.strategy.condition_tree import Comparator, Comparison, ConditionGroup
from mt5console.core.strategy.model_types import (
    AtrLevel,
    ExitRules,
    FibonacciLevel,
    Filters,
    FixedLevel,
    LevelType,
    PartialExits,
    RiskManagement,
    RiskMethod,
    RiskRewardLevel,
    StopLossSpec,
    Strategy,
    StructureLevel,
    TakeProfitSpec,
)
from mt5console.core.strategy.operands import Operand
from mt5console.core.strategy.risk import KELLY_MIN_TRADES
from mt5console.core.strategy.validation import format_number

# The ATR the executor sizes positions with (executor.ATR_14, passed to risk.size_position).
SIZING_ATR_PERIOD: Final = 14

_COMPARATOR_WORDS: Final = {
    Comparator.CROSSES_ABOVE: "crosses above",
    Comparator.CROSSES_BELOW: "crosses below",
    Comparator.GREATER_THAN: ">",
    Comparator.LESS_THAN: "<",
    Comparator.GREATER_OR_EQUAL: ">=",
    Comparator.LESS_OR_EQUAL: "<=",
    Comparator.EQUALS: "=",
}


def summarize(strategy: Strategy) -> str:
    """What the strategy will do, as one paragraph ending with a full stop."""
    # Only a fixed volume is said with the entry: a sized one is said by its risk clause.
    lots = f" {_lots(strategy.risk.lot_size)}" if _sizing_method(strategy.risk) == RiskMethod.FIXED else ""
    entries = ", and ".join(
        f"{'buys' if entry.side == Side.BUY else 'sells'}{lots} when {describe_group(entry.conditions)}"
        for entry in strategy.entries
    )
    positions = strategy.risk.max_positions
    clauses = [
        f"{strategy.name} ({strategy.strategy_id}) trades {strategy.symbol} on {strategy.timeframe}:"
        f" {entries}, at most {positions} position{'s' if positions != 1 else ''}",
        *_risk_clauses(strategy.risk, has_stop=strategy.exits.active_stop_loss is not None),
        *_exit_clauses(strategy.exits),
        *_filter_clauses(strategy.filters),
    ]
    return "; ".join(clauses) + "."


def describe_group(group: ConditionGroup, *, nested: bool = False) -> str:
    """``a AND (b OR c)``: nested groups of more than one condition are parenthesised."""
    text = f" {group.logic.value} ".join(
        describe_group(child, nested=True)
        if isinstance(child, ConditionGroup)
        else describe_comparison(child)
        for child in group.children
    )
    return f"({text})" if nested and len(group.children) > 1 else text


def describe_comparison(comparison: Comparison) -> str:
    return (
        f"{_operand(comparison.left)} {_COMPARATOR_WORDS[comparison.comparator]} {_operand(comparison.right)}"
    )


def _operand(side: Operand | float) -> str:
    return side.name if isinstance(side, Operand) else format_number(side)


def _lots(volume: float) -> str:
    return f"{format_number(volume)} lot{'' if volume == 1 else 's'}"


def _sizing_method(risk: RiskManagement) -> RiskMethod:
    """The method risk.size_position uses: dynamic risk's, or the fixed lot size without it."""
    return risk.dynamic.method if risk.dynamic.enabled else RiskMethod.FIXED


def _risk_clauses(risk: RiskManagement, *, has_stop: bool) -> list[str]:
    """How risk.size_position sizes each position, method by method (see its module's docstring)."""
    dynamic = risk.dynamic
    if not dynamic.enabled:
        return []
    percent = f"{format_number(dynamic.risk_percent)}% of the balance"
    atr = f"one ATR({SIZING_ATR_PERIOD})"
    # atr and kelly spread the money at risk over the stop when there is one, else over one ATR.
    distance = "the stop loss distance" if has_stop else f"{atr} (no stop loss)"
    if dynamic.method == RiskMethod.FIXED:
        return [f"dynamic risk's fixed method keeps the lot size (riskPercent {percent} is not used)"]
    if dynamic.method == RiskMethod.ATR:
        return [f"each position sized to risk {percent} over {distance}"]
    if dynamic.method == RiskMethod.VOLATILITY:
        return [f"each position sized so that {atr} against it costs {percent}, whatever the stop"]
    return [
        f"each position sized by the Kelly fraction of the strategy's closed trades, risking at most "
        f"{percent} over {distance} ({_lots(risk.lot_size)} until {KELLY_MIN_TRADES} closed trades with "
        "a profit or loss, no entry while they show no edge)"
    ]


def _exit_clauses(exits: ExitRules) -> list[str]:
    stop, target = exits.active_stop_loss, exits.active_take_profit
    text = f"stop loss {describe_level(stop)}" if stop is not None else "no stop loss"
    text += f", take profit {describe_level(target)}" if target is not None else ", no take profit"
    if exits.smart.enabled:
        text += " (smart exit)"
    clauses = [text]
    if exits.partial.enabled:
        clauses.append(_partial_clause(exits.partial))
    if exits.conditions is not None:
        clauses.append(f"closes when {describe_group(exits.conditions)}")
    return clauses


def describe_level(level: StopLossSpec | TakeProfitSpec) -> str:
    if isinstance(level, FixedLevel):
        if level.type == LevelType.PIPS:
            return f"{format_number(level.value)} pips"
        if level.type == LevelType.PRICE:
            return f"at {format_number(level.value)}"
        return f"{format_number(level.value)}% from entry"
    if isinstance(level, AtrLevel):
        return f"{float(level.multiplier)!r} x ATR({level.period})"
    if isinstance(level, RiskRewardLevel):
        return f"{format_number(level.ratio)} R"
    if isinstance(level, StructureLevel):
        return f"beyond the nearest swing of the last {level.lookback_bars} bars"
    if isinstance(level, FibonacciLevel):
        return f"at the {format_number(level.level)} Fibonacci extension"
    raise TypeError(f"unknown exit level {level!r}")


def _partial_clause(partial: PartialExits) -> str:
    steps = []
    for level in partial.levels:
        step = f"{format_number(level.close_percent)}% at {format_number(level.at_r)} R"
        if level.move_stop_to_r is not None:
            where = "breakeven" if level.move_stop_to_r == 0 else f"{format_number(level.move_stop_to_r)} R"
            step += f" (stop to {where})"
        steps.append(step)
    return f"closes {', '.join(steps)} ({partial.mode.value})"


def _filter_clauses(filters: Filters) -> list[str]:
    clauses: list[str] = []
    if filters.session.enabled:
        clauses.append(f"only during {', '.join(filters.session.sessions)}")
    if filters.spread.enabled:
        clauses.append(f"only when spread <= {format_number(filters.spread.max_spread_pips)} pips")
    volatility = filters.volatility
    if volatility.enabled:
        low, high = volatility.min_atr_pips, volatility.max_atr_pips
        if low > 0 and high != float("inf"):
            clauses.append(f"only when ATR is between {format_number(low)} and {format_number(high)} pips")
        elif high != float("inf"):
            clauses.append(f"only when ATR <= {format_number(high)} pips")
        else:
            clauses.append(f"only when ATR >= {format_number(low)} pips")
    news = filters.news
    if news.enabled:
        impact = " or ".join(news.impact)
        clauses.append(
            f"not from {format_number(news.minutes_before)} minutes before to"
            f" {format_number(news.minutes_after)} minutes after {impact}-impact news"
        )
    correlation = filters.correlation
    if correlation.enabled:
        clauses.append(
            f"only while correlation stays <= {format_number(correlation.max_correlation)}"
            f" over {correlation.lookback_bars} bars"
        )
    if filters.regime.enabled:
        clauses.append(f"only in a {' or '.join(filters.regime.regimes)} market")
    if filters.mtf.enabled:
        clauses.append(f"confirmed on {', '.join(filters.mtf.confirm_timeframes)}")
    return clauses
