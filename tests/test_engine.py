"""The strategy engine on the simulated terminal: entries, lifecycle, persistence, restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.broker.models import Side
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import PositionOpened, TradeUpdate
from mt5console.core.store import StrategyState, Trade, TradeStatus
from mt5console.core.strategy.model import StrategyError
from tests.helpers import Clock, Rig, SimFront, always_buy, make_rig


async def test_a_signal_opens_one_position_per_bar_with_magic_and_comment(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()  # loads history: nothing closed yet, no signal
        assert await rig.broker.positions() == ()
        await rig.bar()
        positions = await rig.broker.positions()
        assert len(positions) == 1
        magic = rig.store.get_strategy("always").magic
        assert positions[0].magic == magic
        assert positions[0].comment.startswith("mt5c:always:e0")
        assert positions[0].sl > 0 and positions[0].tp > positions[0].price_open > positions[0].sl
        await rig.market.poll_once()  # same bar polled again: no second entry
        assert len(await rig.broker.positions()) == 1
        trade = rig.store.trade_by_ticket(positions[0].ticket)
        assert trade is not None and trade.strategy_id == "always" and trade.status == TradeStatus.OPEN
    finally:
        await rig.close()


async def test_record_open_returns_the_position_it_reports_as_the_terminal_holds_it(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        result = await rig.broker.open_market("EURUSD", Side.SELL, 0.02, magic=9, comment="by hand")
        when = datetime(2026, 1, 5, 10, tzinfo=UTC)
        position = rig.engine.tracker.record_open(
            strategy_id=None, symbol="EURUSD", side=Side.SELL, result=result,
            sl=0.0, tp=0.0, magic=9, comment="by hand", when=when,
        )  # fmt: skip
        [reported] = [event.position for event in rig.seen if isinstance(event, PositionOpened)]
        assert position is reported  # the executor counts the very position the front ends were shown
        [held] = await rig.broker.positions(ticket=result.position)
        fields = (
            "ticket",
            "identifier",
            "symbol",
            "side",
            "volume",
            "price_open",
            "sl",
            "tp",
            "magic",
            "comment",
        )
        assert [getattr(position, name) for name in fields] == [getattr(held, name) for name in fields]
        assert position.time == when and position.price_current == position.price_open
        trade = rig.store.trade_by_ticket(result.position)
        assert (
            trade is not None and trade.open_price == position.price_open and trade.volume == position.volume
        )
    finally:
        await rig.close()


async def test_max_positions_blocks_and_says_why(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(
            always_buy(rules={"riskManagement": {"lotSize": 0.01, "maxPositions": 2}}), source="test"
        )
        await rig.market.poll_once()
        for _ in range(4):
            await rig.bar()
        assert len(await rig.broker.positions()) == 2
        assert "entry blocked: maxPositions 2 reached (2 open)" in rig.text()
    finally:
        await rig.close()


async def test_stop_closes_positions_and_no_trade_follows(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        await rig.bar()
        assert len(await rig.broker.positions()) == 2
        closed = await rig.engine.stop("always", close_positions=True, by="keyboard")
        assert closed == 2
        assert await rig.broker.positions() == ()
        record = rig.store.get_strategy("always")
        assert record.state == StrategyState.STOPPED and "keyboard" in record.state_reason
        for _ in range(3):
            await rig.bar()
        assert await rig.broker.positions() == ()
        await rig.market.poll_once()
        assert all(t.status == TradeStatus.CLOSED for t in rig.store.closed_trades("always"))
        assert {t.exit_reason for t in rig.store.closed_trades("always")} == {"stopped"}
    finally:
        await rig.close()


async def test_pause_manages_but_opens_nothing_then_resume(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()
        rig.engine.pause("always", by="test")
        await rig.bar()
        assert await rig.broker.positions() == ()
        assert rig.store.get_strategy("always").state == StrategyState.PAUSED
        rig.engine.resume("always", by="test")
        await rig.bar()
        assert len(await rig.broker.positions()) == 1
    finally:
        await rig.close()


async def test_replace_keeps_positions_and_magic(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(always_buy(), source="test")
        magic = rig.store.get_strategy("always").magic
        await rig.market.poll_once()
        await rig.bar()
        await rig.engine.start(always_buy(strategyName="Renamed"), source="test")
        assert list(rig.engine.runners) == ["always"]
        assert rig.store.get_strategy("always").name == "Renamed"
        assert rig.store.get_strategy("always").magic == magic
        assert len(await rig.broker.positions()) == 1
        assert "always: replaced from test" in rig.text()
    finally:
        await rig.close()


async def test_a_strategy_with_open_positions_is_not_moved_to_another_symbol(tmp_path: Path) -> None:
    """Replaced on another symbol, a strategy stopped managing (and counting, and closing at a kill
    switch) its positions on the old one: a review left one open under a STOP_ALL that said ok."""
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        (position,) = await rig.broker.positions()
        refused = rf"symbol: always has open positions on another symbol \(#{position.ticket} EURUSD\)"
        with pytest.raises(StrategyError, match=refused):
            await rig.engine.start(always_buy(symbol="GBPUSD"), source="test")
        assert rig.engine.runners["always"].strategy.symbol == "EURUSD"  # left running as it was
        assert rig.store.get_strategy("always").symbol == "EURUSD"
        await rig.engine.stop("always", close_positions=True, by="test")
        assert await rig.broker.positions() == ()
        await rig.engine.start(always_buy(symbol="GBPUSD"), source="test")  # nothing left behind now
        assert rig.engine.runners["always"].strategy.symbol == "GBPUSD"
    finally:
        await rig.close()


async def test_a_restore_on_another_symbol_runs_and_names_the_positions_it_does_not_manage(
    tmp_path: Path,
) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        (position,) = await rig.broker.positions()
        moved = always_buy(symbol="GBPUSD")  # as stored by a version that let a strategy move
        rig.store.save_strategy("always", name="moved", symbol="GBPUSD", timeframe="M1", definition=moved)
        await rig.engine.restore()
        assert rig.engine.runners["always"].strategy.symbol == "GBPUSD"
        said = f"has open positions on another symbol than its GBPUSD (#{position.ticket} EURUSD)"
        assert said in rig.text()
    finally:
        await rig.close()


async def test_a_stop_that_closes_closes_the_strategys_positions_on_every_symbol(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(always_buy(), source="test")
        magic = rig.store.get_strategy("always").magic
        await rig.market.poll_once()
        await rig.bar()
        # One of its magic on another symbol: moved before moves were refused, or placed by hand.
        await rig.broker.open_market("GBPUSD", Side.BUY, 0.01, magic=magic, comment="by hand")
        assert len(await rig.broker.positions()) == 2
        closed = await rig.engine.stop("always", close_positions=True, by="test")
        assert closed == 2 and await rig.broker.positions() == ()
    finally:
        await rig.close()


async def test_a_bad_strategy_starts_nothing(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        bad = always_buy(rules={"riskManagement": {"lotSize": 0.004, "maxPositions": 1}})
        with pytest.raises(StrategyError, match=r"minimum 0\.01"):
            await rig.engine.start(bad, source="test")
        unknown = always_buy(symbol="NOPE")
        with pytest.raises(StrategyError, match="does not know the symbol 'NOPE'"):
            await rig.engine.start(unknown, source="test")
        news = always_buy(rules={"newsFilter": {"enabled": True}})
        with pytest.raises(StrategyError) as refused:
            await rig.engine.start(news, source="test")
        assert str(refused.value) == (
            "rules.newsFilter: no economic calendar source is configured; "
            "the console cannot filter entries by news"
        )
        assert rig.engine.runners == {}
        assert rig.store.list_strategies() == []
        assert rig.market.feeds() == []
    finally:
        await rig.close()


async def test_restart_resumes_and_recognises_positions_without_duplicate(tmp_path: Path) -> None:
    clock = Clock()
    state = tmp_path / "sim_state.db"
    rig = await make_rig(tmp_path, clock=clock, state_path=state)
    await rig.engine.start(
        always_buy(rules={"riskManagement": {"lotSize": 0.01, "maxPositions": 1}}), source="test"
    )
    await rig.market.poll_once()
    await rig.bar()
    before = await rig.broker.positions()
    assert len(before) == 1
    await rig.close()

    clock.advance(seconds=10)  # same bar: the restart must not repeat its entry
    again = await make_rig(tmp_path, clock=clock, state_path=state)
    try:
        await again.engine.restore()
        assert list(again.engine.runners) == ["always"]
        assert "always: restored from restart" in again.text()
        await again.market.poll_once()
        after = await again.broker.positions()
        assert [p.ticket for p in after] == [before[0].ticket]
        trade = again.store.trade_by_ticket(before[0].ticket)
        assert trade is not None and trade.strategy_id == "always"
        await again.bar()  # maxPositions 1 holds across the restart: the adopted position counts
        assert len(await again.broker.positions()) == 1
        assert "maxPositions 1 reached" in again.text()
    finally:
        await again.close()


async def one_tight_trade_closed(rig: Rig) -> Trade:
    """A 0.01-lot buy with a 2-pip stop and target, run until its stop or target closes it."""
    tight = always_buy(
        rules={
            "exit": {
                "stopLoss": {"type": "pips", "value": 2},
                "takeProfit": {"type": "pips", "value": 2},
            },
            "riskManagement": {"lotSize": 0.01, "maxPositions": 1},
        }
    )
    await rig.engine.start(tight, source="test")
    await rig.market.poll_once()
    await rig.bar()
    ticket = (await rig.broker.positions())[0].ticket
    for _ in range(120):  # a 2-pip stop or target is hit within minutes on EURUSD
        rig.clock.advance(seconds=30)
        await rig.market.poll_once()
        trade = rig.store.trade_by_ticket(ticket)
        if trade is not None and trade.status == TradeStatus.CLOSED:
            return trade
    raise AssertionError(f"#{ticket} was not closed in an hour:\n{rig.text()}")


async def test_stop_loss_hit_is_recorded_with_its_reason(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        trade = await one_tight_trade_closed(rig)
        assert trade.exit_reason in ("sl", "tp")
        assert trade.close_price is not None and trade.profit != 0
    finally:
        await rig.close()


async def test_a_blocked_entry_names_the_filter_and_changes_the_status(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        narrow = always_buy(rules={"spreadFilter": {"enabled": True, "maxSpread": 0.01}})
        await rig.engine.start(narrow, source="test")
        await rig.market.poll_once()
        await rig.bar()
        assert await rig.broker.positions() == ()
        assert "entry blocked: spreadFilter filter: spread" in rig.text()
        status = rig.engine.runners["always"].status
        assert status.last_blocked.startswith("spreadFilter") and status.last_blocked_time is not None
        assert status.last_signal.startswith("buy") and status.last_signal_time is not None
    finally:
        await rig.close()


async def test_exit_conditions_close_positions_as_a_signal(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        # Enter on every bar; leave when close > 0, i.e. on the next closed bar.
        strategy = always_buy(
            rules={
                "exit": {
                    "stopLoss": {"type": "pips", "value": 30},
                    "conditions": {"logic": "AND", "conditions": [
                        {"indicator": "close", "condition": "greater_than", "value": 0}
                    ]},
                },
                "riskManagement": {"lotSize": 0.01, "maxPositions": 1},
            }
        )  # fmt: skip
        await rig.engine.start(strategy, source="test")
        await rig.market.poll_once()
        await rig.bar()
        [first] = await rig.broker.positions()
        await rig.bar()  # the exit condition closes it, then the entry opens a new one
        await rig.market.poll_once()
        trade = rig.store.trade_by_ticket(first.ticket)
        assert trade is not None and trade.status == TradeStatus.CLOSED and trade.exit_reason == "signal"
        assert "exit condition holds" in rig.text()
        assert [p.ticket for p in await rig.broker.positions()] != [first.ticket]
    finally:
        await rig.close()


async def test_a_partial_exit_closes_half_and_moves_the_stop(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        strategy = always_buy(
            rules={
                "exit": {
                    "stopLoss": {"type": "pips", "value": 3},
                    "takeProfit": {"type": "pips", "value": 500},
                    "partialExits": {"enabled": True, "mode": "sequential", "levels": [
                        {"atR": 1.0, "closePercent": 50, "moveStopTo": "breakeven"}
                    ]},
                },
                "riskManagement": {"lotSize": 0.02, "maxPositions": 1},
            }
        )  # fmt: skip
        await rig.engine.start(strategy, source="test")
        await rig.market.poll_once()
        for _ in range(120):  # a 3-pip risk: some bar's high reaches 1 R quickly, unless the stop hits first
            await rig.bar()
            if "partial" in rig.text():
                break
        partial_lines = [line for line in rig.lines() if "0.01 lots of #" in line and "(partial)" in line]
        assert partial_lines, rig.text()
        assert "moved the stop of #" in rig.text()
    finally:
        await rig.close()


def test_close_comments_keep_their_reason_within_mt5s_31_characters() -> None:
    from mt5console.core.strategy.tracker import close_comment

    long_tag = "mt5c:" + "x" * 40
    for reason in ("exit", "partial", "stop", "close"):
        comment = close_comment(long_tag, reason)
        assert len(comment) <= 31 and comment.endswith(f":{reason}")
    assert close_comment("mt5c:keyboard", "close") == "mt5c:keyboard:close"


async def test_a_platform_jobs_position_found_at_start_is_said_to_be_the_jobs(tmp_path: Path) -> None:
    from mt5console.core.agent.jobs.trade_recovery import order_comment
    from mt5console.core.broker.models import Side

    rig = await make_rig(tmp_path)
    try:
        job = await rig.broker.open_market("EURUSD", Side.BUY, 0.01, magic=0, comment=order_comment("j-77"))
        hand = await rig.broker.open_market("EURUSD", Side.SELL, 0.01, magic=0, comment="")
        await rig.engine.restore()
        assert f"found open position #{job.position} buy 0.01 EURUSD" in rig.text()
        assert f"#{job.position} buy 0.01 EURUSD at {job.price}: a platform job's trade" in rig.text()
        assert f"at {hand.price}: no strategy of this console (manual or other EA)" in rig.text()
    finally:
        await rig.close()


class CostlyTerminal(SimFront):
    """The simulator with an ECN account's costs on every deal: a commission and a fee on each, and a
    swap on the close (the simulator itself charges none)."""

    def history_deals_get(self, *args: Any, **kwargs: Any) -> Any:
        deals = self._sim.history_deals_get(*args, **kwargs)
        if deals is None:
            return None
        return tuple(
            d._replace(commission=-0.35, fee=-0.05, swap=-0.10 if d.entry else 0.0) if d.type in (0, 1) else d
            for d in deals
        )


async def test_a_trades_recorded_profit_is_net_of_commission_fee_and_swap(tmp_path: Path) -> None:
    clock = Clock()
    rig = await make_rig(tmp_path, clock=clock, sim=CostlyTerminal(SimTerminal(seed=7, clock=clock)))
    try:
        trade = await one_tight_trade_closed(rig)
        ticket = trade.ticket
        deals = await rig.broker.position_deals(ticket)
        gross = sum(d.profit for d in deals)
        assert [d.commission for d in deals] == [-0.40, -0.40]  # the fee is kept with the commission
        assert trade.profit == pytest.approx(gross - 0.40 - 0.40 - 0.10)  # as the balance moved
    finally:
        await rig.close()


class NettingTerminal(SimFront):
    """The simulator presenting a netting account (margin mode 0), as many exchange accounts are."""

    def account_info(self) -> Any:
        info = self._sim.account_info()
        return None if info is None else info._replace(margin_mode=0)


async def test_strategies_are_refused_on_a_netting_account(tmp_path: Path) -> None:
    clock = Clock()
    rig = await make_rig(tmp_path, clock=clock, sim=NettingTerminal(SimTerminal(seed=7, clock=clock)))
    try:
        rig.market.account = await rig.broker.account()  # as the runtime sets it at start
        assert rig.market.account.hedging is False
        with pytest.raises(StrategyError) as caught:
            await rig.engine.start(always_buy(), source="test")
        assert "this account nets positions (one position per symbol)" in str(caught.value)
        assert rig.engine.runners == {} and rig.store.get_strategy("always") is None  # nothing half-started
    finally:
        await rig.close()


class EmptyTickTerminal(SimFront):
    """The simulator answering with an empty tick (bid and ask 0), as a real terminal can right after a
    symbol is selected into Market Watch."""

    def symbol_info_tick(self, symbol: str) -> Any:
        tick = self._sim.symbol_info_tick(symbol)
        return None if tick is None else tick._replace(bid=0.0, ask=0.0)


async def test_an_empty_tick_refuses_the_entry_instead_of_pricing_it_at_zero(tmp_path: Path) -> None:
    clock = Clock()
    rig = await make_rig(tmp_path, clock=clock, sim=EmptyTickTerminal(SimTerminal(seed=7, clock=clock)))
    try:
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        assert await rig.broker.positions() == ()
        assert "no EURUSD price yet (the terminal's tick has no bid/ask)" in rig.text()
    finally:
        await rig.close()


async def test_a_restart_records_a_position_that_opened_and_closed_while_unrecorded(tmp_path: Path) -> None:
    """Killed between a fill and its record, then the position's stop closed it before the restart: the
    terminal had both deals, the console no trade, and the platform never heard of it."""
    clock = Clock()
    state = tmp_path / "sim_state.db"
    rig = await make_rig(tmp_path, clock=clock, state_path=state)
    await rig.engine.start(always_buy(), source="test")
    magic = rig.store.get_strategy("always").magic
    session_start = clock.now - timedelta(minutes=5)
    # The runner's order, filled; the console dies before it is written; its stop closes it meanwhile.
    result = await rig.broker.open_market("EURUSD", Side.BUY, 0.01, magic=magic, comment="mt5c:always:e0")
    await rig.broker.close_position(result.position, comment="[sl 1.1]")
    await rig.close()

    again = await make_rig(tmp_path, clock=clock, state_path=state, store_path=tmp_path / "mt5console.db")
    try:
        await again.engine.restore(missed_since=session_start)
        trade = again.store.trade_by_ticket(result.position)
        assert trade is not None and trade.status == TradeStatus.CLOSED and trade.strategy_id == "always"
        updates = [e.event for e in again.seen if isinstance(e, TradeUpdate) and e.ticket == result.position]
        assert updates == ["opened", "closed"]
        assert (
            f"#{result.position} of always opened and closed while the console was not recording"
            in again.text()
        )
        await again.engine.restore(missed_since=session_start)  # never twice
        assert len([e for e in again.seen if isinstance(e, TradeUpdate) and e.ticket == result.position]) == 2
    finally:
        await again.close()
