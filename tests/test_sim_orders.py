"""Trading on the simulated terminal: the money maths by hand, real retcodes for bad requests, partial
closes, SL/TP changes and hits, deal history and the account's equity and margin."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mt5console.core.broker.sim import SimTerminal
from mt5console.core.broker.sim.symbols import SYMBOLS
from tests.helpers import WEDNESDAY, Clock, deal_history, open_positions, order_history

SATURDAY = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(WEDNESDAY)


@pytest.fixture
def mt5(clock: Clock) -> SimTerminal:
    terminal = SimTerminal(seed=5, clock=clock)
    assert terminal.initialize()
    return terminal


def market(mt5: SimTerminal, symbol: str, side: int, volume: float, /, **extra: Any) -> Any:
    """A market deal as the adapter sends it (price from the tick, IOC/FOK as the symbol allows)."""
    tick = mt5.symbol_info_tick(symbol)
    info = mt5.symbol_info(symbol)
    assert tick is not None and info is not None
    request: dict[str, Any] = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": side,
        "price": tick.ask if side == mt5.ORDER_TYPE_BUY else tick.bid,
        "deviation": 10,
        "type_filling": mt5.ORDER_FILLING_FOK if info.filling_mode & 1 else mt5.ORDER_FILLING_IOC,
    }
    request.update(extra)
    return mt5.order_send(request)


def snapshot(mt5: SimTerminal) -> tuple[Any, ...]:
    account = mt5.account_info()
    assert account is not None
    everything = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    return (
        account.balance,
        open_positions(mt5),
        deal_history(mt5, *everything),
        order_history(mt5, *everything),
    )


# ------------------------------------------------------------------------------------- the maths


def test_margin_by_hand(mt5: SimTerminal) -> None:
    # EURUSD: 1 lot x 100000 EUR / leverage 100, in USD at 1.08500.
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.085) == 1.0 * 100_000 * 1.085 / 100
    # USDJPY: the margin currency is USD itself: 0.5 x 100000 / 100.
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_SELL, "USDJPY", 0.5, 150.0) == 500.0
    # XAUUSD: 0.3 lot x 100 oz x 2300.50 / 100.
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "XAUUSD", 0.3, 2300.5) == round(
        0.3 * 100 * 2300.5 / 100, 2
    )
    # US500 (CFD, leverage): 1 lot x 1 x 5000 / 100.
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "US500", 1.0, 5000.0) == 50.0


def test_profit_by_hand(mt5: SimTerminal) -> None:
    # 25 points on 0.3 lot EURUSD: 0.0025 x 100000 x 0.3 USD.
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "EURUSD", 0.3, 1.085, 1.0875) == 75.0
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_SELL, "EURUSD", 0.3, 1.085, 1.0875) == -75.0
    # Sold 1 lot USDJPY at 150.000, bought back at 151.200: -120000 JPY, at 151.200 JPY per USD.
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_SELL, "USDJPY", 1.0, 150.0, 151.2) == round(
        -120_000 / 151.2, 2
    )
    # 10.55 USD per oz on 0.1 lot of 100 oz.
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "XAUUSD", 0.1, 2300.0, 2310.55) == 105.5
    assert mt5.order_calc_profit(7, "EURUSD", 0.1, 1.0, 1.1) is None
    assert mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS


def test_volumes_are_compared_on_the_step_grid(mt5: SimTerminal) -> None:
    result = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1 + 0.2)  # 0.30000000000000004
    assert result.retcode == mt5.TRADE_RETCODE_DONE
    assert result.volume == 0.3
    (position,) = open_positions(mt5)
    assert position.volume == 0.3
    assert market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.015).retcode == mt5.TRADE_RETCODE_INVALID_VOLUME
    assert market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.001).retcode == mt5.TRADE_RETCODE_INVALID_VOLUME
    assert market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 100.01).retcode == mt5.TRADE_RETCODE_INVALID_VOLUME
    assert market(mt5, "XAUUSD", mt5.ORDER_TYPE_BUY, 50.01).retcode == mt5.TRADE_RETCODE_INVALID_VOLUME
    assert market(mt5, "US500", mt5.ORDER_TYPE_BUY, 0.05).retcode == mt5.TRADE_RETCODE_INVALID_VOLUME


def test_a_fill_is_at_the_ask_for_buys_and_the_bid_for_sells(mt5: SimTerminal) -> None:
    tick = mt5.symbol_info_tick("USDJPY")
    assert tick is not None
    bought = market(
        mt5, "USDJPY", mt5.ORDER_TYPE_BUY, 0.1, magic=42, comment="strategy-7 signal long entry x"
    )
    sold = market(mt5, "USDJPY", mt5.ORDER_TYPE_SELL, 0.1)
    assert (bought.price, sold.price) == (tick.ask, tick.bid)
    assert bought.comment == "Request executed" and bought.request.magic == 42
    assert bought.order != bought.deal
    positions = {p.ticket: p for p in open_positions(mt5)}
    long = positions[bought.order]  # the position's ticket is its opening order's
    assert (long.identifier, long.type, long.magic, long.reason) == (
        bought.order,
        0,
        42,
        mt5.POSITION_REASON_EXPERT,
    )
    assert positions[sold.order].reason == mt5.POSITION_REASON_CLIENT
    assert long.comment == "strategy-7 signal long entry x"[:31]


# ------------------------------------------------------------------------------------- refusals

BAD_REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("unknown symbol", {"symbol": "EURUSX"}, 10013),
    ("no symbol", {"symbol": ""}, 10013),
    ("bad type", {"type": 9}, 10013),
    ("unknown action", {"action": 2}, 10013),
    ("sl above the bid of a buy", {"sl": "bid+10"}, 10016),
    ("tp below the bid of a buy", {"tp": "bid-10"}, 10016),
    ("sl off the price grid", {"sl": "bid-10.5"}, 10016),
    ("price off the grid", {"price": "ask+0.5"}, 10015),
    ("RETURN filling on a market-execution symbol", {"type_filling": 2}, 10030),
    ("pending order", {"action": 5, "type": 2, "price": "ask-100"}, 10035),
    ("close-by", {"action": 10, "position": 1, "position_by": 2}, 10035),
    ("closing a position that is not open", {"position": 999, "type": 1}, 10036),
]


def _resolve(mt5: SimTerminal, change: dict[str, Any]) -> dict[str, Any]:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    resolved: dict[str, Any] = {}
    for key, value in change.items():
        if isinstance(value, str) and value[:3] in ("bid", "ask"):
            base = tick.bid if value.startswith("bid") else tick.ask
            resolved[key] = base + float(value[3:]) * 1e-5
            if not value.endswith(".5"):
                resolved[key] = round(resolved[key], 5)
        else:
            resolved[key] = value
    return resolved


@pytest.mark.parametrize(
    ("case", "change", "retcode"), BAD_REQUESTS, ids=[case for case, _, _ in BAD_REQUESTS]
)
def test_a_bad_request_gets_its_real_retcode_and_changes_nothing(
    mt5: SimTerminal, case: str, change: dict[str, Any], retcode: int
) -> None:
    assert market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1).retcode == mt5.TRADE_RETCODE_DONE
    before = snapshot(mt5)
    result = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1, **_resolve(mt5, change))
    assert result.retcode == retcode, result.comment
    assert (result.deal, result.order, result.volume) == (0, 0, 0.0)
    assert result.comment  # says what is wrong
    assert snapshot(mt5) == before


def test_market_execution_fills_at_the_market_whatever_the_price_and_deviation(mt5: SimTerminal) -> None:
    info, tick = mt5.symbol_info("EURUSD"), mt5.symbol_info_tick("EURUSD")
    assert info is not None and tick is not None
    assert info.trade_exemode == mt5.SYMBOL_TRADE_EXECUTION_MARKET
    for price, deviation in (
        (round(tick.ask + 2e-5, 5), 0),
        (round(tick.ask - 2e-5, 5), 0),
        (tick.ask + 5e-4, 10),
    ):
        result = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1, price=round(price, 5), deviation=deviation)
        assert result.retcode == mt5.TRADE_RETCODE_DONE, result.comment
        assert result.price == tick.ask  # the market's price, not the request's


def test_instant_execution_still_requotes_beyond_the_deviation(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    instant = replace(SYMBOLS["EURUSD"], execution=SimTerminal.SYMBOL_TRADE_EXECUTION_INSTANT)
    monkeypatch.setitem(SYMBOLS, "EURUSD", instant)
    mt5 = SimTerminal(seed=5, clock=clock)
    assert mt5.initialize()
    info, tick = mt5.symbol_info("EURUSD"), mt5.symbol_info_tick("EURUSD")
    assert info is not None and tick is not None
    assert info.trade_exemode == mt5.SYMBOL_TRADE_EXECUTION_INSTANT
    before = snapshot(mt5)
    away = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1, price=round(tick.ask + 2e-5, 5), deviation=0)
    assert away.retcode == mt5.TRADE_RETCODE_REQUOTE and "deviation 0" in away.comment
    assert snapshot(mt5) == before
    near = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1, price=round(tick.ask + 2e-5, 5), deviation=2)
    assert near.retcode == mt5.TRADE_RETCODE_DONE


def test_symbol_specific_refusals(mt5: SimTerminal) -> None:
    gold = mt5.symbol_info_tick("XAUUSD")
    assert gold is not None
    before = snapshot(mt5)
    # XAUUSD allows FOK only; its stops must be 20 points (0.20) away.
    assert market(mt5, "XAUUSD", 0, 0.1, type_filling=mt5.ORDER_FILLING_IOC).retcode == 10030
    near = round(gold.bid - 0.15, 2)
    assert market(mt5, "XAUUSD", 0, 0.1, sl=near).retcode == mt5.TRADE_RETCODE_INVALID_STOPS
    far = round(gold.bid - 0.2, 2)
    # 50 lots of gold need 50 x 100 x price / 100 USD of margin, far beyond 10000.
    assert market(mt5, "XAUUSD", 0, 50.0).retcode == mt5.TRADE_RETCODE_NO_MONEY
    assert snapshot(mt5) == before
    assert market(mt5, "XAUUSD", 0, 0.1, sl=far).retcode == mt5.TRADE_RETCODE_DONE


def test_malformed_calls_return_none_with_invalid_params(mt5: SimTerminal) -> None:
    before = snapshot(mt5)
    for request in (
        ["not", "a", "dict"],
        {"action": 1, "symbol": "EURUSD", "volume": 1, "type": 0},  # an int volume, as the module refuses
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "stoploss": 1.0},
        {"action": True, "symbol": "EURUSD", "volume": 0.1, "type": 0},
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "magic": -1},
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "magic": 2**64},  # beyond a ulong
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "magic": 0, "position": 2**70},
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_time": 2**40},  # beyond an int
    ):
        assert mt5.order_send(request) is None  # type: ignore[arg-type]
        code, text = mt5.last_error()
        assert code == mt5.RES_E_INVALID_PARAMS and "Invalid" in text
        assert mt5.order_check(request) is None  # type: ignore[arg-type]
    assert snapshot(mt5) == before


def test_the_index_is_closed_at_the_weekend_while_fx_trades() -> None:
    clock = Clock(SATURDAY)
    mt5 = SimTerminal(seed=5, clock=clock)
    assert mt5.initialize()
    assert market(mt5, "US500", 0, 1.0).retcode == mt5.TRADE_RETCODE_MARKET_CLOSED
    tick = mt5.symbol_info_tick("US500")
    assert tick is not None and tick.time_msc < int(datetime(2024, 3, 8, 21, tzinfo=UTC).timestamp() * 1000)
    assert market(mt5, "EURUSD", 0, 0.1).retcode == mt5.TRADE_RETCODE_DONE
    clock.now = datetime(2024, 3, 11, 14, tzinfo=UTC)  # Monday
    fok = market(mt5, "US500", 0, 1.0, type_filling=mt5.ORDER_FILLING_FOK)
    assert fok.retcode == mt5.TRADE_RETCODE_INVALID_FILL  # US500 fills IOC only
    assert market(mt5, "US500", 0, 1.0).retcode == mt5.TRADE_RETCODE_DONE
    clock.now = datetime(2024, 3, 11, 21, 30, tzinfo=UTC)  # the daily break
    assert market(mt5, "US500", 1, 1.0, type_filling=1).retcode == mt5.TRADE_RETCODE_MARKET_CLOSED


# ------------------------------------------------------------------------------------- positions


def test_partial_close_keeps_the_rest_open_under_the_same_ticket(mt5: SimTerminal, clock: Clock) -> None:
    opened = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.3)
    clock.advance(minutes=20)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    closed = market(mt5, "EURUSD", mt5.ORDER_TYPE_SELL, 0.1, position=opened.order)
    assert closed.retcode == mt5.TRADE_RETCODE_DONE and closed.price == tick.bid
    profit = round((tick.bid - opened.price) * 100_000 * 0.1, 2)
    (rest,) = open_positions(mt5)
    assert (rest.ticket, rest.volume, rest.price_open) == (opened.order, 0.2, opened.price)
    (out,) = deal_history(mt5, ticket=closed.deal)
    assert (out.entry, out.type, out.position_id, out.volume, out.profit) == (1, 1, opened.order, 0.1, profit)
    account = mt5.account_info()
    assert account is not None and account.balance == round(10_000 + profit, 2)
    assert market(mt5, "EURUSD", 1, 0.3, position=opened.order).retcode == 10038  # more than is open
    assert market(mt5, "EURUSD", 0, 0.2, position=opened.order).retcode == 10013  # same side does not close
    assert market(mt5, "GBPUSD", 1, 0.2, position=opened.order).retcode == 10013  # another symbol
    assert market(mt5, "EURUSD", 1, 0.2, position=opened.order).retcode == mt5.TRADE_RETCODE_DONE
    assert open_positions(mt5) == ()
    assert mt5.positions_total() == 0


def test_sltp_modifies_a_position(mt5: SimTerminal) -> None:
    opened = market(mt5, "EURUSD", mt5.ORDER_TYPE_SELL, 0.2)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    sl, tp = round(tick.ask + 0.002, 5), round(tick.ask - 0.003, 5)
    request = {
        "action": mt5.TRADE_ACTION_SLTP,
        "symbol": "EURUSD",
        "position": opened.order,
        "sl": sl,
        "tp": tp,
    }
    result = mt5.order_send(request)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
    (position,) = open_positions(mt5, ticket=opened.order)
    assert (position.sl, position.tp) == (sl, tp)
    again = mt5.order_send(request)
    assert again is not None and again.retcode == mt5.TRADE_RETCODE_NO_CHANGES
    wrong = mt5.order_send({**request, "sl": round(tick.ask - 0.001, 5)})  # a sell's SL below the ask
    assert wrong is not None and wrong.retcode == mt5.TRADE_RETCODE_INVALID_STOPS
    gone = mt5.order_send({**request, "position": 424242})
    assert gone is not None and gone.retcode == mt5.TRADE_RETCODE_POSITION_CLOSED
    removed = mt5.order_send({**request, "sl": 0.0, "tp": 0.0})
    assert removed is not None and removed.retcode == mt5.TRADE_RETCODE_DONE
    (position,) = open_positions(mt5, ticket=opened.order)
    assert (position.sl, position.tp) == (0.0, 0.0)


def _first_tick(mt5: SimTerminal, after_msc: int, until_msc: int, test: Any) -> Any:
    ticks = mt5.copy_ticks_range(
        "EURUSD",
        datetime.fromtimestamp(after_msc / 1000, UTC),
        datetime.fromtimestamp(until_msc / 1000, UTC),
        mt5.COPY_TICKS_ALL,
    )
    assert ticks is not None
    ticks = ticks[ticks["time_msc"] > after_msc]
    return ticks[test(ticks)][0]


def test_sl_and_tp_trigger_on_the_ticks_while_the_clock_runs(mt5: SimTerminal, clock: Clock) -> None:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    take = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1, tp=round(tick.bid + 0.0004, 5), magic=9)
    stop = market(mt5, "EURUSD", mt5.ORDER_TYPE_SELL, 0.2, sl=round(tick.ask + 0.0004, 5))
    loss = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1, sl=round(tick.bid - 0.0004, 5))
    opened_msc = open_positions(mt5)[0].time_msc
    clock.advance(hours=12)  # one jump: the terminal must find the exact ticks in between
    assert open_positions(mt5) == ()
    deals = {
        d.position_id: d for d in deal_history(mt5, position=take.order) if d.entry == mt5.DEAL_ENTRY_OUT
    }
    tp_deal = deals[take.order]
    first = _first_tick(mt5, opened_msc, tp_deal.time_msc, lambda t: t["bid"] >= take.request.tp)
    assert (tp_deal.reason, tp_deal.time_msc, tp_deal.price) == (
        mt5.DEAL_REASON_TP,
        first["time_msc"],
        first["bid"],
    )
    assert tp_deal.magic == 9 and tp_deal.comment == f"[tp {take.request.tp:.5f}]"
    (sl_deal,) = (d for d in deal_history(mt5, position=stop.order) if d.entry == mt5.DEAL_ENTRY_OUT)
    first = _first_tick(mt5, opened_msc, sl_deal.time_msc, lambda t: t["ask"] >= stop.request.sl)
    assert (sl_deal.reason, sl_deal.time_msc, sl_deal.price) == (
        mt5.DEAL_REASON_SL,
        first["time_msc"],
        first["ask"],
    )
    assert sl_deal.type == mt5.DEAL_TYPE_BUY and sl_deal.comment.startswith("[sl ")
    assert sl_deal.profit == round((stop.price - sl_deal.price) * 100_000 * 0.2, 2)
    (loss_deal,) = (d for d in deal_history(mt5, position=loss.order) if d.entry == mt5.DEAL_ENTRY_OUT)
    assert loss_deal.reason == mt5.DEAL_REASON_SL and loss_deal.price <= loss.request.sl
    profits = tp_deal.profit + sl_deal.profit + loss_deal.profit
    account = mt5.account_info()
    assert account is not None and account.balance == round(10_000 + profits, 2)
    orders = order_history(mt5, position=stop.order)
    assert [o.reason for o in orders] == [mt5.ORDER_REASON_CLIENT, mt5.ORDER_REASON_SL]


def test_deal_and_order_history(mt5: SimTerminal, clock: Clock) -> None:
    start = clock.now
    opened = market(mt5, "GBPUSD", mt5.ORDER_TYPE_BUY, 0.5, magic=3)
    clock.advance(minutes=5)
    closed = market(mt5, "GBPUSD", mt5.ORDER_TYPE_SELL, 0.5, position=opened.order, magic=3)
    end = clock.now
    deals = deal_history(mt5, start - timedelta(days=1), end)
    assert deals is not None
    assert [(d.type, d.entry) for d in deals] == [(mt5.DEAL_TYPE_BALANCE, 0), (0, 0), (1, 1)]
    assert deals[0].profit == 10_000.0  # the initial deposit
    assert [d.ticket for d in deals[1:]] == [opened.deal, closed.deal]
    assert all(d.reason == mt5.DEAL_REASON_EXPERT for d in deals[1:])
    assert mt5.history_deals_total(start - timedelta(days=1), end) == 3
    assert deal_history(mt5, int(start.timestamp()) - 10, int(start.timestamp()) - 1) == ()
    assert deal_history(mt5, start, end, group="EUR*") == ()
    assert len(deal_history(mt5, position=opened.order)) == 2
    orders = order_history(mt5, start, end)
    assert orders is not None and [o.ticket for o in orders] == [opened.order, closed.order]
    assert all(o.state == mt5.ORDER_STATE_FILLED for o in orders)
    assert mt5.history_orders_total(start, end) == 2
    assert mt5.orders_total() == 0 and mt5.orders_get() == ()


def test_account_equity_and_margin_follow_the_open_positions(mt5: SimTerminal, clock: Clock) -> None:
    eur = market(mt5, "EURUSD", mt5.ORDER_TYPE_BUY, 0.1)
    jpy = market(mt5, "USDJPY", mt5.ORDER_TYPE_SELL, 0.2)
    gold = market(mt5, "XAUUSD", mt5.ORDER_TYPE_BUY, 0.05)
    clock.advance(minutes=30)
    e, j, g = (mt5.symbol_info_tick(name) for name in ("EURUSD", "USDJPY", "XAUUSD"))
    assert e is not None and j is not None and g is not None
    margin = (
        round(0.1 * 100_000 * eur.price / 100, 2)
        + 0.2 * 100_000 / 100
        + round(0.05 * 100 * gold.price / 100, 2)
    )
    profits = [
        round((e.bid - eur.price) * 100_000 * 0.1, 2),
        round((jpy.price - j.ask) * 100_000 * 0.2 / j.ask, 2),  # yen at the price it would close at
        round((g.bid - gold.price) * 100 * 0.05, 2),
    ]
    account = mt5.account_info()
    assert account is not None
    assert account.margin == pytest.approx(margin, abs=0.005)
    assert account.profit == pytest.approx(sum(profits), abs=0.005)
    assert account.equity == pytest.approx(10_000 + sum(profits), abs=0.005)
    assert account.margin_free == pytest.approx(account.equity - account.margin, abs=0.005)
    assert account.margin_level == pytest.approx(account.equity / account.margin * 100, abs=0.01)
    assert sorted(p.profit for p in open_positions(mt5)) == sorted(profits)
    # Hedged: a bigger opposite EURUSD position is charged instead of both legs.
    hedge = market(mt5, "EURUSD", mt5.ORDER_TYPE_SELL, 0.3)
    after = mt5.account_info()
    assert after is not None
    hedged = margin - round(0.1 * 100_000 * eur.price / 100, 2) + round(0.3 * 100_000 * hedge.price / 100, 2)
    assert after.margin == pytest.approx(hedged, abs=0.005)


def test_order_check_reports_the_account_after_the_request(mt5: SimTerminal) -> None:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    request = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 1.0, "type": mt5.ORDER_TYPE_BUY}
    check = mt5.order_check(request)
    assert check is not None
    assert (check.retcode, check.comment, check.balance) == (0, "Done", 10_000.0)
    assert check.margin == round(100_000 * tick.ask / 100, 2)
    assert check.margin_free == pytest.approx(check.equity - check.margin, abs=0.005)
    assert check.request.volume == 1.0
    assert mt5.positions_total() == 0  # a check opens nothing
    refused = mt5.order_check({**request, "volume": 0.001})
    assert refused is not None and refused.retcode == mt5.TRADE_RETCODE_INVALID_VOLUME
