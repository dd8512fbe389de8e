"""A small chart: the closes of the selected strategy's last bars, or the account's equity.

Shown only where there is room for it (the wide layout); at 80 columns the tables need every line.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from mt5console.ui.formatting import money, price

BARS = 90


class ChartPane(Vertical):
    DEFAULT_CSS = """
    ChartPane Sparkline {
        height: 1fr;
    }
    ChartPane Label {
        width: 1fr;
        color: $text-muted;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="chart-pane")
        self.border_title = "Chart"
        self.sparkline = Sparkline([], id="chart")
        self.caption = Label("", id="chart-caption")
        self.subject: tuple[str, str] | None = None  # (symbol, timeframe) drawn, None: equity

    def compose(self) -> ComposeResult:
        yield self.sparkline
        yield self.caption

    def _caption(self, text: str) -> None:
        self.caption.update(text, layout=False)  # always one line

    def show_bars(
        self, symbol: str, timeframe: str, closes: Sequence[float] | None, digits: int | None
    ) -> None:
        """The last closes of ``symbol`` ``timeframe``; ``closes`` None: the market data does not
        follow it (no running strategy reads it, e.g. that of a stopped strategy)."""
        self.subject = (symbol, timeframe)
        data = [] if closes is None else list(closes[-BARS:])
        self.border_title = f"{symbol} {timeframe}"
        self.sparkline.data = data
        if closes is None:
            self._caption("not followed now: no running strategy reads these bars")
        elif data:
            low, high, last = min(data), max(data), data[-1]
            self._caption(
                f"last {len(data)} closes  low {price(low, digits)}  high {price(high, digits)}  "
                f"last {price(last, digits)}"
            )
        else:
            self._caption("no closed bars yet")

    def show_equity(self, equity: Sequence[float]) -> None:
        self.subject = None
        data = list(equity)
        self.border_title = "Equity"
        self.sparkline.data = data
        if data:
            self._caption(f"{len(data)} updates  low {money(min(data))}  high {money(max(data))}")
        else:
            self._caption("waiting for the account")
