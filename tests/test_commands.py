"""The command bus: every command through one door; bad ones rejected with a reason, nothing half-done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.commands.bus import Command
from mt5console.core.commands.files import start_strategy_files
from mt5console.core.store import StrategyState
from tests.helpers import always_buy, make_rig


async def test_each_command_end_to_end(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    bus = rig.bus
    try:
        _, result = await bus.submit_payload(
            {"command": "START_STRATEGY", "commandId": "c1", "parameters": always_buy()}, "pusher"
        )
        assert result.ok, result.error
        await rig.market.poll_once()
        await rig.bar()
        assert len(await rig.broker.positions()) == 1
        _, result = await bus.submit_payload(
            {"command": "PAUSE_STRATEGY", "commandId": "c2", "parameters": {"strategyId": "always"}}, "pusher"
        )
        assert result.ok and rig.store.get_strategy("always").state == StrategyState.PAUSED
        _, result = await bus.submit_payload(
            {"command": "RESUME_STRATEGY", "commandId": "c3", "parameters": {"strategyId": "always"}},
            "pusher",
        )
        assert result.ok and rig.store.get_strategy("always").state == StrategyState.RUNNING
        await rig.bar()
        tickets = [p.ticket for p in await rig.broker.positions()]
        assert len(tickets) == 2
        _, result = await bus.submit_payload(
            {
                "command": "CLOSE_POSITION",
                "commandId": "c4",
                "parameters": {"ticket": tickets[0], "volume": 0.005},
            },
            "pusher",
        )
        assert not result.ok and "INVALID_VOLUME" in result.error  # half a step: the terminal refuses
        _, result = await bus.submit_payload(
            {"command": "CLOSE_POSITION", "commandId": "c5", "parameters": {"ticket": tickets[0]}}, "pusher"
        )
        assert result.ok, result.error
        assert [p.ticket for p in await rig.broker.positions()] == tickets[1:]
        _, result = await bus.submit_payload(
            {"command": "STOP_STRATEGY", "commandId": "c6", "parameters": {"strategyId": "always"}}, "pusher"
        )
        assert result.ok and rig.store.get_strategy("always").state == StrategyState.STOPPED
        assert len(await rig.broker.positions()) == 1  # closePositions defaults to false
        _, result = await bus.submit_payload(
            {"command": "CLOSE_ALL", "commandId": "c7", "parameters": {"symbol": "EURUSD"}}, "pusher"
        )
        assert result.ok and result.details == {"closedPositions": 1}
        assert await rig.broker.positions() == ()
        assert rig.store.get_command("c7").status.value == "ok"
        assert rig.store.get_command("c4").status.value == "rejected"
    finally:
        await rig.close()


async def test_stop_all_is_a_kill_switch(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        for name in ("a", "b"):
            assert (await rig.bus.submit(Command("START_STRATEGY", always_buy(name), "test"))).ok
        await rig.market.poll_once()
        await rig.bar()
        assert len(await rig.broker.positions()) == 2
        result = await rig.bus.submit(Command("STOP_ALL", {"closePositions": True}, "keyboard"))
        assert result.ok and result.details == {"closedPositions": 2}
        for _ in range(3):
            await rig.bar()
        assert await rig.broker.positions() == ()
        assert {s.state for s in rig.store.list_strategies()} == {StrategyState.STOPPED}
    finally:
        await rig.close()


async def test_duplicate_command_id_is_rejected_and_does_nothing(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        payload = {"command": "START_STRATEGY", "commandId": "same", "parameters": always_buy()}
        assert (await rig.bus.submit_payload(payload, "pusher"))[1].ok
        await rig.engine.stop("always", by="test")
        _, again = await rig.bus.submit_payload(payload, "pusher")
        assert not again.ok and "duplicate commandId 'same'" in again.error
        assert rig.engine.runners == {}
    finally:
        await rig.close()


MALFORMED: list[tuple[Any, str]] = [
    ("not an object", "must be a JSON object"),
    ({"commandId": "x"}, "command: missing"),
    ({"command": "LAUNCH_ROCKET"}, "unknown command 'LAUNCH_ROCKET'"),
    ({"command": "STOP_STRATEGY", "parameters": {}}, "parameters.strategyId: required"),
    ({"command": "STOP_STRATEGY", "parameters": {"strategyId": "ghost"}}, "no running strategy 'ghost'"),
    (
        {"command": "STOP_ALL", "parameters": {"closePositions": "yes"}},
        "closePositions: must be true or false",
    ),
    ({"command": "CLOSE_POSITION", "parameters": {"ticket": "abc"}}, "is not a ticket number"),
    ({"command": "CLOSE_POSITION", "parameters": {"ticket": 5, "volume": -1}}, "volume: must be a positive"),
    ({"command": "CLOSE_ALL", "parameters": {"symbol": 3}}, "symbol: must be a symbol name"),
    ({"command": "START_STRATEGY", "parameters": {"strategyId": "x"}}, "symbol"),
    ({"command": "PAUSE_STRATEGY", "parameters": {"strategyId": "x", "extra": 1}}, "unknown field(s) extra"),
    ({"command": "START_STRATEGY", "parameters": [1, 2]}, "parameters: must be a JSON object"),
    ({"command": "START_STRATEGY", "bogus": 1}, "unknown field(s) bogus"),
]


@pytest.mark.parametrize(("payload", "reason"), MALFORMED)
async def test_malformed_commands_are_rejected_with_a_reason(
    tmp_path: Path, payload: Any, reason: str
) -> None:
    rig = await make_rig(tmp_path)
    try:
        _, result = await rig.bus.submit_payload(payload, "pusher")
        assert not result.ok
        assert reason in result.error
        assert any("rejected" in line and reason in line for line in rig.lines())
        assert rig.engine.runners == {} and await rig.broker.positions() == ()
    finally:
        await rig.close()


async def test_strategy_files_start_through_the_bus_and_bad_ones_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps(always_buy("good")))
    (folder / "broken.json").write_text('{"strategyId": "broken",\n "symbol": ')
    (folder / "invalid.json").write_text(json.dumps(always_buy("invalid", timeframe="M2")))
    rig = await make_rig(tmp_path)
    try:
        results = await start_strategy_files(folder, rig.bus, rig.events)
        assert [r.ok for r in results] == [False, True, False]  # broken, good, invalid (sorted by name)
        assert "invalid JSON at line 2" in results[0].error
        assert "timeframe" in results[2].error
        assert list(rig.engine.runners) == ["good"]
    finally:
        await rig.close()


async def test_a_launch_does_not_undo_a_stop_or_a_pause_of_an_unchanged_file(tmp_path: Path) -> None:
    """The files are read at every launch: a strategy stopped or paused since, whose file has not
    changed, stays as it was (no trade after a stop); an edited file is a new start."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    for name in ("kept", "paused", "edited"):
        (folder / f"{name}.json").write_text(json.dumps(always_buy(name)))
    rig = await make_rig(tmp_path)
    try:
        assert all(r.ok for r in await start_strategy_files(folder, rig.bus, rig.events, rig.store))
        # A stop (the kill switch stops each strategy the same way) and a pause, from the keyboard.
        for command, strategy_id in (
            ("PAUSE_STRATEGY", "paused"),
            ("STOP_STRATEGY", "kept"),
            ("STOP_STRATEGY", "edited"),
        ):
            parameters = {"strategyId": strategy_id}
            result = await rig.bus.submit(Command(name=command, parameters=parameters, source="keyboard"))
            assert result.ok, result.error
        # The next launch reads the same folder; one file was edited meanwhile.
        edited = always_buy("edited")
        edited["rules"]["riskManagement"]["lotSize"] = 0.02
        (folder / "edited.json").write_text(json.dumps(edited))
        results = await start_strategy_files(folder, rig.bus, rig.events, rig.store)
        assert [r.ok for r in results] == [True, False, False]  # edited, kept, paused (by name)
        assert "is not started: it was stopped" in results[1].error
        assert "change its file or send START_STRATEGY" in results[1].error
        assert "stays paused" in results[2].error
        assert set(rig.engine.runners) == {"edited", "paused"} and rig.engine.runners["paused"].paused
        assert rig.store.get_strategy("paused").state is StrategyState.PAUSED
        assert rig.store.get_strategy("kept").state is StrategyState.STOPPED
        assert any("kept in kept.json is not started" in line for line in rig.lines())
        # Without a store to ask (or for a strategy never seen), every file starts as before.
        other = tmp_path / "fresh"
        other.mkdir()
        (other / "new.json").write_text(json.dumps(always_buy("new")))
        assert [r.ok for r in await start_strategy_files(other, rig.bus, rig.events, rig.store)] == [True]
    finally:
        await rig.close()


async def test_a_running_strategy_whose_file_has_not_changed_is_not_replaced_at_launch(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "steady.json").write_text(json.dumps(always_buy("steady")))
    rig = await make_rig(tmp_path)
    await start_strategy_files(folder, rig.bus, rig.events, rig.store)
    await rig.close()
    again = await make_rig(tmp_path)  # the next launch: restored from the store, then the files read
    try:
        await again.engine.restore()
        runner = again.engine.runners["steady"]
        [result] = await start_strategy_files(folder, again.bus, again.events, again.store)
        assert result.ok and again.engine.runners["steady"] is runner  # the same runner: not replaced
        assert "steady: runs as steady.json says (restored at start)" in again.text()
        assert "replaced from file" not in again.text()
    finally:
        await again.close()


async def test_two_files_with_one_strategy_id_do_not_replace_each_other(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(always_buy("dup")))
    (folder / "b.json").write_text(json.dumps(always_buy("dup", timeframe="M5")))
    rig = await make_rig(tmp_path)
    try:
        results = await start_strategy_files(folder, rig.bus, rig.events, rig.store)
        assert [r.ok for r in results] == [True, False]
        assert "strategy id 'dup' is already that of a.json" in results[1].error
        assert rig.engine.runners["dup"].strategy.timeframe == "M1"
        assert any("already that of a.json" in line for line in rig.lines())
    finally:
        await rig.close()


async def test_a_strategy_file_saved_with_a_byte_order_mark_starts_as_check_reads_it(tmp_path: Path) -> None:
    """Windows editors may write UTF-8 with a BOM; `check` reads such a file, so the launch must too."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    strategy = always_buy("bom") | {"strategyName": "Импульс — демо"}
    text = json.dumps(strategy, ensure_ascii=False)
    (folder / "bom.json").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    rig = await make_rig(tmp_path)
    try:
        results = await start_strategy_files(folder, rig.bus, rig.events)
        assert [r.ok for r in results] == [True], results
        assert rig.engine.runners["bom"].strategy.name == "Импульс — демо"
    finally:
        await rig.close()
