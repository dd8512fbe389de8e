"""The trade server's clock end to end, against how a real MetaTrader 5 terminal behaves: what a
terminal that reconnects, a closed market and a restart with positions closed meanwhile do to the
times the console reads, keeps and acts on. The learning tests (a weekend's cached ticks, a
reconnect, an empty tick) and the first start's restore failed on the clock as committed in f641221,
and pass since 1019a25 (server_clock.py's live-tick rule, the start's wait for the clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mt5console.core.agent.reporting import trade_body
from mt5console.core.broker.models import Side
from mt5console.core.broker.server_clock import ServerClock
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import TradeUpdate
from mt5console.core.runtime import Runtime
from mt5console.core.store import Store
from tests.helpers import Clock, eventually, sim_settings

HOUR = 3600
HOUR_MS = HOUR * 1000
SERVER = 2 * HOUR  # a winter broker: UTC+2
# A Saturday morning: the FX market closed at Friday 22:00 UTC (Saturday 00:00 on the server).
SATURDAY = datetime(2026, 11, 21, 5, 0, 30, tzinfo=UTC)
# The last FX ticks of the week, on the server's clock: Friday 23:59:58 server = 21:59:58 UTC.
FRIDAY_CLOSE_SERVER_MS = (
    int(datetime(2026, 11, 20, 21, 59, 58, tzinfo=UTC).timestamp() * 1000) + SERVER * 1000
)
# What a terminal shows from its disk cache before it has synchronised: Thursday's ticks.
THURSDAY_CACHED_SERVER_MS = FRIDAY_CLOSE_SERVER_MS - 26 * HOUR_MS


def store_of(runtime: Runtime) -> Store:
    assert runtime.store is not None
    return runtime.store


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


# ----------------------------------------------------------------- learning, as a real terminal ticks


def test_a_terminal_synchronising_its_cached_ticks_on_the_weekend_teaches_nothing() -> None:
    # The console starts on Saturday with a terminal it has just launched: the first read shows the
    # terminal's cache from its last run (Thursday); a second later the terminal has synchronised
    # with its server and shows Friday's last tick. The tick moved, but it is seven hours old.
    clock = Clock(SATURDAY)
    server = ServerClock.learning(None, now=clock)
    server.observe("EURUSD", THURSDAY_CACHED_SERVER_MS)
    clock.advance(seconds=1)
    server.observe("EURUSD", FRIDAY_CLOSE_SERVER_MS)
    for _ in range(5):  # and then nothing moves all weekend
        clock.advance(seconds=1)
        server.observe("EURUSD", FRIDAY_CLOSE_SERVER_MS)
    assert (server.known, server.offset) == (False, 0), (
        f"learned {server.describe()} from a tick seven hours old; the server runs at UTC+02:00"
    )


def test_a_terminal_reconnecting_on_the_weekend_does_not_move_a_known_offset() -> None:
    # The console ran through Friday and knows the server's UTC+2. At 21:50 UTC the terminal lost
    # its server; it gets it back on Saturday morning and every symbol's tick jumps to the week's
    # last one, all within the same minute of Friday 23:59 server time.
    friday = datetime(2026, 11, 20, 21, 49, 0, tzinfo=UTC)
    clock = Clock(friday)
    server = ServerClock.learning(None, now=clock)
    symbols = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD")
    for n, symbol in enumerate(symbols):
        server.observe(symbol, ms(friday) + SERVER * 1000 - 900 + n)
    clock.advance(seconds=1)
    for n, symbol in enumerate(symbols):
        server.observe(symbol, ms(clock.now) + SERVER * 1000 - 400 + n)
    assert (server.known, server.offset) == (True, SERVER)
    server.take_notes()
    clock.now = SATURDAY  # reconnected: one read of the tracked symbols
    for n, symbol in enumerate(symbols):
        server.observe(symbol, FRIDAY_CLOSE_SERVER_MS - 40 * n)
    notes = server.take_notes()
    assert server.offset == SERVER, (
        f"the offset moved to {server.describe()} on ticks seven hours old: {[n.message for n in notes]}"
    )


def test_an_exotic_that_ticks_once_an_hour_teaches_the_right_offset() -> None:
    # A symbol quiet for an hour, then ticking: its ticks moved between reads a few seconds apart, so
    # they are as fresh as any, though the first jumped by an hour. No clock warning either.
    clock = Clock(SATURDAY.replace(day=18))  # a Wednesday
    server = ServerClock.learning(None, now=clock)
    server.observe("USDTRY", ms(clock.now) + SERVER * 1000 - HOUR_MS)
    for _ in range(3):
        clock.advance(seconds=3)
        server.observe("USDTRY", ms(clock.now) + SERVER * 1000 - 300)
    assert (server.known, server.offset) == (True, SERVER)
    assert [n.warning for n in server.take_notes()] == [False]


def test_a_symbol_just_added_to_market_watch_teaches_nothing_from_its_empty_tick() -> None:
    clock = Clock(SATURDAY.replace(day=18))  # a Wednesday, markets open
    server = ServerClock.learning(None, now=clock)
    server.observe("USDZAR", 0)  # symbol_select just made: no quote yet
    clock.advance(seconds=1)
    last = ms(clock.now) + SERVER * 1000 - 14 * 60 * 1000  # its last tick, 14 minutes ago
    server.observe("USDZAR", last)
    for _ in range(3):
        clock.advance(seconds=1)
        server.observe("USDZAR", last)
    assert server.offset in (0, SERVER), f"learned {server.describe()}; the server runs at UTC+02:00"


def test_crypto_ticking_on_the_weekend_keeps_the_offset_it_shows() -> None:
    clock = Clock(SATURDAY)
    server = ServerClock.learning(SERVER, now=clock)
    server.observe("EURUSD", FRIDAY_CLOSE_SERVER_MS)
    server.observe("BTCUSD", ms(clock.now) + SERVER * 1000 - 700)
    for _ in range(3):
        clock.advance(seconds=1)
        server.observe("EURUSD", FRIDAY_CLOSE_SERVER_MS)  # closed: never moves, never counts
        server.observe("BTCUSD", ms(clock.now) + SERVER * 1000 - 200)
    assert (server.known, server.offset) == (True, SERVER)
    [note] = server.take_notes()
    assert note.learned == SERVER and not note.warning


# ----------------------------------------------------------------- a restart with positions closed meanwhile


async def test_trades_closed_while_the_console_was_down_keep_utc_times(tmp_path: Path) -> None:
    """The simulator's server runs at UTC+3; a position opened by the console is stopped out while
    the console is down. After the restart the store holds its open and close times in UTC, and the
    trade events queued for the platform say UTC too."""
    clock = Clock(datetime(2026, 11, 18, 13, 0, 5, tzinfo=UTC))
    state = tmp_path / "sim_state.db"

    def terminal() -> SimTerminal:
        return SimTerminal(seed=3, clock=clock, state_path=state, server_utc_offset=3)

    settings = sim_settings(tmp_path, sim_server_utc_offset=3.0)
    updates: list[TradeUpdate] = []
    runtime = Runtime(settings, module=terminal)
    runtime.subscribe(lambda e: updates.append(e) if isinstance(e, TradeUpdate) else None)
    await runtime.start()
    try:
        opened = await runtime.broker.open_market("EURUSD", Side.BUY, 0.1, magic=0)
        tick = await runtime.broker.tick("EURUSD")
        stop = round(tick.bid - 0.0003, 5)
        await runtime.broker.modify(opened.position, sl=stop, tp=0.0)
        opened_at = clock.now
        store = store_of(runtime)
        await eventually(lambda: store.trade_by_ticket(opened.position) is not None, "the trade recorded")
    finally:
        await runtime.stop()
    clock.advance(hours=2)  # down for two hours: the stop is hit meanwhile
    again = Runtime(settings, module=terminal)
    again.subscribe(lambda e: updates.append(e) if isinstance(e, TradeUpdate) else None)
    await again.start()
    try:
        store = store_of(again)
        await eventually(
            lambda: (t := store.trade_by_ticket(opened.position)) is not None and t.close_time is not None,
            "the stopped-out trade closed in the store",
        )
        trade = store.trade_by_ticket(opened.position)
        assert trade is not None and trade.close_time is not None
        assert abs((trade.open_time - opened_at).total_seconds()) < 5, trade.open_time
        assert opened_at < trade.close_time <= clock.now, trade.close_time
        deals = await again.broker.position_deals(opened.position)
        closing = max(deals, key=lambda d: d.time)
        assert trade.close_time == closing.time
        closed = [u for u in updates if u.event == "closed" and u.ticket == opened.position]
        assert closed, updates
        sent = trade_body(closed[0])["time"]  # what the platform is told
        assert datetime.fromisoformat(sent) == trade.close_time and sent.endswith("+00:00")
    finally:
        await again.stop()


async def test_the_first_start_in_auto_stores_and_reports_utc_times_of_what_happened_meanwhile(
    tmp_path: Path,
) -> None:
    # Session 1, two hours ago, knew the server's clock (the simulator's own): a position with a
    # tight stop and one without are open when it stops.
    state = tmp_path / "sim_state.db"
    then = datetime.now(UTC) - timedelta(hours=2)
    past = Clock(then)
    first = Runtime(
        sim_settings(tmp_path, sim_server_utc_offset=2.0),
        module=lambda: SimTerminal(seed=3, clock=past, state_path=state, server_utc_offset=2),
    )
    await first.start()
    try:
        kept = await first.broker.open_market("EURUSD", Side.BUY, 0.1)
        stopped = await first.broker.open_market("EURUSD", Side.BUY, 0.1)
        tick = await first.broker.tick("EURUSD")
        # A stop and a target three pips away: in two hours one of them is hit, whichever way it goes.
        await first.broker.modify(
            stopped.position, sl=round(tick.bid - 0.0003, 5), tp=round(tick.ask + 0.0003, 5)
        )
        first_store = store_of(first)
        await eventually(lambda: len(first_store.open_trades()) == 2, "both trades recorded")
    finally:
        await first.stop()
    # Session 2, now, a real terminal's clock to learn (broker "mt5", auto, nothing remembered): the
    # stop was hit while the console was down.
    updates: list[TradeUpdate] = []
    second = Runtime(
        sim_settings(tmp_path, broker="mt5"),
        module=lambda: SimTerminal(seed=3, state_path=state, server_utc_offset=2),
    )
    second.subscribe(lambda e: updates.append(e) if isinstance(e, TradeUpdate) else None)
    await second.start()
    try:
        store = store_of(second)
        await eventually(lambda: store.remembered_server_offset() == SERVER, "the offset learned")
        closed = store.trade_by_ticket(stopped.position)
        assert closed is not None and closed.close_time is not None
        now = datetime.now(UTC)
        assert then < closed.close_time <= now, f"stored close time {closed.close_time} (now {now})"
        reported = [u for u in updates if u.event == "closed" and u.ticket == stopped.position]
        assert reported and then < reported[0].happened_at <= now, reported
        still = store.trade_by_ticket(kept.position)
        assert still is not None
        assert abs((still.open_time - then).total_seconds()) < 5, still.open_time
    finally:
        await second.stop()
