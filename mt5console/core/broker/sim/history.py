"""Arguments as the module reads them: dates, symbol groups, and history selection.

Dates are datetimes (aware, or naive read as UTC) or epoch seconds. A group is MT5's filter:
comma-separated patterns with ``*`` wildcards, those starting with ``!`` excluding, e.g.
``"*USD*,!EUR*"``; a symbol passes when it matches an including pattern and no excluding one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Generic, TypeVar

from mt5console.core.broker.sim.records import TradeDeal, TradeOrder


class BadArgument(Exception):
    """An argument of the wrong type or value: the call returns None with RES_E_INVALID_PARAMS."""


def epoch_seconds(value: object, name: str) -> int:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(aware.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    raise BadArgument(
        f'Invalid "{name}" argument: expected a datetime or epoch seconds, got {type(value).__name__}'
    )


def int_argument(value: object, name: str, minimum: int = 0) -> int:
    """An int >= minimum (bools are refused, as the module refuses them)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadArgument(f'Invalid "{name}" argument: expected an int >= {minimum}, got {value!r}')
    return value


def number_argument(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadArgument(f'Invalid "{name}" argument: expected a number, got {value!r}')
    return float(value)


def group_matcher(group: str | None) -> Callable[[str], bool]:
    if group is None:
        return lambda symbol: True
    if not isinstance(group, str):
        raise BadArgument(f'Invalid "group" argument: expected a str, got {type(group).__name__}')
    patterns = [p.strip() for p in group.split(",") if p.strip()]
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]

    def matches(symbol: str) -> bool:
        if any(fnmatchcase(symbol, p) for p in exclude):
            return False
        return any(fnmatchcase(symbol, p) for p in include)

    return matches


Item = TypeVar("Item", TradeDeal, TradeOrder)


def _item_time(item: TradeDeal | TradeOrder) -> int:
    return item.time if isinstance(item, TradeDeal) else item.time_setup


class PositionIndex(Generic[Item]):
    """A history's items by position id, for ``position=`` queries in O(1) rather than a scan.

    The ledger's history lists are only ever appended to, so the index catches up with the items
    added since the last query instead of being maintained by every writer.
    """

    def __init__(self) -> None:
        self._seen = 0
        self._by_position: dict[int, list[Item]] = {}

    def get(self, items: Sequence[Item], position: int) -> tuple[Item, ...]:
        for item in items[self._seen :]:
            self._by_position.setdefault(item.position_id, []).append(item)
        self._seen = len(items)
        return tuple(self._by_position.get(position, ()))


def select_history(
    items: Sequence[Item],
    date_from: object,
    date_to: object,
    group: str | None,
    position: object,
    ticket: object,
    index: PositionIndex[Item] | None = None,
) -> tuple[Item, ...]:
    """history_deals_get / history_orders_get: by ticket, by position, or by time (and group)."""
    for name, value in (("position", position), ("ticket", ticket)):
        if value is not None:
            int_argument(value, name)
    if ticket is not None:
        return tuple(item for item in items if item.ticket == ticket)
    if position is not None:
        if index is not None:
            return index.get(items, int_argument(position, "position"))
        return tuple(item for item in items if item.position_id == position)
    if date_from is None or date_to is None:
        raise BadArgument("Invalid arguments: give date_from and date_to, or position=, or ticket=")
    start, end = epoch_seconds(date_from, "date_from"), epoch_seconds(date_to, "date_to")
    matches = group_matcher(group)
    return tuple(item for item in items if start <= _item_time(item) <= end and matches(item.symbol))


def matching(symbols: Iterable[str], group: str | None) -> list[str]:
    matches = group_matcher(group)
    return [symbol for symbol in symbols if matches(symbol)]
