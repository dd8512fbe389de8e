"""The one place where what ``make bench`` times is registered.

A contender is a function taking the bars and returning ``(trade_count, seconds)``; it times only
its own indicators and loop (the bars are already in memory). Our engine is one more contender:
while ``mt5console.core.replay.run_replay`` does not exist, it is listed as not available, plainly,
and never replaced by anything else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Final

from benchmarks.data import BenchBars
from benchmarks.peers import BACKTESTING_PY_NOTES, BACKTRADER_NOTES, run_backtesting_py, run_backtrader
from benchmarks.rules import SYMBOL, TIMEFRAME, seed_strategy_json

MT5CONSOLE: Final = "mt5console"
BACKTESTING_PY: Final = "backtesting.py"
BACKTRADER: Final = "backtrader"
REPLAY_MODULE: Final = "mt5console.core.replay"
REPLAY_FUNCTION: Final = "run_replay"

ContenderRun = Callable[[BenchBars], tuple[int, float]]


@dataclass(frozen=True)
class Contender:
    """A named run function, or ``run=None`` with the reason it cannot run (``unavailable``)."""

    name: str
    run: ContenderRun | None
    notes: tuple[str, ...] = ()
    unavailable: str = ""


def find_run_replay() -> Callable[..., Any] | None:
    """Our engine's replay entry point, or None while it has not been written.

    Only the module's own absence means "not yet": an import error inside an existing module is a
    bug of that module and is raised as is.
    """
    try:
        module = importlib.import_module(REPLAY_MODULE)
    except ModuleNotFoundError as error:
        if error.name == REPLAY_MODULE:
            return None
        raise
    run_replay = getattr(module, REPLAY_FUNCTION, None)
    return run_replay if callable(run_replay) else None


def mt5console_contender() -> Contender:
    """The live engine replaying the seed strategy on the MT5-dtype bars, once its replay exists."""
    run_replay = find_run_replay()
    if run_replay is None:
        return Contender(
            MT5CONSOLE,
            run=None,
            unavailable=f"not available yet: {REPLAY_MODULE}.{REPLAY_FUNCTION} does not exist",
        )
    replay = run_replay

    def run(bars: BenchBars) -> tuple[int, float]:
        strategy = seed_strategy_json()
        start = perf_counter()
        result = replay(strategy, bars.rates, symbol=SYMBOL, timeframe=TIMEFRAME)
        seconds = perf_counter() - start
        return len(result.trades), seconds

    return Contender(
        MT5CONSOLE,
        run=run,
        notes=(
            f"none: the live engine itself on the simulated terminal ({REPLAY_MODULE}.{REPLAY_FUNCTION}), "
            "trade tracker and its SQLite store included (the replay's store is an in-memory SQLite "
            "database: same schema and code, thrown away at the end)",
        ),
    )


def _backtesting_py(bars: BenchBars) -> tuple[int, float]:
    result = run_backtesting_py(bars.frame)
    return len(result.trades), result.seconds


def _backtrader(bars: BenchBars) -> tuple[int, float]:
    result = run_backtrader(bars.frame)
    return len(result.trades), result.seconds


def registered_contenders() -> list[Contender]:
    """Every contender, ours first; the peers are always available (they are bench dependencies)."""
    return [
        mt5console_contender(),
        Contender(BACKTESTING_PY, run=_backtesting_py, notes=BACKTESTING_PY_NOTES),
        Contender(BACKTRADER, run=_backtrader, notes=BACKTRADER_NOTES),
    ]
