"""What a replay reports: its trades, read from the terminal's deal history, and their summary.

A trade row is one closing deal joined to its position's opening deal, so a partial close is a row
of its own (``exit_reason`` "partial") and the rest of the position, closed later, another. Why a
position closed is read as the console reads it live (``tracker.exit_reason``): the deal's reason
for a stop or target, else the suffix of the comment the engine put on its closing order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from mt5console.core.broker.models import Deal
from mt5console.core.strategy.tracker import DEAL_ENTRY_OUT, DEAL_ENTRY_OUT_BY, exit_reason

DEAL_ENTRY_IN: Final = 0
DEAL_TYPE_BUY: Final = 0
DEAL_TYPE_SELL: Final = 1
CURRENCY_DIGITS: Final = 2


class ReportError(ValueError):
    """A deal history that cannot be turned into trades (a closing deal without its opening)."""


@dataclass(frozen=True, slots=True)
class ReplayTrade:
    """One closing deal of a position, with the position's opening deal."""

    ticket: int  # the position's ticket
    side: str  # "buy" | "sell": the position's side
    volume: float  # the volume this deal closed
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    exit_reason: str  # "sl" | "tp" | "signal" | "partial" | "end" (others only if something else closed it)
    profit: float  # of this deal, in the account currency

    def to_json(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket,
            "side": self.side,
            "volume": self.volume,
            "entry_time": self.entry_time.isoformat(),
            "entry_price": self.entry_price,
            "exit_time": self.exit_time.isoformat(),
            "exit_price": self.exit_price,
            "exit_reason": self.exit_reason,
            "profit": self.profit,
        }


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    trades: int
    wins: int  # profit > 0
    losses: int  # profit < 0 (a trade at exactly 0 is neither)
    net_profit: float
    # The largest fall of the balance (start balance plus closed trades, in closing order) from its
    # highest point before it, in the account currency; 0 when it never fell.
    max_drawdown: float
    # Gross profit / gross loss; None (JSON null) when no trade lost, as the ratio is then unbounded.
    profit_factor: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "trades": self.trades,
            "wins": self.wins,
            "losses": self.losses,
            "net_profit": self.net_profit,
            "max_drawdown": self.max_drawdown,
            "profit_factor": self.profit_factor,
        }


def trades_from_deals(deals: Iterable[Deal]) -> tuple[ReplayTrade, ...]:
    """Every closing deal as a trade row, in the order the deals were made (time, then ticket)."""
    ordered = sorted(
        (d for d in deals if d.type in (DEAL_TYPE_BUY, DEAL_TYPE_SELL)), key=lambda d: (d.time, d.ticket)
    )
    openings = {d.position_id: d for d in ordered if d.entry == DEAL_ENTRY_IN}
    rows: list[ReplayTrade] = []
    for deal in ordered:
        if deal.entry not in (DEAL_ENTRY_OUT, DEAL_ENTRY_OUT_BY):
            continue
        opening = openings.get(deal.position_id)
        if opening is None:
            raise ReportError(
                f"deal #{deal.ticket} closes position #{deal.position_id}, whose opening deal is missing"
            )
        rows.append(
            ReplayTrade(
                ticket=deal.position_id,
                side="buy" if opening.type == DEAL_TYPE_BUY else "sell",
                volume=deal.volume,
                entry_time=opening.time,
                entry_price=opening.price,
                exit_time=deal.time,
                exit_price=deal.price,
                exit_reason=exit_reason(deal),
                profit=deal.profit,
            )
        )
    return tuple(rows)


def summarize_trades(trades: Sequence[ReplayTrade], start_balance: float) -> ReplaySummary:
    """Counts, net profit, drawdown and profit factor of ``trades`` (in their closing order). The
    drawdown is the balance's, trade by trade as they close: an open position's loss on the way is
    not in it (the table says so)."""
    profits = [trade.profit for trade in trades]
    gross_profit = sum(p for p in profits if p > 0)
    gross_loss = -sum(p for p in profits if p < 0)
    balance = peak = start_balance
    drawdown = 0.0
    for profit in profits:
        balance += profit
        peak = max(peak, balance)
        drawdown = max(drawdown, peak - balance)
    return ReplaySummary(
        trades=len(profits),
        wins=sum(p > 0 for p in profits),
        losses=sum(p < 0 for p in profits),
        # + 0.0: a sum of losses and gains that rounds to zero is 0.00, never "-0.00".
        net_profit=round(sum(profits), CURRENCY_DIGITS) + 0.0,
        max_drawdown=round(drawdown, CURRENCY_DIGITS) + 0.0,
        profit_factor=round(gross_profit / gross_loss, 4) if gross_loss > 0 else None,
    )
