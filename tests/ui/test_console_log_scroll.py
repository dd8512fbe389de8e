"""The log pane while the trader reads back: new lines follow only while the view is at the end."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from mt5console.core.events import Level, LogLine
from mt5console.ui.panes.log import LogPane, LogView
from tests.ui.console_rig import make_console, started, wait_until

SIZE = (120, 36)
pytestmark = pytest.mark.timeout(60)


def top_line(view: LogView) -> str:
    """The text of the first line the view shows."""
    return view.lines[round(view.scroll_y)].text


def top_line_or_last(view: LogView) -> str:
    """The last line the view shows (the bottom of the pane)."""
    bottom = min(len(view.lines), round(view.scroll_y) + view.scrollable_content_region.height)
    return view.lines[bottom - 1].text if bottom else ""


async def test_scrolled_up_the_log_stays_put_and_counts_the_new_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        log = rig.app.main.log_pane
        view = log.view
        events = rig.runtime.events
        for index in range(60):
            events.info("console", f"old line {index}")
        await wait_until(lambda: "old line 59" in top_line_or_last(view), "the old lines")
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y > 0
        view.focus()
        await pilot.press("pageup", "pageup")
        await pilot.pause()
        place, reading = view.scroll_y, top_line(view)
        assert view.scroll_y < view.max_scroll_y

        for index in range(12):
            events.info("console", f"new line {index}")
        await wait_until(lambda: "new line 11" in view.lines[-1].text, "the new lines")
        await pilot.pause()
        assert view.scroll_y == place and top_line(view) == reading  # not thrown to the end
        assert view.scroll_y < view.max_scroll_y
        assert str(log.border_title) == "Log · 12 new lines below, End to follow"
        await pilot.press("shift+tab")  # in the strategies table End scrolls sideways: not said there
        await pilot.pause()
        assert str(log.border_title) == "Log · 12 new lines below"
        await pilot.press("tab")
        await pilot.pause()
        assert rig.app.focused is view

        await pilot.press("end")
        await pilot.pause(0.3)
        assert view.scroll_y == view.max_scroll_y
        assert str(log.border_title) == "Log"
        events.info("console", "followed again")
        await wait_until(lambda: "followed again" in view.lines[-1].text, "the next line")
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y  # it follows again
        assert "followed again" in top_line_or_last(view)
        await rig.app.shutdown()


async def test_a_filter_typed_while_scrolled_up_shows_the_latest_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        log = rig.app.main.log_pane
        for index in range(60):
            rig.runtime.events.info("console", f"old line {index}")
        await wait_until(lambda: "old line 59" in log.view.lines[-1].text, "the old lines")
        log.view.focus()
        await pilot.press("pageup")
        await pilot.pause()
        assert log.view.scroll_y < log.view.max_scroll_y
        await pilot.press("slash", *"line 5", "enter")
        await pilot.pause()
        assert "old line 59" in top_line_or_last(log.view)
        rig.runtime.events.info("console", "line 5 again")
        await wait_until(lambda: "line 5 again" in log.view.lines[-1].text, "a new match")
        await pilot.pause()
        assert "line 5 again" in top_line_or_last(log.view)  # and it follows the new matches
        await rig.app.shutdown()


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogPane(max_lines=40)


def line(text: str) -> LogLine:
    return LogLine(level=Level.INFO, source="test", message=text)


async def test_beyond_max_lines_the_view_stays_on_the_text_being_read() -> None:
    """RichLog drops its oldest lines past max_lines: the view must move up with the text."""
    app = LogApp()
    async with app.run_test(size=(100, 12)) as pilot:
        pane = app.query_one(LogPane)
        for index in range(30):
            pane.add(line(f"line {index:03}"))
        pane.flush()
        await pilot.pause()
        pane.view.scroll_to(y=10, animate=False, immediate=True)
        await pilot.pause()
        reading = top_line(pane.view)
        assert "line 010" in reading
        for index in range(30, 50):
            pane.add(line(f"line {index:03}"))
        pane.flush()
        await pilot.pause()
        assert len(pane.view.lines) == 40  # ten of the oldest lines were dropped
        assert top_line(pane.view) == reading
        assert "20 new lines below" in str(pane.border_title)
