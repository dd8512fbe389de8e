"""``?``: every key and command of the console, and where its themes come from."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mt5console.ui.panes.strategies import PNL_MEANING
from mt5console.ui.screens.confirm import DIALOG_CSS


def help_table(keys: Sequence[tuple[str, str]], themes: Sequence[str], user_themes: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, description in keys:
        table.add_row(key, description)
    table.add_row("ctrl+p", "command palette: every action above by name, and the themes")
    table.add_row(Text("P&L all", style="bold"), PNL_MEANING)
    table.add_row(Text("themes", style="bold"), ", ".join(themes) or "none")
    table.add_row("", f"shipped, and yours: *.toml files in {user_themes}; --theme NAME picks one at start")
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = (
        DIALOG_CSS.replace("{name}", "HelpScreen")
        + """
    HelpScreen > VerticalScroll {
        width: 76;
        max-height: 90%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """
    )
    BINDINGS = [Binding("escape,question_mark,q", "dismiss_help", "Close help")]

    def __init__(self, keys: Sequence[tuple[str, str]], themes: Sequence[str], user_themes: str) -> None:
        super().__init__()
        self._key_rows = keys
        self._theme_names = themes
        self._user_themes = user_themes

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys and commands"
            scroll.border_subtitle = "Esc closes"
            yield Static(help_table(self._key_rows, self._theme_names, self._user_themes))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
