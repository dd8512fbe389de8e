"""The trade server: validating and executing requests, with MetaTrader's retcodes.

Supported: TRADE_ACTION_DEAL (open at market; close or partly close by ``position``) and
TRADE_ACTION_SLTP. Pending orders, their modification and removal, and close-by are not simulated:
they get TRADE_RETCODE_INVALID_ORDER (the symbols' order_mode does not offer them either).
Checks, in order: the request (INVALID), volume (INVALID_VOLUME), filling (INVALID_FILL), session
(MARKET_CLOSED), a price to trade at (PRICE_OFF), the requested price (INVALID_PRICE when it is not
a price of the symbol; REQUOTE when the market is more than ``deviation`` points away, for instant
and request execution only: market execution, every simulated symbol's, fills at the market), stops
(INVALID_STOPS: wrong side, closer than trade_stops_level, or not on the tick grid) and free margin
(NO_MONEY). Stop-out is not simulated.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from typing import Final, NamedTuple, Protocol

from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim import money
from mt5console.core.broker.sim.bookkeeping import closing, filled_order, new_deal
from mt5console.core.broker.sim.feed import Quote
from mt5console.core.broker.sim.records import OrderCheckResult, OrderSendResult, TradeOrder, TradeRequest
from mt5console.core.broker.sim.requests import COMMENT_LENGTH
from mt5console.core.broker.sim.state import Change, Ledger, OpenPosition
from mt5console.core.broker.sim.symbols import FILLING_FOK_BIT, FILLING_IOC_BIT, SYMBOLS, SymbolSpec

RETCODE_TEXT: Final[dict[int, str]] = {
    c.TRADE_RETCODE_REQUOTE: "Requote",
    c.TRADE_RETCODE_REJECT: "Request rejected",
    c.TRADE_RETCODE_DONE: "Request executed",
    c.TRADE_RETCODE_ERROR: "Request processing error",
    c.TRADE_RETCODE_INVALID: "Invalid request",
    c.TRADE_RETCODE_INVALID_VOLUME: "Invalid volume",
    c.TRADE_RETCODE_INVALID_PRICE: "Invalid price",
    c.TRADE_RETCODE_INVALID_STOPS: "Invalid stops",
    c.TRADE_RETCODE_MARKET_CLOSED: "Market closed",
    c.TRADE_RETCODE_NO_MONEY: "No money",
    c.TRADE_RETCODE_PRICE_OFF: "No quotes",
    c.TRADE_RETCODE_NO_CHANGES: "No changes",
    c.TRADE_RETCODE_INVALID_FILL: "Unsupported filling mode",
    c.TRADE_RETCODE_INVALID_ORDER: "Invalid order",
    c.TRADE_RETCODE_POSITION_CLOSED: "Position doesn't exist",
    c.TRADE_RETCODE_INVALID_CLOSE_VOLUME: "Invalid close volume",
}
_FILLING_BITS: Final = {c.ORDER_FILLING_FOK: FILLING_FOK_BIT, c.ORDER_FILLING_IOC: FILLING_IOC_BIT}
_UNSUPPORTED_ACTIONS: Final = {
    c.TRADE_ACTION_PENDING: "pending orders are not simulated",
    c.TRADE_ACTION_MODIFY: "pending orders are not simulated, so there is none to modify",
    c.TRADE_ACTION_REMOVE: "pending orders are not simulated, so there is none to remove",
    c.TRADE_ACTION_CLOSE_BY: "close-by is not simulated; close each position with a deal",
}
EPS: Final = 1e-6
# Execution modes that fill only at the requested price (within ``deviation``), else requote.
_REQUOTING: Final = frozenset({c.SYMBOL_TRADE_EXECUTION_INSTANT, c.SYMBOL_TRADE_EXECUTION_REQUEST})


class Market(Protocol):
    """What the trade server needs to know about the market."""

    def now_ms(self) -> int: ...

    def quote(self, symbol: str) -> Quote | None: ...

    def is_open(self, symbol: str) -> bool: ...

    def price_of(self, symbol: str) -> float | None: ...


class Refusal(Exception):
    def __init__(self, retcode: int, detail: str) -> None:
        super().__init__(detail)
        self.retcode = retcode
        self.detail = detail


# Plan and Figures are named tuples: built on every order (and account_info), and immutable like a
# frozen dataclass, whose __init__ costs several times as much.
class Plan(NamedTuple):
    """What an accepted request does."""

    change: Change
    deal: int = 0
    order: int = 0
    volume: float = 0.0
    price: float = 0.0


class Figures(NamedTuple):
    balance: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float


# A named tuple from its values in field order (see bookkeeping._record).
_record = tuple.__new__


def on_grid(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < EPS


def _traded_volume(spec: SymbolSpec, volume: float) -> float:
    """``volume`` on the step's grid, if it is positive, on the grid and within the symbol's limits."""
    if not volume > 0:
        raise Refusal(c.TRADE_RETCODE_INVALID_VOLUME, f"volume {volume} must be positive")
    if not on_grid(volume, spec.volume_step):
        raise Refusal(
            c.TRADE_RETCODE_INVALID_VOLUME, f"{volume} is not a multiple of the step {spec.volume_step}"
        )
    normal = round(round(volume / spec.volume_step) * spec.volume_step, 8)
    if normal < spec.volume_min - EPS:
        raise Refusal(c.TRADE_RETCODE_INVALID_VOLUME, f"{volume} is below the minimum {spec.volume_min}")
    if normal > spec.volume_max + EPS:
        raise Refusal(c.TRADE_RETCODE_INVALID_VOLUME, f"{volume} is above the maximum {spec.volume_max}")
    return normal


def _figures(balance: float, profit: float, margin: float) -> Figures:
    """The account of this balance, open profit and margin."""
    equity = round(balance + profit, money.CURRENCY_DIGITS)
    level = round(equity / margin * 100, 2) if margin > 0 else 0.0
    return Figures(balance, profit, equity, margin, round(equity - margin, money.CURRENCY_DIGITS), level)


def _stop_detail(
    spec: SymbolSpec, name: str, level: float, below: bool, is_buy: bool, reference: float, distance: float
) -> str:
    """Why a stop level is refused: on the wrong side of the price, or closer than the stops level."""
    side, price = "below" if below else "above", "bid" if is_buy else "ask"
    if distance <= EPS:
        return f"{name} {level} must be {side} the {price} {reference:.{spec.digits}f}"
    return f"{name} {level} is {distance:.0f} points from the {price}; {spec.name} needs {spec.stops_level}"


class Desk:
    """Validates and executes requests against the ledger; ``commit`` persists, then applies."""

    def __init__(
        self, ledger: Ledger, market: Market, leverage: int, commit: Callable[[Change], None]
    ) -> None:
        self.ledger = ledger
        self.market = market
        self.leverage = leverage
        self._commit = commit
        self._request_id = 0
        # (ledger revision, margin) of the open positions: see _ledger_margin.
        self._kept_margin: tuple[int, float] | None = None
        self._volumes: dict[tuple[str, float], float] = {}  # valid volumes as traded: see _volume

    # ---------------------------------------------------------------- account maths

    def position_price(self, position: OpenPosition) -> float:
        """The price the position would close at now (bid for a buy, ask for a sell)."""
        quote = self.market.quote(position.symbol)
        if quote is None:
            return position.price_open
        return quote.bid if position.type == c.POSITION_TYPE_BUY else quote.ask

    def valuation(self, position: OpenPosition) -> tuple[float, float]:
        """The price the position would close at now (``position_price``) and its profit there."""
        price = self.position_price(position)
        spec, is_buy = SYMBOLS[position.symbol], position.type == c.POSITION_TYPE_BUY
        profit = money.profit(spec, is_buy, position.volume, position.price_open, price, self.market.price_of)
        return price, profit

    def figures(self, change: Change | None = None) -> Figures:
        """The account now, or as it would be after ``change``."""
        ledger = self.ledger
        if change is None:
            positions = ledger.positions.values()
            profit = money.open_profit(positions, self.position_price, self.market.price_of)
            return _figures(ledger.balance, profit, self._ledger_margin())
        after = change.positions_after(ledger.positions).values()
        balance = change.balance if change.balance is not None else ledger.balance
        profit = money.open_profit(after, self.position_price, self.market.price_of)
        return _figures(balance, profit, money.hedged_margin(after, self.leverage, self.market.price_of))

    def _ledger_margin(self) -> float:
        """The margin of the ledger's open positions.

        Kept while the positions stay as they are (the ledger's revision), unless a margin is
        converted at other symbols' prices: then it moves with the market and is computed anew.
        """
        revision, kept = self.ledger.revision, self._kept_margin
        if kept is not None and kept[0] == revision:
            return kept[1]
        positions = self.ledger.positions.values()
        margin = money.hedged_margin(positions, self.leverage, self.market.price_of)
        for position in positions:
            if money.margin_reads_prices(SYMBOLS[position.symbol]):
                return margin
        self._kept_margin = (revision, margin)
        return margin

    # ---------------------------------------------------------------- requests

    def check(self, request: TradeRequest) -> OrderCheckResult:
        """order_check: retcode 0 and the account after the request, or the refusal's retcode."""
        try:
            after = self.figures(self._plan(request).change)
            retcode, comment = 0, "Done"
        except Refusal as refusal:
            after = self.figures()
            retcode, comment = refusal.retcode, f"{RETCODE_TEXT[refusal.retcode]} ({refusal.detail})"
        return OrderCheckResult(
            retcode=retcode,
            balance=after.balance,
            equity=after.equity,
            profit=after.profit,
            margin=after.margin,
            margin_free=after.margin_free,
            margin_level=after.margin_level,
            comment=comment,
            request=request,
        )

    def send(self, request: TradeRequest) -> OrderSendResult:
        self._request_id += 1
        quote = self.market.quote(request.symbol) if request.symbol in SYMBOLS else None
        try:
            plan = self._plan(request)
        except Refusal as refusal:
            return self._result(refusal.retcode, request, quote, detail=refusal.detail)
        try:
            self._commit(plan.change)
        except sqlite3.Error as error:
            return self._result(
                c.TRADE_RETCODE_ERROR, request, quote, detail=f"the state file failed: {error}"
            )
        return self._result(
            c.TRADE_RETCODE_DONE,
            request,
            quote,
            deal=plan.deal,
            order=plan.order,
            volume=plan.volume,
            price=plan.price,
        )

    def _result(
        self,
        retcode: int,
        request: TradeRequest,
        quote: Quote | None,
        *,
        detail: str = "",
        deal: int = 0,
        order: int = 0,
        volume: float = 0.0,
        price: float = 0.0,
    ) -> OrderSendResult:
        comment = RETCODE_TEXT[retcode] + (f" ({detail})" if detail else "")
        bid, ask = (quote.bid, quote.ask) if quote else (0.0, 0.0)
        # OrderSendResult's fields in order (retcode_external is 0: no external system).
        values = (retcode, deal, order, volume, price, bid, ask, comment, self._request_id, 0, request)
        result: OrderSendResult = _record(OrderSendResult, values)
        return result

    def _plan(self, request: TradeRequest) -> Plan:
        if request.action in _UNSUPPORTED_ACTIONS:
            raise Refusal(c.TRADE_RETCODE_INVALID_ORDER, _UNSUPPORTED_ACTIONS[request.action])
        if request.action == c.TRADE_ACTION_SLTP:
            return self._plan_sltp(request)
        if request.action != c.TRADE_ACTION_DEAL:
            raise Refusal(c.TRADE_RETCODE_INVALID, f"unknown action {request.action}")
        spec = self._spec(request.symbol)
        if request.type not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL):
            raise Refusal(
                c.TRADE_RETCODE_INVALID, f"type {request.type} is not ORDER_TYPE_BUY or ORDER_TYPE_SELL"
            )
        if request.position:
            return self._plan_close(request, spec)
        return self._plan_open(request, spec)

    # ---------------------------------------------------------------- checks

    @staticmethod
    def _spec(symbol: str) -> SymbolSpec:
        if not symbol:
            raise Refusal(c.TRADE_RETCODE_INVALID, "no symbol")
        spec = SYMBOLS.get(symbol)
        if spec is None:
            raise Refusal(c.TRADE_RETCODE_INVALID, f"unknown symbol {symbol!r}")
        return spec

    def _volume(self, spec: SymbolSpec, volume: float) -> float:
        """The volume as traded (on the step's grid), or INVALID_VOLUME.

        The answer for a valid volume (a float) is remembered per symbol: volumes repeat, and valid
        ones are few (multiples of the step up to the maximum).
        """
        if type(volume) is not float:  # a float subclass: its own type may carry through the maths
            return _traded_volume(spec, volume)
        key = (spec.name, volume)
        traded = self._volumes.get(key)
        if traded is None:
            traded = self._volumes[key] = _traded_volume(spec, volume)
        return traded

    @staticmethod
    def _filling(spec: SymbolSpec, filling: int) -> None:
        if not _FILLING_BITS.get(filling, 0) & spec.filling_mode:
            names = (("ORDER_FILLING_FOK", FILLING_FOK_BIT), ("ORDER_FILLING_IOC", FILLING_IOC_BIT))
            allowed = " or ".join(name for name, bit in names if bit & spec.filling_mode)
            detail = f"type_filling {filling} is not allowed for {spec.name} market deals; use {allowed}"
            raise Refusal(c.TRADE_RETCODE_INVALID_FILL, detail)

    def _quote(self, spec: SymbolSpec) -> Quote:
        if not self.market.is_open(spec.name):
            raise Refusal(c.TRADE_RETCODE_MARKET_CLOSED, f"{spec.name} is outside its trading session")
        quote = self.market.quote(spec.name)
        if quote is None:
            raise Refusal(c.TRADE_RETCODE_PRICE_OFF, f"no prices for {spec.name}")
        return quote

    @staticmethod
    def _price(spec: SymbolSpec, request: TradeRequest, market_price: float) -> None:
        if request.price == 0:
            return
        if request.price < 0 or not on_grid(request.price, spec.tick_size):
            raise Refusal(
                c.TRADE_RETCODE_INVALID_PRICE, f"price {request.price} is not a {spec.digits}-digit price"
            )
        if spec.execution not in _REQUOTING:
            return  # market execution fills at the market, whatever the request's price and deviation
        away = abs(request.price - market_price) / spec.point
        if away > request.deviation + EPS:
            raise Refusal(
                c.TRADE_RETCODE_REQUOTE,
                f"the market is at {market_price:.{spec.digits}f}, {away:.0f} points from {request.price} "
                f"(deviation {request.deviation})",
            )

    @staticmethod
    def _stops(spec: SymbolSpec, is_buy: bool, sl: float, tp: float, quote: Quote) -> None:
        """MT5's rule: a buy's stops are measured from the bid, a sell's from the ask."""
        if not (sl or tp):
            return
        reference = quote.bid if is_buy else quote.ask
        for name, level, below in (("sl", sl, is_buy), ("tp", tp, not is_buy)):
            if level == 0:
                continue
            if level < 0 or not on_grid(level, spec.point):
                raise Refusal(
                    c.TRADE_RETCODE_INVALID_STOPS, f"{name} {level} is not a {spec.digits}-digit price"
                )
            distance = (reference - level if below else level - reference) / spec.point
            if distance <= EPS or distance + EPS < spec.stops_level:
                raise Refusal(
                    c.TRADE_RETCODE_INVALID_STOPS,
                    _stop_detail(spec, name, level, below, is_buy, reference, distance),
                )

    # ---------------------------------------------------------------- plans

    def _reason(self, magic: int) -> tuple[int, int, int]:
        """(position, order, deal) reasons: an EA (magic != 0) or the client."""
        if magic:
            return c.POSITION_REASON_EXPERT, c.ORDER_REASON_EXPERT, c.DEAL_REASON_EXPERT
        return c.POSITION_REASON_CLIENT, c.ORDER_REASON_CLIENT, c.DEAL_REASON_CLIENT

    def _plan_open(self, request: TradeRequest, spec: SymbolSpec) -> Plan:
        volume = self._volume(spec, request.volume)
        self._filling(spec, request.type_filling)
        quote = self._quote(spec)
        is_buy = request.type == c.ORDER_TYPE_BUY
        price = quote.ask if is_buy else quote.bid
        self._price(spec, request, price)
        self._stops(spec, is_buy, request.sl, request.tp, quote)
        now = self.market.now_ms()
        ticket, deal_ticket = self.ledger.next_order, self.ledger.next_deal
        position_reason, order_reason, deal_reason = self._reason(request.magic)
        values = (
            ticket,
            spec.name,  # symbol
            c.POSITION_TYPE_BUY if is_buy else c.POSITION_TYPE_SELL,  # type
            volume,
            price,  # price_open
            request.sl,
            request.tp,
            request.magic,
            request.comment[:COMMENT_LENGTH],
            position_reason,
            now,  # time_msc
            now,  # time_update_msc
        )
        position: OpenPosition = _record(OpenPosition, values)
        # The account with the position added (what figures(Change(upsert=(position,))) gives, but
        # for the margin level, which the check does not need). With nothing else open, the sums over
        # the positions are the new one's own profit and margin (see money._sum_in_cents).
        held = self.ledger.positions
        if held:
            positions = (*held.values(), position)
            profit = money.open_profit(positions, self.position_price, self.market.price_of)
            margin = money.hedged_margin(positions, self.leverage, self.market.price_of)
        else:
            current = quote.bid if is_buy else quote.ask  # its position_price: the same quote
            profit = money.profit(spec, is_buy, volume, price, current, self.market.price_of)
            margin = money.margin(spec, volume, price, self.leverage, self.market.price_of)
        equity = round(self.ledger.balance + profit, money.CURRENCY_DIGITS)
        margin_free = round(equity - margin, money.CURRENCY_DIGITS)
        if margin_free < 0:
            raise Refusal(c.TRADE_RETCODE_NO_MONEY, f"margin {margin:.2f} would exceed equity {equity:.2f}")
        order = self._order(request, ticket, spec.name, volume, price, ticket, order_reason, now)
        deal = new_deal(
            ticket=deal_ticket,
            order=ticket,
            time_msc=now,
            type=request.type,
            entry=c.DEAL_ENTRY_IN,
            magic=request.magic,
            position_id=ticket,
            reason=deal_reason,
            volume=volume,
            price=price,
            profit=0.0,
            symbol=spec.name,
            comment=request.comment,
        )
        fields = (
            None,  # balance: unchanged
            ticket + 1,  # next_order
            deal_ticket + 1,  # next_deal
            now,  # processed_msc
            (position,),  # upsert
            (),  # remove
            (order,),  # orders
            (deal,),  # deals
        )
        change: Change = _record(Change, fields)
        plan: Plan = _record(Plan, (change, deal_ticket, ticket, volume, price))
        return plan

    @staticmethod
    def _order(
        request: TradeRequest,
        ticket: int,
        symbol: str,
        volume: float,
        price: float,
        position_id: int,
        reason: int,
        now: int,
    ) -> TradeOrder:
        return filled_order(
            ticket=ticket,
            time_msc=now,
            type=request.type,
            type_time=request.type_time,
            type_filling=request.type_filling,
            magic=request.magic,
            position_id=position_id,
            reason=reason,
            volume=volume,
            price_open=request.price or price,
            sl=request.sl,
            tp=request.tp,
            price=price,
            symbol=symbol,
            comment=request.comment,
        )

    def _position(self, ticket: int) -> OpenPosition:
        position = self.ledger.positions.get(ticket)
        if position is None:
            raise Refusal(c.TRADE_RETCODE_POSITION_CLOSED, f"position {ticket} is not open")
        return position

    def _plan_close(self, request: TradeRequest, spec: SymbolSpec) -> Plan:
        position = self._position(request.position)
        if position.symbol != spec.name:
            raise Refusal(
                c.TRADE_RETCODE_INVALID, f"position {position.ticket} is {position.symbol}, not {spec.name}"
            )
        if request.type != (c.ORDER_TYPE_SELL if position.is_buy else c.ORDER_TYPE_BUY):
            side = "buy" if position.is_buy else "sell"
            raise Refusal(c.TRADE_RETCODE_INVALID, f"closing a {side} position takes the opposite type")
        volume = self._volume(spec, request.volume)
        if volume > position.volume + EPS:
            raise Refusal(
                c.TRADE_RETCODE_INVALID_CLOSE_VOLUME, f"{volume} is more than the open {position.volume}"
            )
        self._filling(spec, request.type_filling)
        quote = self._quote(spec)
        price = quote.bid if position.is_buy else quote.ask
        self._price(spec, request, price)
        _, order_reason, deal_reason = self._reason(request.magic)
        now = self.market.now_ms()
        order = self._order(
            request, self.ledger.next_order, spec.name, volume, price, position.ticket, order_reason, now
        )
        change = closing(
            position,
            volume=volume,
            price=price,
            order=order,
            deal_ticket=self.ledger.next_deal,
            reason=deal_reason,
            magic=request.magic,
            comment=request.comment,
            balance=self.ledger.balance,
            price_of=self.market.price_of,
        )
        return Plan(change, change.deals[0].ticket, order.ticket, volume, price)

    def _plan_sltp(self, request: TradeRequest) -> Plan:
        if not request.position:
            raise Refusal(c.TRADE_RETCODE_INVALID, "TRADE_ACTION_SLTP needs the position's ticket")
        position = self._position(request.position)
        if request.symbol and request.symbol != position.symbol:
            detail = f"position {position.ticket} is {position.symbol}, not {request.symbol}"
            raise Refusal(c.TRADE_RETCODE_INVALID, detail)
        spec = SYMBOLS[position.symbol]
        quote = self._quote(spec)
        self._stops(spec, position.is_buy, request.sl, request.tp, quote)
        if math.isclose(request.sl, position.sl) and math.isclose(request.tp, position.tp):
            raise Refusal(c.TRADE_RETCODE_NO_CHANGES, "sl and tp are already set to these values")
        now = self.market.now_ms()
        updated = position._replace(sl=request.sl, tp=request.tp, time_update_msc=now)
        return Plan(Change(upsert=(updated,), processed_msc=now))
