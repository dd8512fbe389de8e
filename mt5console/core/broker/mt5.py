"""The broker adapter: async methods over any MetaTrader5-like module.

The same code drives the real ``MetaTrader5`` package, an mt5linux proxy (MT5 under Wine) and the
simulator, because all three offer the module's functions, constants and named tuples. The module is
blocking and not thread safe, so every call to it runs on ONE dedicated thread owned by this adapter;
nothing else in the program touches the module. Results are converted into the core's frozen
dataclasses (UTC datetimes) on that thread, so no module object ever reaches the event loop.

When the terminal goes away, calls raise ``TerminalUnavailable`` at once and a reconnect task retries
``initialize()`` every ``reconnect_interval`` seconds, logging each attempt, until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np

from mt5console.core.broker.errors import BrokerError, OrderRejected, TerminalUnavailable
from mt5console.core.broker.models import (
    AccountState,
    Deal,
    OrderResult,
    Position,
    Side,
    SymbolSpec,
    TerminalState,
    Tick,
)
from mt5console.core.broker.retcodes import SUCCESS_RETCODES, describe_retcode
from mt5console.core.broker.server_clock import ServerClock
from mt5console.core.events import (
    EventBus,
    ReconnectAttempt,
    ServerClockLearned,
    TerminalConnected,
    TerminalLost,
)
from mt5console.core.timeframes import timeframe_value

log = logging.getLogger(__name__)
T = TypeVar("T")

# The module's constant values (shared/reference/mt5_api.txt). Read from this table, not from the
# module, because on mt5linux an attribute read is a remote call that belongs on the terminal thread.
TRADE_ACTION_DEAL = 1
TRADE_ACTION_SLTP = 6
ORDER_TYPE_BUY = 0
ORDER_TYPE_SELL = 1
ORDER_TIME_GTC = 0
ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
SYMBOL_FILLING_FOK_BIT = 1
SYMBOL_FILLING_IOC_BIT = 2
POSITION_TYPE_BUY = 0
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
ACCOUNT_TRADE_MODE_DEMO = 0
# Bound once: reading an enum member through its class costs an attribute lookup on the metaclass.
_BUY = Side.BUY
_SELL = Side.SELL
# last_error() codes that mean the terminal itself is gone, not that one request was bad.
CONNECTION_LOST_CODES = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})

DEFAULT_DEVIATION_POINTS = 20
# A module call unanswered this long is said in the log: the real terminal answers in milliseconds,
# order_send within its trade server's timeout (seconds).
SLOW_CALL_SECONDS = 20.0


def _call_name(work: Callable[[], Any]) -> str:
    """What a terminal-thread call does, from its function's name: ``Broker.positions.<locals>.work``
    -> ``positions``, a bound method ``Broker._initialize_on_thread`` -> ``_initialize_on_thread``."""
    qualified = getattr(work, "__qualname__", "") or getattr(work, "__name__", "") or repr(work)
    return qualified.split(".<locals>", 1)[0].rsplit(".", 1)[-1].strip("_") or "a call"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(epoch_seconds: float) -> datetime:
    # From the epoch, not datetime.fromtimestamp: on Windows that raises OSError for a time before
    # 1970, which a symbol's first, empty tick (time 0) becomes once a server offset is taken off; an
    # OSError here would read as the bridge gone, and the terminal would be reconnected for nothing.
    return EPOCH + timedelta(seconds=epoch_seconds)


@functools.lru_cache(maxsize=4096)
def _utc_ms(epoch_ms: int) -> datetime:
    """``_utc(epoch_ms / 1000)``, remembered: an open position is listed on every poll and a deal
    read again with its position, each time with the same time, and a datetime is immutable."""
    return EPOCH + timedelta(milliseconds=epoch_ms)


def _epoch(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("datetimes given to the broker must be timezone aware (UTC)")
    return int(when.timestamp())


def pip_size(digits: int, point: float, override: float | None = None) -> float:
    """pip = 10 x point for 3 and 5 digit quotes, else 1 x point, unless configured per symbol."""
    if override is not None:
        return override
    return point * 10 if digits in (3, 5) else point


def symbol_spec(info: Any, pip_override: float | None = None) -> SymbolSpec:
    """The core's SymbolSpec from the module's SymbolInfo named tuple."""
    return SymbolSpec(
        name=str(info.name),
        description=str(info.description),
        digits=int(info.digits),
        point=float(info.point),
        pip=pip_size(int(info.digits), float(info.point), pip_override),
        contract_size=float(info.trade_contract_size),
        tick_size=float(info.trade_tick_size),
        tick_value=float(info.trade_tick_value),
        volume_min=float(info.volume_min),
        volume_max=float(info.volume_max),
        volume_step=float(info.volume_step),
        stops_level=int(info.trade_stops_level),
        spread=int(info.spread),
        currency_base=str(info.currency_base),
        currency_profit=str(info.currency_profit),
        currency_margin=str(info.currency_margin),
        trade_mode=int(info.trade_mode),
        filling_mode=int(info.filling_mode),
    )


class _Failed(Exception):
    """Raised on the terminal thread: a module call returned None; carries last_error()."""

    def __init__(self, function: str, code: int, text: str) -> None:
        super().__init__(f"{function}() failed: {text} ({code})")
        self.function = function
        self.code = code
        self.text = text


class Broker:
    """Async facade over an MT5-like module; the one owner of the terminal thread."""

    def __init__(
        self,
        module_factory: Callable[[], Any],
        *,
        events: EventBus,
        simulated: bool,
        initialize_kwargs: Mapping[str, Any] | None = None,
        reconnect_interval: float = 10.0,
        pip_overrides: Mapping[str, float] | None = None,
        inline: bool = False,
        server_clock: ServerClock | None = None,
    ) -> None:
        # The module is created on the terminal thread at the first connect: the mt5linux proxy opens
        # its connection in its constructor, and the simulator loads its saved state there.
        self._module_factory = module_factory
        self._module: Any = None
        self._events = events
        self.simulated = simulated
        self._initialize_kwargs = dict(initialize_kwargs or {})
        self.reconnect_interval = reconnect_interval
        self._pip_overrides = dict(pip_overrides or {})
        # inline: call the module on the loop's own thread. Only for the replay, whose simulator is
        # in-process, never blocks and is driven by the loop itself; a thread hop per call would
        # cost more than the whole bar. Live use always has the dedicated thread.
        self._inline = inline
        self.slow_call_after = SLOW_CALL_SECONDS  # a call unanswered this long is said (tests shorten it)
        # The terminal's times are the trade server's: converted to UTC with this clock's offset,
        # both ways (server_clock.py). Default: a terminal that keeps UTC (the replay, the tests).
        self.server_clock = server_clock or ServerClock.fixed()
        # Whether the account nets positions (one per symbol), as its last account_info said: an
        # order's position is then the one it merged into, not the order's own ticket.
        self._netting = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mt5-terminal")
        self._connected = False
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._back = asyncio.Event()
        self._specs: dict[str, SymbolSpec] = {}
        self.terminal: TerminalState | None = None

    # ----------------------------------------------------------------- the terminal thread

    async def _on_thread(self, work: Callable[[], T]) -> T:
        if self._inline:
            return work()
        loop = asyncio.get_running_loop()
        answer = loop.run_in_executor(self._executor, work)
        # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow a cancellation that comes as
        # the call finishes, and a cancelled loop (market data at stop) would then poll for ever.
        try:
            done, _ = await asyncio.wait({answer}, timeout=self.slow_call_after)
        except asyncio.CancelledError:
            answer.cancel()  # as awaiting it would: a call not started yet never runs
            raise
        if done:
            return answer.result()
        # A hung terminal or mt5linux bridge holds the one terminal thread, and with it every call
        # behind this one (market data, orders, closes): the console looks idle without a word.
        # The call cannot be taken back; it is waited for, and the wait is said.
        what = _call_name(work)
        started = loop.time() - self.slow_call_after
        self._events.warning(
            "broker",
            f"the terminal has not answered {what} for {self.slow_call_after:g} s: everything waits for it "
            "(is the terminal or the mt5linux bridge hung?)",
        )
        result = await answer
        self._events.info("broker", f"the terminal answered {what} after {loop.time() - started:.0f} s")
        return result

    def _raw(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call one module function; runs ON the terminal thread only. None -> _Failed."""
        result = getattr(self._module, function)(*args, **kwargs)
        if result is None:
            code, text = self._module.last_error()
            raise _Failed(function, int(code), str(text))
        return result

    async def _call(self, work: Callable[[], T]) -> T:
        """Run ``work`` (which uses ``_raw``) on the terminal thread, translating failures."""
        if not self._connected:
            raise TerminalUnavailable(self._unavailable_message())
        try:
            # Inline (the replay): called right here, without the extra coroutine of _on_thread.
            return work() if self._inline else await self._on_thread(work)
        except _Failed as failed:
            if failed.code in CONNECTION_LOST_CODES:
                self._lost(str(failed))
                raise TerminalUnavailable(f"the terminal went away: {failed}", code=failed.code) from None
            raise BrokerError(str(failed), code=failed.code) from None
        except (ConnectionError, EOFError, OSError) as error:  # the mt5linux bridge dropped
            self._lost(f"{type(error).__name__}: {error}")
            raise TerminalUnavailable(f"the terminal went away: {error}") from None

    def _unavailable_message(self) -> str:
        if self._closing:
            return "the broker adapter is closed"
        return f"the terminal is not connected; reconnecting every {self.reconnect_interval:g} s"

    # ----------------------------------------------------------------- connection

    @property
    def connected(self) -> bool:
        return self._connected

    async def wait_connected(self) -> None:
        await self._back.wait()

    def _initialize_on_thread(self) -> tuple[TerminalState, AccountState]:
        if self._module is None:
            self._module = self._module_factory()
        with contextlib.suppress(Exception):  # a stale session must not block a fresh one
            self._module.shutdown()
        return self._initialized()

    def _reinitialize_on_thread(self) -> tuple[TerminalState, AccountState]:
        """A reconnect starts from a new module object: the mt5linux bridge opens its connection
        once, when it is made, and a dropped one answers every later call with EOFError. (The real
        module's factory gives the same module back; the simulator's, the same terminal.)"""
        old, self._module = self._module, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.shutdown()
        return self._initialize_on_thread()

    def _initialized(self) -> tuple[TerminalState, AccountState]:
        assert self._module is not None
        if not self._module.initialize(**self._initialize_kwargs):
            code, text = self._module.last_error()
            raise _Failed("initialize", int(code), str(text))
        return self._terminal_state(), self._account_state()

    async def connect(self, attempts: int = 1) -> AccountState:
        """Connect at start; ``attempts`` tries ``reconnect_interval`` apart (0 = until it works).

        Raises TerminalUnavailable when every attempt failed (the CLI exits with code 3).
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                terminal, account = await self._on_thread(self._initialize_on_thread)
            except (_Failed, ConnectionError, EOFError, OSError) as error:
                last_try = attempts and attempt >= attempts
                self._events.warning(
                    "broker",
                    f"terminal not reachable (attempt {attempt}"
                    + (f" of {attempts}" if attempts else "")
                    + f"): {error}"
                    + ("" if last_try else f"; retrying in {self.reconnect_interval:g} s"),
                )
                if last_try:
                    raise TerminalUnavailable(
                        f"could not connect to the terminal after {attempt} attempt(s): {error}"
                    ) from None
                self._events.publish(
                    ReconnectAttempt(attempt=attempt, error=str(error), retry_in=self.reconnect_interval)
                )
                await asyncio.sleep(self.reconnect_interval)
                continue
            self._mark_connected(terminal, account)
            return account

    def _mark_connected(self, terminal: TerminalState, account: AccountState) -> None:
        self._connected = True
        self.terminal = terminal
        self._back.set()
        self._events.publish(TerminalConnected(terminal=terminal, account=account))

    def _lost(self, reason: str) -> None:
        if not self._connected or self._closing:
            return
        self._connected = False
        self._back.clear()
        self._events.error("broker", f"terminal lost: {reason}")
        self._events.publish(TerminalLost(reason=reason))
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect(), name="broker-reconnect"
        )

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closing:
            attempt += 1
            await asyncio.sleep(self.reconnect_interval)
            if self._closing:
                return
            try:
                terminal, account = await self._on_thread(self._reinitialize_on_thread)
            except Exception as error:  # any failure is one more attempt, never the end of the loop
                self._events.warning(
                    "broker",
                    f"reconnect attempt {attempt} failed: {error}; retrying in {self.reconnect_interval:g} s",
                )
                self._events.publish(
                    ReconnectAttempt(attempt=attempt, error=str(error), retry_in=self.reconnect_interval)
                )
                continue
            self._events.info("broker", f"terminal is back after {attempt} attempt(s)")
            self._mark_connected(terminal, account)
            return

    async def check_connection(self) -> bool:
        """Ask the terminal whether it is still there; starts reconnecting when it is not."""
        if not self._connected:
            return False
        try:
            info = await self._call(lambda: self._raw("terminal_info"))
        except TerminalUnavailable:
            return False
        except BrokerError as error:
            self._lost(str(error))
            return False
        if not info.connected:
            self._lost("the terminal lost its connection to the trade server")
            return False
        return True

    async def close(self) -> None:
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        if self._connected:
            self._connected = False
            with contextlib.suppress(Exception):
                await self._on_thread(self._module.shutdown)
        self._executor.shutdown(wait=True)

    # ----------------------------------------------------------------- conversions (terminal thread)
    # The dataclasses are built with positional arguments, in their field order: keyword arguments
    # cost a quarter of a conversion, and these run for every position, deal and tick read.
    # test_conversions_put_every_value_in_its_field fails when a value lands in another field.

    def _terminal_state(self) -> TerminalState:
        info = self._raw("terminal_info")
        return TerminalState(
            connected=bool(info.connected),
            trade_allowed=bool(info.trade_allowed),
            build=int(info.build),
            company=str(info.company),
            name=str(info.name),
            path=str(info.path),
            data_path=str(info.data_path),
            commondata_path=str(info.commondata_path),
            simulated=self.simulated,
        )

    def _account_state(self) -> AccountState:
        info = self._raw("account_info")
        self._netting = int(info.margin_mode) != ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
        return AccountState(
            int(info.login),
            str(info.server),
            str(info.name),
            str(info.company),
            str(info.currency),
            int(info.leverage),
            float(info.balance),
            float(info.equity),
            float(info.profit),
            float(info.margin),
            float(info.margin_free),
            float(info.margin_level),
            bool(info.trade_allowed),
            int(info.margin_mode) == ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,  # hedging
            int(info.trade_mode) == ACCOUNT_TRADE_MODE_DEMO,  # demo
        )

    def _symbol_spec(self, name: str) -> SymbolSpec:
        info = self._raw("symbol_info", name)
        if not info.visible:
            self._raw("symbol_select", name, True)
        return symbol_spec(info, self._pip_overrides.get(name))

    def _tick(self, symbol: str, raw: Any) -> Tick:
        time_msc = int(raw.time_msc) or int(raw.time) * 1000
        clock = self.server_clock
        if clock.watching:
            clock.observe(symbol, time_msc)
        return Tick(
            symbol,
            _utc((time_msc - clock.offset_ms) / 1000),  # time
            float(raw.bid),
            float(raw.ask),
            float(raw.last),
            int(raw.volume),
        )

    def _position(self, raw: Any) -> Position:
        time_msc = int(raw.time_msc)
        offset = self.server_clock.offset
        return Position(
            int(raw.ticket),
            str(raw.symbol),
            _BUY if int(raw.type) == POSITION_TYPE_BUY else _SELL,  # side
            float(raw.volume),
            float(raw.price_open),
            float(raw.price_current),
            float(raw.sl),
            float(raw.tp),
            float(raw.profit),
            float(raw.swap),
            int(raw.magic),
            str(raw.comment),
            _utc_ms(time_msc - offset * 1000) if time_msc else _utc(int(raw.time) - offset),  # time
            int(raw.identifier),
        )

    def _deal(self, raw: Any) -> Deal:
        time_msc = int(raw.time_msc)
        offset = self.server_clock.offset
        return Deal(
            int(raw.ticket),
            int(raw.order),
            int(raw.position_id),
            str(raw.symbol),
            int(raw.type),
            int(raw.entry),
            int(raw.reason),
            float(raw.volume),
            float(raw.price),
            float(raw.profit),
            # The deal's fee (a newer TradeDeal field) is a charge like the commission: kept with it,
            # so that every result (limits, trade profit) counts it without a field of its own.
            round(float(raw.commission) + float(getattr(raw, "fee", 0.0) or 0.0), 8),  # no float noise
            float(raw.swap),
            int(raw.magic),
            str(raw.comment),
            _utc_ms(time_msc - offset * 1000) if time_msc else _utc(int(raw.time) - offset),  # time
        )

    # ----------------------------------------------------------------- reads

    async def terminal_state(self) -> TerminalState:
        return await self._call(self._terminal_state)

    async def account(self) -> AccountState:
        return await self._call(self._account_state)

    async def symbol(self, name: str) -> SymbolSpec:
        """The symbol's specification; selects it into Market Watch if needed."""
        spec = await self._call(functools.partial(self._symbol_spec, name))
        self._specs[name] = spec
        return spec

    async def unknown_symbols(self, names: Iterable[str]) -> tuple[str, ...]:
        """Those of ``names`` the terminal does not know, in one hop; the known ones are put into
        Market Watch when they are not there (as ``symbol`` does), so that their ticks come."""
        wanted = list(dict.fromkeys(names))

        def work() -> tuple[str, ...]:
            unknown: list[str] = []
            for name in wanted:
                info = self._module.symbol_info(name)
                if info is None:
                    self._raise_if_lost("symbol_info")
                    unknown.append(name)
                elif not info.visible:
                    self._module.symbol_select(name, True)
            return tuple(unknown)

        return await self._call(work)

    def _raise_if_lost(self, function: str) -> None:
        """After ``function`` answered None (on the terminal thread): _Failed when the terminal is gone,
        so that the one hop over many symbols fails as a whole; otherwise that symbol just has nothing."""
        code, text = self._module.last_error()
        if int(code) in CONNECTION_LOST_CODES:
            raise _Failed(function, int(code), str(text))

    async def cached_symbol(self, name: str) -> SymbolSpec:
        """Like ``symbol`` but reuses the first answer (contract specs do not change in a session)."""
        return self._specs.get(name) or await self.symbol(name)

    async def tick(self, symbol: str) -> Tick:
        tick = await self._call(lambda: self._tick(symbol, self._raw("symbol_info_tick", symbol)))
        self._tell_clock_notes()
        return tick

    def _tell_clock_notes(self) -> None:
        """Say what the ticks just read taught about the server's clock (on the loop, not the thread)."""
        for note in self.server_clock.take_notes():
            if note.warning:
                self._events.warning("broker", note.message)
            else:
                self._events.info("broker", note.message)
            if note.learned is not None:
                self._events.publish(ServerClockLearned(offset=note.learned))

    async def ticks(self, symbols: Iterable[str]) -> dict[str, Tick]:
        """The latest tick of each symbol in one hop; symbols without a tick are left out."""
        names = list(symbols)

        def work() -> dict[str, Tick]:
            found: dict[str, Tick] = {}
            for name in names:
                raw = self._module.symbol_info_tick(name)
                if raw is None:
                    self._raise_if_lost("symbol_info_tick")
                    continue
                if float(raw.bid) > 0 or float(raw.ask) > 0:
                    found[name] = self._tick(name, raw)
            return found

        found = await self._call(work)
        self._tell_clock_notes()
        return found

    async def rates(self, symbol: str, timeframe: str, count: int, start_pos: int = 0) -> np.ndarray:
        """``count`` bars ending ``start_pos`` bars back (0 = including the forming bar), oldest first."""
        frame = timeframe_value(timeframe)

        def work() -> np.ndarray:
            # The module hands out a fresh array per call (the bridge a proxy, made local here), so
            # asarray copies only when it must.
            return self._utc_rates(
                np.asarray(self._raw("copy_rates_from_pos", symbol, frame, start_pos, count))
            )

        return await self._call(work)

    def _utc_rates(self, rates: np.ndarray) -> np.ndarray:
        """Bars with their open times in UTC (a copy, when the server's clock is not UTC)."""
        offset = self.server_clock.offset
        if offset == 0 or len(rates) == 0:
            return rates
        shifted = np.array(rates, copy=True)
        shifted["time"] -= offset
        return shifted

    async def rates_range(
        self, symbol: str, timeframe: str, date_from: datetime, date_to: datetime
    ) -> np.ndarray:
        frame = timeframe_value(timeframe)

        def work() -> np.ndarray:
            offset = self.server_clock.offset  # the module reads dates in server time
            start, end = _epoch(date_from) + offset, _epoch(date_to) + offset
            return self._utc_rates(np.asarray(self._raw("copy_rates_range", symbol, frame, start, end)))

        return await self._call(work)

    async def positions(self, symbol: str | None = None, ticket: int | None = None) -> tuple[Position, ...]:
        def work() -> tuple[Position, ...]:
            if ticket is not None:
                raw = self._raw("positions_get", ticket=ticket)
            elif symbol is not None:
                raw = self._raw("positions_get", symbol=symbol)
            else:
                raw = self._raw("positions_get")
            return tuple(self._position(p) for p in raw)

        return await self._call(work)

    async def deals(
        self, date_from: datetime, date_to: datetime, *, position: int | None = None
    ) -> tuple[Deal, ...]:
        """The deals done between the two dates, or, given ``position``, every deal of that position
        (the dates are then checked but not passed on: MT5 takes none with a position)."""
        start, end = _epoch(date_from), _epoch(date_to)
        if position is not None:
            return await self.position_deals(position)

        def work() -> tuple[Deal, ...]:
            offset = self.server_clock.offset  # the module reads dates in server time
            return tuple(map(self._deal, self._raw("history_deals_get", start + offset, end + offset)))

        return await self._call(work)

    async def position_deals(self, position: int) -> tuple[Deal, ...]:
        """Every deal of one position, whenever done: MT5's ``history_deals_get(position=...)``
        takes no dates, so a caller that has none to give need not make any up."""
        return await self._call(
            lambda: tuple(map(self._deal, self._raw("history_deals_get", position=position)))
        )

    async def calc_margin(self, side: Side, symbol: str, volume: float, price: float) -> float:
        kind = ORDER_TYPE_BUY if side is Side.BUY else ORDER_TYPE_SELL
        return float(await self._call(lambda: self._raw("order_calc_margin", kind, symbol, volume, price)))

    async def calc_profit(
        self, side: Side, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float:
        kind = ORDER_TYPE_BUY if side is Side.BUY else ORDER_TYPE_SELL
        return float(
            await self._call(
                lambda: self._raw("order_calc_profit", kind, symbol, volume, price_open, price_close)
            )
        )

    # ----------------------------------------------------------------- trading

    @staticmethod
    def _filling(filling_mask: int) -> int:
        """The request's filling type from the symbol's allowed-filling bit mask."""
        if filling_mask & SYMBOL_FILLING_FOK_BIT:
            return ORDER_FILLING_FOK
        if filling_mask & SYMBOL_FILLING_IOC_BIT:
            return ORDER_FILLING_IOC
        return ORDER_FILLING_RETURN

    def _send(self, request: dict[str, Any], position: int) -> OrderResult:
        """order_send on the terminal thread; a refused request becomes OrderRejected."""
        result = self._raw("order_send", request)
        retcode = int(result.retcode)
        if retcode not in SUCCESS_RETCODES:
            raise OrderRejected(
                f"order rejected: {describe_retcode(retcode, str(result.comment))}", retcode=retcode
            )
        return OrderResult(
            retcode,
            int(result.deal),
            int(result.order),
            float(result.volume),
            float(result.price),
            str(result.comment),
            # On a hedging account a position's ticket is the ticket of the order that opened it.
            position or int(result.order),
        )

    async def open_market(
        self,
        symbol: str,
        side: Side,
        volume: float,
        *,
        sl: float = 0.0,
        tp: float = 0.0,
        magic: int = 0,
        comment: str = "",
        deviation: int = DEFAULT_DEVIATION_POINTS,
    ) -> OrderResult:
        """A market deal at the current price; sl/tp 0.0 mean none, as in MT5."""
        if not (volume > 0 and math.isfinite(volume)):
            raise BrokerError(f"volume must be a positive number, not {volume!r}")
        buying = side is _BUY

        def work() -> OrderResult:
            spec = self._specs.get(symbol) or self._symbol_spec(symbol)
            tick = self._raw("symbol_info_tick", symbol)
            quoted = float(tick.ask if buying else tick.bid)
            request = {
                "action": TRADE_ACTION_DEAL,
                "symbol": symbol,
                "volume": float(volume),
                "type": ORDER_TYPE_BUY if buying else ORDER_TYPE_SELL,
                "price": quoted,
                "sl": float(sl),
                "tp": float(tp),
                "deviation": int(deviation),
                "magic": int(magic),
                "comment": comment,
                "type_time": ORDER_TIME_GTC,
                "type_filling": self._filling(spec.filling_mode),
            }
            result = self._with_fill_price(self._send(request, 0), quoted)
            return self._with_netted_position(result) if self._netting else result

        return await self._call(work)

    def _with_fill_price(self, result: OrderResult, quoted: float) -> OrderResult:
        """Some execution modes (exchange execution, some bridges) answer a market deal with price 0,
        or PLACED before the fill: the price is then the deal's, else the position's, else the price
        the order was sent at, so that no trade is ever recorded as opened at 0. On the terminal thread."""
        if result.price > 0:
            return result
        module = self._module  # _send has just used it
        deals = module.history_deals_get(ticket=result.deal) if result.deal else None
        price = float(deals[0].price) if deals else 0.0
        if price <= 0:
            positions = module.positions_get(ticket=result.position)
            price = float(positions[0].price_open) if positions else 0.0
        return dataclasses.replace(result, price=price if price > 0 else quoted)

    def _with_netted_position(self, result: OrderResult) -> OrderResult:
        """On a netting account an order joins (or reduces, or reverses) the symbol's one position,
        whose ticket is the order that first opened it: the deal says which. On the terminal thread."""
        deals = self._module.history_deals_get(ticket=result.deal) if result.deal else None
        position = int(deals[0].position_id) if deals else 0
        return dataclasses.replace(result, position=position) if position else result

    async def modify(self, ticket: int, *, sl: float, tp: float) -> OrderResult:
        """Change a position's stop loss and take profit (0.0 removes one)."""

        def work() -> OrderResult:
            found = self._raw("positions_get", ticket=ticket)
            if not found:
                raise OrderRejected(f"position {ticket} is not open", retcode=10036)
            request = {
                "action": TRADE_ACTION_SLTP,
                "position": int(ticket),
                "symbol": str(found[0].symbol),
                "sl": float(sl),
                "tp": float(tp),
            }
            return self._send(request, ticket)

        return await self._call(work)

    async def close_position(
        self,
        ticket: int,
        *,
        volume: float | None = None,
        comment: str = "",
        deviation: int = DEFAULT_DEVIATION_POINTS,
    ) -> OrderResult:
        """Close a position, or ``volume`` of it, at market with an opposite deal."""

        def work() -> OrderResult:
            found = self._raw("positions_get", ticket=ticket)
            if not found:
                raise OrderRejected(f"position {ticket} is not open (already closed?)", retcode=10036)
            position = found[0]
            symbol = str(position.symbol)
            spec = self._specs.get(symbol) or self._symbol_spec(symbol)
            tick = self._raw("symbol_info_tick", symbol)
            closing_buy = int(position.type) == POSITION_TYPE_BUY
            request = {
                "action": TRADE_ACTION_DEAL,
                "symbol": symbol,
                "volume": float(volume if volume is not None else position.volume),
                "type": ORDER_TYPE_SELL if closing_buy else ORDER_TYPE_BUY,
                "position": int(ticket),
                "price": float(tick.bid if closing_buy else tick.ask),
                "deviation": int(deviation),
                "magic": int(position.magic),
                "comment": comment,
                "type_time": ORDER_TIME_GTC,
                "type_filling": self._filling(spec.filling_mode),
            }
            return self._send(request, ticket)

        return await self._call(work)
