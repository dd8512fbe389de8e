"""The runtime: owns and starts/stops everything; the one object a front end holds.

Start order: store (so that every event is on disk), broker (exit code 3 when it cannot be reached),
market data, then the services that use them. Stop order is the reverse. Every long-running piece is
a named asyncio task; a task that dies unexpectedly is logged with its traceback, never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from mt5console.core.agent.agent import AgentLoop, pair_until_done
from mt5console.core.agent.agent_state import OFF, AgentStatus
from mt5console.core.agent.link import PlatformLink
from mt5console.core.agent.pairing import AgentFileError, apply_saved_identity, needs_pairing
from mt5console.core.agent.platform import Backoff
from mt5console.core.agent.reporting import PlatformReporter
from mt5console.core.broker.connect import initialize_kwargs, module_factory
from mt5console.core.broker.errors import BrokerError, TerminalUnavailable
from mt5console.core.broker.models import AccountState
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.server_clock import server_clock_for
from mt5console.core.commands.bus import CommandBus
from mt5console.core.commands.files import start_strategy_files
from mt5console.core.commands.pusher import PusherSource, pusher_source
from mt5console.core.data_lock import DataDirLock, DataDirUnavailable
from mt5console.core.events import Event, EventBus, Level, LogLine, ServerClockLearned
from mt5console.core.logsink import LogSink
from mt5console.core.market import MarketData
from mt5console.core.settings import Settings
from mt5console.core.store import Store
from mt5console.core.strategy.engine import StrategyEngine

log = logging.getLogger(__name__)

# How long the start waits for a live tick to show the trade server's clock (see _learn_server_clock).
CLOCK_WAIT_SECONDS = 5.0


class StartupError(Exception):
    """The runtime could not start; ``exit_code`` follows INTERFACE.md (3: broker unreachable)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def describe_account(account: AccountState, simulated: bool) -> str:
    kind = "SIMULATED" if simulated else ("demo" if account.demo else "REAL")
    return (
        f"account {account.login} on {account.server} ({kind}, "
        f"{'hedging' if account.hedging else 'netting'}): balance {account.balance:,.2f} {account.currency}, "
        f"equity {account.equity:,.2f}, free margin {account.margin_free:,.2f}, leverage 1:{account.leverage}"
    )


# The simulator's advice names its Python arguments; the console's user has options instead. The
# CLI has no option for the timeframe of --sim-data: the bars' spacing tells it.
_CLI_ADVICE: Final = (
    ("pass symbol=", "give --sim-symbol"),
    (
        "one bar is not enough to tell the timeframe; pass timeframe=",
        "one bar is not enough to tell the timeframe; give at least two bars, one timeframe apart",
    ),
    (
        "match no timeframe; pass timeframe=",
        "match no timeframe; space the bars one MetaTrader timeframe apart",
    ),
    ("; pass timeframe=", "; the bars' spacing must tell their timeframe"),
)


def _for_the_command_line(message: str, settings: Settings) -> str:
    """A simulator's refusal of --sim-data, with advice the command line can follow."""
    if settings.sim_data is None:
        return message
    for python, command_line in _CLI_ADVICE:
        message = message.replace(python, command_line)
    return message


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        module: Callable[[], Any] | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.events = events or EventBus()
        self.events.set_secrets(settings.secrets())
        self.simulated = settings.broker == "sim"
        self.store: Store | None = None
        self.engine: StrategyEngine | None = None
        self.bus: CommandBus | None = None
        self.platform: PlatformLink | None = None  # trade reporting and acks (issue 5)
        self.pusher: PusherSource | None = None  # the Pusher command source (issue 5)
        self.agent: AgentLoop | None = None  # heartbeat, prices, job polling (issue 6)
        self.agent_status = AgentStatus(self.events, state=OFF)
        self.agent_backoff: Callable[[], Backoff] = Backoff  # the agent loops' retry delays (tests shorten)
        self._sink: LogSink | None = None
        # What the simulated terminal says about its setup when it is made (said once the log runs).
        self._setup_notices: list[str] | None = [] if self.simulated else None
        self.broker = Broker(
            self._noting_setup(module or module_factory(settings)),
            events=self.events,
            simulated=self.simulated,
            initialize_kwargs=initialize_kwargs(settings),
            reconnect_interval=settings.reconnect_interval,
            pip_overrides=settings.pip_overrides,
        )
        self.market = MarketData(
            self.broker, self.events, settings.symbols, poll_interval=settings.poll_interval
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._unpaired: Callable[[], None] | None = None  # queues trade events until paired
        self.started = False
        self.failed = asyncio.Event()  # set when a service task died: front ends should stop
        self._data_lock = DataDirLock(settings.data_dir)

    def _noting_setup(self, factory: Callable[[], Any]) -> Callable[[], Any]:
        """``factory``, keeping the simulated terminal's setup notices from the first terminal made
        (it runs on the adapter's terminal thread, the one place that may touch the terminal)."""

        def make() -> Any:
            made = factory()
            notices = self._setup_notices
            if notices is not None and not notices:
                found = getattr(made, "setup_notices", ())  # the simulator's extra; a wrapper may lack it
                notices.extend(str(n) for n in found if isinstance(found, tuple | list))
                self._setup_notices = (
                    notices if notices else None
                )  # a reconnect's terminal says nothing again
            return made

        return make

    def _say_setup_notices(self) -> None:
        for notice in self._setup_notices or ():
            self.events.warning("broker", f"simulated terminal: {notice}")
        self._setup_notices = None

    async def _drop_unknown_symbols(self) -> None:
        """Track only the symbols the terminal knows: an unknown one would never get a tick, without a
        word. Warned, not refused: a broker's symbol list can change."""
        try:
            unknown = await self.broker.unknown_symbols(self.market.symbols)
        except BrokerError as error:
            self.events.warning("broker", f"could not check the tracked symbols: {error}")
            return
        if unknown:
            self.market.symbols = tuple(s for s in self.market.symbols if s not in unknown)
            self.events.warning(
                "broker",
                f"the terminal does not know {', '.join(unknown)}: not tracked (check --symbols; "
                f"the broker may name {'it' if len(unknown) == 1 else 'them'} otherwise, e.g. with a suffix)",
            )

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        settings = self.settings
        try:
            self._data_lock.acquire()  # before anything is read or written there
        except DataDirUnavailable as error:
            raise StartupError(str(error), exit_code=2) from None
        self.store = Store(settings.database_path)
        self._sink = LogSink(self.store, settings.log_dir, verbose=settings.verbose)
        self._unsubscribe.append(self.events.subscribe(self._sink))
        for line in list(self.events.log_history):  # lines published before the sink existed
            self._sink(line)
        self.events.info(
            "runtime",
            f"starting: broker {settings.broker}"
            + (" (SIMULATED terminal: no real money)" if self.simulated else "")
            + f", data in {settings.data_dir}",
        )
        self._set_server_clock(self.store)
        settings = await self._load_pairing()  # issue 6: a bad agent.json stops here, exit code 2
        try:
            account = await self.broker.connect(attempts=settings.connect_attempts)
        except TerminalUnavailable as error:
            self.events.error("runtime", str(error))
            await self._close_parts()
            raise StartupError(str(error), exit_code=3) from None
        except ValueError as error:  # the simulator refused its settings (a bad --sim-data file...)
            message = _for_the_command_line(f"simulated terminal: {error}", settings)
            self.events.error("runtime", message)
            await self._close_parts()
            raise StartupError(message, exit_code=2) from None
        terminal = self.broker.terminal
        if terminal is not None:
            self.events.info(
                "broker",
                f"connected to {terminal.name} (build {terminal.build}, {terminal.company})"
                + ("" if terminal.trade_allowed else "; algo trading is DISABLED in the terminal"),
            )
        self.events.info("broker", describe_account(account, self.simulated))
        self._say_setup_notices()
        await self._drop_unknown_symbols()
        self.market.account = account
        self.engine = StrategyEngine(
            self.broker, self.market, self.store, self.events, limits=settings.limits
        )
        self.bus = CommandBus(self.engine, self.store, self.events)
        if not needs_pairing(settings):  # else linked once paired (issue 6)
            self._link_platform()  # before restore: positions adopted at start are reported too
        else:  # trade events queued meanwhile, for the agent id the pairing will give
            self._unpaired = PlatformReporter(self.store, self.events, None).attach()
            self._unsubscribe.append(self._unpaired)
        await self._learn_server_clock()  # before restore: what happened meanwhile is stored in UTC
        last_session = self.store.session_started()
        await self.engine.restore(missed_since=last_session)
        # Before the market data loop runs: a kill switch a crash cut off is finished before any trade.
        for command_id, result in await self.bus.resume_unfinished(last_session):
            if self.platform is not None:
                self.platform.acknowledge(command_id, ok=result.ok, error=result.error)
        if settings.strategies is not None:
            await start_strategy_files(settings.strategies, self.bus, self.events, self.store)
        positions = await self.broker.positions()
        running = sum(not r.paused for r in self.engine.runners.values())
        self.events.info(
            "runtime",
            f"ready: {running} strateg{'y' if running == 1 else 'ies'} running, "
            f"{len(positions)} position(s) open, tracking {', '.join(self.market.symbols) or 'no symbol'}",
        )
        self.spawn("market-data", self.market.run())
        if needs_pairing(settings):
            self.spawn("agent-pairing", self._pair_then_start())
        else:
            self._start_remote_services()
            self._start_agent()
        self.started = True

    async def _learn_server_clock(self) -> None:
        """Give live ticks a moment to show the trade server's clock before the tracker reads what
        happened while the console was off (positions, closes): their times are stored and reported
        once, so they must be converted with the right offset. In an open market this takes a poll
        or two; in a closed one nothing moves, and the log says which offset those times used."""
        clock = self.broker.server_clock
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOCK_WAIT_SECONDS
        while not clock.known and loop.time() < deadline:
            try:
                await self.broker.ticks(self.market.symbols)
            except BrokerError:
                break  # the adapter has said why; restore goes on and says what it can
            if not clock.known:
                await asyncio.sleep(min(self.settings.poll_interval, 0.5))
        if not clock.known:
            self.events.warning(
                "broker",
                f"no live tick in {CLOCK_WAIT_SECONDS:g} s (a closed market?): positions and deals read at "
                f"start take the trade server's clock as {clock.describe()}; give --server-utc-offset if "
                "that is not it",
            )

    def _set_server_clock(self, store: Store) -> None:
        """The adapter's server clock (broker/server_clock.py), before it reads any time; an offset
        learned later is kept for the next start."""
        settings = self.settings
        self.broker.server_clock = server_clock_for(
            settings.server_utc_offset,
            simulated=self.simulated,
            sim_offset_hours=settings.sim_server_utc_offset,
            remembered=store.remembered_server_offset(),
        )

        def remember(event: Event) -> None:
            if isinstance(event, ServerClockLearned):
                store.remember_server_offset(event.offset)

        self._unsubscribe.append(self.events.subscribe(remember))
        clock = self.broker.server_clock
        if clock.offset or not clock.known:  # a terminal on UTC has nothing to say
            self.events.info("broker", f"trade server's clock: {clock.describe()}")

    # ----------------------------------------------------------------- the platform link (issue 5)

    def _link_platform(self) -> None:
        """Queue trade events and command acks for the platform (with --api-url and an agent id)."""
        assert self.store is not None
        self.platform = PlatformLink.from_settings(self.settings, self.store, self.events)
        if self.platform is not None:
            self._unsubscribe.append(self.platform.attach())

    def _start_remote_services(self) -> None:
        """The outbox delivery loop, and the Pusher command source when it is configured."""
        assert self.bus is not None
        if self.platform is not None:
            self.spawn("platform-outbox", self.platform.run())
        acknowledge = self.platform.acknowledge if self.platform is not None else None
        self.pusher = pusher_source(self.settings, self.bus, self.events, acknowledge=acknowledge)
        if self.pusher is not None:
            self.spawn("pusher", self.pusher.run())

    # ----------------------------------------------------------------- the agent loop (issue 6)

    async def _load_pairing(self) -> Settings:
        """Fill in the agent id and key saved by an earlier pairing (agent.json in the config dir)."""
        given = self.settings
        try:
            self.settings = apply_saved_identity(given, say=lambda note: self.events.info("agent", note))
        except AgentFileError as error:
            self.events.error("agent", str(error))
            await self._close_parts()
            raise StartupError(str(error), exit_code=2) from None
        # The key given and the key saved are both secrets, whichever is used.
        self.events.set_secrets((*given.secrets(), *self.settings.secrets()))
        return self.settings

    async def _pair_then_start(self) -> None:
        """Pair (retrying while the platform is unreachable), then start what needs the agent id:
        the platform link, the Pusher source on private-executor-{id}, and the agent loop."""
        paired = await pair_until_done(
            self.settings, self.market.account, self.events, self.agent_status, backoff=self.agent_backoff()
        )
        if paired is not None:
            self.events.set_secrets((*self.settings.secrets(), *paired.secrets()))
            self.settings = paired
            if self._unpaired is not None:  # the link's reporter takes over, in the same loop turn
                self._unpaired()
                self._unpaired = None
            self._link_platform()
        self._start_remote_services()
        self._start_agent()

    def _start_agent(self) -> None:
        """Heartbeat, prices and job polling, over the platform link's client (with an agent id)."""
        assert self.store is not None
        if self.platform is None or self.settings.agent_id is None:
            return
        self.agent = AgentLoop(
            self.settings,
            self.platform,
            self.broker,
            self.market,
            self.store,
            self.events,
            status=self.agent_status,
            strategies_running=self._strategies_running,
            backoff=self.agent_backoff,
        )
        self._unsubscribe.append(self.agent.attach())
        for name, coroutine in self.agent.services():
            self.spawn(name, coroutine)

    def _strategies_running(self) -> int:
        if self.engine is None:
            return 0
        return sum(not runner.paused for runner in self.engine.runners.values())

    # ----------------------------------------------------------------- tasks

    def spawn(self, name: str, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a service as a named task whose unexpected death is logged and reported."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("service %s died", task.get_name(), exc_info=error)
            self.events.error("runtime", f"service {task.get_name()} stopped on an error: {error!r}")
            self.failed.set()

    async def stop(self) -> None:
        self.events.info("runtime", "stopping")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.agent is not None:
            self.agent_status.set_state(OFF)
        self.events.info("runtime", "stopped")
        await self._close_parts()
        self.started = False

    async def _close_parts(self) -> None:
        await self.broker.close()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self.store is not None:
            self.store.close()
            self.store = None
        self._data_lock.release()

    # ----------------------------------------------------------------- helpers for front ends

    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]:
        return self.events.subscribe(subscriber)

    def log(self, level: Level, source: str, message: str) -> None:
        self.events.publish(LogLine(level=level, source=source, message=message))
