"""The agent loop through the runtime: heartbeat, batched prices, job polling and recovery, against
the loopback platform (tests/platform_server.py) with the simulated terminal."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.agent.agent_state import AgentStatus, repeat
from mt5console.core.agent.jobs.trade_recovery import order_comment
from mt5console.core.agent.platform import Backoff
from mt5console.core.agent.prices import prices_body
from mt5console.core.agent.terminal_files import TerminalFolders
from mt5console.core.broker.models import Tick
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import AgentStateChanged, Event, EventBus, LogLine
from mt5console.core.runtime import Runtime
from mt5console.core.settings import Settings
from tests.helpers import eventually
from tests.platform_server import NEXT_JOB_PATH, PlatformServer

from .test_ea_control import StandInController
from .test_metaeditor import GOOD_SOURCE, write_standin_metaeditor

KEY = "pk-agent-loop-5c1e9a"
AGENT = "agent-loop-1"
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "NOSUCH")  # NOSUCH never has a tick
REPO = Path(__file__).resolve().parents[2]
FAR = datetime(2100, 1, 1).astimezone()
PAST = datetime(2000, 1, 1).astimezone()


class Outage:
    """The simulated terminal behind a switch: while ``down``, initialize() fails as MT5 does when the
    terminal is closed, so the broker's reconnect attempts fail until it is switched back."""

    def __init__(self, sim: SimTerminal) -> None:
        self.sim = sim
        self.down = False

    def go_down(self) -> None:
        self.down = True
        self.sim.shutdown()

    def initialize(self, **kwargs: Any) -> bool:
        return False if self.down else bool(self.sim.initialize(**kwargs))

    def last_error(self) -> tuple[int, str]:
        return (-10003, "IPC initialize failed") if self.down else self.sim.last_error()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)


def agent_settings(tmp_path: Path, url: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "broker": "sim",
        "data_dir": tmp_path / "data",
        "config_dir": tmp_path / "config",
        "reconnect_interval": 0.5,
        "connect_attempts": 1,
        "poll_interval": 0.1,
        "symbols": SYMBOLS,
        "api_url": url,
        "pairing_key": KEY,
        "agent_id": AGENT,
        "jobs_interval": 0.1,
        "metaeditor_path": str(write_standin_metaeditor(tmp_path)),
        "compile_timeout": 30.0,
        "ea_answer_timeout": 5.0,
    }
    base.update(changes)
    return Settings(**base)


class Console:
    """A started runtime and what it published."""

    def __init__(self, runtime: Runtime, terminal: Outage) -> None:
        self.runtime = runtime
        self.terminal = terminal
        self.seen: list[Event] = []
        runtime.subscribe(self.seen.append)

    def lines(self) -> str:
        return "\n".join(e.message for e in self.seen if isinstance(e, LogLine))

    def states(self) -> list[AgentStateChanged]:
        return [e for e in self.seen if isinstance(e, AgentStateChanged)]

    def deals_with(self, comment: str) -> list[Any]:
        deals = self.terminal.sim.history_deals_get(PAST, FAR)
        return [d for d in deals or () if d.comment == comment]


async def start_console(settings: Settings, state: Path, *, backoff: Backoff | None = None) -> Console:
    terminal = Outage(SimTerminal(seed=5, state_path=state))
    runtime = Runtime(settings, module=lambda: terminal)
    if backoff is not None:
        runtime.agent_backoff = lambda: Backoff(backoff.first, backoff.cap, jitter=backoff.jitter)
    console = Console(runtime, terminal)
    await runtime.start()
    return console


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    with PlatformServer(key=KEY).serving() as server:
        yield server


@pytest.fixture
async def console(tmp_path: Path, platform: PlatformServer) -> AsyncIterator[Console]:
    started = await start_console(agent_settings(tmp_path, platform.url), tmp_path / "sim.db")
    yield started
    await started.runtime.stop()


async def result_of(platform: PlatformServer, job_id: str, within: float = 20.0) -> dict[str, Any]:
    results = await eventually(lambda: platform.results().get(job_id), f"the result of job {job_id}", within)
    return dict(results[0])


# ----------------------------------------------------------------------------------- heartbeat, prices


async def test_first_heartbeat_at_once_then_one_prices_call_per_second(tmp_path: Path) -> None:
    platform = PlatformServer(key=KEY)
    platform.start()
    began = time.monotonic()
    console = await start_console(agent_settings(tmp_path, platform.url), tmp_path / "sim.db")
    try:
        beats = await eventually(platform.heartbeats, "the first heartbeat", within=5)
        assert beats[0].time - began < 5
        assert beats[0].path == f"/agents/{AGENT}/heartbeat"
        assert beats[0].headers["authorization"] == f"Bearer {KEY}"
        assert beats[0].body == {
            "status": "online",
            "metrics": {
                "mt5_connected": True,
                "symbols_tracked": 3,  # NOSUCH is not a symbol of the terminal: left out at start
                "jobs_processed": 0,
                "strategies_running": 0,
            },
        }
        first_prices = await eventually(platform.prices, "the first prices", within=5)
        # Prices within 2 s of the agent going online (the first heartbeat marks the terminal connected).
        assert first_prices[0].time - beats[0].time < 2
        await asyncio.sleep(4.2)
        prices = platform.prices()
        # One call per second for all symbols: about four in four seconds, never one per symbol.
        window = [c for c in prices if c.time > first_prices[0].time + 0.01]
        assert 3 <= len(window) <= 5, [round(c.time - began, 2) for c in prices]
        for call in prices:
            assert set(call.body) == {"EURUSD", "GBPUSD", "USDJPY"}  # NOSUCH has no tick: left out
            for quote in call.body.values():
                assert set(quote) == {"bid", "ask", "time"} and quote["ask"] >= quote["bid"] > 0
                assert datetime.fromisoformat(quote["time"]).utcoffset() is not None
        assert len(platform.heartbeats()) == 1  # the next is 30 s away
        online = [s for s in console.states() if s.state == "online"]
        assert online and online[-1].last_heartbeat is not None
    finally:
        await console.runtime.stop()
        platform.go_away()
    assert console.states()[-1].state == "off"


def test_prices_body_leaves_out_symbols_without_a_tick() -> None:
    tick = Tick("EURUSD", datetime(2026, 1, 2, 3, 4, 5).astimezone(), 1.1, 1.1002, 0.0, 0)
    body = prices_body(("EURUSD", "GBPUSD"), {"EURUSD": tick, "USDJPY": tick})
    assert list(body) == ["EURUSD"]
    assert body["EURUSD"]["time"].endswith("+00:00")


# ----------------------------------------------------------------------------------- jobs


@pytest.fixture
async def terminal_console(tmp_path: Path, platform: PlatformServer) -> AsyncIterator[Console]:
    """The console on --broker mt5, the simulator playing the real terminal: the EA jobs run there
    (--broker sim refuses them at once: it has no charts)."""
    settings = agent_settings(tmp_path, platform.url, broker="mt5")
    started = await start_console(settings, tmp_path / "sim.db")
    yield started
    await started.runtime.stop()


async def test_every_job_type_end_to_end_through_the_poll_loop(
    terminal_console: Console, platform: PlatformServer
) -> None:
    console = terminal_console
    platform.artifacts["ver-42"] = GOOD_SOURCE
    terminal = console.runtime.broker.terminal
    assert terminal is not None
    folders = TerminalFolders.of(terminal)
    controller = StandInController(folders)
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    try:
        platform.queue_job("j-trade", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.1})
        trade = await result_of(platform, "j-trade")
        assert trade["status"] == "completed", trade
        ticket = trade["output_data"]["ticket"]
        assert trade["output_data"]["fill_price"] > 0 and trade["output_data"]["order_id"] > 0
        platform.queue_job("j-positions", "get_positions", {"symbol": "EURUSD"})
        platform.queue_job("j-account", "get_account", None)
        platform.queue_job("j-candles", "get_candles", {"symbol": "EURUSD", "timeframe": "M5", "count": 3})
        platform.queue_job("j-close", "close_position", {"ticket": ticket})
        platform.queue_job("j-compile", "compile", {"ea_name": "Grid", "version_id": "ver-42"})
        ex5 = folders.experts / "Grid.ex5"
        platform.queue_job("j-deploy", "deploy", {"ea_name": "Grid", "ex5_path": str(ex5)})
        platform.queue_job("j-run", "run", {"ea_name": "Grid", "symbol": "EURUSD", "timeframe": "H1"})
        platform.queue_job("j-stop", "stop", {"ea_name": "Grid", "symbol": "EURUSD"})
        platform.queue_job("j-unknown", "teleport", {})
        platform.queue_job("j-bad", "trade", {"symbol": "EURUSD", "side": "up", "volume": 0.1})
        platform.queue_job("j-nonsense", "get_account", "not an object")
        bad = await result_of(platform, "j-nonsense")
        await result_of(platform, "j-stop")  # the EA jobs run in a lane of their own
    finally:
        controller.stopping.set()
        thread.join(5)
    results = {job: bodies[0] for job, bodies in platform.results().items()}
    positions = results["j-positions"]["output_data"]["positions"]
    assert [(p["ticket"], p["type"], p["volume"]) for p in positions] == [(ticket, "buy", 0.1)]
    account = results["j-account"]["output_data"]
    assert set(account) == {"balance", "equity", "margin_used", "margin_available", "currency", "leverage"}
    assert len(results["j-candles"]["output_data"]["candles"]) == 3
    assert results["j-close"]["status"] == "completed" and "pnl" in results["j-close"]["output_data"]
    assert await console.runtime.broker.positions() == ()
    assert results["j-compile"]["output_data"] == {
        "compiled": True,
        "errors": [],
        "warnings": [],
        "ex5_path": str(ex5),
    }
    assert results["j-deploy"]["output_data"] == {"deployed": True, "path": str(ex5)}
    assert results["j-run"]["output_data"] == {"running": True}
    assert results["j-stop"]["output_data"] == {"stopped": True}
    assert results["j-unknown"]["status"] == "failed"
    assert "unknown job type 'teleport'" in results["j-unknown"]["error_message"]
    assert results["j-bad"]["status"] == "failed"
    assert "side must be buy or sell" in results["j-bad"]["error_message"]
    assert bad["status"] == "failed" and "input_data must be a JSON object" in bad["error_message"]
    status = console.runtime.agent_status
    assert (status.jobs_done, status.jobs_failed) == (9, 3)
    assert console.states()[-1].jobs_done == 9


async def test_a_job_handed_out_twice_trades_once(console: Console, platform: PlatformServer) -> None:
    job = {"symbol": "GBPUSD", "side": "sell", "volume": 0.2}
    platform.queue_job("j-twice", "trade", job)
    platform.queue_job("j-twice", "trade", job)
    await eventually(lambda: len(platform.results().get("j-twice", [])) == 2, "both results")
    first, second = platform.results()["j-twice"]
    assert first == second and first["status"] == "completed"
    assert len(console.deals_with(order_comment("j-twice"))) == 1


async def test_a_job_without_an_id_is_logged_and_the_loop_goes_on(
    console: Console, platform: PlatformServer
) -> None:
    with platform._lock:
        platform.jobs.append({"type": "get_account", "input_data": {}})
    platform.queue_job("j-after", "get_account", {})
    assert (await result_of(platform, "j-after"))["status"] == "completed"
    assert "handed out a job without an id" in console.lines()


# ----------------------------------------------------------------------------------- recovery


async def test_platform_down_backs_off_then_delivers_the_result(
    tmp_path: Path, platform: PlatformServer
) -> None:
    console = await start_console(
        agent_settings(tmp_path, platform.url, jobs_interval=0.05),
        tmp_path / "sim.db",
        backoff=Backoff(0.1, 0.8, jitter=0.0),
    )
    try:
        await eventually(platform.heartbeats, "the first heartbeat")
        platform.fail_after_job = 503  # the platform goes down right after handing out this job
        platform.queue_job("j-outage", "get_account", {})
        await eventually(
            lambda: len([c for c in platform.calls_to(NEXT_JOB_PATH, "GET") if c.status == 503]) >= 6,
            "six failed polls",
        )
        polls = [c.time for c in platform.calls_to(NEXT_JOB_PATH, "GET") if c.status == 503]
        gaps = [round(b - a, 2) for a, b in itertools.pairwise(polls)]
        for gap, expected in zip(gaps, (0.1, 0.2, 0.4, 0.8, 0.8), strict=False):
            assert expected - 0.03 <= gap <= expected + 0.25, gaps
        assert "platform-unreachable" in [s.state for s in console.states()]
        assert "j-outage" not in platform.results()
        platform.fail_status = None  # back
        result = await result_of(platform, "j-outage", within=20)
        assert result["status"] == "completed"
        await eventually(lambda: console.states()[-1].state == "online", "online again", within=5)
        assert "jobs: the platform is reachable again" in console.lines()
    finally:
        await console.runtime.stop()


async def test_terminal_lost_and_back_without_a_restart(console: Console, platform: PlatformServer) -> None:
    await eventually(platform.heartbeats, "the first heartbeat")
    console.terminal.go_down()
    beats = await eventually(
        lambda: [b for b in platform.heartbeats() if not b.body["metrics"]["mt5_connected"]],
        "a heartbeat saying the terminal is lost",
        within=5,
    )
    assert beats
    await eventually(lambda: console.states()[-1].state == "terminal-lost", "terminal-lost")
    platform.queue_job("j-lost", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.1})
    lost = await result_of(platform, "j-lost", within=5)
    assert lost["status"] == "failed"
    assert lost["error_message"] == "the terminal is not connected; reconnecting every 0.5 s"
    prices_while_lost = len(platform.prices())
    await asyncio.sleep(1.5)
    assert len(platform.prices()) == prices_while_lost  # no stale prices while it is away
    back_at = time.monotonic()
    console.terminal.down = False
    await eventually(
        lambda: platform.heartbeats()[-1].body["metrics"]["mt5_connected"], "a heartbeat: back", within=10
    )
    assert time.monotonic() - back_at < 10
    platform.queue_job("j-back", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.1})
    assert (await result_of(platform, "j-back"))["status"] == "completed"
    await eventually(lambda: len(platform.prices()) > prices_while_lost, "prices again", within=5)
    assert console.states()[-1].state == "online"


async def test_a_loop_survives_an_unexpected_error_and_logs_its_traceback() -> None:
    events = EventBus()
    lines: list[str] = []
    events.subscribe(lambda e: lines.append(e.message) if isinstance(e, LogLine) else None)
    rounds: list[int] = []

    async def step() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("boom in round one")

    task = asyncio.get_running_loop().create_task(
        repeat("probe", step, 0.01, status=AgentStatus(events), events=events, backoff=Backoff(0.01, 0.02))
    )
    await eventually(lambda: len(rounds) >= 3, "more rounds after the error")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    failure = next(line for line in lines if "probe failed unexpectedly" in line)
    assert "RuntimeError: boom in round one" in failure and "Traceback" in failure


# ----------------------------------------------------------------------------------- kill -9


KILLED_CONSOLE = """
import asyncio, sys, time
from pathlib import Path
from mt5console.core.broker import mt5 as adapter
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.runtime import Runtime
from mt5console.core.settings import Settings

send = adapter.Broker.open_market

async def dies_after_send(self, *args, **kwargs):
    result = await send(self, *args, **kwargs)
    print("SENT", result.position, flush=True)
    time.sleep(600)  # the loop is stuck here when SIGKILL comes: the result is never stored
    return result

adapter.Broker.open_market = dies_after_send

async def main():
    sim = SimTerminal(seed=5, state_path=Path(sys.argv[1]))
    settings = Settings(
        broker="sim", data_dir=Path(sys.argv[2]), config_dir=Path(sys.argv[2]), api_url=sys.argv[3],
        pairing_key=sys.argv[4], agent_id=sys.argv[5], jobs_interval=0.1, poll_interval=0.1,
    )
    runtime = Runtime(settings, module=lambda: sim)
    await runtime.start()
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_kill_9_between_send_and_report_then_handed_out_again_one_deal(
    tmp_path: Path, platform: PlatformServer
) -> None:
    state, data, job_id = tmp_path / "sim.db", tmp_path / "data", "j-kill-9-77"
    job = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
    platform.queue_job(job_id, "trade", job)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_CONSOLE,
        str(state),
        str(data),
        platform.url,
        KEY,
        AGENT,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    async with asyncio.timeout(60):
        line = await child.stdout.readline()
    assert line.startswith(b"SENT "), line
    sent_ticket = int(line.split()[1])
    os.kill(child.pid, signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL
    assert job_id not in platform.results()

    platform.queue_job(job_id, "trade", job)  # the platform never heard back: it hands it out again
    console = await start_console(agent_settings(tmp_path, platform.url, data_dir=data), state)
    try:
        await eventually(lambda: len(platform.results().get(job_id, [])) >= 2, "both results")
        for result in platform.results()[job_id]:
            assert result["status"] == "completed", result
            assert result["output_data"]["ticket"] == sent_ticket
        assert len(console.deals_with(order_comment(job_id))) == 1
        assert [p.ticket for p in await console.runtime.broker.positions()] == [sent_ticket]
        assert re.search(rf"job {job_id} \(trade\) was not finished at the last stop", console.lines())
    finally:
        await console.runtime.stop()
