"""The simulated terminal's machinery behind its MetaTrader5-style functions.

It owns the clock, the symbols' feeds, the account (ledger, state file) and the trade server (Desk),
and brings the account up to "now" before every call (a stepped replay: at every move of its clock):
SL/TP levels reached by the ticks since the last call are executed at those ticks, as a trade server
would have done meanwhile.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import numpy as np

from mt5console.core.broker.sim.bookkeeping import Hit, deposit, stop_closures
from mt5console.core.broker.sim.csvbars import bars_from_rates, load_bars
from mt5console.core.broker.sim.feed import Feed, Quote
from mt5console.core.broker.sim.records import TradeDeal
from mt5console.core.broker.sim.replay import ReplayFeed
from mt5console.core.broker.sim.setup_notes import feed_identity, replay_range_notices
from mt5console.core.broker.sim.state import Change, Ledger, OpenPosition, StateStore
from mt5console.core.broker.sim.state_lock import StateFileLock
from mt5console.core.broker.sim.stops import bar_hits, first_bar_hit, replay_hits, tick_hits
from mt5console.core.broker.sim.symbols import SYMBOLS, symbols_named_in
from mt5console.core.broker.sim.trading import Desk
from mt5console.core.broker.sim.walk import WalkFeed

DEFAULT_LOGIN: Final = 5_012_345
Clock = Callable[[], datetime]
# Replayed bars: a CSV file, or rates in the MetaTrader5 dtype already in memory.
ReplayData = str | Path | np.ndarray


def system_clock() -> datetime:
    return datetime.now(UTC)


def _symbol_from_file(path: Path) -> str:
    found = symbols_named_in(path.name)
    if len(found) != 1:
        raise ValueError(
            f"cannot tell which symbol {path.name} holds; pass symbol= (one of {', '.join(SYMBOLS)}) "
            "or name the file after it, e.g. EURUSD_H1.csv"
        )
    return found[0]


class SimEngine:
    """Clock, feeds, account and trade server of one simulated terminal."""

    def __init__(
        self,
        *,
        seed: int,
        data: ReplayData | None,
        symbol: str | None,
        timeframe: str | int | None,
        replay: Literal["realtime", "stepped"],
        spread: int | None,
        clock: Clock | None,
        state_path: str | Path | None,
        balance: float,
        login: int,
        leverage: int,
        server_offset: int = 0,
        data_offset: int = 0,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, not {seed!r}")
        if not (isinstance(balance, int | float) and balance > 0):
            raise ValueError(f"balance must be a positive number, not {balance!r}")
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise ValueError(f"leverage must be a positive int, not {leverage!r}")
        if replay not in ("realtime", "stepped"):
            raise ValueError(f"replay must be 'realtime' or 'stepped', not {replay!r}")
        self.seed = seed
        self.leverage = leverage
        # The trade server's clock, seconds ahead of UTC: every time the terminal hands out or reads
        # is on it, as a real server's are (bars then bucket on the server's midnight, too).
        self.server_offset = server_offset
        self.feeds: dict[str, Feed] = {name: WalkFeed(spec, seed) for name, spec in SYMBOLS.items()}
        self.replay: ReplayFeed | None = None
        self.stepped = replay == "stepped"
        if data is not None:
            # The bars' own clock (data_offset ahead of UTC) moved onto the server's.
            self.replay = self._load_replay(data, symbol, timeframe, spread, server_offset - data_offset)
            self.feeds[self.replay.spec.name] = self.replay
        elif self.stepped or symbol is not None or timeframe is not None:
            raise ValueError(
                "symbol=, timeframe= and replay='stepped' describe replayed bars: pass data= too"
            )
        if self.stepped and state_path is not None:
            raise ValueError(
                "a stepped replay runs on its own clock and keeps no state file: drop state_path="
            )
        self._clock = clock or system_clock
        self._last_ms = 0
        self.bar_index = -1  # stepped replay: the current bar (-1 before the first)
        self.bar_open = False  # stepped replay: between open_next_bar() and finish_bar()
        self._step_ms = self.replay.earliest() * 1000 - 1000 if self.stepped and self.replay else 0
        self._step_tick = -1  # stepped replay: the replay's tick the clock stands on (-1: none yet)
        self.store = StateStore(state_path) if state_path is not None else None
        self.state_dir = self.store.path.parent if self.store else None
        self._state_lock = StateFileLock(self.store.path) if self.store else None
        # What feeds the prices, as the state file keeps it (see notices); only a state file needs it
        # (a replay's terminal, made per backtest, skips hashing its bars).
        self.feed_identity = feed_identity(seed, self.replay, data, server_offset) if self.store else ""
        self.ledger = self._open_ledger(balance, login)
        self.desk = Desk(self.ledger, self, leverage, self.commit)
        # What a user should hear about this terminal's setup (SimTerminal.setup_notices).
        ranges = () if self.stepped else replay_range_notices(self.replay, self.now_ms(), server_offset)
        self.notices: tuple[str, ...] = (*self._feed_change_notice(), *ranges)

    @staticmethod
    def _load_replay(
        data: ReplayData, symbol: str | None, timeframe: str | int | None, spread: int | None, offset: int
    ) -> ReplayFeed:
        if symbol is not None:
            name = symbol
        elif isinstance(data, np.ndarray):
            raise ValueError(f"pass symbol= with replayed rates (one of {', '.join(SYMBOLS)})")
        else:
            name = _symbol_from_file(Path(data))
        spec = SYMBOLS.get(name)
        if spec is None:
            raise ValueError(f"unknown symbol {name!r} for the replayed bars; known: {', '.join(SYMBOLS)}")
        if spread is not None and (isinstance(spread, bool) or not isinstance(spread, int) or spread < 0):
            raise ValueError(f"spread must be a whole number of points >= 0, not {spread!r}")
        default_spread = spec.spread if spread is None else spread
        if isinstance(data, np.ndarray):
            bars = bars_from_rates(data, timeframe=timeframe, default_spread=default_spread)
        else:
            bars = load_bars(Path(data), timeframe=timeframe, default_spread=default_spread)
        if offset:  # from the bars' clock (UTC unless told) to the server's
            bars = dataclasses.replace(
                bars, bars=dataclasses.replace(bars.bars, time=bars.bars.time + offset)
            )
        return ReplayFeed(spec, bars)

    def _open_ledger(self, balance: float, login: int) -> Ledger:
        """The saved account, or a new one (written to the state file by take_state(), under its lock)."""
        saved = self.store.load() if self.store else None
        if saved is not None:
            return saved
        now = self.now_ms()
        ledger = Ledger(login=login, balance=round(float(balance), 2), created_msc=now, processed_msc=now)
        ledger.deals.append(deposit(ledger.next_deal, now, ledger.balance))
        ledger.next_deal += 1
        return ledger

    def _feed_change_notice(self) -> tuple[str, ...]:
        saved = self.store.saved_feed() if self.store else None
        if self.store is None or saved is None or saved == self.feed_identity:
            return ()
        held = len(self.ledger.positions)
        return (
            f"the simulator's state file {self.store.path} was last used with {saved}; it is now used with "
            f"{self.feed_identity}: prices differ from what they were"
            + (f", and its {held} open position(s) are valued at the new prices at once" if held else "")
            + " (the same --sim-seed and --sim-data as before give the same prices back)",
        )

    def take_state(self) -> str | None:
        """initialize(): hold the state file (state_lock.py) and read its account as it is now (a
        terminal that had it meanwhile may have traded); None, or why the file cannot be had."""
        store, lock = self.store, self._state_lock
        if store is None or lock is None or lock.held:
            return None
        refused = lock.acquire()
        if refused is not None:
            return refused
        try:
            saved = store.load()
            if saved is None:
                store.create(self.ledger)
            else:
                # Records cached for the old ledger's revisions must not be served for this one.
                saved.revision = self.ledger.revision + 1
                self.ledger = self.desk.ledger = saved
            store.save_feed(self.feed_identity)
        except (sqlite3.Error, ValueError) as error:
            lock.release()
            return f"the simulator's state file {store.path} cannot be read: {error}"
        return None

    def release_state(self) -> None:
        """shutdown(): another terminal may take the state file now."""
        if self._state_lock is not None:
            self._state_lock.release()

    # ---------------------------------------------------------------- the market (trading.Market)

    def now_ms(self) -> int:
        if self.stepped:
            return self._step_ms
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError(
                "the simulator's clock returned a naive datetime; it must be timezone aware (UTC)"
            )
        # Time never runs backwards for the terminal, even if an injected clock does.
        self._last_ms = max(self._last_ms, int(now.timestamp() * 1000) + self.server_offset * 1000)
        return self._last_ms

    def quote(self, symbol: str) -> Quote | None:
        replay = self.replay
        if replay is not None and symbol == replay.spec.name:
            # replay_tick(), inlined: every valuation of a position asks for its quote.
            tick = self._step_tick if self.stepped else replay.last_tick(self.now_ms())
            return replay.tick_quote(tick) if tick >= 0 else None
        return self.feeds[symbol].quote(self.now_ms())

    def replay_tick(self) -> int:
        """The replay's last tick at or before now (-1 before its first; see ReplayFeed.last_tick)."""
        if self.stepped:
            return self._step_tick  # a stepped clock stands on a tick it knows: no search
        if self.replay is None:
            raise RuntimeError("replay_tick() needs replayed bars: SimTerminal(data=...)")
        return self.replay.last_tick(self.now_ms())

    def is_open(self, symbol: str) -> bool:
        if self.stepped and self.replay is not None and symbol == self.replay.spec.name:
            # A stepped clock stands on a tick of a bar (its open or its close): inside the bar.
            return self._step_tick >= 0
        return self.feeds[symbol].is_open(self.now_ms())

    def price_of(self, symbol: str) -> float | None:
        quote = self.quote(symbol)
        return quote.bid if quote else None

    # ---------------------------------------------------------------- the account

    def commit(self, change: Change) -> None:
        """Persist (when there is a state file), then apply: nothing is applied that was not saved."""
        if self.store is not None:
            self.store.save(self.ledger, change)
        self.ledger.apply(change)

    def advance(self, extra: list[Hit] | None = None) -> None:
        """Execute the SL/TP levels that ticks up to now have reached since the last call.

        ``extra`` are hits found otherwise (a replayed bar's), executed with them in time order.
        Every module call on a real-time clock starts here, and every move of a stepped one (its
        module calls need not: its clock stands still between moves). While the clock stands still,
        or nothing is open, this is O(1).
        """
        now, ledger = self.now_ms(), self.ledger
        since = ledger.processed_msc
        if not extra and (now <= since or not ledger.positions):
            if now > since:
                ledger.processed_msc = now  # in memory only: nothing to replay on a restart
            return
        hits = list(extra or [])
        held: dict[str, list[OpenPosition]] = {}
        for position in ledger.positions.values():
            held.setdefault(position.symbol, []).append(position)
        replay = self.replay
        for name, positions in held.items():
            feed = self.feeds[name]
            if replay is not None and feed is replay:
                if not self.stepped:  # replayed bars in real time: the bar rule, as when stepped
                    hits.extend(replay_hits(positions, replay, since, now))
                # stepped: judged bar by bar in finish_bar() / advance_to()
            else:
                hits.extend(tick_hits(positions, feed, since, now))
        change = stop_closures(ledger, hits, self.price_of)
        if change is not None:
            self.commit(change)
        ledger.processed_msc = max(ledger.processed_msc, now)

    # ---------------------------------------------------------------- stepped replay

    def _replay_feed(self) -> ReplayFeed:
        if not self.stepped or self.replay is None:
            raise RuntimeError("stepping needs SimTerminal(data=..., replay='stepped')")
        return self.replay

    def open_next_bar(self) -> bool:
        feed = self._replay_feed()
        if self.bar_open:
            raise RuntimeError("finish_bar() the current bar before opening the next one")
        if self.bar_index + 1 >= len(feed):
            return False
        self._stand(feed, self.bar_index + 1, at_open=True)
        self.advance()
        return True

    def finish_bar(self) -> tuple[TradeDeal, ...]:
        feed = self._replay_feed()
        if not self.bar_open:
            raise RuntimeError("open_next_bar() before finish_bar()")
        index = self.bar_index
        held = [p for p in self.ledger.positions.values() if p.symbol == feed.spec.name]
        hits = bar_hits(held, feed.prices, index)
        self._stand(feed, index, at_open=False)
        deals_before = len(self.ledger.deals)
        self.advance(hits)
        closed = {hit[0] for hit in hits}
        return tuple(d for d in self.ledger.deals[deals_before:] if d.position_id in closed)

    def advance_to(self, index: int) -> tuple[TradeDeal, ...]:
        """Finish the current bar and every bar before ``index``, then open bar ``index`` (or, with
        ``index`` == the number of bars, stop at the last bar's close); the deals made on the way
        (stops and targets), in order.

        Exactly what open_next_bar()/finish_bar() one bar at a time would do, found per position with
        one numpy search over the bars instead of a Python step per bar: positions only close between
        the engine's turns (nothing opens), so each one's first hit is independent of the others'.
        The hits are executed bar by bar in time order, at each bar's close as finish_bar() does.
        """
        feed = self._replay_feed()
        if type(index) is not int and (isinstance(index, bool) or not isinstance(index, int)):
            raise ValueError(f"advance_to() takes a bar index, not {index!r}")
        current, length = self.bar_index, len(feed)
        if not current < index <= length:
            raise ValueError(
                f"advance_to({index}): the replay is at bar {current} of {length}; "
                f"give a later bar, at most {length} (the end)"
            )
        ledger = self.ledger
        deals_before = len(ledger.deals)
        symbol = feed.spec.name
        positions = tuple(ledger.positions.values())
        for position in positions:
            if position.symbol != symbol:
                self._step_to(index)  # other symbols' stops run on their ticks: step exactly
                return tuple(ledger.deals[deals_before:])
        first = current if self.bar_open else current + 1  # the first bar still to be judged
        by_bar: dict[int, list[Hit]] = {}
        prices = feed.prices
        for position in positions:
            found = first_bar_hit(position, prices, first, index)
            if found is not None:
                by_bar.setdefault(found[0], []).append(found[1])
        # What advance() would do at each stand, all positions being the stepped symbol's (whose
        # stops it leaves to the bar rule): execute the bar's hits, then mark the time processed.
        for bar in sorted(by_bar) if len(by_bar) > 1 else by_bar:
            self._stand(feed, bar, at_open=False)
            change = stop_closures(ledger, by_bar[bar], self.price_of)
            if change is not None:
                self.commit(change)
            ledger.processed_msc = max(ledger.processed_msc, self._step_ms)
        if index < length:
            self._stand(feed, index, at_open=True)
        else:
            self._stand(feed, length - 1, at_open=False)
        ledger.processed_msc = max(ledger.processed_msc, self._step_ms)
        return tuple(ledger.deals[deals_before:])

    def _stand(self, feed: ReplayFeed, bar: int, *, at_open: bool) -> None:
        """Stepped replay: the clock moves onto bar ``bar``'s open tick (at_open) or its close tick."""
        self.bar_index, self.bar_open = bar, at_open
        self._step_tick, self._step_ms = feed.bar_tick(bar, at_open)

    def _step_to(self, index: int) -> None:
        if self.bar_open:
            self.finish_bar()
        while self.bar_index + 1 < index:
            self.open_next_bar()
            self.finish_bar()
        if index < len(self._replay_feed()):
            self.open_next_bar()
