"""Errors raised by the broker adapter, each with a message a trader can act on."""

from __future__ import annotations


class BrokerError(Exception):
    """A request the terminal refused or could not carry out."""

    def __init__(self, message: str, *, retcode: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.retcode = retcode  # TRADE_RETCODE_* of order_send/order_check, when there was one
        self.code = code  # last_error() code (RES_*), when there was one


class TerminalUnavailable(BrokerError):
    """The terminal is not connected (not started, shut down, or lost); the adapter is reconnecting."""


class OrderRejected(BrokerError):
    """order_send returned a retcode other than DONE / PLACED / DONE_PARTIAL."""
