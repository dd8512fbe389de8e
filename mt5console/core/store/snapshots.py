"""Immutable snapshots of trade and deal rows, as the store's fast path hands them out.

``Trade`` and ``StoredDeal`` have exactly the fields (names, types, order) of the table models
TradeRecord and DealRecord, which stay the schema; a snapshot is a plain value: it costs a
fraction of a SQLModel object to build, compares by value, and changing the database goes through
a Store method only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from mt5console.core.store.direct import from_db_time
from mt5console.core.store.errors import StoreError
from mt5console.core.store.tables import TradeStatus


@dataclass(frozen=True, slots=True)
class Trade:
    """A position the console opened or adopted; ``profit`` adds up every partial and the final close."""

    ticket: int
    position_id: int
    strategy_id: str | None
    symbol: str
    side: str  # "buy" | "sell"
    volume: float  # as opened
    remaining_volume: float  # still open (volume less partial closes)
    open_price: float
    open_time: datetime
    sl: float  # 0.0 = none, as in MT5
    tp: float
    close_price: float | None
    close_time: datetime | None
    profit: float
    exit_reason: str | None
    comment: str
    magic: int
    status: TradeStatus


@dataclass(frozen=True, slots=True)
class StoredDeal:
    """A deal of the terminal's history as the store keeps it."""

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


def _column_list(snapshot: type) -> str:
    # Quoted: "order" is an SQL keyword.
    return ", ".join(f'"{field.name}"' for field in fields(snapshot))


# The snapshots' fields are the tables' columns, in the same order: a row maps positionally.
TRADE_COLUMNS = _column_list(Trade)
DEAL_COLUMNS = _column_list(StoredDeal)
TRADE_PLACEHOLDERS = ", ".join("?" * len(fields(Trade)))
DEAL_PLACEHOLDERS = ", ".join("?" * len(fields(StoredDeal)))

_STATUSES = {status.value: status for status in TradeStatus}


def trade_from_row(row: Sequence[Any]) -> Trade:
    (
        ticket,
        position_id,
        strategy_id,
        symbol,
        side,
        volume,
        remaining_volume,
        open_price,
        open_time,
        sl,
        tp,
        close_price,
        close_time,
        profit,
        exit_reason,
        comment,
        magic,
        status,
    ) = row
    return Trade(
        ticket,
        position_id,
        strategy_id,
        symbol,
        side,
        volume,
        remaining_volume,
        open_price,
        from_db_time(open_time),
        sl,
        tp,
        close_price,
        None if close_time is None else from_db_time(close_time),
        profit,
        exit_reason,
        comment,
        magic,
        trade_status(status),
    )


def trade_status(value: str) -> TradeStatus:
    try:
        return _STATUSES[value]
    except KeyError:
        raise StoreError(f"trades.status: {value!r} in the file is not a trade status") from None


def deal_from_row(row: Sequence[Any]) -> StoredDeal:
    (ticket, order, position_id, symbol, type_, entry, reason, volume, price, profit, commission, swap, magic,
     comment, time) = row  # fmt: skip
    return StoredDeal(
        ticket,
        order,
        position_id,
        symbol,
        type_,
        entry,
        reason,
        volume,
        price,
        profit,
        commission,
        swap,
        magic,
        comment,
        from_db_time(time),
    )
