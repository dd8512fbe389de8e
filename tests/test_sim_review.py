"""What reviewers found running the console on the simulated terminal: one console per --sim-state
file, replayed bars that do not cover now, a feed the terminal cannot serve, a state file opened with
another feed, --sim-data advice the command line can follow, and tracked symbols the terminal does
not know. Each through the runtime or the market data loop, as the console runs them."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import Event, EventBus, Level, LogLine
from mt5console.core.market import MarketData
from mt5console.core.runtime import Runtime, StartupError
from tests.helpers import Clock, eventually, sim_settings, walked_h1_bars

HOUR = 3600


def h1_bars(first: datetime, count: int = 48) -> np.ndarray:
    return walked_h1_bars(
        count, seed=3, first=int(first.timestamp()), level=1.085, step=0.0008, wick=0.0006,
        volumes=(1, 50), spreads=(3, 9), digits=5,
    )  # fmt: skip


def write_csv(path: Path, rates: np.ndarray) -> Path:
    rows = ["time,open,high,low,close,volume,spread"]
    rows += [
        f"{int(r['time'])},{r['open']:.5f},{r['high']:.5f},{r['low']:.5f},{r['close']:.5f},"
        f"{int(r['tick_volume'])},{int(r['spread'])}"
        for r in rates
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


class Lines:
    """The log lines an event bus carries."""

    def __init__(self, events: EventBus) -> None:
        self.lines: list[LogLine] = []
        events.subscribe(self)

    def __call__(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self.lines.append(event)

    def having(self, text: str) -> list[LogLine]:
        return [line for line in self.lines if text in line.message]


def hour_floor(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


# ------------------------------------------------------------------- 1. one console per state file


async def test_a_second_console_on_the_same_sim_state_exits_as_an_unreachable_terminal(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared" / "sim_state.db"
    first = Runtime(sim_settings(tmp_path / "a", sim_state=shared))
    await first.start()
    try:
        second_events = EventBus()
        lines = Lines(second_events)
        second = Runtime(sim_settings(tmp_path / "b", sim_state=shared), events=second_events)
        with pytest.raises(StartupError) as caught:
            await second.start()
        assert caught.value.exit_code == 3
        message = str(caught.value)
        assert str(shared) in message and "in use by another simulated terminal" in message
        assert lines.having(str(shared))  # the log says it too
    finally:
        await first.stop()
    again = Runtime(sim_settings(tmp_path / "b", sim_state=shared))
    await again.start()  # the first one stopped: the file is free
    await again.stop()


# ------------------------------------------------------------- 2. replayed bars that miss "now"


@pytest.mark.parametrize(
    ("first", "where"),
    [
        (datetime(2024, 3, 4, tzinfo=UTC), "after"),
        (hour_floor(datetime.now(UTC)) + timedelta(days=30), "before"),
    ],
)
async def test_replayed_bars_that_do_not_cover_now_are_said_once_at_start(
    tmp_path: Path, first: datetime, where: str
) -> None:
    rates = h1_bars(first)
    data = write_csv(tmp_path / "EURUSD_H1.csv", rates)
    events = EventBus()
    lines = Lines(events)
    runtime = Runtime(sim_settings(tmp_path, sim_data=data), events=events)
    await runtime.start()
    await runtime.stop()
    (said,) = lines.having("the replayed bars run from")
    last = datetime.fromtimestamp(int(rates["time"][-1]), UTC)
    assert f"{first:%Y-%m-%d %H:%M} UTC (the first bar)" in said.message
    assert f"{last:%Y-%m-%d %H:%M} UTC (the last)" in said.message
    assert f"is {where} them" in said.message and "market is closed outside its bars" in said.message
    assert said.level is Level.WARNING


def test_replayed_bars_that_cover_now_say_nothing() -> None:
    first = datetime(2024, 3, 4, tzinfo=UTC)
    inside = SimTerminal(data=h1_bars(first), symbol="EURUSD", clock=Clock(first + timedelta(hours=5)))
    assert inside.setup_notices == ()
    after = SimTerminal(data=h1_bars(first), symbol="EURUSD", clock=Clock(first + timedelta(days=3)))
    (notice,) = after.setup_notices
    assert notice.startswith("EURUSD: the replayed bars run from 2024-03-04 00:00 UTC")


# ------------------------------------------------------------------ 3. a feed that cannot be served


class SwitchedTerminal(SimTerminal):
    """The simulated terminal, with GBPUSD M5 bars refused while ``refusing`` (a feed that recovers)."""

    refusing = True

    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int) -> Any:
        if self.refusing and symbol == "GBPUSD" and timeframe == self.TIMEFRAME_M5:
            self._error = (self.RES_E_NOT_FOUND, "Terminal: Not found: no M5 bars today")
            return None
        return super().copy_rates_from_pos(symbol, timeframe, start_pos, count)


async def test_a_feed_the_terminal_cannot_serve_is_said_once_and_the_others_go_on() -> None:
    first = datetime(2024, 3, 4, tzinfo=UTC)
    clock = Clock(first + timedelta(hours=30, minutes=10))
    terminal = SwitchedTerminal(data=h1_bars(first), symbol="EURUSD", clock=clock)
    events = EventBus()
    lines = Lines(events)
    broker = Broker(lambda: terminal, events=events, simulated=True)
    await broker.connect()
    market = MarketData(broker, events, ("EURUSD",))
    got: list[str] = []

    async def took(symbol: str, timeframe: str, bars: np.ndarray) -> None:
        got.append(f"{symbol} {timeframe}")

    market.subscribe_bars("EURUSD", "M1", took)  # M1 of replayed H1 bars: cannot be built
    market.subscribe_bars("GBPUSD", "M5", took)
    market.subscribe_bars("EURUSD", "H1", took)
    try:
        for _ in range(5):
            await market.poll_once()
        (m1,) = lines.having("EURUSD M1: the terminal serves no bars")
        assert "no M1 bars for EURUSD" in m1.message and m1.level is Level.WARNING
        assert len(lines.having("GBPUSD M5: the terminal serves no bars")) == 1
        assert market.closed_bars("EURUSD", "H1") is not None  # polled although M1 failed before it
        clock.advance(hours=1)
        await market.poll_once()
        assert got == ["EURUSD H1"]  # the H1 bar that closed reached its strategy

        terminal.refusing = False
        await market.poll_once()
        await market.poll_once()
        (back,) = lines.having("GBPUSD M5: bars are served again")
        assert back.level is Level.INFO
        assert len(lines.having("EURUSD M1: the terminal serves no bars")) == 1  # still failing, not repeated
    finally:
        await broker.close()


# ------------------------------------------------------------ 5. a state file opened on another feed


async def test_a_restart_on_another_sim_seed_is_said_at_start(tmp_path: Path) -> None:
    state = tmp_path / "sim_state.db"
    earlier = SimTerminal(seed=1, state_path=state)
    assert earlier.initialize()
    tick = earlier.symbol_info_tick("EURUSD")
    assert tick is not None
    opened = earlier.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    assert opened is not None and opened.retcode == earlier.TRADE_RETCODE_DONE
    earlier.shutdown()

    events = EventBus()
    lines = Lines(events)
    runtime = Runtime(sim_settings(tmp_path, sim_seed=2, sim_state=state), events=events)
    await runtime.start()
    assert runtime.broker.connected  # warned, not refused
    await runtime.stop()
    (said,) = lines.having("was last used with seed 1")
    assert "now used with seed 2" in said.message and said.level is Level.WARNING


# --------------------------------------------------------- 7. --sim-data advice for the command line


async def test_a_one_bar_sim_data_file_gets_advice_the_command_line_can_follow(tmp_path: Path) -> None:
    data = tmp_path / "EURUSD_H1.csv"
    data.write_text("time,open,high,low,close\n2026-01-01T00:00:00Z,1.1,1.2,1.0,1.15\n", encoding="utf-8")
    runtime = Runtime(sim_settings(tmp_path, sim_data=data))
    with pytest.raises(StartupError) as caught:
        await runtime.start()
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "one bar is not enough" in message and "give at least two bars" in message
    assert "timeframe=" not in message


# ------------------------------------------------------------------ 8. tracked symbols it does not know


async def test_unknown_tracked_symbols_are_warned_about_and_left_out(tmp_path: Path) -> None:
    events = EventBus()
    lines = Lines(events)
    runtime = Runtime(sim_settings(tmp_path, symbols=("FOO", "EURUSD", "BAR")), events=events)
    await runtime.start()
    try:
        assert runtime.market.symbols == ("EURUSD",)
        (said,) = lines.having("does not know")
        assert "FOO, BAR" in said.message and said.level is Level.WARNING
        (ready,) = lines.having("ready:")
        assert ready.message.endswith("tracking EURUSD")
    finally:
        await runtime.stop()


class SilentPositions(SimTerminal):
    """The simulated terminal, with positions_get failing while ``failing`` (a whole poll fails)."""

    failing = True

    def positions_get(self, **filters: Any) -> Any:
        if self.failing:
            self._error = (self.RES_E_FAIL, "Terminal: positions are not available")
            return None
        return super().positions_get(**filters)


async def test_a_failing_poll_is_said_once_while_it_lasts_and_its_recovery_too() -> None:
    terminal = SilentPositions(seed=4, clock=Clock())
    events = EventBus()
    lines = Lines(events)
    broker = Broker(lambda: terminal, events=events, simulated=True)
    await broker.connect()
    market = MarketData(broker, events, ("EURUSD",), poll_interval=0.01)
    task = asyncio.get_running_loop().create_task(market.run())
    try:
        await eventually(lambda: market.polls == 0 and lines.having("poll failed"), "a failure")
        await asyncio.sleep(0.2)  # some twenty polls, all failing
        assert len(lines.having("market data poll failed")) == 1
        terminal.failing = False
        await eventually(lambda: lines.having("market data poll recovered"), "the recovery")
        assert market.polls > 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await broker.close()
