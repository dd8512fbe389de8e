"""One engine, two clocks: the replay's trades are the live console's trades on the same bars.

The live side is the runtime's wiring on the simulator in REAL-TIME replay mode: a clock moved bar by
bar to a second past each bar's open (when a live poll would notice the new bar), the Broker with its
terminal thread, MarketData polling ticks, account and positions (not the replay's light mode) and
computing indicators on its window of bars (no primed full history), the StrategyEngine started with
the strategy. At the end the clock stands on the last bar's close and the engine closes what is open.
The trade lists must be the same, but for the one second: live orders are sent a second into the bar.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package

from benchmarks.data import load_eurusd, write_replay_csv
from benchmarks.rules import seed_strategy_json
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import Event, EventBus, Level, LogLine
from mt5console.core.market import MarketData
from mt5console.core.replay import run_replay_async
from mt5console.core.replay_report import ReplayTrade, trades_from_deals
from mt5console.core.store import Store
from mt5console.core.strategy.engine import StrategyEngine
from tests.helpers import Clock, ema_cross_both_ways

BARS = 700
LATE = timedelta(seconds=1)  # how far into each bar the live clock is put


TWO_SIDED_WITH_PARTIALS = ema_cross_both_ways(
    "parity_two_sided",
    stop_loss={"type": "pips", "value": 20},
    take_profit={"type": "pips", "value": 45},
    rsi_band=(30, 70),
    partialExits={"enabled": True, "levels": [{"atR": 1.0, "closePercent": 50, "moveStopTo": "breakeven"}]},
)


async def live_trades(
    strategy: dict[str, Any], csv: Path, opens: Sequence[datetime], tmp_path: Path
) -> tuple[ReplayTrade, ...]:
    """The strategy run by the live wiring on the real-time replay of ``csv`` (bars opening at ``opens``)."""
    clock = Clock(opens[0] + LATE)
    terminal = SimTerminal(seed=1, data=csv, symbol="EURUSD", timeframe="H1", clock=clock)
    events = EventBus()
    errors: list[str] = []

    def watch(event: Event) -> None:
        if isinstance(event, LogLine) and event.level is Level.ERROR:
            errors.append(event.message)

    events.subscribe(watch)
    broker = Broker(lambda: terminal, events=events, simulated=True)
    store = Store(tmp_path / "live.db")
    try:
        await broker.connect()
        market = MarketData(broker, events, ("EURUSD",))
        engine = StrategyEngine(broker, market, store, events)
        await engine.start(strategy, source="test")
        await market.poll_once()
        for bar_open in opens[1:]:
            clock.now = bar_open + LATE
            await market.poll_once()
        clock.now = opens[-1] + timedelta(hours=1, seconds=-1)  # the last bar's close tick
        await market.poll_once()
        for runner in list(engine.runners.values()):
            await runner.close_all("end")
        deals = await broker.deals(opens[0] - timedelta(days=1), opens[-1] + timedelta(days=1))
    finally:
        await broker.close()
        store.close()
    assert errors == []
    return trades_from_deals(deals)


def comparable(trades: Sequence[ReplayTrade], late: timedelta) -> list[tuple[Any, ...]]:
    """What must agree, with the live side's market orders moved back by ``late``; tickets aside."""
    rows = []
    for t in trades:
        by_market = t.exit_reason in ("signal", "partial")
        rows.append(
            (
                t.side,
                t.volume,
                t.entry_time - late,
                t.entry_price,
                t.exit_time - (late if by_market else timedelta(0)),
                t.exit_price,
                t.exit_reason,
                t.profit,
            )
        )
    return sorted(rows, key=lambda row: (row[2], row[4], row[6]))


@pytest.fixture(scope="module")
def bars() -> Any:
    return load_eurusd().iloc[:BARS]


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory, bars: Any) -> Path:
    path = tmp_path_factory.mktemp("parity") / "EURUSD_H1.csv"
    write_replay_csv(bars, path)
    return path


@pytest.mark.parametrize(
    "strategy", [seed_strategy_json(), TWO_SIDED_WITH_PARTIALS], ids=["seed", "two-sided-partials-exits"]
)
async def test_the_replay_trades_as_the_live_engine_on_the_same_bars(
    strategy: dict[str, Any], csv: Path, bars: Any, tmp_path: Path
) -> None:
    replayed = await run_replay_async(strategy, csv)
    opens = [time.to_pydatetime() for time in bars.index]
    live = await live_trades(strategy, csv, opens, tmp_path)
    assert len(replayed.trades) >= 10
    assert comparable(live, LATE) == comparable(replayed.trades, timedelta(0))
    if strategy is TWO_SIDED_WITH_PARTIALS:  # the paths the replay skips bars around were all taken
        reasons = {t.exit_reason for t in replayed.trades}
        assert {"sl", "signal", "partial"} <= reasons, reasons
        assert {t.side for t in replayed.trades} == {"buy", "sell"}


# ------------------------------------------------------------------------------ the simulator's rule

START = datetime(2024, 1, 2, tzinfo=UTC)


def write_bars(path: Path, bars: Sequence[tuple[float, float, float, float]]) -> Path:
    lines = ["time,open,high,low,close,spread"]
    for number, (o, h, low, c) in enumerate(bars):
        lines.append(f"{int((START + number * timedelta(hours=1)).timestamp())},{o},{h},{low},{c},0")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_real_time_replay_judges_a_whole_bar_as_the_stepped_replay_does(tmp_path: Path) -> None:
    """A position open before a bar's first extreme meets the bar rule in real time too: the stop
    first when both levels lie in the bar (though the target's tick comes first), at the level; and
    a gap through a level waits for the bar's first extreme, so that the engine acts on the open first."""
    bars = [
        (1.1000, 1.1010, 1.0990, 1.1000),
        (1.1000, 1.1100, 1.0950, 1.0990),  # bearish: high (20 min) before low (40 min)
        (1.1000, 1.1010, 1.0990, 1.1000),
        (1.0900, 1.0910, 1.0890, 1.0905),  # gaps below the second position's stop
    ]
    clock = Clock(START + timedelta(seconds=1))
    mt5 = SimTerminal(seed=1, data=write_bars(tmp_path / "EURUSD.csv", bars), clock=clock)
    assert mt5.initialize()
    first = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "sl": 1.0970, "tp": 1.1050}
    )
    assert first is not None and first.retcode == mt5.TRADE_RETCODE_DONE
    clock.now = START + timedelta(hours=1, minutes=30)  # bar 1's high (the target) has passed
    assert len(mt5.positions_get() or ()) == 1  # ...but the bar is judged whole: not yet decided
    clock.now = START + timedelta(hours=1, minutes=45)
    assert mt5.positions_get() == ()
    (out,) = (d for d in mt5.history_deals_get(position=first.order) or () if d.entry == mt5.DEAL_ENTRY_OUT)
    assert (out.reason, out.price, out.time_msc) == (
        mt5.DEAL_REASON_SL,
        1.097,
        int((START + timedelta(hours=1, minutes=40)).timestamp() * 1000),
    )
    clock.now = START + timedelta(hours=2, seconds=1)
    second = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "sl": 1.0980})
    assert second is not None and second.retcode == mt5.TRADE_RETCODE_DONE
    clock.now = START + timedelta(hours=3, seconds=1)  # bar 3 opened through the stop
    assert len(mt5.positions_get() or ()) == 1  # the engine may still act on this open
    clock.now = START + timedelta(hours=3, minutes=20)
    assert mt5.positions_get() == ()
    (gap,) = (d for d in mt5.history_deals_get(position=second.order) or () if d.entry == mt5.DEAL_ENTRY_OUT)
    assert (gap.reason, gap.price, gap.time_msc) == (
        mt5.DEAL_REASON_SL,
        1.09,
        int((START + timedelta(hours=3)).timestamp() * 1000),
    )
