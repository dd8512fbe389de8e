"""Review fixes of the agent: secrets in echoed error answers, a saved pairing never sent to another
platform, and a refused pairing key said as such."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mt5console.core.agent.outbox import OutboxDelivery
from mt5console.core.agent.pairing import (
    AgentFileError,
    AgentIdentity,
    agent_file,
    apply_saved_identity,
    load_identity,
    save_identity,
)
from mt5console.core.agent.platform import MAX_ERROR_TEXT, Backoff, PlatformClient, PlatformUnavailable
from mt5console.core.events import EventBus, LogLine
from mt5console.core.store import Store
from tests.helpers import eventually
from tests.platform_server import PlatformServer

from .test_agent_loop import KEY, agent_settings, start_console

ECHOED_KEY = "PAIRED_SECRET_777_abcdef"
PUSHER_SECRET = "pusher-secret-9f3b"


class EchoServer:
    """A platform that fails every call with 500 and a debug answer quoting the request's
    Authorization header (as debug pages and validation errors do), after ``padding`` characters,
    and a known secret at the end."""

    def __init__(self, padding: int) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = {"pad": "x" * owner.padding, "auth": self.headers.get("Authorization")}
                answer["also"] = f"secret {PUSHER_SECRET}"
                payload = json.dumps(answer).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.padding = padding
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def padding_that_cuts_inside_the_key() -> int:
    """The JSON answer is ``{"pad": "xx...", "auth": "Bearer KEY...``: pad it so that the cut at
    MAX_ERROR_TEXT falls in the middle of the key."""
    before_key = len('{"pad": "') + len('", "auth": "Bearer ')
    return MAX_ERROR_TEXT - before_key - len(ECHOED_KEY) // 2


def fragments(secret: str) -> list[str]:
    return [secret[:8], secret[-8:]]


async def test_an_echoed_key_is_masked_before_the_answer_is_cut() -> None:
    with EchoServer(padding_that_cuts_inside_the_key()) as server:
        client = PlatformClient(server.url, ECHOED_KEY, secrets=(PUSHER_SECRET,))
        try:
            with pytest.raises(PlatformUnavailable) as caught:
                await client.request("POST", "/agents/a/heartbeat", {})
        finally:
            await client.aclose()
    message = str(caught.value)
    assert '"auth": "Bearer ***' in message
    assert not any(piece in message for piece in fragments(ECHOED_KEY))


@pytest.mark.parametrize("padding", [padding_that_cuts_inside_the_key(), 0])
async def test_the_outbox_stores_and_logs_errors_masked(tmp_path: Path, padding: int) -> None:
    store = Store(tmp_path / "db.sqlite")
    events = EventBus()
    events.set_secrets((ECHOED_KEY, PUSHER_SECRET))
    lines: list[str] = []
    events.subscribe(lambda e: lines.append(e.message) if isinstance(e, LogLine) else None)
    with EchoServer(padding) as server:
        # The link's client, as built today: it knows its own key only; the bus knows the rest.
        client = PlatformClient(server.url, ECHOED_KEY, timeout=5.0)
        delivery = OutboxDelivery(store, client, events, backoff=Backoff(1.0, 1.0, jitter=0))
        try:
            entry = store.outbox_put("trade_event", "POST", "/agents/a/trades", {"event": "opened"})
            assert await delivery.deliver_due() == 0
        finally:
            await client.aclose()
    record = store.get_outbox(entry)
    assert record is not None and record.last_error is not None
    assert "HTTP 500" in record.last_error and '"auth": "Bearer ***' in record.last_error
    for secret in (ECHOED_KEY, PUSHER_SECRET):
        for text in (record.last_error, delivery.last_error, *lines):
            assert not any(piece in text for piece in fragments(secret)), text


# --- a saved pairing is for the platform it was made with -------------------------------------


async def test_a_pairing_saved_with_another_platform_is_never_sent_there(tmp_path: Path) -> None:
    new_key = "new-key-for-b-5d2c"
    platform_b = PlatformServer(key=new_key)
    platform_b.pair_answer = {"agent_id": "agent-b-1", "pairing_key": "issued-by-b-77aa"}
    with platform_b.serving():
        settings = agent_settings(tmp_path, platform_b.url, agent_id=None, pairing_key=new_key)
        saved_a = AgentIdentity("agent-a-1", "saved-key-of-a-31c9", "http://platform-a.example")
        save_identity(agent_file(settings), saved_a)
        console = await start_console(settings, tmp_path / "sim.db")
        try:
            await eventually(platform_b.heartbeats, "a heartbeat once paired with B", within=5)
        finally:
            await console.runtime.stop()
    calls = platform_b.snapshot()
    assert all(saved_a.pairing_key not in str(call.headers) + str(call.body) for call in calls)
    (pair,) = platform_b.pair_calls()
    assert pair.headers["authorization"] == f"Bearer {new_key}" and pair.body["pairing_key"] == new_key
    assert load_identity(agent_file(settings)) == AgentIdentity(
        "agent-b-1", "issued-by-b-77aa", platform_b.url
    )
    assert (
        f"pairing with {platform_b.url} ({agent_file(settings)} holds the pairing with "
        "http://platform-a.example, whose key is not sent to another platform: pairing afresh with the "
        "given key, the answer replaces it)" in console.lines()
    )


def test_which_saved_pairing_is_used_and_why_is_said(tmp_path: Path) -> None:
    url = "http://platform-b.example"
    settings = agent_settings(tmp_path, url, agent_id=None, pairing_key="given-key-0001")
    path = agent_file(settings)
    said: list[str] = []

    # Saved with another platform, no key given: nothing of it is used, and the log says why.
    save_identity(path, AgentIdentity("agent-a", "saved-a-key", "http://platform-a.example/"))
    chosen = apply_saved_identity(replace(settings, pairing_key=None), say=said.append)
    assert (chosen.agent_id, chosen.pairing_key) == (None, None)
    assert said == [
        f"{path} holds the pairing with http://platform-a.example/ (agent agent-a), not with {url}: its "
        "key is not sent there; give --key to pair with it, or --agent-id with its key"
    ]

    # The same platform, spelled with another case and a final slash: the saved pairing is used.
    said.clear()
    save_identity(path, AgentIdentity("agent-b", "given-key-0001", "HTTP://Platform-B.example/"))
    chosen = apply_saved_identity(settings, say=said.append)
    assert (chosen.agent_id, chosen.pairing_key, said) == ("agent-b", "given-key-0001", [])

    # A file from before the URL was kept: used, saying which platform it is taken to be for.
    save_identity(path, AgentIdentity("agent-old", "given-key-0001"))
    assert "api_url" not in json.loads(path.read_text())
    chosen = apply_saved_identity(settings, say=said.append)
    assert (chosen.agent_id, chosen.pairing_key) == ("agent-old", "given-key-0001")
    assert said == [
        f"{path} does not say which platform it was paired with (saved by an older version): taken to "
        f"be the pairing with {url}"
    ]

    # Another --key than the one saved with this platform: the saved (issued) key is used, said so.
    said.clear()
    save_identity(path, AgentIdentity("agent-b", "issued-key-9999", url))
    chosen = apply_saved_identity(settings, say=said.append)
    assert (chosen.agent_id, chosen.pairing_key) == ("agent-b", "issued-key-9999")
    assert len(said) == 1 and said[0].startswith(
        f"the key saved in {path} is used for agent agent-b, not the given pairing key"
    )
    assert "given-key-0001" not in said[0] and "issued-key-9999" not in said[0]


def test_a_saved_api_url_must_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"agent_id": "a-1", "pairing_key": "k-1", "api_url": 5}))
    with pytest.raises(AgentFileError, match="api_url must be a non-empty string, not 5"):
        load_identity(path)


# --- a refused key is no outage -------------------------------------------------------------------


@pytest.fixture
def refusing_platform() -> Iterator[PlatformServer]:
    with PlatformServer(key="the-platform-wants-another-key").serving() as server:
        yield server


async def test_a_refused_pairing_key_is_said_as_such(
    tmp_path: Path, refusing_platform: PlatformServer
) -> None:
    settings = agent_settings(tmp_path, refusing_platform.url, agent_id=None)
    console = await start_console(settings, tmp_path / "sim.db", backoff=Backoff(0.05, 0.2, jitter=0.0))
    try:
        await eventually(lambda: len(refusing_platform.pair_calls()) >= 2, "pairing retries")
    finally:
        await console.runtime.stop()
    assert (
        "pairing: the platform does not accept the pairing key (HTTP 401): check --key / MT5C_PAIRING_KEY, "
        "or pair again (POST /agents/pair: HTTP 401" in console.lines()
    )
    assert KEY not in console.lines()
