"""The console as a whole: events to panes by diff, errors in one place, headless parity, the command
palette, the header's link state, and a start that fails."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.events import LogLine
from mt5console.core.logsink import format_line
from mt5console.core.settings import Settings
from mt5console.core.store import StrategyState
from mt5console.headless import LinePrinter
from mt5console.ui.app import ConsoleApp
from tests.ui.console_rig import make_console, next_bar, started, wait_until
from tests.ui.test_console_keys import idle, stored_state

pytestmark = pytest.mark.timeout(60)
WIDE = (140, 40)


async def test_positions_table_is_updated_by_diff_and_keeps_the_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=WIDE) as pilot:
        await started(rig)
        table = rig.app.main.positions.table
        cleared: list[bool] = []
        monkeypatch.setattr(table, "clear", lambda *a, **k: cleared.append(True))
        (manual,) = [p.ticket for p in rig.runtime.market.positions]
        table.focus()
        table.select(str(manual))
        updates = table.cell_updates
        magic = rig.runtime.engine.runners["scalper"].magic
        await next_bar(rig, lambda: any(p.magic == magic for p in rig.runtime.market.positions), "an entry")
        await pilot.pause()
        opened = next(p.ticket for p in rig.runtime.market.positions if p.magic == magic)
        keys = [row.key.value for row in table.ordered_rows]
        assert keys == [str(manual), str(opened), "total"]  # new rows above the totals row
        assert table.selected_key() == str(manual)  # the cursor stayed on the row the user chose
        assert str(table.get_cell(str(opened), "strategy")) == "scalper"
        assert str(table.get_cell(str(manual), "strategy")) == "manual"
        total = sum(p.profit + p.swap for p in rig.runtime.market.positions)
        assert str(table.get_cell("total", "pnl")) == f"{total:+,.2f}"
        assert table.cell_updates > updates and not cleared
        before = table.cell_updates
        rig.app.main.redraw({"positions"})  # nothing changed: nothing is rewritten
        assert table.cell_updates == before
        await rig.app.shutdown()


async def test_strategies_pane_shows_signals_blocks_positions_and_pnl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=WIDE) as pilot:
        await started(rig)
        runners = rig.runtime.engine.runners
        await next_bar(
            rig,
            lambda: bool(
                runners["scalper"].status.last_signal and runners["tight_spread"].status.last_blocked
            ),
            "a signal and a refusal",
        )
        rig.clock.advance(seconds=30)
        await pilot.pause(1.1)  # the pane's one-second refresh
        table = rig.app.main.strategies.table
        row = {
            c.key: str(table.get_cell("scalper", c.key))
            for c in rig.app.main.strategies.table.ordered_columns
        }
        assert row["open"] == "1" and row["state"] == "running"
        signal_time = runners["scalper"].status.last_signal_time
        assert signal_time is not None
        waited = int((rig.clock() - signal_time).total_seconds())
        assert row["signal"].startswith("buy ") and row["signal_age"] == f"{waited}s" and waited >= 30
        scalper_pnl = sum(
            p.profit + p.swap for p in rig.runtime.market.positions if p.magic == runners["scalper"].magic
        )
        assert row["pnl"] == (f"{scalper_pnl:+,.2f}" if round(scalper_pnl, 2) else "0.00")
        blocked = str(table.get_cell("tight_spread", "blocked"))
        assert "spread" in blocked
        assert str(rig.app.main.strategies.border_title) == "Strategies · 3 running"
        await rig.app.shutdown()


async def test_a_failing_worker_is_logged_stored_and_notified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=WIDE, notifications=True) as pilot:
        await started(rig)

        async def broken(command: Any) -> Any:
            raise RuntimeError("the bus fell over")

        monkeypatch.setattr(rig.runtime.bus, "submit", broken)
        await pilot.press("p")
        await wait_until(
            lambda: any("the bus fell over" in line for line in rig.app.main.log_pane.shown()),
            "the error line",
        )
        line = next(line for line in rig.app.main.log_pane.shown() if "the bus fell over" in line)
        assert "ERROR" in line and "PAUSE_STRATEGY failed: RuntimeError: the bus fell over" in line
        notes = [n for n in rig.app._notifications if n.severity == "error"]
        assert any("the bus fell over" in n.message for n in notes)
        stored = [e.message for e in rig.runtime.store.recent_events()]
        assert any("the bus fell over" in m for m in stored)  # on disk too, like every log line
        assert stored_state(rig, "scalper")[0] is StrategyState.RUNNING
        await rig.app.shutdown()


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
async def test_the_log_pane_shows_what_headless_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verbose: bool
) -> None:
    rig = make_console(tmp_path, monkeypatch, verbose=verbose)
    printed = io.StringIO()
    rig.runtime.subscribe(LinePrinter(printed, verbose=verbose))
    async with rig.app.run_test(size=WIDE) as pilot:
        await started(rig)
        runners = rig.runtime.engine.runners
        await next_bar(rig, lambda: bool(runners["scalper"].status.last_signal), "a signal")
        await pilot.pause()
        await rig.app.shutdown()
    lines = printed.getvalue().splitlines()
    shown = rig.app.main.log_pane.shown()
    assert lines == shown
    assert any("tight_spread" in line and "entry blocked" in line for line in shown)
    # verbose: a "prices" line a minute (FrontEndLines), no longer one line per tick
    assert any(" prices " in line for line in shown) is verbose
    assert not any(" tick " in line for line in shown)


async def test_every_key_is_in_the_command_palette_and_works_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=WIDE) as pilot:
        await started(rig)
        titles = [command.title for command in rig.app.get_system_commands(rig.app.main)]
        for expected in (
            "Stop (s)",
            "Pause (p)",
            "Kill (S)",
            "Close (x)",
            "Close all (X)",
            "Pane (tab)",
            "Find (/)",
            "Theme (t)",
            "Help (?)",
            "Quit (q)",
        ):
            assert expected in titles
        rig.app.main.strategies.table.select("gold_watch")
        await pilot.press("ctrl+p")
        await pilot.press(*"Pause (p)")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await idle(rig, pilot)
        assert rig.runtime.engine.runners["gold_watch"].paused
        assert stored_state(rig, "gold_watch") == (StrategyState.PAUSED, "paused by keyboard")
        await rig.app.shutdown()


async def test_footer_lists_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig)
        await pilot.pause()
        shown = {binding.key for (_, binding, enabled, _) in rig.app.active_bindings.values() if binding.show}
        assert {"s", "p", "S", "x", "X", "tab", "slash", "t", "question_mark", "q"} <= shown
        await rig.app.shutdown()


async def test_header_follows_the_terminal_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=WIDE) as pilot:
        await started(rig)
        status = rig.app.main.status
        text = status.line().plain
        assert "SIMULATED" in text and "● connected" in text and "#" in text
        rig.terminal.simulate_disconnect()
        await wait_until(lambda: rig.app.model.terminal in ("lost", "reconnecting"), "the link to drop")
        await pilot.pause()
        assert "connected" not in status.line().plain.replace("reconnecting", "")
        rig.terminal.simulate_reconnect()
        await wait_until(lambda: rig.app.model.terminal == "connected", "the link to come back")
        await pilot.pause()
        assert "● connected" in status.line().plain
        await rig.app.shutdown()


class NeverThere:
    """A terminal that never answers initialize() (MT5 not running)."""

    def initialize(self, **_: Any) -> bool:
        return False

    def shutdown(self) -> None:
        return None

    def last_error(self) -> tuple[int, str]:
        return (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")


async def test_an_unreachable_terminal_ends_the_console_with_exit_code_3(tmp_path: Path) -> None:
    settings = Settings(
        broker="mt5",
        data_dir=tmp_path / "data",
        config_dir=tmp_path,
        connect_attempts=2,
        reconnect_interval=0.01,
    )
    app = ConsoleApp(settings, module=NeverThere)
    async with app.run_test(size=WIDE):
        await wait_until(lambda: app.return_code is not None, "the console to give up")
    assert app.return_code == 3
    assert app.startup_error is not None and "MetaTrader 5 x64 not found" in app.startup_error
    assert app.runtime.store is None  # closed again
    lines = [format_line(line) for line in app.runtime.events.log_history if isinstance(line, LogLine)]
    assert any("after 2 attempt(s)" in line for line in lines)


async def test_header_shows_the_platform_pusher_and_agent_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mt5console.core.events import AgentStateChanged, PlatformStateChanged, PusherStateChanged

    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=(160, 30)) as pilot:
        await started(rig)
        status = rig.app.main.status
        assert "pusher" not in status.right().plain  # not configured: nothing said
        events = rig.runtime.events
        events.publish(PusherStateChanged(state="reconnecting", channel="private-executor-7", retry_in=4))
        events.publish(PlatformStateChanged(state="retrying", retry_in=2, outbox_length=3, detail="refused"))
        events.publish(AgentStateChanged(state="online", last_heartbeat=None, jobs_done=2, jobs_failed=1))
        await pilot.pause()
        right = status.right().plain
        assert "pusher reconnecting (retry in 4s)" in right
        assert "platform retrying (retry in 2s, 3 waiting)" in right
        assert "agent online (no heartbeat yet, jobs 2 done, 1 failed)" in right
        beat = datetime(2026, 11, 18, 13, 0, 30, tzinfo=UTC)
        events.publish(AgentStateChanged(state="online", last_heartbeat=beat, jobs_done=3, jobs_failed=1))
        await pilot.pause()
        assert "agent online (heartbeat 13:00:30, jobs 3 done, 1 failed)" in status.right().plain
        events.publish(PusherStateChanged(state="subscribed", channel="private-executor-7"))
        events.publish(AgentStateChanged(state="off", last_heartbeat=None, jobs_done=2, jobs_failed=1))
        await pilot.pause()
        right = status.right().plain
        assert "pusher subscribed" in right and "agent" not in right
        await rig.app.shutdown()


async def test_todays_pnl_counts_what_closed_today_and_starts_again_at_midnight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mt5console.core.events import PositionClosed

    rig = make_console(
        tmp_path, monkeypatch, strategies=[], manual=(("USDJPY", "sell", 0.05), ("EURUSD", "buy", 0.02))
    )
    closed: list[float] = []
    rig.runtime.subscribe(lambda e: closed.append(e.profit) if isinstance(e, PositionClosed) else None)
    async with rig.app.run_test(size=WIDE) as pilot:
        await started(rig)
        main = rig.app.main
        await wait_until(lambda: main.today_realised is not None, "today's P&L")
        assert main.today_realised == 0.0
        rig.clock.advance(minutes=7)  # prices move: the positions gain or lose
        await wait_until(lambda: len(closed) == 0 and rig.runtime.market.account is not None, "a poll")
        await pilot.press("X", "y")
        await wait_until(lambda: len(closed) == 2, "both positions closed")
        await wait_until(
            lambda: main.today_realised == pytest.approx(sum(closed)), "today's P&L to count them"
        )
        await wait_until(lambda: rig.app.model.positions == (), "no position left")
        assert main.today_pnl() == pytest.approx(sum(closed) + rig.app.model.account.profit)
        assert dict(main.account.pairs())["Today"].plain == f"{round(sum(closed), 2):+,.2f}"
        rig.clock.advance(hours=11, minutes=30)  # past 00:00 UTC
        rig.app._new_day()
        await wait_until(lambda: main.today_realised == 0.0, "a new day")
        await rig.app.shutdown()


async def test_a_second_stop_request_does_not_cancel_the_shutdown_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stop requests (a service stop as the SSH session drops, tested end to end with SIGTERM then
    SIGHUP in tests/test_console_tmux.py): the second cancelled the shutdown already stopping the
    runtime, which then never reached exit, and the console hung."""
    rig = make_console(tmp_path, monkeypatch)
    async with rig.app.run_test(size=WIDE):
        await started(rig)
        stop = rig.runtime.stop

        async def slow_stop() -> None:  # so that the second request lands while the first is stopping
            await asyncio.sleep(0.5)
            await stop()

        monkeypatch.setattr(rig.runtime, "stop", slow_stop)
        rig.app._stop_signal("SIGTERM")
        await wait_until(lambda: rig.app._stopping, "the shutdown under way", within=5)
        # A second SIGTERM, not SIGHUP: in-process, a SIGHUP would make the console leave with os._exit
        # (its terminal gone), and take the test run with it.
        rig.app._stop_signal("SIGTERM")
        await wait_until(lambda: rig.app.return_code is not None, "the console's exit", within=10)
    assert rig.app.return_code == 0
    assert not rig.runtime.started
