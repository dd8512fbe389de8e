"""Reading an order_send / order_check request dict the way the MetaTrader5 module does.

A call that is malformed as a call (not a dict, an unknown key, a value of the wrong type) makes the
module return None with last_error (RES_E_INVALID_PARAMS, 'Invalid "<field>" argument'); a well-formed
request that the server refuses gets an OrderSendResult with a TRADE_RETCODE_* instead. The module is
strict about types: ``"volume": 1`` (an int) is refused, so is a bool where an int is expected.
"""

from __future__ import annotations

import math
from typing import Final

from mt5console.core.broker.sim.records import TradeRequest

INT_FIELDS: Final = frozenset(
    {
        "action",
        "magic",
        "order",
        "deviation",
        "type",
        "type_filling",
        "type_time",
        "expiration",
        "position",
        "position_by",
    }
)
FLOAT_FIELDS: Final = frozenset({"volume", "price", "stoplimit", "sl", "tp"})
STR_FIELDS: Final = frozenset({"symbol", "comment"})
# Unsigned in MQL5 (ulong / uint): a negative value cannot be sent. The module reads them as C ulongs
# (0 .. 2**64 - 1) and the other int fields (enums) as C ints: a value outside is an invalid argument.
UNSIGNED_FIELDS: Final = frozenset({"magic", "order", "deviation", "position", "position_by", "expiration"})
ULONG_MAX: Final = (1 << 64) - 1
INT_RANGE: Final = (-(1 << 31), (1 << 31) - 1)
COMMENT_LENGTH: Final = 31  # MT5 keeps the first 31 characters of a comment


class BadCall(Exception):
    """The call itself is malformed: the module returns None and sets RES_E_INVALID_PARAMS."""


# Each field's type, and what it reads as when absent, in TradeRequest's field order (a parsed
# request's values keep that order).
_KINDS: Final[dict[str, type]] = {
    name: float if name in FLOAT_FIELDS else str if name in STR_FIELDS else int
    for name in TradeRequest._fields
}
_ABSENT: Final[dict[str, object]] = {name: kind() for name, kind in _KINDS.items()}
_FAST_INT_MAX: Final = INT_RANGE[1]  # within every int field's range
_record = tuple.__new__  # a named tuple from its values in field order, with no argument parsing


def _check(key: str, value: object) -> None:
    if key in INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadCall(f'Invalid "{key}" argument: expected an int, got {type(value).__name__}')
        if key in UNSIGNED_FIELDS:
            if value < 0:
                raise BadCall(f'Invalid "{key}" argument: {value} is negative')
            if value > ULONG_MAX:
                raise BadCall(
                    f'Invalid "{key}" argument: {value} is more than {ULONG_MAX} (an unsigned 64-bit int)'
                )
        elif not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise BadCall(
                f'Invalid "{key}" argument: {value} is outside a 32-bit int '
                f"({INT_RANGE[0]} .. {INT_RANGE[1]})"
            )
    elif key in FLOAT_FIELDS:
        if not isinstance(value, float):
            raise BadCall(f'Invalid "{key}" argument: expected a float, got {type(value).__name__} {value!r}')
        if not math.isfinite(value):
            raise BadCall(f'Invalid "{key}" argument: {value} is not a finite number')
    elif not isinstance(value, str):
        raise BadCall(f'Invalid "{key}" argument: expected a str, got {type(value).__name__}')


def parse_request(request: object) -> TradeRequest:
    """The TradeRequest the terminal reads from ``request``; BadCall when the call is malformed."""
    if not isinstance(request, dict):
        raise BadCall(f'Invalid "request" argument: expected a dict, got {type(request).__name__}')
    for key, value in request.items():
        kind = _KINDS.get(key)
        if kind is None:
            raise BadCall(f'Invalid "{key}" argument: a trade request has no such field')
        # The usual value (exactly its field's type; an int from 0 below 2**31, a float finite)
        # passes with no more ado; any other is judged by _check, which refuses it or accepts it (an
        # int subclass, a negative action or type, a magic number of 2**31 or more).
        given = type(value)
        if given is float:
            unusual = kind is not float or not math.isfinite(value)
        elif given is int:
            unusual = kind is not int or not 0 <= value <= _FAST_INT_MAX
        else:
            unusual = given is not kind
        if unusual:
            _check(key, value)
    # Every field, in TradeRequest's order (the absent ones at their defaults): no length check needed.
    parsed: TradeRequest = _record(TradeRequest, {**_ABSENT, **request}.values())
    return parsed
