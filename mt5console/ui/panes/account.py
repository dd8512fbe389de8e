"""The account pane: balance, equity, margin, free margin, margin level, today's P&L, currency, leverage.

Laid out as label/value pairs in as many columns as the width allows: three rows at 80 columns,
two at 200.
"""

from __future__ import annotations

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.events import Resize
from textual.widgets import Static

from mt5console.core.broker.models import AccountState
from mt5console.ui.formatting import DASH, DEFAULT_PALETTE, Palette, money, pnl

PAIR_WIDTH = 26  # label + value + gap: "Free margin    9,990.70   "


class AccountPane(Static):
    DEFAULT_CSS = """
    AccountPane {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="account")
        self.border_title = "Account"
        self.palette = DEFAULT_PALETTE
        self.account: AccountState | None = None
        self.today: float | None = None
        self._rows = 0

    def restyle(self, palette: Palette) -> None:
        self.palette = palette
        self.redraw()

    def show(self, account: AccountState | None, today: float | None) -> None:
        if account == self.account and today == self.today:
            return
        self.account, self.today = account, today
        self.redraw()

    def on_resize(self, _: Resize) -> None:
        # Redrawn after the layout that resized us: a new row count asked for from inside that
        # layout is lost, and the old height would cut the last row (Currency, Leverage) off.
        self.call_after_refresh(self.redraw)

    def pairs(self) -> list[tuple[str, Text]]:
        account = self.account
        if account is None:
            return [("Account", Text("connecting…", style=self.palette.muted))]
        level = f"{account.margin_level:,.0f}%" if account.margin > 0 else DASH
        level_style = Style()
        if account.margin > 0 and account.margin_level < 200:
            level_style = self.palette.error if account.margin_level < 100 else self.palette.warning
        today = Text(DASH) if self.today is None else pnl(self.today, self.palette)
        return [
            ("Balance", Text(money(account.balance))),
            ("Equity", Text(money(account.equity), style=Style(bold=True))),
            ("Today", today),
            ("Margin", Text(money(account.margin))),
            ("Free margin", Text(money(account.margin_free))),
            ("Level", Text(level, style=level_style)),
            ("Currency", Text(account.currency)),
            ("Leverage", Text(f"1:{account.leverage}")),
        ]

    def redraw(self) -> None:
        pairs = self.pairs()
        width = self.content_region.width or 78
        per_row = max(1, min(len(pairs), width // PAIR_WIDTH))
        grid = Table.grid(padding=(0, 1), expand=False)
        for column in range(per_row):
            if column:
                grid.add_column(width=1)  # a wider gap between pairs than inside one
            grid.add_column(style=self.palette.muted, no_wrap=True)
            grid.add_column(justify="right", no_wrap=True, min_width=10)
        for start in range(0, len(pairs), per_row):
            row: list[Text | str] = []
            for index, (label, value) in enumerate(pairs[start : start + per_row]):
                row.extend([label, value] if index == 0 else ["", label, value])
            grid.add_row(*row)
        # A new layout of the whole screen only when the pane's height changes (a new row count):
        # the account changes every second and laying out 200x50 costs tens of milliseconds.
        rows = -(-len(pairs) // per_row)
        self.update(grid, layout=rows != self._rows)
        self._rows = rows
