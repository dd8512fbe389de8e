"""The heartbeat: ``POST /agents/{id}/heartbeat`` with the console's metrics (INTERFACE.md).

Sent as soon as the terminal is connected, then every ``heartbeat_interval`` seconds, and at once
whenever the terminal is lost or comes back, so the platform learns of it without waiting 30 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mt5console.core.agent.agent_state import AgentStatus
from mt5console.core.agent.platform import PlatformClient
from mt5console.core.agent.reporting import path_part
from mt5console.core.events import Event, TerminalConnected, TerminalLost, utcnow


@dataclass(frozen=True, slots=True)
class Metrics:
    mt5_connected: bool
    symbols_tracked: int
    jobs_processed: int
    strategies_running: int

    def body(self) -> dict[str, Any]:
        return {
            "status": "online",
            "metrics": {
                "mt5_connected": self.mt5_connected,
                "symbols_tracked": self.symbols_tracked,
                "jobs_processed": self.jobs_processed,
                "strategies_running": self.strategies_running,
            },
        }


class Heartbeat:
    def __init__(
        self,
        client: PlatformClient,
        agent_id: str,
        metrics: Callable[[], Metrics],
        status: AgentStatus,
    ) -> None:
        self._client = client
        self.path = f"/agents/{path_part(agent_id)}/heartbeat"
        self._metrics = metrics
        self._status = status
        self.wake = asyncio.Event()  # set: send one now
        self.sent = 0

    def on_event(self, event: Event) -> None:
        """An event-bus subscriber: the terminal's state changed, tell the platform now."""
        if isinstance(event, TerminalConnected | TerminalLost):
            self._status.terminal(isinstance(event, TerminalConnected))
            self.wake.set()

    async def send_once(self) -> None:
        metrics = self._metrics()
        self._status.terminal_connected = metrics.mt5_connected
        await self._client.request("POST", self.path, metrics.body())
        self.sent += 1
        self._status.heartbeat_taken(utcnow())
