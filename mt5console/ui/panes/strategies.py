"""The strategies pane: one row per strategy seen this session, keyed by its id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from mt5console.ui.formatting import DASH, DEFAULT_PALETTE, Palette, age, pnl, set_title, shorten
from mt5console.ui.model import StrategyView
from mt5console.ui.panes.table import Column, KeyedTable

# What matters most comes first: at 80 columns the id, state, position count and P&L are always seen.
COLUMNS = (
    Column("id", "ID"),
    Column("state", "State"),
    Column("symbol", "Symbol"),
    Column("timeframe", "TF"),
    Column("open", "Open", right=True),
    Column("pnl", "P&L all", right=True),  # all-time, not today's: said in the header (see PNL_MEANING)
    Column("bars", "Bars", right=True),  # closed bars evaluated: a quiet strategy is seen at work
    Column("signal", "Last signal"),
    Column("signal_age", "Ago", right=True),
    Column("blocked", "Blocked by"),
    Column("blocked_age", "Ago", right=True),
    Column("name", "Name"),
)
# What "P&L all" is (the help says it): the model's StrategyView.pnl.
PNL_MEANING = (
    "Strategies pane: the strategy's result over all its trades, every closed one since it first "
    "ran (net of commission and swap), the partial closes of its open ones, and what its open positions "
    "show now. Not today's: the account's Today is."
)
STATES = ("running", "paused", "error", "stopped")  # as the title counts them
NAME_WIDTH = 22
SIGNAL_WIDTH = 34
BLOCKED_WIDTH = 40


def state_style(state: str, palette: Palette) -> Style:
    return {
        "running": palette.profit,
        "paused": palette.warning,
        "stopped": palette.muted,
        "error": palette.error + Style(bold=True),
    }.get(state, Style())


def strategy_cells(view: StrategyView, now: datetime, palette: Palette) -> list[Text]:
    return [
        Text(view.strategy_id),
        Text(view.state, style=state_style(view.state, palette)),
        Text(view.symbol or DASH),
        Text(view.timeframe or DASH),
        Text(str(view.open_positions), justify="right"),
        pnl(view.pnl, palette),
        Text(f"{view.bars_evaluated:,}", justify="right", style=palette.muted),
        Text(shorten(view.last_signal, SIGNAL_WIDTH) or DASH),
        Text(age(view.last_signal_time, now), justify="right", style=palette.muted),
        Text(
            shorten(view.last_blocked, BLOCKED_WIDTH) or DASH,
            style=palette.warning if view.last_blocked else "",
        ),
        Text(age(view.last_blocked_time, now), justify="right", style=palette.muted),
        Text(shorten(view.name, NAME_WIDTH)),
    ]


class StrategiesPane(Vertical):
    DEFAULT_CSS = """
    StrategiesPane KeyedTable {
        height: 1fr;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="strategies-pane")
        self.border_title = "Strategies"
        self.palette = DEFAULT_PALETTE
        self.table = KeyedTable(COLUMNS, id="strategies")
        self.views: dict[str, StrategyView] = {}
        # The cells last built for each strategy and what they were built from: 100 rows are
        # rebuilt only where the strategy or one of its "ago" columns changed.
        self._built: dict[str, tuple[StrategyView, str, str, list[Text]]] = {}

    def compose(self) -> ComposeResult:
        yield self.table

    def restyle(self, palette: Palette) -> None:
        self.palette = palette
        self._built.clear()
        self.table.forget_styles()

    def _cells(self, view: StrategyView, now: datetime) -> list[Text]:
        signal_age, blocked_age = age(view.last_signal_time, now), age(view.last_blocked_time, now)
        built = self._built.get(view.strategy_id)
        if built is not None and built[:3] == (view, signal_age, blocked_age):
            return built[3]
        cells = strategy_cells(view, now, self.palette)
        self._built[view.strategy_id] = (view, signal_age, blocked_age, cells)
        return cells

    def show(self, views: Sequence[StrategyView], now: datetime) -> None:
        self.views = {view.strategy_id: view for view in views}
        for gone in set(self._built) - set(self.views):
            del self._built[gone]
        self.table.sync({view.strategy_id: self._cells(view, now) for view in views})
        # In the title: the panes draw only their top border, so a subtitle would not be seen. A strategy
        # in error is counted there too, so that it is seen even when its row is scrolled away.
        counts = {state: sum(1 for view in views if view.state == state) for state in STATES}
        others = [f"{counts[state]} {state}" for state in STATES[1:] if counts[state]]
        set_title(self, ", ".join([f"Strategies · {counts['running']} running", *others]))

    def selected(self) -> StrategyView | None:
        key = self.table.selected_key()
        return None if key is None else self.views.get(key)
