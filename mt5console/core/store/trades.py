"""Trades: positions the console opened or adopted (on the direct connection: see direct.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from mt5console.core.store.base import aware, number, string, text, whole
from mt5console.core.store.deals import DealLike, DealStore, deal_rows, insert_deals
from mt5console.core.store.direct import Row, to_db_time
from mt5console.core.store.errors import InvalidRecordError, RecordNotFoundError, RecordStateError
from mt5console.core.store.snapshots import TRADE_COLUMNS, TRADE_PLACEHOLDERS, Trade, trade_from_row
from mt5console.core.store.tables import TradeStatus

SIDES = ("buy", "sell")
# Volumes are multiples of a lot step (0.01 or coarser); anything below this is float noise.
VOLUME_EPSILON = 1e-9

_OPEN = TradeStatus.OPEN.value
_CLOSED = TradeStatus.CLOSED.value
# Where each column sits in a row (the snapshot's field order), to change a row before returning it.
_AT = {field.name: index for index, field in enumerate(fields(Trade))}
_STATUS_AT, _REMAINING_AT, _PROFIT_AT = _AT["status"], _AT["remaining_volume"], _AT["profit"]
_SL_AT, _TP_AT, _CLOSE_PRICE_AT, _CLOSE_TIME_AT = _AT["sl"], _AT["tp"], _AT["close_price"], _AT["close_time"]
_EXIT_REASON_AT = _AT["exit_reason"]

# A ticket already recorded is left unchanged; the foreign key on strategy_id refuses an unknown strategy.
_INSERT_TRADE = (
    f"INSERT INTO trades ({TRADE_COLUMNS}) VALUES ({TRADE_PLACEHOLDERS}) ON CONFLICT (ticket) DO NOTHING"
)
_TRADE_BY_TICKET = f"SELECT {TRADE_COLUMNS} FROM trades WHERE ticket = ?"
_TRADE_BY_POSITION = f"SELECT {TRADE_COLUMNS} FROM trades WHERE position_id = ? ORDER BY ticket LIMIT 1"
_UPDATE_PARTIAL = "UPDATE trades SET remaining_volume = ?, profit = ? WHERE ticket = ?"
_UPDATE_CLOSE = (
    "UPDATE trades SET close_price = ?, close_time = ?, profit = ?, exit_reason = ?, "
    "remaining_volume = ?, status = ? WHERE ticket = ?"
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
        if side not in SIDES:
            raise InvalidRecordError(f"side: {side!r} is not one of {', '.join(SIDES)}")
        row = (
            whole("ticket", ticket, minimum=1),
            whole("position_id", position_id, minimum=1),
            None if strategy_id is None else text("strategy_id", strategy_id),
            text("symbol", symbol),
            str(side),
            number("volume", volume, positive=True),
            float(volume),
            number("open_price", open_price, positive=True),
            to_db_time(aware("open_time", open_time)),
            number("sl", sl, non_negative=True),
            number("tp", tp, non_negative=True),
            None,
            None,
            0.0,
            None,
            string("comment", comment),
            whole("magic", magic, minimum=0),
            _OPEN,
        )
        with self._direct.write() as cursor:
            try:
                cursor.execute(_INSERT_TRADE, row)
            except sqlite3.IntegrityError as error:
                if "FOREIGN KEY" in str(error):
                    raise RecordNotFoundError(
                        f"strategy_id: strategy {strategy_id!r} is not in the store"
                    ) from None
                raise
            if cursor.rowcount == 0:
                row = _trade_row(cursor, row[0])
        return trade_from_row(row)

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
        with self._direct.write() as cursor:
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
        wanted = whole("ticket", ticket)
        close_price = number("price", price, positive=True)
        close_time = to_db_time(aware("when", when))
        realised = number("profit", profit)
        reason = text("exit_reason", exit_reason)
        new_deals = deal_rows(deals) if deals else []
        with self._direct.write() as cursor:
            row = _open_trade_row(cursor, wanted)
            row[_CLOSE_PRICE_AT] = close_price
            row[_CLOSE_TIME_AT] = close_time
            row[_PROFIT_AT] += realised
            row[_EXIT_REASON_AT] = reason
            row[_REMAINING_AT] = 0.0
            row[_STATUS_AT] = _CLOSED
            cursor.execute(
                _UPDATE_CLOSE, (close_price, close_time, row[_PROFIT_AT], reason, 0.0, _CLOSED, wanted)
            )
            insert_deals(cursor, new_deals)
        return trade_from_row(row)

    def update_trade_stops(self, ticket: int, *, sl: float, tp: float) -> Trade:
        wanted = whole("ticket", ticket)
        new_sl = number("sl", sl, non_negative=True)
        new_tp = number("tp", tp, non_negative=True)
        with self._direct.write() as cursor:
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


def _trade_row(cursor: sqlite3.Cursor, ticket: int) -> Row:
    rows = cursor.execute(_TRADE_BY_TICKET, (ticket,)).fetchall()
    if not rows:
        raise RecordNotFoundError(f"ticket: trade {ticket} is not in the store")
    row: Row = rows[0]
    return row


def _open_trade_row(cursor: sqlite3.Cursor, ticket: int) -> list[Any]:
    """The row of an open trade, as a list to change before it is returned."""
    row = list(_trade_row(cursor, ticket))
    if row[_STATUS_AT] != _OPEN:
        raise RecordStateError(f"ticket: trade {ticket} is already closed")
    return row
