"""Prices for the platform: ONE ``POST /agents/{id}/prices`` per interval for all tracked symbols.

The ticks are the market-data poller's (``MarketData.ticks``): the terminal is not asked again.
Symbols without a tick yet are left out; while the terminal is lost nothing is sent, since the last
ticks would be stale prices presented as current. Nor is anything sent while the trade server's
clock is a bare guess (ServerClock.guessed: a first start, before a live tick), nor until two polls after
its offset changed (learned, or a daylight-saving switch): the ticks read before then were converted
with the other offset, and their times would reach the platform hours off.
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
        self._clock_state: tuple[bool, int] | None = None  # (guessed, offset) at the last look
        self._clock_settles_at = 0  # the market poll count from which the ticks are all converted alike

    def _clock_settled(self) -> bool:
        """Whether every tick the market data holds was converted with the offset the clock has now,
        and that offset is not a bare guess. A poll reads all symbols in one go, and the offset may
        change at any symbol of it: the symbols before that one keep the old offset until the next
        poll replaces them. So after a change, the poll under way and one whole poll more must pass."""
        clock = self._broker.server_clock
        state = (clock.guessed, clock.offset)
        if self._clock_state is None:
            self._clock_state = state
        elif state != self._clock_state:
            self._clock_state = state
            self._clock_settles_at = self._market.polls + 2
        return not state[0] and self._market.polls >= self._clock_settles_at

    async def send_once(self) -> None:
        if not self._broker.connected or not self._clock_settled():
            return
        body = prices_body(self._market.symbols, self._market.ticks)
        if not body:
            return  # no tick yet for any symbol: an empty batch tells the platform nothing
        await self._client.request("POST", self.path, body)
        self.sent += 1
