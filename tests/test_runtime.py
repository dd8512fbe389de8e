"""The runtime as the front ends use it: start, stop, exit codes, what is written and what is hidden."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import EventBus, Level, LogLine
from mt5console.core.runtime import Runtime, StartupError
from mt5console.headless import LinePrinter
from tests.helpers import Clock, sim_settings


class NeverThere:
    """A terminal that never answers initialize() (MT5 not running)."""

    def initialize(self, **_: Any) -> bool:
        return False

    def shutdown(self) -> None:
        return None

    def last_error(self) -> tuple[int, str]:
        return (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")


async def test_an_unreachable_terminal_is_exit_code_3_after_the_attempts(tmp_path: Path) -> None:
    runtime = Runtime(sim_settings(tmp_path, broker="mt5"), module=NeverThere)
    with pytest.raises(StartupError) as caught:
        await runtime.start()
    assert caught.value.exit_code == 3
    assert "after 2 attempt(s)" in str(caught.value)
    assert "MetaTrader 5 x64 not found" in str(caught.value)
    text = (tmp_path / "data" / "logs" / "mt5console.log").read_text()
    assert "terminal not reachable (attempt 1 of 2)" in text


async def test_start_writes_every_line_to_the_database_and_the_log_file(tmp_path: Path) -> None:
    terminal = SimTerminal(seed=2, clock=Clock())
    runtime = Runtime(sim_settings(tmp_path), module=lambda: terminal)
    await runtime.start()
    assert runtime.store is not None
    events = [e.message for e in runtime.store.recent_events()]
    await runtime.stop()
    assert any("SIMULATED" in m for m in events)
    assert any(m.startswith("ready:") for m in events)
    log = (tmp_path / "data" / "logs" / "mt5console.log").read_text()
    assert "ready:" in log and "stopped" in log


async def test_secrets_are_masked_in_every_line(tmp_path: Path) -> None:
    terminal = SimTerminal(seed=2, clock=Clock())
    settings = sim_settings(tmp_path, password="hunter2-secret", pairing_key="pk_live_123456")
    runtime = Runtime(settings, module=lambda: terminal)
    shown: list[str] = []
    runtime.subscribe(lambda e: shown.append(e.message) if isinstance(e, LogLine) else None)
    await runtime.start()
    runtime.log(Level.WARNING, "test", "login failed with password hunter2-secret and key pk_live_123456")
    assert runtime.store is not None
    stored = [e.message for e in runtime.store.recent_events()]
    await runtime.stop()
    log = (tmp_path / "data" / "logs" / "mt5console.log").read_text()
    for text in ("\n".join(shown), "\n".join(stored), log):
        assert "hunter2-secret" not in text and "pk_live_123456" not in text
        assert "login failed with password *** and key ***" in text


def test_prices_are_printed_only_when_verbose_and_once_a_minute() -> None:
    from mt5console.core.broker.models import Tick
    from mt5console.core.events import TickUpdated

    start = Clock()()

    def tick(symbol: str, second: int) -> TickUpdated:
        when = start + timedelta(seconds=second)
        bid = round(1.1 + second / 10_000, 5)
        return TickUpdated(tick=Tick(symbol, when, bid, round(bid + 0.0001, 5), 0.0, 0), time=when)

    # Two symbols quoting every second for three minutes: 360 ticks, not 360 lines.
    ticks = [tick(symbol, second) for second in range(180) for symbol in ("GBPUSD", "EURUSD")]
    for verbose in (False, True):
        stream = io.StringIO()
        bus = EventBus()
        bus.subscribe(LinePrinter(stream, verbose=verbose))
        for event in ticks:
            bus.publish(event)
        bus.info("runtime", "hello")
        lines = stream.getvalue().splitlines()
        assert lines[-1].endswith("hello")
        prices = [line for line in lines if " prices " in line]
        if not verbose:
            assert prices == [] and len(lines) == 1
            continue
        # The first once the first poll's symbols are in, then one a minute, each with the last quotes.
        assert len(prices) == 3
        assert prices[0].endswith("prices    GBPUSD 1.1001/1.1002  EURUSD 1.1/1.1001")
        assert prices[1].endswith("prices    GBPUSD 1.1061/1.1062  EURUSD 1.106/1.1061")


async def test_a_data_dir_that_cannot_be_taken_is_exit_code_2_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    runtime = Runtime(sim_settings(tmp_path, data_dir=blocker / "data"))
    with pytest.raises(StartupError) as caught:
        await runtime.start()
    assert caught.value.exit_code == 2
    assert f"cannot lock the data dir {blocker / 'data'}" in str(caught.value)
    assert "give a local, writable --data-dir" in str(caught.value)

    first = Runtime(sim_settings(tmp_path), module=lambda: SimTerminal(seed=2, clock=Clock()))
    await first.start()
    try:
        second = Runtime(sim_settings(tmp_path), module=lambda: SimTerminal(seed=2, clock=Clock()))
        with pytest.raises(StartupError) as held:
            await second.start()
        assert held.value.exit_code == 2 and "is in use by another mt5console (pid" in str(held.value)
    finally:
        await first.stop()
