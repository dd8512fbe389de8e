"""The console resized while it runs, as a terminal window is: what the footer shows follows."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

from mt5console.ui.panes.account import PAIR_WIDTH
from tests.ui.console_rig import ConsoleRig, make_console, started

pytestmark = pytest.mark.timeout(60)


def footer_keys(screen_footer: object) -> list[str]:
    return [key.key for key in screen_footer.query(FooterKey)]  # type: ignore[attr-defined]


async def test_narrowing_to_80_columns_drops_the_palette_hint_so_every_key_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=(160, 48)) as pilot:
        await started(rig)
        footer = rig.app.main.footer
        await pilot.pause()
        assert "ctrl+p" in footer_keys(footer)  # wide: the palette's hint fits beside the keys
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        keys = footer_keys(footer)
        assert "ctrl+p" not in keys
        assert keys[-2:] == ["question_mark", "q"]
        for key in footer.query(FooterKey):  # and every one of them is inside the 80 columns
            assert key.region.right <= 80, f"{key.key} is cut off at {key.region}"
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        await pilot.pause()
        assert "ctrl+p" in footer_keys(footer)
        await rig.app.shutdown()


def account_lines(rig: ConsoleRig) -> int:
    """How many lines of pairs the account pane has room for (its title line aside)."""
    return rig.app.main.account.content_size.height


async def test_the_account_pane_keeps_every_row_through_resizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=(160, 48)) as pilot:
        await started(rig)
        account = rig.app.main.account
        await pilot.pause()
        # 8 pairs: 2 a row beside the chart (4 rows), 3 a row at 80 columns (3 rows).
        assert account.content_region.width // PAIR_WIDTH == 2
        assert account_lines(rig) == 4
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert account_lines(rig) == 3
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        await pilot.pause()
        assert account_lines(rig) == 4  # Currency and Leverage are not cut off
        await rig.app.shutdown()
