"""The header at 80 columns on a paired console: the states a trader glances at stay in sight."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mt5console.core.broker.server_clock import ServerClock
from mt5console.core.events import (
    AgentStateChanged,
    PlatformStateChanged,
    PusherStateChanged,
    ReconnectAttempt,
)
from mt5console.ui.panes.header import StatusLine
from tests.ui.console_rig import make_console, started

pytestmark = pytest.mark.timeout(60)


def drawn(status: StatusLine) -> str:
    lines = status.render_lines(status.region.reset_offset)
    return "".join(segment.text for line in lines for segment in line)


async def test_a_narrow_paired_header_keeps_every_state_and_sheds_details(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig)
        status = rig.app.main.status
        events = rig.runtime.events
        beat = datetime(2026, 11, 18, 13, 0, 30, tzinfo=UTC)
        events.publish(PlatformStateChanged(state="ok", retry_in=0, outbox_length=3, detail=""))
        events.publish(PusherStateChanged(state="subscribed", channel="private-executor-7"))
        events.publish(AgentStateChanged(state="online", last_heartbeat=beat, jobs_done=3, jobs_failed=1))
        await pilot.pause()
        status.redraw()
        line = drawn(status)
        assert len(line) == 80
        for state in ("SIMULATED", "● connected", "platform ok", "pusher subscribed", "agent online"):
            assert state in line, f"{state!r} is cut off: {line!r}"
        assert "jobs 3 done" not in line  # a detail gave way for them
        # Wide enough, nothing is left out.
        left, right = status.fitted(400)
        assert "agent online (heartbeat 13:00:30, jobs 3 done, 1 failed)" in right.plain
        assert left.plain.startswith("mt5console │  SIMULATED  │ #5012345 ")
        assert right.plain.endswith("UTC")

        # Worst case: the terminal reconnecting while the platform retries. The terminal's state
        # stays whole; the links are cut short (with an ellipsis) instead.
        events.publish(PlatformStateChanged(state="retrying", retry_in=2, outbox_length=3, detail="refused"))
        events.publish(ReconnectAttempt(attempt=3, error="IPC timeout", retry_in=4))
        await pilot.pause()
        status.redraw()
        line = drawn(status)
        assert len(line) == 80
        for state in ("SIMULATED", "● reconnecting", "platform retrying", "pusher subscribed"):
            assert state in line, f"{state!r} is cut off: {line!r}"
        assert line.rstrip().endswith("…")
        await rig.app.shutdown()


async def test_the_header_drops_only_what_it_must(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig)
        await pilot.pause()
        line = drawn(rig.app.main.status)
        # Unpaired at 80 columns everything fits: name, account, state and clock.
        assert line.strip().startswith("mt5console │  SIMULATED  │ #")
        assert "● connected" in line and line.rstrip().endswith("UTC")
        await rig.app.shutdown()


async def test_the_header_shows_a_trade_server_clock_that_is_not_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=(), sim_server_utc_offset=3.0)
    async with rig.app.run_test(size=(160, 48)) as pilot:
        await started(rig)
        await pilot.pause()
        status = rig.app.main.status
        status.redraw()
        assert "● connected │ server UTC+03:00" in drawn(status)
        # A real terminal's clock not yet confirmed by a live tick: said, with a question mark.
        rig.runtime.broker.server_clock = ServerClock.learning(None)
        status.redraw()
        assert "server UTC+00:00?" in drawn(status)
        await rig.app.shutdown()


async def test_a_trade_server_on_utc_adds_nothing_to_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=())
    async with rig.app.run_test(size=(160, 48)) as pilot:
        await started(rig)
        await pilot.pause()
        status = rig.app.main.status
        status.redraw()
        assert "server" not in drawn(status).replace("MT5Console-Sim", "")
        await rig.app.shutdown()
