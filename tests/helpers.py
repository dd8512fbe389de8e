"""Shared test helpers: a controllable clock, the simulator's checked getters and a runtime-like wiring
over the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.broker.sim.records import TradeDeal, TradeOrder, TradePosition
from mt5console.core.commands.bus import CommandBus
from mt5console.core.events import Event, EventBus, LogLine
from mt5console.core.market import MarketData
from mt5console.core.settings import Limits, Settings
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


# The simulator's own tests start here: a Wednesday morning, markets open.
WEDNESDAY = datetime(2024, 3, 6, 10, 30, 15, tzinfo=UTC)


def open_positions(mt5: SimTerminal, **filters: Any) -> tuple[TradePosition, ...]:
    found = mt5.positions_get(**filters)
    assert found is not None, mt5.last_error()
    return found


def deal_history(mt5: SimTerminal, *dates: Any, **filters: Any) -> tuple[TradeDeal, ...]:
    found = mt5.history_deals_get(*dates, **filters)
    assert found is not None, mt5.last_error()
    return found


def order_history(mt5: SimTerminal, *dates: Any, **filters: Any) -> tuple[TradeOrder, ...]:
    found = mt5.history_orders_get(*dates, **filters)
    assert found is not None, mt5.last_error()
    return found


class SimFront:
    """A test's terminal: the simulator behind a wrapper that changes some of its answers. Every
    function the subclass does not define is the simulator's own."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)


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


async def eventually(check: Callable[[], Any], what: str, within: float = 20.0) -> Any:
    """Wait until ``check()`` is truthy; fail naming ``what`` when it never is."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


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


# The example of STRATEGY_FORMAT.md, verbatim.
SEED_STRATEGY: dict[str, Any] = {
    "strategyId": "strategy_123",
    "strategyName": "EMA Scalping Pro",
    "symbol": "EURUSD",
    "timeframe": "M15",
    "rules": {
        "entry": {
            "side": "buy",
            "logic": "OR",
            "conditions": [
                {"indicator": "ema_9", "condition": "crosses_above", "value": "ema_21"},
                {
                    "logic": "AND",
                    "conditions": [
                        {"indicator": "rsi_14", "condition": "less_than", "value": 30},
                        {"indicator": "close", "condition": "greater_than", "value": "bb_lower_20_2"},
                    ],
                },
            ],
        },
        "exit": {
            "stopLoss": {"type": "pips", "value": 25},
            "takeProfit": {"type": "pips", "value": 40},
            "smartExit": {
                "enabled": True,
                "stopLoss": {"type": "atr", "atrMultiplier": 2.0},
                "takeProfit": {"type": "rr_ratio", "rrRatio": 2.5},
            },
            "partialExits": {
                "enabled": False,
                "mode": "sequential",
                "levels": [{"atR": 1.0, "closePercent": 50, "moveStopTo": "breakeven"}],
            },
            "conditions": None,
        },
        "riskManagement": {
            "lotSize": 0.01,
            "maxPositions": 3,
            "dynamicRisk": {"enabled": False, "method": "atr", "riskPercent": 1.0},
        },
        "sessionFilter": {"enabled": True, "allowedSessions": ["London", "NewYork"]},
        "spreadFilter": {"enabled": True, "maxSpread": 2},
        "volatilityFilter": {"enabled": False, "minAtrPips": 3, "maxAtrPips": 60},
        "newsFilter": {"enabled": False, "minutesBefore": 30, "minutesAfter": 30, "impact": ["high"]},
        "correlationFilter": {"enabled": False, "maxCorrelation": 0.8, "lookbackBars": 100},
        "regimeFilter": {"enabled": False, "allowedRegimes": ["trending"]},
        "mtf": {"enabled": False, "confirmTimeframes": ["H4", "D1"]},
    },
}


def ema_cross_both_ways(
    strategy_id: str,
    *,
    stop_loss: dict[str, Any],
    take_profit: dict[str, Any],
    rsi_band: tuple[float, float],
    **exit_parts: Any,
) -> dict[str, Any]:
    """Buys when ema_9 crosses above ema_21 and sells when it crosses below, 0.02 lots, two at most;
    a position also closes when rsi_14 leaves ``rsi_band`` (low, high). ``exit_parts`` (e.g.
    ``partialExits``) join the exit rules."""
    low, high = rsi_band
    return {
        "strategyId": strategy_id,
        "symbol": "EURUSD",
        "timeframe": "H1",
        "rules": {
            "entries": [
                {
                    "side": "buy",
                    "conditions": [{"indicator": "ema_9", "condition": "crosses_above", "value": "ema_21"}],
                },
                {
                    "side": "sell",
                    "conditions": [{"indicator": "ema_9", "condition": "crosses_below", "value": "ema_21"}],
                },
            ],
            "exit": {
                "stopLoss": stop_loss,
                "takeProfit": take_profit,
                **exit_parts,
                "conditions": {
                    "logic": "OR",
                    "conditions": [
                        {"indicator": "rsi_14", "condition": "greater_than", "value": high},
                        {"indicator": "rsi_14", "condition": "less_than", "value": low},
                    ],
                },
            },
            "riskManagement": {"lotSize": 0.02, "maxPositions": 2},
        },
    }


def stepped_eurusd_h1(rates: Any) -> SimTerminal:
    """A connected simulator replaying ``rates`` (EURUSD H1, MT5 rates dtype) step by step."""
    mt5 = SimTerminal(seed=1, data=rates, symbol="EURUSD", timeframe="H1", replay="stepped")
    assert mt5.initialize()
    return mt5


def walked_h1_bars(
    count: int,
    *,
    seed: int,
    first: int,
    level: float,
    step: float,
    wick: float,
    volumes: tuple[int, int],
    spreads: tuple[int, int],
    gap_after: int | None = None,
    digits: int | None = None,
) -> np.ndarray:
    """H1 rates (MT5 dtype) opening at ``first`` (epoch s) and hourly after: closes a random walk from
    ``level`` (normal steps of sd ``step``), each bar opening at the previous close, its high and low
    up to ``wick`` beyond them; tick volumes and spreads (points) drawn from the half-open ranges.
    ``gap_after``: a weekend-sized gap (48 h) after that bar; ``digits``: prices rounded to them."""
    rng = np.random.default_rng(seed)
    rates = np.zeros(count, dtype=RATES_DTYPE)
    times = first + np.arange(count) * 3600
    if gap_after is not None:
        times[gap_after + 1 :] += 48 * 3600
    closes = level + np.cumsum(rng.normal(0, step, count))
    if digits is not None:
        closes = np.round(closes, digits)
    opens = np.concatenate([[level], closes[:-1]])
    highs = np.maximum(opens, closes) + rng.uniform(0, wick, count)
    lows = np.minimum(opens, closes) - rng.uniform(0, wick, count)
    if digits is not None:
        highs, lows = np.round(highs, digits), np.round(lows, digits)
    rates["time"] = times
    rates["open"], rates["close"] = opens, closes
    rates["high"], rates["low"] = highs, lows
    rates["tick_volume"] = rng.integers(*volumes, count)
    rates["spread"] = rng.integers(*spreads, count)
    return rates


def sim_settings(tmp_path: Path, **changes: Any) -> Settings:
    """Runtime settings on the simulator with data in ``tmp_path``, quick to poll and to give up
    reconnecting; ``changes`` override them."""
    base: dict[str, Any] = {
        "broker": "sim",
        "data_dir": tmp_path / "data",
        "config_dir": tmp_path,
        "reconnect_interval": 0.01,
        "connect_attempts": 2,
        "poll_interval": 0.05,
    }
    base.update(changes)
    return Settings(**base)
