"""The terminal's deals, kept idempotently by ticket (on the direct connection: see direct.py)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Protocol

from mt5console.core.store.base import StoreBase, aware, number, string, whole
from mt5console.core.store.direct import Row, from_db_time, to_db_time
from mt5console.core.store.errors import InvalidRecordError
from mt5console.core.store.snapshots import DEAL_COLUMNS, DEAL_PLACEHOLDERS, StoredDeal, deal_from_row


class DealLike(Protocol):
    """What record_deal reads; mt5console.core.broker.models.Deal fits (the store may not import it)."""

    @property
    def ticket(self) -> int: ...
    @property
    def order(self) -> int: ...
    @property
    def position_id(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def type(self) -> int: ...
    @property
    def entry(self) -> int: ...
    @property
    def reason(self) -> int: ...
    @property
    def volume(self) -> float: ...
    @property
    def price(self) -> float: ...
    @property
    def profit(self) -> float: ...
    @property
    def commission(self) -> float: ...
    @property
    def swap(self) -> float: ...
    @property
    def magic(self) -> int: ...
    @property
    def comment(self) -> str: ...
    @property
    def time(self) -> datetime: ...


# A ticket already stored is left as it is: the terminal's history is read again after a restart.
_INSERT_DEAL = (
    f"INSERT INTO deals ({DEAL_COLUMNS}) VALUES ({DEAL_PLACEHOLDERS}) ON CONFLICT (ticket) DO NOTHING"
)
_DEALS_OF_POSITION = f"SELECT {DEAL_COLUMNS} FROM deals WHERE position_id = ? ORDER BY time, ticket"
_LAST_DEAL_TIME = "SELECT max(time) FROM deals"


# A deal's attributes in the table's column order, read in one call.
_DEAL_VALUES = attrgetter(*(field.name for field in fields(StoredDeal)))
_INF = math.inf


def deal_row(deal: DealLike) -> Row:
    """The checked column values of ``deal``, in the table's order; raises before anything is written.

    A deal of plain values (the terminal's: exact ints and finite floats, an aware UTC time) is
    checked in one expression; any other goes through ``checked_deal_row``'s calls, one per field,
    which accept more (an int for a float, any time zone) and name what they refuse. Both give the
    same row for a deal both accept (the tests compare them)."""
    try:
        values = _DEAL_VALUES(deal)
    except AttributeError:
        return checked_deal_row(deal)  # which names the first attribute missing
    (ticket, order, position_id, symbol, type_, entry, reason, volume, price, profit, commission, swap,
     magic, comment, time) = values  # fmt: skip
    if (
        type(ticket) is int and ticket >= 1 and type(order) is int and order >= 0
        and type(position_id) is int and position_id >= 0 and type(symbol) is str
        and type(type_) is int and type(entry) is int and type(reason) is int
        and type(volume) is float and 0.0 <= volume < _INF and type(price) is float and 0.0 <= price < _INF
        and type(profit) is float and -_INF < profit < _INF
        and type(commission) is float and -_INF < commission < _INF
        and type(swap) is float and -_INF < swap < _INF
        and type(magic) is int and magic >= 0 and type(comment) is str
        and type(time) is datetime and time.tzinfo is UTC
    ):  # fmt: skip
        return values[:-1] + (to_db_time(time),)  # noqa: RUF005 (cheaper than unpacking)
    return checked_deal_row(deal)


def checked_deal_row(deal: DealLike) -> Row:
    """``deal_row`` field by field: each value checked (and a number made a float, a time UTC) by
    the store's checks, in the table's order, the first one wrong named."""
    try:
        return (
            whole("deal.ticket", deal.ticket, minimum=1),
            whole("deal.order", deal.order, minimum=0),
            whole("deal.position_id", deal.position_id, minimum=0),
            string("deal.symbol", deal.symbol),  # empty for a balance deal
            whole("deal.type", deal.type),
            whole("deal.entry", deal.entry),
            whole("deal.reason", deal.reason),
            number("deal.volume", deal.volume, non_negative=True),
            number("deal.price", deal.price, non_negative=True),
            number("deal.profit", deal.profit),
            number("deal.commission", deal.commission),
            number("deal.swap", deal.swap),
            whole("deal.magic", deal.magic, minimum=0),
            string("deal.comment", deal.comment),
            to_db_time(aware("deal.time", deal.time)),
        )
    except AttributeError as error:
        raise InvalidRecordError(f"deal: {type(deal).__name__} is not a deal ({error})") from None


def deal_rows(deals: Sequence[DealLike]) -> list[Row]:
    """Every deal checked (a bad one is named by its place in ``deals``) before any is written."""
    plain = type(deals) is tuple or type(deals) is list  # the usual ones, without the ABC's check
    if not plain and (isinstance(deals, str | bytes) or not isinstance(deals, Sequence)):
        raise InvalidRecordError(f"deals: expected a sequence of deals, got {type(deals).__name__}")
    rows: list[Row] = []
    for index, deal in enumerate(deals):
        try:
            rows.append(deal_row(deal))
        except InvalidRecordError as error:
            raise type(error)(f"deals[{index}]: {error}") from None
    return rows


def insert_deals(cursor: sqlite3.Cursor, rows: list[Row]) -> int:
    """Inside a write transaction: store the rows whose ticket is new; returns how many were."""
    if not rows:
        return 0
    if len(rows) == 1:
        cursor.execute(_INSERT_DEAL, rows[0])
    else:
        cursor.executemany(_INSERT_DEAL, rows)
    return cursor.rowcount


class DealStore(StoreBase):
    def record_deal(self, deal: DealLike) -> bool:
        """Store a deal of the terminal's history; False when its ticket was already stored."""
        return self._direct.write_one(_INSERT_DEAL, deal_row(deal)) == 1

    def record_deals(self, deals: Sequence[DealLike]) -> int:
        """Store several deals in one transaction (all checked first); returns how many were new."""
        rows = deal_rows(deals)
        with self._direct.transaction as cursor:
            return insert_deals(cursor, rows)

    def deals_for_position(self, position_id: int) -> list[StoredDeal]:
        """The deals of a position, oldest first."""
        wanted = whole("position_id", position_id)
        return [deal_from_row(row) for row in self._direct.read(_DEALS_OF_POSITION, (wanted,))]

    def last_deal_time(self) -> datetime | None:
        """Where to resume reading the terminal's deal history after a restart."""
        ((latest,),) = self._direct.read(_LAST_DEAL_TIME)
        return None if latest is None else from_db_time(latest)
