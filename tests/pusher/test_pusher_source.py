"""The Pusher source's settings, channel authorisation (endpoint with a timeout, or local signing),
the runtime's wiring, and secrets that never reach a log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import Any

import pusher
import pytest

from mt5console.core.broker.sim import SimTerminal
from mt5console.core.commands.pusher import (
    PusherConfig,
    PusherConfigError,
    PusherSource,
    pusher_source,
    sign_subscription,
)
from mt5console.core.commands.pusher.connection import MendedConnection, PysherClient
from mt5console.core.events import EventBus, LogLine, PusherStateChanged
from mt5console.core.runtime import Runtime
from mt5console.core.settings import Settings
from mt5console.core.store import Store
from tests.helpers import Clock, always_buy, eventually, make_rig
from tests.platform_server import PlatformServer
from tests.pusher.remote_rig import PAIRING_KEY, fast, start_remote
from tests.pusher.soketi_process import Soketi


def test_local_signature_is_the_one_the_official_pusher_library_makes() -> None:
    official = pusher.Pusher(app_id="1", key="app-key", secret="app-secret", ssl=False)
    expected = official.authenticate("private-executor-a1", "1234.5678")["auth"]
    assert sign_subscription("app-secret", "app-key", "1234.5678", "private-executor-a1") == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"pusher_key": None, "pusher_channel": "c"}, "no Pusher app key"),
        ({"agent_id": None}, "no channel (give --pusher-channel, or --agent-id"),
        ({"pusher_secret": None, "pusher_auth_endpoint": None}, "is private: give --pusher-auth-endpoint"),
        ({"pusher_channel": "presence-room"}, "presence channels are not supported"),
        ({"pusher_auth_endpoint": "https://p.example/auth"}, "either the Pusher auth endpoint or"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(
    changes: dict[str, Any], expected: str
) -> None:
    base: dict[str, Any] = {"pusher_key": "k", "pusher_secret": "s3cr3t-value", "agent_id": "a1"}
    with pytest.raises(PusherConfigError, match=re.escape(expected)):
        PusherConfig.from_settings(Settings(**(base | changes)))


def test_the_channel_follows_the_agent_id_and_the_secrets_stay_out_of_repr() -> None:
    settings = Settings(
        pusher_key="k",
        agent_id="a1",
        pusher_cluster="eu",
        pusher_auth_endpoint="https://p.example/pusher/auth",
        pairing_key="bearer-value-93",
    )
    config = PusherConfig.from_settings(settings)
    assert config.channel == "private-executor-a1"
    assert (config.where, config.url_port, config.auth_bearer) == (
        "Pusher cluster eu",
        443,
        "bearer-value-93",
    )
    assert "bearer-value-93" not in repr(config)
    own = PusherConfig.from_settings(
        Settings(
            pusher_key="k",
            pusher_channel="commands",
            pusher_host="10.0.0.5",
            pusher_insecure=True,
            pusher_secret="s3cr3t-value",
        )
    )
    assert (own.channel, own.where, own.private) == ("commands", "ws://10.0.0.5:80", False)
    assert "s3cr3t-value" not in repr(own)


def test_pysher_is_pointed_at_the_cluster_or_the_self_hosted_server() -> None:
    def url(**config: Any) -> str:
        client = PysherClient(
            PusherConfig(key="app-key", channel="commands", **config),
            on_event=lambda *_: None,
            on_established=lambda _: None,
            on_lost=lambda *_: None,
            backoff=fast(),
        )
        assert isinstance(client.connection, MendedConnection) and not client.connection.is_alive()
        return str(client.url)

    query = "/app/app-key?client=Pysher&version=1.0.7&protocol=6"
    assert url(cluster="eu") == "wss://ws-eu.pusher.com:443" + query
    assert url(host="10.1.2.3", port=6001, secure=False) == "ws://10.1.2.3:6001" + query
    assert url(host="push.example.com") == "wss://push.example.com:443" + query


def test_the_runtime_is_told_why_the_source_is_off() -> None:
    events = EventBus()
    lines: list[str] = []
    events.subscribe(lambda e: lines.append(e.message) if isinstance(e, LogLine) else None)
    assert pusher_source(Settings(), bus=None, events=events) is None  # type: ignore[arg-type]
    assert lines == []  # no Pusher wanted: nothing to say
    assert pusher_source(Settings(pusher_key="k"), bus=None, events=events) is None  # type: ignore[arg-type]
    assert lines == [
        "the Pusher command source is off: not started: no channel "
        "(give --pusher-channel, or --agent-id for private-executor-{id})"
    ]


async def test_the_auth_endpoint_is_called_with_a_timeout_and_a_refusal_is_retried(
    tmp_path: Path, soketi: Soketi, platform: PlatformServer
) -> None:
    platform.auth_delay = 1.5  # the platform hangs: pysher would wait for ever
    remote = await start_remote(tmp_path, soketi, platform, auth_timeout=0.3)
    try:
        await eventually(lambda: "no answer within 0.3 s" in remote.rig.text(), "the auth timeout")
        assert remote.source.state == "connected" and "not subscribed" in remote.source.detail
        platform.auth_delay = 0.0
        platform.auth_status = 403
        await eventually(lambda: "HTTP 403" in remote.rig.text(), "the refusal")
        platform.auth_status = None
        await remote.subscribed()
        auth = platform.auth_calls()[-1]
        assert auth.headers["authorization"] == f"Bearer {PAIRING_KEY}"
        assert auth.body == {"socket_id": auth.body["socket_id"], "channel_name": remote.channel}
        await remote.send(soketi, {"command": "STOP_ALL", "commandId": "after-auth"})
        await eventually(lambda: platform.acks().get("after-auth"), "the command once subscribed")
    finally:
        await remote.close()


async def test_a_wrong_secret_is_refused_by_the_server_and_no_secret_is_ever_logged(
    tmp_path: Path, soketi: Soketi, platform: PlatformServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-5c2e81"
    remote = await start_remote(tmp_path, soketi, platform, signing="secret", secret=wrong)
    try:
        await eventually(lambda: "refused by the server" in remote.rig.text(), "the server's refusal")
        assert remote.source.state == "connected"
    finally:
        await remote.close()
    right = await start_remote(tmp_path / "right", soketi, platform, signing="secret")
    try:
        await right.subscribed()
        await right.send(soketi, {"command": "START_STRATEGY", "commandId": "s1", "parameters": always_buy()})
        await right.send(soketi, "not JSON")
        await eventually(lambda: platform.acks().get("s1"), "the ack")
    finally:
        await right.close()
    # These event buses mask nothing (no runtime set the secrets): nothing may carry them at all.
    everything = remote.rig.text() + right.rig.text() + caplog.text
    assert "pusher: rejected a malformed command" in everything
    for secret in (wrong, soketi.secret, PAIRING_KEY):
        assert secret not in everything


async def test_the_runtime_reports_acks_and_never_logs_a_secret(
    tmp_path: Path, soketi: Soketi, platform: PlatformServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(
        broker="sim",
        data_dir=tmp_path / "data",
        config_dir=tmp_path,
        poll_interval=0.05,
        api_url=platform.url,
        agent_id="runtime-agent",
        pairing_key=PAIRING_KEY,
        pusher_key=soketi.key,
        pusher_host="127.0.0.1",
        pusher_port=soketi.port,
        pusher_insecure=True,
        pusher_secret=soketi.secret,
    )
    runtime = Runtime(settings, module=lambda: SimTerminal(seed=2, clock=Clock()))
    await runtime.start()
    try:
        assert runtime.pusher is not None and runtime.platform is not None
        await eventually(
            lambda: runtime.pusher is not None and runtime.pusher.state == "subscribed", "subscribed"
        )
        channel = "private-executor-runtime-agent"
        start = {"command": "START_STRATEGY", "commandId": "rt-1", "parameters": always_buy()}
        for data in (start, start, {"command": "STOP_ALL", "commandId": "rt-2", "parameters": {"x": 1}}):
            soketi.trigger(channel, "command-received", data)
        acks = await eventually(lambda: len(platform.acks()) == 2 and platform.acks(), "the acks")
        assert [a["status"] for a in acks["rt-1"]] == ["ok", "rejected"]
        assert acks["rt-2"][0]["status"] == "rejected"
        assert all(c.headers["authorization"] == f"Bearer {PAIRING_KEY}" for c in platform.snapshot())
    finally:
        await runtime.stop()
    log_file = (tmp_path / "data" / "logs" / "mt5console.log").read_text()
    with Store(settings.database_path) as store:
        stored = "\n".join(e.message for e in store.recent_events(1000))
    assert "subscribed to private-executor-runtime-agent" in log_file
    assert "duplicate commandId 'rt-1'" in stored
    for secret in settings.secrets():
        assert secret not in log_file and secret not in stored and secret not in caplog.text
        assert secret not in repr(settings) and secret not in repr(runtime.pusher.config)


async def test_an_unknown_app_key_is_said_and_retried_not_dropped_in_silence(
    tmp_path: Path, soketi: Soketi
) -> None:
    rig = await make_rig(tmp_path)
    config = PusherConfig(
        key="no-such-app", channel="commands", host="127.0.0.1", port=soketi.port, secure=False
    )
    source = PusherSource(config, rig.bus, rig.events, reconnect=fast(0.05, 0.2))
    task = asyncio.create_task(source.run())
    try:
        # pysher would disconnect for good on the server's 4001, from its own thread, and say nothing.
        await eventually(lambda: rig.text().count("pusher:error 4001") >= 1, "the refusal in the log")

        def lost() -> list[PusherStateChanged]:
            return [e for e in rig.seen if isinstance(e, PusherStateChanged) and e.state == "reconnecting"]

        await eventually(lambda: len(lost()) >= 3, "attempts that go on")
        assert "4001" in lost()[-1].detail and source.state == "reconnecting"
        assert f"cannot connect to ws://127.0.0.1:{soketi.port}" in rig.text()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rig.close()
    assert source.state == "stopped"
