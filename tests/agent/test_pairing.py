"""Pairing: the first start pairs and saves agent.json (mode 0600), later starts reuse it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mt5console.core.agent.pairing import (
    AgentFileError,
    AgentIdentity,
    agent_file,
    apply_saved_identity,
    load_identity,
    save_identity,
)
from mt5console.core.agent.platform import Backoff
from mt5console.core.broker.models import Side
from mt5console.core.commands.pusher import PusherConfig
from mt5console.core.events import Level
from mt5console.core.runtime import StartupError
from tests.helpers import eventually
from tests.platform_server import TRADES_PATH, PlatformServer

from .test_agent_loop import KEY, agent_settings, start_console

ISSUED_KEY = "agent-key-issued-4b8d2f"


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    server = PlatformServer(key=KEY)
    server.pair_answer = {"agent_id": "agent-paired-7", "pairing_key": ISSUED_KEY}
    with server.serving():
        yield server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_first_start_pairs_and_saves_then_the_second_reuses_it(
    tmp_path: Path, platform: PlatformServer
) -> None:
    # A Pusher source with no channel given: it must follow the paired id (nothing listens on port 1).
    settings = agent_settings(
        tmp_path,
        platform.url,
        agent_id=None,
        pusher_key="app-key",
        pusher_secret="app-secret",
        pusher_host="127.0.0.1",
        pusher_port=1,
        pusher_insecure=True,
    )
    saved = agent_file(settings)
    console = await start_console(settings, tmp_path / "sim.db")
    try:
        beats = await eventually(platform.heartbeats, "a heartbeat after pairing", within=5)
        assert beats[0].path == "/agents/agent-paired-7/heartbeat"
        assert beats[0].headers["authorization"] == f"Bearer {ISSUED_KEY}"  # the answer's key from now on
        assert console.runtime.pusher is not None
        assert console.runtime.pusher.config.channel == "private-executor-agent-paired-7"
        console.runtime.log(Level.WARNING, "test", f"keys {KEY} and {ISSUED_KEY}")
        assert "keys *** and ***" in console.lines()  # the given and the issued key are both masked
    finally:
        await console.runtime.stop()
    (pair,) = platform.pair_calls()
    assert pair.headers["authorization"] == f"Bearer {KEY}"
    assert pair.body["pairing_key"] == KEY
    assert set(pair.body) == {"pairing_key", "name", "version", "broker", "account"}
    assert mode(saved) == 0o600
    assert json.loads(saved.read_text()) == {
        "agent_id": "agent-paired-7",
        "pairing_key": ISSUED_KEY,
        "api_url": platform.url,  # the platform it is for: never sent to another
    }
    assert ISSUED_KEY not in console.lines() and KEY not in console.lines()  # secrets never logged
    assert [p.name for p in saved.parent.iterdir()] == ["agent.json"]  # no temp file left behind

    again = await start_console(settings, tmp_path / "sim.db")
    try:
        await eventually(lambda: len(platform.heartbeats()) >= 2, "the second run's heartbeat", within=5)
    finally:
        await again.runtime.stop()
    assert len(platform.pair_calls()) == 1  # no second pairing
    assert platform.heartbeats()[-1].path == "/agents/agent-paired-7/heartbeat"


async def test_pairing_waits_out_an_unreachable_platform(tmp_path: Path) -> None:
    platform = PlatformServer(key=KEY)
    platform.start()
    platform.fail_status = 503
    settings = agent_settings(tmp_path, platform.url, agent_id=None)
    console = await start_console(settings, tmp_path / "sim.db", backoff=Backoff(0.05, 0.2, jitter=0.0))
    try:
        await eventually(lambda: len(platform.pair_calls()) >= 3, "pairing retries")
        assert console.runtime.agent is None and not agent_file(settings).exists()
        assert console.states()[-1].state == "pairing"
        platform.fail_status = None
        await eventually(platform.heartbeats, "a heartbeat once paired", within=5)
        assert load_identity(agent_file(settings)) == AgentIdentity("agent-paired-1", KEY, platform.url)
        assert "pairing: the platform is failing (HTTP 503) (POST /agents/pair: HTTP 503" in console.lines()
    finally:
        await console.runtime.stop()
        platform.go_away()


async def test_the_given_agent_id_wins_over_agent_json(tmp_path: Path, platform: PlatformServer) -> None:
    settings = agent_settings(tmp_path, platform.url, agent_id="given-9")
    save_identity(agent_file(settings), AgentIdentity("saved-1", "saved-key"))
    console = await start_console(settings, tmp_path / "sim.db")
    try:
        beats = await eventually(platform.heartbeats, "a heartbeat", within=5)
    finally:
        await console.runtime.stop()
    assert beats[0].path == "/agents/given-9/heartbeat"
    assert beats[0].headers["authorization"] == f"Bearer {KEY}"
    assert platform.pair_calls() == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not valid JSON"),
        ('{"agent_id": ""}', "agent_id must be a non-empty string"),
        ('{"agent_id": "a-1", "pairing_key": 5}', "pairing_key must be a non-empty string"),
        ("[1, 2]", "expected an object"),
    ],
)
async def test_a_bad_agent_json_is_exit_code_2_naming_the_file(
    tmp_path: Path, platform: PlatformServer, content: str, reason: str
) -> None:
    settings = agent_settings(tmp_path, platform.url, agent_id=None)
    path = agent_file(settings)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(StartupError) as caught:
        await start_console(settings, tmp_path / "sim.db")
    assert caught.value.exit_code == 2
    assert str(path) in str(caught.value) and reason in str(caught.value)
    assert path.read_text() == content  # left as it was
    assert platform.snapshot() == []  # nothing was called


def test_save_replaces_a_wider_file_with_a_0600_one_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "config" / "agent.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        save_identity(path, AgentIdentity("a-2", "k-2"))
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600
    assert load_identity(path) == AgentIdentity("a-2", "k-2")
    assert load_identity(tmp_path / "missing.json") is None


def test_save_works_where_os_has_no_fchmod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows (the MetaTrader5 package's platform) has no os.fchmod before Python 3.13: pairing must
    still save its answer there."""
    monkeypatch.delattr(os, "fchmod")
    path = tmp_path / "config" / "agent.json"
    save_identity(path, AgentIdentity("a-3", "k-3", "http://platform"))
    assert load_identity(path) == AgentIdentity("a-3", "k-3", "http://platform")


def test_a_saved_key_is_never_quoted_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"agent_id": "", "pairing_key": "super-secret-key"}))
    with pytest.raises(AgentFileError) as caught:
        load_identity(path)
    assert "super-secret-key" not in str(caught.value)


def test_pairing_feeds_the_pusher_channel(tmp_path: Path) -> None:
    settings = agent_settings(
        tmp_path, "http://127.0.0.1:1", agent_id=None, pusher_key="app-key", pusher_secret="app-secret"
    )
    save_identity(agent_file(settings), AgentIdentity("agent-paired-3", "k-3"))
    paired = apply_saved_identity(settings)
    assert (paired.agent_id, paired.pairing_key) == ("agent-paired-3", "k-3")
    assert PusherConfig.from_settings(paired).channel == "private-executor-agent-paired-3"
    # An explicit channel still wins; without a platform the file is not even read.
    chosen = apply_saved_identity(replace(settings, pusher_channel="private-desk"))
    assert PusherConfig.from_settings(chosen).channel == "private-desk"
    assert apply_saved_identity(replace(settings, api_url=None)).agent_id is None


async def test_a_trade_made_while_pairing_waits_is_reported_once_paired(tmp_path: Path) -> None:
    """First start with the platform down: the strategies trade at once, but the trade reporter was
    linked only after pairing, so what happened before was never sent."""
    platform = PlatformServer(key=KEY)
    platform.start()
    platform.fail_status = 503
    settings = agent_settings(tmp_path, platform.url, agent_id=None)
    console = await start_console(settings, tmp_path / "sim.db", backoff=Backoff(0.05, 0.2, jitter=0.0))
    try:
        await eventually(lambda: len(platform.pair_calls()) >= 2, "pairing retries")
        result = await console.runtime.broker.open_market("EURUSD", Side.BUY, 0.01, comment="by hand")
        await eventually(
            lambda: console.runtime.store.trade_by_ticket(result.position),
            "the trade recorded while unpaired",
        )
        platform.fail_status = None
        trades = await eventually(platform.trades, "the trade event, once paired", within=10)
        assert [(t["event"], t["ticket"]) for t in trades] == [("opened", result.position)]
        (call,) = platform.taken(TRADES_PATH)
        assert call.path == "/agents/agent-paired-1/trades"
    finally:
        await console.runtime.stop()
        platform.go_away()
