"""Toasts sit over the log's newest lines: they go soon, and nothing is said only in a toast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mt5console.ui.app import ERROR_SECONDS
from tests.ui.console_rig import make_console, started, wait_until
from tests.ui.test_console_keys import idle

SIZE = (120, 36)
pytestmark = pytest.mark.timeout(60)


async def test_every_toast_is_short_and_its_words_are_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_console(tmp_path, monkeypatch, manual=())
    toasts: list[tuple[str, str, float | None]] = []  # message, severity, timeout: as they are made
    real_notify = rig.app.notify

    def notify(message: str, **options: Any) -> None:
        toasts.append((message, options.get("severity", "information"), options.get("timeout")))
        real_notify(message, **options)

    monkeypatch.setattr(rig.app, "notify", notify)
    async with rig.app.run_test(size=SIZE, notifications=True) as pilot:
        await started(rig)
        await pilot.press("x")  # no position is open: a hint
        rig.app.main.strategies.table.select("gold_watch")
        await pilot.press("s")
        await idle(rig, pilot)
        await pilot.press("s")  # again, on the stopped one: a hint
        await pilot.press("p")  # and pause: a hint
        rig.app.submit("STOP_STRATEGY", {"strategyId": "no_such_strategy"})  # refused by the bus
        await idle(rig, pilot)
        await wait_until(lambda: len(toasts) == 4, "four toasts")
        await pilot.pause()
        shown = rig.app.main.log_pane.shown()
        assert toasts[0][0] == "No position is open."
        for message, _, timeout in toasts:
            assert any(message in line for line in shown), (message, shown[-5:])
            assert timeout is not None and timeout <= ERROR_SECONDS
        assert all(timeout is not None and timeout <= 4 for _, _, timeout in toasts[:3])  # the hints
        await rig.app.shutdown()
