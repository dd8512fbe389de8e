"""Trade return codes of the MetaTrader5 module, with words a trader can act on.

Values are the module's own (shared/reference/mt5_api.txt); the adapter uses this table rather than
reading attributes off the module, because on the mt5linux bridge every attribute read is a remote call
that would have to go through the terminal thread.
"""

from __future__ import annotations

from typing import Final

RETCODE_DONE: Final = 10009
RETCODE_DONE_PARTIAL: Final = 10010
RETCODE_PLACED: Final = 10008
SUCCESS_RETCODES: Final = frozenset({RETCODE_DONE, RETCODE_DONE_PARTIAL, RETCODE_PLACED})

# (name, what it means for the trader)
RETCODES: Final[dict[int, tuple[str, str]]] = {
    10004: ("REQUOTE", "the broker requoted the price; try again"),
    10006: ("REJECT", "the broker rejected the request"),
    10007: ("CANCEL", "the request was cancelled by the trader"),
    10008: ("PLACED", "order placed"),
    10009: ("DONE", "request executed"),
    10010: ("DONE_PARTIAL", "only part of the request was executed"),
    10011: ("ERROR", "the terminal reported an error processing the request"),
    10012: ("TIMEOUT", "the request timed out"),
    10013: ("INVALID", "invalid request (unknown symbol or a bad field)"),
    10014: ("INVALID_VOLUME", "invalid volume (check the symbol's minimum, maximum and step)"),
    10015: ("INVALID_PRICE", "invalid price"),
    10016: ("INVALID_STOPS", "invalid stops (too close to the price or on the wrong side)"),
    10017: ("TRADE_DISABLED", "trading is disabled for this symbol or account"),
    10018: ("MARKET_CLOSED", "the market is closed"),
    10019: ("NO_MONEY", "not enough free margin"),
    10020: ("PRICE_CHANGED", "the price changed; try again"),
    10021: ("PRICE_OFF", "no quotes to process the request"),
    10022: ("INVALID_EXPIRATION", "invalid order expiration"),
    10023: ("ORDER_CHANGED", "the order state changed"),
    10024: ("TOO_MANY_REQUESTS", "too many requests"),
    10025: ("NO_CHANGES", "the request changes nothing"),
    10026: ("SERVER_DISABLES_AT", "autotrading is disabled by the server"),
    10027: ("CLIENT_DISABLES_AT", "autotrading is disabled in the terminal (enable Algo Trading)"),
    10028: ("LOCKED", "the request is locked for processing"),
    10029: ("FROZEN", "the order or position is frozen (too close to the market)"),
    10030: ("INVALID_FILL", "the filling mode is not supported by the symbol"),
    10031: ("CONNECTION", "no connection with the trade server"),
    10032: ("ONLY_REAL", "allowed for live accounts only"),
    10033: ("LIMIT_ORDERS", "the limit on pending orders is reached"),
    10034: ("LIMIT_VOLUME", "the volume limit for this symbol is reached"),
    10035: ("INVALID_ORDER", "incorrect or prohibited order type"),
    10036: ("POSITION_CLOSED", "the position is already closed"),
    10038: ("INVALID_CLOSE_VOLUME", "the close volume exceeds the position's volume"),
    10039: ("CLOSE_ORDER_EXIST", "a close order for this position already exists"),
    10040: ("LIMIT_POSITIONS", "the broker's limit on open positions is reached"),
    10041: ("REJECT_CANCEL", "the pending order activation was rejected"),
    10042: ("LONG_ONLY", "only long positions are allowed on this symbol"),
    10043: ("SHORT_ONLY", "only short positions are allowed on this symbol"),
    10044: ("CLOSE_ONLY", "only closing positions is allowed on this symbol"),
    10045: ("FIFO_CLOSE", "positions must be closed in FIFO order"),
}


def describe_retcode(retcode: int, comment: str = "") -> str:
    name, meaning = RETCODES.get(retcode, ("UNKNOWN", "unknown return code"))
    text = f"{name} ({retcode}): {meaning}"
    if comment and comment.lower() not in meaning.lower():
        text += f" [terminal says: {comment}]"
    return text
