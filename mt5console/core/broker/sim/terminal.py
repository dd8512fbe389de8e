"""SimTerminal: an object with the MetaTrader5 module's functions, constants and named tuples.

    from mt5console.core.broker.sim import SimTerminal
    mt5 = SimTerminal(seed=1)
    mt5.initialize()
    mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 500)
    mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, ...})

Like the module, functions return None on failure (``*_get`` return an empty tuple when nothing
matches) and ``last_error()`` then gives (RES_* code, text): before ``initialize()``, after
``shutdown()`` and while the terminal is "lost" every call fails with (-10004, 'No IPC connection').

Test hooks (not in the real module):
- ``simulate_disconnect()``: the terminal process "dies": every call fails as above and
  ``initialize()`` returns False with RES_E_INTERNAL_FAIL_INIT until ``simulate_reconnect()``, after
  which ``initialize()`` works again. Positions and prices carry on meanwhile, as on a real server.
- ``shutdown()`` + ``initialize()`` is the ordinary reconnect.
With a state file, ``initialize()`` takes it (an OS lock, held until ``shutdown()``) and fails while
another terminal holds it (state_lock.py).
Stepped replay (``SimTerminal(data=CSV, replay="stepped")``, for the replay engine): see
``open_next_bar``, ``finish_bar`` and ``advance_to``. The market book is a small synthetic one
(info.market_book).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, Final, Literal, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from mt5console.core.broker.server_clock import offset_from_hours
from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim import info, money
from mt5console.core.broker.sim import records as r
from mt5console.core.broker.sim.engine import DEFAULT_LOGIN, Clock, ReplayData, SimEngine
from mt5console.core.broker.sim.feed import Bars, Feed, FeedError, Ticks
from mt5console.core.broker.sim.frames import DAY, Frame, bucket_start, frame_of
from mt5console.core.broker.sim.history import (
    BadArgument,
    PositionIndex,
    epoch_seconds,
    int_argument,
    matching,
    number_argument,
    select_history,
)
from mt5console.core.broker.sim.memo import LastValue
from mt5console.core.broker.sim.requests import BadCall, parse_request
from mt5console.core.broker.sim.symbols import SYMBOLS

P = ParamSpec("P")
R = TypeVar("R")
Array = npt.NDArray[np.void]
MAX_TICKS: Final = 2_000_000  # per copy_ticks_* call
NO_IPC: Final = (c.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
SUCCESS: Final = (c.RES_S_OK, "Success")


class _NotFound(Exception):
    """Something asked for does not exist (an unknown symbol, no ticks yet): RES_E_NOT_FOUND."""


def _api(method: Callable[Concatenate[SimTerminal, P], R]) -> Callable[Concatenate[SimTerminal, P], R | None]:
    """A module function: fails while not connected, brings the account up to now (see
    ``SimTerminal._catches_up``), sets last_error."""

    @functools.wraps(method)
    def call(self: SimTerminal, /, *args: P.args, **kwargs: P.kwargs) -> R | None:
        if not self._initialized or self._lost:
            self._error = NO_IPC
            return None
        try:
            if self._catches_up:
                self._engine.advance()
            result = method(self, *args, **kwargs)
        except (BadArgument, BadCall) as bad:
            self._error = (c.RES_E_INVALID_PARAMS, str(bad))
            return None
        except (_NotFound, FeedError) as missing:
            self._error = (c.RES_E_NOT_FOUND, str(missing))
            return None
        except sqlite3.Error as broken:  # the state file failed while saving an SL/TP execution
            self._error = (c.RES_E_INTERNAL_FAIL, f"Terminal: the state file failed: {broken}")
            return None
        self._error = SUCCESS
        return result

    return call


def _offset_argument(hours: float, name: str) -> int:
    try:
        return offset_from_hours(hours)
    except (TypeError, ValueError) as bad:
        raise ValueError(f"{name}: {bad}") from None


class SimTerminal(c.ModuleConstants):
    """The simulated MetaTrader 5 terminal (see the module docstring)."""

    AccountInfo = r.AccountInfo
    TerminalInfo = r.TerminalInfo
    SymbolInfo = r.SymbolInfo
    Tick = r.Tick
    TradePosition = r.TradePosition
    TradeOrder = r.TradeOrder
    TradeDeal = r.TradeDeal
    TradeRequest = r.TradeRequest
    OrderSendResult = r.OrderSendResult
    OrderCheckResult = r.OrderCheckResult
    BookInfo = r.BookInfo

    def __init__(
        self,
        seed: int = 1,
        *,
        data: ReplayData | None = None,
        symbol: str | None = None,
        timeframe: str | int | None = None,
        replay: Literal["realtime", "stepped"] = "realtime",
        spread: int | None = None,
        clock: Clock | None = None,
        state_path: str | Path | None = None,
        balance: float = 10_000.0,
        login: int = DEFAULT_LOGIN,
        leverage: int = 100,
        server_utc_offset: float = 0.0,
        data_utc_offset: float = 0.0,
    ) -> None:
        """A terminal with a USD hedging demo account (leverage 1:100) and seven symbols.

        - ``seed``: the random walk's seed; the same seed gives the same prices at the same times.
        - ``data``, ``symbol``, ``timeframe``: a CSV of bars (or rates already in memory, in the
          MetaTrader5 rates dtype) to serve as ``symbol``'s prices instead of the walk (symbol: else
          read from the file name; timeframe: else the bars' spacing); ``spread`` (points) for rows
          without one, default the symbol's typical spread.
          ``replay="realtime"`` releases the bars as the clock passes them; ``"stepped"`` moves
          only by ``open_next_bar()`` / ``finish_bar()`` / ``advance_to()``. Either way stops and
          targets follow the replay's bar rule (stops.py), so both trade alike.
        - ``clock``: returns the current time (timezone aware); default the system clock.
        - ``state_path``: a SQLite file that keeps the account across terminals (state.py).
        - ``balance``, ``login``, ``leverage``: the account's, when it is new (a saved one keeps its own).
        - ``server_utc_offset``: hours the trade server's clock is ahead of UTC (whole quarter hours).
          Like a real terminal's, every time handed out (ticks, bars, positions, deals) and every date
          read (``copy_rates_range``, ``history_deals_get``) is then on the server's clock, replayed
          bars included; 0, the default, is a server that keeps UTC.
        - ``data_utc_offset``: hours the replayed bars' times are ahead of UTC (0: they are UTC, as
          INTERFACE.md says; MetaTrader's own "Export bars" stamps them in its server's time).
        Bad arguments raise ValueError naming what is wrong.
        """
        self._engine = SimEngine(
            server_offset=_offset_argument(server_utc_offset, "server_utc_offset"),
            data_offset=_offset_argument(data_utc_offset, "data_utc_offset"),
            seed=seed,
            data=data,
            symbol=symbol,
            timeframe=timeframe,
            replay=replay,
            spread=spread,
            clock=clock,
            state_path=state_path,
            balance=balance,
            login=login,
            leverage=leverage,
        )
        # Whether a module call first brings the account up to now (SL/TP reached since the last
        # call). A stepped clock moves only by open_next_bar, finish_bar and advance_to, which do
        # that themselves at each move: a call in between would find nothing to catch up on.
        self._catches_up = not self._engine.stepped
        self._initialized = False
        self._lost = False
        self._error: tuple[int, str] = SUCCESS
        self._hidden: set[str] = set()
        self._books: set[str] = set()
        self._orders_by_position: PositionIndex[r.TradeOrder] = PositionIndex()
        self._deals_by_position: PositionIndex[r.TradeDeal] = PositionIndex()
        # Keyed on (now_ms, ledger revision): see memo.py.
        self._open_positions: LastValue[tuple[int, int], tuple[r.TradePosition, ...]] = LastValue()
        self._account: LastValue[tuple[int, int], r.AccountInfo] = LastValue()

    def _moment(self) -> tuple[int, int]:
        """What the account's records depend on: the time (prices) and the ledger's revision."""
        return self._engine.now_ms(), self._engine.ledger.revision

    # ---------------------------------------------------------------- connection

    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
        portable: bool = False,
    ) -> bool:
        if self._lost:
            self._error = (
                c.RES_E_INTERNAL_FAIL_INIT,
                "IPC initialize failed, the terminal is not running (simulated)",
            )
            return False
        if not self._initialized:
            # The state file is this terminal's until shutdown(); its account is read afresh (see
            # SimEngine.take_state). A file another terminal holds fails as a real terminal that
            # cannot start does: False, and last_error() says why.
            refused = self._engine.take_state()
            if refused is not None:
                self._error = (c.RES_E_INTERNAL_FAIL_INIT, f"IPC initialize failed, {refused}")
                return False
            self._orders_by_position = PositionIndex()
            self._deals_by_position = PositionIndex()
        if not self._authorized(login, server):
            if not self._initialized:
                self._engine.release_state()
            return False
        self._initialized = True
        self._error = SUCCESS
        return True

    def login(
        self, login: int, password: str | None = None, server: str | None = None, timeout: int | None = None
    ) -> bool:
        if not self._initialized or self._lost:
            self._error = NO_IPC
            return False
        if not self._authorized(login, server):
            return False
        self._error = SUCCESS
        return True

    def _authorized(self, login: object, server: object) -> bool:
        if login is not None and login != self._engine.ledger.login:
            self._error = (
                c.RES_E_AUTH_FAILED,
                f"Terminal: Authorization failed (the account is {self._engine.ledger.login})",
            )
            return False
        if server is not None and server != info.SERVER:
            self._error = (
                c.RES_E_AUTH_FAILED,
                f"Terminal: Authorization failed (the server is {info.SERVER})",
            )
            return False
        return True

    def shutdown(self) -> None:
        self._initialized = False
        self._engine.release_state()

    def last_error(self) -> tuple[int, str]:
        return self._error

    def simulate_disconnect(self) -> None:
        """Test hook: the terminal is lost until simulate_reconnect() (see the module docstring)."""
        self._lost = True
        self._initialized = False

    def simulate_reconnect(self) -> None:
        """Test hook: the terminal is back; initialize() succeeds again."""
        self._lost = False

    @_api
    def version(self) -> tuple[int, int, str]:
        return info.VERSION

    @_api
    def terminal_info(self) -> r.TerminalInfo:
        return info.terminal_info(self._engine.state_dir)

    @_api
    def account_info(self) -> r.AccountInfo:
        return self._account.get(self._moment(), self._account_record)

    def _account_record(self) -> r.AccountInfo:
        engine = self._engine
        return info.account_info(engine.ledger.login, engine.leverage, engine.desk.figures())

    # ---------------------------------------------------------------- symbols

    def _feed(self, symbol: object) -> Feed:
        if not isinstance(symbol, str):
            raise BadArgument(f'Invalid "symbol" argument: expected a str, got {type(symbol).__name__}')
        feed = self._engine.feeds.get(symbol)
        if feed is None:
            raise _NotFound(f"Terminal: Not found: unknown symbol {symbol!r}")
        return feed

    @_api
    def symbols_total(self) -> int:
        return len(SYMBOLS)

    @_api
    def symbols_get(self, group: str | None = None) -> tuple[r.SymbolInfo, ...]:
        return tuple(self._symbol_info(name) for name in matching(SYMBOLS, group))

    @_api
    def symbol_info(self, symbol: str) -> r.SymbolInfo:
        self._feed(symbol)
        return self._symbol_info(symbol)

    def _symbol_info(self, name: str) -> r.SymbolInfo:
        feed, now = self._engine.feeds[name], self._engine.now_ms()
        quote = feed.quote(now)
        day = now // 1000 // DAY * DAY
        d1 = frame_of(c.TIMEFRAME_D1)
        assert d1 is not None
        try:
            today = feed.bars(d1, day, day, now)
            before = feed.bars(d1, day - 14 * DAY, day - 1, now)
        except FeedError:
            today = before = Bars.empty()
        previous = float(before.close[-1]) if len(before) else 0.0
        value = money.tick_value(feed.spec, quote.bid, self._engine.price_of) if quote else 0.0
        return info.symbol_info(feed.spec, quote, today, previous, name not in self._hidden, value)

    @_api
    def symbol_info_tick(self, symbol: str) -> r.Tick:
        self._feed(symbol)
        quote = self._engine.quote(symbol)
        if quote is None:
            raise _NotFound(f"Terminal: Not found: no ticks for {symbol} yet")
        flags = c.TICK_FLAG_BID | c.TICK_FLAG_ASK
        return r.Tick(quote.time_msc // 1000, quote.bid, quote.ask, 0.0, 0, quote.time_msc, flags, 0.0)

    @_api
    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        self._feed(symbol)
        if enable:
            self._hidden.discard(symbol)
            return True
        if any(p.symbol == symbol for p in self._engine.ledger.positions.values()):
            return False  # MT5 keeps a symbol with open positions in Market Watch
        self._hidden.add(symbol)
        return True

    # ---------------------------------------------------------------- bars and ticks

    @staticmethod
    def _frame(timeframe: object) -> Frame:
        frame = frame_of(timeframe)
        if frame is None:
            raise BadArgument(f'Invalid "timeframe" argument: {timeframe!r} is not a TIMEFRAME_* value')
        return frame

    def _last_bars(self, feed: Feed, frame: Frame, count: int, end: int) -> Bars:
        """The ``count`` newest bars opening at or before ``end``, searching back as far as needed."""
        now = self._engine.now_ms()
        # The search goes back to the start of the bar holding the feed's first price, not to that
        # price itself: replayed bars need not start on a boundary of ``frame`` (H1 bars at :30,
        # H4 bars of H1 data from 09:00), and the bar they start in is history too.
        oldest = bucket_start(frame, feed.earliest())
        span = count * frame.seconds * 8 // 5 + 2 * frame.seconds
        while True:
            start = max(end - span, oldest)
            bars = feed.bars(frame, start, end, now)
            if len(bars) >= count or start == oldest:
                return bars.take(slice(max(len(bars) - count, 0), None))
            span *= 2

    @_api
    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int) -> Array:
        feed, frame = self._feed(symbol), self._frame(timeframe)
        start_pos = int_argument(start_pos, "start_pos")
        count = min(int_argument(count, "count", 1), info.MAXBARS)
        replay = self._engine.replay
        if replay is not None and feed is replay:
            rates = replay.rates_from_pos(frame, self._engine.replay_tick(), start_pos, count)
            if rates is not None:  # the replayed timeframe: rows of the replay, no searching back
                return rates
        bars = self._last_bars(feed, frame, start_pos + count, self._engine.now_ms() // 1000)
        return bars.take(slice(0, max(len(bars) - start_pos, 0))).take(slice(-count, None)).to_rates()

    @_api
    def copy_rates_from(self, symbol: str, timeframe: int, date_from: datetime | int, count: int) -> Array:
        feed, frame = self._feed(symbol), self._frame(timeframe)
        end = epoch_seconds(date_from, "date_from")
        count = min(int_argument(count, "count", 1), info.MAXBARS)
        return self._last_bars(feed, frame, count, end).to_rates()

    @_api
    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: datetime | int, date_to: datetime | int
    ) -> Array:
        feed, frame = self._feed(symbol), self._frame(timeframe)
        start, end = epoch_seconds(date_from, "date_from"), epoch_seconds(date_to, "date_to")
        if end < start:
            return Bars.empty().to_rates()
        # At most maxbars bars, the newest, as a terminal's chart history holds.
        start = max(start, end - info.MAXBARS * frame.seconds * 2)
        bars = feed.bars(frame, start, end, self._engine.now_ms())
        return bars.take(slice(-info.MAXBARS, None)).to_rates()

    @staticmethod
    def _tick_flags(flags: object) -> bool:
        """Whether ticks are wanted: the feeds quote bid/ask only, so COPY_TICKS_TRADE finds none."""
        if flags in (c.COPY_TICKS_ALL, c.COPY_TICKS_INFO) and not isinstance(flags, bool):
            return True
        if flags == c.COPY_TICKS_TRADE and not isinstance(flags, bool):
            return False
        raise BadArgument(f'Invalid "flags" argument: {flags!r} is not a COPY_TICKS_* value')

    @_api
    def copy_ticks_from(self, symbol: str, date_from: datetime | int, count: int, flags: int) -> Array:
        feed, count = self._feed(symbol), int_argument(count, "count", 1)
        start_ms = epoch_seconds(date_from, "date_from") * 1000
        if not self._tick_flags(flags):
            return Ticks.empty().to_array()
        return feed.ticks(start_ms - 1, self._engine.now_ms(), limit=min(count, MAX_TICKS)).to_array()

    @_api
    def copy_ticks_range(
        self, symbol: str, date_from: datetime | int, date_to: datetime | int, flags: int
    ) -> Array:
        feed = self._feed(symbol)
        start_ms = epoch_seconds(date_from, "date_from") * 1000
        end_ms = min(epoch_seconds(date_to, "date_to") * 1000 + 999, self._engine.now_ms())
        if not self._tick_flags(flags) or end_ms < start_ms:
            return Ticks.empty().to_array()
        ticks = feed.ticks(start_ms - 1, end_ms, limit=MAX_TICKS + 1)
        if len(ticks) > MAX_TICKS:
            raise BadArgument(
                f"Invalid arguments: more than {MAX_TICKS} ticks in the range; ask for less at a time"
            )
        return ticks.to_array()

    # ---------------------------------------------------------------- trading

    def _side(self, action: object) -> bool:
        if action not in (c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL) or isinstance(action, bool):
            raise BadArgument(
                f'Invalid "action" argument: {action!r} is not ORDER_TYPE_BUY or ORDER_TYPE_SELL'
            )
        return action == c.ORDER_TYPE_BUY

    @_api
    def order_calc_margin(self, action: int, symbol: str, volume: float, price: float) -> float:
        self._side(action)
        spec = self._feed(symbol).spec
        amount = money.margin(
            spec,
            number_argument(volume, "volume"),
            number_argument(price, "price"),
            self._engine.leverage,
            self._engine.price_of,
        )
        return amount

    @_api
    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float:
        is_buy = self._side(action)
        spec = self._feed(symbol).spec
        return money.profit(
            spec,
            is_buy,
            number_argument(volume, "volume"),
            number_argument(price_open, "price_open"),
            number_argument(price_close, "price_close"),
            self._engine.price_of,
        )

    @_api
    def order_check(self, request: dict[str, object]) -> r.OrderCheckResult:
        return self._engine.desk.check(parse_request(request))

    @_api
    def order_send(self, request: dict[str, object]) -> r.OrderSendResult:
        return self._engine.desk.send(parse_request(request))

    # ---------------------------------------------------------------- positions, orders, history

    @_api
    def positions_total(self) -> int:
        return len(self._engine.ledger.positions)

    @_api
    def positions_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[r.TradePosition, ...]:
        if ticket is not None:
            int_argument(ticket, "ticket")
        if symbol is not None and not isinstance(symbol, str):
            raise BadArgument(f'Invalid "symbol" argument: expected a str, got {type(symbol).__name__}')
        names = set(matching(SYMBOLS, group)) if group is not None else None
        records = self._open_positions.get(self._moment(), self._position_records)
        if ticket is None and symbol is None and names is None:
            return records
        return tuple(
            p
            for p in records
            if (ticket is None or p.ticket == ticket)
            and (symbol is None or p.symbol == symbol)
            and (names is None or p.symbol in names)
        )

    def _position_records(self) -> tuple[r.TradePosition, ...]:
        """Every open position, oldest first, with its current price and profit."""
        desk = self._engine.desk
        return tuple(
            info.position_record(p, *desk.valuation(p))
            for p in sorted(self._engine.ledger.positions.values(), key=lambda p: (p.time_msc, p.ticket))
        )

    @_api
    def orders_total(self) -> int:
        return 0  # pending orders are not simulated

    @_api
    def orders_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[r.TradeOrder, ...]:
        return ()  # pending orders are not simulated

    @_api
    def history_orders_total(self, date_from: datetime | int, date_to: datetime | int) -> int:
        return len(select_history(self._engine.ledger.orders, date_from, date_to, None, None, None))

    @_api
    def history_orders_get(
        self,
        date_from: datetime | int | None = None,
        date_to: datetime | int | None = None,
        *,
        group: str | None = None,
        position: int | None = None,
        ticket: int | None = None,
    ) -> tuple[r.TradeOrder, ...]:
        orders = self._engine.ledger.orders
        return select_history(orders, date_from, date_to, group, position, ticket, self._orders_by_position)

    @_api
    def history_deals_total(self, date_from: datetime | int, date_to: datetime | int) -> int:
        return len(select_history(self._engine.ledger.deals, date_from, date_to, None, None, None))

    @_api
    def history_deals_get(
        self,
        date_from: datetime | int | None = None,
        date_to: datetime | int | None = None,
        *,
        group: str | None = None,
        position: int | None = None,
        ticket: int | None = None,
    ) -> tuple[r.TradeDeal, ...]:
        deals = self._engine.ledger.deals
        return select_history(deals, date_from, date_to, group, position, ticket, self._deals_by_position)

    # ---------------------------------------------------------------- market book

    @_api
    def market_book_add(self, symbol: str) -> bool:
        self._feed(symbol)
        self._books.add(symbol)
        return True

    @_api
    def market_book_release(self, symbol: str) -> bool:
        self._feed(symbol)
        self._books.discard(symbol)
        return True

    @_api
    def market_book_get(self, symbol: str) -> tuple[r.BookInfo, ...]:
        feed = self._feed(symbol)
        if symbol not in self._books:
            raise _NotFound(f"Terminal: Not found: call market_book_add({symbol!r}) first")
        quote = feed.quote(self._engine.now_ms())
        if quote is None:
            raise _NotFound(f"Terminal: Not found: no prices for {symbol} yet")
        return info.market_book(feed.spec, quote)

    # ---------------------------------------------------------------- simulator extras

    @property
    def setup_notices(self) -> tuple[str, ...]:
        """What a user should hear about this terminal's setup before trading on it (setup_notes.py):
        replayed bars that do not cover now, a state file last used with another feed."""
        return self._engine.notices

    @property
    def current_time(self) -> datetime:
        """The simulator's "now" (the clock, or the replay's position when stepping), on its trade
        server's clock: ``server_utc_offset`` hours ahead of UTC, as the times it hands out are."""
        return datetime.fromtimestamp(self._engine.now_ms() / 1000, UTC)

    @property
    def replay_index(self) -> int:
        """Stepped replay: the index of the current bar (-1 before the first open_next_bar())."""
        return self._engine.bar_index

    @property
    def replay_length(self) -> int:
        """The number of replayed bars (0 without data=)."""
        return len(self._engine.replay) if self._engine.replay is not None else 0

    def open_next_bar(self) -> bool:
        """Stepped replay: open the next bar; False (nothing changes) when the data is exhausted.

        The current tick becomes the bar's open (bid; ask = bid + spread), so market orders sent now
        fill at the open. Bars of every timeframe show this bar as forming (O = H = L = C = open).
        Call finish_bar() before opening another bar.
        """
        return self._engine.open_next_bar()

    def finish_bar(self) -> tuple[r.TradeDeal, ...]:
        """Stepped replay: play the rest of the current bar; returns the SL/TP deals it caused.

        Every position of the replayed symbol (those opened at this bar's open included) is checked
        against the bar's high and low: a level gapped through at the open fills at the open; else a
        level inside the bar fills at the level; when both SL and TP lie inside, the STOP is taken.
        Sells are judged on the ask (bid + spread). Then the tick becomes the bar's close.
        """
        return self._engine.finish_bar()

    def advance_to(self, index: int) -> tuple[r.TradeDeal, ...]:
        """Stepped replay: fast-forward to the open of bar ``index``; returns the SL/TP deals on the way.

        The same as finish_bar() on the current bar (when open) and open_next_bar() + finish_bar()
        on every bar before ``index``, then open_next_bar() onto it, with the same deals, balance
        and positions, but found with one numpy search per open position. ``index`` equal to
        replay_length finishes every bar and stops at the last bar's close (its close is the
        current tick, so positions can still be closed there). ValueError for a bar not ahead.
        """
        return self._engine.advance_to(index)

    @property
    def replay_rates(self) -> npt.NDArray[np.void]:
        """Stepped or real-time replay: every replayed bar, complete, as copy_rates_* serves them
        (prices rounded to the symbol's digits); an empty array without data=."""
        replay = self._engine.replay
        return replay.rates() if replay is not None else Bars.empty().to_rates()

    @property
    def replay_exported_by_metatrader(self) -> bool:
        """Whether the replayed CSV is MetaTrader's own export (split <DATE> and <TIME> columns),
        whose times are its trade server's."""
        replay = self._engine.replay
        return replay is not None and replay.exported_by_metatrader

    @property
    def replay_timeframe(self) -> str | None:
        """The timeframe of the replayed bars ("H1"...), None without data=."""
        replay = self._engine.replay
        return replay.frame.name if replay is not None else None
