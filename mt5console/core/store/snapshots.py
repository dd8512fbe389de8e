"""Immutable snapshots of trade and deal rows, as the store's fast path hands them out.

``Trade`` and ``StoredDeal`` have exactly the fields (names, types, order) of the table models
TradeRecord and DealRecord, which stay the schema; a snapshot is a plain value: it costs a
fraction of a SQLModel object to build, compares by value, and changing the database goes through
a Store method only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from mt5console.core.store.direct import from_db_time
from mt5console.core.store.errors import StoreError
from mt5console.core.store.tables import TradeStatus

S = TypeVar("S")


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


def trade_status(value: str) -> TradeStatus:
    try:
        return _STATUSES[value]
    except KeyError:
        raise StoreError(f"trades.status: {value!r} in the file is not a trade status") from None


def optional_db_time(value: str | None) -> datetime | None:
    return None if value is None else from_db_time(value)


def _builder(snapshot: type[S], convert: Mapping[str, Callable[[Any], Any]]) -> Callable[[Sequence[Any]], S]:
    """A function that makes a ``snapshot`` of its field values in field order, each passed first
    through ``convert[name]`` when there is one.

    Why not ``snapshot(*values)``: a frozen dataclass's __init__ sets each field through
    object.__setattr__ (to get past its own refusal), which is half the cost of a Trade, and one is
    built per trade written or read. This sets each slot through the slot's own descriptor, in
    straight-line code generated once (as dataclasses generates __init__): the same object, every
    field set, in half the time."""
    namespace: dict[str, Any] = {"_new": object.__new__, "_snapshot": snapshot}
    lines = [f"def build_{snapshot.__name__}(values):", "    built = _new(_snapshot)"]
    for index, field in enumerate(fields(snapshot)):  # type: ignore[arg-type]
        namespace[f"_set_{field.name}"] = getattr(snapshot, field.name).__set__
        value = f"values[{index}]"
        if field.name in convert:
            namespace[f"_convert_{field.name}"] = convert[field.name]
            value = f"_convert_{field.name}({value})"
        lines.append(f"    _set_{field.name}(built, {value})")
    lines.append("    return built")
    exec("\n".join(lines), namespace)  # our own fixed text, as dataclasses does
    built: Callable[[Sequence[Any]], S] = namespace[f"build_{snapshot.__name__}"]
    return built


# make_trade(values): a Trade of its field values (open_time a datetime, status a TradeStatus...).
make_trade = _builder(Trade, {})
# trade_from_row(row) / deal_from_row(row): the snapshot of a row as SELECT {COLUMNS} returns it.
trade_from_row = _builder(
    Trade, {"open_time": from_db_time, "close_time": optional_db_time, "status": trade_status}
)
deal_from_row = _builder(StoredDeal, {"time": from_db_time})
