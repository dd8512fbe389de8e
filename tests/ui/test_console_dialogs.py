"""The dialogs that stand before money moves: each button must show the key that answers it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Static

from mt5console.ui.screens.confirm import ConfirmScreen, KillSwitchScreen
from tests.ui.console_rig import make_console, next_bar, started, wait_until

SIZE = (80, 24)
pytestmark = pytest.mark.timeout(60)


def labels(screen: object) -> dict[str, str]:
    return {str(b.id): str(b.label) for b in screen.query(Button)}  # type: ignore[attr-defined]


def drawn_text(button: Button) -> str:
    """What the terminal shows of a button, row by row."""
    lines = button.render_lines(button.region.reset_offset)
    return "".join(segment.text for line in lines for segment in line)


async def test_kill_switch_buttons_show_their_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("S")
        await pilot.pause()
        screen = rig.app.screen
        assert isinstance(screen, KillSwitchScreen)
        assert labels(screen) == {
            "keep": "Stop, keep positions [k]",
            "close": "Stop and close [c]",
            "cancel": "Cancel [esc]",
        }
        for button in screen.query(Button):
            assert str(button.label) in drawn_text(button)  # not cut off either
        await pilot.press("escape")
        await rig.app.shutdown()


async def test_close_position_buttons_show_their_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)  # the rig opens one USDJPY position by hand
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("x")
        await pilot.pause()
        screen = rig.app.screen
        assert isinstance(screen, ConfirmScreen)
        assert labels(screen) == {"yes": "Close it [y]", "no": "Keep it [n]"}
        for button in screen.query(Button):
            assert str(button.label) in drawn_text(button)
        await pilot.press("n")
        await rig.app.shutdown()


async def test_kill_switch_says_how_many_positions_close_would_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)  # one position opened by hand (USDJPY)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        runners = rig.runtime.engine.runners
        await next_bar(rig, lambda: len(rig.app.model.positions) == 2, "scalper's entry")
        assert sum(1 for p in rig.app.model.positions if p.magic == runners["scalper"].magic) == 1
        await pilot.press("S")
        await pilot.pause()
        screen = rig.app.screen
        assert isinstance(screen, KillSwitchScreen)
        body = str(screen.query_one(".body", Static).render())
        assert "3 strategies will stop" in body
        assert "(1 of the 2 position(s) open in the terminal are theirs;" in body
        await pilot.press("c")
        await wait_until(lambda: len(rig.app.model.positions) == 1, "the strategy's position to close")
        assert rig.app.model.positions[0].magic == 0  # the one opened by hand stayed, as the dialog said
        await rig.app.shutdown()
