"""A long platform outage is said again every REMIND_EVERY, not only once at its start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mt5console.core.agent import outbox as outbox_module
from mt5console.core.agent.outbox import OutboxDelivery
from mt5console.core.agent.platform import Backoff, PlatformClient
from mt5console.core.events import EventBus, Level, LogLine
from mt5console.core.store import Store
from tests.pusher.soketi_process import free_port


async def test_a_long_outage_is_said_again_every_ten_minutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [datetime(2026, 11, 18, 13, 0, tzinfo=UTC)]
    monkeypatch.setattr(outbox_module, "utcnow", lambda: now[0])
    store = Store(tmp_path / "db.sqlite")
    events = EventBus()
    said: list[tuple[Level, str]] = []
    events.subscribe(lambda e: said.append((e.level, e.message)) if isinstance(e, LogLine) else None)
    client = PlatformClient(f"http://127.0.0.1:{free_port()}", "key", timeout=1.0)  # nobody listens
    delivery = OutboxDelivery(store, client, events, backoff=Backoff(1.0, 1.0, jitter=0))
    try:
        store.outbox_put("trade_event", "POST", "/agents/a/trades", {"event": "opened"}, when=now[0])
        for _ in range(7):  # 24 minutes of an outage, a try every 4 minutes
            assert await delivery.deliver_due() == 0
            now[0] += timedelta(minutes=4)
        warnings = [m for level, m in said if level is Level.WARNING and "cannot deliver" in m]
        assert len(warnings) == 3  # at 13:00, then 13:12 and 13:24 (ten minutes or more after the last)
        assert warnings[0].startswith("cannot deliver to the platform: the platform cannot be reached (")
        assert warnings[1].startswith("cannot deliver to the platform for 12 min: the platform cannot be")
        assert warnings[2].startswith("cannot deliver to the platform for 24 min:")
        assert "1 request(s) wait in the outbox" in warnings[2]
    finally:
        await client.aclose()
        store.close()
