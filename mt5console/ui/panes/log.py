"""The log pane: the core's log lines in the headless format, coloured by level, with a filter.

The lines are kept here as well as in the RichLog so that a filter can be applied to what was
already shown: ``/`` opens the filter, typing narrows the lines (case-insensitive, every word must
appear), Enter keeps the filter, Escape clears it: in the filter line, and on the main screen
once Enter kept it (``clear_filter``), wherever the focus went since.

While the view is at the end, new lines follow; once the user scrolls up, the view stays on what they
read and the title counts the lines that arrived below; back at the end (End, the wheel, the bar)
it follows again, as ``less +F`` and Textual's own ``Log`` do.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import DescendantBlur, DescendantFocus, Resize
from textual.geometry import Size
from textual.reactive import Reactive, var
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
    following: var[bool] = var(True)
    """The view is at the end and new lines keep it there; False once the user scrolled up."""

    def __init__(self, *, max_lines: int, id: str) -> None:
        # RichLog's auto_scroll jumps to the end at every line, wherever the user was reading:
        # ``append`` scrolls only while following.
        super().__init__(
            max_lines=max_lines, wrap=True, markup=False, highlight=False, auto_scroll=False, id=id
        )

    def watch_virtual_size(self, size: Size) -> None:
        scrollbar = self.vertical_scrollbar  # always shown: RichLog's overflow-y is "scroll"
        scrollbar.window_virtual_size = size.height
        scrollbar.window_size = self.scrollable_content_region.height
        scrollbar.refresh()

    def watch_scroll_target_y(self, target: float) -> None:
        # Every scroll, the user's (keys, wheel, scrollbar) and ours, sets the target first, the
        # animated ones too: where the view is going says whether the user left the end.
        self.following = target >= self.max_scroll_y

    def append(self, texts: Sequence[Text], width: int | None) -> None:
        """Write lines; follow them if following, else keep the view on the same text."""
        follow, first = self.following, self._start_line
        for text in texts:
            self.write(text, width=width, scroll_end=False)
        if follow:
            self.follow()
        elif self._start_line != first:
            # Beyond max_lines RichLog dropped the oldest lines (_start_line counts them): what the
            # user reads moved up by as many, and so does the view.
            self.scroll_to(y=self.scroll_y - (self._start_line - first), animate=False, immediate=True)

    def follow(self) -> None:
        """Go to the end now (not after the next refresh: a line written meanwhile would then be
        taken for the user having scrolled up) and follow from there."""
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.following = True


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
        self.unseen = 0  # lines written below the view since the user scrolled up
        self.view = LogView(max_lines=max_lines, id="log")
        # Compact: focused, a normal Input draws a tall border, which on one line hides the text.
        self.filter_input = LogFilter(
            placeholder="filter the log: words to find; Esc clears", id="log-filter", compact=True
        )
        self.filter_input.cursor_blink = False  # calm, and deterministic in snapshots

    def compose(self) -> ComposeResult:
        yield self.view
        yield self.filter_input

    def on_mount(self) -> None:
        self.watch(self.view, "following", self._following_changed, init=False)

    def _following_changed(self, following: bool) -> None:
        if following and self.unseen:
            self.unseen = 0
            self._title()

    def on_resize(self, event: Resize) -> None:
        # RichLog does not re-wrap what it holds: write the kept lines again at the new width.
        self._wide = event.size.width >= WIDE
        self.call_after_refresh(self.rewrite, keep_place=True)

    def _write(self, lines: Iterable[LogLine]) -> int:
        """Draw the lines the filter lets through; return how many."""
        texts = [
            Text(text, style=line_style(line.level, self.palette))
            for line, text in ((line, self.text_of(line)) for line in lines)
            if not self.query_text or matches(text, self.query_text)
        ]
        width = self.view.scrollable_content_region.width
        self.view.append(texts, width if width > 0 else None)
        return len(texts)

    def restyle(self, palette: Palette) -> None:
        self.palette = palette
        self.rewrite(keep_place=True)

    def text_of(self, line: LogLine) -> str:
        text = format_line(line)
        return text if self._wide else text[DATE_WIDTH:]

    def add(self, line: LogLine) -> None:
        """Keep a line; it is drawn at the next ``flush`` (the screen flushes after its tables)."""
        self.kept.append(line)
        self._pending.append(line)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        following = self.view.following
        written = self._write(pending)
        if not following and written:
            self.unseen += written
            self._title()
        elif self.query_text:
            self._title()  # "n of m" counts the new lines too (a pass over the kept lines: filtering only)

    def shown(self) -> list[str]:
        """The lines the filter lets through, as they are written."""
        texts = (self.text_of(line) for line in self.kept)
        return [t for t in texts if not self.query_text or matches(t, self.query_text)]

    def rewrite(self, *, keep_place: bool = False) -> None:
        """Draw the kept lines again (another width, theme or filter). ``keep_place``: a user who
        scrolled up stays as many lines above the end as before (wrapped anew, roughly the same
        text); otherwise the view goes to the end, where a new filter's latest matches are."""
        view = self.view
        above_end = None if view.following or not keep_place else view.max_scroll_y - view.scroll_y
        self._pending.clear()  # all of them are drawn below
        view.clear()
        self._write(self.kept)
        if above_end is None:
            view.follow()
            self.unseen = 0
        else:
            view.scroll_to(y=max(0, view.max_scroll_y - above_end), animate=False, immediate=True)
            view.following = view.scroll_y >= view.max_scroll_y  # (all of it may fit the pane now)
        self._title()

    def _title(self) -> None:
        title = "Log"
        if self.query_text:
            title += f" · filter {self.query_text!r}: {len(self.shown())} of {len(self.kept)}"
        if self.unseen and not self.view.following:
            lines = "line" if self.unseen == 1 else "lines"
            # End follows only in the log (in a table it scrolls sideways): said only there.
            how = ", End to follow" if self.view.has_focus else ""
            title += f" · {self.unseen:,} new {lines} below{how}"
        set_title(self, title)

    def on_descendant_focus(self, _: DescendantFocus) -> None:
        self._title()

    def on_descendant_blur(self, _: DescendantBlur) -> None:
        self._title()

    def open_filter(self) -> None:
        self.add_class("-filtering")
        # Now, not as focus() does after the messages already queued: keys typed right after "/"
        # (a paste, a busy frame) are words of the filter; the strategies table would read "s" as
        # stop and "p" as pause.
        self.screen.set_focus(self.filter_input)

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
