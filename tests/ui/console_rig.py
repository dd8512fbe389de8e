"""A console over the simulator for the UI tests: fixed seed, a hand-moved clock, real files.

Everything the screen shows is made deterministic: the simulator's prices (seed + clock), the times
of the core's events (``mt5console.core.events`` reads the same clock), the header's clock, and the
paths in the log (the data dir is relative to a temporary working folder).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import pytest

from mt5console.core import events as core_events
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.settings import Settings
from mt5console.ui.app import ConsoleApp
from tests.helpers import Clock, always_buy

SEED = 7


def freeze_event_times(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    """Stamp the core's events with ``clock`` instead of the wall clock."""

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> FrozenDatetime:  # type: ignore[override]
            moment = clock()
            return moment if tz is None else moment.astimezone(tz)  # type: ignore[return-value]

    monkeypatch.setattr(core_events, "datetime", FrozenDatetime)


def never_buy(strategy_id: str, symbol: str) -> dict[str, Any]:
    """A strategy whose entry never holds: it runs and waits."""
    data = always_buy(strategy_id, symbol=symbol, strategyName=f"Watch {symbol}")
    data["rules"]["entry"]["conditions"] = [{"indicator": "close", "condition": "less_than", "value": 0}]
    return data


def blocked_buy(strategy_id: str) -> dict[str, Any]:
    """Signals on every bar and is refused by its spread filter every time."""
    data = always_buy(strategy_id, symbol="GBPUSD", strategyName="Tight spread GBPUSD")
    data["rules"]["spreadFilter"] = {"enabled": True, "maxSpread": 0.1}
    return data


def default_strategies() -> list[dict[str, Any]]:
    return [
        always_buy("scalper", strategyName="Always buy EURUSD"),
        blocked_buy("tight_spread"),
        never_buy("gold_watch", "XAUUSD"),
    ]


@dataclass
class ConsoleRig:
    app: ConsoleApp
    clock: Clock
    terminal: Any
    root: Path

    @property
    def runtime(self) -> Any:
        return self.app.runtime

    def open_by_hand(self, symbol: str, side: str, volume: float) -> int:
        """A position opened in the terminal by someone else (magic 0): the console adopts it."""
        terminal = self.terminal
        tick = terminal.symbol_info_tick(symbol)
        result = terminal.order_send(
            {
                "action": terminal.TRADE_ACTION_DEAL,
                "symbol": symbol,
                "volume": volume,
                "type": terminal.ORDER_TYPE_BUY if side == "buy" else terminal.ORDER_TYPE_SELL,
                "price": tick.ask if side == "buy" else tick.bid,
                "deviation": 20,
                "magic": 0,
                "comment": "by hand",
            }
        )
        assert result.retcode == terminal.TRADE_RETCODE_DONE, result
        return int(result.order)


def make_console(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    strategies: list[dict[str, Any]] | None = None,
    manual: tuple[tuple[str, str, float], ...] = (("USDJPY", "sell", 0.05),),
    theme: str = "mt5-dark",
    config_dir: Path | None = None,
    theme_dirs: tuple[Path, ...] | None = None,
    verbose: bool = False,
    **settings: Any,
) -> ConsoleRig:
    monkeypatch.chdir(tmp_path)
    clock = Clock()
    freeze_event_times(monkeypatch, clock)
    folder = tmp_path / "strategies"
    folder.mkdir(exist_ok=True)
    for data in default_strategies() if strategies is None else strategies:
        (folder / f"{data['strategyId']}.json").write_text(json.dumps(data))
    terminal = SimTerminal(
        seed=SEED, clock=clock, server_utc_offset=settings.get("sim_server_utc_offset", 0.0)
    )
    rig_terminal_ready = terminal.initialize()
    assert rig_terminal_ready
    rig = ConsoleRig(app=None, clock=clock, terminal=terminal, root=tmp_path)  # type: ignore[arg-type]
    for symbol, side, volume in manual:
        rig.open_by_hand(symbol, side, volume)
    values: dict[str, Any] = {
        "broker": "sim",
        "data_dir": Path("data"),
        "config_dir": config_dir or Path("config"),
        "strategies": Path("strategies"),
        "poll_interval": 0.02,
        "reconnect_interval": 0.05,
        "theme": theme,
        "verbose": verbose,
    }
    values.update(settings)
    rig.app = ConsoleApp(Settings(**values), module=lambda: terminal, clock=clock, theme_dirs=theme_dirs)
    return rig


async def wait_until(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    """Let the app and the runtime run until ``condition`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def started(rig: ConsoleRig) -> None:
    await asyncio.wait_for(rig.app.panes_ready.wait(), 20)
    await wait_until(lambda: rig.runtime.market.polls >= 1, "the first poll")


async def next_bar(rig: ConsoleRig, what: Callable[[], bool], description: str) -> None:
    """Move the clock to the next minute and wait for the engine to act on the closed bar."""
    polls = rig.runtime.market.polls
    rig.clock.advance(minutes=1)
    await wait_until(lambda: rig.runtime.market.polls >= polls + 2 and what(), description)
