"""The peers: backtesting.py and backtrader running the benchmark's rules on the same bars.

Both follow ``benchmarks.rules`` as closely as their engines allow. What they share:

- Prices are bid and the spread is charged as a commission of half the spread per side: neither
  engine has a fixed-price spread (backtesting.py's ``spread`` is a rate of the price, backtrader
  has none), so orders fill at the bid open and a buy's stop and target are placed at the
  distances measured from the ask (bid open + spread), which makes them trigger exactly where
  ours do. Reported entry prices are bid + spread, i.e. the ask.
- A stop or target order is a fixed price given when the entry is ordered, one bar before the
  fill. To place it from the fill price, the strategy reads the next bar's open from an extra
  ``NextOpen`` column: the price the market order is known to fill at, used for nothing else.
- A signal on the last bar is not ordered (no next bar to fill on), as in the rules.

Differences left, also printed by ``python -m benchmarks``:

- backtesting.py closes the positions left at the end at the last bar's open, not its close
  (``finalize_trades``); counts are unaffected, the last trades' profits are.
- backtrader has no hedging: its buys add up to one net position, so each entry gets its own
  stop/target pair (an OCO pair submitted with the market order rather than ``buy_bracket``,
  whose children only become active on the bar after the fill and would skip the entry bar's
  high/low). Positions left at the end stay open in its broker; they are reported as closed at
  the last close.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Final

import backtrader as bt
import pandas as pd  # type: ignore[import-untyped]
import talib
from backtesting import Backtest, Strategy

from benchmarks.rules import (
    FAST_EMA,
    MAX_POSITIONS,
    SLOW_EMA,
    SPREAD,
    UNITS,
    BenchTrade,
    ExitReason,
    stop_loss_price,
    take_profit_price,
)

# Ample cash: no order of the benchmark may ever be refused for margin.
STARTING_CASH: Final = 1_000_000.0
NEXT_OPEN: Final = "NextOpen"

BACKTESTING_PY_NOTES: Final = (
    "spread charged as commission (half per side); fills at bid open, SL/TP placed from the ask",
    "SL/TP prices read from a NextOpen column (the known fill price of the next bar's market order)",
    "positions left at the end closed at the last bar's open (finalize_trades), not its close",
)
BACKTRADER_NOTES: Final = (
    "spread charged as commission (half per side); fills at bid open, SL/TP placed from the ask",
    "SL/TP prices read from a NextOpen column (the known fill price of the next bar's market order)",
    "one net position: each entry gets its own OCO stop/limit pair (buy_bracket children would "
    "only be active from the bar after the fill)",
    "positions left at the end stay open in its broker; counted as closed at the last close",
)


@dataclass(frozen=True)
class PeerRun:
    """A peer's trades (ordered by entry bar) and the seconds its indicators and loop took."""

    trades: list[BenchTrade]
    seconds: float


def with_next_open(frame: pd.DataFrame) -> pd.DataFrame:
    """The bars plus ``NextOpen``: the open of the following bar (NaN on the last bar)."""
    prepared = frame.copy()
    prepared[NEXT_OPEN] = prepared["Open"].shift(-1)
    return prepared


def _half_spread_commission(order_size: float, price: float) -> float:
    return abs(order_size) * SPREAD / 2


# --- backtesting.py ----------------------------------------------------------------------------


class _BacktestingPyEmaCross(Strategy):  # type: ignore[misc]
    def init(self) -> None:
        self.fast = self.I(talib.EMA, self.data.Close, timeperiod=FAST_EMA)
        self.slow = self.I(talib.EMA, self.data.Close, timeperiod=SLOW_EMA)

    def next(self) -> None:
        if not (self.fast[-2] <= self.slow[-2] and self.fast[-1] > self.slow[-1]):
            return
        if len(self.trades) >= MAX_POSITIONS:
            return
        next_open = float(self.data.NextOpen[-1])
        if math.isnan(next_open):
            return
        ask = next_open + SPREAD
        # backtesting.py checks SL < this close < TP when ordering: a gap of over 24 pips up or 39
        # down into the next open would raise here. The tiled sample has none on a signal bar (its
        # seams are gapless); other data might, and would fail loudly rather than trade otherwise.
        self.buy(size=UNITS, sl=stop_loss_price(ask), tp=take_profit_price(ask))


def run_backtesting_py(frame: pd.DataFrame) -> PeerRun:
    """The rules on backtesting.py (0.6.x); times the Backtest's creation and run."""
    data = with_next_open(frame)
    start = perf_counter()
    backtest = Backtest(
        data,
        _BacktestingPyEmaCross,
        cash=STARTING_CASH,
        spread=0.0,
        commission=_half_spread_commission,
        trade_on_close=False,
        hedging=True,
        exclusive_orders=False,
        finalize_trades=True,
    )
    with warnings.catch_warnings():
        # backtesting.py 0.6 calls pandas APIs that pandas 3 deprecates: its warnings, not ours.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"backtesting\.")
        stats = backtest.run()
    seconds = perf_counter() - start
    return PeerRun(trades=_backtesting_py_trades(stats["_trades"]), seconds=seconds)


def _backtesting_py_trades(table: pd.DataFrame) -> list[BenchTrade]:
    trades = []
    for row in table.itertuples(index=False):
        reason: ExitReason = "end"
        if row.ExitPrice <= row.SL:
            reason = "sl"
        elif row.ExitPrice >= row.TP:
            reason = "tp"
        trades.append(
            BenchTrade(
                entry_index=int(row.EntryBar),
                entry_price=float(row.EntryPrice) + SPREAD,
                exit_index=int(row.ExitBar),
                exit_price=float(row.ExitPrice),
                reason=reason,
            )
        )
    trades.sort(key=lambda trade: trade.entry_index)
    return trades


# --- backtrader --------------------------------------------------------------------------------


class _NextOpenPandasData(bt.feeds.PandasData):  # type: ignore[misc]
    lines = ("next_open",)
    params = (
        ("datetime", None),
        ("open", "Open"),
        ("high", "High"),
        ("low", "Low"),
        ("close", "Close"),
        ("volume", "Volume"),
        ("openinterest", None),
        ("next_open", NEXT_OPEN),
    )


@dataclass
class _OpenBracket:
    entry_index: int = -1
    entry_price: float = math.nan
    closed: bool = False


@dataclass
class _BacktraderLedger:
    """What the strategy saw: the finished trades and the entries still waiting for their exit."""

    trades: list[BenchTrade] = field(default_factory=list)
    open_by_exit_ref: dict[int, _OpenBracket] = field(default_factory=dict)
    open_by_entry_ref: dict[int, _OpenBracket] = field(default_factory=dict)


class _BacktraderEmaCross(bt.Strategy):  # type: ignore[misc]
    params = (("ledger", None),)

    def __init__(self) -> None:
        self.fast = bt.talib.EMA(self.data.close, timeperiod=FAST_EMA)
        self.slow = bt.talib.EMA(self.data.close, timeperiod=SLOW_EMA)
        self.ledger: _BacktraderLedger = self.p.ledger
        self.open_positions = 0

    def next(self) -> None:
        if not (self.fast[-1] <= self.slow[-1] and self.fast[0] > self.slow[0]):
            return
        if self.open_positions >= MAX_POSITIONS:
            return
        next_open = float(self.data.next_open[0])
        if math.isnan(next_open):
            return
        ask = next_open + SPREAD
        # Submitted in this order so that the broker fills the entry at the open first, then meets
        # the bar's low with the stop before its high with the target (the stop first).
        entry = self.buy(size=UNITS)
        stop = self.sell(size=UNITS, exectype=bt.Order.Stop, price=stop_loss_price(ask))
        target = self.sell(size=UNITS, exectype=bt.Order.Limit, price=take_profit_price(ask), oco=stop)
        bracket = _OpenBracket()
        self.ledger.open_by_entry_ref[entry.ref] = bracket
        self.ledger.open_by_exit_ref[stop.ref] = bracket
        self.ledger.open_by_exit_ref[target.ref] = bracket
        # The market order fills on the next bar's open, before this strategy sees that bar.
        self.open_positions += 1

    def notify_order(self, order: Any) -> None:
        if order.status == order.Canceled:
            # The other half of an OCO pair whose stop or target filled.
            self.ledger.open_by_exit_ref.pop(order.ref, None)
            return
        if order.status != order.Completed:
            return
        bar = len(self.data) - 1
        entry = self.ledger.open_by_entry_ref.pop(order.ref, None)
        if entry is not None:
            entry.entry_index = bar
            entry.entry_price = float(order.executed.price) + SPREAD
            return
        bracket = self.ledger.open_by_exit_ref.pop(order.ref, None)
        if bracket is None or bracket.closed:
            return
        bracket.closed = True
        reason: ExitReason = "sl" if order.exectype == bt.Order.Stop else "tp"
        self.ledger.trades.append(
            BenchTrade(bracket.entry_index, bracket.entry_price, bar, float(order.executed.price), reason)
        )
        self.open_positions -= 1

    def stop(self) -> None:
        last_bar = len(self.data) - 1
        last_close = float(self.data.close[0])
        still_open = {id(bracket): bracket for bracket in self.ledger.open_by_exit_ref.values()}
        for bracket in still_open.values():
            if bracket.entry_index >= 0 and not bracket.closed:
                self.ledger.trades.append(
                    BenchTrade(bracket.entry_index, bracket.entry_price, last_bar, last_close, "end")
                )


class _HalfSpreadCommission(bt.CommInfoBase):  # type: ignore[misc]
    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        return _half_spread_commission(size, price)


def run_backtrader(frame: pd.DataFrame) -> PeerRun:
    """The rules on backtrader (1.9.78); times the Cerebro's set-up and run (feed preload included)."""
    data = with_next_open(frame)
    ledger = _BacktraderLedger()
    start = perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(_NextOpenPandasData(dataname=data))
    cerebro.addstrategy(_BacktraderEmaCross, ledger=ledger)
    cerebro.broker.setcash(STARTING_CASH)
    cerebro.broker.addcommissioninfo(_HalfSpreadCommission())
    cerebro.run()
    seconds = perf_counter() - start
    trades = sorted(ledger.trades, key=lambda trade: trade.entry_index)
    return PeerRun(trades=trades, seconds=seconds)


def exit_reason_counts(trades: list[BenchTrade]) -> dict[ExitReason, int]:
    """How many trades ended at the stop, the target and the end of the data."""
    counts: dict[ExitReason, int] = {"sl": 0, "tp": 0, "end": 0}
    for trade in trades:
        counts[trade.reason] += 1
    return counts


__all__ = [
    "BACKTESTING_PY_NOTES",
    "BACKTRADER_NOTES",
    "PeerRun",
    "exit_reason_counts",
    "run_backtesting_py",
    "run_backtrader",
    "with_next_open",
]
