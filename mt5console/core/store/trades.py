"""Trades: positions the console opened or adopted (on the direct connection: see direct.py)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from mt5console.core.store.base import aware, number, string, text, whole
from mt5console.core.store.deals import DealLike, DealStore, deal_rows, insert_deals
from mt5console.core.store.direct import as_read, from_db_time, to_db_time
from mt5console.core.store.errors import InvalidRecordError, RecordNotFoundError, RecordStateError
from mt5console.core.store.snapshots import (
    TRADE_COLUMNS,
    Trade,
    make_trade,
    trade_from_row,
)
from mt5console.core.store.tables import TradeStatus

SIDES = ("buy", "sell")
# Volumes are multiples of a lot step (0.01 or coarser); anything below this is float noise.
VOLUME_EPSILON = 1e-9
_INF = math.inf

_OPEN = TradeStatus.OPEN.value
_CLOSED = TradeStatus.CLOSED.value
# Where each column sits in a row (the snapshot's field order), to change a row before returning it.
_AT = {field.name: index for index, field in enumerate(fields(Trade))}
_STATUS_AT, _REMAINING_AT, _PROFIT_AT = _AT["status"], _AT["remaining_volume"], _AT["profit"]
_SL_AT, _TP_AT = _AT["sl"], _AT["tp"]

# What every new trade starts with, written in the SQL rather than bound: sqlite3 binds a None only
# after looking for an adapter for it, and a literal is no binding at all. The same values.
_NEW_TRADE_LITERALS = {
    "close_price": "NULL",
    "close_time": "NULL",
    "profit": "0.0",
    "exit_reason": "NULL",
    "status": f"'{_OPEN}'",
}
_NEW_TRADE_VALUES = ", ".join(_NEW_TRADE_LITERALS.get(field.name, "?") for field in fields(Trade))
# A ticket already recorded is left unchanged; the foreign key on strategy_id refuses an unknown strategy.
_INSERT_TRADE = (
    f"INSERT INTO trades ({TRADE_COLUMNS}) VALUES ({_NEW_TRADE_VALUES}) ON CONFLICT (ticket) DO NOTHING"
)
_TRADE_BY_TICKET = f"SELECT {TRADE_COLUMNS} FROM trades WHERE ticket = ?"
# What a close reads of the trade: the columns it does not set, and status (only an open trade closes).
_CLOSING_TRADE = (
    "SELECT position_id, strategy_id, symbol, side, volume, open_price, open_time, sl, tp, profit, comment, "
    "magic, status FROM trades WHERE ticket = ?"
)
_TRADE_BY_POSITION = f"SELECT {TRADE_COLUMNS} FROM trades WHERE position_id = ? ORDER BY ticket LIMIT 1"
_UPDATE_PARTIAL = "UPDATE trades SET remaining_volume = ?, profit = ? WHERE ticket = ?"
_UPDATE_CLOSE = (
    "UPDATE trades SET close_price = ?, close_time = ?, profit = ?, exit_reason = ?, "
    f"remaining_volume = 0.0, status = '{_CLOSED}' WHERE ticket = ?"
)
_UPDATE_STOPS = "UPDATE trades SET sl = ?, tp = ? WHERE ticket = ?"
_ALL_OPEN = f"SELECT {TRADE_COLUMNS} FROM trades WHERE status = ? ORDER BY open_time, ticket"
# "+strategy_id" (a no-op) keeps SQLite on the status index: a strategy's open trades are a handful,
# its trades (which the strategy_id index would walk) thousands after a long run or a replay.
_OPEN_OF_STRATEGY = (
    f"SELECT {TRADE_COLUMNS} FROM trades WHERE status = ? AND +strategy_id = ? ORDER BY open_time, ticket"
)
_ALL_CLOSED = (
    f"SELECT {TRADE_COLUMNS} FROM trades WHERE status = ? ORDER BY close_time DESC, ticket DESC LIMIT ?"
)
_CLOSED_OF_STRATEGY = (
    f"SELECT {TRADE_COLUMNS} FROM trades WHERE status = ? AND strategy_id = ? "
    "ORDER BY close_time DESC, ticket DESC LIMIT ?"
)


class TradeStore(DealStore):
    def record_trade_open(
        self,
        *,
        ticket: int,
        position_id: int,
        symbol: str,
        side: str,
        volume: float,
        open_price: float,
        open_time: datetime,
        strategy_id: str | None = None,
        sl: float = 0.0,
        tp: float = 0.0,
        magic: int = 0,
        comment: str = "",
    ) -> Trade:
        """Record an opened position. A ticket already recorded is returned unchanged (reconciling
        at start may meet a position twice); ``strategy_id`` None marks a manual or job trade."""
        if not (
            type(ticket) is int and ticket >= 1 and type(position_id) is int and position_id >= 1
            and (strategy_id is None or (type(strategy_id) is str and strategy_id.strip()))
            and type(symbol) is str and symbol.strip() and type(side) is str and side in SIDES
            and type(volume) is float and 0.0 < volume < _INF
            and type(open_price) is float and 0.0 < open_price < _INF
            and type(open_time) is datetime and open_time.tzinfo is UTC
            and type(sl) is float and 0.0 <= sl < _INF and type(tp) is float and 0.0 <= tp < _INF
            and type(comment) is str and type(magic) is int and magic >= 0
        ):  # fmt: skip
            # Not all plain values (the tracker's are): each is checked in turn by the store's checks,
            # which name the first one wrong and make a number a float, a time UTC, a side a str.
            (ticket, position_id, strategy_id, symbol, side, volume, open_price, open_time, sl, tp, comment,
             magic) = _checked_open(
                ticket, position_id, strategy_id, symbol, side, volume, open_price, open_time, sl, tp,
                comment, magic,
            )  # fmt: skip
        opened = to_db_time(open_time)
        # The row but the _NEW_TRADE_LITERALS, in column order.
        row = (ticket, position_id, strategy_id, symbol, side, volume, volume, open_price, opened, sl, tp,
               comment, magic)  # fmt: skip
        try:
            inserted = self._direct.write_one(_INSERT_TRADE, row)
        except sqlite3.IntegrityError as error:
            if "FOREIGN KEY" in str(error):
                raise RecordNotFoundError(
                    f"strategy_id: strategy {strategy_id!r} is not in the store"
                ) from None
            raise
        if not inserted:  # the ticket was there already: as it is (trades are never deleted)
            return trade_from_row(self._direct.read(_TRADE_BY_TICKET, (ticket,))[0])
        # The trade as written, without reading it back.
        return make_trade(
            (ticket, position_id, strategy_id, symbol, side, volume, volume, open_price,
             as_read(open_time, opened), sl, tp, None, None, 0.0, None, comment, magic, TradeStatus.OPEN)
        )  # fmt: skip

    def record_trade_partial(
        self,
        ticket: int,
        *,
        volume: float,
        price: float,
        profit: float,
        when: datetime | None = None,
        deals: Sequence[DealLike] = (),
    ) -> Trade:
        """A partial close of ``volume`` lots; ``profit`` is that close's own, added to the trade's.
        ``deals`` (the terminal's, idempotent by ticket) are stored in the same transaction."""
        wanted = whole("ticket", ticket)
        closed = number("volume", volume, positive=True)
        number("price", price, positive=True)
        realised = number("profit", profit)
        aware("when", when)
        new_deals = deal_rows(deals) if deals else []
        with self._direct.transaction as cursor:
            row = _open_trade_row(cursor, wanted)
            remaining = row[_REMAINING_AT]
            if closed >= remaining - VOLUME_EPSILON:
                raise InvalidRecordError(
                    f"volume: {closed} would close all of trade {ticket} ({remaining} open); "
                    "record a close instead"
                )
            row[_REMAINING_AT] = round(remaining - closed, 8)
            row[_PROFIT_AT] += realised
            cursor.execute(_UPDATE_PARTIAL, (row[_REMAINING_AT], row[_PROFIT_AT], wanted))
            insert_deals(cursor, new_deals)
        return trade_from_row(row)

    def record_trade_close(
        self,
        ticket: int,
        *,
        price: float,
        when: datetime,
        profit: float,
        exit_reason: str,
        deals: Sequence[DealLike] = (),
    ) -> Trade:
        """The final close; ``profit`` is that close's own, added to what partial closes made.
        ``deals`` (the terminal's, idempotent by ticket) are stored in the same transaction, so a
        closed trade is never left without its deals, nor the deals without the close."""
        if not (
            type(ticket) is int and type(price) is float and 0.0 < price < _INF
            and type(when) is datetime and when.tzinfo is UTC and type(profit) is float
            and -_INF < profit < _INF and type(exit_reason) is str and exit_reason.strip()
        ):  # fmt: skip
            # Not all plain values (the tracker's are): checked in turn, as record_trade_open's.
            ticket, price, when, profit, exit_reason = _checked_close(
                ticket, price, when, profit, exit_reason
            )
        close_time = to_db_time(when)
        new_deals = deal_rows(deals) if deals else []
        with self._direct.transaction as cursor:
            rows = cursor.execute(_CLOSING_TRADE, (ticket,)).fetchall()
            if not rows:
                raise RecordNotFoundError(f"ticket: trade {ticket} is not in the store")
            (position_id, strategy_id, symbol, side, volume, open_price, open_time, sl, tp, profit_before,
             comment, magic, status) = rows[0]  # fmt: skip
            if status != _OPEN:
                raise RecordStateError(f"ticket: trade {ticket} is already closed")
            total = profit_before + profit
            cursor.execute(_UPDATE_CLOSE, (price, close_time, total, exit_reason, ticket))
            if new_deals:
                insert_deals(cursor, new_deals)
        # The row as the UPDATE left it, without reading it back.
        return make_trade(
            (ticket, position_id, strategy_id, symbol, side, volume, 0.0, open_price, from_db_time(open_time),
             sl, tp, price, as_read(when, close_time), total, exit_reason, comment, magic, TradeStatus.CLOSED)
        )  # fmt: skip

    def update_trade_stops(self, ticket: int, *, sl: float, tp: float) -> Trade:
        wanted = whole("ticket", ticket)
        new_sl = number("sl", sl, non_negative=True)
        new_tp = number("tp", tp, non_negative=True)
        with self._direct.transaction as cursor:
            row = _open_trade_row(cursor, wanted)
            row[_SL_AT], row[_TP_AT] = new_sl, new_tp
            cursor.execute(_UPDATE_STOPS, (new_sl, new_tp, wanted))
        return trade_from_row(row)

    def trade_by_ticket(self, ticket: int) -> Trade | None:
        rows = self._direct.read(_TRADE_BY_TICKET, (whole("ticket", ticket),))
        return trade_from_row(rows[0]) if rows else None

    def trade_by_position(self, position_id: int) -> Trade | None:
        rows = self._direct.read(_TRADE_BY_POSITION, (whole("position_id", position_id),))
        return trade_from_row(rows[0]) if rows else None

    def open_trades(self, strategy_id: str | None = None) -> list[Trade]:
        """Open trades, oldest first; of one strategy when ``strategy_id`` is given."""
        if strategy_id is None:
            rows = self._direct.read(_ALL_OPEN, (_OPEN,))
        else:
            rows = self._direct.read(_OPEN_OF_STRATEGY, (_OPEN, string("strategy_id", strategy_id)))
        return [trade_from_row(row) for row in rows]

    def closed_trades(self, strategy_id: str | None = None, limit: int = 100) -> list[Trade]:
        """The latest closed trades, newest first."""
        most = whole("limit", limit, minimum=1)
        if strategy_id is None:
            rows = self._direct.read(_ALL_CLOSED, (_CLOSED, most))
        else:
            rows = self._direct.read(_CLOSED_OF_STRATEGY, (_CLOSED, string("strategy_id", strategy_id), most))
        return [trade_from_row(row) for row in rows]


def _open_trade_row(cursor: sqlite3.Cursor, ticket: int) -> list[Any]:
    """The row of an open trade, as a list to change before it is returned."""
    rows = cursor.execute(_TRADE_BY_TICKET, (ticket,)).fetchall()
    if not rows:
        raise RecordNotFoundError(f"ticket: trade {ticket} is not in the store")
    row = list(rows[0])
    if row[_STATUS_AT] != _OPEN:
        raise RecordStateError(f"ticket: trade {ticket} is already closed")
    return row


def _checked_open(
    ticket: object,
    position_id: object,
    strategy_id: object,
    symbol: object,
    side: object,
    volume: object,
    open_price: object,
    open_time: datetime,
    sl: object,
    tp: object,
    comment: object,
    magic: object,
) -> tuple[int, int, str | None, str, str, float, float, datetime, float, float, str, int]:
    """record_trade_open's arguments checked one by one, in this order: the first wrong one is named."""
    if side not in SIDES:
        raise InvalidRecordError(f"side: {side!r} is not one of {', '.join(SIDES)}")
    return (
        whole("ticket", ticket, minimum=1),
        whole("position_id", position_id, minimum=1),
        None if strategy_id is None else text("strategy_id", strategy_id),
        text("symbol", symbol),
        str(side),
        number("volume", volume, positive=True),
        number("open_price", open_price, positive=True),
        aware("open_time", open_time),
        number("sl", sl, non_negative=True),
        number("tp", tp, non_negative=True),
        string("comment", comment),
        whole("magic", magic, minimum=0),
    )


def _checked_close(
    ticket: object, price: object, when: datetime, profit: object, exit_reason: object
) -> tuple[int, float, datetime, float, str]:
    """record_trade_close's arguments checked one by one, in this order: the first wrong one is named."""
    return (
        int(whole("ticket", ticket)),  # the row's own ticket type, as a read gives it
        number("price", price, positive=True),
        aware("when", when),
        number("profit", profit),
        text("exit_reason", exit_reason),
    )
