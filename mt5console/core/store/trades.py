"""Trades (positions the console opened or adopted) and the terminal's deals."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlmodel import Session, col, func, select

from mt5console.core.store.base import StoreBase, aware, number, text, whole
from mt5console.core.store.errors import InvalidRecordError, RecordNotFoundError, RecordStateError
from mt5console.core.store.tables import DealRecord, StrategyRecord, TradeRecord, TradeStatus

SIDES = ("buy", "sell")
# Volumes are multiples of a lot step (0.01 or coarser); anything below this is float noise.
VOLUME_EPSILON = 1e-9


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


class TradeStore(StoreBase):
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
    ) -> TradeRecord:
        """Record an opened position. A ticket already recorded is returned unchanged (reconciling
        at start may meet a position twice); ``strategy_id`` None marks a manual or job trade."""
        if side not in SIDES:
            raise InvalidRecordError(f"side: {side!r} is not one of {', '.join(SIDES)}")
        record = TradeRecord(
            ticket=whole("ticket", ticket, minimum=1),
            position_id=whole("position_id", position_id, minimum=1),
            strategy_id=None if strategy_id is None else text("strategy_id", strategy_id),
            symbol=text("symbol", symbol),
            side=str(side),
            volume=number("volume", volume, positive=True),
            remaining_volume=float(volume),
            open_price=number("open_price", open_price, positive=True),
            open_time=aware("open_time", open_time),
            sl=number("sl", sl, non_negative=True),
            tp=number("tp", tp, non_negative=True),
            magic=whole("magic", magic, minimum=0),
            comment=comment,
            status=TradeStatus.OPEN,
        )
        with self._write() as session:
            existing = session.get(TradeRecord, record.ticket)
            if existing is not None:
                return existing
            if strategy_id is not None and session.get(StrategyRecord, strategy_id) is None:
                raise RecordNotFoundError(f"strategy_id: strategy {strategy_id!r} is not in the store")
            session.add(record)
            return record

    def record_trade_partial(
        self, ticket: int, *, volume: float, price: float, profit: float, when: datetime | None = None
    ) -> TradeRecord:
        """A partial close of ``volume`` lots; ``profit`` is that close's own, added to the trade's."""
        closed = number("volume", volume, positive=True)
        number("price", price, positive=True)
        realised = number("profit", profit)
        aware("when", when)
        with self._write() as session:
            record = _open_trade(session, ticket)
            if closed >= record.remaining_volume - VOLUME_EPSILON:
                raise InvalidRecordError(
                    f"volume: {closed} would close all of trade {ticket} ({record.remaining_volume} open); "
                    "record a close instead"
                )
            record.remaining_volume = round(record.remaining_volume - closed, 8)
            record.profit += realised
            return record

    def record_trade_close(
        self,
        ticket: int,
        *,
        price: float,
        when: datetime,
        profit: float,
        exit_reason: str,
    ) -> TradeRecord:
        """The final close; ``profit`` is that close's own, added to what partial closes made."""
        close_price = number("price", price, positive=True)
        close_time = aware("when", when)
        realised = number("profit", profit)
        reason = text("exit_reason", exit_reason)
        with self._write() as session:
            record = _open_trade(session, ticket)
            record.close_price = close_price
            record.close_time = close_time
            record.profit += realised
            record.exit_reason = reason
            record.remaining_volume = 0.0
            record.status = TradeStatus.CLOSED
            return record

    def update_trade_stops(self, ticket: int, *, sl: float, tp: float) -> TradeRecord:
        new_sl = number("sl", sl, non_negative=True)
        new_tp = number("tp", tp, non_negative=True)
        with self._write() as session:
            record = _open_trade(session, ticket)
            record.sl, record.tp = new_sl, new_tp
            return record

    def trade_by_ticket(self, ticket: int) -> TradeRecord | None:
        with self._read() as session:
            return session.get(TradeRecord, ticket)

    def trade_by_position(self, position_id: int) -> TradeRecord | None:
        with self._read() as session:
            return session.exec(select(TradeRecord).where(TradeRecord.position_id == position_id)).first()

    def open_trades(self, strategy_id: str | None = None) -> list[TradeRecord]:
        """Open trades, oldest first; of one strategy when ``strategy_id`` is given."""
        statement = select(TradeRecord).where(TradeRecord.status == TradeStatus.OPEN)
        if strategy_id is not None:
            statement = statement.where(TradeRecord.strategy_id == strategy_id)
        with self._read() as session:
            return list(session.exec(statement.order_by(col(TradeRecord.open_time), col(TradeRecord.ticket))))

    def closed_trades(self, strategy_id: str | None = None, limit: int = 100) -> list[TradeRecord]:
        """The latest closed trades, newest first."""
        statement = select(TradeRecord).where(TradeRecord.status == TradeStatus.CLOSED)
        if strategy_id is not None:
            statement = statement.where(TradeRecord.strategy_id == strategy_id)
        statement = statement.order_by(col(TradeRecord.close_time).desc(), col(TradeRecord.ticket).desc())
        with self._read() as session:
            return list(session.exec(statement.limit(whole("limit", limit, minimum=1))))

    def record_deal(self, deal: DealLike) -> bool:
        """Store a deal of the terminal's history; False when its ticket was already stored."""
        record = DealRecord(
            ticket=whole("deal.ticket", deal.ticket, minimum=1),
            order=whole("deal.order", deal.order, minimum=0),
            position_id=whole("deal.position_id", deal.position_id, minimum=0),
            symbol=deal.symbol,
            type=whole("deal.type", deal.type),
            entry=whole("deal.entry", deal.entry),
            reason=whole("deal.reason", deal.reason),
            volume=number("deal.volume", deal.volume, non_negative=True),
            price=number("deal.price", deal.price, non_negative=True),
            profit=number("deal.profit", deal.profit),
            commission=number("deal.commission", deal.commission),
            swap=number("deal.swap", deal.swap),
            magic=whole("deal.magic", deal.magic, minimum=0),
            comment=deal.comment,
            time=aware("deal.time", deal.time),
        )
        with self._write() as session:
            if session.get(DealRecord, record.ticket) is not None:
                return False
            session.add(record)
            return True

    def deals_for_position(self, position_id: int) -> list[DealRecord]:
        statement = (
            select(DealRecord)
            .where(DealRecord.position_id == position_id)
            .order_by(col(DealRecord.time), col(DealRecord.ticket))
        )
        with self._read() as session:
            return list(session.exec(statement))

    def last_deal_time(self) -> datetime | None:
        """Where to resume reading the terminal's deal history after a restart."""
        with self._read() as session:
            return session.exec(select(func.max(DealRecord.time))).first()


def _open_trade(session: Session, ticket: int) -> TradeRecord:
    record = session.get(TradeRecord, ticket)
    if record is None:
        raise RecordNotFoundError(f"ticket: trade {ticket} is not in the store")
    if record.status is not TradeStatus.OPEN:
        raise RecordStateError(f"ticket: trade {ticket} is already closed")
    return record
