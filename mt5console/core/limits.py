"""The console's local hard limits (``--max-lot``, ``--max-positions``, ``--max-daily-loss-pct``,
``--max-drawdown-pct``): checked before every new position, whoever asks for it.

Losses are measured from the terminal's own deal history, not from memory, so a restart neither
forgets today's losses nor resets the drawdown's peak:
- daily loss: the equity now against the balance at 00:00 UTC plus today's deposits (today's balance
  minus the profit, commission and swap of today's trades), in percent of that amount;
- drawdown: the equity now against the highest balance the deal history ever reached.
When a loss limit is reached, no new position opens; open positions are still managed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from mt5console.core.broker.models import AccountState, Deal, Position
from mt5console.core.broker.mt5 import Broker
from mt5console.core.settings import Limits

HISTORY_START = datetime(2000, 1, 1, tzinfo=UTC)
DEAL_TYPE_BALANCE = 2


def deal_result(deal: Deal) -> float:
    return deal.profit + deal.commission + deal.swap


def daily_loss_pct(account: AccountState, todays_deals: Sequence[Deal]) -> float:
    """How much of the day's capital (balance at 00:00 UTC + deposits since) is lost now; < 0 = a gain."""
    trading = [d for d in todays_deals if d.type != DEAL_TYPE_BALANCE]  # deposits are not results
    capital = account.balance - sum(deal_result(d) for d in trading)
    if capital <= 0:
        return 0.0
    return (capital - account.equity) / capital * 100


def drawdown_pct(account: AccountState, deals: Sequence[Deal]) -> float:
    """How far the equity is below the highest balance the account ever had."""
    balance_then = account.balance - sum(deal_result(d) for d in deals)
    peak = balance_then
    for deal in sorted(deals, key=lambda d: (d.time, d.ticket)):
        balance_then += deal_result(deal)
        peak = max(peak, balance_then)
    peak = max(peak, account.balance)
    if peak <= 0:
        return 0.0
    return max(0.0, (peak - account.equity) / peak * 100)


class LimitGuard:
    def __init__(self, broker: Broker, limits: Limits) -> None:
        self._broker = broker
        self.limits = limits

    async def refusal(self, volume: float, open_positions: Sequence[Position], now: datetime) -> str | None:
        """Why a new position of ``volume`` lots may not open at ``now``, or None when it may.

        ``now`` is the decision's time (the terminal's, which the replay moves), not the wall clock.
        """
        limits = self.limits
        if limits.max_lot is not None and volume > limits.max_lot + 1e-9:
            return f"{volume:g} lots is above the console's --max-lot {limits.max_lot:g}"
        if limits.max_positions is not None and len(open_positions) >= limits.max_positions:
            return f"the console's --max-positions limit {limits.max_positions} is reached"
        if limits.max_daily_loss_pct is None and limits.max_drawdown_pct is None:
            return None
        account = await self._broker.account()
        if limits.max_daily_loss_pct is not None:
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            lost = daily_loss_pct(account, await self._broker.deals(midnight, now + timedelta(days=1)))
            if lost >= limits.max_daily_loss_pct:
                return (
                    f"today's loss {lost:.2f}% reached the --max-daily-loss-pct "
                    f"{limits.max_daily_loss_pct:g}% limit: no new positions until 00:00 UTC"
                )
        if limits.max_drawdown_pct is not None:
            deals = await self._broker.deals(HISTORY_START, now + timedelta(days=1))
            down = drawdown_pct(account, [d for d in deals if d.type != DEAL_TYPE_BALANCE])
            if down >= limits.max_drawdown_pct:
                return (
                    f"drawdown {down:.2f}% reached the --max-drawdown-pct "
                    f"{limits.max_drawdown_pct:g}% limit: no new positions"
                )
        return None
