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
    return TradeDeal(
        ticket=ticket,
        order=order,
        time=time_msc // 1000,
        time_msc=time_msc,
        type=type,
        entry=entry,
        magic=magic,
        position_id=position_id,
        reason=reason,
        volume=volume,
        price=price,
        commission=0.0,
        swap=0.0,
        profit=profit,
        fee=0.0,
        symbol=symbol,
        comment=comment[:COMMENT_LENGTH],
        external_id="",
    )


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
    return TradeOrder(
        ticket=ticket,
        time_setup=time_msc // 1000,
        time_setup_msc=time_msc,
        time_done=time_msc // 1000,
        time_done_msc=time_msc,
        time_expiration=0,
        type=type,
        type_time=type_time,
        type_filling=type_filling,
        state=c.ORDER_STATE_FILLED,
        magic=magic,
        position_id=position_id,
        position_by_id=0,
        reason=reason,
        volume_initial=volume,
        volume_current=0.0,
        price_open=price_open,
        sl=sl,
        tp=tp,
        price_current=price,
        price_stoplimit=0.0,
        symbol=symbol,
        comment=comment[:COMMENT_LENGTH],
        external_id="",
    )


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
    spec = SYMBOLS[position.symbol]
    profit = money.profit(spec, position.is_buy, volume, position.price_open, price, price_of)
    now = order.time_done_msc
    deal = new_deal(
        ticket=deal_ticket,
        order=order.ticket,
        time_msc=now,
        type=c.DEAL_TYPE_SELL if position.is_buy else c.DEAL_TYPE_BUY,
        entry=c.DEAL_ENTRY_OUT,
        magic=magic,
        position_id=position.ticket,
        reason=reason,
        volume=volume,
        price=price,
        profit=profit,
        symbol=spec.name,
        comment=comment,
    )
    remaining = round(position.volume - volume, 8)
    left = remaining > VOLUME_EPS
    return Change(
        balance=round(balance + profit, money.CURRENCY_DIGITS),
        next_order=order.ticket + 1,
        next_deal=deal_ticket + 1,
        processed_msc=now,
        upsert=(position._replace(volume=remaining, time_update_msc=now),) if left else (),
        remove=() if left else (position.ticket,),
        orders=(order,),
        deals=(deal,),
    )


def stop_closures(ledger: Ledger, hits: list[Hit], price_of: money.PriceOf) -> Change | None:
    """One change closing, in time order, the positions whose SL or TP was hit."""
    if not hits:
        return None
    balance, next_order, next_deal = ledger.balance, ledger.next_order, ledger.next_deal
    removed: list[int] = []
    orders: list[TradeOrder] = []
    deals: list[TradeDeal] = []
    in_order = sorted(hits, key=lambda hit: (hit[1], hit[0]))
    for ticket, time_msc, price, reason in in_order:
        position = ledger.positions[ticket]
        spec = SYMBOLS[position.symbol]
        is_sl = reason == c.DEAL_REASON_SL
        level = position.sl if is_sl else position.tp
        comment = f"[{'sl' if is_sl else 'tp'} {level:.{spec.digits}f}]"
        order = filled_order(
            ticket=next_order,
            time_msc=time_msc,
            type=c.ORDER_TYPE_SELL if position.is_buy else c.ORDER_TYPE_BUY,
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
        change = closing(
            position,
            volume=position.volume,
            price=price,
            order=order,
            deal_ticket=next_deal,
            reason=reason,
            magic=position.magic,
            comment=comment,
            balance=balance,
            price_of=price_of,
        )
        balance = change.balance if change.balance is not None else balance
        next_order, next_deal = next_order + 1, next_deal + 1
        removed.append(ticket)
        orders.extend(change.orders)
        deals.extend(change.deals)
    return Change(
        balance=balance,
        next_order=next_order,
        next_deal=next_deal,
        processed_msc=in_order[-1][1],  # the latest hit's time
        remove=tuple(removed),
        orders=tuple(orders),
        deals=tuple(deals),
    )
