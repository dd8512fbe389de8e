"""The ``/`` log filter as a trader uses it: Esc clears a filter whether or not Enter kept it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events

from tests.ui.console_rig import make_console, started

SIZE = (120, 36)
pytestmark = pytest.mark.timeout(60)


async def test_escape_after_enter_clears_the_kept_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        log = rig.app.main.log_pane
        everything = log.shown()
        drawn = len(log.view.lines)
        await pilot.press("slash", *"gold", "enter")
        await pilot.pause()
        assert 0 < len(log.shown()) < len(everything)
        assert rig.app.focused is log.view  # Enter kept the filter and left the input
        await pilot.press("escape")
        await pilot.pause()
        assert log.shown() == everything
        assert len(log.view.lines) == drawn
        assert str(log.border_title) == "Log"
        assert log.filter_input.value == ""
        assert not log.has_class("-filtering")  # the filter line is gone too
        await rig.app.shutdown()


async def test_escape_clears_the_kept_filter_from_another_pane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        main = rig.app.main
        log = main.log_pane
        everything = log.shown()
        await pilot.press("slash", *"gold", "enter", "shift+tab")
        await pilot.pause()
        assert rig.app.focused is main.strategies.table
        assert len(log.shown()) < len(everything)
        await pilot.press("escape")
        await pilot.pause()
        assert log.shown() == everything
        assert str(log.border_title) == "Log"
        assert rig.app.focused is main.strategies.table  # clearing the filter does not move the focus
        await rig.app.shutdown()


async def test_escape_without_a_filter_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        main = rig.app.main
        everything = main.log_pane.shown()
        await pilot.press("escape")
        await pilot.pause()
        assert main.log_pane.shown() == everything
        assert rig.app.focused is main.strategies.table
        assert len(rig.runtime.engine.runners) == 3
        await rig.app.shutdown()


async def test_what_is_typed_in_the_filter_line_can_be_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        line = rig.app.main.log_pane.filter_input
        await pilot.press("slash", *"gold")
        await pilot.pause()
        assert rig.app.focused is line
        assert line.region.height == 1  # one line of the log's pane, not three
        # Focused, Textual's Input draws a tall border: on a one-line input it hides the text.
        assert line.content_region.height == 1
        drawn = "".join(s.text for strip in line.render_lines(line.region.reset_offset) for s in strip)
        assert "gold" in drawn
        await rig.app.shutdown()


async def test_a_kept_filter_counts_the_lines_that_arrive_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        log = rig.app.main.log_pane
        await pilot.press("slash", *"gold", "enter")
        await pilot.pause()
        shown, kept = len(log.shown()), len(log.kept)
        assert str(log.border_title) == f"Log · filter 'gold': {shown} of {kept}"
        rig.runtime.events.info("console", "gold is quiet today")
        rig.runtime.events.info("console", "nothing to see")
        await pilot.pause()
        assert len(log.shown()) == shown + 1
        assert str(log.border_title) == f"Log · filter 'gold': {shown + 1} of {kept + 2}"
        await rig.app.shutdown()


async def test_keys_typed_right_after_slash_go_to_the_filter_not_to_the_strategies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "/sp" arriving in one burst (a paste, a busy frame, a fast typist): the "s" and "p" are
    words of the filter; sent to the strategies table they would stop or pause a strategy."""
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        main = rig.app.main
        main.strategies.table.select("scalper")
        await pilot.pause()
        assert main.strategies.table.has_focus
        for key, character in (("slash", "/"), ("s", "s"), ("p", "p")):  # queued together, as a burst is
            rig.app.post_message(events.Key(key, character))
        await pilot.pause()
        await pilot.pause()
        assert main.log_pane.filter_input.value == "sp"
        assert rig.app.focused is main.log_pane.filter_input
        runner = rig.runtime.engine.runners["scalper"]
        assert not runner.stopped and not runner.paused
        assert not [w for w in rig.app.workers if w.group == "commands"]  # no command was sent
        await rig.app.shutdown()


async def test_a_slash_typed_in_the_filter_line_is_part_of_the_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("slash", *"data/mt5", "enter")
        await pilot.pause()
        log = rig.app.main.log_pane
        assert log.query_text == "data/mt5"
        await rig.app.shutdown()
