"""The Textual console: ``mt5console`` without ``--no-ui``.

One asyncio loop: the Runtime starts inside the app (an async worker started on mount) and stops
when the user quits. The core's events arrive as ``CoreEvent`` messages; key actions are commands on
the runtime's command bus, run as async workers (nothing here blocks: the broker's calls already run
on its own thread). Every worker's failure is caught in ``on_worker_state_changed``, the one place
that logs it and shows it as a notification.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker, WorkerState

from mt5console.core.broker.errors import BrokerError
from mt5console.core.commands.bus import Command, CommandResult
from mt5console.core.events import Event, PositionClosed, ServerClockLearned, TradeUpdate
from mt5console.core.limits import DEAL_TYPE_BALANCE, deal_result
from mt5console.core.runtime import Runtime, StartupError
from mt5console.core.settings import Settings
from mt5console.core.store import StrategyRecord, StrategyState
from mt5console.core.strategy.executor import RunnerStatus
from mt5console.stop_signals import CONSOLE_SIGNALS, on_stop_signals
from mt5console.ui.formatting import Palette
from mt5console.ui.messages import CoreEvent, RuntimeReady
from mt5console.ui.model import ConsoleModel, Pane
from mt5console.ui.screens.confirm import ConfirmScreen
from mt5console.ui.screens.main import KEY_NAMES, KEYS, MainScreen
from mt5console.ui.stored_activity import EVENTS_READ, last_activity
from mt5console.ui.themes import SHIPPED_THEME_DIR, console_variable_defaults, load_themes, user_theme_dir

REFREEZE_SECONDS = 600.0
STOPPED_SHOWN_FOR = timedelta(days=1)  # how long a stopped strategy stays in the pane across restarts
STOP_TIMEOUT = 1.5  # seconds, as the headless front end: the user asked to quit, so quit
# Toasts sit over the log's newest lines: they go soon, and what each says is in the log too (the
# core logs every refusal, failure and theme problem; the screen's own hints are written there).
WARNING_SECONDS = 6.0
ERROR_SECONDS = 10.0


class ConsoleNotReady(Exception):
    """A key was pressed before the runtime finished starting."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ConsoleApp(App[None]):
    CSS_PATH = "console.tcss"
    TITLE = "mt5console"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(
        self,
        settings: Settings,
        *,
        module: Callable[[], Any] | None = None,
        clock: Callable[[], datetime] = utc_now,
        theme_dirs: Iterable[Path] | None = None,
    ) -> None:
        """``module``: the MT5-like module factory handed to the Runtime (tests give a simulator on a
        frozen clock); ``clock``: what the screen calls now (the header's time, ages, today's P&L)."""
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.runtime = Runtime(settings, module=module)
        self.theme_dirs = (
            tuple(theme_dirs)
            if theme_dirs is not None
            else (SHIPPED_THEME_DIR, user_theme_dir(settings.config_dir))
        )
        self.catalog = load_themes(self.theme_dirs)
        for theme in self.catalog.themes.values():
            self.register_theme(theme)
        self.model = ConsoleModel(runners=self._runners, realised_profit=self._realised_profit)
        self.main = MainScreen(
            self.model,
            broker=settings.broker,
            simulated=self.runtime.simulated,
            clock=clock,
            verbose=settings.verbose,
            server_clock=lambda: self.runtime.broker.server_clock,  # replaced at start: read each time
        )
        self.palette = Palette.from_variables({})
        self.panes_ready = asyncio.Event()  # set once the runtime started and the panes show it
        self._unsubscribe: Callable[[], None] | None = None
        self._stopping = False
        self._restore_signals: Callable[[], None] | None = None
        self._terminal_gone = False  # a SIGHUP: nothing to restore the screen on
        self.startup_error: str | None = None
        self._today_date: date | None = None  # the UTC day today's P&L was summed for
        self._today_wanted = False
        self._today_running = False

    # ----------------------------------------------------------------- read-only views of the core

    def _runners(self) -> Mapping[str, Any]:
        engine = self.runtime.engine
        return {} if engine is None else engine.runners

    def _realised_profit(self, strategy_id: str) -> float:
        store = self.runtime.store
        if store is None:
            return 0.0
        closed = sum(trade.profit for trade in store.closed_trades(strategy_id, limit=100_000))
        # A trade still open has booked the profit of its partial closes already: it counts too, or
        # the figure would drop at each partial close (the open part's profit is the floating one).
        return closed + sum(trade.profit for trade in store.open_trades(strategy_id))

    def _stopped_worth_showing(self) -> list[StrategyRecord]:
        """Stored strategies that do not run: those with a trade still open, and those whose state
        changed in the last day (a kill switch before a restart); older ones stay out of the pane."""
        store = self.runtime.store
        if store is None:
            return []
        holding = {trade.strategy_id for trade in store.open_trades()}
        since = self.clock() - STOPPED_SHOWN_FOR
        return [
            record
            for record in store.list_strategies()
            if record.state in (StrategyState.STOPPED, StrategyState.ERROR)
            and (record.id in holding or record.updated_at >= since)
        ]

    def _stored_activity(self) -> dict[str, RunnerStatus]:
        """The strategies' last signals and refusals before this session, from the stored log."""
        store = self.runtime.store
        if store is None:
            return {}
        return last_activity(store.recent_events(limit=EVENTS_READ), set(self.model.strategies))

    # ----------------------------------------------------------------- start

    def get_default_screen(self) -> Screen[Any]:
        return self.main

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return console_variable_defaults(self.current_theme)

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        name, problem = self.catalog.choose(self.settings.theme)
        self.theme = name
        self._theme_changed(self.current_theme)
        self._unsubscribe = self.runtime.subscribe(self._forward)
        for message in (*self.catalog.problems, *([problem] if problem else [])):
            self.runtime.events.warning("console", message)
            self.notify(message, title="Theme", severity="warning", timeout=WARNING_SECONDS)
        for note in self.catalog.notes:
            self.runtime.events.info("console", note)
        self.run_worker(self._start_runtime(), name="runtime start", group="runtime", exit_on_error=False)
        self._restore_signals = on_stop_signals(
            asyncio.get_running_loop(), CONSOLE_SIGNALS, self._stop_signal
        )

    def _stop_signal(self, name: str) -> None:
        """A stop from outside (a service manager, the SSH session gone): no question asked, as nobody
        may be there to answer it; strategies start again with the console, positions stay open."""
        self.runtime.events.info("console", f"received {name}")
        if name == "SIGHUP":
            self._terminal_gone = True
        self._begin_shutdown()

    def _begin_shutdown(self) -> None:
        """Start the shutdown once. A second request (a SIGHUP right after a SIGTERM, a signal after `q`)
        must not cancel the one under way: cancelled, it never reached ``exit`` and the console hung."""
        if self._stopping:
            return
        self.run_worker(self.shutdown(), name="quit", group="quit", exit_on_error=False)

    def _forward(self, event: Event) -> None:
        self.post_message(CoreEvent(event))

    async def _start_runtime(self) -> None:
        try:
            await self.runtime.start()
        except StartupError as error:
            self.startup_error = f"mt5console: {error}"  # printed by run_console once the screen is gone
            self.exit(return_code=error.exit_code)
            return
        self.post_message(RuntimeReady())
        self.run_worker(self._watch_failure(), name="runtime watch", group="runtime", exit_on_error=False)

    def on_runtime_ready(self, _: RuntimeReady) -> None:
        # What exists now (libraries, strategies, indicator caches, widgets) lives as long as the
        # console: take it out of the garbage collector's full passes, which otherwise scan it all
        # every ~15 s and hold the loop for 100+ ms, a stall a key press would wait behind.
        gc.collect()
        gc.freeze()
        self.set_interval(REFREEZE_SECONDS, self._refreeze)
        self.model.remember_runners()
        self.model.remember_stored(self._stopped_worth_showing())
        self.model.earlier.update(self._stored_activity())
        self.main.redraw(everything=True)
        symbols = {*self.runtime.market.symbols, *(r.strategy.symbol for r in self._runners().values())}
        self.run_worker(
            self._learn_digits(symbols), name="symbol digits", group="digits", exit_on_error=False
        )
        self._refresh_today()
        self.set_interval(30, self._new_day)

    def _refreeze(self) -> None:
        """What lived through the last minutes (log lines, cached drawings) joins the frozen part, so
        that the collector's full passes stay short however long the console runs."""
        gc.collect()
        gc.freeze()

    async def _learn_digits(self, symbols: Iterable[str]) -> None:
        for symbol in sorted(symbols):
            if symbol in self.main.digits:
                continue
            try:
                self.main.digits[symbol] = (await self.runtime.broker.symbol(symbol)).digits
            except BrokerError:
                continue  # an unknown symbol keeps the generic price format
        self.main.redraw({Pane.POSITIONS, Pane.CHART})
        self.panes_ready.set()

    def _new_day(self) -> None:
        """At 00:00 UTC "today" starts again: yesterday's closed trades leave today's P&L."""
        if self.runtime.started and self.clock().date() != self._today_date:
            self._refresh_today()

    def _refresh_today(self) -> None:
        """Sum today's deals again (once more after the current sum, if one is under way)."""
        self._today_wanted = True
        if not self._today_running:
            self._today_running = True
            self.run_worker(self._today(), name="today's P&L", group="today", exit_on_error=False)

    async def _today(self) -> None:
        """Today's closed result from the terminal's deal history (what a restart cannot forget)."""
        try:
            while self._today_wanted:
                self._today_wanted = False
                now = self.clock()
                self._today_date = now.date()
                midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
                deals = await self.runtime.broker.deals(midnight, now + timedelta(days=1))
                self.main.today_realised = sum(deal_result(d) for d in deals if d.type != DEAL_TYPE_BALANCE)
                self.main.redraw({Pane.ACCOUNT})
        finally:
            self._today_running = False

    async def _watch_failure(self) -> None:
        await self.runtime.failed.wait()
        self.model.terminal, self.model.terminal_detail = "failed", "a service stopped: see the log"
        self.main.redraw({Pane.HEADER})
        self.notify(
            "A service of the console stopped on an error (see the log). Quit and start again.",
            title="Runtime",
            severity="error",
            timeout=ERROR_SECONDS,  # the header says "failed" for as long as it lasts
        )

    # ----------------------------------------------------------------- events

    def on_core_event(self, message: CoreEvent) -> None:
        self.main.apply(message.event)
        if self.runtime.started and _changes_today(message.event):
            self._refresh_today()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's failure is reported: in the log (and so on disk) and on screen."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        message = f"{event.worker.name} failed: {type(error).__name__}: {error}"
        self.runtime.events.error("console", message)
        self.notify(message, title="Error", severity="error", timeout=ERROR_SECONDS)

    # ----------------------------------------------------------------- commands

    def submit(self, name: str, parameters: Mapping[str, Any]) -> Worker[CommandResult]:
        """Send a command from the keyboard through the command bus (validated, logged, stored)."""
        return self.run_worker(
            self._submit(name, dict(parameters)), name=name, group="commands", exit_on_error=False
        )

    async def _submit(self, name: str, parameters: dict[str, Any]) -> CommandResult:
        bus = self.runtime.bus
        if bus is None:
            raise ConsoleNotReady("the console is still starting; try again in a moment")
        result = await bus.submit(Command(name=name, parameters=parameters, source="keyboard"))
        if not result.ok:
            self.notify(result.error, title=f"{name} refused", severity="warning", timeout=WARNING_SECONDS)
        return result

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        if screen is self.main:
            for key, action, label, text in KEYS:
                shown = KEY_NAMES.get(key, key)
                yield SystemCommand(
                    f"{label} ({shown})", text[0].upper() + text[1:], getattr(screen, f"action_{action}")
                )
        for command in super().get_system_commands(screen):
            # Textual's own "Quit" says "as soon as possible", yet it asks as q does: "Quit (q)" is it.
            if not (screen is self.main and command.title == "Quit"):
                yield command

    # ----------------------------------------------------------------- themes

    def _theme_changed(self, theme: Theme) -> None:
        self.palette = Palette.from_variables(self.theme_variables)
        if self.main.is_mounted:
            self.main.restyle(self.palette)

    def next_theme(self) -> str:
        name = self.catalog.next_after(self.theme)
        self.theme = name
        self.runtime.events.info("console", f"theme {name}")
        return name

    # ----------------------------------------------------------------- quit

    async def action_quit(self) -> None:
        self.request_quit()

    def request_quit(self) -> None:
        running = self.model.running_count  # paused ones too: they still manage their positions
        positions = len(self.model.positions)
        if not running and not positions:
            self._begin_shutdown()
            return
        parts = []
        if running:
            paused = sum(1 for runner in self._runners().values() if runner.paused and not runner.stopped)
            parts.append(
                f"{running} strateg{'y is' if running == 1 else 'ies are'} active"
                + (f" ({paused} paused)" if paused else "")
            )
        if positions:
            parts.append(f"{positions} position(s) are open")

        def answered(yes: bool | None) -> None:
            if yes:
                self._begin_shutdown()

        self.push_screen(
            ConfirmScreen(
                "Quit the console?",
                " and ".join(parts) + ". Active strategies start again with the console; "
                "open positions stay open in the terminal (their stops and targets still hold).",
                yes="Quit",
                no="Stay",
            ),
            answered,
        )

    async def shutdown(self) -> None:
        """Stop the runtime (bounded in time), then leave."""
        if self._stopping:
            return
        self._stopping = True
        await self._stop_runtime()
        code = 1 if self.runtime.failed.is_set() else 0
        if self._terminal_gone:
            # The terminal went away (SIGHUP): Textual's shutdown would restore a screen that is no
            # longer there, and its writer thread then blocks for ever, holding the data dir, so the
            # trader could not start the console again. The runtime has stopped and every record is
            # on disk: leave at once.
            os._exit(code)
        self.exit(return_code=code)

    async def _stop_runtime(self) -> None:
        self.workers.cancel_group(self, "runtime")
        try:
            await asyncio.wait_for(self.runtime.stop(), timeout=STOP_TIMEOUT)
        except TimeoutError:
            self.runtime.events.warning("console", "stop took too long; exiting anyway")
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        gc.unfreeze()  # what was frozen at start may be collected again (it matters in the tests)

    async def on_unmount(self) -> None:
        if self._restore_signals is not None:
            self._restore_signals()
            self._restore_signals = None
        if self.runtime.started or self.runtime.store is not None:  # left without shutdown()
            await self._stop_runtime()


def run_console(settings: Settings) -> int:
    """Run the console until the user quits; the exit code follows INTERFACE.md."""
    app = ConsoleApp(settings)
    app.run()
    if app.startup_error:
        print(app.startup_error, file=sys.stderr)
    return app.return_code or 0


def _changes_today(event: Event) -> bool:
    """Whether today's closed result may have changed: a close, a partial close, or the trade server's
    clock learned (the deals' times, and so which of them are today's, were read with a guess)."""
    if isinstance(event, TradeUpdate):
        return event.event == "partial"
    return isinstance(event, PositionClosed | ServerClockLearned)
