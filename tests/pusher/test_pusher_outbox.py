"""Trade events and acks through the durable outbox while the platform is down, failing or back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mt5console.core.events import PlatformStateChanged
from mt5console.core.store import OutboxRecord, Store
from tests.helpers import always_buy, eventually
from tests.platform_server import ACK_PATH, TRADES_PATH, PlatformServer
from tests.pusher.remote_rig import start_remote
from tests.pusher.soketi_process import Soketi


def outbox_rows(store: Store) -> list[OutboxRecord]:
    rows: list[OutboxRecord] = []
    while (row := store.get_outbox(len(rows) + 1)) is not None:
        rows.append(row)
    return rows


async def test_platform_down_while_trades_happen_nothing_lost_order_kept_delivered_once(
    tmp_path: Path, soketi: Soketi, platform: PlatformServer
) -> None:
    remote = await start_remote(tmp_path, soketi, platform)
    rig = remote.rig
    try:
        await remote.subscribed()
        platform.go_away()  # the platform is down; Pusher still brings commands

        async def command(command_id: str, name: str, parameters: dict[str, Any]) -> None:
            await remote.send(soketi, {"command": name, "commandId": command_id, "parameters": parameters})
            await eventually(lambda: rig.store.get_command(command_id), f"command {command_id}")
            await eventually(
                lambda: any(r.path.endswith(f"/{command_id}/ack") for r in outbox_rows(rig.store)),
                f"the ack of {command_id} queued",
            )

        strategy = always_buy(rules={"riskManagement": {"lotSize": 0.02, "maxPositions": 3}})
        await command("d1", "START_STRATEGY", strategy)
        await rig.market.poll_once()
        for _ in range(3):
            await rig.bar()
        tickets = [p.ticket for p in await rig.broker.positions()]
        assert len(tickets) == 3
        await command("d2", "CLOSE_POSITION", {"ticket": tickets[0], "volume": 0.01})
        await command("d3", "CLOSE_POSITION", {"ticket": tickets[1]})
        await rig.bar()  # the tracker sees the partial and the close
        await command("d4", "STOP_ALL", {"closePositions": True})
        await rig.market.poll_once()
        rows = outbox_rows(rig.store)
        events = [(r.body["event"], r.body["ticket"]) for r in rows if r.kind == "trade_event"]
        assert events[:3] == [("opened", t) for t in tickets]  # then one more, after the close
        assert ("partial", tickets[0]) in events and ("closed", tickets[1]) in events
        opened = [t for e, t in events if e == "opened"]
        assert sorted(t for e, t in events if e == "closed") == sorted(opened)  # STOP_ALL closed the rest
        waiting = rig.store.outbox_pending_count()
        assert waiting == len(rows) == len(events) + 4
        assert remote.delivery.state == "retrying"
        seen = [e for e in rig.seen if isinstance(e, PlatformStateChanged)]
        assert any(e.state == "retrying" and e.outbox_length == waiting for e in seen)

        platform.fail_status = 500  # back, but failing: still nothing is lost
        platform.start()
        await eventually(
            lambda: sum(c.status == 500 for c in platform.snapshot()) >= 2, "retries answered 500"
        )
        assert rig.store.outbox_pending_count() == waiting
        platform.fail_status = None
        await eventually(lambda: rig.store.outbox_pending_count() == 0, "the outbox to drain", within=30)

        taken = platform.taken(TRADES_PATH) + platform.taken(ACK_PATH)
        taken.sort(key=lambda call: call.time)
        assert [(c.path, c.body) for c in taken] == [(r.path, r.body) for r in rows]  # in order, once each
        # Each record keeps one Idempotency-Key over all its tries (the 500s and the one taken), and no
        # two records share one: a try that timed out here but was taken there can be told apart.
        keys = [c.headers["idempotency-key"] for c in taken]
        assert len(set(keys)) == len(rows)
        tried = [c for c in platform.snapshot() if c.status == 500 and c.path in {r.path for r in rows}]
        assert tried and {c.headers["idempotency-key"] for c in tried} <= set(keys)
        assert platform.acks()["d4"] == [{"status": "ok", "error": None}]
        assert remote.delivery.state == "ok"
        last = [e for e in rig.seen if isinstance(e, PlatformStateChanged)][-1]
        assert (last.state, last.outbox_length) == ("ok", 0)
        text = rig.text()
        assert "cannot deliver to the platform" in text and "platform unreachable" in text
        assert "the platform is failing (HTTP 500)" in text
        assert "the platform is reachable again" in text
    finally:
        await remote.close()
