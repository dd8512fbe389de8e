"""Recorded calls: one script of trading calls (buys and sells with and without stops, partial closes,
SL/TP changes, refusals of every kind, malformed calls, other symbols on their own feeds, account,
positions and history) played on the stepped replay three ways must answer the same, call for call:

- jumping from turn to turn with ``advance_to`` (the replay's fast path: one numpy search per
  position, hits executed bar by bar),
- stepping bar by bar with ``open_next_bar`` / ``finish_bar`` (the general path),
- and, for the replayed symbol alone, on the real-time replay with a clock put at the same moments.

A few of the answers are also pinned to the values they had when the simulator's hot paths were
written field by field (record builders with keywords, the account summed with its general code), so
that faster builders cannot move a single bit of a price, a profit or a ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from mt5console.core.broker.sim import SimTerminal
from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim.bookkeeping import filled_order, new_deal
from mt5console.core.broker.sim.info import account_info, position_record
from mt5console.core.broker.sim.money import margin_reads_prices
from mt5console.core.broker.sim.records import AccountInfo, TradeDeal, TradeOrder, TradePosition
from mt5console.core.broker.sim.state import OpenPosition
from mt5console.core.broker.sim.stops import first_bar_hit
from mt5console.core.broker.sim.symbols import SYMBOLS
from mt5console.core.broker.sim.trading import Figures
from tests.helpers import Clock, walked_h1_bars

HOUR = 3600
FIRST_BAR = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp())  # a Monday 00:00
BARS = 80
# (bar at whose open the calls are made, the script's step for that moment)
TURNS = (2, 3, 5, 9, 14, 15, 22, 23, 31, 40, 55, 70)
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def replayed_bars(count: int = BARS, *, seed: int = 11) -> np.ndarray:
    """H1 EURUSD bars with a weekend gap after bar 30, wide enough ranges for stops to be hit."""
    return walked_h1_bars(
        count, seed=seed, first=FIRST_BAR, level=1.085, step=0.0012, wick=0.0015, volumes=(1, 50),
        spreads=(3, 20), gap_after=30,
    )  # fmt: skip


def canonical(value: object) -> object:
    """A value as comparable data: arrays as their dtype and bytes, records with their type's name,
    floats by repr (so that 0.1 + 0.2 and 0.3, or a numpy float and a float, differ)."""
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.tobytes())
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(canonical(item) for item in value))
    return (type(value).__name__, repr(value))


class Recorder:
    """Calls the terminal and keeps every answer with the error it left."""

    def __init__(self, mt5: SimTerminal) -> None:
        self.mt5 = mt5
        self.answers: list[tuple[str, object, tuple[int, str]]] = []

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        value = getattr(self.mt5, name)(*args, **kwargs)
        self.answers.append((name, canonical(value), self.mt5.last_error()))
        return value


def deal(call: Recorder, symbol: str, side: int, volume: float, **extra: Any) -> Any:
    """A market deal priced from the tick, with the filling the symbol allows."""
    tick = call.mt5.symbol_info_tick(symbol)
    assert tick is not None, (symbol, call.mt5.last_error())
    request: dict[str, Any] = {
        "action": c.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": side,
        "price": tick.ask if side == c.ORDER_TYPE_BUY else tick.bid,
        "deviation": 10,
        "type_filling": c.ORDER_FILLING_FOK,
        "comment": f"script {symbol} {volume}",
    }
    request.update(extra)
    return call("order_send", request)


def levels(call: Recorder, symbol: str, buy: bool, sl_points: int, tp_points: int) -> dict[str, float]:
    tick, spec = call.mt5.symbol_info_tick(symbol), call.mt5.symbol_info(symbol)
    assert tick is not None and spec is not None
    point, digits = spec.point, spec.digits
    if buy:
        return {
            "sl": round(tick.bid - sl_points * point, digits),
            "tp": round(tick.bid + tp_points * point, digits),
        }
    return {
        "sl": round(tick.ask + sl_points * point, digits),
        "tp": round(tick.ask - tp_points * point, digits),
    }


def look(call: Recorder, *, other_symbols: bool) -> None:
    """What an engine reads every turn."""
    call("account_info")
    call("positions_get")
    call("positions_total")
    call("positions_get", symbol="EURUSD")
    call("symbol_info_tick", "EURUSD")
    call("copy_rates_from_pos", "EURUSD", c.TIMEFRAME_H1, 0, 3)
    check = {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.3, "type": c.ORDER_TYPE_SELL}
    call("order_check", check)
    if other_symbols:
        call("positions_get", group="*JPY*,XAU*")


def script(call: Recorder, turn: int, *, other_symbols: bool) -> None:
    """The calls made at the open of bar TURNS[turn]."""
    buy, sell = c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL
    look(call, other_symbols=other_symbols)
    held = {p.comment: p for p in call.mt5.positions_get() or ()}
    if turn == 0:
        deal(call, "EURUSD", buy, 99.0)  # NO_MONEY with nothing open
        call("order_check", {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 99.0, "type": buy})
        deal(call, "EURUSD", buy, 0.1, magic=7, **levels(call, "EURUSD", True, 90, 120))
        deal(call, "EURUSD", sell, 0.2, magic=8, **levels(call, "EURUSD", False, 150, 60))
        deal(call, "EURUSD", buy, 0.05)  # no stops, by hand (magic 0)
        deal(call, "EURUSD", sell, 0.37, magic=9)
    elif turn == 1:
        plain = held["script EURUSD 0.05"]
        deal(call, "EURUSD", sell, 0.02, position=plain.ticket, magic=3, comment="part")
        short = held["script EURUSD 0.37"]
        stops = levels(call, "EURUSD", False, 200, 250)
        call("order_send", {"action": c.TRADE_ACTION_SLTP, "position": short.ticket, **stops})
        call("order_send", {"action": c.TRADE_ACTION_SLTP, "position": short.ticket, **stops})  # NO_CHANGES
    elif turn == 2:
        refusals(call)
    elif turn == 3 and other_symbols:
        deal(call, "USDJPY", sell, 0.3, magic=4, **levels(call, "USDJPY", False, 150, 150))
        deal(call, "XAUUSD", buy, 0.05, magic=5, **levels(call, "XAUUSD", True, 400, 300))
        deal(call, "GBPUSD", buy, 0.4, magic=6)
        deal(call, "US500", buy, 0.5, type_filling=c.ORDER_FILLING_IOC)
    elif turn == 4:
        deal(call, "EURUSD", buy, 1.0, magic=11, **levels(call, "EURUSD", True, 40, 30))
        deal(call, "EURUSD", sell, 0.75, magic=12, **levels(call, "EURUSD", False, 35, 45))
    elif turn == 6:  # the last bar before the weekend gap
        deal(call, "EURUSD", buy, 0.6, magic=13, **levels(call, "EURUSD", True, 60, 70))
    elif turn == 8:
        for position in call.mt5.positions_get() or ():
            side = sell if position.type == c.POSITION_TYPE_BUY else buy
            deal(call, position.symbol, side, position.volume, position=position.ticket, comment="flat")
        deal(call, "EURUSD", sell, 0.25, magic=14, **levels(call, "EURUSD", False, 120, 80))
    elif turn == 10:
        deal(call, "EURUSD", buy, 2.5, magic=15, **levels(call, "EURUSD", True, 300, 300))
    for position in call.mt5.positions_get() or ():
        call("history_deals_get", position=position.ticket)
        call("history_orders_get", position=position.ticket)


def refusals(call: Recorder) -> None:
    """A request of every kind the server refuses, and calls the module refuses to read."""
    buy = c.ORDER_TYPE_BUY
    deal(call, "EURUSD", buy, 0.001)  # INVALID_VOLUME: below the minimum
    deal(call, "EURUSD", buy, 0.015)  # INVALID_VOLUME: off the step
    deal(call, "EURUSD", buy, 500.0)  # INVALID_VOLUME: above the maximum
    deal(call, "EURUSD", buy, 99.0)  # NO_MONEY
    deal(call, "EURUSD", buy, 0.1, type_filling=c.ORDER_FILLING_RETURN)  # INVALID_FILL
    deal(call, "EURUSD", buy, 0.1, price=-1.5)  # INVALID_PRICE: market execution never requotes
    deal(call, "EURUSD", buy, 0.1, price=1.234567)  # INVALID_PRICE
    wrong = levels(call, "EURUSD", False, 50, 50)  # a sell's levels on a buy: wrong sides
    deal(call, "EURUSD", buy, 0.1, sl=wrong["sl"])  # INVALID_STOPS
    deal(call, "EURUSD", buy, 0.1, tp=wrong["tp"])  # INVALID_STOPS
    deal(call, "EURUSD", buy, 0.1, sl=1.0000001)  # INVALID_STOPS: off the grid
    deal(call, "EURUSD", c.ORDER_TYPE_SELL, 0.1, position=999)  # POSITION_CLOSED
    deal(call, "EURUSD", 4, 0.1)  # INVALID: a pending type
    call("order_send", {"action": c.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.1})
    call("order_send", {"action": c.TRADE_ACTION_SLTP, "symbol": "EURUSD"})
    call("order_send", {"action": c.TRADE_ACTION_DEAL, "symbol": "NOPE", "volume": 0.1})
    call("order_send", {"action": c.TRADE_ACTION_DEAL, "volume": 0.1})
    call("order_send", {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 1})  # an int
    call("order_send", {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "sl": float("nan")})
    call("order_send", {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "magic": -1})
    call("order_send", {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, "x": 1})
    call("order_send", ["not", "a", "dict"])
    call("order_check", {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 99.0, "type": buy})


def ending(call: Recorder) -> None:
    look(call, other_symbols=True)
    call("history_deals_get", *EVERYTHING)
    call("history_orders_get", *EVERYTHING)
    call("history_deals_total", *EVERYTHING)


def stepped(data: np.ndarray) -> SimTerminal:
    mt5 = SimTerminal(seed=2, data=data, symbol="EURUSD", timeframe="H1", replay="stepped", leverage=50)
    assert mt5.initialize()
    return mt5


Move = Callable[[SimTerminal, int], tuple[object, ...]]


def by_jumps(mt5: SimTerminal, index: int) -> tuple[object, ...]:
    return mt5.advance_to(index)


def bar_by_bar(mt5: SimTerminal, index: int) -> tuple[object, ...]:
    """What advance_to(index) does, one finish_bar() / open_next_bar() at a time; the deals made on
    the way (other symbols' stops too, which finish_bar() does not return: they are not the bar's)."""
    before = mt5.history_deals_total(*EVERYTHING)
    if mt5.replay_index >= 0:
        mt5.finish_bar()
    while mt5.replay_index + 1 < index:
        mt5.open_next_bar()
        mt5.finish_bar()
    if index < mt5.replay_length:
        mt5.open_next_bar()
    assert before is not None
    return tuple(mt5.history_deals_get(*EVERYTHING) or ())[before:]


class RealTime:
    """The real-time replay of the same bars, its clock put where the stepped one stands."""

    def __init__(self, data: np.ndarray) -> None:
        # A second before the first bar: where a stepped replay's clock starts (the deposit's time).
        self.clock = Clock(datetime.fromtimestamp(FIRST_BAR - 1, UTC))
        self.data = data
        self.mt5 = SimTerminal(
            seed=2, data=data, symbol="EURUSD", timeframe="H1", clock=self.clock, leverage=50
        )
        assert self.mt5.initialize()

    def move(self, mt5: SimTerminal, index: int) -> tuple[object, ...]:
        """To bar ``index``'s open (or the last bar's close); the deals made on the way."""
        assert mt5 is self.mt5
        before = mt5.history_deals_total(*EVERYTHING)
        if index < len(self.data):
            moment = int(self.data["time"][index])
        else:
            moment = int(self.data["time"][-1]) + HOUR - 1  # the close tick: a second before the end
        self.clock.now = datetime.fromtimestamp(moment, UTC)
        assert before is not None
        return tuple(mt5.history_deals_get(*EVERYTHING) or ())[before:]


def played(
    move: Move, *, other_symbols: bool, live: RealTime | None = None
) -> Iterator[tuple[str, object, tuple[int, str]]]:
    data = replayed_bars()
    mt5 = live.mt5 if live is not None else stepped(data)
    call = Recorder(mt5)
    if live is None:
        assert mt5.open_next_bar()
    for turn, bar in enumerate(TURNS):
        call.answers.append(("moved", canonical(move(mt5, bar)), (0, "")))
        script(call, turn, other_symbols=other_symbols)
    call.answers.append(("moved", canonical(move(mt5, len(data))), (0, "")))
    ending(call)
    yield from call.answers


@pytest.mark.parametrize("other_symbols", [False, True])
def test_jumping_answers_every_call_as_stepping_bar_by_bar_does(other_symbols: bool) -> None:
    jumps = list(played(by_jumps, other_symbols=other_symbols))
    steps = list(played(bar_by_bar, other_symbols=other_symbols))
    assert len(jumps) == len(steps) > 150
    for jumped, stepped_ in zip(jumps, steps, strict=True):
        assert jumped == stepped_
    # The script did trade: stops and targets were hit on the way, refusals were refused.
    retcodes = [answer for answer in jumps if answer[0] == "order_send"]
    assert len(retcodes) > 20


def test_the_real_time_replay_answers_every_call_as_the_stepped_one_does() -> None:
    live = RealTime(replayed_bars())
    clocked = list(played(live.move, other_symbols=False, live=live))
    jumps = list(played(by_jumps, other_symbols=False))
    assert len(clocked) == len(jumps)
    for on_time, jumped in zip(clocked, jumps, strict=True):
        assert on_time == jumped


# ------------------------------------------------------------------------------ pinned answers

# The script's deals (other symbols too), recorded before the hot paths were rewritten:
# (ticket, order, time_msc, type, entry, reason, volume, price, profit, symbol, comment).
RECORDED_DEALS = (
    (20000001, 0, 1709510399000, 2, 0, 0, 0.0, 0.0, 10000.0, "", "Initial deposit"),
    (20000002, 10000001, 1709517600000, 0, 0, 3, 0.1, 1.08682, 0.0, "EURUSD", "script EURUSD 0.1"),
    (20000003, 10000002, 1709517600000, 1, 0, 3, 0.2, 1.08667, 0.0, "EURUSD", "script EURUSD 0.2"),
    (20000004, 10000003, 1709517600000, 0, 0, 0, 0.05, 1.08682, 0.0, "EURUSD", "script EURUSD 0.05"),
    (20000005, 10000004, 1709517600000, 1, 0, 3, 0.37, 1.08667, 0.0, "EURUSD", "script EURUSD 0.37"),
    (20000006, 10000005, 1709520000000, 1, 1, 5, 0.1, 1.08787, 10.5, "EURUSD", "[tp 1.08787]"),
    (20000007, 10000006, 1709520000000, 0, 1, 4, 0.2, 1.08832, -33.0, "EURUSD", "[sl 1.08832]"),
    (20000008, 10000007, 1709521200000, 1, 1, 3, 0.02, 1.08814, 2.64, "EURUSD", "part"),
    (20000009, 10000008, 1709533200000, 0, 1, 5, 0.37, 1.08575, 34.04, "EURUSD", "[tp 1.08575]"),
    (20000010, 10000009, 1709542800000, 1, 0, 3, 0.3, 150.343, 0.0, "USDJPY", "script USDJPY 0.3"),
    (20000011, 10000010, 1709542800000, 0, 0, 3, 0.05, 2412.28, 0.0, "XAUUSD", "script XAUUSD 0.05"),
    (20000012, 10000011, 1709542800000, 0, 0, 3, 0.4, 1.3185, 0.0, "GBPUSD", "script GBPUSD 0.4"),
    (20000013, 10000012, 1709542800000, 0, 0, 0, 0.5, 4726.14, 0.0, "US500", "script US500 0.5"),
    (20000014, 10000013, 1709542829956, 0, 1, 5, 0.3, 150.104, 47.77, "USDJPY", "[tp 150.203]"),
    (20000015, 10000014, 1709546490584, 1, 1, 4, 0.05, 2407.92, -21.8, "XAUUSD", "[sl 2407.97]"),
    (20000016, 10000015, 1709560800000, 0, 0, 3, 1.0, 1.08842, 0.0, "EURUSD", "script EURUSD 1.0"),
    (20000017, 10000016, 1709560800000, 1, 0, 3, 0.75, 1.08825, 0.0, "EURUSD", "script EURUSD 0.75"),
    (20000018, 10000017, 1709562000000, 0, 1, 4, 0.75, 1.08877, -39.0, "EURUSD", "[sl 1.08877]"),
    (20000019, 10000018, 1709563200000, 1, 1, 4, 1.0, 1.08785, -57.0, "EURUSD", "[sl 1.08785]"),
    (20000020, 10000019, 1709589600000, 0, 0, 3, 0.6, 1.08701, 0.0, "EURUSD", "script EURUSD 0.6"),
    (20000021, 10000020, 1709592000000, 1, 1, 5, 0.6, 1.08758, 34.2, "EURUSD", "[tp 1.08758]"),
    (20000022, 10000021, 1709794800000, 1, 1, 0, 0.03, 1.0806, -18.66, "EURUSD", "flat"),
    (20000023, 10000022, 1709794800000, 1, 1, 0, 0.4, 1.32348, 199.2, "GBPUSD", "flat"),
    (20000024, 10000023, 1709794800000, 1, 0, 3, 0.25, 1.0806, 0.0, "EURUSD", "script EURUSD 0.25"),
    (20000025, 10000024, 1709797200000, 0, 1, 5, 0.25, 1.07991, 17.25, "EURUSD", "[tp 1.07991]"),
    (20000026, 10000025, 1709881200000, 0, 0, 3, 2.5, 1.08275, 0.0, "EURUSD", "script EURUSD 2.5"),
    (20000027, 10000026, 1709896800000, 1, 1, 4, 2.5, 1.07961, -785.0, "EURUSD", "[sl 1.07961]"),
)
# The account after each turn's calls: (bar, balance, profit, equity, margin, margin_free, margin_level).
RECORDED_ACCOUNTS = (
    (2, 10000.0, -10.8, 9989.2, 1238.81, 8750.39, 806.35),
    (3, 9980.14, -54.5, 9925.64, 804.14, 9121.5, 1234.32),
    (5, 9980.14, -20.41, 9959.73, 804.14, 9155.59, 1238.56),
    (9, 10014.18, -6.08, 10008.1, 2008.5, 7999.6, 498.29),
    (14, 10040.15, 18.82, 10058.97, 3344.11, 6714.86, 300.8),
    (15, 9944.15, 142.22, 10086.37, 1167.27, 8919.1, 864.1),
    (22, 9944.15, -82.18, 9861.97, 2471.68, 7390.29, 399.0),
    (23, 9978.35, 79.06, 10057.41, 1167.27, 8890.14, 861.62),
    (31, 10158.89, 11.36, 10170.25, 587.56, 9582.69, 1730.93),
    (40, 10176.14, 31.01, 10207.15, 47.26, 10159.89, 21597.86),
    (55, 10176.14, -24.49, 10151.65, 5461.01, 4690.64, 185.89),
    (70, 9391.14, 3.99, 9395.13, 47.26, 9347.87, 19879.67),
)


def test_the_script_leaves_the_recorded_deals_and_accounts() -> None:
    data = replayed_bars()
    mt5 = stepped(data)
    call = Recorder(mt5)
    assert mt5.open_next_bar()
    accounts = []
    for turn, bar in enumerate(TURNS):
        mt5.advance_to(bar)
        script(call, turn, other_symbols=True)
        account = mt5.account_info()
        assert account is not None
        figures = (account.balance, account.profit, account.equity, account.margin)
        accounts.append((bar, *figures, account.margin_free, account.margin_level))
    mt5.advance_to(len(data))
    deals = mt5.history_deals_get(*EVERYTHING)
    assert deals is not None
    fields = ("ticket", "order", "time_msc", "type", "entry", "reason", "volume", "price", "profit")
    recorded = [(*(getattr(d, name) for name in fields), d.symbol, d.comment) for d in deals]
    assert recorded == list(RECORDED_DEALS)
    assert accounts == list(RECORDED_ACCOUNTS)
    refused = [v for name, v, _ in call.answers if name == "order_send" and "No money" in repr(v)]
    assert refused, "the script sends orders the account cannot afford"
    first = mt5.order_check({"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 99.0, "type": 0})
    assert first is not None and first.retcode == c.TRADE_RETCODE_NO_MONEY


def test_an_order_the_empty_account_cannot_afford_is_refused_as_recorded() -> None:
    mt5 = stepped(replayed_bars())
    mt5.open_next_bar()
    mt5.advance_to(2)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    request = {"action": c.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 99.0, "type": 0}
    refused = mt5.order_send({**request, "price": tick.ask, "deviation": 10, "comment": "script EURUSD 99.0"})
    assert refused is not None and refused.retcode == c.TRADE_RETCODE_NO_MONEY
    assert refused.comment == "No money (margin 215190.36 would exceed equity 8515.00)"
    checked = mt5.order_check(request)
    assert checked is not None and checked.comment == refused.comment
    assert (checked.balance, checked.equity, checked.margin, checked.margin_free) == (
        10000.0,
        10000.0,
        0.0,
        10000.0,
    )
    assert mt5.positions_total() == 0 and mt5.history_deals_total(*EVERYTHING) == 1  # the deposit only


# ------------------------------------------------------------------------------ the parts


def test_records_are_built_field_by_field_as_their_keywords_say() -> None:
    order = filled_order(
        ticket=7, time_msc=1_709_517_600_123, type=1, type_time=2, type_filling=3, magic=4,
        position_id=5, reason=6, volume=0.3, price_open=1.5, sl=1.25, tp=1.75, price=1.49,
        symbol="EURUSD", comment="x" * 40,
    )  # fmt: skip
    assert order == TradeOrder(
        ticket=7, time_setup=1_709_517_600, time_setup_msc=1_709_517_600_123, time_done=1_709_517_600,
        time_done_msc=1_709_517_600_123, time_expiration=0, type=1, type_time=2, type_filling=3,
        state=c.ORDER_STATE_FILLED, magic=4, position_id=5, position_by_id=0, reason=6,
        volume_initial=0.3, volume_current=0.0, price_open=1.5, sl=1.25, tp=1.75, price_current=1.49,
        price_stoplimit=0.0, symbol="EURUSD", comment="x" * 31, external_id="",
    )  # fmt: skip
    deal = new_deal(
        ticket=8, order=7, time_msc=1_709_517_600_999, type=0, entry=1, magic=4, position_id=5,
        reason=6, volume=0.3, price=1.49, profit=-3.25, symbol="EURUSD", comment="y",
    )  # fmt: skip
    assert deal == TradeDeal(
        ticket=8, order=7, time=1_709_517_600, time_msc=1_709_517_600_999, type=0, entry=1, magic=4,
        position_id=5, reason=6, volume=0.3, price=1.49, commission=0.0, swap=0.0, profit=-3.25,
        fee=0.0, symbol="EURUSD", comment="y", external_id="",
    )  # fmt: skip
    held = OpenPosition(5, "EURUSD", 1, 0.3, 1.5, 1.75, 1.25, 4, "z", 3, 1_000_500, 2_000_700)
    assert position_record(held, 1.52, -6.0) == TradePosition(
        ticket=5, time=1_000, time_msc=1_000_500, time_update=2_000, time_update_msc=2_000_700, type=1,
        magic=4, identifier=5, reason=3, volume=0.3, price_open=1.5, sl=1.75, tp=1.25,
        price_current=1.52, swap=0.0, profit=-6.0, symbol="EURUSD", comment="z", external_id="",
    )  # fmt: skip
    account = account_info(9, 50, Figures(100.0, -2.5, 97.5, 10.0, 87.5, 975.0))
    assert account == AccountInfo(
        login=9, trade_mode=c.ACCOUNT_TRADE_MODE_DEMO, leverage=50, limit_orders=200,
        margin_so_mode=c.ACCOUNT_STOPOUT_MODE_PERCENT, trade_allowed=True, trade_expert=True,
        margin_mode=c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, currency_digits=2, fifo_close=False,
        balance=100.0, credit=0.0, profit=-2.5, equity=97.5, margin=10.0, margin_free=87.5,
        margin_level=975.0, margin_so_call=100.0, margin_so_so=50.0, margin_initial=0.0,
        margin_maintenance=0.0, assets=0.0, liabilities=0.0, commission_blocked=0.0,
        name="Simulated Trader", server="MT5Console-Sim", currency="USD", company="mt5console simulator",
    )  # fmt: skip


def bar_rule(position: OpenPosition, mt5: SimTerminal, start: int, stop: int) -> tuple[int, object] | None:
    """The replay's bar rule read plainly, bar by bar, from the bars' ticks (open, extremes, close)."""
    ticks = mt5.copy_ticks_range(
        "EURUSD", datetime(2000, 1, 1, tzinfo=UTC), mt5.current_time, c.COPY_TICKS_ALL
    )
    assert ticks is not None and len(ticks) % 4 == 0
    buy, sl, tp = position.type == c.POSITION_TYPE_BUY, position.sl, position.tp
    for bar in range(start, stop):
        four = ticks[bar * 4 : bar * 4 + 4]
        prices = [float(p) for p in (four["bid"] if buy else four["ask"])]
        times = [int(t) for t in four["time_msc"]]
        low, high = min(prices[:3]), max(prices[:3])
        low_time, high_time = times[prices.index(low)], times[prices.index(high)]
        o = prices[0]
        stop_in = bool(sl) and (low <= sl if buy else high >= sl)
        target_in = bool(tp) and (high >= tp if buy else low <= tp)
        if tp and (o >= tp if buy else o <= tp):
            return bar, (position.ticket, times[0], o, c.DEAL_REASON_TP)
        if sl and (o <= sl if buy else o >= sl):
            return bar, (position.ticket, times[0], o, c.DEAL_REASON_SL)
        if stop_in:
            return bar, (position.ticket, low_time if buy else high_time, sl, c.DEAL_REASON_SL)
        if target_in:
            return bar, (position.ticket, high_time if buy else low_time, tp, c.DEAL_REASON_TP)
    return None


def test_the_numpy_search_finds_what_the_bar_rule_read_bar_by_bar_finds() -> None:
    data = replayed_bars()
    mt5 = stepped(data)
    mt5.advance_to(len(data))  # every tick revealed
    prices = mt5._engine.replay.prices  # type: ignore[union-attr]
    rng = np.random.default_rng(5)
    found = 0
    for _ in range(600):
        kind = int(rng.integers(0, 2))
        start = int(rng.integers(0, len(data)))
        stop = int(rng.integers(start, len(data) + 1))
        base = float(data["open"][start])
        away = 1 if kind == c.POSITION_TYPE_BUY else -1
        sl = round(base - away * float(rng.uniform(-0.001, 0.01)), 5) if rng.random() < 0.85 else 0.0
        tp = round(base + away * float(rng.uniform(-0.001, 0.01)), 5) if rng.random() < 0.85 else 0.0
        position = OpenPosition(1, "EURUSD", kind, 0.1, base, sl, tp, 0, "", 0, 0, 0)
        searched = first_bar_hit(position, prices, start, stop)
        assert searched == bar_rule(position, mt5, start, stop), (position, start, stop)
        found += searched is not None
    assert 200 < found < 600  # hits and misses, gaps among them (levels on the wrong side of the open)


def test_the_margin_kept_between_changes_follows_every_change() -> None:
    mt5 = stepped(replayed_bars())
    mt5.open_next_bar()
    mt5.advance_to(3)

    def margins() -> tuple[float, float]:
        account, held = mt5.account_info(), mt5.positions_get()
        assert account is not None and held is not None
        each = [mt5.order_calc_margin(p.type, p.symbol, p.volume, p.price_open) for p in held]
        return account.margin, round(sum(m for m in each if m is not None), 2)  # one side: no hedge

    assert margins() == (0.0, 0.0)
    bought = deal(Recorder(mt5), "EURUSD", c.ORDER_TYPE_BUY, 0.4)
    opened = margins()
    assert opened[0] == opened[1] > 0
    mt5.advance_to(4)  # the clock moves: the margin (at the open price) stays
    assert margins() == opened
    deal(Recorder(mt5), "EURUSD", c.ORDER_TYPE_SELL, 0.1, position=bought.order)
    partly = margins()
    assert partly[0] == partly[1] and partly[0] < opened[0]
    deal(Recorder(mt5), "EURUSD", c.ORDER_TYPE_BUY, 0.2)
    both = margins()
    assert both[0] == both[1] > partly[0]
    mt5.advance_to(6)
    for position in mt5.positions_get() or ():
        deal(Recorder(mt5), "EURUSD", c.ORDER_TYPE_SELL, position.volume, position=position.ticket)
    assert margins() == (0.0, 0.0)


def test_only_a_margin_converted_at_other_prices_moves_with_the_market() -> None:
    # Every simulated symbol's margin is in USD or converted at the symbol's own (open) price.
    assert not any(margin_reads_prices(spec) for spec in SYMBOLS.values())
    # A cross's margin currency converts at another symbol's current price (EURGBP's EUR at EURUSD).
    assert margin_reads_prices(replace(SYMBOLS["EURUSD"], name="EURGBP", currency_profit="GBP"))
    assert not margin_reads_prices(replace(SYMBOLS["USDJPY"], name="USDCHF", currency_profit="CHF"))


def test_valid_volumes_are_traded_alike_every_time_and_bad_ones_refused_every_time() -> None:
    mt5 = stepped(replayed_bars())
    mt5.open_next_bar()
    mt5.advance_to(2)
    call = Recorder(mt5)
    for volume, retcode in ((0.015, c.TRADE_RETCODE_INVALID_VOLUME), (0.1, c.TRADE_RETCODE_DONE)):
        first, again = (deal(call, "EURUSD", c.ORDER_TYPE_BUY, volume) for _ in range(2))
        assert first.retcode == again.retcode == retcode
        assert (first.volume, first.comment) == (again.volume, again.comment)
    assert mt5.positions_total() == 2
