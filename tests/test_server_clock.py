"""The trade server's clock: MetaTrader 5 stamps everything in its server's time, the console works in
UTC. These tests run the simulator with a server clock ahead of UTC, as real brokers' are, and check
that the adapter learns the offset from live ticks only, converts every time both ways, and that
sessions, the daily loss limit and the bar feed act on true UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mt5console.config import ConfigError, load_settings
from mt5console.core.broker.models import Side
from mt5console.core.broker.server_clock import (
    CONFIRMATIONS,
    ServerClock,
    describe_offset,
    offset_from_hours,
    server_clock_for,
)
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import ServerClockLearned
from mt5console.core.runtime import Runtime
from mt5console.core.settings import Limits
from tests.helpers import Clock, Rig, always_buy, eventually, make_rig, sim_settings

HOUR = 3600
# A Wednesday, 06:30 UTC: before London opens (07:00 UTC); the server (UTC+3) reads 09:30.
EARLY = datetime(2026, 11, 18, 6, 30, 5, tzinfo=UTC)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


# ----------------------------------------------------------------- the clock itself


def test_offsets_are_whole_quarter_hours_within_the_worlds_time_zones() -> None:
    assert offset_from_hours(3) == 3 * HOUR
    assert offset_from_hours(-4.5) == -4.5 * HOUR
    assert offset_from_hours(5.75) == 5.75 * HOUR
    assert describe_offset(-16_200) == "UTC-04:30"
    assert describe_offset(0) == "UTC+00:00"
    for bad, why in ((2.1, "quarter hours"), (15, "outside"), (-13, "outside")):
        with pytest.raises(ValueError, match=why):
            offset_from_hours(bad)


def test_only_a_tick_that_moved_since_the_last_read_teaches_the_offset() -> None:
    clock = Clock(EARLY)
    server = ServerClock.learning(None, now=clock)
    stale = ms(EARLY - timedelta(days=2)) + 3 * HOUR * 1000  # Friday's last tick, seen on Sunday
    for _ in range(5):
        server.observe("EURUSD", stale)  # read again and again: never moved, proves nothing
        clock.advance(seconds=1)
    assert not server.known and server.offset == 0
    # The market opens: the first tick jumps two days past the last read (one second ago); it may
    # be a terminal catching up on old quotes as well as a live tick: it proves nothing yet.
    server.observe("EURUSD", ms(clock.now) + 3 * HOUR * 1000 - 400)
    assert not server.known
    clock.advance(seconds=1)
    server.observe("EURUSD", ms(clock.now) + 3 * HOUR * 1000 - 300)  # it moved by a second: live
    assert server.known and server.offset == 3 * HOUR
    [note] = server.take_notes()
    assert not note.warning and note.learned == 3 * HOUR
    assert "runs at UTC+03:00 (learned from EURUSD's live ticks)" in note.message
    assert server.take_notes() == []


def test_a_computer_clock_minutes_off_is_said_and_not_learned_from() -> None:
    clock = Clock(EARLY + timedelta(minutes=7))  # this computer runs 7 minutes fast
    server = ServerClock.learning(2 * HOUR, now=clock)
    server.observe("EURUSD", ms(EARLY) + 3 * HOUR * 1000)
    server.observe("EURUSD", ms(EARLY) + 3 * HOUR * 1000 + 250)
    server.observe("EURUSD", ms(EARLY) + 3 * HOUR * 1000 + 500)
    assert not server.known and server.offset == 2 * HOUR  # the remembered one, still unconfirmed
    [note] = server.take_notes()  # said once
    assert note.warning and "7.0 min off a whole quarter hour from this computer's clock" in note.message
    assert "this computer's clock looks wrong" in note.message


def test_a_learned_offset_changes_only_when_several_fresh_ticks_agree() -> None:
    clock = Clock(EARLY)
    server = ServerClock.learning(None, now=clock)

    def read(ahead_ms: int) -> None:
        """One poll: EURUSD's tick stamped ``ahead_ms`` after this computer's now, then a second passes."""
        server.observe("EURUSD", ms(clock.now) + ahead_ms)
        clock.advance(seconds=1)

    read(2 * HOUR * 1000 - 500)
    read(2 * HOUR * 1000 - 400)
    assert server.offset == 2 * HOUR
    server.take_notes()
    # The switch to summer time: the server's ticks now read one hour more. The jump itself proves
    # nothing (it is further than the time between two reads); then each read is one confirmation.
    read(3 * HOUR * 1000 - 300)
    for _ in range(CONFIRMATIONS - 1):
        read(3 * HOUR * 1000 - 300)
        assert server.offset == 2 * HOUR, "a few odd ticks must not move every time by an hour"
    read(3 * HOUR * 1000 - 300)
    assert server.offset == 3 * HOUR
    [note] = server.take_notes()
    assert note.warning and "moved from UTC+02:00 to UTC+03:00" in note.message


def test_a_configured_offset_is_kept_and_a_disagreeing_server_is_said_once() -> None:
    clock = Clock(EARLY)
    server = ServerClock.configured(2 * HOUR, now=clock)
    for n in range(6):
        server.observe("EURUSD", ms(EARLY) + 3 * HOUR * 1000 + n)
    assert server.known and server.offset == 2 * HOUR
    [note] = server.take_notes()
    assert note.warning and "live ticks say the trade server's clock runs at UTC+03:00" in note.message
    assert "--server-utc-offset says UTC+02:00" in note.message


def test_the_runtime_picks_configured_then_the_simulators_own_then_learned() -> None:
    assert server_clock_for(2.0, simulated=False, sim_offset_hours=0, remembered=None).offset == 2 * HOUR
    simulated = server_clock_for("auto", simulated=True, sim_offset_hours=3, remembered=None)
    assert simulated.known and simulated.offset == 3 * HOUR and not simulated.watching
    real = server_clock_for("auto", simulated=False, sim_offset_hours=0, remembered=HOUR)
    assert not real.known and real.offset == HOUR and real.watching


def test_the_settings_take_auto_or_quarter_hours_and_name_a_bad_value(tmp_path: Path) -> None:
    settings = load_settings(
        ["--server-utc-offset", "-4.5", "--sim-server-utc-offset", "2"], environ={}, cwd=tmp_path
    )
    assert (settings.server_utc_offset, settings.sim_server_utc_offset) == (-4.5, 2.0)
    assert (
        load_settings([], environ={"MT5C_SERVER_UTC_OFFSET": "auto"}, cwd=tmp_path).server_utc_offset
        == "auto"
    )
    with pytest.raises(ConfigError, match=r"--server-utc-offset.*not auto or hours ahead of UTC"):
        load_settings(["--server-utc-offset", "3:00"], environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"--sim-server-utc-offset.*quarter hours"):
        load_settings(["--sim-server-utc-offset", "2.2"], environ={}, cwd=tmp_path)


def test_the_simulator_keeps_its_server_clock_in_everything_it_hands_out() -> None:
    clock = Clock(EARLY)
    mt5 = SimTerminal(seed=7, clock=clock, server_utc_offset=3)
    assert mt5.initialize()
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None and abs(tick.time - (EARLY.timestamp() + 3 * HOUR)) < 60
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_D1, 0, 1)
    assert rates is not None
    assert int(rates["time"][-1]) == int(datetime(2026, 11, 18, tzinfo=UTC).timestamp())  # server midnight
    with pytest.raises(ValueError, match=r"server_utc_offset: 2\.2 hours is not a whole number"):
        SimTerminal(seed=7, server_utc_offset=2.2)


# ----------------------------------------------------------------- the adapter and what runs on it


async def server_rig(
    tmp_path: Path,
    *,
    limits: Limits | None = None,
    now: Callable[[], datetime] | None = None,
    start: datetime = EARLY,
) -> Rig:
    """A rig on a simulator whose server runs at UTC+3, with an adapter that must learn it; ``now`` is
    this computer's clock (default: right)."""
    clock = Clock(start)
    rig = await make_rig(
        tmp_path, clock=clock, sim=SimTerminal(seed=7, clock=clock, server_utc_offset=3), limits=limits
    )
    rig.broker.server_clock = ServerClock.learning(None, now=now or clock)
    return rig


async def learn(rig: Rig) -> None:
    await rig.broker.ticks(["EURUSD"])
    rig.clock.advance(seconds=2)
    await rig.broker.ticks(["EURUSD"])
    assert rig.broker.server_clock.known


async def test_the_adapter_learns_the_offset_and_hands_out_utc_both_ways(tmp_path: Path) -> None:
    rig = await server_rig(tmp_path)
    try:
        await learn(rig)
        assert rig.broker.server_clock.offset == 3 * HOUR
        assert (
            "broker: the trade server's clock runs at UTC+03:00 (learned from EURUSD's live ticks)"
            in rig.lines()
        )
        assert [e.offset for e in rig.seen if isinstance(e, ServerClockLearned)] == [3 * HOUR]
        now = rig.clock.now
        tick = await rig.broker.tick("EURUSD")
        assert abs((tick.time - now).total_seconds()) < 60
        opened = await rig.broker.open_market("EURUSD", Side.BUY, 0.01, magic=5)
        [position] = await rig.broker.positions()
        assert abs((position.time - now).total_seconds()) < 60
        forming = await rig.broker.rates("EURUSD", "M1", 1)
        assert now - timedelta(minutes=1) < datetime.fromtimestamp(int(forming["time"][-1]), UTC) <= now
        found = await rig.broker.rates_range("EURUSD", "M1", now - timedelta(minutes=10), now)
        assert len(found) >= 10 and datetime.fromtimestamp(int(found["time"][-1]), UTC) <= now
        rig.clock.advance(minutes=5)
        await rig.broker.close_position(opened.position)
        # The deals of the last ten minutes, asked in UTC: the module must be asked in server time,
        # or it looks three hours before them and finds nothing.
        deals = await rig.broker.deals(rig.clock.now - timedelta(minutes=10), rig.clock.now)
        assert [d.position_id for d in deals if d.position_id] == [opened.position, opened.position]
        assert all(abs((d.time - rig.clock.now).total_seconds()) < 400 for d in deals)
    finally:
        await rig.close()


async def test_sessions_are_judged_in_utc_not_in_the_servers_time(tmp_path: Path) -> None:
    rig = await server_rig(tmp_path)
    try:
        await learn(rig)
        london = always_buy(rules={"sessionFilter": {"enabled": True, "allowedSessions": ["London"]}})
        await rig.engine.start(london, source="test")
        await rig.market.poll_once()
        while rig.clock.now < EARLY.replace(minute=58):
            await rig.bar()  # 09:xx on the server, 06:xx UTC: London has not opened
        assert await rig.broker.positions() == ()
        assert "session" in rig.text().lower()
        for _ in range(4):
            await rig.bar()  # past 07:00 UTC
        assert len(await rig.broker.positions()) >= 1
    finally:
        await rig.close()


async def test_the_daily_loss_day_starts_at_utc_midnight_not_the_servers(tmp_path: Path) -> None:
    # A loss closed at 22:30 UTC (01:30 the next day on the server). At 01:00 UTC that next day it is
    # yesterday's: it must not stop today's trading.
    start = datetime(2026, 11, 17, 22, 0, 5, tzinfo=UTC)
    rig = await server_rig(tmp_path, limits=Limits(max_daily_loss_pct=0.5), start=start)
    try:
        await learn(rig)
        opened = await rig.broker.open_market("EURUSD", Side.BUY, 5.0)
        rig.clock.advance(minutes=30)
        spread_loss = await rig.broker.close_position(opened.position)
        assert spread_loss.retcode
        account = await rig.broker.account()
        assert account.balance < 10_000 - 0.005 * 10_000, "the test needs a loss above 0.5 %"
        rig.clock.now = datetime(2026, 11, 18, 1, 0, 5, tzinfo=UTC)
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        await rig.bar()
        assert len(await rig.broker.positions()) >= 1, rig.text()
        assert "--max-daily-loss-pct" not in rig.text()
    finally:
        await rig.close()


async def test_bars_wait_for_the_servers_clock_and_are_never_signalled_twice(tmp_path: Path) -> None:
    fast = [timedelta(minutes=7)]  # this computer's clock runs 7 minutes fast
    rig = await server_rig(tmp_path, now=lambda: rig.clock.now + fast[0])
    seen: list[int] = []

    async def subscriber(symbol: str, timeframe: str, closed: object) -> None:
        seen.append(int(closed["time"][-1]))  # type: ignore[index]

    try:
        rig.market.subscribe_bars("EURUSD", "M1", subscriber)
        await rig.market.poll_once()
        for _ in range(3):
            await rig.bar()
        assert seen == [], "no bar may reach a strategy while the server's clock is unknown"
        assert rig.text().count("closed before a live tick showed the trade server's clock") == 1
        assert "this computer's clock looks wrong" in rig.text()
        fast[0] = timedelta(0)  # the computer's clock is put right (NTP steps it back)
        await rig.bar()  # the step back: these reads' times prove nothing
        await rig.bar()  # learned at this poll's ticks: the bar times moved by three hours: a fresh look
        assert rig.broker.server_clock.offset == 3 * HOUR
        assert seen == []
        await rig.bar()
        await rig.bar()
        assert len(seen) == len(set(seen)) == 2
        assert all(abs(t - rig.clock.now.timestamp()) < 300 for t in seen), "bar times are UTC"
    finally:
        await rig.close()


async def test_a_real_terminals_offset_is_learned_live_and_remembered_for_the_next_start(
    tmp_path: Path,
) -> None:
    # broker "mt5": the runtime treats the terminal as a real one, whose clock it must learn.
    settings = sim_settings(tmp_path, broker="mt5", poll_interval=0.05)
    runtime = Runtime(settings, module=lambda: SimTerminal(seed=2, server_utc_offset=2))
    await runtime.start()
    try:
        assert runtime.store is not None
        store = runtime.store
        await eventually(lambda: store.remembered_server_offset() == 2 * HOUR, "the learned offset kept")
        lines = [e.message for e in store.recent_events()]
        assert "trade server's clock: UTC+00:00 (assumed, not confirmed by a live tick yet)" in lines
        learned = "the trade server's clock runs at UTC+02:00 (learned from "
        assert any(line.startswith(learned) and line.endswith("'s live ticks)") for line in lines)
    finally:
        await runtime.stop()
    again = Runtime(settings, module=lambda: SimTerminal(seed=2, server_utc_offset=2))
    await again.start()
    try:
        assert again.store is not None
        lines = [e.message for e in again.store.recent_events()]
        assert any("UTC+02:00 (remembered from the last session, not confirmed" in line for line in lines)
    finally:
        await again.stop()
