"""The positions pane: the terminal's open positions, keyed by ticket, with a totals row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from mt5console.core.broker.models import Position, Side
from mt5console.ui.formatting import DEFAULT_PALETTE, Palette, lots, pnl, price, set_title
from mt5console.ui.panes.table import Column, KeyedTable

TOTAL = "total"
COLUMNS = (
    Column("ticket", "Ticket"),
    Column("symbol", "Symbol"),
    Column("side", "Side"),
    Column("volume", "Lots", right=True),
    Column("open", "Open", right=True),
    Column("price", "Price", right=True),
    Column("pnl", "P&L", right=True),
    Column("sl", "SL", right=True),
    Column("tp", "TP", right=True),
    Column("strategy", "Strategy"),
)


def position_cells(position: Position, owner: str | None, digits: int | None, palette: Palette) -> list[Text]:
    side_style = palette.profit if position.side is Side.BUY else palette.loss
    return [
        Text(str(position.ticket)),
        Text(position.symbol),
        Text(position.side.value, style=side_style),
        Text(lots(position.volume), justify="right"),
        Text(price(position.price_open, digits), justify="right"),
        Text(price(position.price_current, digits), justify="right"),
        pnl(position.profit + position.swap, palette),
        Text(price(position.sl, digits), justify="right"),
        Text(price(position.tp, digits), justify="right"),
        Text(owner or "manual", style=Style() if owner else palette.muted),
    ]


def total_cells(positions: Sequence[Position], palette: Palette) -> list[Text]:
    bold = Style(bold=True)
    count = len(positions)
    return [
        Text("Total", style=bold),
        Text(f"{count} open", style=palette.muted),
        Text(""),
        Text(lots(sum(p.volume for p in positions)), style=bold, justify="right"),
        Text(""),
        Text(""),
        pnl(sum(p.profit + p.swap for p in positions), palette, bold=True),
        Text(""),
        Text(""),
        Text(""),
    ]


class PositionsPane(Vertical):
    DEFAULT_CSS = """
    PositionsPane KeyedTable {
        height: 1fr;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="positions-pane")
        self.border_title = "Positions"
        self.palette = DEFAULT_PALETTE
        self.table = KeyedTable(COLUMNS, pinned=TOTAL, id="positions")

    def compose(self) -> ComposeResult:
        yield self.table

    def restyle(self, palette: Palette) -> None:
        self.palette = palette
        self.table.forget_styles()

    def show(
        self, positions: Sequence[Position], owners: Mapping[int, str], digits: Mapping[str, int]
    ) -> None:
        rows = {
            str(p.ticket): position_cells(p, owners.get(p.magic), digits.get(p.symbol), self.palette)
            for p in positions
        }
        self.table.sync(rows, total_cells(positions, self.palette))
        set_title(self, f"Positions · {len(positions)} open" if positions else "Positions · none open")

    def selected_ticket(self) -> int | None:
        key = self.table.selected_key()
        return None if key is None else int(key)
