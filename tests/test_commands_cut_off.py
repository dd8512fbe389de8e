"""Commands a crash cut off are finished at the next start; a repeated id says how the first ended."""

from __future__ import annotations

from pathlib import Path

from mt5console.core.broker.sim import SimTerminal
from mt5console.core.commands.bus import Command
from mt5console.core.runtime import Runtime
from mt5console.core.store import CommandStatus, StrategyState
from tests.helpers import Clock, Rig, always_buy, make_rig, sim_settings


async def two_strategies_trading(tmp_path: Path, clock: Clock) -> Rig:
    rig = await make_rig(tmp_path, clock=clock, state_path=tmp_path / "sim_state.db")
    rig.store.session_started()  # as the runtime notes each start
    for strategy_id in ("first", "second"):
        await rig.engine.start(always_buy(strategy_id), source="test")
    await rig.market.poll_once()
    await rig.bar()
    assert len(await rig.broker.positions()) == 2
    return rig


async def test_a_kill_switch_cut_off_by_a_crash_is_finished_at_start_before_any_trade(tmp_path: Path) -> None:
    clock = Clock()
    rig = await two_strategies_trading(tmp_path, clock)
    # The crash: STOP_ALL (closing positions) was written and had stopped one strategy, no more.
    rig.store.record_command("kill-1", "STOP_ALL", {"closePositions": True})
    await rig.engine.stop("first", by="pusher")
    await rig.close()

    again = await make_rig(tmp_path, clock=clock, state_path=tmp_path / "sim_state.db")
    try:
        await again.engine.restore()
        assert list(again.engine.runners) == ["second"]  # the store still said running
        [(command_id, result)] = await again.bus.resume_unfinished(again.store.session_started())
        assert command_id == "kill-1" and result.ok, result.error
        assert again.engine.runners == {}
        assert [r.state for r in again.store.list_strategies()] == [StrategyState.STOPPED] * 2
        assert await again.broker.positions() == ()  # both: "first" was stopped before the crash
        stored = again.store.get_command("kill-1")
        assert stored is not None and stored.status is CommandStatus.OK
        assert (
            "STOP_ALL [kill-1], received" in again.text() and "was cut off by the last stop" in again.text()
        )
        for _ in range(3):
            await again.bar()
        assert await again.broker.positions() == ()  # no trade after the stop

        # The platform's retry under the same id: refused, saying the first was carried out.
        _, retry = await again.bus.submit_payload(
            {"command": "STOP_ALL", "commandId": "kill-1", "parameters": {"closePositions": True}}, "pusher"
        )
        assert not retry.ok
        assert "duplicate commandId 'kill-1' (first seen" in retry.error
        assert "it was carried out (ok)); not carried out again" in retry.error
        assert await again.bus.resume_unfinished(again.store.session_started()) == []  # settled once
    finally:
        await again.close()


async def test_a_partial_close_cut_off_is_rejected_and_a_finished_stop_is_ok(tmp_path: Path) -> None:
    clock = Clock()
    rig = await two_strategies_trading(tmp_path, clock)
    [position, _] = await rig.broker.positions()
    rig.store.record_command("part-1", "CLOSE_POSITION", {"ticket": position.ticket, "volume": 0.01})
    rig.store.record_command("stop-1", "STOP_STRATEGY", {"strategyId": "first"})
    await rig.engine.stop("first", by="pusher")  # done, but its status never written
    await rig.close()

    again = await make_rig(tmp_path, clock=clock, state_path=tmp_path / "sim_state.db")
    try:
        await again.engine.restore()
        settled = dict(await again.bus.resume_unfinished(again.store.session_started()))
        assert not settled["part-1"].ok
        assert "whether part of the position was closed cannot be told" in settled["part-1"].error
        assert len(await again.broker.positions()) == 2  # nothing closed on a guess
        assert settled["stop-1"].ok, settled["stop-1"].error
        assert list(again.engine.runners) == ["second"]
    finally:
        await again.close()


async def test_a_command_cut_off_before_an_earlier_session_is_not_carried_out(tmp_path: Path) -> None:
    # Out of date: a session ran after it (an older console that did not finish cut-off commands).
    clock = Clock()
    rig = await two_strategies_trading(tmp_path, clock)
    rig.store.record_command("old-stop", "STOP_STRATEGY", {"strategyId": "first"})
    rig.store.session_started()  # a session that ran after it, without finishing it
    await rig.close()

    again = await make_rig(tmp_path, clock=clock, state_path=tmp_path / "sim_state.db")
    try:
        await again.engine.restore()
        [(command_id, result)] = await again.bus.resume_unfinished(again.store.session_started())
        assert command_id == "old-stop" and not result.ok
        assert "cut off by a stop in an earlier session" in result.error
        assert "the console has run since): not carried out now" in result.error
        assert sorted(again.engine.runners) == ["first", "second"]  # nothing done on an old order
        stored = again.store.get_command("old-stop")
        assert stored is not None and stored.status is CommandStatus.REJECTED
    finally:
        await again.close()


async def test_the_runtime_finishes_a_cut_off_kill_switch_before_it_polls(tmp_path: Path) -> None:
    clock = Clock()
    settings = sim_settings(tmp_path)
    first = Runtime(settings, module=lambda: SimTerminal(seed=2, clock=clock))
    await first.start()
    assert first.bus is not None and first.store is not None
    assert (await first.bus.submit(Command("START_STRATEGY", always_buy(), "test"))).ok
    first.store.record_command("kill-2", "STOP_ALL", {})  # cut off before it did anything
    await first.stop()

    second = Runtime(settings, module=lambda: SimTerminal(seed=2, clock=clock))
    await second.start()
    try:
        assert second.engine is not None and second.store is not None
        assert second.engine.runners == {}
        stored = second.store.get_command("kill-2")
        assert stored is not None and stored.status is CommandStatus.OK
        record = second.store.get_strategy("always")
        assert record is not None and record.state is StrategyState.STOPPED
    finally:
        await second.stop()


async def test_a_ticket_that_is_not_a_whole_number_is_named(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        _, result = await rig.bus.submit_payload(
            {"command": "CLOSE_POSITION", "parameters": {"ticket": 1.5}}, "pusher"
        )
        assert result.error == "parameters.ticket: 1.5 is not a ticket number (a whole number)"
        _, result = await rig.bus.submit_payload({"command": "CLOSE_POSITION", "parameters": {}}, "pusher")
        assert result.error == "parameters.ticket: required (a position ticket number)"
    finally:
        await rig.close()
