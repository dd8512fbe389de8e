"""Partial-exit plans are kept in the store: a restart or a replace goes on with them, never twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.broker.models import Side
from mt5console.core.events import EventBus, LogLine
from mt5console.core.store import SCHEMA_VERSION, InvalidRecordError, Store
from mt5console.core.strategy.model_types import PartialExits, PartialLevel, PartialMode
from mt5console.core.strategy.partial_book import PartialBook
from mt5console.core.strategy.partials import PartialPlan
from tests.helpers import Clock, Rig, always_buy, make_rig
from tests.market_data import EURUSD

TWO_LEVELS = {
    "enabled": True,
    "mode": "sequential",
    "levels": [
        {"atR": 1.0, "closePercent": 25, "moveStopTo": "breakeven"},
        {"atR": 2.0, "closePercent": 25},
    ],
}


def partial_strategy(partial_exits: dict[str, Any] = TWO_LEVELS, lot: float = 0.04) -> dict[str, Any]:
    """Buys every bar (one position at a time), a 3-pip stop, a far target, and these partial exits."""
    return always_buy(
        rules={
            "exit": {
                "stopLoss": {"type": "pips", "value": 3},
                "takeProfit": {"type": "pips", "value": 500},
                "partialExits": partial_exits,
            },
            "riskManagement": {"lotSize": lot, "maxPositions": 1},
        }
    )


async def bars_until(rig: Rig, done: Any, limit: int = 240) -> None:
    for _ in range(limit):
        if await done():
            return
        await rig.bar()
    raise AssertionError(f"not reached in {limit} bars:\n{rig.text()}")


async def test_a_restart_goes_on_with_the_plan_and_fires_no_level_twice(tmp_path: Path) -> None:
    clock = Clock()
    state = tmp_path / "sim_state.db"
    rig = await make_rig(tmp_path, clock=clock, state_path=state)
    await rig.engine.start(partial_strategy(), source="test")
    await rig.market.poll_once()
    await rig.bar()
    [position] = await rig.broker.positions()
    saved = rig.store.partial_plans("always")
    assert list(saved) == [position.ticket] and saved[position.ticket]["fired"] == []  # on disk at the open

    async def first_level_fired() -> bool:
        return any(state["fired"] == [0] for state in rig.store.partial_plans("always").values())

    await bars_until(rig, first_level_fired)  # positions stopped out on the way leave no plan behind
    [ticket] = rig.store.partial_plans("always")
    [position] = await rig.broker.positions()
    assert position.volume == pytest.approx(0.03)
    await rig.close()

    clock.advance(seconds=10)
    again = await make_rig(tmp_path, clock=clock, state_path=state)
    try:
        await again.engine.restore()
        assert f"always: resumed the partial exits of #{ticket}" in again.text()
        await again.market.poll_once()

        async def second_level_or_closed() -> bool:
            positions = await again.broker.positions()
            return not positions or positions[0].volume < 0.03 - 1e-9

        await bars_until(again, second_level_or_closed)
        partials = [line for line in again.lines() if f"lots of #{ticket} (partial)" in line]
        positions = await again.broker.positions()
        if positions:  # the second level (2 R) took 0.01 more; the first (1 R) did not fire again
            assert partials == [f"always: closed 0.01 lots of #{ticket} (partial)"]
            assert positions[0].volume == pytest.approx(0.02)
            assert again.store.partial_plans("always")[ticket]["fired"] == [0, 1]
        else:  # stopped at breakeven first: no partial after the restart, and the plan is forgotten
            assert partials == []
        await again.bar()
        if not await again.broker.positions():
            assert again.store.partial_plans("always") == {}
    finally:
        await again.close()


async def test_a_replace_goes_on_with_the_plans_of_open_positions(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(partial_strategy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        [position] = await rig.broker.positions()
        await rig.engine.start(partial_strategy(), source="replace")  # START_STRATEGY of a running id
        assert f"always: resumed the partial exits of #{position.ticket}" in rig.text()
        assert rig.engine.runners["always"]._plans.get(position.ticket) is not None
    finally:
        await rig.close()


def plan(volume: float = 0.04) -> PartialPlan:
    partial = PartialExits(
        enabled=True,
        mode=PartialMode.SEQUENTIAL,
        levels=(PartialLevel(at_r=1.0, close_percent=50, move_stop_to_r=None),),
    )
    return PartialPlan.create(partial, Side.BUY, 1.1, 0.0010, volume, EURUSD)


def test_the_book_saves_resumes_and_forgets(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    try:
        store.save_strategy("s1", name="s1", symbol="EURUSD", timeframe="M1", definition={"strategyId": "s1"})
        events = EventBus()
        seen: list[str] = []
        events.subscribe(lambda e: seen.append(e.message) if isinstance(e, LogLine) else None)
        book = PartialBook("s1", EURUSD, store, events)
        first = plan()
        book.keep(7, first)
        book.keep(8, plan(0.02))
        assert first.on_price(1.1011, 1.1012)  # level 1 fires
        book.keep(7, first)

        resumed = PartialBook("s1", EURUSD, store, events)
        resumed.resume()
        assert seen == ["resumed the partial exits of #7, #8"]
        kept = resumed.get(7)
        assert kept is not None and kept.fired == frozenset({0}) and kept.closed_volume == pytest.approx(0.02)
        assert kept.on_price(1.1020, 1.1021) == []  # never twice

        resumed.forget_all_but({8})
        assert list(store.partial_plans("s1")) == [8]
        resumed.forget([8])
        assert store.partial_plans("s1") == {}
    finally:
        store.close()


def test_a_plan_that_cannot_be_read_back_is_said_and_dropped(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    try:
        store.save_strategy("s1", name="s1", symbol="EURUSD", timeframe="M1", definition={"strategyId": "s1"})
        store.save_partial_plan(9, "s1", {**plan().to_dict(), "symbol": "GBPUSD"})
        events = EventBus()
        seen: list[str] = []
        events.subscribe(lambda e: seen.append(e.message) if isinstance(e, LogLine) else None)
        book = PartialBook("s1", EURUSD, store, events)
        book.resume()
        assert seen == [
            "the partial exits of #9 cannot be resumed (saved partial-exit state is for 'GBPUSD', not "
            "'EURUSD'); its stop and target stay"
        ]
        assert book.get(9) is None and store.partial_plans("s1") == {}
        with pytest.raises(InvalidRecordError, match="ticket"):
            store.save_partial_plan(0, "s1", {})
    finally:
        store.close()


def test_a_version_1_database_gains_the_partial_plans_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store(path).close()
    connection = sqlite3.connect(path)  # make it what version 1 wrote: no partial_plans table
    connection.execute("DROP TABLE partial_plans")
    connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()

    store = Store(path)
    try:
        store.save_strategy("s1", name="s1", symbol="EURUSD", timeframe="M1", definition={"strategyId": "s1"})
        store.save_partial_plan(5, "s1", plan().to_dict())
        assert list(store.partial_plans("s1")) == [5]
    finally:
        store.close()
    connection = sqlite3.connect(path)
    version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    connection.close()
    assert version == (str(SCHEMA_VERSION),) == ("2",)


async def a_lost_answer_position(rig: Rig, volume: float = 0.04) -> int:
    """What a filled order whose answer never came leaves: the strategy's position (its magic, its
    entry comment, its stop), with no trade record or plan of the console's."""
    runner = rig.engine.runners["always"]
    tick = await rig.broker.tick("EURUSD")
    opened = await rig.broker.open_market(
        "EURUSD",
        Side.BUY,
        volume,
        sl=round(tick.ask - 3 * EURUSD.pip, EURUSD.digits),
        tp=round(tick.ask + 500 * EURUSD.pip, EURUSD.digits),
        magic=runner.magic,
        comment=f"{runner.tag}:e0",
    )
    return opened.position


async def test_a_position_found_without_its_plan_takes_up_its_partial_exits(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(managing_only(), source="test")
        await rig.market.poll_once()
        ticket = await a_lost_answer_position(rig)

        async def first_level_fired() -> bool:
            positions = await rig.broker.positions()
            return not positions or positions[0].volume < 0.04 - 1e-9

        await bars_until(rig, first_level_fired)
        assert f"always: took up the partial exits of #{ticket}, found without a plan" in rig.text()
        if await rig.broker.positions():  # level 1 took a quarter (else its stop hit first)
            assert f"always: closed 0.01 lots of #{ticket} (partial)" in rig.lines()
            assert rig.store.partial_plans("always")[ticket]["fired"] == [0]
    finally:
        await rig.close()


async def test_a_position_found_without_its_plan_and_partly_closed_keeps_only_its_stops(
    tmp_path: Path,
) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(managing_only(), source="test")
        await rig.market.poll_once()
        ticket = await a_lost_answer_position(rig)
        await rig.broker.close_position(ticket, volume=0.01)  # a partial close the console has no plan of
        await rig.bar()
        await rig.bar()
        warning = (
            f"always: #{ticket} was found without its partial-exit plan and partly closed already: its "
            "partial exits are not taken (its stop and target stay)"
        )
        assert rig.lines().count(warning) == 1
        assert rig.store.partial_plans("always") == {}
    finally:
        await rig.close()


def managing_only() -> dict[str, Any]:
    """The partial strategy with an entry that never holds (close < 0): it only manages what it finds."""
    never = {"side": "buy", "conditions": [{"indicator": "close", "condition": "less_than", "value": 0}]}
    strategy = partial_strategy()
    strategy["rules"]["entry"] = never
    return strategy


@pytest.mark.parametrize("stop_pips_below_entry", [0.0, 2.0], ids=["breakeven, passed: closed", "moved"])
async def test_a_restart_does_the_steps_a_crash_left_saved_but_undone(
    tmp_path: Path, stop_pips_below_entry: float
) -> None:
    """A level's plan is saved before its close and its stop move are sent (never twice): killed between
    the two, the position kept its full volume and its first stop, and nothing was ever said. At the
    restart both are done; a stop the price has passed meanwhile closes the position instead."""
    clock = Clock()
    state = tmp_path / "sim_state.db"
    rig = await make_rig(tmp_path, clock=clock, state_path=state)
    await rig.engine.start(partial_strategy(), source="test")
    await rig.market.poll_once()
    await rig.bar()
    [position] = await rig.broker.positions()
    runner = rig.engine.runners["always"]
    saved = runner._plans.get(position.ticket)
    assert saved is not None
    far = position.price_open + 10 * (position.price_open - position.sl)  # past both levels
    assert saved.on_price(far, far + 0.0001, open_volume=position.volume)  # two closes, a stop move
    saved.stop = round(position.price_open - stop_pips_below_entry * 0.0001, 5)
    runner._plans.keep(position.ticket, saved)  # saved; then the console "dies" before doing them
    await rig.close()

    again = await make_rig(tmp_path, clock=clock, state_path=state)
    try:
        await again.engine.restore()
        await again.bar()
        text = again.text()
        assert f"#{position.ticket}: a partial close of 0.02 lots was saved" in text
        assert f"closed 0.02 lots of #{position.ticket} (partial)" in text
        assert f"#{position.ticket}: its stop was to move to {saved.stop}" in text
        now = await again.broker.positions(ticket=position.ticket)
        if stop_pips_below_entry == 0.0:  # this seed's price is below the entry by then
            assert now == () and "is past it now: closed" in text
            return
        assert now[0].volume == pytest.approx(0.02) and now[0].sl == pytest.approx(saved.stop), text
        await again.bar()  # once: nothing more is closed or moved
        [later] = await again.broker.positions(ticket=position.ticket)
        assert later.volume == pytest.approx(0.02)
    finally:
        await again.close()
