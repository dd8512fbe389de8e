"""The terminal's per-moment caches: the last value computed, and the key it was computed for.

A record derived from the market and the account (the open positions with their current prices, the
account's equity) is a function of the time and of the ledger alone: keyed on (now_ms,
ledger.revision), it can be served again until the clock moves or the account changes. A stepped
replay asks for the same records several times between two clock moves.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LastValue(Generic[K, V]):
    """Remembers one (key, value); ``get`` computes anew whenever the key differs."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[K, V] | None = None

    def get(self, key: K, compute: Callable[[], V]) -> V:
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        value = compute()
        self._last = (key, value)
        return value
