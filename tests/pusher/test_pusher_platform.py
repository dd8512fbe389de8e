"""The platform client, the backoff, the outbox delivery loop and trade reporting, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from mt5console.core.agent.outbox import OutboxDelivery
from mt5console.core.agent.platform import (
    Backoff,
    PlatformClient,
    PlatformRefused,
    PlatformUnavailable,
    why_unavailable,
)
from mt5console.core.agent.reporting import PlatformReporter
from mt5console.core.broker.models import Side
from mt5console.core.events import EventBus, LogLine, PlatformStateChanged, utcnow
from mt5console.core.store import Store
from tests.helpers import always_buy, eventually, make_rig
from tests.platform_server import TRADES_PATH, PlatformServer
from tests.pusher.remote_rig import PAIRING_KEY, fast
from tests.pusher.soketi_process import free_port

# --- backoff ------------------------------------------------------------------------------------------


def test_backoff_doubles_from_1_to_60_seconds_and_jitter_only_shortens() -> None:
    exact = Backoff(rand=lambda: 0.0)
    assert [exact.next_delay() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    exact.reset()
    assert exact.next_delay() == 1
    most = Backoff(jitter=0.25, rand=lambda: 1.0)
    assert [most.next_delay() for _ in range(3)] == [0.75, 1.5, 3.0]
    real = Backoff()
    delays = [real.next_delay() for _ in range(200)]
    assert all(0.75 * 60 <= d <= 60 for d in delays[10:])
    assert len(set(delays[10:])) > 100  # jittered: consoles do not come back in step
    with pytest.raises(ValueError, match="first delay"):
        Backoff(0)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)


# --- the client ---------------------------------------------------------------------------------------


async def test_client_sends_the_bearer_key_and_json_and_sorts_the_answers(
    bare_platform: PlatformServer,
) -> None:
    client = PlatformClient(bare_platform.url + "/", PAIRING_KEY, timeout=2.0)
    try:
        answer = await client.request("POST", "/agents/a1/trades", {"event": "opened", "ticket": 5})
        assert answer.status == 201 and answer.body == {"ok": True}
        call = bare_platform.snapshot()[-1]
        assert call.headers["authorization"] == f"Bearer {PAIRING_KEY}"
        assert call.headers["content-type"] == "application/json"
        assert (call.path, call.body) == ("/agents/a1/trades", {"event": "opened", "ticket": 5})

        with pytest.raises(PlatformRefused, match=r"POST /agents/a1/nowhere: HTTP 404"):
            await client.request("POST", "/agents/a1/nowhere", {})
        bare_platform.fail_status = 503
        bare_platform.fail_headers = {"Retry-After": "7"}
        with pytest.raises(PlatformUnavailable, match="HTTP 503") as caught:
            await client.request("POST", "/agents/a1/trades", {})
        assert caught.value.retry_after == 7.0 and caught.value.status == 503
        bare_platform.fail_status = None
        bare_platform.delay = 1.0
        slow = PlatformClient(bare_platform.url, PAIRING_KEY, timeout=0.2)
        with pytest.raises(PlatformUnavailable, match="timed out"):
            await slow.request("POST", "/agents/a1/trades", {})
        await slow.aclose()
    finally:
        await client.aclose()

    wrong_key = PlatformClient(bare_platform.url, "not-the-key", timeout=2.0)
    bare_platform.delay = 0.0
    with pytest.raises(PlatformUnavailable, match="HTTP 401") as refused:  # held back, not thrown away
        await wrong_key.request("POST", "/agents/a1/trades", {})
    await wrong_key.aclose()
    # Said as what it is, with what to do: waiting does not mend a key the platform does not accept.
    assert why_unavailable(refused.value) == (
        "the platform does not accept the pairing key (HTTP 401): "
        "check --key / MT5C_PAIRING_KEY, or pair again"
    )
    assert why_unavailable(caught.value) == "the platform is failing (HTTP 503)"

    nobody = PlatformClient(f"http://127.0.0.1:{free_port()}", PAIRING_KEY, timeout=2.0)
    with pytest.raises(PlatformUnavailable, match="platform unreachable") as unreachable:
        await nobody.request("POST", "/agents/a1/trades", {})
    await nobody.aclose()
    assert why_unavailable(unreachable.value) == "the platform cannot be reached"
    with pytest.raises(ValueError, match="api_url"):
        PlatformClient("ftp://example.com", PAIRING_KEY)


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate no authority signed (what a man in the middle would have)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_client_verifies_tls_certificates(self_signed: ssl.SSLContext) -> None:
    server = PlatformServer(key=PAIRING_KEY)
    server.tls = self_signed
    server.start()
    client = PlatformClient(server.url, PAIRING_KEY, timeout=5.0)
    try:
        assert server.url.startswith("https://")
        with pytest.raises(PlatformUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await client.request("POST", "/agents/a1/trades", {"event": "opened"})
        assert not [c for c in server.snapshot() if c.taken]  # a self-signed platform got nothing
    finally:
        await client.aclose()
        server.go_away()


# --- the delivery loop --------------------------------------------------------------------------------


async def test_a_refused_request_is_given_up_and_the_rest_still_go_in_order(
    tmp_path: Path, bare_platform: PlatformServer
) -> None:
    events = EventBus()
    seen: list[object] = []
    events.subscribe(seen.append)
    store = Store(tmp_path / "outbox.db")
    client = PlatformClient(bare_platform.url, PAIRING_KEY, timeout=2.0)
    try:
        bare_platform.refuse_paths["/agents/a1/commands/gone/ack"] = 422
        ids = [
            store.outbox_put("trade_event", "POST", "/agents/a1/trades", {"n": 1}),
            store.outbox_put("ack", "POST", "/agents/a1/commands/gone/ack", {"status": "ok"}),
            store.outbox_put("trade_event", "POST", "/agents/a1/trades", {"n": 2}),
        ]
        delivery = OutboxDelivery(store, client, events, backoff=fast())
        assert await delivery.deliver_due() == 3
        assert [c.body for c in bare_platform.taken(TRADES_PATH)] == [{"n": 1}, {"n": 2}]
        refused = store.get_outbox(ids[1])
        assert refused is not None and refused.abandoned_at is not None
        assert "HTTP 422" in (refused.last_error or "")
        errors = [e.message for e in seen if isinstance(e, LogLine) and e.level.value == "ERROR"]
        assert any("the platform refused ack #2, given up" in m for m in errors)
        assert store.outbox_pending_count() == 0
    finally:
        await client.aclose()
        store.close()


async def test_retry_after_is_honoured_and_a_restart_resumes_where_it_stopped(
    tmp_path: Path, bare_platform: PlatformServer
) -> None:
    store = Store(tmp_path / "outbox.db")
    client = PlatformClient(bare_platform.url, PAIRING_KEY, timeout=2.0)
    try:
        for n in range(3):
            store.outbox_put("trade_event", "POST", "/agents/a1/trades", {"n": n})
        bare_platform.fail_status = 429
        bare_platform.fail_headers = {"Retry-After": "30"}
        first = OutboxDelivery(store, client, EventBus(), backoff=fast())
        assert await first.deliver_due() == 0
        head = store.get_outbox(1)
        assert head is not None and head.attempts == 1
        assert head.next_attempt_at >= utcnow() + timedelta(seconds=29)  # not the 0.05 s backoff
        assert first.state == "retrying"

        # A console started again later: the wait is on disk, and then everything goes, in order.
        bare_platform.fail_status = None
        store.outbox_failed(1, "HTTP 429", utcnow() + timedelta(seconds=0.3))
        events = EventBus()
        states: list[PlatformStateChanged] = []
        events.subscribe(lambda e: states.append(e) if isinstance(e, PlatformStateChanged) else None)
        second = OutboxDelivery(store, client, events, backoff=fast(), idle_check=0.1)
        task = asyncio.create_task(second.run())
        await eventually(lambda: store.outbox_pending_count() == 0, "the delivery after the wait")
        # Another writer (the job executor) queues without waking the loop: it is still sent.
        store.outbox_put("job_result", "POST", "/agents/a1/trades", {"n": 3})
        await eventually(lambda: store.outbox_pending_count() == 0, "a request queued without wake()")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert [c.body for c in bare_platform.taken(TRADES_PATH)] == [{"n": i} for i in range(4)]
        assert states[0].outbox_length == 3 and states[-1].outbox_length == 0
    finally:
        await client.aclose()
        store.close()


# --- trade reporting from the tracker -----------------------------------------------------------------


async def test_the_tracker_reports_opened_modified_partial_closed_and_adopted_trades(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    queued: list[int] = []
    reporter = PlatformReporter(rig.store, rig.events, "agent/7", wake=lambda: queued.append(1))
    reporter.attach()
    try:
        strategy = always_buy(rules={"riskManagement": {"lotSize": 0.02, "maxPositions": 1}})
        assert (await rig.bus.submit_payload({"command": "START_STRATEGY", "parameters": strategy}, "t"))[
            1
        ].ok
        await rig.market.poll_once()
        await rig.bar()
        (position,) = await rig.broker.positions()
        await rig.broker.modify(position.ticket, sl=round(position.sl - 0.001, 5), tp=position.tp)
        await rig.market.poll_once()
        await rig.engine.close_position(position.ticket, volume=0.01, by="test")
        await rig.market.poll_once()
        await rig.engine.stop("always", close_positions=True, by="test")
        await rig.market.poll_once()
        manual = await rig.broker.open_market("EURUSD", Side.SELL, 0.01)
        await rig.market.poll_once()

        rows = [rig.store.get_outbox(n) for n in range(1, 6)]
        assert all(r is not None for r in rows) and rig.store.get_outbox(6) is None
        bodies = [r.body for r in rows if r is not None]
        assert {r.path for r in rows if r is not None} == {"/agents/agent%2F7/trades"}
        assert [(b["event"], b["ticket"]) for b in bodies] == [
            ("opened", position.ticket),
            ("modified", position.ticket),
            ("partial", position.ticket),
            ("closed", position.ticket),
            ("opened", manual.position),
        ]
        opened, modified, partial, closed, adopted = bodies
        assert set(opened) == {
            "event", "strategyId", "ticket", "symbol", "side", "volume", "price", "sl", "tp", "profit", "time"
        }  # fmt: skip
        assert opened["strategyId"] == "always" and opened["side"] == "buy" and opened["volume"] == 0.02
        assert opened["price"] == position.price_open and opened["time"].endswith("+00:00")
        assert modified["sl"] == round(position.sl - 0.001, 5) and modified["tp"] == position.tp
        assert partial["volume"] == 0.01 and closed["volume"] == 0.01
        trade = rig.store.trade_by_ticket(position.ticket)
        assert trade is not None and closed["profit"] == round(trade.profit, 2)
        assert closed["profit"] == round(
            partial["profit"] + rig.store.deals_for_position(position.ticket)[-1].profit, 2
        )
        assert adopted["strategyId"] is None and adopted["side"] == "sell"
        assert len(queued) == 5
    finally:
        await rig.close()
