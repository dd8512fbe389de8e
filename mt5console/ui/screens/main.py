"""The main screen: the panes, the keys, and how the core's events reach the panes.

Events change the model at once; the panes are redrawn once per burst of events (a poll of 100
strategies publishes many), and every second for the clocks and ages. Every key that acts goes through
the command bus as a ``keyboard`` command, so it is validated, logged and stored like a remote one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.events import Resize
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from mt5console.core.broker.server_clock import ServerClock
from mt5console.core.events import Event, Level, LogLine
from mt5console.core.logsink import FrontEndLines
from mt5console.ui.formatting import Palette
from mt5console.ui.model import ConsoleModel, Pane
from mt5console.ui.panes.account import AccountPane
from mt5console.ui.panes.chart import ChartPane
from mt5console.ui.panes.header import StatusLine
from mt5console.ui.panes.log import WIDE, LogPane
from mt5console.ui.panes.positions import PositionsPane
from mt5console.ui.panes.strategies import StrategiesPane
from mt5console.ui.screens.confirm import ConfirmScreen, KillSwitchScreen
from mt5console.ui.screens.help import HelpScreen
from mt5console.ui.themes import user_theme_dir

if TYPE_CHECKING:
    from mt5console.ui.app import ConsoleApp

# (key, action, footer label, what it does): the one list the footer, the palette and help are made from.
KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("s", "stop_strategy", "Stop", "stop the selected strategy (its positions stay open)"),
    ("p", "pause_strategy", "Pause", "pause / resume the selected strategy"),
    ("S", "kill_switch", "Kill", "kill switch: stop ALL strategies; asks whether to close positions"),
    ("x", "close_position", "Close", "close the selected position (asks first)"),
    ("X", "close_all", "Close all", "close all positions (asks first)"),
    ("tab", "next_pane", "Pane", "next pane (shift+tab: previous)"),
    ("slash", "filter_log", "Find", "filter the log to lines with these words (Esc clears)"),
    ("t", "next_theme", "Theme", "next theme"),
    ("question_mark", "help", "Help", "this help"),
    ("q", "quit_console", "Quit", "quit (asks while strategies run or positions are open)"),
)
KEY_NAMES = {"slash": "/", "question_mark": "?"}
LOG = "log"  # with the Pane names: new log lines to draw
HINT_SECONDS = 4.0  # a key's "cannot do that" toast: short, its words stay in the log


def key_help() -> list[tuple[str, str]]:
    return [(KEY_NAMES.get(key, key), text) for key, _, _, text in KEYS]


class MainScreen(Screen[None]):
    BINDINGS = [
        # "/" has priority: it acts as the app reads it, before the keys typed after it are sent to
        # the focused widget. Otherwise a burst ("/sp": a paste, a busy frame) sends "s" and "p" to
        # the strategies table, where they stop and pause a strategy instead of being filter words.
        *(
            Binding(key, action, label, key_display=KEY_NAMES.get(key), priority=key == "slash")
            for key, action, label, _ in KEYS
        ),
        Binding("shift+tab", "previous_pane", "Previous pane", show=False),
        # Esc in the filter line clears it there; once Enter kept a filter, Esc anywhere clears it.
        Binding("escape", "clear_log_filter", "Clear filter", show=False),
    ]

    def __init__(
        self,
        model: ConsoleModel,
        *,
        broker: str,
        simulated: bool,
        clock: Callable[[], datetime],
        verbose: bool,
        server_clock: Callable[[], ServerClock] | None = None,
    ) -> None:
        super().__init__(id="main")
        self.model = model
        self.clock = clock
        self.front_end_lines = FrontEndLines(verbose=verbose)
        self.status = StatusLine(
            model, broker=broker, simulated=simulated, clock=clock, server_clock=server_clock
        )
        self.account = AccountPane()
        self.chart = ChartPane()
        self.positions = PositionsPane()
        self.strategies = StrategiesPane()
        self.log_pane = LogPane()
        self.footer = Footer(compact=True)
        self.digits: dict[str, int] = {}
        self.today_realised: float | None = None
        self._dirty: set[str] = set()
        self._redraw_pending = False

    @property
    def console_app(self) -> ConsoleApp:
        from mt5console.ui.app import ConsoleApp

        assert isinstance(self.app, ConsoleApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield self.status
        with Horizontal(id="top"):
            yield self.account
            yield self.chart
        yield self.positions
        yield self.strategies
        yield self.log_pane
        yield self.footer

    def on_resize(self, event: Resize) -> None:
        # At 80 columns every key fits in the footer only without the palette's hint (help names it).
        wide = event.size.width >= WIDE
        if self.footer.show_command_palette != wide:
            self.footer.show_command_palette = wide
            # The footer reads this only when it composes (Textual's reactive does not recompose):
            # without this, narrowing a running console leaves the hint and cuts off "? Help q Quit".
            if self.footer.is_mounted:
                self.footer.refresh(recompose=True)

    def on_mount(self) -> None:
        self.strategies.table.focus()
        self.set_interval(1.0, self._every_second)
        self.restyle(self.console_app.palette)  # the theme may have been applied before we were mounted

    # ----------------------------------------------------------------- events -> panes

    def apply(self, event: Event) -> None:
        line = self.front_end_lines.line(event)  # the lines headless prints
        changed = self.model.apply(event)
        if line is not None:
            self.log_pane.add(line)
            changed.add(LOG)
        if changed:
            self._dirty |= changed
            if not self._redraw_pending:
                self._redraw_pending = True
                self.call_later(self._redraw_dirty)  # after the events already queued: one redraw

    def _redraw_dirty(self) -> None:
        self._redraw_pending = False
        dirty, self._dirty = self._dirty, set()
        self.redraw(dirty)

    def _every_second(self) -> None:
        self.redraw({Pane.STRATEGIES})

    def redraw(self, panes: set[str] | None = None, *, everything: bool = False) -> None:
        if everything:
            panes = {Pane.HEADER, Pane.ACCOUNT, Pane.POSITIONS, Pane.STRATEGIES, Pane.CHART}
        panes = panes or set()
        with self.app.batch_update():
            if Pane.HEADER in panes:
                self.status.redraw()
            if Pane.ACCOUNT in panes:
                self.account.show(self.model.account, self.today_pnl())
            if Pane.POSITIONS in panes:
                self.positions.show(self.model.positions, self.model.owners(), self.digits)
            if Pane.STRATEGIES in panes:
                self.strategies.show(self.model.strategy_views(), self.clock())
            if Pane.CHART in panes:
                self.redraw_chart()
            if LOG in panes:
                # Last: a key's effect (a table row) and the log lines it caused are refreshed
                # together, so they reach the terminal in the same frame.
                self.log_pane.flush()

    def today_pnl(self) -> float | None:
        """Today's result: deals closed since 00:00 UTC plus what the open positions show now."""
        account = self.model.account
        if account is None or self.today_realised is None:
            return None
        return self.today_realised + account.profit

    def redraw_chart(self) -> None:
        if not self.chart.display:
            return
        view = self.strategies.selected()
        runtime = self.console_app.runtime
        if view is not None and view.symbol and view.timeframe:
            bars = runtime.market.closed_bars(view.symbol, view.timeframe)
            closes = None if bars is None else [float(c) for c in bars["close"]]
            self.chart.show_bars(view.symbol, view.timeframe, closes, self.digits.get(view.symbol))
        else:
            self.chart.show_equity(self.model.equity)

    def restyle(self, palette: Palette) -> None:
        for pane in (self.status, self.account, self.positions, self.strategies, self.log_pane):
            pane.restyle(palette)
        self.redraw(everything=True)

    @on(DataTable.RowHighlighted, "#strategies")
    def _strategy_highlighted(self) -> None:
        self.redraw_chart()

    # ----------------------------------------------------------------- actions

    def hint(self, message: str, level: Level) -> None:
        """Answer a key that cannot act: a short toast, and the same words in the log pane (a toast
        covers the log's newest lines, and goes: what it said stays readable there). Only on screen:
        the key changed nothing, so there is nothing for the stored log."""
        self.apply(LogLine(level=level, source="keys", message=message, time=self.clock()))
        severity: SeverityLevel = "warning" if level is Level.WARNING else "information"
        self.notify(message, severity=severity, timeout=HINT_SECONDS)

    def _submit(self, name: str, parameters: Mapping[str, Any]) -> None:
        self.console_app.submit(name, parameters)

    def _no_strategy_selected(self) -> None:
        if self.strategies.views:
            self.hint("Select a strategy first (tab to the Strategies pane).", Level.WARNING)
        else:  # nothing to select: say so, not "select one"
            self.hint("No strategy has run in this session (the log says why).", Level.INFO)

    def action_stop_strategy(self) -> None:
        view = self.strategies.selected()
        if view is None:
            self._no_strategy_selected()
        elif view.state not in ("running", "paused"):
            self.hint(f"{view.strategy_id} is already {view.state}.", Level.WARNING)
        else:
            self._submit("STOP_STRATEGY", {"strategyId": view.strategy_id})

    def action_pause_strategy(self) -> None:
        view = self.strategies.selected()
        if view is None:
            self._no_strategy_selected()
        elif view.state == "paused":
            self._submit("RESUME_STRATEGY", {"strategyId": view.strategy_id})
        elif view.state == "running":
            self._submit("PAUSE_STRATEGY", {"strategyId": view.strategy_id})
        else:
            self.hint(f"{view.strategy_id} is {view.state}: nothing to pause.", Level.WARNING)

    def action_kill_switch(self) -> None:
        def answered(close: bool | None) -> None:
            if close is not None:
                self._submit("STOP_ALL", {"closePositions": close})

        positions = self.model.positions
        magics = {runner.magic for runner in self.model.runners().values() if not runner.stopped}
        theirs = sum(1 for position in positions if position.magic in magics)
        self.app.push_screen(
            KillSwitchScreen(self.model.running_count, len(positions), theirs=theirs), answered
        )

    def action_close_position(self) -> None:
        if not self.model.positions:
            self.hint("No position is open.", Level.INFO)  # not "select one": none to select
            return
        ticket = self.positions.selected_ticket()
        position = None if ticket is None else self.model.position(ticket)
        if position is None:
            self.hint("Select a position first (tab to the Positions pane).", Level.WARNING)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._submit("CLOSE_POSITION", {"ticket": position.ticket})

        self.app.push_screen(
            ConfirmScreen(
                f"Close position #{position.ticket}?",
                f"{position.side.value} {position.volume:g} {position.symbol} opened at "
                f"{position.price_open}, P&L now {position.profit + position.swap:+,.2f}.",
                yes="Close it",
                no="Keep it",
            ),
            answered,
        )

    def action_close_all(self) -> None:
        count = len(self.model.positions)
        if count == 0:
            self.hint("No position is open.", Level.INFO)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._submit("CLOSE_ALL", {})

        total = sum(p.profit + p.swap for p in self.model.positions)
        # Said only when true: with none running, nothing "keeps running".
        running = " Strategies keep running." if self.model.running_count else ""
        self.app.push_screen(
            ConfirmScreen(
                f"Close ALL {count} position(s)?",
                f"Every open position of the account is closed at market, manual ones too "
                f"(P&L now {total:+,.2f}).{running}",
                yes="Close all",
                no="Keep them",
            ),
            answered,
        )

    def action_next_pane(self) -> None:
        self.focus_next()

    def action_previous_pane(self) -> None:
        self.focus_previous()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" typed in the filter line is a character of the filter.
        return not (action == "filter_log" and self.focused is self.log_pane.filter_input)

    def action_filter_log(self) -> None:
        self.log_pane.open_filter()

    def action_clear_log_filter(self) -> None:
        if self.log_pane.filtering:
            self.log_pane.clear_filter()

    def action_next_theme(self) -> None:
        self.console_app.next_theme()

    def action_help(self) -> None:
        console = self.console_app
        user_themes = user_theme_dir(console.settings.config_dir)
        self.app.push_screen(HelpScreen(key_help(), console.catalog.names, str(user_themes)))

    def action_quit_console(self) -> None:
        self.console_app.request_quit()
