"""Shared test helpers: a controllable clock and a runtime-like wiring over the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.commands.bus import CommandBus
from mt5console.core.events import Event, EventBus, LogLine
from mt5console.core.market import MarketData
from mt5console.core.settings import Limits
from mt5console.core.store import Store
from mt5console.core.strategy.engine import StrategyEngine

# A Wednesday, inside the London and New York sessions, on a minute boundary.
START = datetime(2026, 11, 18, 13, 0, 5, tzinfo=UTC)


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@dataclass
class Rig:
    """The core's parts wired as the runtime wires them, on a simulator with a hand-moved clock."""

    sim: Any
    clock: Clock
    events: EventBus
    broker: Broker
    market: MarketData
    store: Store
    engine: StrategyEngine
    bus: CommandBus
    seen: list[Event] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{e.source}: {e.message}" for e in self.seen if isinstance(e, LogLine)]

    def text(self) -> str:
        return "\n".join(self.lines())

    async def bar(self, minutes: float = 1) -> None:
        """Move the clock on and poll as the market-data loop does."""
        self.clock.advance(minutes=minutes)
        await self.market.poll_once()

    async def close(self) -> None:
        await self.broker.close()
        self.store.close()


async def make_rig(
    tmp_path: Path,
    *,
    clock: Clock | None = None,
    sim: Any = None,
    limits: Limits | None = None,
    state_path: Path | None = None,
    store_path: Path | None = None,
) -> Rig:
    clock = clock or Clock()
    terminal = sim or SimTerminal(seed=7, clock=clock, state_path=state_path)
    events = EventBus()
    seen: list[Event] = []
    events.subscribe(seen.append)
    broker = Broker(lambda: terminal, events=events, simulated=True, reconnect_interval=0.05)
    await broker.connect()
    market = MarketData(broker, events, ("EURUSD",), poll_interval=0.01)
    store = Store(store_path or tmp_path / "mt5console.db")
    engine = StrategyEngine(broker, market, store, events, limits=limits)
    bus = CommandBus(engine, store, events)
    return Rig(terminal, clock, events, broker, market, store, engine, bus, seen)


def always_buy(strategy_id: str = "always", **overrides: Any) -> dict[str, Any]:
    """A strategy whose entry holds on every closed bar (close > 0): each bar is a signal."""
    rules: dict[str, Any] = {
        "entry": {
            "side": "buy",
            "conditions": [{"indicator": "close", "condition": "greater_than", "value": 0}],
        },
        "exit": {"stopLoss": {"type": "pips", "value": 30}, "takeProfit": {"type": "pips", "value": 60}},
        "riskManagement": {"lotSize": 0.01, "maxPositions": 3},
    }
    rules.update(overrides.pop("rules", {}))
    data: dict[str, Any] = {
        "strategyId": strategy_id,
        "strategyName": f"Always buy ({strategy_id})",
        "symbol": "EURUSD",
        "timeframe": "M1",
        "rules": rules,
    }
    data.update(overrides)
    return data
