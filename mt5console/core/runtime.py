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
from typing import Any

from mt5console.core.agent.link import PlatformLink
from mt5console.core.broker.connect import initialize_kwargs, module_factory
from mt5console.core.broker.errors import TerminalUnavailable
from mt5console.core.broker.models import AccountState
from mt5console.core.broker.mt5 import Broker
from mt5console.core.commands.bus import CommandBus
from mt5console.core.commands.files import start_strategy_files
from mt5console.core.commands.pusher import PusherSource, pusher_source
from mt5console.core.events import Event, EventBus, Level, LogLine
from mt5console.core.logsink import LogSink
from mt5console.core.market import MarketData
from mt5console.core.settings import Settings
from mt5console.core.store import Store
from mt5console.core.strategy.engine import StrategyEngine

log = logging.getLogger(__name__)


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
        self._sink: LogSink | None = None
        self.broker = Broker(
            module or module_factory(settings),
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
        self.started = False
        self.failed = asyncio.Event()  # set when a service task died: front ends should stop

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
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
        try:
            account = await self.broker.connect(attempts=settings.connect_attempts)
        except TerminalUnavailable as error:
            self.events.error("runtime", str(error))
            await self._close_parts()
            raise StartupError(str(error), exit_code=3) from None
        except ValueError as error:  # the simulator refused its settings (a bad --sim-data file...)
            message = f"simulated terminal: {error}"
            if settings.sim_data is not None and "symbol=" in message:
                message = message.replace("pass symbol=", "give --sim-symbol")
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
        self.market.account = account
        self.engine = StrategyEngine(
            self.broker, self.market, self.store, self.events, limits=settings.limits
        )
        self.bus = CommandBus(self.engine, self.store, self.events)
        self._link_platform()  # before restore: positions adopted at start are reported too
        await self.engine.restore()
        if settings.strategies is not None:
            await start_strategy_files(settings.strategies, self.bus, self.events)
        positions = await self.broker.positions()
        running = sum(not r.paused for r in self.engine.runners.values())
        self.events.info(
            "runtime",
            f"ready: {running} strateg{'y' if running == 1 else 'ies'} running, "
            f"{len(positions)} position(s) open, tracking {', '.join(self.market.symbols)}",
        )
        self.spawn("market-data", self.market.run())
        self._start_remote_services()
        self.started = True

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

    # ----------------------------------------------------------------- helpers for front ends

    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]:
        return self.events.subscribe(subscriber)

    def log(self, level: Level, source: str, message: str) -> None:
        self.events.publish(LogLine(level=level, source=source, message=message))
