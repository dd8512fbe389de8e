"""The broker adapter over the simulator: the code that trades real money, on the simulated terminal."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from mt5console.core.broker.errors import OrderRejected, TerminalUnavailable
from mt5console.core.broker.models import Side
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import Event, EventBus, ReconnectAttempt, TerminalConnected, TerminalLost
from tests.helpers import Clock


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
