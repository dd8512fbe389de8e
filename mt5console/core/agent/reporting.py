"""What the platform must be told, queued in the durable outbox: trade events and command acks.

Each is written to SQLite (committed, on disk) the moment it happens, before anything else is done
with it; the delivery loop (outbox.py) sends it when the platform can take it. Paths and bodies
follow INTERFACE.md ("Platform HTTP API" and "Commands").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import quote

from mt5console.core.events import Event, EventBus, TradeUpdate
from mt5console.core.store import Store

SOURCE = "platform"
TRADE_EVENTS = ("opened", "partial", "modified", "closed")


def trade_body(update: TradeUpdate) -> dict[str, Any]:
    """The body of ``POST /agents/{id}/trades`` for one trade event."""
    if update.event not in TRADE_EVENTS:
        raise ValueError(f"event: {update.event!r} is not one of {', '.join(TRADE_EVENTS)}")
    return {
        "event": update.event,
        "strategyId": update.strategy_id,
        "ticket": update.ticket,
        "symbol": update.symbol,
        "side": update.side,
        "volume": update.volume,
        "price": update.price,
        "sl": update.sl,
        "tp": update.tp,
        "profit": round(update.profit, 2),
        "time": update.happened_at.astimezone(UTC).isoformat(),
    }


# The agent id's place in the path of what is queued before the console is paired: filled in when
# it is delivered (OutboxDelivery), so that a trade made while pairing still waits is not lost.
UNPAIRED_AGENT = "{agent_id}"


def path_part(value: str) -> str:
    """An id as one URL path segment ("/" and the like escaped, so it cannot reach another path)."""
    return quote(value, safe="")


class PlatformReporter:
    """Queues trade events (from the TradeTracker's ``TradeUpdate``) and command acks."""

    def __init__(
        self, store: Store, events: EventBus, agent_id: str | None, *, wake: Callable[[], None] | None = None
    ) -> None:
        """``agent_id`` None: not paired yet; paths hold UNPAIRED_AGENT until delivery."""
        if agent_id is not None and not agent_id.strip():
            raise ValueError("agent_id: required to report to the platform")
        self._store = store
        self._events = events
        self._agent = UNPAIRED_AGENT if agent_id is None else path_part(agent_id)
        self._wake = wake or (lambda: None)

    def attach(self) -> Callable[[], None]:
        """Subscribe to the event bus; returns the unsubscribe function."""
        return self._events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, TradeUpdate):
            self.trade(event)

    def trade(self, update: TradeUpdate) -> int | None:
        """Queue one trade event; returns its outbox id (None when it could not be written)."""
        return self._put(
            "trade_event",
            f"/agents/{self._agent}/trades",
            trade_body(update),
            f"{update.event} of #{update.ticket}",
        )

    def acknowledge(self, command_id: str, *, ok: bool, error: str = "") -> int | None:
        """Queue the ack of a command: ``ok``, or ``rejected`` with the reason."""
        if not command_id.strip():
            return None  # there is no ack path without an id; the command was logged
        body = {"status": "ok" if ok else "rejected", "error": None if ok else error}
        return self._put(
            "ack",
            f"/agents/{self._agent}/commands/{path_part(command_id)}/ack",
            body,
            f"ack of command {command_id!r}",
        )

    def _put(self, kind: str, path: str, body: dict[str, Any], what: str) -> int | None:
        try:
            entry = self._store.outbox_put(kind, "POST", path, body)
        except Exception as error:  # a store error or a disk error alike: nothing else can keep it
            # Say so loudly, with what was lost, rather than let the event bus swallow it.
            self._events.error(SOURCE, f"could not queue the {what} for the platform: {error}")
            return None
        self._wake()
        return entry
