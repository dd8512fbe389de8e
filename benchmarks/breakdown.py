"""Where our engine's time goes in the benchmark, layer by layer, and what SQLite alone costs.

One more replay of the seed strategy after the timed ones, this time with probes: every call into
the simulated terminal and every call into the store is timed, and every statement the store runs on
its direct connection (trades and deals) is recorded with its parameters. Those statements are then
run again, bare, on a fresh in-memory store of the same schema: SQLite's own work for these trades
with no Python of ours around it. That is a floor: no change to our code goes below it while every
trade and deal is stored as it happens, which the live path must do and the replay is the live path.

The probes cost time themselves (a wrapper per call, outside the intervals they measure), so the
probed run is slower than the timed ones: "the engine and the rest" is the best timed run less the
terminal's and the store's measured time.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any
from unittest import mock

from benchmarks.data import BenchBars
from benchmarks.rules import SYMBOL, TIMEFRAME, seed_strategy_json
from mt5console.core import replay as replay_module
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.store import Store

# (sql, parameters, executemany?) as the store gave them to its cursor.
Statement = tuple[str, Any, bool]


@dataclass(frozen=True)
class Breakdown:
    """Seconds of one probed replay, split by layer; ``sqlite_floor`` is the bare statements' run.
    ``timed`` is the best unprobed run of the same replay (the contender's time)."""

    timed: float
    probed: float
    terminal: float
    terminal_calls: int
    store: float
    store_calls: int
    sqlite_floor: float
    statements: int
    trades: int

    @property
    def rest(self) -> float:
        """The engine itself: the market poll, evaluation, sizing, the broker adapter, the tracker and
        its events (the best timed run less what the terminal and the store took of the probed one)."""
        return max(0.0, self.timed - self.terminal - self.store)

    def per_trade_us(self, seconds: float) -> float | None:
        return None if self.trades == 0 else seconds / self.trades * 1e6


class _Stopwatch:
    """Adds up the time spent inside the outermost of the calls it wraps (a call the wrapped object
    makes to itself through a wrapper is not counted twice)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            start = perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += perf_counter() - start
                self.calls += 1
                self._depth -= 1

        return timed


def _wrap_methods(target: object, stopwatch: _Stopwatch, *, skip: frozenset[str] = frozenset()) -> None:
    """Put each public method of ``target`` behind ``stopwatch``, on the instance itself (an attribute
    of the instance is found before its class's: no proxy and its lookups in the way)."""
    for name in dir(type(target)):
        if name.startswith("_") or name in skip:
            continue
        attribute = getattr(target, name)
        if callable(attribute) and getattr(attribute, "__self__", None) is target:
            setattr(target, name, stopwatch.wrap(attribute))


class _RecordingCursor:
    """The store's cursor, keeping every statement with its parameters before running it."""

    def __init__(self, cursor: sqlite3.Cursor, statements: list[Statement]) -> None:
        self._cursor = cursor
        self._statements = statements

    def execute(self, sql: str, parameters: Any = ()) -> _RecordingCursor:
        self._statements.append((sql, tuple(parameters), False))
        self._cursor.execute(sql, parameters)
        return self

    def executemany(self, sql: str, rows: Iterable[Any]) -> _RecordingCursor:
        listed = [tuple(row) for row in rows]
        self._statements.append((sql, listed, True))
        self._cursor.executemany(sql, listed)
        return self

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


def _direct_cursor(store: Store) -> Any:
    """The store's direct connection and its cursor (private: this is a measuring instrument)."""
    direct = store._direct
    return direct, direct._cursor


def _probe_store(store: Store, stopwatch: _Stopwatch, statements: list[Statement]) -> Store:
    _wrap_methods(store, stopwatch, skip=frozenset({"close", "in_memory"}))
    direct, cursor = _direct_cursor(store)
    direct._cursor = _RecordingCursor(cursor, statements)
    return store


@contextmanager
def _probes(
    terminal: _Stopwatch, store: _Stopwatch, statements: list[Statement], strategies: list[tuple[Any, ...]]
) -> Iterator[None]:
    """The replay's terminal and store probed; ``strategies`` gets the store's strategy rows as it closes."""
    make_terminal, make_store = SimTerminal, Store.in_memory

    def probed_terminal(*args: Any, **kwargs: Any) -> SimTerminal:
        made: SimTerminal = terminal.wrap(make_terminal)(*args, **kwargs)  # loading the bars is its work too
        _wrap_methods(made, terminal)
        return made

    def probed_store() -> Store:
        made = make_store()
        _, cursor = _direct_cursor(made)  # the bare one, to read the strategies without recording it
        opened = _probe_store(made, store, statements)
        close = opened.close

        def keep_strategies_then_close() -> None:
            strategies.extend(cursor.execute("SELECT * FROM strategies").fetchall())
            close()

        opened.close = keep_strategies_then_close  # type: ignore[method-assign]
        return opened

    with (
        mock.patch.object(replay_module, "SimTerminal", probed_terminal),
        mock.patch.object(Store, "in_memory", staticmethod(probed_store)),
    ):
        yield


def bare_statements_seconds(statements: list[Statement], strategies: list[tuple[Any, ...]]) -> float:
    """The recorded statements run again on a fresh in-memory store holding the same strategies (the
    trades' foreign key needs them), straight on its cursor: SQLite's work and a loop, nothing else."""
    fresh = Store.in_memory()
    try:
        _, cursor = _direct_cursor(fresh)
        if strategies:
            places = ", ".join("?" * len(strategies[0]))
            cursor.executemany(f"INSERT INTO strategies VALUES ({places})", strategies)
        start = perf_counter()
        for sql, parameters, many in statements:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters).fetchall()  # a SELECT does its work as it is fetched
        return perf_counter() - start
    finally:
        fresh.close()


def layer_breakdown(bars: BenchBars, timed: float) -> Breakdown:
    """One probed replay of the seed strategy on ``bars``, and the bare run of its statements;
    ``timed``: the best unprobed time of that replay."""
    terminal, store = _Stopwatch(), _Stopwatch()
    statements: list[Statement] = []
    strategies: list[tuple[Any, ...]] = []
    # The peers ran before and left garbage in cycles; collected now, not in the middle of our run.
    gc.collect()
    with _probes(terminal, store, statements, strategies):
        start = perf_counter()
        strategy = seed_strategy_json()
        result = replay_module.run_replay(strategy, bars.rates, symbol=SYMBOL, timeframe=TIMEFRAME)
        probed = perf_counter() - start
    return Breakdown(
        timed=timed,
        probed=probed,
        terminal=terminal.seconds,
        terminal_calls=terminal.calls,
        store=store.seconds,
        store_calls=store.calls,
        sqlite_floor=bare_statements_seconds(statements, strategies),
        statements=len(statements),
        trades=len(result.trades),
    )
