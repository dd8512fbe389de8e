"""The core's own view of the terminal: frozen dataclasses with UTC datetimes.

The adapter converts the MetaTrader5 module's named tuples into these so that nothing above the
broker layer depends on the module's shapes (epoch seconds, int enums, tuples).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


@dataclass(frozen=True, slots=True)
class TerminalState:
    connected: bool
    trade_allowed: bool
    build: int
    company: str
    name: str
    path: str
    data_path: str
    commondata_path: str
    simulated: bool


@dataclass(frozen=True, slots=True)
class AccountState:
    login: int
    server: str
    name: str
    company: str
    currency: str
    leverage: int
    balance: float
    equity: float
    profit: float
    margin: float
    margin_free: float
    margin_level: float  # percent; 0.0 when no margin is used
    trade_allowed: bool
    hedging: bool
    demo: bool


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    name: str
    description: str
    digits: int
    point: float
    pip: float  # 10 x point for 3 and 5 digit quotes, else 1 x point (overridable in settings)
    contract_size: float
    tick_size: float
    tick_value: float
    volume_min: float
    volume_max: float
    volume_step: float
    stops_level: int  # points
    spread: int  # current spread in points
    currency_base: str
    currency_profit: str
    currency_margin: str
    trade_mode: int
    filling_mode: int  # bit mask, FOK=1 IOC=2 BOC=4


@dataclass(frozen=True, slots=True)
class Tick:
    symbol: str
    time: datetime
    bid: float
    ask: float
    last: float
    volume: int


@dataclass(frozen=True, slots=True)
class Position:
    ticket: int
    symbol: str
    side: Side
    volume: float
    price_open: float
    price_current: float
    sl: float  # 0.0 = none, as in MT5
    tp: float
    profit: float
    swap: float
    magic: int
    comment: str
    time: datetime
    identifier: int


@dataclass(frozen=True, slots=True)
class Deal:
    ticket: int
    order: int
    position_id: int
    symbol: str
    type: int  # DEAL_TYPE_*
    entry: int  # DEAL_ENTRY_*
    reason: int  # DEAL_REASON_*
    volume: float
    price: float
    profit: float
    commission: float
    swap: float
    magic: int
    comment: str
    time: datetime


@dataclass(frozen=True, slots=True)
class OrderResult:
    """A successful order_send: the deal and order tickets and what was filled."""

    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    comment: str
    position: int  # the position the deal opened, changed or closed (0 when unknown)
