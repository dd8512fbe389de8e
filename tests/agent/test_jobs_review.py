"""The platform review's job defects, each reproduced with real parts (simulated terminal, Store on
disk, the loopback platform) and shown fixed:

1. a trade job's fill is written to the trades table and reported opened before the job's result is
   stored, so a position closed within a second still has its row and its opened/partial/closed events;
2. run/stop: failed at once on --broker sim; on a real terminal they never hold up the jobs behind them;
3. after an outage, the loops still in a backoff try again soon once one loop gets through;
4. CLOSE_ALL of a symbol the terminal does not know is rejected with the reason.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.agent.agent_state import AgentStatus, repeat
from mt5console.core.agent.jobs.model import parse_job
from mt5console.core.agent.jobs.trade_recovery import order_comment
from mt5console.core.agent.platform import Backoff, PlatformUnavailable
from mt5console.core.agent.reporting import PlatformReporter
from mt5console.core.agent.terminal_files import TerminalFolders
from mt5console.core.broker.models import Side
from mt5console.core.events import EventBus, LogLine, TradeUpdate
from mt5console.core.market import RESYNC_EVERY_POLLS, MarketData
from mt5console.core.store import TradeStatus
from mt5console.core.strategy.tracker import TradeTracker
from tests.helpers import eventually
from tests.helpers import make_rig as make_engine_rig
from tests.platform_server import RESULT_PATH, PlatformServer

from .test_agent_loop import KEY, agent_settings, result_of, start_console
from .test_ea_control import StandInController
from .test_jobs import JobsRig, make_rig

AGENT = "agent-review"


class Reported:
    """A rig with the trade tracker and the platform reporter on its bus, as the runtime wires them."""

    def __init__(self, rig: JobsRig) -> None:
        self.rig = rig
        self.tracker = TradeTracker(rig.broker, rig.store, rig.events, rig.store.strategy_id_of_magic)
        PlatformReporter(rig.store, rig.events, AGENT).attach()
        self.updates: list[TradeUpdate] = []
        rig.events.subscribe(lambda e: self.updates.append(e) if isinstance(e, TradeUpdate) else None)

    def outbox(self) -> list[tuple[str, str, float | None]]:
        """(kind, trade event or job result status, volume) of what waits for the platform, in order."""
        return [
            (r.kind, r.body.get("event") or r.body["status"], r.body.get("volume")) for r in self.rig.outbox()
        ]

    def events_of(self, ticket: int) -> list[tuple[str, float]]:
        return [(u.event, u.volume) for u in self.updates if u.ticket == ticket]


@pytest.fixture
async def reported(tmp_path: Path) -> AsyncIterator[Reported]:
    rig = await make_rig(tmp_path)
    yield Reported(rig)
    await rig.broker.close()
    rig.store.close()


SELL = {"symbol": "GBPUSD", "side": "sell", "volume": 0.03}


# ------------------------------------------------------------ 1. a job's fill is never lost


async def test_a_job_trade_closed_at_once_has_its_row_and_is_reported_opened_then_closed(
    reported: Reported,
) -> None:
    rig = reported.rig
    opened = await rig.executor.execute("y1", "trade", SELL)
    ticket = opened.output_data["ticket"]
    closed = await rig.executor.execute("y2", "close_position", {"ticket": ticket})
    assert closed.status == "completed", closed.error_message
    # No market-data poll ran: the tracker knew of the fill, and the close job had it look at once.
    trade = rig.store.trade_by_ticket(ticket)
    assert trade is not None and trade.status is TradeStatus.CLOSED
    assert (trade.strategy_id, trade.volume, trade.magic) == (None, 0.03, 0)
    assert trade.comment == order_comment("y1") and trade.open_price == opened.output_data["fill_price"]
    assert trade.profit == pytest.approx(closed.output_data["pnl"])
    assert reported.events_of(ticket) == [("opened", 0.03), ("closed", 0.03)]
    # Each trade event is queued before the result of the job that made it.
    assert reported.outbox() == [
        ("trade_event", "opened", 0.03),
        ("job_result", "completed", None),
        ("trade_event", "closed", 0.03),
        ("job_result", "completed", None),
    ]


async def test_a_job_buy_then_a_partial_close_job_reports_the_real_open_volume_and_the_partial(
    reported: Reported,
) -> None:
    rig = reported.rig
    opened = await rig.executor.execute("z1", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.02})
    ticket = opened.output_data["ticket"]
    await rig.executor.execute("z3", "close_position", {"ticket": ticket, "volume": 0.01})
    assert reported.events_of(ticket) == [("opened", 0.02), ("partial", 0.01)]
    trade = rig.store.trade_by_ticket(ticket)
    assert trade is not None and (trade.volume, trade.remaining_volume) == (0.02, 0.01)


async def test_a_job_resumed_after_a_crash_whose_position_closed_meanwhile_is_recorded_once(
    reported: Reported,
) -> None:
    rig = reported.rig
    # A crash right after order_send: the job running in the store, its deal in the terminal; then
    # the position was closed (a stop, a manual close) while the console was off.
    rig.store.job_received("job-cut", "trade", SELL, when=datetime.now(UTC) - timedelta(minutes=1))
    rig.store.job_started("job-cut")
    sent = await rig.broker.open_market("GBPUSD", Side.SELL, 0.03, comment=order_comment("job-cut"))
    await rig.broker.close_position(sent.position, comment="manual")
    outcome = await rig.executor.execute("job-cut", "trade", SELL)
    assert outcome.status == "completed" and outcome.output_data["ticket"] == sent.position
    trade = rig.store.trade_by_ticket(sent.position)
    assert trade is not None and trade.status is TradeStatus.CLOSED and trade.volume == 0.03
    assert reported.events_of(sent.position) == [("opened", 0.03), ("closed", 0.03)]
    again = await rig.executor.execute("job-cut", "trade", SELL)  # handed out again: its stored result
    assert again.repeated and reported.events_of(sent.position) == [("opened", 0.03), ("closed", 0.03)]
    assert len(rig.deals_with(order_comment("job-cut"))) == 1


async def test_a_job_cut_off_after_its_fill_was_recorded_is_not_reported_twice(reported: Reported) -> None:
    rig = reported.rig
    rig.store.job_received("job-late", "trade", SELL)
    rig.store.job_started("job-late")
    job = {**SELL}
    # The handler ran to its end (fill recorded, opened queued) but the result was never stored.
    first = await rig.handlers.handle(
        "job-late", parse_job("trade", job), received_at=datetime.now(UTC), resumed=False
    )
    outcome = await rig.executor.execute("job-late", "trade", job)
    assert outcome.output_data["ticket"] == first["ticket"]
    assert reported.events_of(first["ticket"]) == [("opened", 0.03)]
    assert [kind for kind, *_ in reported.outbox()] == ["trade_event", "job_result"]


async def test_a_manual_position_is_still_adopted(reported: Reported) -> None:
    rig = reported.rig
    manual = await rig.broker.open_market("EURUSD", Side.BUY, 0.05, comment="by hand")
    await reported.tracker.sync_now()
    trade = rig.store.trade_by_ticket(manual.position)
    assert trade is not None and trade.comment == "by hand" and trade.strategy_id is None
    assert reported.events_of(manual.position) == [("opened", 0.05)]


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    with PlatformServer(key=KEY).serving() as server:
        yield server


async def test_the_review_repro_through_the_console_trade_then_close_reaches_the_platform(
    tmp_path: Path, platform: PlatformServer
) -> None:
    # Market data polled every 5 s: the job's position opens and closes between two polls, as in
    # the review's run, so only the jobs' own bookkeeping can tell the platform about it.
    settings = agent_settings(tmp_path, platform.url, poll_interval=5.0)
    console = await start_console(settings, tmp_path / "sim.db")
    try:
        platform.queue_job("y1", "trade", {"symbol": "GBPUSD", "side": "sell", "volume": 0.03})
        ticket = (await result_of(platform, "y1"))["output_data"]["ticket"]
        platform.queue_job("y2", "close_position", {"ticket": ticket})
        assert (await result_of(platform, "y2"))["status"] == "completed"
        sent = await eventually(
            lambda: (
                [
                    (t["event"], t["volume"], t["strategyId"])
                    for t in platform.trades()
                    if t["ticket"] == ticket
                ]
                if len([t for t in platform.trades() if t["ticket"] == ticket]) >= 2
                else None
            ),
            "the opened and closed events of the job's trade",
        )
        assert sent == [("opened", 0.03, None), ("closed", 0.03, None)]
        store = console.runtime.store
        assert store is not None
        trade = store.trade_by_ticket(ticket)
        assert trade is not None and trade.status is TradeStatus.CLOSED
    finally:
        await console.runtime.stop()


# ------------------------------------------------------------ 2. run / stop


async def test_run_and_stop_fail_at_once_on_the_simulated_terminal(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)  # answer_timeout 5 s: a wait for a controller would show
    try:
        started = time.monotonic()
        run = await rig.executor.execute(
            "e1", "run", {"ea_name": "Grid", "symbol": "EURUSD", "timeframe": "H1"}
        )
        stop = await rig.executor.execute("e2", "stop", {"ea_name": "MyEA"})
        assert time.monotonic() - started < 2
        for outcome, verb in ((run, "run"), (stop, "stop")):
            assert outcome.status == "failed"
            assert (outcome.error_message or "").startswith(f"{verb}: the simulated terminal (--broker sim)")
            assert "--broker mt5 or mt5linux" in (outcome.error_message or "")
    finally:
        await rig.broker.close()
        rig.store.close()


async def test_a_stop_without_a_controller_does_not_hold_up_the_trade_behind_it(
    tmp_path: Path, platform: PlatformServer
) -> None:
    # --broker mt5 (the simulator playing a real terminal) and no controller EA attached.
    settings = agent_settings(tmp_path, platform.url, broker="mt5", ea_answer_timeout=4.0)
    console = await start_console(settings, tmp_path / "sim.db")
    try:
        platform.queue_job("e5", "stop", {"ea_name": "MyEA"})
        platform.queue_job("e5b", "stop", {"ea_name": "OtherEA"})
        platform.queue_job("e7", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.1})
        queued = time.monotonic()
        trade = await result_of(platform, "e7")
        assert trade["status"] == "completed" and time.monotonic() - queued < 3.0
        assert "e5" not in platform.results()  # still waiting for a controller, beside the poll loop
        first = await result_of(platform, "e5", within=15)
        second = await result_of(platform, "e5b", within=15)
        for stopped in (first, second):
            assert stopped["status"] == "failed"
            assert "no MT5ConsoleController answered within 4 s" in stopped["error_message"]
        order = [c.path.split("/")[-2] for c in platform.taken(RESULT_PATH)]
        assert order.index("e7") < order.index("e5") < order.index("e5b")  # the lane keeps its order
        assert all(len(bodies) == 1 for bodies in platform.results().values())
    finally:
        await console.runtime.stop()


async def test_an_ea_job_cut_off_by_a_stop_is_taken_back_and_resumed_at_the_next_start(
    tmp_path: Path, platform: PlatformServer
) -> None:
    settings = agent_settings(tmp_path, platform.url, broker="mt5", ea_answer_timeout=60.0)
    console = await start_console(settings, tmp_path / "sim.db")
    terminal = console.runtime.broker.terminal
    assert terminal is not None
    folders = TerminalFolders.of(terminal)
    store = console.runtime.store
    assert store is not None
    try:
        platform.queue_job("e9", "stop", {"ea_name": "Grid"})
        platform.queue_job("e10", "stop", {"ea_name": "Other"})  # waits in the lane behind e9
        await eventually(lambda: list(folders.control.glob("*.cmd")), "the command for a controller")
        await eventually(lambda: store.get_job("e10"), "e10 recorded while it waits its turn")
    finally:
        await console.runtime.stop()
    assert list(folders.control.glob("*.cmd")) == []  # no controller attached later acts on it
    assert "e9" not in platform.results() and "e10" not in platform.results()
    controller = StandInController(folders)
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    again = await start_console(settings, tmp_path / "sim.db")
    try:
        for job in ("e9", "e10"):  # both resumed from the store: the platform handed them out once
            stopped = await result_of(platform, job)
            assert stopped == {"status": "completed", "output_data": {"stopped": True}, "error_message": None}
        assert [(c["action"], c["ea"]) for c in controller.commands] == [("stop", "Grid"), ("stop", "Other")]
    finally:
        controller.stopping.set()
        thread.join(5)
        await again.runtime.stop()


# ------------------------------------------------------------ 3. back from an outage together


async def test_when_one_loop_gets_through_the_others_in_a_backoff_try_again_soon() -> None:
    events = EventBus()
    status = AgentStatus(events, state="online")
    platform_up = False
    calls: dict[str, list[float]] = {"jobs": [], "prices": []}

    def step_of(name: str) -> Any:
        async def step() -> None:
            calls[name].append(time.monotonic())
            if not platform_up:
                raise PlatformUnavailable(f"{name}: connection refused")

        return step

    loop = asyncio.get_running_loop()
    tasks = [
        # jobs retries quickly; prices has backed off far (30 s), as after a long outage
        loop.create_task(
            repeat(
                "jobs",
                step_of("jobs"),
                0.05,
                status=status,
                events=events,
                backoff=Backoff(0.05, 0.05),
                retry_spread=0.2,
            )
        ),
        loop.create_task(
            repeat(
                "prices",
                step_of("prices"),
                0.05,
                status=status,
                events=events,
                backoff=Backoff(30, 60),
                retry_spread=0.2,
            )
        ),
    ]
    try:
        await eventually(lambda: len(calls["prices"]) == 1 and len(calls["jobs"]) >= 2, "both failing")
        assert status.state == "platform-unreachable"
        platform_up = True
        back = time.monotonic()
        await eventually(lambda: len(calls["prices"]) >= 2, "prices trying again", within=3)
        assert calls["prices"][1] - back < 1.5  # not after its 30 s backoff
        await eventually(lambda: status.state != "platform-unreachable", "the outage over for all loops")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_loop_failing_alone_is_not_woken_by_loops_that_never_failed() -> None:
    events = EventBus()
    status = AgentStatus(events)
    calls: dict[str, int] = {"jobs": 0, "prices": 0}

    async def fine() -> None:
        calls["prices"] += 1

    async def failing() -> None:
        calls["jobs"] += 1
        raise PlatformUnavailable("jobs: HTTP 503")

    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(
            repeat(
                "prices",
                fine,
                0.02,
                status=status,
                events=events,
                backoff=Backoff(0.02, 0.02),
                retry_spread=0.01,
            )
        ),
        loop.create_task(
            repeat(
                "jobs",
                failing,
                0.02,
                status=status,
                events=events,
                backoff=Backoff(30, 60),
                retry_spread=0.01,
            )
        ),
    ]
    try:
        await eventually(lambda: calls["prices"] >= 20, "prices going on")
        assert calls["jobs"] == 1  # it waits out its backoff: no herd of retries on others' success
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------ 4. CLOSE_ALL of an unknown symbol


async def test_close_all_of_an_unknown_symbol_is_rejected_and_closes_nothing(tmp_path: Path) -> None:
    rig = await make_engine_rig(tmp_path)
    try:
        await rig.broker.open_market("EURUSD", Side.BUY, 0.1, comment="by hand")
        _, result = await rig.bus.submit_payload(
            {"command": "CLOSE_ALL", "commandId": "k1", "parameters": {"symbol": "NOPE"}}, "pusher"
        )
        assert not result.ok
        assert result.error.startswith("parameters.symbol: the terminal has no symbol 'NOPE'")
        assert "nothing was closed" in result.error
        assert len(await rig.broker.positions()) == 1
        _, known = await rig.bus.submit_payload(
            {"command": "CLOSE_ALL", "commandId": "k2", "parameters": {"symbol": "GBPUSD"}}, "pusher"
        )
        assert known.ok and known.details == {"closedPositions": 0}
    finally:
        await rig.close()


async def test_a_close_position_command_books_the_close_at_once(tmp_path: Path) -> None:
    rig = await make_engine_rig(tmp_path)
    try:
        sent = await rig.broker.open_market("EURUSD", Side.BUY, 0.1, comment="by hand")
        await rig.engine.tracker.sync_now()
        _, result = await rig.bus.submit_payload(
            {"command": "CLOSE_POSITION", "commandId": "c1", "parameters": {"ticket": sent.position}},
            "pusher",
        )
        assert result.ok, result.error
        trade = rig.store.trade_by_ticket(sent.position)  # no market-data poll ran since
        assert trade is not None and trade.status is TradeStatus.CLOSED
    finally:
        await rig.close()


# ------------------------------------------------------------------ a close no poll saw as a change


async def test_a_job_position_closed_between_two_polls_is_booked_within_a_few_polls(tmp_path: Path) -> None:
    """Polls before and after saw no position (the list unchanged), so the tracker never heard of the
    close: the trade stayed open in the store, and no "closed" went to the platform."""
    rig = await make_rig(tmp_path)
    tracker = TradeTracker(rig.broker, rig.store, rig.events, rig.store.strategy_id_of_magic)
    market = MarketData(rig.broker, rig.events, ("EURUSD",))
    market.on_positions(tracker.sync)
    try:
        await market.poll_once()
        out = await rig.executor.execute("j1", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.01})
        ticket = out.output_data["ticket"]
        await rig.broker.close_position(ticket, comment="stopped out")  # by the terminal, not a job
        for _ in range(RESYNC_EVERY_POLLS):
            await market.poll_once()
        trade = rig.store.trade_by_ticket(ticket)
        assert trade is not None and trade.status == TradeStatus.CLOSED
    finally:
        await rig.broker.close()
        rig.store.close()


async def test_a_sync_on_a_list_read_before_a_fill_does_not_call_the_fill_closed(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    tracker = TradeTracker(rig.broker, rig.store, rig.events, rig.store.strategy_id_of_magic)
    said: list[LogLine] = []
    rig.events.subscribe(lambda event: said.append(event) if isinstance(event, LogLine) else None)
    try:
        stale = await rig.broker.positions()  # the poll reads the list, then a job fills meanwhile
        await rig.executor.execute("j1", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.01})
        await tracker.sync(stale)
        assert not [line for line in said if "no closing deal" in line.message]
        assert len(rig.store.open_trades()) == 1
    finally:
        await rig.broker.close()
        rig.store.close()
