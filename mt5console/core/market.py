"""Market data: one poller for all ticks, account and positions, one bar feed per (symbol, timeframe).

Every strategy on EURUSD M15 shares one feed: the terminal is asked once per poll whatever the number
of strategies. A feed notices a bar closing when the forming bar's open time changes, then fetches the
closed history once and hands the same array to every subscriber.

The poll loop is a thin timer around ``poll_once``; the replay drives ``poll_once`` itself after each
step of the simulated clock, so live and replay share this code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from mt5console.core.broker.errors import BrokerError, TerminalUnavailable
from mt5console.core.broker.models import AccountState, Position, Tick
from mt5console.core.broker.mt5 import Broker
from mt5console.core.events import (
    AccountUpdated,
    BarClosed,
    EventBus,
    PositionsUpdated,
    TickUpdated,
)

log = logging.getLogger(__name__)

# Awaited with the closed bars (oldest first, the just-closed bar last) of the feed's symbol/timeframe.
# Subscribers are awaited one after the other inside the poll, so that a replay step is complete
# (every strategy has acted on the bar) when poll_once returns.
BarSubscriber = Callable[[str, str, np.ndarray], Awaitable[None]]
# Awaited with the terminal's open positions whenever they changed since the last poll.
PositionsListener = Callable[[tuple[Position, ...]], Awaitable[None]]
# Awaited with a symbol's tick when it changed since the last poll, and the open positions read in the
# same poll: live at every poll, in the replay at every step of its clock (a bar's open).
TickListener = Callable[[Tick, tuple[Position, ...]], Awaitable[None]]

MIN_HISTORY = 300
RESYNC_EVERY_POLLS = 5  # about 5 s live (see poll_once)


@dataclass(slots=True)
class BarFeed:
    symbol: str
    timeframe: str
    history: int
    subscribers: list[BarSubscriber] = field(default_factory=list)
    forming_time: int | None = None  # open time (epoch s) of the bar being formed at the last poll
    closed: np.ndarray | None = None  # the latest closed bars, shared by every subscriber
    loaded: int = 0  # how many bars were asked for at the last fetch
    offset: int | None = None  # the server clock's offset the bar times were converted with
    held_said: bool = False  # a closed bar was skipped while the server's clock was unconfirmed
    failure: str | None = None  # why the last poll of this feed failed (said once), None while it works

    @property
    def key(self) -> tuple[str, str]:
        return (self.symbol, self.timeframe)


class MarketData:
    def __init__(
        self,
        broker: Broker,
        events: EventBus,
        symbols: tuple[str, ...],
        *,
        poll_interval: float = 1.0,
        publish_ticks: bool = True,
        light: bool = False,
    ) -> None:
        self._broker = broker
        self._events = events
        self.symbols = tuple(dict.fromkeys(symbols))
        self.poll_interval = poll_interval
        self.publish_ticks = publish_ticks
        # light: the replay's mode: no ticks or account per poll (nobody watches them), only what the
        # strategies need (positions and bars).
        self.light = light
        self._positions_listeners: list[PositionsListener] = []
        self._tick_listeners: dict[str, list[TickListener]] = {}
        self.ticks: dict[str, Tick] = {}
        self.account: AccountState | None = None
        self.positions: tuple[Position, ...] = ()
        self._feeds: dict[tuple[str, str], BarFeed] = {}
        self.polls = 0
        self.last_poll: datetime | None = None
        self._poll_failure: str | None = None  # why the last poll failed (said once), None while it works

    # ----------------------------------------------------------------- subscriptions

    def subscribe_bars(
        self, symbol: str, timeframe: str, subscriber: BarSubscriber, history: int = MIN_HISTORY
    ) -> Callable[[], None]:
        """Receive the closed bars of (symbol, timeframe) each time a bar closes."""
        key = (symbol, timeframe)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = BarFeed(symbol, timeframe, max(history, MIN_HISTORY))
        else:
            feed.history = max(feed.history, history)
        feed.subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in feed.subscribers:
                feed.subscribers.remove(subscriber)
            if not feed.subscribers:
                self._feeds.pop(key, None)

        return unsubscribe

    def subscribe_ticks(self, symbol: str, listener: TickListener) -> Callable[[], None]:
        """Receive ``symbol``'s tick at each poll that read a new one (live only, see TickListener)."""
        listeners = self._tick_listeners.setdefault(symbol, [])
        listeners.append(listener)

        def unsubscribe() -> None:
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._tick_listeners.pop(symbol, None)

        return unsubscribe

    def on_positions(self, listener: PositionsListener) -> None:
        self._positions_listeners.append(listener)

    def feeds(self) -> list[tuple[str, str]]:
        return list(self._feeds)

    def closed_bars(self, symbol: str, timeframe: str) -> np.ndarray | None:
        feed = self._feeds.get((symbol, timeframe))
        return None if feed is None else feed.closed

    # ----------------------------------------------------------------- polling

    def _held(self, feed: BarFeed, closed: np.ndarray) -> None:
        """A bar closed while the server's clock is unconfirmed: its time may be hours off, which
        sessions and the daily loss limit would act on. Strategies skip it, and the log says so."""
        if feed.held_said:
            return  # said at the first: a wrong computer clock would repeat it every bar
        feed.held_said = True
        bar_time = datetime.fromtimestamp(int(closed["time"][-1]), UTC)
        self._events.warning(
            "market",
            f"{feed.symbol} {feed.timeframe}: the bar of {bar_time:%H:%M} closed before a live tick showed "
            f"the trade server's clock ({self._broker.server_clock.describe()}): strategies skip it, and "
            "every bar until a live tick does",
        )

    def _feed_failed(self, feed: BarFeed, reason: str) -> None:
        """A feed's bars cannot be had: said once (again only when the reason changes), naming the
        strategies' feed, not once a poll for as long as it lasts."""
        if reason == feed.failure:
            return
        feed.failure = reason
        self._events.warning(
            "market",
            f"{feed.symbol} {feed.timeframe}: the terminal serves no bars ({reason}); strategies on "
            f"{feed.symbol} {feed.timeframe} get no closed bars while it lasts "
            "(said once; retried every poll)",
        )

    async def run(self) -> None:
        """Poll until cancelled; waits quietly while the terminal is reconnecting."""
        while True:
            if not self._broker.connected:
                await self._broker.wait_connected()
            try:
                await self.poll_once()
            except TerminalUnavailable:
                continue  # the adapter has logged it and is reconnecting
            except BrokerError as error:
                # Said once, not once a poll: again only when the reason changes.
                if str(error) != self._poll_failure:
                    self._events.warning(
                        "market", f"market data poll failed: {error} (said once while it lasts)"
                    )
                self._poll_failure = str(error)
            else:
                if self._poll_failure is not None:
                    self._events.info(
                        "market", f"market data poll recovered (it failed: {self._poll_failure})"
                    )
                    self._poll_failure = None
            await asyncio.sleep(self.poll_interval)

    async def poll_once(self) -> None:
        moved: list[Tick] = []  # the ticks that changed, for their listeners once positions are read
        if not self.light or self._tick_listeners:
            # A light (replay) poll reads only the ticks someone listens to: at each step of its clock,
            # as the live loop at each poll, so both take a level reached at a bar's open alike.
            wanted = () if self.light else (*self.symbols, *(s for s, _ in self._feeds))
            symbols = tuple(dict.fromkeys((*wanted, *self._tick_listeners)))
            ticks = await self._broker.ticks(symbols)
            for name, tick in ticks.items():
                previous = self.ticks.get(name)
                self.ticks[name] = tick
                if previous is None or previous != tick:
                    moved.append(tick)
                    if self.publish_ticks:
                        self._events.publish(TickUpdated(tick=tick))
        if not self.light:
            account = await self._broker.account()
            if account != self.account:
                self.account = account
                self._events.publish(AccountUpdated(account=account))
        positions = await self._broker.positions()
        changed = positions != self.positions
        if changed:
            self.positions = positions
            self._events.publish(PositionsUpdated(positions=positions))
        # Live, the listeners also hear an unchanged list now and then: a position opened and closed
        # between two polls (a platform job's, stopped out at once) leaves the list as it was, and its
        # close would otherwise wait for some later change to be booked and reported.
        if changed or (not self.light and self.polls % RESYNC_EVERY_POLLS == 0):
            for listener in list(self._positions_listeners):
                await listener(positions)
        for tick in moved:
            await self._tell_tick(tick, positions)
        for feed in list(self._feeds.values()):
            try:
                await self._poll_feed(feed)
            except TerminalUnavailable:
                raise
            except BrokerError as error:
                if self.light:
                    raise  # the replay stops on it: its one feed is all there is
                self._feed_failed(feed, str(error))  # one feed the terminal cannot serve: the others go on
                continue
            if feed.failure is not None:
                self._events.info(
                    "market",
                    f"{feed.symbol} {feed.timeframe}: bars are served again (they failed: {feed.failure})",
                )
                feed.failure = None
        self.polls += 1
        self.last_poll = datetime.now(UTC)

    async def _tell_tick(self, tick: Tick, positions: tuple[Position, ...]) -> None:
        for listener in list(self._tick_listeners.get(tick.symbol, ())):
            try:
                await listener(tick, positions)
            except TerminalUnavailable:
                raise
            except Exception:
                log.exception("tick listener failed on %s", tick.symbol)
                self._events.error("market", f"a strategy failed to take the tick of {tick.symbol}")

    async def _poll_feed(self, feed: BarFeed) -> None:
        clock = self._broker.server_clock
        if clock.offset != feed.offset:
            # The server's clock was learned or changed (broker/server_clock.py): every bar time moved
            # with it. A fresh look, so that the moved times are never taken for a new bar.
            feed.forming_time, feed.offset = None, clock.offset
        latest = await self._broker.rates(feed.symbol, feed.timeframe, 1, start_pos=0)
        if len(latest) == 0:
            return
        forming = int(latest["time"][-1])
        same_bar = forming == feed.forming_time
        if same_bar and feed.loaded >= feed.history:
            return
        first_look = feed.forming_time is None
        feed.forming_time = forming
        closed = await self._broker.rates(feed.symbol, feed.timeframe, feed.history, start_pos=1)
        feed.closed, feed.loaded = closed, feed.history
        if first_look or same_bar or len(closed) == 0:
            return  # history (re)loaded within the same bar: nothing closed, no signal
        if not clock.known:
            self._held(feed, closed)
            return
        bar_time = datetime.fromtimestamp(int(closed["time"][-1]), UTC)
        self._events.publish(BarClosed(symbol=feed.symbol, timeframe=feed.timeframe, bar_time=bar_time))
        for subscriber in list(feed.subscribers):
            try:
                await subscriber(feed.symbol, feed.timeframe, closed)
            except TerminalUnavailable:
                raise
            except Exception:
                log.exception("bar subscriber failed on %s %s", feed.symbol, feed.timeframe)
                self._events.error(
                    "market", f"a strategy failed to take the closed {feed.timeframe} bar of {feed.symbol}"
                )
