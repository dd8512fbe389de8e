"""The broker adapter over the simulator: the code that trades real money, on the simulated terminal."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import typing
from datetime import UTC, datetime
from typing import Any

import pytest

from mt5console.core.broker.errors import OrderRejected, TerminalUnavailable
from mt5console.core.broker.models import Side
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal, records
from mt5console.core.events import (
    Event,
    EventBus,
    LogLine,
    ReconnectAttempt,
    TerminalConnected,
    TerminalLost,
)
from tests.helpers import Clock, SimFront


class ThreadRecorder:
    """Wraps the simulator to record which threads call it (the adapter must use exactly one)."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.threads: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._module, name)
        if callable(attribute):

            def call(*args: Any, **kwargs: Any) -> Any:
                self.threads.add(threading.current_thread().name)
                return attribute(*args, **kwargs)

            return call
        return attribute


def make_broker(sim: Any, events: EventBus | None = None, interval: float = 0.05) -> Broker:
    return Broker(lambda: sim, events=events or EventBus(), simulated=True, reconnect_interval=interval)


async def test_open_modify_partial_close_and_close() -> None:
    recorder = ThreadRecorder(SimTerminal(seed=3, clock=Clock()))
    broker = make_broker(recorder)
    try:
        account = await broker.connect()
        assert account.currency == "USD" and account.hedging and account.balance > 0
        opened = await broker.open_market("EURUSD", Side.BUY, 0.10, magic=42, comment="test open")
        assert opened.volume == pytest.approx(0.10)
        [position] = await broker.positions(ticket=opened.position)
        assert position.side is Side.BUY and position.magic == 42 and position.comment == "test open"
        assert position.time.tzinfo is not None
        spec = await broker.symbol("EURUSD")
        sl = round(position.price_open - 30 * spec.pip, spec.digits)
        tp = round(position.price_open + 50 * spec.pip, spec.digits)
        await broker.modify(position.ticket, sl=sl, tp=tp)
        [position] = await broker.positions(ticket=opened.position)
        assert (position.sl, position.tp) == (sl, tp)
        await broker.close_position(position.ticket, volume=0.04, comment="part")
        [position] = await broker.positions(ticket=opened.position)
        assert position.volume == pytest.approx(0.06)
        await broker.close_position(position.ticket)
        assert await broker.positions(ticket=opened.position) == ()
        tick = await broker.tick("EURUSD")
        deals = await broker.deals(
            tick.time.replace(year=2000), tick.time.replace(year=2100), position=opened.position
        )
        assert [round(d.volume, 2) for d in deals] == [0.10, 0.04, 0.06]
        assert recorder.threads == {t for t in recorder.threads if t.startswith("mt5-terminal")}
        assert len(recorder.threads) == 1
    finally:
        await broker.close()


async def test_position_deals_are_every_deal_of_one_position_without_dates() -> None:
    broker = make_broker(SimTerminal(seed=3, clock=Clock()))
    try:
        await broker.connect()
        kept = await broker.open_market("EURUSD", Side.BUY, 0.10, magic=7)
        other = await broker.open_market("EURUSD", Side.SELL, 0.20, magic=7)
        await broker.close_position(kept.position, volume=0.03)
        await broker.close_position(kept.position)
        deals = await broker.position_deals(kept.position)
        assert [round(d.volume, 2) for d in deals] == [0.10, 0.03, 0.07]
        assert {d.position_id for d in deals} == {kept.position}
        assert deals[0].ticket == kept.deal
        # The dated form with a position gives the same deals (its dates are checked, not used).
        tick = await broker.tick("EURUSD")
        dated = await broker.deals(tick.time.replace(year=2000), tick.time, position=kept.position)
        assert dated == deals
        with pytest.raises(ValueError, match="timezone aware"):
            await broker.deals(datetime(2000, 1, 1), tick.time, position=kept.position)
        assert [round(d.volume, 2) for d in await broker.position_deals(other.position)] == [0.20]
        assert await broker.position_deals(999_999) == ()
    finally:
        await broker.close()


async def test_refused_orders_raise_with_the_real_retcode_and_plain_words() -> None:
    broker = make_broker(SimTerminal(seed=3, clock=Clock()))
    try:
        await broker.connect()
        with pytest.raises(OrderRejected, match=r"INVALID_VOLUME \(10014\)") as caught:
            await broker.open_market("EURUSD", Side.BUY, 0.015)
        assert caught.value.retcode == 10014
        with pytest.raises(OrderRejected, match="INVALID_STOPS"):
            await broker.open_market("EURUSD", Side.BUY, 0.01, sl=9.0)  # a buy's stop above the price
        with pytest.raises(OrderRejected, match="not open"):
            await broker.close_position(999_999)
    finally:
        await broker.close()


async def test_reconnects_after_the_terminal_goes_away_and_comes_back() -> None:
    sim = SimTerminal(seed=3, clock=Clock())
    events = EventBus()
    seen: list[Event] = []
    events.subscribe(seen.append)
    broker = make_broker(sim, events)
    try:
        await broker.connect()
        sim.shutdown()  # the terminal is closed under the console's feet
        with pytest.raises(TerminalUnavailable):
            await broker.account()
        assert not broker.connected
        with pytest.raises(TerminalUnavailable, match="reconnecting"):
            await broker.positions()
        await asyncio.wait_for(broker.wait_connected(), timeout=5)
        assert (await broker.account()).balance > 0
        kinds = [type(e) for e in seen]
        assert TerminalLost in kinds
        assert kinds.count(TerminalConnected) == 2
    finally:
        await broker.close()


class BridgeConnection:
    """What an mt5linux ``MetaTrader5`` object is: its rpyc connection is opened once, when it is
    made; once dropped, every call on it raises EOFError, initialize() too."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim
        self.dropped = False

    def __getattr__(self, name: str) -> Any:
        if self.dropped:

            def dead(*_: Any, **__: Any) -> Any:
                raise EOFError("[Errno 32] connection closed by peer")

            return dead
        return getattr(self._sim, name)


async def test_a_dropped_bridge_connection_is_made_anew_on_reconnect() -> None:
    sim = SimTerminal(seed=3, clock=Clock())
    made: list[BridgeConnection] = []

    def bridge() -> BridgeConnection:
        made.append(BridgeConnection(sim))
        return made[-1]

    broker = Broker(bridge, events=EventBus(), simulated=True, reconnect_interval=0.05)
    try:
        await broker.connect()
        made[0].dropped = True  # the rpyc server (MT5 under Wine) restarted
        with pytest.raises(TerminalUnavailable):
            await broker.account()
        await asyncio.wait_for(broker.wait_connected(), timeout=5)  # not for ever on the dead object
        assert len(made) == 2
        assert (await broker.account()).balance > 0
    finally:
        await broker.close()


class FlakyTerminal:
    """A terminal that refuses ``initialize`` a number of times first (a terminal still starting)."""

    def __init__(self, sim: Any, failures: int) -> None:
        self._sim = sim
        self.failures = failures

    def initialize(self, **kwargs: Any) -> bool:
        if self.failures > 0:
            self.failures -= 1
            return False
        return bool(self._sim.initialize(**kwargs))

    def last_error(self) -> tuple[int, str]:
        return (-10004, "No IPC connection") if self.failures >= 0 else self._sim.last_error()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)


async def test_connect_retries_then_gives_up_with_terminal_unavailable() -> None:
    events = EventBus()
    seen: list[Event] = []
    events.subscribe(seen.append)
    broker = make_broker(
        FlakyTerminal(SimTerminal(seed=3, clock=Clock()), failures=10), events, interval=0.01
    )
    try:
        with pytest.raises(TerminalUnavailable, match="after 3 attempt"):
            await broker.connect(attempts=3)
        assert sum(isinstance(e, ReconnectAttempt) for e in seen) == 2
    finally:
        await broker.close()


async def test_connect_succeeds_once_the_terminal_answers() -> None:
    broker = make_broker(FlakyTerminal(SimTerminal(seed=3, clock=Clock()), failures=2), interval=0.01)
    try:
        account = await broker.connect(attempts=5)
        assert account.balance > 0 and broker.connected
    finally:
        await broker.close()


# --- conversions -----------------------------------------------------------------------------------


def distinct_record(record_type: Any, **fixed: Any) -> Any:
    """One of the module's named tuples whose every field holds a value no other field holds."""
    values: dict[str, Any] = {}
    for number, (name, kind) in enumerate(typing.get_type_hints(record_type).items(), start=1):
        samples = {int: 1000 + number, float: 0.5 + number, str: f"text {number}", bool: number % 2 == 0}
        values[name] = samples.get(kind)
    return record_type(**{**values, **fixed})


def assert_same_named_fields(converted: Any, raw: Any, skip: set[str]) -> None:
    for field in dataclasses.fields(converted):
        if field.name in skip:
            continue
        value, expected = getattr(converted, field.name), getattr(raw, field.name)
        assert value == expected and type(value) is type(expected), f"{type(converted).__name__}.{field.name}"


def test_conversions_put_every_value_in_its_field() -> None:
    """The adapter builds its dataclasses positionally (it is faster): every value must land in the
    field of its name, with the type the dataclass declares and the time in UTC."""
    position = distinct_record(records.TradePosition, time_msc=1_700_000_000_123)
    broker = make_broker(SimTerminal(seed=1))
    converted = broker._position(position)
    assert_same_named_fields(converted, position, skip={"side", "time"})
    assert converted.side is Side.SELL  # type 1000 + n is not POSITION_TYPE_BUY
    assert broker._position(position._replace(type=0)).side is Side.BUY
    assert converted.time == datetime(2023, 11, 14, 22, 13, 20, 123_000, tzinfo=UTC)
    assert broker._position(position._replace(time_msc=0)).time == datetime.fromtimestamp(position.time, UTC)

    deal = distinct_record(records.TradeDeal, time_msc=1_700_000_000_999)
    converted_deal = broker._deal(deal)
    assert_same_named_fields(converted_deal, deal, skip={"time", "commission"})
    assert converted_deal.commission == deal.commission + deal.fee  # the fee is a charge kept with it
    assert converted_deal.time == datetime(2023, 11, 14, 22, 13, 20, 999_000, tzinfo=UTC)
    assert broker._deal(deal._replace(time_msc=0)).time == datetime.fromtimestamp(deal.time, UTC)

    tick = distinct_record(records.Tick, time_msc=1_700_000_000_001)
    converted_tick = broker._tick("EURUSD", tick)
    assert_same_named_fields(converted_tick, tick, skip={"symbol", "time"})
    assert (converted_tick.symbol, converted_tick.time.tzinfo) == ("EURUSD", UTC)


async def test_account_and_order_results_put_every_value_in_its_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = SimTerminal(seed=3, clock=Clock())
    broker = make_broker(sim)
    try:
        await broker.connect()
        account = distinct_record(records.AccountInfo, margin_mode=2, trade_mode=0)
        monkeypatch.setattr(sim, "account_info", lambda: account)
        state = await broker.account()
        assert_same_named_fields(state, account, skip={"hedging", "demo"})
        assert state.hedging and state.demo
        netting = account._replace(margin_mode=0, trade_mode=2)
        monkeypatch.setattr(sim, "account_info", lambda: netting)
        state = await broker.account()
        assert not state.hedging and not state.demo

        opened = await broker.open_market("EURUSD", Side.BUY, 0.1)  # by the simulator, for modify below
        request = distinct_record(records.TradeRequest)
        sent = distinct_record(records.OrderSendResult, retcode=10009, request=request)
        monkeypatch.setattr(sim, "order_send", lambda request: sent)
        result = await broker.open_market("EURUSD", Side.BUY, 0.1)
        assert_same_named_fields(result, sent, skip={"position"})
        assert result.position == sent.order  # a new position's ticket is its order's
        modified = await broker.modify(opened.position, sl=0.0, tp=0.0)
        assert_same_named_fields(modified, sent, skip={"position"})
        assert modified.position == opened.position != sent.order
    finally:
        await broker.close()


class PricelessFills:
    """A terminal whose order_send answers a market deal with price 0 (exchange execution, some
    bridges), or PLACED with no deal yet (``placed``)."""

    def __init__(self, sim: Any, *, placed: bool = False) -> None:
        self._sim = sim
        self.placed = placed

    def order_send(self, request: dict[str, Any]) -> Any:
        result = self._sim.order_send(request)
        if result is None or result.retcode != self._sim.TRADE_RETCODE_DONE:
            return result
        if self.placed:
            return result._replace(retcode=self._sim.TRADE_RETCODE_PLACED, deal=0, price=0.0)
        return result._replace(price=0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)


@pytest.mark.parametrize("placed", [False, True], ids=["price 0", "placed"])
async def test_a_fill_answered_without_a_price_is_recorded_at_the_real_one(placed: bool) -> None:
    sim = SimTerminal(seed=3, clock=Clock())
    broker = make_broker(PricelessFills(sim, placed=placed))
    try:
        await broker.connect()
        result = await broker.open_market("EURUSD", Side.BUY, 0.01)
        [position] = await broker.positions()
        assert result.price == position.price_open > 0  # never a trade opened at 0
    finally:
        await broker.close()


class NettingServer(SimFront):
    """The simulator presenting a netting account whose one EURUSD position takes every order: each
    deal belongs to the position the first order opened, as a netting trade server books it."""

    def __init__(self, sim: SimTerminal) -> None:
        super().__init__(sim)
        self.first_position = 0

    def account_info(self) -> Any:
        info = self._sim.account_info()
        return None if info is None else info._replace(margin_mode=0)  # ACCOUNT_MARGIN_MODE_RETAIL_NETTING

    def history_deals_get(self, *args: Any, **kwargs: Any) -> Any:
        deals = self._sim.history_deals_get(*args, **kwargs)
        if deals is None or not self.first_position:
            return deals
        return tuple(d._replace(position_id=self.first_position) if d.type in (0, 1) else d for d in deals)


async def test_on_a_netting_account_an_orders_position_is_the_one_its_deal_joined() -> None:
    server = NettingServer(SimTerminal(seed=3, clock=Clock()))
    broker = make_broker(server)
    try:
        await broker.connect()
        first = await broker.open_market("EURUSD", Side.BUY, 0.10)
        assert first.position == first.order  # the first order opens the position: its own ticket
        server.first_position = first.position
        second = await broker.open_market("EURUSD", Side.BUY, 0.10)
        assert second.order != first.order
        assert second.position == first.position, "the order joined the one position, not a new one"
    finally:
        await broker.close()


class HungBridge(SimFront):
    """A terminal whose positions_get hangs a while, as a stuck mt5linux bridge or terminal does."""

    def positions_get(self, **kwargs: Any) -> Any:
        time.sleep(0.4)
        return self._sim.positions_get(**kwargs)


async def test_a_call_the_terminal_leaves_unanswered_is_said_then_its_answer() -> None:
    events = EventBus()
    seen: list[Event] = []
    events.subscribe(seen.append)
    broker = make_broker(HungBridge(SimTerminal(seed=3, clock=Clock())), events)
    broker.slow_call_after = 0.1
    try:
        await broker.connect()
        assert await broker.positions() == ()  # the answer still comes, and is used
        lines = [e.message for e in seen if isinstance(e, LogLine) and e.source == "broker"]
        assert (
            "the terminal has not answered positions for 0.1 s: everything waits for it (is the terminal or "
            "the mt5linux bridge hung?)" in lines
        )
        assert "the terminal answered positions after 0 s" in lines
    finally:
        await broker.close()


async def test_a_loop_of_terminal_calls_always_ends_when_cancelled() -> None:
    """A stop cancels the market-data loop while it waits for the terminal thread: however the cancel
    falls against the call's answer, the loop must end (a swallowed cancel polls for ever)."""
    broker = make_broker(SimTerminal(seed=3, clock=Clock()))
    try:
        await broker.connect()

        async def polling() -> None:
            while True:
                await broker.positions()

        for attempt in range(300):
            task = asyncio.create_task(polling())
            for _ in range(attempt % 7):
                await asyncio.sleep(0)
            await asyncio.sleep(0.0002 * (attempt % 5))
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=2)
            assert done, f"the loop went on after its cancel (attempt {attempt})"
    finally:
        await broker.close()


class _WindowsDatetime(datetime):
    """datetime as on Windows, whose fromtimestamp refuses a time before 1970 (OSError, errno 22)."""

    @classmethod
    def fromtimestamp(cls, t: float, tz: Any = None) -> Any:  # type: ignore[override]
        if t < 0:
            raise OSError(22, "Invalid argument")
        return datetime.fromtimestamp(t, tz)


def test_a_time_before_1970_is_converted_where_fromtimestamp_refuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A symbol's first, empty tick is stamped 0; with a UTC+2 server that is 1969 in UTC. On Windows
    fromtimestamp raised OSError there, which the adapter takes for a lost bridge."""
    import mt5console.core.broker.mt5 as adapter

    monkeypatch.setattr(adapter, "datetime", _WindowsDatetime)
    assert adapter._utc(-7200) == datetime(1969, 12, 31, 22, 0, tzinfo=UTC)
    assert adapter._utc_ms.__wrapped__(-7_200_000) == datetime(1969, 12, 31, 22, 0, tzinfo=UTC)
    assert adapter._utc(1_700_000_000.25) == datetime.fromtimestamp(1_700_000_000.25, UTC)
