"""The types of the strategy model: a frozen, fully typed tree (STRATEGY_FORMAT.md).

``model.parse_strategy`` builds them from a strategy's JSON after validating every field; import
them from ``mt5console.core.strategy.model``, which re-exports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Final

from mt5console.core.broker.models import Side
from mt5console.core.strategy.condition_tree import ConditionGroup
from mt5console.core.strategy.operands import Operand

# --- exits -------------------------------------------------------------------------------------


class LevelType(StrEnum):
    PIPS = "pips"
    PRICE = "price"
    PERCENT = "percent"
    ATR = "atr"
    RR_RATIO = "rr_ratio"
    STRUCTURE = "structure"
    FIBONACCI = "fibonacci"


@dataclass(frozen=True, slots=True)
class FixedLevel:
    """``pips``: a distance in pips; ``price``: an absolute price; ``percent``: of the entry price."""

    type: LevelType  # PIPS, PRICE or PERCENT
    value: float


@dataclass(frozen=True, slots=True)
class AtrLevel:
    """A distance of ``multiplier`` x ATR(``period``) at entry."""

    multiplier: float
    period: int = 14
    type: ClassVar[LevelType] = LevelType.ATR


@dataclass(frozen=True, slots=True)
class RiskRewardLevel:
    """Take profit only: ``ratio`` x the stop distance."""

    ratio: float
    type: ClassVar[LevelType] = LevelType.RR_RATIO


@dataclass(frozen=True, slots=True)
class StructureLevel:
    """Smart stop only: beyond the nearest swing high/low of the last ``lookback_bars`` bars."""

    lookback_bars: int
    type: ClassVar[LevelType] = LevelType.STRUCTURE


@dataclass(frozen=True, slots=True)
class FibonacciLevel:
    """Smart target only: the ``level`` extension (1.618...) of the last swing."""

    level: float
    type: ClassVar[LevelType] = LevelType.FIBONACCI


StopLossSpec = FixedLevel | AtrLevel | StructureLevel
TakeProfitSpec = FixedLevel | AtrLevel | RiskRewardLevel | FibonacciLevel

# Which types a stop or target may have, in a plain exit block and in smartExit.
_FIXED: Final = (LevelType.PIPS, LevelType.PRICE, LevelType.PERCENT)
PLAIN_STOP_TYPES: Final = (*_FIXED, LevelType.ATR)
PLAIN_TARGET_TYPES: Final = (*_FIXED, LevelType.ATR, LevelType.RR_RATIO)
SMART_STOP_TYPES: Final = (*_FIXED, LevelType.ATR, LevelType.STRUCTURE)
SMART_TARGET_TYPES: Final = (*_FIXED, LevelType.ATR, LevelType.RR_RATIO, LevelType.FIBONACCI)


@dataclass(frozen=True, slots=True)
class SmartExit:
    """When enabled, replaces the plain stop and target."""

    enabled: bool = False
    stop_loss: StopLossSpec | None = None
    take_profit: TakeProfitSpec | None = None


class PartialMode(StrEnum):
    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"


@dataclass(frozen=True, slots=True)
class PartialLevel:
    at_r: float  # multiples of the initial risk
    close_percent: float  # of the ORIGINAL volume, in (0, 100]
    move_stop_to_r: float | None  # None = leave the stop; 0.0 = breakeven


@dataclass(frozen=True, slots=True)
class PartialExits:
    enabled: bool = False
    mode: PartialMode = PartialMode.SEQUENTIAL
    levels: tuple[PartialLevel, ...] = ()


@dataclass(frozen=True, slots=True)
class ExitRules:
    stop_loss: StopLossSpec | None = None
    take_profit: TakeProfitSpec | None = None
    smart: SmartExit = field(default_factory=SmartExit)
    partial: PartialExits = field(default_factory=PartialExits)
    conditions: ConditionGroup | None = None  # closes the position when it holds on a closed bar

    @property
    def active_stop_loss(self) -> StopLossSpec | None:
        """The stop the executor places: the smart one when smart exits are enabled."""
        return self.smart.stop_loss if self.smart.enabled else self.stop_loss

    @property
    def active_take_profit(self) -> TakeProfitSpec | None:
        return self.smart.take_profit if self.smart.enabled else self.take_profit


# --- risk and filters --------------------------------------------------------------------------


class RiskMethod(StrEnum):
    FIXED = "fixed"
    KELLY = "kelly"
    ATR = "atr"
    VOLATILITY = "volatility"


@dataclass(frozen=True, slots=True)
class DynamicRisk:
    enabled: bool = False
    method: RiskMethod = RiskMethod.FIXED
    risk_percent: float = 1.0  # of the balance, per trade


@dataclass(frozen=True, slots=True)
class RiskManagement:
    lot_size: float  # as written; the executor rounds it down to the symbol's volume_step
    max_positions: int = 1
    dynamic: DynamicRisk = field(default_factory=DynamicRisk)


class TradingSession(StrEnum):
    SYDNEY = "Sydney"
    TOKYO = "Tokyo"
    LONDON = "London"
    NEW_YORK = "NewYork"


class MarketRegime(StrEnum):
    TRENDING = "trending"
    RANGING = "ranging"
    VOLATILE = "volatile"
    QUIET = "quiet"


class NewsImpact(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class SessionFilter:
    enabled: bool = False
    sessions: tuple[TradingSession, ...] = ()


@dataclass(frozen=True, slots=True)
class SpreadFilter:
    enabled: bool = False
    max_spread_pips: float = math.inf


@dataclass(frozen=True, slots=True)
class VolatilityFilter:
    enabled: bool = False
    min_atr_pips: float = 0.0
    max_atr_pips: float = math.inf


@dataclass(frozen=True, slots=True)
class NewsFilter:
    enabled: bool = False
    minutes_before: float = 30.0
    minutes_after: float = 30.0
    impact: tuple[NewsImpact, ...] = (NewsImpact.HIGH,)


@dataclass(frozen=True, slots=True)
class CorrelationFilter:
    enabled: bool = False
    max_correlation: float = 0.8
    lookback_bars: int = 100


@dataclass(frozen=True, slots=True)
class RegimeFilter:
    enabled: bool = False
    regimes: tuple[MarketRegime, ...] = ()


@dataclass(frozen=True, slots=True)
class MtfFilter:
    enabled: bool = False
    confirm_timeframes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Filters:
    session: SessionFilter = field(default_factory=SessionFilter)
    spread: SpreadFilter = field(default_factory=SpreadFilter)
    volatility: VolatilityFilter = field(default_factory=VolatilityFilter)
    news: NewsFilter = field(default_factory=NewsFilter)
    correlation: CorrelationFilter = field(default_factory=CorrelationFilter)
    regime: RegimeFilter = field(default_factory=RegimeFilter)
    mtf: MtfFilter = field(default_factory=MtfFilter)


# --- the strategy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryBlock:
    side: Side
    conditions: ConditionGroup


@dataclass(frozen=True, slots=True)
class Strategy:
    strategy_id: str
    name: str
    symbol: str
    timeframe: str  # one of TIMEFRAME_NAMES
    entries: tuple[EntryBlock, ...]  # never empty
    exits: ExitRules
    risk: RiskManagement
    filters: Filters
    raw: dict[str, object] = field(compare=False, repr=False)  # a copy of the JSON, for storage

    def operands(self) -> tuple[Operand, ...]:
        """Every operand the entry and exit conditions read, by name: what the engine computes."""
        found: set[Operand] = set()
        for entry in self.entries:
            found |= entry.conditions.operands()
        if self.exits.conditions is not None:
            found |= self.exits.conditions.operands()
        return tuple(sorted(found, key=lambda operand: operand.name))

    @property
    def sides(self) -> frozenset[Side]:
        return frozenset(entry.side for entry in self.entries)
