"""The records a trade leaves behind: filled orders, deals, and the changes that close positions.

As on an MT5 hedging account, every deal has an order: a market request makes a filled order and an
IN or OUT deal; a triggered SL/TP makes an order and an OUT deal with reason SL/TP and the comment
``[sl 1.08000]`` / ``[tp 1.09000]``. Profit is booked on OUT deals and added to the balance.
"""

from __future__ import annotations

from typing import Final

from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim import money
from mt5console.core.broker.sim.records import TradeDeal, TradeOrder
from mt5console.core.broker.sim.requests import COMMENT_LENGTH
from mt5console.core.broker.sim.state import Change, Ledger, OpenPosition
from mt5console.core.broker.sim.symbols import SYMBOLS

VOLUME_EPS: Final = 1e-8
Hit = tuple[int, int, float, int]  # (ticket, time_msc, fill price, DEAL_REASON_SL / DEAL_REASON_TP)


# A record from its values in field order: several times faster than a named tuple's generated
# __new__ called with keywords, on the path of every order. The builders below keep keywords for
# their callers and list the values in the record's field order, each named in a comment.
_record = tuple.__new__


def new_deal(
    *,
    ticket: int,
    order: int,
    time_msc: int,
    type: int,
    entry: int,
    magic: int,
    position_id: int,
    reason: int,
    volume: float,
    price: float,
    profit: float,
    symbol: str,
    comment: str,
) -> TradeDeal:
    values = (
        ticket,
        order,
        time_msc // 1000,  # time
        time_msc,
        type,
        entry,
        magic,
        position_id,
        reason,
        volume,
        price,
        0.0,  # commission
        0.0,  # swap
        profit,
        0.0,  # fee
        symbol,
        comment[:COMMENT_LENGTH],
        "",  # external_id
    )
    return _record(TradeDeal, values)


def filled_order(
    *,
    ticket: int,
    time_msc: int,
    type: int,
    type_time: int,
    type_filling: int,
    magic: int,
    position_id: int,
    reason: int,
    volume: float,
    price_open: float,
    sl: float,
    tp: float,
    price: float,
    symbol: str,
    comment: str,
) -> TradeOrder:
    """A market order filled at once: set up and done at ``time_msc``, nothing left to fill."""
    seconds = time_msc // 1000
    values = (
        ticket,
        seconds,  # time_setup
        time_msc,  # time_setup_msc
        seconds,  # time_done
        time_msc,  # time_done_msc
        0,  # time_expiration
        type,
        type_time,
        type_filling,
        c.ORDER_STATE_FILLED,  # state
        magic,
        position_id,
        0,  # position_by_id
        reason,
        volume,  # volume_initial
        0.0,  # volume_current
        price_open,
        sl,
        tp,
        price,  # price_current
        0.0,  # price_stoplimit
        symbol,
        comment[:COMMENT_LENGTH],
        "",  # external_id
    )
    return _record(TradeOrder, values)


def deposit(ticket: int, time_msc: int, amount: float) -> TradeDeal:
    """The balance deal of the account's initial deposit, as real account histories start with."""
    return new_deal(
        ticket=ticket,
        order=0,
        time_msc=time_msc,
        type=c.DEAL_TYPE_BALANCE,
        entry=c.DEAL_ENTRY_IN,
        magic=0,
        position_id=0,
        reason=c.DEAL_REASON_CLIENT,
        volume=0.0,
        price=0.0,
        profit=amount,
        symbol="",
        comment="Initial deposit",
    )


def closing_deal(
    position: OpenPosition,
    *,
    volume: float,
    price: float,
    order: TradeOrder,
    deal_ticket: int,
    reason: int,
    magic: int,
    comment: str,
    price_of: money.PriceOf,
) -> TradeDeal:
    """The OUT deal closing ``volume`` of ``position`` at ``price`` (by ``order``), its profit booked."""
    spec = SYMBOLS[position.symbol]
    is_buy = position.type == c.POSITION_TYPE_BUY
    return new_deal(
        ticket=deal_ticket,
        order=order.ticket,
        time_msc=order.time_done_msc,
        type=c.DEAL_TYPE_SELL if is_buy else c.DEAL_TYPE_BUY,
        entry=c.DEAL_ENTRY_OUT,
        magic=magic,
        position_id=position.ticket,
        reason=reason,
        volume=volume,
        price=price,
        profit=money.profit(spec, is_buy, volume, position.price_open, price, price_of),
        symbol=spec.name,
        comment=comment,
    )


def closing(
    position: OpenPosition,
    *,
    volume: float,
    price: float,
    order: TradeOrder,
    deal_ticket: int,
    reason: int,
    magic: int,
    comment: str,
    balance: float,
    price_of: money.PriceOf,
) -> Change:
    """Close ``volume`` of ``position`` at ``price`` (all of it, or part: the rest keeps the ticket)."""
    deal = closing_deal(
        position,
        volume=volume,
        price=price,
        order=order,
        deal_ticket=deal_ticket,
        reason=reason,
        magic=magic,
        comment=comment,
        price_of=price_of,
    )
    now = order.time_done_msc
    remaining = round(position.volume - volume, 8)
    left = remaining > VOLUME_EPS
    return Change(
        balance=round(balance + deal.profit, money.CURRENCY_DIGITS),
        next_order=order.ticket + 1,
        next_deal=deal_ticket + 1,
        processed_msc=now,
        upsert=(position._replace(volume=remaining, time_update_msc=now),) if left else (),
        remove=() if left else (position.ticket,),
        orders=(order,),
        deals=(deal,),
    )


def stop_closures(ledger: Ledger, hits: list[Hit], price_of: money.PriceOf) -> Change | None:
    """One change closing, in time order, the positions whose SL or TP was hit.

    Each hit closes its whole position, as ``closing`` would, one after the other: the balance
    takes each deal's profit in turn (rounded to cents at each step, as a deal at a time does).
    """
    if not hits:
        return None
    balance, next_order, next_deal = ledger.balance, ledger.next_order, ledger.next_deal
    # Grown a hit at a time: a bar's hits are few, and one tuple each beats lists turned into tuples.
    removed: tuple[int, ...] = ()
    orders: tuple[TradeOrder, ...] = ()
    deals: tuple[TradeDeal, ...] = ()
    in_order = sorted(hits, key=_hit_order) if len(hits) > 1 else hits
    for ticket, time_msc, price, reason in in_order:
        position = ledger.positions[ticket]
        spec = SYMBOLS[position.symbol]
        is_buy = position.type == c.POSITION_TYPE_BUY
        is_sl = reason == c.DEAL_REASON_SL
        level = position.sl if is_sl else position.tp
        comment = f"[{'sl' if is_sl else 'tp'} {level:.{spec.digits}f}]"
        order = filled_order(
            ticket=next_order,
            time_msc=time_msc,
            type=c.ORDER_TYPE_SELL if is_buy else c.ORDER_TYPE_BUY,
            type_time=c.ORDER_TIME_GTC,
            type_filling=c.ORDER_FILLING_FOK,
            magic=position.magic,
            position_id=position.ticket,
            reason=c.ORDER_REASON_SL if is_sl else c.ORDER_REASON_TP,
            volume=position.volume,
            price_open=level,
            sl=position.sl,
            tp=position.tp,
            price=price,
            symbol=spec.name,
            comment=comment,
        )
        deal = closing_deal(
            position,
            volume=position.volume,
            price=price,
            order=order,
            deal_ticket=next_deal,
            reason=reason,
            magic=position.magic,
            comment=comment,
            price_of=price_of,
        )
        balance = round(balance + deal.profit, money.CURRENCY_DIGITS)
        next_order, next_deal = next_order + 1, next_deal + 1
        removed += (ticket,)
        orders += (order,)
        deals += (deal,)
    values = (
        balance,
        next_order,
        next_deal,
        in_order[-1][1],  # processed_msc: the latest hit's time
        (),  # upsert: nothing stays open
        removed,  # remove
        orders,
        deals,
    )
    change: Change = _record(Change, values)
    return change


def _hit_order(hit: Hit) -> tuple[int, int]:
    """Hits are executed by time, then by ticket."""
    return hit[1], hit[0]
