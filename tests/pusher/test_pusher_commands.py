"""Commands over a real Pusher-protocol server (soketi), through the bus, acknowledged to the platform."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mt5console.core.store import StrategyState
from tests.helpers import Rig, always_buy, eventually
from tests.platform_server import PlatformServer
from tests.pusher.remote_rig import PAIRING_KEY, start_remote
from tests.pusher.soketi_process import Soketi


def state(rig: Rig, strategy_id: str) -> StrategyState:
    record = rig.store.get_strategy(strategy_id)
    assert record is not None, f"strategy {strategy_id} is not in the store"
    return record.state


async def test_each_command_end_to_end(tmp_path: Path, soketi: Soketi, platform: PlatformServer) -> None:
    remote = await start_remote(tmp_path, soketi, platform)
    rig = remote.rig
    threads: set[int] = set()
    rig.events.subscribe(lambda _: threads.add(threading.get_ident()))
    try:
        await remote.subscribed()

        async def command(command_id: str, name: str, parameters: dict[str, object]) -> dict[str, object]:
            await remote.send(soketi, {"command": name, "commandId": command_id, "parameters": parameters})
            acks = await eventually(lambda: platform.acks().get(command_id), f"the ack of {command_id}")
            assert len(acks) == 1
            ack: dict[str, object] = acks[0]
            return ack

        assert await command("c1", "START_STRATEGY", always_buy()) == {"status": "ok", "error": None}
        assert state(rig, "always") == StrategyState.RUNNING
        await rig.market.poll_once()
        await rig.bar()
        assert len(await rig.broker.positions()) == 1
        assert (await command("c2", "PAUSE_STRATEGY", {"strategyId": "always"}))["status"] == "ok"
        assert state(rig, "always") == StrategyState.PAUSED
        await rig.bar()
        assert len(await rig.broker.positions()) == 1  # paused: opens nothing
        assert (await command("c3", "RESUME_STRATEGY", {"strategyId": "always"}))["status"] == "ok"
        assert state(rig, "always") == StrategyState.RUNNING
        await rig.bar()
        tickets = [p.ticket for p in await rig.broker.positions()]
        assert len(tickets) == 2
        assert (await command("c4", "CLOSE_POSITION", {"ticket": tickets[0]}))["status"] == "ok"
        assert [p.ticket for p in await rig.broker.positions()] == tickets[1:]
        ack = await command("c5", "STOP_STRATEGY", {"strategyId": "always"})
        assert ack["status"] == "ok"
        assert state(rig, "always") == StrategyState.STOPPED
        assert (await command("c6", "CLOSE_ALL", {"symbol": "EURUSD"}))["status"] == "ok"
        assert await rig.broker.positions() == ()
        assert (await command("c7", "START_STRATEGY", always_buy("second")))["status"] == "ok"
        await rig.market.poll_once()
        await rig.bar()
        assert len(await rig.broker.positions()) == 1
        assert (await command("c8", "STOP_ALL", {"closePositions": True}))["status"] == "ok"
        assert state(rig, "second") == StrategyState.STOPPED
        assert await rig.broker.positions() == ()
        # pysher called back on its own thread; everything reached the core on the loop's.
        assert threads == {threading.get_ident()}
        text = rig.text()
        assert "pusher: received CLOSE_POSITION [c4]" in text
        assert "commands: CLOSE_POSITION [c4] from pusher: ok" in text
    finally:
        await remote.close()


MALFORMED: list[tuple[object, str | None, str]] = [
    # (data as the platform sends it, its commandId if it has a usable one, the reason's words)
    ("this is not JSON {", None, "the command's data is not JSON"),
    ([1, 2, 3], None, "a command must be a JSON object, not list"),
    ({"command": "STOP_ALL", "commandId": {"nested": 1}}, None, "commandId: must be a string"),
    ({"command": "STOP_ALL", "commandId": "   "}, None, "commandId: must not be blank"),
    ({"commandId": "m1", "parameters": {}}, "m1", "command: missing"),
    ({"command": "LAUNCH_ROCKET", "commandId": "m2"}, "m2", "unknown command 'LAUNCH_ROCKET'"),
    ({"command": "STOP_STRATEGY", "commandId": "m3", "parameters": "always"}, "m3", "must be a JSON object"),
    ({"command": "STOP_ALL", "commandId": "m4", "extra": True}, "m4", "unknown field(s) extra"),
    ({"command": "STOP_STRATEGY", "commandId": "m5", "parameters": {}}, "m5", "parameters.strategyId"),
    ({"command": "CLOSE_POSITION", "commandId": "m6", "parameters": {"ticket": "abc"}}, "m6", "ticket"),
    (
        {"command": "STOP_ALL", "commandId": "m7", "parameters": {"closePositions": "yes"}},
        "m7",
        "true or false",
    ),
]


async def test_a_duplicate_and_a_dozen_malformed_commands_are_rejected_with_reasons(
    tmp_path: Path, soketi: Soketi, platform: PlatformServer
) -> None:
    remote = await start_remote(tmp_path, soketi, platform, signing="secret")
    rig = remote.rig
    try:
        await remote.subscribed()
        start = {"command": "START_STRATEGY", "commandId": "dup-1", "parameters": always_buy()}
        await remote.send(soketi, start)
        await eventually(lambda: platform.acks().get("dup-1"), "the first ack")
        stop = {"command": "STOP_STRATEGY", "commandId": "s-1", "parameters": {"strategyId": "always"}}
        await remote.send(soketi, stop)
        await eventually(lambda: platform.acks().get("s-1"), "the stop's ack")
        bad_strategy = {"command": "START_STRATEGY", "commandId": "m8", "parameters": {"strategyId": "x"}}
        await remote.send(soketi, start)  # the same commandId again: rejected, nothing restarts
        for data, _, _ in MALFORMED:
            await remote.send(soketi, data)
        await remote.send(soketi, bad_strategy)
        await remote.send(soketi, {"command": "CLOSE_ALL", "commandId": "after", "parameters": {}})
        acks = await eventually(lambda: platform.acks().get("after") and platform.acks(), "the last ack")

        assert acks["dup-1"][0] == {"status": "ok", "error": None}
        assert acks["dup-1"][1]["status"] == "rejected"
        assert "duplicate commandId 'dup-1'" in acks["dup-1"][1]["error"]
        assert state(rig, "always") == StrategyState.STOPPED  # not started again
        assert rig.engine.runners == {}
        assert remote.source.handled == 2 + 1 + len(MALFORMED) + 2
        text = rig.text()
        for data, command_id, reason in MALFORMED:
            if command_id is None:
                assert reason in text, f"{data!r} was not logged with its reason"
            else:
                assert acks[command_id] == [{"status": "rejected", "error": acks[command_id][0]["error"]}]
                assert reason in acks[command_id][0]["error"], (command_id, acks[command_id])
        assert acks["m8"][0]["status"] == "rejected" and acks["m8"][0]["error"]
        assert acks["after"] == [{"status": "ok", "error": None}]  # the source is still at work
        assert rig.text().count("rejected a malformed command") >= 4
    finally:
        await remote.close()


@pytest.mark.parametrize("how", ["crash", "graceful"])
async def test_soketi_restarted_the_console_subscribes_again_and_gets_the_next_command(
    tmp_path: Path, own_soketi: Soketi, how: str
) -> None:
    platform = PlatformServer(key=PAIRING_KEY, pusher_key=own_soketi.key, pusher_secret=own_soketi.secret)
    platform.start()
    remote = await start_remote(tmp_path, own_soketi, platform)
    try:
        await remote.subscribed()
        # A crash drops the socket; a graceful stop sends pusher:error 4200 and closes it cleanly,
        # after which pysher's own loop would end its thread for good.
        if how == "crash":
            own_soketi.kill()
        else:
            own_soketi.stop()
        await eventually(lambda: remote.source.state == "reconnecting", "the source to see the loss")
        own_soketi.start()
        await remote.subscribed(2)
        # pysher would resend the old auth (or nothing): a new socket needs a new signature.
        sockets = [call.body["socket_id"] for call in platform.auth_calls()]
        assert len(sockets) == 2 and sockets[0] != sockets[1]
        await remote.send(own_soketi, {"command": "STOP_ALL", "commandId": "after-restart"})
        acks = await eventually(lambda: platform.acks().get("after-restart"), "the command after the restart")
        assert acks == [{"status": "ok", "error": None}]
        states = remote.states()
        assert states[states.index("reconnecting") :][-2:] == ["connected", "subscribed"]
        assert "pusher: connection lost" in remote.rig.text()
    finally:
        await remote.close()
        platform.go_away()
