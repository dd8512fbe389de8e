"""The header line: who we trade with and whether the link is up, at a glance.

``mt5console │ SIMULATED │ #5001 MetaQuotes-Demo │ ● connected   platform ok │ pusher subscribed │
13:00:05 UTC``. SIMULATED is drawn in the theme's warning colour so that nobody mistakes the simulator
for a real account; the platform, Pusher and agent links appear once they report (when configured).

When the line does not fit (80 columns, a paired console), the less needed parts give way first, in
``SHED`` order, so that SIMULATED / REAL, the terminal's state and the links' states stay in sight.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.events import Resize
from textual.widgets import Static

from mt5console.core.broker.server_clock import ServerClock, describe_offset
from mt5console.ui.formatting import DEFAULT_PALETTE, Palette
from mt5console.ui.model import ConsoleModel

SEPARATOR = " │ "
# What a narrow header leaves out, one more at each step: the links' details, the trade server's
# clock (shown only when it is not UTC or not yet confirmed by a live tick), the app's name, the
# account's server, the terminal's detail, the clock, the account's number. SIMULATED / REAL and the
# terminal's state are never left out; if even then the line is too long, the links are cut short.
SHED = ("link details", "server clock", "name", "server", "terminal detail", "clock", "login")


GOOD_LINKS = frozenset({"connected", "subscribed", "ok", "online"})
FAILING_LINKS = frozenset({"platform-unreachable", "terminal-lost"})


def link_style(state: str, palette: Palette) -> Style:
    if state in GOOD_LINKS:
        return palette.profit
    if state in FAILING_LINKS:
        return palette.error
    return palette.warning  # connecting, reconnecting, retrying, pairing: on its way


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        model: ConsoleModel,
        *,
        broker: str,
        simulated: bool,
        clock: Callable[[], datetime],
        server_clock: Callable[[], ServerClock] | None = None,
    ) -> None:
        super().__init__(id="status")
        self._model = model
        self._broker = broker
        self._simulated = simulated
        self._clock = clock
        self._server_clock = server_clock
        self.palette = DEFAULT_PALETTE

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(1.0, self.redraw)

    def restyle(self, palette: Palette) -> None:
        self.palette = palette
        self.redraw()

    def on_resize(self, _: Resize) -> None:
        self.redraw()

    def redraw(self) -> None:
        # The clock keeps its place on the right; what still does not fit is cut at the left part's end.
        left, right = self.fitted(self.content_region.width)
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True, justify="right")
        grid.add_row(left, right)
        self.update(grid, layout=False)  # one line whatever it says: no need to lay the screen out again

    def fitted(self, width: int) -> tuple[Text, Text]:
        """The left and right parts, with as few parts left out (``SHED``) as ``width`` allows."""
        left, right = self.line(), self.right()
        for shed in range(1, len(SHED) + 1):
            if width <= 0 or left.cell_len + 1 + right.cell_len <= width:
                break
            left, right = self.line(set(SHED[:shed])), self.right(set(SHED[:shed]))
        if width > 0 and left.cell_len + 1 + right.cell_len > width:
            # The terminal (where the money is) before the platform's links: those are cut.
            right.truncate(max(0, width - left.cell_len - 1), overflow="ellipsis")
        return left, right

    def right(self, shed: set[str] | frozenset[str] = frozenset()) -> Text:
        """The platform, Pusher and agent links (when configured), then the clock."""
        text = Text(no_wrap=True)
        for name, link in self._model.links.items():
            style = link_style(link.state, self.palette)
            text.append(f"{name} ")
            text.append(link.state, style=style)
            if link.detail and "link details" not in shed:
                text.append(f" ({link.detail})", style=self.palette.muted)
            text.append(SEPARATOR)
        if "clock" in shed:
            text.right_crop(len(SEPARATOR))
        else:
            text.append(self._clock().strftime("%H:%M:%S UTC"))
        return text

    def line(self, shed: set[str] | frozenset[str] = frozenset()) -> Text:
        palette = self.palette
        text = Text(no_wrap=True, overflow="ellipsis")
        if "name" not in shed:
            text.append("mt5console", style=Style(bold=True))
            text.append(SEPARATOR)
        if self._simulated:
            text.append(" SIMULATED ", style=Style(bold=True, reverse=True) + palette.warning)
        else:
            text.append(self._broker.upper(), style=Style(bold=True))
        account = self._model.account
        if account is not None:
            kind = "" if self._simulated else (" demo" if account.demo else " REAL")
            if "login" in shed:
                text.append(kind, style=Style(bold=True))
            else:
                server = "" if "server" in shed else f" {account.server}"
                text.append(SEPARATOR + f"#{account.login}{server}{kind}")
        text.append(SEPARATOR)
        state = self._model.terminal
        style = {
            "connected": palette.profit,
            "connecting": palette.warning,
            "reconnecting": palette.warning,
            "lost": palette.error,
            "failed": palette.error,
        }.get(state, Style())
        text.append("● ", style=style)
        text.append(state, style=style + Style(bold=state != "connected"))
        if self._model.terminal_detail and "terminal detail" not in shed:
            text.append(f" ({self._model.terminal_detail})", style=palette.muted)
        if self._server_clock is not None and "server clock" not in shed:
            self._append_server_clock(text, self._server_clock())
        return text

    def _append_server_clock(self, text: Text, clock: ServerClock) -> None:
        """The trade server's clock, when it is worth a glance: ahead of UTC (the times shown are
        converted), or not yet confirmed by a live tick (strategies skip closed bars meanwhile)."""
        if clock.known and not clock.offset:
            return
        text.append(SEPARATOR + "server ")
        if clock.known:
            text.append(describe_offset(clock.offset), style=self.palette.muted)
        else:
            text.append(f"{describe_offset(clock.offset)}?", style=self.palette.warning)
