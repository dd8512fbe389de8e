"""The oracle: the benchmark's rules (``benchmarks.rules``) as a plain numpy + TA-Lib loop.

Written to be obviously right rather than fast; the peers' and our engine's trade counts are
compared with it. Per bar, in the order a live terminal sees them:

1. the entry signalled on the previous bar's close fills at this bar's open, at ask (bid + the
   row's spread in points);
2. every open position, the new one included, meets this bar's bid high/low: the stop first, then
   the target. A bar that opens beyond a level fills at its open (a gap), as a terminal and both
   peers fill it;
3. on this bar's close, a cross signals an entry for the next bar while fewer than
   ``MAX_POSITIONS`` positions remain open.

The EMAs are TA-Lib's over the whole series (so identical to a prefix's values at every bar).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import talib

from benchmarks.rules import (
    FAST_EMA,
    MAX_POSITIONS,
    POINT,
    SLOW_EMA,
    BenchTrade,
    ExitReason,
    stop_loss_price,
    take_profit_price,
)

REQUIRED_FIELDS: Final = ("open", "high", "low", "close", "spread")


@dataclass(slots=True)
class _OpenPosition:
    entry_index: int
    entry_price: float
    stop_loss: float
    take_profit: float


def cross_above_signals(close: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """True on bar i when EMA(fast) crossed above EMA(slow) between bars i-1 and i (closed bars)."""
    fast = talib.EMA(close, timeperiod=FAST_EMA)
    slow = talib.EMA(close, timeperiod=SLOW_EMA)
    signals = np.zeros(len(close), dtype=np.bool_)
    # A NaN (warm-up) makes every comparison False: no signal, never an error.
    signals[1:] = (fast[:-1] <= slow[:-1]) & (fast[1:] > slow[1:])
    return signals


def check_rates(rates: npt.NDArray[np.void]) -> None:
    """Raise ValueError unless ``rates`` is a 1-D array with the MT5 rates fields the rules read."""
    names = rates.dtype.names or ()
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if rates.ndim != 1 or missing:
        raise ValueError(
            f"rates must be a 1-D array in the MetaTrader5 rates dtype; missing fields {missing}, "
            f"ndim {rates.ndim}"
        )


def reference_trades(rates: npt.NDArray[np.void]) -> list[BenchTrade]:
    """Every trade of the benchmark's rules on ``rates`` (MT5 rates dtype), ordered by entry bar."""
    check_rates(rates)
    closes = np.ascontiguousarray(rates["close"], dtype=np.float64)
    return trades_from_signals(rates, cross_above_signals(closes))


def trades_from_signals(rates: npt.NDArray[np.void], signals: npt.NDArray[np.bool_]) -> list[BenchTrade]:
    """The position keeping of the rules, for entry ``signals`` given per bar (True = buy signal)."""
    check_rates(rates)
    if signals.shape != rates.shape:
        raise ValueError(f"signals must have one value per bar: {signals.shape} for {rates.shape} bars")
    opens = rates["open"].astype(np.float64).tolist()
    highs = rates["high"].astype(np.float64).tolist()
    lows = rates["low"].astype(np.float64).tolist()
    closes = rates["close"].astype(np.float64).tolist()
    spreads = (rates["spread"].astype(np.float64) * POINT).tolist()
    wanted = signals.astype(np.bool_).tolist()

    trades: list[BenchTrade] = []
    positions: list[_OpenPosition] = []
    entry_pending = False
    for bar in range(len(opens)):
        if entry_pending:
            ask = opens[bar] + spreads[bar]
            positions.append(_OpenPosition(bar, ask, stop_loss_price(ask), take_profit_price(ask)))
            entry_pending = False
        still_open: list[_OpenPosition] = []
        for position in positions:
            if lows[bar] <= position.stop_loss:
                exit_price = min(opens[bar], position.stop_loss)
                trades.append(_closed(position, bar, exit_price, "sl"))
            elif highs[bar] >= position.take_profit:
                exit_price = max(opens[bar], position.take_profit)
                trades.append(_closed(position, bar, exit_price, "tp"))
            else:
                still_open.append(position)
        positions = still_open
        # An entry needs a next bar to fill on: a signal on the last bar is never filled.
        is_last_bar = bar == len(opens) - 1
        entry_pending = wanted[bar] and len(positions) < MAX_POSITIONS and not is_last_bar

    last_bar = len(opens) - 1
    trades.extend(_closed(position, last_bar, closes[last_bar], "end") for position in positions)
    trades.sort(key=lambda trade: trade.entry_index)
    return trades


def _closed(position: _OpenPosition, bar: int, exit_price: float, reason: ExitReason) -> BenchTrade:
    return BenchTrade(
        entry_index=position.entry_index,
        entry_price=position.entry_price,
        exit_index=bar,
        exit_price=exit_price,
        reason=reason,
    )
