"""Every key of the console, driven with Textual's Pilot: the action must reach the engine and the
store (and the simulated terminal), not only the screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from mt5console.core.store import StrategyState
from mt5console.ui.screens.confirm import ConfirmScreen, KillSwitchScreen
from mt5console.ui.screens.help import HelpScreen
from mt5console.ui.screens.main import MainScreen
from tests.ui.console_rig import ConsoleRig, make_console, next_bar, started, wait_until

SIZE = (120, 36)
pytestmark = pytest.mark.timeout(60)


def state_cell(rig: ConsoleRig, strategy_id: str) -> str:
    return str(rig.app.main.strategies.table.get_cell(strategy_id, "state"))


def stored_state(rig: ConsoleRig, strategy_id: str) -> tuple[StrategyState, str]:
    record = rig.runtime.store.get_strategy(strategy_id)
    assert record is not None
    return record.state, record.state_reason


async def idle(rig: ConsoleRig, pilot: object) -> None:
    """Wait for the commands the keys sent, then for the screen to take in their events."""
    commands = [worker for worker in rig.app.workers if worker.group in ("commands", "quit")]
    if commands:  # (an empty list would mean "every worker", the endless runtime watch among them)
        await rig.app.workers.wait_for_complete(commands)
    await pilot.pause()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def test_s_stops_the_selected_strategy_in_the_engine_and_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        table = rig.app.main.strategies.table
        table.select("tight_spread")
        await pilot.press("s")
        await idle(rig, pilot)
        assert "tight_spread" not in rig.runtime.engine.runners
        assert stored_state(rig, "tight_spread") == (StrategyState.STOPPED, "stopped by keyboard")
        assert state_cell(rig, "tight_spread") == "stopped"
        assert any("tight_spread" in t and "stopped by keyboard" in t for t in rig.app.main.log_pane.shown())
        assert {"scalper", "gold_watch"} <= set(rig.runtime.engine.runners)  # the others run on
        # Its symbol is no longer followed: the chart says so, not that no bar has closed yet.
        chart = rig.app.main.chart
        assert chart.subject == ("GBPUSD", "M1")
        assert str(chart.caption.render()) == "not followed now: no running strategy reads these bars"
        await pilot.press("s")  # again on the stopped one: refused with a word, nothing changes
        await idle(rig, pilot)
        assert stored_state(rig, "tight_spread")[0] is StrategyState.STOPPED
        await rig.app.shutdown()


async def test_p_pauses_then_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        rig.app.main.strategies.table.select("scalper")
        await pilot.press("p")
        await idle(rig, pilot)
        assert rig.runtime.engine.runners["scalper"].paused
        assert stored_state(rig, "scalper") == (StrategyState.PAUSED, "paused by keyboard")
        assert state_cell(rig, "scalper") == "paused"
        await next_bar(rig, lambda: True, "a bar while paused")
        assert not [p for p in rig.runtime.market.positions if p.symbol == "EURUSD"]  # paused: no entry
        await pilot.press("p")
        await idle(rig, pilot)
        assert not rig.runtime.engine.runners["scalper"].paused
        assert stored_state(rig, "scalper") == (StrategyState.RUNNING, "resumed by keyboard")
        assert state_cell(rig, "scalper") == "running"
        await rig.app.shutdown()


def open_tickets(rig: ConsoleRig) -> set[int]:
    return {p.ticket for p in rig.runtime.market.positions}


async def terminal_tickets(rig: ConsoleRig) -> set[int]:
    return {p.ticket for p in await rig.runtime.broker.positions()}


async def scalper_has_a_position(rig: ConsoleRig) -> int:
    magic = rig.runtime.engine.runners["scalper"].magic
    await next_bar(
        rig, lambda: any(p.magic == magic for p in rig.runtime.market.positions), "scalper's entry"
    )
    return next(p.ticket for p in rig.runtime.market.positions if p.magic == magic)


@pytest.mark.parametrize(
    ("answer", "closes"), [("k", False), ("c", True)], ids=["keep-positions", "close-positions"]
)
async def test_kill_switch_stops_every_strategy_and_asks_about_positions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, closes: bool
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        ticket = await scalper_has_a_position(rig)
        manual = {p.ticket for p in rig.runtime.market.positions if p.magic == 0}
        await pilot.press("S")
        assert isinstance(rig.app.screen, KillSwitchScreen)
        await pilot.press(answer)
        await idle(rig, pilot)
        assert isinstance(rig.app.screen, MainScreen)
        assert rig.runtime.engine.runners == {}
        for strategy_id in ("scalper", "tight_spread", "gold_watch"):
            assert stored_state(rig, strategy_id) == (StrategyState.STOPPED, "stopped by keyboard")
            assert state_cell(rig, strategy_id) == "stopped"
        tickets = await terminal_tickets(rig)
        assert (ticket not in tickets) is closes
        assert manual <= tickets  # never a position that is not the strategies' own
        assert any("STOP ALL by keyboard" in line for line in rig.app.main.log_pane.shown())
        await rig.app.shutdown()


async def test_kill_switch_cancelled_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("S", "escape")
        await idle(rig, pilot)
        assert isinstance(rig.app.screen, MainScreen)
        assert set(rig.runtime.engine.runners) == {"scalper", "tight_spread", "gold_watch"}
        assert stored_state(rig, "scalper")[0] is StrategyState.RUNNING
        await rig.app.shutdown()


async def test_x_closes_the_selected_position_after_a_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=(("USDJPY", "sell", 0.05), ("EURUSD", "buy", 0.02)))
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        first, second = sorted(open_tickets(rig))
        positions = rig.app.main.positions
        positions.table.focus()
        positions.table.select(str(second))
        await pilot.press("x")
        assert isinstance(rig.app.screen, ConfirmScreen)
        await pilot.press("n")  # no: nothing happens
        await idle(rig, pilot)
        assert await terminal_tickets(rig) == {first, second}
        await pilot.press("x", "y")
        await idle(rig, pilot)
        await wait_until(lambda: open_tickets(rig) == {first}, "the position to leave the table")
        await pilot.pause()
        assert await terminal_tickets(rig) == {first}
        assert positions.table.get_row_index(str(first)) == 0
        assert any(f"closed #{second} (keyboard)" in line for line in rig.app.main.log_pane.shown())
        await rig.app.shutdown()


async def test_shift_x_closes_all_positions_after_a_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=(("USDJPY", "sell", 0.05), ("EURUSD", "buy", 0.02)))
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("X")
        assert isinstance(rig.app.screen, ConfirmScreen)
        assert rig.app.screen._detail.endswith("Strategies keep running.")  # three run: said
        await pilot.press("escape")
        await idle(rig, pilot)
        assert len(await terminal_tickets(rig)) == 2
        await pilot.press("X", "y")
        await idle(rig, pilot)
        assert await terminal_tickets(rig) == set()
        await wait_until(lambda: rig.app.main.positions.table.row_count == 0, "an empty positions table")
        assert set(rig.runtime.engine.runners) == {"scalper", "tight_spread", "gold_watch"}  # they run on
        assert any("CLOSE ALL by keyboard: 2 position(s) closed" in t for t in rig.app.main.log_pane.shown())
        await rig.app.shutdown()


async def test_shift_x_does_not_say_strategies_keep_running_when_none_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=(("USDJPY", "sell", 0.05),))
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("S", "k")  # the kill switch, positions kept: none runs now
        await idle(rig, pilot)
        assert rig.app.main.model.running_count == 0
        await pilot.press("X")
        assert isinstance(rig.app.screen, ConfirmScreen)
        assert "keep running" not in rig.app.screen._detail
        await pilot.press("escape")
        await idle(rig, pilot)
        await rig.app.shutdown()


async def test_tab_and_shift_tab_move_between_the_panes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        main = rig.app.main
        assert rig.app.focused is main.strategies.table
        await pilot.press("tab")
        assert rig.app.focused is main.log_pane.view
        await pilot.press("tab")
        assert rig.app.focused is main.positions.table
        await pilot.press("shift+tab")
        assert rig.app.focused is main.log_pane.view
        await rig.app.shutdown()


async def test_slash_filters_the_log_and_typing_there_sends_no_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        log = rig.app.main.log_pane
        everything = log.shown()
        drawn = len(log.view.lines)
        await pilot.press("slash", *"gold start", "enter")  # s, t, a, r: keys that act elsewhere
        await idle(rig, pilot)
        assert set(rig.runtime.engine.runners) == {"scalper", "tight_spread", "gold_watch"}
        assert rig.app.theme == "mt5-dark"
        shown = log.shown()
        assert shown and len(shown) < len(everything)
        assert all("gold" in line.lower() and "start" in line.lower() for line in shown)
        assert len(log.view.lines) < drawn  # the RichLog itself was redrawn with the matching lines only
        assert f"Log · filter 'gold start': {len(shown)} of {len(everything)}" == str(log.border_title)
        await pilot.press("slash", "escape")
        assert log.shown() == everything
        assert len(log.view.lines) == drawn
        assert str(log.border_title) == "Log"
        await rig.app.shutdown()


async def test_t_moves_to_the_next_theme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        names = rig.app.catalog.names
        assert names[:3] == ["mt5-dark", "mt5-high-contrast", "mt5-light"]
        await pilot.press("t")
        assert rig.app.theme == "mt5-high-contrast"
        await pilot.pause()
        assert rig.app.palette.profit.color is not None
        assert rig.app.palette.profit.color.triplet is not None
        assert rig.app.palette.profit.color.triplet.hex == "#00ff00"  # the theme's own profit colour
        await pilot.press("t", "t")
        assert rig.app.theme == "mt5-dark"
        assert any("theme mt5-high-contrast" in line for line in rig.app.main.log_pane.shown())
        await rig.app.shutdown()


async def test_question_mark_shows_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("question_mark")
        assert isinstance(rig.app.screen, HelpScreen)
        await pilot.press("s")  # keys of the main screen do nothing under the help
        await idle(rig, pilot)
        assert len(rig.runtime.engine.runners) == 3
        await pilot.press("escape")
        assert isinstance(rig.app.screen, MainScreen)
        await rig.app.shutdown()


async def test_q_asks_while_strategies_run_then_stops_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mt5console.core.store import Store

    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("q")
        assert isinstance(rig.app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(rig.app.screen, MainScreen) and rig.runtime.started
        await pilot.press("q", "y")
        await wait_until(lambda: not rig.runtime.started, "the runtime to stop")
    assert rig.app.return_code == 0
    store = Store(tmp_path / "data" / "mt5console.db")
    try:  # quitting is not stopping: the strategies run again at the next start
        assert {r.id: r.state for r in store.list_strategies()} == dict.fromkeys(
            ("gold_watch", "scalper", "tight_spread"), StrategyState.RUNNING
        )
        assert any(e.message == "stopped" for e in store.recent_events())
    finally:
        store.close()


async def test_q_quits_at_once_when_nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        await pilot.press("q")
        await wait_until(lambda: not rig.runtime.started, "the runtime to stop")
    assert rig.app.return_code == 0
