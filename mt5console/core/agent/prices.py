"""Prices for the platform: ONE ``POST /agents/{id}/prices`` per interval for all tracked symbols.

The ticks are the market-data poller's (``MarketData.ticks``): the terminal is not asked again.
Symbols without a tick yet are left out; while the terminal is lost nothing is sent, since the last
ticks would be stale prices presented as current.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from mt5console.core.agent.platform import PlatformClient
from mt5console.core.agent.reporting import path_part
from mt5console.core.broker.models import Tick
from mt5console.core.broker.mt5 import Broker
from mt5console.core.market import MarketData


def prices_body(symbols: Iterable[str], ticks: Mapping[str, Tick]) -> dict[str, Any]:
    """``{"EURUSD": {"bid", "ask", "time"}, ...}`` for the symbols that have a tick, in their order."""
    body: dict[str, Any] = {}
    for symbol in symbols:
        tick = ticks.get(symbol)
        if tick is None:
            continue
        body[symbol] = {"bid": tick.bid, "ask": tick.ask, "time": tick.time.astimezone(UTC).isoformat()}
    return body


class PriceFeed:
    def __init__(self, client: PlatformClient, agent_id: str, market: MarketData, broker: Broker) -> None:
        self._client = client
        self.path = f"/agents/{path_part(agent_id)}/prices"
        self._market = market
        self._broker = broker
        self.sent = 0

    async def send_once(self) -> None:
        if not self._broker.connected:
            return
        body = prices_body(self._market.symbols, self._market.ticks)
        if not body:
            return  # no tick yet for any symbol: an empty batch tells the platform nothing
        await self._client.request("POST", self.path, body)
        self.sent += 1
