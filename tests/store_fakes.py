"""What the store tests share: a fixed moment, a deal as the terminal reports one (DealLike), threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
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


def run_threads(*targets: Callable[[], None]) -> None:
    """Run each target on its own thread; fail on a thread still stuck after 120 s or on any error."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    assert errors == []
