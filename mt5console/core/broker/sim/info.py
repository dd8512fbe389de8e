"""Building the module's info records (terminal, account, symbol, position, book) from the engine."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Final, get_type_hints

from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim import money
from mt5console.core.broker.sim.feed import Bars, Quote
from mt5console.core.broker.sim.records import AccountInfo, BookInfo, SymbolInfo, TerminalInfo, TradePosition
from mt5console.core.broker.sim.state import OpenPosition
from mt5console.core.broker.sim.symbols import (
    EXPIRATION_ALL,
    ORDER_MODE_MARKET,
    ORDER_MODE_SL,
    ORDER_MODE_TP,
    SymbolSpec,
)
from mt5console.core.broker.sim.trading import Figures

VERSION: Final = (500, 4755, "24 Jan 2025")
COMPANY: Final = "mt5console simulator"
SERVER: Final = "MT5Console-Sim"
ACCOUNT_NAME: Final = "Simulated Trader"
MAXBARS: Final = 100_000
BOOK_DEPTH: Final = 5
# A record from its values in field order: the account and the positions are built on every clock
# move, and a named tuple's generated __new__ with keywords costs several times as much.
_record = tuple.__new__


def terminal_dir(state_dir: Path | None) -> Path:
    """Where the simulated terminal "lives": beside its state file, else in the temp folder."""
    return (state_dir or Path(tempfile.gettempdir()) / "mt5console-sim") / "terminal"


def terminal_info(state_dir: Path | None) -> TerminalInfo:
    home = terminal_dir(state_dir)
    return TerminalInfo(
        community_account=False,
        community_connection=False,
        connected=True,
        dlls_allowed=False,
        trade_allowed=True,
        tradeapi_disabled=False,
        email_enabled=False,
        ftp_enabled=False,
        notifications_enabled=False,
        mqid=False,
        build=VERSION[1],
        maxbars=MAXBARS,
        codepage=0,
        ping_last=0,
        community_balance=0.0,
        retransmission=0.0,
        company=COMPANY,
        name="SIMULATED",
        language="English",
        path=str(home),
        data_path=str(home),
        commondata_path=str(home.parent / "common"),
    )


def account_info(login: int, leverage: int, figures: Figures) -> AccountInfo:
    balance, profit, equity, margin, margin_free, margin_level = figures
    values = (
        login,
        c.ACCOUNT_TRADE_MODE_DEMO,  # trade_mode
        leverage,
        200,  # limit_orders
        c.ACCOUNT_STOPOUT_MODE_PERCENT,  # margin_so_mode
        True,  # trade_allowed
        True,  # trade_expert
        c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,  # margin_mode
        money.CURRENCY_DIGITS,  # currency_digits
        False,  # fifo_close
        balance,
        0.0,  # credit
        profit,
        equity,
        margin,
        margin_free,
        margin_level,
        100.0,  # margin_so_call
        50.0,  # margin_so_so
        0.0,  # margin_initial
        0.0,  # margin_maintenance
        0.0,  # assets
        0.0,  # liabilities
        0.0,  # commission_blocked
        ACCOUNT_NAME,  # name
        SERVER,  # server
        money.ACCOUNT_CURRENCY,  # currency
        COMPANY,  # company
    )
    return _record(AccountInfo, values)


# Every SymbolInfo field at its type's zero (False, 0, 0.0, ''): read from the type hints once,
# since reading them takes far longer than building the record.
_SYMBOL_INFO_ZEROS: Final[dict[str, Any]] = {
    name: kind() for name, kind in get_type_hints(SymbolInfo).items()
}


def symbol_info(
    spec: SymbolSpec,
    quote: Quote | None,
    today: Bars,
    previous_close: float,
    selected: bool,
    tick_value: float,
) -> SymbolInfo:
    """``today`` is the forming D1 bar (maybe empty), ``previous_close`` the last D1 close before it."""
    values = dict(_SYMBOL_INFO_ZEROS)
    bid, ask = (quote.bid, quote.ask) if quote else (0.0, 0.0)
    spread = round((ask - bid) / spec.point) if quote else 0
    high = float(today.high[0]) if len(today) else bid
    low = float(today.low[0]) if len(today) else bid
    values.update(
        chart_mode=c.SYMBOL_CHART_MODE_BID,
        select=selected,
        visible=selected,
        time=quote.time_msc // 1000 if quote else 0,
        digits=spec.digits,
        spread=spread,
        spread_float=True,
        ticks_bookdepth=BOOK_DEPTH * 2,
        trade_calc_mode=spec.calc_mode,
        trade_mode=c.SYMBOL_TRADE_MODE_FULL,
        trade_stops_level=spec.stops_level,
        trade_exemode=spec.execution,
        swap_mode=c.SYMBOL_SWAP_MODE_DISABLED,
        swap_rollover3days=c.DAY_OF_WEEK_WEDNESDAY,
        margin_hedged_use_leg=True,
        expiration_mode=EXPIRATION_ALL,
        filling_mode=spec.filling_mode,
        order_mode=ORDER_MODE_MARKET | ORDER_MODE_SL | ORDER_MODE_TP,
        order_gtc_mode=c.SYMBOL_ORDERS_GTC,
        bid=bid,
        bidhigh=high,
        bidlow=low,
        ask=ask,
        askhigh=round(high + (ask - bid), spec.digits),
        asklow=round(low + (ask - bid), spec.digits),
        point=spec.point,
        trade_tick_value=tick_value,
        trade_tick_value_profit=tick_value,
        trade_tick_value_loss=tick_value,
        trade_tick_size=spec.tick_size,
        trade_contract_size=spec.contract_size,
        volume_min=spec.volume_min,
        volume_max=spec.volume_max,
        volume_step=spec.volume_step,
        session_open=float(today.open[0]) if len(today) else 0.0,
        session_close=previous_close,
        price_change=round((bid - previous_close) / previous_close * 100, 4)
        if previous_close and bid
        else 0.0,
        currency_base=spec.currency_base,
        currency_profit=spec.currency_profit,
        currency_margin=spec.currency_margin,
        description=spec.description,
        name=spec.name,
        path=spec.path,
    )
    return SymbolInfo(**values)


def position_record(position: OpenPosition, price_current: float, profit: float) -> TradePosition:
    values = (
        position.ticket,
        position.time_msc // 1000,  # time
        position.time_msc,
        position.time_update_msc // 1000,  # time_update
        position.time_update_msc,
        position.type,
        position.magic,
        position.ticket,  # identifier
        position.reason,
        position.volume,
        position.price_open,
        position.sl,
        position.tp,
        price_current,
        0.0,  # swap
        profit,
        position.symbol,
        position.comment,
        "",  # external_id
    )
    return _record(TradePosition, values)


def market_book(spec: SymbolSpec, quote: Quote) -> tuple[BookInfo, ...]:
    """A small book around the quote: five sell levels above the ask, five buy levels below the bid.

    Ordered as MT5 sends it: by price, highest first (sells, then buys); volumes grow away from the top.
    """
    step = max(1, spec.spread // 2) * spec.point
    sells = [
        BookInfo(c.BOOK_TYPE_SELL, round(quote.ask + level * step, spec.digits), level + 1, float(level + 1))
        for level in reversed(range(BOOK_DEPTH))
    ]
    buys = [
        BookInfo(c.BOOK_TYPE_BUY, round(quote.bid - level * step, spec.digits), level + 1, float(level + 1))
        for level in range(BOOK_DEPTH)
    ]
    return (*sells, *buys)
