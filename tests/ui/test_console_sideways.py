"""At 80 columns the tables' right-hand columns are reached by scrolling sideways: each row must
still say whose it is (the strategy's id, the position's ticket)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mt5console.ui.panes.table import KeyedTable
from tests.helpers import always_buy
from tests.ui.console_rig import make_console, next_bar, started

pytestmark = pytest.mark.timeout(60)


def drawn(table: KeyedTable) -> list[str]:
    return ["".join(segment.text for segment in table.render_line(y)) for y in range(table.size.height)]


async def test_scrolled_sideways_each_row_still_shows_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig)
        main = rig.app.main
        strategies = main.strategies.table
        strategies.focus()
        await pilot.press("end")  # DataTable: scroll to the rightmost column
        await pilot.pause()
        assert strategies.scroll_x > 0
        lines = drawn(strategies)
        assert lines[0].lstrip().startswith("ID")
        for strategy_id in ("gold_watch", "scalper", "tight_spread"):
            assert any(line.lstrip().startswith(strategy_id) for line in lines[1:]), lines
        assert any("Watch XAUUSD" in line for line in lines)  # the Name column is the one scrolled to
        await rig.app.shutdown()


async def test_scrolled_sideways_each_position_still_shows_its_ticket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = "a_strategy_whose_id_is_long_enough_to_overflow"
    rig = make_console(tmp_path, monkeypatch, strategies=[always_buy(owner)])
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig)
        await next_bar(rig, lambda: len(rig.runtime.market.positions) == 2, "its position")
        await pilot.pause()
        positions = rig.app.main.positions.table
        positions.focus()
        await pilot.press("end")
        await pilot.pause()
        assert positions.scroll_x > 0
        lines = drawn(positions)
        assert lines[0].lstrip().startswith("Ticket")
        for position in rig.runtime.market.positions:
            assert any(line.lstrip().startswith(str(position.ticket)) for line in lines[1:]), lines
        assert any(line.lstrip().startswith("Total") for line in lines[1:]), lines
        assert any(owner[-12:] in line for line in lines), lines
        await rig.app.shutdown()
