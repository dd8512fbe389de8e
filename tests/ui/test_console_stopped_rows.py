"""A stopped strategy's row keeps its last signal and refusal, across a restart of the console too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mt5console.core.events import Level, LogLine
from mt5console.core.strategy.executor import ENTRY_BLOCKED
from mt5console.ui.stored_activity import last_activity
from tests.ui.console_rig import make_console, next_bar, started, wait_until

SIZE = (160, 40)
pytestmark = pytest.mark.timeout(90)


def cell(rig: object, strategy_id: str, column: str) -> str:
    return str(rig.app.main.strategies.table.get_cell(strategy_id, column))  # type: ignore[attr-defined]


async def test_after_a_restart_a_stopped_strategy_still_shows_its_last_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=())
    async with rig.app.run_test(size=SIZE) as pilot:
        await started(rig)
        runners = rig.runtime.engine.runners
        await next_bar(
            rig,
            lambda: bool(
                runners["scalper"].status.last_signal and runners["tight_spread"].status.last_blocked
            ),
            "a signal and a refusal",
        )
        signal, signal_time = (
            runners["scalper"].status.last_signal,
            runners["scalper"].status.last_signal_time,
        )
        refused = runners["tight_spread"].status.last_blocked
        table = rig.app.main.strategies.table
        for strategy_id in ("scalper", "tight_spread"):
            table.select(strategy_id)
            await pilot.press("s")
        await wait_until(lambda: not {"scalper", "tight_spread"} & set(runners), "both to stop")
        await rig.app.shutdown()
    assert signal_time is not None

    again = make_console(tmp_path, monkeypatch, manual=())  # the same data dir and strategy files
    again.clock.now = rig.clock.now + timedelta(minutes=5)
    async with again.app.run_test(size=SIZE) as pilot:
        await started(again)
        again.app.main.redraw({"strategies"})
        await pilot.pause()
        views = {view.strategy_id: view for view in again.app.main.model.strategy_views()}
        assert views["scalper"].state == "stopped"
        said = views["scalper"].last_signal_time
        assert views["scalper"].last_signal == signal
        # The log line's time: the poll that saw the bar close, a moment after the bar's own time.
        assert said is not None and timedelta(0) <= said - signal_time < timedelta(minutes=1)
        assert views["tight_spread"].last_blocked == refused
        waited = int((again.clock() - said).total_seconds()) // 60
        assert cell(again, "scalper", "signal").startswith("buy ")
        assert cell(again, "scalper", "signal_age") == f"{waited}m"
        assert views["gold_watch"].last_signal == ""  # it never signalled: nothing is made up
        assert cell(again, "gold_watch", "signal") == "—"
        await again.app.shutdown()


def line(source: str, message: str, minute: int) -> LogLine:
    return LogLine(
        level=Level.INFO, source=source, message=message, time=datetime(2026, 11, 18, 13, minute, tzinfo=UTC)
    )


def test_the_latest_taken_signal_and_refusal_of_each_strategy_are_read_back() -> None:
    lines = [
        line("a", "buy signal on EURUSD M1: AND[close > 0 -> true] -> true", 1),
        line("a", f"{ENTRY_BLOCKED}spreadFilter filter: spread 1.7 pips > max 0.1", 2),
        line("a", "sell signal on EURUSD M1: AND[close < 9 -> true] -> true", 3),
        line("a", "buy signal on EURUSD M1 not taken: the sell signal had this bar's one entry (x)", 4),
        line("b", "buy signal on XAUUSD M5: AND[rsi < 30 -> true] -> true", 5),
        line("c", "started from file c.json", 6),
    ]
    found = last_activity(lines, {"a", "c"})
    assert set(found) == {"a"}  # b is not asked for; c never signalled nor was refused
    assert found["a"].last_signal == "sell AND[close < 9 -> true] -> true"
    assert found["a"].last_signal_time == datetime(2026, 11, 18, 13, 3, tzinfo=UTC)
    assert found["a"].last_blocked == "spreadFilter filter: spread 1.7 pips > max 0.1"
    assert found["a"].last_blocked_time == datetime(2026, 11, 18, 13, 2, tzinfo=UTC)
