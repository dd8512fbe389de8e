"""Partial exits live: a level is taken on the tick that reaches it, not at the close of its bar.

Checked on closed bars only, an H1 level touched at 13:20 waited for 14:00 and was closed at whatever
the market was then, below the level, or at a loss after a reversal. The replay's clock stands at bar
opens only: it takes a level on a bar's open tick, or on the closed bar, as the live console does at its
polls there (tests/test_replay_parity.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mt5console.core.broker.models import Side
from mt5console.core.strategy.tracker import CLOSING_ENTRIES
from tests.helpers import Clock, make_rig
from tests.test_partial_plans_kept import partial_strategy as partial_strategy_with

ONE_LEVEL = {
    "enabled": True,
    "mode": "sequential",
    "levels": [{"atR": 1.0, "closePercent": 50, "moveStopTo": "breakeven"}],
}


def partial_strategy() -> dict[str, Any]:
    return partial_strategy_with(ONE_LEVEL, lot=0.02)


async def test_a_level_is_taken_on_the_tick_that_reaches_it(tmp_path: Path) -> None:
    clock = Clock()
    rig = await make_rig(tmp_path, clock=clock)
    try:
        await rig.engine.start(partial_strategy(), source="test")
        await rig.market.poll_once()
        for _ in range(20_000):  # 2 s steps: many polls inside each M1 bar, as the live loop polls
            before = {p.ticket: p for p in await rig.broker.positions()}
            clock.advance(seconds=2)
            await rig.market.poll_once()
            tick = rig.market.ticks["EURUSD"]
            reached = [
                p
                for p in before.values()
                if p.side is Side.BUY
                and p.volume == pytest.approx(0.02)
                and tick.bid >= 2 * p.price_open - p.sl
            ]
            if not reached:
                continue
            (position,) = reached
            level = 2 * position.price_open - position.sl
            (now,) = await rig.broker.positions(ticket=position.ticket) or (None,)
            assert now is not None and now.volume == pytest.approx(0.01), rig.text()  # half closed at once
            assert now.sl == pytest.approx(position.price_open)  # and its stop at breakeven
            closes = [
                d for d in await rig.broker.position_deals(position.ticket) if d.entry in CLOSING_ENTRIES
            ]
            assert len(closes) == 1 and closes[0].price >= level  # at the tick that reached the level
            assert f"closed 0.01 lots of #{position.ticket} (partial)" in rig.text()
            return
        raise AssertionError("no position reached its 1 R level:\n" + rig.text())
    finally:
        await rig.close()


async def test_a_stopped_strategy_takes_no_level_on_a_tick(tmp_path: Path) -> None:
    clock = Clock()
    rig = await make_rig(tmp_path, clock=clock)
    try:
        await rig.engine.start(partial_strategy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        (position,) = await rig.broker.positions()
        await rig.engine.stop("always", by="test")  # its positions stay open, unmanaged
        for _ in range(3_000):
            clock.advance(seconds=2)
            await rig.market.poll_once()
        positions = await rig.broker.positions(ticket=position.ticket)
        assert not positions or positions[0].volume == pytest.approx(0.02)
        assert "(partial)" not in rig.text()
    finally:
        await rig.close()
