"""The log pane: the core's log lines in the headless format, coloured by level, with a filter.

The lines are kept here as well as in the RichLog so that a filter can be applied to what was
already shown: ``/`` opens the filter, typing narrows the lines (case-insensitive, every word must
appear), Enter keeps the filter, Escape clears it: in the filter line, and on the main screen
once Enter kept it (``clear_filter``), wherever the focus went since.
"""

from __future__ import annotations

from collections import deque

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input, RichLog

from mt5console.core.events import Level, LogLine
from mt5console.core.logsink import format_line
from mt5console.ui.formatting import DEFAULT_PALETTE, Palette, set_title

MAX_LINES = 2000
DATE_WIDTH = len("2026-11-18 ")
WIDE = 120  # below this many columns the date is left out of each line (the time stays)


def line_style(level: Level, palette: Palette) -> Style:
    return {
        Level.DEBUG: palette.muted,
        Level.INFO: Style(),
        Level.WARNING: palette.warning,
        Level.ERROR: palette.error + Style(bold=True),
    }[level]


def matches(text: str, query: str) -> bool:
    lowered = text.lower()
    return all(word in lowered for word in query.lower().split())


class LogView(RichLog):
    """A RichLog whose new lines do not lay the whole screen out again.

    Each line grows the log's scrollable height, and Textual treats a new scrollable size as a layout
    change of the screen: about 20 ms at 200x50, paid for every line, in the same frame as the row a
    key just changed. The log's own size never depends on its lines (its pane's height is fixed by
    the layout), so only its scrollbar needs to learn the new height.
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def watch_virtual_size(self, size: Size) -> None:
        scrollbar = self.vertical_scrollbar  # always shown: RichLog's overflow-y is "scroll"
        scrollbar.window_virtual_size = size.height
        scrollbar.window_size = self.scrollable_content_region.height
        scrollbar.refresh()


class LogFilter(Input):
    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(self.Submitted(self, ""))


class LogPane(Vertical):
    DEFAULT_CSS = """
    LogPane LogView {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    LogPane LogFilter {
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
    }
    LogPane.-filtering LogFilter {
        display: block;
    }
    """

    def __init__(self, *, max_lines: int = MAX_LINES) -> None:
        super().__init__(id="log-pane")
        self.border_title = "Log"
        self.palette = DEFAULT_PALETTE
        self.kept: deque[LogLine] = deque(maxlen=max_lines)
        self.query_text = ""
        self._wide = False
        self._pending: list[LogLine] = []
        self.view = LogView(max_lines=max_lines, wrap=True, markup=False, highlight=False, id="log")
        # Compact: focused, a normal Input draws a tall border, which on one line hides the text.
        self.filter_input = LogFilter(
            placeholder="filter the log: words to find; Esc clears", id="log-filter", compact=True
        )
        self.filter_input.cursor_blink = False  # calm, and deterministic in snapshots

    def compose(self) -> ComposeResult:
        yield self.view
        yield self.filter_input

    def on_resize(self, event: Resize) -> None:
        # RichLog does not re-wrap what it holds: write the kept lines again at the new width.
        self._wide = event.size.width >= WIDE
        self.call_after_refresh(self.rewrite)

    def _write(self, text: str, level: Level) -> None:
        width = self.view.scrollable_content_region.width
        self.view.write(Text(text, style=line_style(level, self.palette)), width=width if width > 0 else None)

    def restyle(self, palette: Palette) -> None:
        self.palette = palette
        self.rewrite()

    def text_of(self, line: LogLine) -> str:
        text = format_line(line)
        return text if self._wide else text[DATE_WIDTH:]

    def add(self, line: LogLine) -> None:
        """Keep a line; it is drawn at the next ``flush`` (the screen flushes after its tables)."""
        self.kept.append(line)
        self._pending.append(line)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for line in pending:
            text = self.text_of(line)
            if not self.query_text or matches(text, self.query_text):
                self._write(text, line.level)
        if pending and self.query_text:
            self._title()  # "n of m" counts the new lines too (a pass over the kept lines: filtering only)

    def shown(self) -> list[str]:
        """The lines the filter lets through, as they are written."""
        texts = (self.text_of(line) for line in self.kept)
        return [t for t in texts if not self.query_text or matches(t, self.query_text)]

    def rewrite(self) -> None:
        self._pending.clear()  # all of them are drawn below
        self.view.clear()
        for line in self.kept:
            text = self.text_of(line)
            if not self.query_text or matches(text, self.query_text):
                self._write(text, line.level)
        self._title()

    def _title(self) -> None:
        if self.query_text:
            set_title(self, f"Log · filter {self.query_text!r}: {len(self.shown())} of {len(self.kept)}")
        else:
            set_title(self, "Log")

    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.filter_input.focus()

    @property
    def filtering(self) -> bool:
        """A filter is kept or being typed (the filter line shows)."""
        return self.has_class("-filtering")

    def clear_filter(self) -> None:
        """Show the whole log again and hide the filter line; the focus stays where it is."""
        self.filter_input.value = ""
        self.query_text = ""
        self.remove_class("-filtering")
        self.rewrite()

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value.strip()
        self.rewrite()

    @on(Input.Submitted, "#log-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_text = event.value.strip()
        if not self.query_text:
            self.remove_class("-filtering")
        self.rewrite()
        self.view.focus()
