"""What the store tests share: a fixed moment and a deal as the terminal reports one (DealLike)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class FakeDeal:
    ticket: int
    order: int = 9
    position_id: int = 1001
    symbol: str = "EURUSD"
    type: int = 0
    entry: int = 0
    reason: int = 3
    volume: float = 0.3
    price: float = 1.08512
    profit: float = 0.0
    commission: float = -0.7
    swap: float = 0.0
    magic: int = 123456
    comment: str = "s1:entry"
    time: datetime = T0
