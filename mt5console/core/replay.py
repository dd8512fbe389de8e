"""Backtest = the live engine + the simulator on a replay clock (``mt5console replay``).

One engine, two clocks. The replay builds exactly what the runtime builds (Broker, MarketData,
Store, StrategyEngine with its runners and TradeTracker) on a SimTerminal that replays the bars in
stepped mode, and moves the clock instead of waiting for it. Nothing here decides a trade: the
engine does, on the bar the clock hands it, and the simulator fills it.

- A signal on the close of bar i is seen by the engine at the open of bar i + 1 (its feed notices
  the new bar) and filled there, at that open (ask for buys, bid for sells).
- Stops and targets are judged by the simulator on the high and low of every bar from the entry
  bar on, the stop first when both lie in one bar, a gap filled at the open (stops.py).
- A position still open after the last bar is closed by the engine at the last bar's close
  (``exit_reason`` "end").

Speed comes from not calling the engine on bars where it provably does nothing (replay_schedule.py)
and from the simulator fast-forwarding between those bars with one numpy search per open position
(``SimTerminal.advance_to``); the indicator cache is primed with each series computed once over the
whole history (TA-Lib is causal), so the runner reads O(1) views instead of computing per bar.
The store is a throwaway SQLite database in memory (same schema and code as the file): the user's
database is never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, Final

import numpy as np

from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.broker.sim.csvbars import describe_spacing, zoned_time
from mt5console.core.broker.sim.engine import ReplayData
from mt5console.core.broker.sim.symbols import SYMBOLS, symbols_named_in
from mt5console.core.events import Event, EventBus, Level, LogLine
from mt5console.core.market import MarketData
from mt5console.core.replay_report import ReplaySummary, ReplayTrade, summarize_trades, trades_from_deals
from mt5console.core.replay_schedule import Timetable
from mt5console.core.store import Store
from mt5console.core.strategy.engine import StrategyEngine
from mt5console.core.strategy.executor import ENTRY_BLOCKED
from mt5console.core.strategy.filters import unsupported_enabled_filters
from mt5console.core.strategy.indicators import FullHistory, IndicatorCache
from mt5console.core.strategy.model import FieldError, Strategy, StrategyError, parse_strategy
from mt5console.core.timeframes import TIMEFRAME_SECONDS

START_BALANCE: Final = 10_000.0
# MetaTrader's "Export bars" stamps bars in its trade server's time (often UTC+2 or +3), and the replay
# judges sessions in UTC: hours off, silently, unless the reader is told.
SERVER_TIME_NOTE: Final = (
    "these bars look like MetaTrader's own export (<DATE> and <TIME> columns), whose times are its trade "
    "server's, often UTC+2 or UTC+3, while sessions and the times shown are UTC: if the server's clock is "
    "not UTC, give --data-utc-offset HOURS"
)
SOURCE: Final = "replay"

# Called now and then with (bars replayed so far, bars in all).
Progress = Callable[[int, int], None]


class ReplayError(RuntimeError):
    """The engine reported an error during the replay (its trades would not be trustworthy)."""


class MarketOptionError(ValueError):
    """The ``symbol`` or ``timeframe`` given to the replay is wrong, not the strategy's file."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option  # "symbol" or "timeframe"
        self.problem = problem
        super().__init__(f"{option}: {problem}")


class UnrunnableStrategy(StrategyError):
    """A valid strategy the console cannot run: an enabled filter without its data (the news filter
    without an economic calendar), as ``mt5console check`` says."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    symbol: str
    timeframe: str
    digits: int  # the symbol's price digits, to show prices as the terminal does
    bars: int
    seconds: float  # wall time of the whole replay, reading the data included
    trades: tuple[ReplayTrade, ...]  # in closing order
    summary: ReplaySummary
    engine_turns: int  # the bars on which the engine was called (the others were fast-forwarded)
    # Series the engine's indicator cache had to compute (misses): with the primed full history at
    # most one per operand, however many bars; without it, one per operand per turn.
    indicator_misses: int
    refusals: tuple[Refusal, ...] = ()  # entries the engine refused, by reason (not in the JSON)
    notes: tuple[str, ...] = ()  # what the reader of the result should know about the data (not in the JSON)

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The object ``mt5console replay --json`` prints (INTERFACE.md "Replay")."""
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "bars": self.bars,
            "seconds": round(self.seconds, 6),
            "bars_per_second": round(self.bars_per_second, 1),
            "trades": [trade.to_json() for trade in self.trades],
            "summary": self.summary.to_json(),
        }


def with_market(strategy: Mapping[str, Any] | object, symbol: str | None, timeframe: str | None) -> object:
    """The strategy's JSON with its symbol and timeframe replaced by those given (a copy)."""
    if not isinstance(strategy, Mapping):
        return strategy  # parse_strategy names what is wrong with it
    definition = dict(strategy)
    if symbol is not None:
        definition["symbol"] = symbol
    if timeframe is not None:
        definition["timeframe"] = timeframe
    return definition


def parse_with_market(
    strategy: Mapping[str, Any] | object, symbol: str | None, timeframe: str | None
) -> tuple[object, Strategy]:
    """The strategy's JSON with the given symbol and timeframe, and its parsed model.

    A given symbol or timeframe the strategy format refuses raises MarketOptionError (the option is
    at fault, not the file); anything else wrong StrategyError; an enabled filter the console cannot
    run UnrunnableStrategy."""
    definition = with_market(strategy, symbol, timeframe)
    try:
        parsed = parse_strategy(definition)
    except StrategyError as error:
        given = {"symbol": symbol, "timeframe": timeframe}
        for fault in error.errors:
            if given.get(fault.path) is not None:
                raise MarketOptionError(fault.path, fault.message) from None
        raise
    unsupported = unsupported_enabled_filters(parsed.filters)
    if unsupported:
        # "newsFilter: why" -> the field rules.newsFilter and why, as the engine and check say it.
        raise UnrunnableStrategy(
            [FieldError(f"rules.{name}", why) for name, _, why in (t.partition(": ") for t in unsupported)]
        )
    return definition, parsed


def broker_base_symbol(symbol: str) -> str | None:
    """The simulator's symbol that ``symbol`` is with a broker's suffix (EURUSD.m, EURUSDm, EURUSD-ecn:
    EURUSD), or None."""
    upper = symbol.upper()
    bases = [name for name in SYMBOLS if upper.startswith(name) and len(upper) > len(name)]
    return max(bases, key=len) if bases else None


def check_replayed_symbol(symbol: str) -> None:
    """A suffixed symbol is refused, pointing at its base: a broker's suffix often marks another
    contract (micro lots, a raw spread with commission), so the base's specification is not taken
    for it silently."""
    if symbol in SYMBOLS:
        return
    base = broker_base_symbol(symbol)
    if base is not None:
        raise ValueError(
            f"the strategy trades {symbol}, {base} with a broker's suffix, and the replay has only {base}'s "
            f"specification (a suffixed symbol may be another contract: its lot size, spread or "
            f"commission); give --symbol {base} to replay the strategy as {base}"
        )


def check_data_offset(data: ReplayData, data_utc_offset: float | None) -> None:
    """An offset applies to times without a zone; a file whose times carry theirs would be shifted
    wrongly, so the offset is refused for it rather than applied silently."""
    if not data_utc_offset or isinstance(data, np.ndarray):
        return  # rates in memory are epoch seconds with no zone said: MetaTrader stamps them in server time
    found = zoned_time(data)
    if found is not None:
        line, text = found
        raise ValueError(
            f"{data}: line {line}: time {text!r} carries its zone; --data-utc-offset applies only to times "
            "without one (naive ISO, epoch seconds as MetaTrader's rates give them, its <DATE> and <TIME> "
            "export): leave it out for this file"
        )


def check_data_symbol(data: ReplayData, strategy_symbol: str, given_symbol: str | None) -> None:
    """Bars whose file is named after another symbol than the strategy's (and no symbol given): the
    replay would trade the strategy's symbol on another's prices, and say nothing."""
    if given_symbol is not None or isinstance(data, np.ndarray):
        return
    named = symbols_named_in(Path(data).name)
    if len(named) == 1 and named[0] != strategy_symbol:
        raise ValueError(
            f"{Path(data).name}: its name says {named[0]} bars, but the strategy trades {strategy_symbol}; "
            f"give --symbol {named[0]} to replay the strategy on these bars, or bars of {strategy_symbol}"
        )


def check_spacing(rates: np.ndarray, timeframe: str, data: ReplayData) -> None:
    """The bars must be ``timeframe`` bars: their smallest spacing is one bar of it."""
    if len(rates) < 2:
        return
    spacing = int(np.min(np.diff(rates["time"])))
    seconds = TIMEFRAME_SECONDS[timeframe]
    if spacing != seconds:
        where = str(data) if not isinstance(data, np.ndarray) else "the rates"
        raise ValueError(
            f"{where}: the bars are {describe_spacing(spacing)} apart, but the timeframe is {timeframe} "
            f"({seconds} s); give the timeframe of the data (--timeframe) or data of the strategy's timeframe"
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """Entries the engine refused for one reason (its text up to the first colon), how many times,
    and the first refusal in full: a replay without trades says why."""

    reason: str
    count: int
    example: str


class _Watch:
    """Collects the engine's error lines (a replay that went wrong must not pass for a result) and
    its refused entries."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._refused: dict[str, tuple[int, str]] = {}

    def __call__(self, event: Event) -> None:
        if not isinstance(event, LogLine):
            return
        if event.level is Level.ERROR:
            self.errors.append(f"{event.source}: {event.message}")
        elif event.message.startswith(ENTRY_BLOCKED):
            why = event.message[len(ENTRY_BLOCKED) :]
            reason = why.split(":", 1)[0]
            count, example = self._refused.get(reason, (0, why))
            self._refused[reason] = (count + 1, example)

    def refusals(self) -> tuple[Refusal, ...]:
        """Most frequent first."""
        found = [Refusal(reason, count, example) for reason, (count, example) in self._refused.items()]
        return tuple(sorted(found, key=lambda refusal: -refusal.count))


async def run_replay_async(
    strategy: Mapping[str, Any] | object,
    data: ReplayData,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    spread: int | None = None,
    progress: Progress | None = None,
    data_utc_offset: float | None = None,
) -> ReplayResult:
    """Replay ``strategy`` (its JSON) on ``data`` (a CSV path, or rates in the MetaTrader5 dtype).

    ``symbol`` and ``timeframe`` default to the strategy's; ``spread`` (points) applies to bars
    without one (default: the symbol's typical spread); ``data_utc_offset``: hours the bars' times
    are ahead of UTC (None: UTC, and a note when the file looks like MetaTrader's own export, whose
    times are its server's), for times without a zone only (naive ISO, epoch seconds): a file whose
    times carry theirs (an ISO offset or Z) is refused with a non-zero offset. Raises
    MarketOptionError for a bad ``symbol`` or ``timeframe``, StrategyError for a bad strategy
    (UnrunnableStrategy for one the console cannot run), ValueError for bad data (naming the file,
    line and field), ReplayError when the engine failed.
    """
    started = perf_counter()
    definition, parsed = parse_with_market(strategy, symbol, timeframe)
    check_data_symbol(data, parsed.symbol, symbol)
    check_replayed_symbol(parsed.symbol)
    check_data_offset(data, data_utc_offset)
    terminal = SimTerminal(
        seed=1,
        data=data,
        symbol=parsed.symbol,
        timeframe=parsed.timeframe,
        replay="stepped",
        spread=spread,
        balance=START_BALANCE,
        data_utc_offset=data_utc_offset or 0.0,
    )
    rates = terminal.replay_rates
    check_spacing(rates, parsed.timeframe, data)
    watch = _Watch()
    trades, turns, digits, computations = await _replay(terminal, parsed, definition, rates, progress, watch)
    return ReplayResult(
        symbol=parsed.symbol,
        timeframe=parsed.timeframe,
        digits=digits,
        bars=len(rates),
        seconds=perf_counter() - started,
        trades=trades,
        summary=summarize_trades(trades, START_BALANCE),
        engine_turns=turns,
        indicator_misses=computations,
        refusals=watch.refusals(),
        notes=_notes(terminal, data_utc_offset),
    )


def _notes(terminal: SimTerminal, data_utc_offset: float | None) -> tuple[str, ...]:
    """What the reader should know about the data: bars stamped in a server's time, read as UTC."""
    if data_utc_offset is None and terminal.replay_exported_by_metatrader:
        return (SERVER_TIME_NOTE,)
    return ()


def run_replay(
    strategy: Mapping[str, Any] | object,
    data: ReplayData,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    spread: int | None = None,
    progress: Progress | None = None,
    data_utc_offset: float | None = None,
) -> ReplayResult:
    """``run_replay_async`` on a fresh event loop, for callers without one (the benchmark, the CLI)."""
    return asyncio.run(
        run_replay_async(
            strategy,
            data,
            symbol=symbol,
            timeframe=timeframe,
            spread=spread,
            progress=progress,
            data_utc_offset=data_utc_offset,
        )
    )


async def _replay(
    terminal: SimTerminal,
    strategy: Strategy,
    definition: object,
    rates: np.ndarray,
    progress: Progress | None,
    watch: _Watch,
) -> tuple[tuple[ReplayTrade, ...], int, int, int]:
    """The replay proper: the trades, the engine's turns, the symbol's digits, the cache's misses."""
    symbol, timeframe = strategy.symbol, strategy.timeframe  # the engine validates the strategy again
    events = EventBus()
    events.subscribe(watch)
    broker = Broker(lambda: terminal, events=events, simulated=True, inline=True)
    store = Store.in_memory()  # thrown away at the end: never on disk
    try:
        await broker.connect()
        history = FullHistory(rates)
        cache = IndicatorCache()
        cache.prime(symbol, timeframe, history)
        market = MarketData(broker, events, (symbol,), light=True, publish_ticks=False)
        engine = StrategyEngine(broker, market, store, events, cache=cache)
        # The first bar opens before the strategy starts, as a live start happens on a running
        # market: the symbol then has a price (and a spread) when the engine reads its specification.
        terminal.open_next_bar()
        started = await engine.start(definition, source=SOURCE)
        runner = engine.runners[started.strategy_id]
        timetable = Timetable(runner.strategy, history, runner.spec.point)
        await market.poll_once()  # the feed's first look: loads the history, signals nothing
        turns = 0
        bar = 0
        while (turn := timetable.next_turn(bar, terminal.positions_total() != 0)) is not None:
            terminal.advance_to(turn)
            bar = turn
            await market.poll_once()
            turns += 1
            if watch.errors:
                raise ReplayError(f"the engine failed at bar {bar}: " + "; ".join(watch.errors))
            if progress is not None:
                progress(bar, len(rates))
        terminal.advance_to(len(rates))  # the remaining bars' stops and targets; now at the last close
        for runner in list(engine.runners.values()):
            await runner.close_all("end")
        await engine.tracker.sync(await broker.positions())
        if watch.errors:
            raise ReplayError("the engine failed at the end of the data: " + "; ".join(watch.errors))
        if progress is not None:
            progress(len(rates), len(rates))
        first = datetime.fromtimestamp(int(rates["time"][0]), UTC) - timedelta(days=1)
        last = datetime.fromtimestamp(int(rates["time"][-1]), UTC) + timedelta(days=1)
        deals = await broker.deals(first, last)
        return trades_from_deals(deals), turns, runner.spec.digits, engine.cache.misses
    finally:
        await broker.close()
        store.close()
