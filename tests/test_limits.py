"""The console's hard limits refuse new positions, whoever asks, and say which limit refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mt5console.core.broker.models import AccountState, Deal, Side
from mt5console.core.limits import daily_loss_pct, drawdown_pct
from mt5console.core.settings import Limits
from tests.helpers import always_buy, make_rig

NOON = datetime(2026, 11, 18, 12, tzinfo=UTC)


def account(balance: float, equity: float) -> AccountState:
    return AccountState(
        login=1, server="s", name="n", company="c", currency="USD", leverage=100, balance=balance,
        equity=equity, profit=equity - balance, margin=0.0, margin_free=equity, margin_level=0.0,
        trade_allowed=True, hedging=True, demo=True,
    )  # fmt: skip


def deal(ticket: int, profit: float, *, kind: int = 1, hour: int = 10, commission: float = 0.0) -> Deal:
    return Deal(
        ticket=ticket, order=ticket, position_id=ticket, symbol="EURUSD", type=kind, entry=1, reason=0,
        volume=0.1, price=1.1, profit=profit, commission=commission, swap=0.0, magic=0, comment="",
        time=NOON.replace(hour=hour),
    )  # fmt: skip


def test_daily_loss_counts_todays_results_and_floating_loss_but_not_deposits() -> None:
    # Started the day at 10,000 and deposited 1,000 (capital 11,000); lost 300 closed (incl. 10
    # commission) and 200 floating: 550 of 11,000 = 5 %.
    deals = [deal(1, -290, commission=-10), deal(2, 1000, kind=2)]
    assert daily_loss_pct(account(10_700, 10_450), deals) == pytest.approx(5.0)
    assert daily_loss_pct(account(10_000, 10_100), []) == pytest.approx(-1.0)


def test_drawdown_is_measured_from_the_highest_balance_ever() -> None:
    # 10,000 -> 11,000 (peak) -> 10,450; equity 10,450 - 550 floating = 9,900 -> 10 % below the peak.
    deals = [deal(1, 1000, hour=9), deal(2, -550, hour=11)]
    assert drawdown_pct(account(10_450, 9_900), deals) == pytest.approx(10.0)
    assert drawdown_pct(account(10_000, 10_000), []) == 0.0


async def test_max_lot_refuses_a_larger_order(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path, limits=Limits(max_lot=0.02))
    try:
        await rig.engine.start(always_buy(rules={"riskManagement": {"lotSize": 0.05}}), source="test")
        await rig.market.poll_once()
        await rig.bar()
        assert await rig.broker.positions() == ()
        assert "0.05 lots is above the console's --max-lot 0.02" in rig.text()
    finally:
        await rig.close()


async def test_max_positions_counts_every_strategy(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path, limits=Limits(max_positions=1))
    try:
        await rig.engine.start(always_buy("a"), source="test")
        await rig.engine.start(always_buy("b"), source="test")
        await rig.market.poll_once()
        await rig.bar()
        assert len(await rig.broker.positions()) == 1
        assert "--max-positions limit 1 is reached" in rig.text()
    finally:
        await rig.close()


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        (Limits(max_daily_loss_pct=0.001), "--max-daily-loss-pct 0.001% limit"),
        (Limits(max_drawdown_pct=0.001), "--max-drawdown-pct 0.001% limit"),
    ],
)
async def test_loss_limits_stop_new_positions(tmp_path: Path, limits: Limits, words: str) -> None:
    rig = await make_rig(tmp_path, limits=limits)
    try:
        # A position opened and closed at once loses the spread: a small loss today.
        opened = await rig.broker.open_market("EURUSD", Side.BUY, 0.5)
        await rig.broker.close_position(opened.position)
        await rig.engine.start(always_buy(), source="test")
        await rig.market.poll_once()
        await rig.bar()
        assert await rig.broker.positions() == ()
        assert words in rig.text()
    finally:
        await rig.close()
