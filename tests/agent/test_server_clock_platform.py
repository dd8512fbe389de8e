"""What the platform is told about times when the trade server's clock is not UTC: prices, candles and
trade events, through the runtime and the loopback platform (tests/platform_server.py), with the
simulator standing in for a real broker's terminal whose clock runs at UTC+2."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.agent.jobs.handlers import JobFailure, JobHandlers
from mt5console.core.agent.jobs.model import parse_job
from mt5console.core.agent.platform import PlatformClient
from mt5console.core.agent.prices import PriceFeed
from mt5console.core.broker.models import Side
from mt5console.core.broker.server_clock import ServerClock
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.limits import LimitGuard
from mt5console.core.market import MarketData
from mt5console.core.runtime import Runtime
from mt5console.core.settings import Limits, Settings
from tests.agent.test_agent_loop import agent_settings
from tests.helpers import Clock, eventually, make_rig
from tests.platform_server import PlatformServer

KEY = "pk-server-clock-7d21"
AGENT = "agent-clock-1"
SERVER_HOURS = 2


def settings_for(tmp_path: Path, url: str, **changes: Any) -> Settings:
    """The agent loop's test settings with this file's key, agent and symbols (both tick)."""
    return agent_settings(
        tmp_path,
        url,
        **{"symbols": ("EURUSD", "USDCAD"), "pairing_key": KEY, "agent_id": AGENT, "prices_interval": 0.2}
        | changes,
    )


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    with PlatformServer(key=KEY).serving() as server:
        yield server


def near_now(text: str, *, within: timedelta, ahead: timedelta = timedelta(seconds=2)) -> bool:
    """``text`` is an ISO time in UTC no further than ``within`` before now (and not in the future)."""
    when = datetime.fromisoformat(text)
    now = datetime.now(UTC)
    return when.utcoffset() == timedelta(0) and now - within <= when <= now + ahead


async def test_the_simulators_server_clock_never_reaches_the_platform(
    tmp_path: Path, platform: PlatformServer
) -> None:
    """--sim-server-utc-offset 3: prices, candles, trade events and their times are all UTC."""
    settings = settings_for(tmp_path, platform.url, sim_server_utc_offset=3.0, strategies=None)
    state = tmp_path / "sim.db"
    runtime = Runtime(settings, module=lambda: SimTerminal(seed=4, state_path=state, server_utc_offset=3))
    await runtime.start()
    try:
        platform.queue_job("c-m1", "get_candles", {"symbol": "EURUSD", "timeframe": "M1", "count": 3})
        platform.queue_job("c-d1", "get_candles", {"symbol": "EURUSD", "timeframe": "D1", "count": 2})
        platform.queue_job("t-1", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.01})
        results = await eventually(lambda: len(platform.results()) == 3 and platform.results(), "3 results")
        m1 = results["c-m1"][0]["output_data"]["candles"]
        assert near_now(m1[-1]["time"], within=timedelta(minutes=1)), m1  # the forming bar
        d1 = results["c-d1"][0]["output_data"]["candles"]
        # D1 bars open at the server's midnight: 21:00 UTC on a UTC+3 server.
        assert [datetime.fromisoformat(c["time"]).hour for c in d1] == [21, 21], d1
        ticket = results["t-1"][0]["output_data"]["ticket"]
        platform.queue_job("x-1", "close_position", {"ticket": ticket})
        await eventually(lambda: platform.results().get("x-1"), "the close's result")
        trades = await eventually(
            lambda: len(platform.trades()) >= 2 and platform.trades(), "opened and closed reported"
        )
        assert [t["event"] for t in trades[:2]] == ["opened", "closed"]
        assert all(near_now(t["time"], within=timedelta(seconds=30)) for t in trades), trades
        prices = platform.prices()
        assert prices and all(
            near_now(q["time"], within=timedelta(seconds=30)) for call in prices for q in call.body.values()
        )
    finally:
        await runtime.stop()


async def test_a_real_terminals_first_prices_are_never_sent_hours_off(
    tmp_path: Path, platform: PlatformServer
) -> None:
    settings = settings_for(tmp_path, platform.url, broker="mt5", poll_interval=0.5, prices_interval=0.1)
    runtime = Runtime(settings, module=lambda: SimTerminal(seed=4, server_utc_offset=SERVER_HOURS))
    await runtime.start()
    try:
        assert runtime.store is not None
        store = runtime.store
        await eventually(lambda: store.remembered_server_offset() is not None, "the offset learned")
        await eventually(lambda: len(platform.prices()) >= 3, "prices sent once the clock is known")
        sent = [q["time"] for call in platform.prices() for q in call.body.values()]
        wrong = [t for t in sent if not near_now(t, within=timedelta(seconds=30))]
        assert not wrong, f"prices stamped hours off sent to the platform: {wrong[:3]}"
    finally:
        await runtime.stop()


async def test_a_candles_job_at_a_first_start_waits_for_the_servers_clock(
    tmp_path: Path, platform: PlatformServer
) -> None:
    settings = settings_for(tmp_path, platform.url, broker="mt5", poll_interval=1.0)
    platform.queue_job("c-first", "get_candles", {"symbol": "EURUSD", "timeframe": "M1", "count": 2})
    runtime = Runtime(settings, module=lambda: SimTerminal(seed=4, server_utc_offset=SERVER_HOURS))
    await runtime.start()
    try:
        results = await eventually(lambda: platform.results().get("c-first"), "the candles' result")
        candles = results[0]["output_data"]["candles"]
        assert near_now(candles[-1]["time"], within=timedelta(minutes=1)), candles
    finally:
        await runtime.stop()


async def test_a_position_adopted_at_a_first_start_is_reported_with_its_utc_time(
    tmp_path: Path, platform: PlatformServer
) -> None:
    state = tmp_path / "sim.db"
    before = SimTerminal(seed=4, state_path=state, server_utc_offset=SERVER_HOURS)
    assert before.initialize()
    tick = before.symbol_info_tick("EURUSD")
    assert tick is not None
    placed = before.order_send(
        {
            "action": before.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.01,
            "type": before.ORDER_TYPE_BUY,
            "price": tick.ask,
            "deviation": 20,
            "type_filling": before.ORDER_FILLING_IOC,
        }
    )
    assert placed is not None and placed.retcode == before.TRADE_RETCODE_DONE, placed
    opened_at = datetime.now(UTC)
    before.shutdown()
    settings = settings_for(tmp_path, platform.url, broker="mt5")
    runtime = Runtime(
        settings, module=lambda: SimTerminal(seed=4, state_path=state, server_utc_offset=SERVER_HOURS)
    )
    await runtime.start()
    try:
        trades = await eventually(platform.trades, "the adopted position reported")
        assert trades[0]["event"] == "opened" and trades[0]["ticket"] == placed.order
        when = datetime.fromisoformat(trades[0]["time"])
        assert abs((when - opened_at).total_seconds()) < 30, f"reported {when}, opened at {opened_at}"
    finally:
        await runtime.stop()


async def test_prices_wait_until_every_tick_held_was_read_with_the_learned_clock(
    tmp_path: Path, platform: PlatformServer
) -> None:
    """A poll reads its symbols in one go; the clock is learned at the first that moved. A closed
    symbol read before it (US500, shut 21:00-22:00 server time) keeps a tick converted as UTC until
    the next poll: the price feed must not send it meanwhile."""
    clock = Clock(datetime(2026, 11, 18, 19, 30, 5, tzinfo=UTC))  # 21:30 on the server: US500 closed
    rig = await make_rig(
        tmp_path, clock=clock, sim=SimTerminal(seed=7, clock=clock, server_utc_offset=SERVER_HOURS)
    )
    rig.broker.server_clock = ServerClock.learning(None, now=clock)
    market = MarketData(rig.broker, rig.events, ("US500", "EURUSD"), poll_interval=0.01)
    client = PlatformClient(platform.url, KEY, timeout=2.0)
    feed = PriceFeed(client, AGENT, market, rig.broker)
    try:
        for _ in range(5):
            await market.poll_once()
            await feed.send_once()
            clock.advance(seconds=1)
        assert rig.broker.server_clock.offset == SERVER_HOURS * 3600
        sent = [(symbol, quote["time"]) for call in platform.prices() for symbol, quote in call.body.items()]
        assert {symbol for symbol, _ in sent} == {"US500", "EURUSD"}
        for symbol, text in sent:
            when = datetime.fromisoformat(text)
            assert when <= clock.now, f"{symbol} sent stamped {when}, in the future (now {clock.now})"
            if symbol == "US500":
                assert when < clock.now.replace(hour=19, minute=0, second=1), (symbol, when)
            else:
                assert clock.now - when < timedelta(seconds=5), (symbol, when)
    finally:
        await client.aclose()
        await rig.close()


async def test_a_candles_job_fails_naming_why_when_the_clock_is_a_bare_guess(tmp_path: Path) -> None:
    """A first start in a closed market: nothing teaches the clock, and bar times converted as UTC
    would be hours off. The job fails with the reason and the remedy, rather than answer them."""
    clock = Clock(datetime(2026, 11, 18, 13, 0, 5, tzinfo=UTC))
    rig = await make_rig(
        tmp_path, clock=clock, sim=SimTerminal(seed=7, clock=clock, server_utc_offset=SERVER_HOURS)
    )
    rig.broker.server_clock = ServerClock.learning(None, now=clock)
    handlers = JobHandlers(rig.broker, LimitGuard(rig.broker, Limits()), clock_wait=0.3)
    try:
        job = parse_job("get_candles", {"symbol": "EURUSD", "timeframe": "M1", "count": 2})
        with pytest.raises(
            JobFailure, match=r"the candles' times would be hours off: no live tick"
        ) as failed:
            await handlers.handle("c-closed", job, received_at=clock.now, resumed=False)
        assert "--server-utc-offset" in str(failed.value)
        assert "UTC+00:00 (assumed, not confirmed by a live tick yet)" in str(failed.value)
        # A restart in the same closed market: the offset remembered from the last session is a basis
        # (right unless a daylight-saving switch came between), and the job is answered at once.
        rig.broker.server_clock = ServerClock.learning(SERVER_HOURS * 3600, now=clock)
        answer = await handlers.handle("c-remembered", job, received_at=clock.now, resumed=False)
        last = datetime.fromisoformat(answer["candles"][-1]["time"])
        assert clock.now - timedelta(minutes=1) < last <= clock.now
    finally:
        await rig.close()


async def test_prices_go_out_on_a_remembered_offset_before_a_live_tick(
    tmp_path: Path, platform: PlatformServer
) -> None:
    """A restart in a quiet market (the hand clock stands still: no tick moves): the remembered
    offset converts the prices, which are sent with their true UTC times, not held all weekend."""
    clock = Clock(datetime(2026, 11, 18, 13, 0, 5, tzinfo=UTC))
    rig = await make_rig(
        tmp_path, clock=clock, sim=SimTerminal(seed=7, clock=clock, server_utc_offset=SERVER_HOURS)
    )
    rig.broker.server_clock = ServerClock.learning(SERVER_HOURS * 3600, now=clock)
    market = MarketData(rig.broker, rig.events, ("EURUSD",), poll_interval=0.01)
    client = PlatformClient(platform.url, KEY, timeout=2.0)
    feed = PriceFeed(client, AGENT, market, rig.broker)
    try:
        for _ in range(3):
            await market.poll_once()
            await feed.send_once()
        assert not rig.broker.server_clock.known
        sent = [call.body["EURUSD"]["time"] for call in platform.prices()]
        assert len(sent) == 3
        assert all(clock.now - timedelta(minutes=1) < datetime.fromisoformat(t) <= clock.now for t in sent)
    finally:
        await client.aclose()
        await rig.close()


async def test_a_trade_job_at_a_first_start_judges_the_daily_loss_on_the_utc_day(tmp_path: Path) -> None:
    """01:00 UTC (03:00 on a UTC+2 server); a loss was closed at 23:00 UTC yesterday (01:00 today on
    the server). On a first start, before a live tick, the clock is a bare guess (UTC): judged then,
    "today" is the server's day, yesterday's loss counts and the job is refused. It must wait for a
    live tick (its own reads of the job's symbol show one) and judge the UTC day: the loss is
    yesterday's, and the job trades."""
    yesterday = datetime(2026, 11, 17, 22, 30, 5, tzinfo=UTC)
    clock = Clock(yesterday)
    sim = SimTerminal(seed=7, clock=clock, server_utc_offset=SERVER_HOURS)
    rig = await make_rig(tmp_path, clock=clock, sim=sim)
    try:
        loser = await rig.broker.open_market("EURUSD", Side.BUY, 5.0)
        clock.advance(minutes=30)
        await rig.broker.close_position(loser.position)
        assert (await rig.broker.account()).balance < 10_000 * (1 - 0.005), "the test needs a loss > 0.5 %"
        clock.now = datetime(2026, 11, 18, 1, 0, 5, tzinfo=UTC)
        rig.broker.server_clock = ServerClock.learning(None, now=clock)  # the console starts, first time
        guard = LimitGuard(rig.broker, Limits(max_daily_loss_pct=0.5))
        handlers = JobHandlers(rig.broker, guard, clock_wait=5.0)

        async def market_ticking() -> None:  # time passes; nothing but the job reads the ticks
            for _ in range(40):
                clock.advance(seconds=0.5)
                await asyncio.sleep(0.02)

        ticking = asyncio.create_task(market_ticking())
        job = parse_job("trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.01})
        answer = await handlers.handle("t-first", job, received_at=clock.now, resumed=False)
        await ticking
        assert answer["ticket"] in {p.ticket for p in await rig.broker.positions()}
        assert rig.broker.server_clock.known
    finally:
        await rig.close()
