"""What the console says when a key cannot act, or asks before it acts: plainly, and true."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from mt5console.ui.screens.confirm import ConfirmScreen
from tests.ui.console_rig import make_console, next_bar, started, wait_until

SIZE = (120, 36)
pytestmark = pytest.mark.timeout(60)


async def test_x_with_no_position_open_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=())
    async with rig.app.run_test(size=SIZE, notifications=True) as pilot:
        await started(rig)
        assert rig.app.main.model.positions == ()
        await pilot.press("tab", "tab")  # to the (empty) Positions pane, as the old hint told
        assert rig.app.focused is rig.app.main.positions.table
        await pilot.press("x")
        await pilot.pause()
        messages = [n.message for n in rig.app._notifications]
        assert messages == ["No position is open."]  # not "select a position": there is none
        assert not isinstance(rig.app.screen, ConfirmScreen)
        await rig.app.shutdown()


async def test_quit_dialog_counts_paused_strategies_as_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=())
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        rig.app.main.strategies.table.select("gold_watch")
        await pilot.press("p")
        await wait_until(lambda: rig.runtime.engine.runners["gold_watch"].paused, "gold_watch paused")
        await pilot.press("q")
        await pilot.pause()
        screen = rig.app.screen
        assert isinstance(screen, ConfirmScreen)
        body = str(screen.query_one(".body", Static).render())
        # The Strategies pane says "2 running, 1 paused": the dialog must not say "3 run".
        assert body.startswith("3 strategies are active (1 paused).")
        await pilot.press("n")
        await rig.app.shutdown()


async def test_the_palette_has_one_quit_and_it_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        titles = [command.title for command in rig.app.get_system_commands(rig.app.main)]
        assert [t for t in titles if t.startswith("Quit")] == ["Quit (q)"]
        assert "Keys" in titles and "Close all (X)" in titles  # Textual's other commands stay
        await pilot.pause()
        await rig.app.shutdown()


async def test_s_and_p_with_no_strategy_loaded_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=SIZE, notifications=True) as pilot:
        await started(rig)
        assert rig.app.focused is rig.app.main.strategies.table
        await pilot.press("s", "p")
        # Each key's toast is posted as a message: on a loaded machine the second may come after a pause.
        await wait_until(lambda: len(rig.app._notifications) >= 2, "a toast for each key", within=10)
        messages = [n.message for n in rig.app._notifications]
        assert messages == ["No strategy has run in this session (the log says why)."] * 2
        assert rig.runtime.engine.runners == {}
        await rig.app.shutdown()


async def test_the_strategies_title_counts_stopped_ones_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=())
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        pane = rig.app.main.strategies
        assert str(pane.border_title) == "Strategies · 3 running"
        pane.table.select("gold_watch")
        await pilot.press("s")
        await wait_until(lambda: "gold_watch" not in rig.runtime.engine.runners, "gold_watch to stop")
        pane.table.select("scalper")
        await pilot.press("p")
        await wait_until(lambda: rig.runtime.engine.runners["scalper"].paused, "scalper to pause")
        await pilot.pause()
        rig.app.main.redraw({"strategies"})
        # After a stop (or the kill switch) the title does not read as if the stopped ones were gone.
        assert str(pane.border_title) == "Strategies · 1 running, 1 paused, 1 stopped"
        await rig.app.shutdown()


async def test_strategies_stopped_before_a_restart_are_still_listed_as_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=())
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("S")
        await pilot.pause()
        await pilot.press("k")  # the kill switch, keeping positions
        await wait_until(lambda: rig.runtime.engine.runners == {}, "every strategy stopped")
        await rig.app.shutdown()

    again = make_console(tmp_path, monkeypatch, manual=())  # the same data dir and strategy files
    async with again.app.run_test(size=SIZE) as pilot:
        await started(again)
        await pilot.pause()
        again.app.main.redraw({"strategies"})
        views = {view.strategy_id: view for view in again.app.main.model.strategy_views()}
        assert sorted(views) == ["gold_watch", "scalper", "tight_spread"]
        assert {view.state for view in views.values()} == {"stopped"}
        assert {view.reason for view in views.values()} == {"stopped by keyboard"}
        assert str(again.app.main.strategies.border_title) == "Strategies · 0 running, 3 stopped"
        await again.app.shutdown()


async def test_a_stopped_strategys_row_keeps_its_last_signal_and_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=())
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        runners = rig.runtime.engine.runners
        await next_bar(rig, lambda: bool(runners["tight_spread"].status.last_blocked), "a refusal")
        refused = runners["tight_spread"].status.last_blocked
        rig.app.main.strategies.table.select("tight_spread")
        await pilot.press("s")
        await wait_until(lambda: "tight_spread" not in rig.runtime.engine.runners, "tight_spread to stop")
        await pilot.pause()
        view = next(v for v in rig.app.main.model.strategy_views() if v.strategy_id == "tight_spread")
        assert view.state == "stopped"
        assert view.last_blocked == refused and view.bars_evaluated == 1  # what it did, still shown
        await rig.app.shutdown()
