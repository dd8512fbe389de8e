"""The strategies pane's P&L is all-time: its header says so, and the help says what it adds up."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static
from textual.widgets.data_table import ColumnKey

from mt5console.ui.screens.help import HelpScreen
from tests.helpers import always_buy
from tests.ui.console_rig import make_console, next_bar, started, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_strategies_pnl_header_says_it_is_all_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=size) as pilot:
        await started(rig)
        await pilot.pause()
        table = rig.app.main.strategies.table
        assert str(table.columns[ColumnKey("pnl")].label) == "P&L all"
        header = "".join(segment.text for segment in table.render_line(0))
        assert "P&L all" in header  # drawn whole, at 80 columns too
        await rig.app.shutdown()


async def test_the_help_says_what_the_strategies_pnl_adds_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=(120, 36)) as pilot:
        await started(rig)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(rig.app.screen, HelpScreen)
        static = rig.app.screen.query_one(Static)
        shown = " ".join(
            "".join(segment.text for segment in strip)
            for strip in static.render_lines(static.region.reset_offset)
        )
        text = " ".join(shown.split())
        assert "P&L all" in text
        assert "every closed one since it first ran" in text and "Not today's" in text
        await rig.app.shutdown()


async def test_a_partial_close_keeps_its_booked_profit_in_the_strategys_pnl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer = always_buy("scalper", strategyName="Always buy EURUSD")
    buyer["rules"]["riskManagement"] = {"lotSize": 0.04, "maxPositions": 1}
    rig = make_console(tmp_path, monkeypatch, strategies=[buyer], manual=())
    async with rig.app.run_test(size=(160, 48)) as pilot:
        await started(rig)
        runtime = rig.runtime
        await next_bar(rig, lambda: bool(runtime.market.positions), "the scalper's position")
        [position] = runtime.market.positions
        rig.clock.advance(minutes=30)  # prices move: the close books a profit or a loss
        await runtime.broker.close_position(position.ticket, volume=0.02)
        store = runtime.store

        def booked() -> float:
            [trade] = store.open_trades("scalper")
            return trade.profit

        await wait_until(lambda: booked() != 0.0, "the partial close recorded")
        await pilot.pause()

        def shown() -> float:
            [view] = [v for v in rig.app.main.model.strategy_views() if v.strategy_id == "scalper"]
            return view.pnl

        floating = sum(p.profit + p.swap for p in runtime.market.positions)
        await wait_until(
            lambda: abs(shown() - (booked() + floating)) < 0.005, "the booked partial in P&L all"
        )
        await rig.app.shutdown()
