"""Snapshots of the console (pytest-textual-snapshot): the main screen at 80x24 and 160x48, the
kill-switch dialog, the help screen and each shipped theme.

Deterministic: the simulator has a fixed seed and a hand-moved clock that also stamps the core's
events and drives the header; the Input has no blinking cursor. The scene: three strategies from
files (one opens a position on the first bar, one is refused by its spread filter, one waits) and a
position opened by hand. ``pytest --snapshot-update`` rewrites the SVGs after a deliberate change;
look at them (the snapshot report opens them) before committing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.ui.console_rig import ConsoleRig, make_console, next_bar, started

pytestmark = pytest.mark.timeout(120)


def scene(rig: ConsoleRig) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await started(rig)
        runners = rig.runtime.engine.runners
        await next_bar(
            rig,
            lambda: bool(
                runners["scalper"].status.last_signal
                and runners["tight_spread"].status.last_blocked
                and len(rig.runtime.market.positions) == 2
            ),
            "the first bar's entry and refusal",
        )
        rig.clock.advance(seconds=20)
        await pilot.pause()
        rig.app.main.redraw(everything=True)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    assert snap_compare(rig.app, terminal_size=size, run_before=scene(rig))


def test_kill_switch_dialog(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    assert snap_compare(rig.app, press=["S"], terminal_size=(80, 24), run_before=scene(rig))


def test_help_screen(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    assert snap_compare(rig.app, press=["question_mark"], terminal_size=(80, 24), run_before=scene(rig))


@pytest.mark.parametrize("theme", ["mt5-dark", "mt5-light", "mt5-high-contrast"])
def test_each_theme(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theme: str) -> None:
    rig = make_console(tmp_path, monkeypatch, theme=theme)
    assert snap_compare(rig.app, terminal_size=(120, 32), run_before=scene(rig))
