"""The benchmarked strategy, defined once: the seed's EMA 9/21 cross, buy only, SL 25 / TP 40 pips.

Every contender (the reference loop, the peers and our engine) reads its numbers from here, so a
change of rule cannot leave one of them behind. The rules, as our engine applies them
(STRATEGY_FORMAT.md and INTERFACE.md "Replay"):

- entry: buy when EMA(9) crosses above EMA(21) on closed bars (``ema9[1] <= ema21[1]`` and
  ``ema9[0] > ema21[0]``, TA-Lib values), at most one entry per bar;
- filled at the open of the next bar at ask = bid + spread (a fixed 1.0 pip here);
- stop 25 pips below and target 40 pips above the fill, checked on the bid high/low of every bar
  from the entry bar on, the stop first when both lie inside one bar;
- at most 3 positions open at once; a position still open after the last bar closes at its close.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

SYMBOL: Final = "EURUSD"
TIMEFRAME: Final = "H1"
POINT: Final = 0.00001
PIP: Final = 0.0001
SPREAD_POINTS: Final = 10
SPREAD: Final = SPREAD_POINTS * POINT
FAST_EMA: Final = 9
SLOW_EMA: Final = 21
STOP_LOSS_PIPS: Final = 25
TAKE_PROFIT_PIPS: Final = 40
MAX_POSITIONS: Final = 3
LOT_SIZE: Final = 0.01
UNITS_PER_LOT: Final = 100_000
UNITS: Final = round(LOT_SIZE * UNITS_PER_LOT)

ExitReason = Literal["sl", "tp", "end"]


@dataclass(frozen=True, slots=True)
class BenchTrade:
    """One closed position, as every contender that can tell reports it (bar indices, bid/ask prices)."""

    entry_index: int
    entry_price: float
    exit_index: int
    exit_price: float
    reason: ExitReason


def stop_loss_price(entry_price: float) -> float:
    """The stop of a buy filled at ``entry_price`` (the ask)."""
    return entry_price - STOP_LOSS_PIPS * PIP


def take_profit_price(entry_price: float) -> float:
    """The target of a buy filled at ``entry_price`` (the ask)."""
    return entry_price + TAKE_PROFIT_PIPS * PIP


def seed_strategy_json() -> dict[str, Any]:
    """The strategy in STRATEGY_FORMAT.md, as our engine's replay receives it.

    Only what the rules above need: the seed's session and spread filters are left out (disabled),
    because the peers have no equivalent and the benchmark compares the same rules everywhere.
    """
    return {
        "strategyId": "bench_ema_9_21",
        "strategyName": "Benchmark EMA 9/21 cross",
        "symbol": SYMBOL,
        "timeframe": TIMEFRAME,
        "rules": {
            "entry": {
                "side": "buy",
                "logic": "AND",
                "conditions": [
                    {
                        "indicator": f"ema_{FAST_EMA}",
                        "condition": "crosses_above",
                        "value": f"ema_{SLOW_EMA}",
                    }
                ],
            },
            "exit": {
                "stopLoss": {"type": "pips", "value": STOP_LOSS_PIPS},
                "takeProfit": {"type": "pips", "value": TAKE_PROFIT_PIPS},
            },
            "riskManagement": {"lotSize": LOT_SIZE, "maxPositions": MAX_POSITIONS},
        },
    }
