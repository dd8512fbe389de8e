"""The benchmark's bars: backtesting.py's EURUSD H1 sample tiled to any length, in three shapes.

The sample (~5000 bars) is repeated block after block; each copy is shifted in price so that its
first open equals the previous copy's last close (no artificial gap at the seams) and in time so
that its first bar comes one hour after the previous copy's last one. An additive shift keeps
every pip distance of the sample, so each copy trades like the first one apart from the indicator
warm-up. The same bars are given as a pandas DataFrame (the peers), as a numpy array in the
MetaTrader5 rates dtype (our engine) and as the CSV that ``mt5console replay`` reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

from benchmarks.rules import POINT, SPREAD_POINTS
from mt5console.core.broker.rates import RATES_DTYPE

PRICE_COLUMNS: Final = ("Open", "High", "Low", "Close")
FRAME_COLUMNS: Final = (*PRICE_COLUMNS, "Volume")
CSV_COLUMNS: Final = ("time", "open", "high", "low", "close", "volume", "spread")
DEFAULT_BARS: Final = 100_000
# Prices are rounded to the symbol's digits after shifting, so that the seams match exactly.
_PRICE_DIGITS: Final = round(-np.log10(POINT))
_ONE_HOUR: Final = pd.Timedelta(hours=1)

Rates = npt.NDArray[np.void]


@dataclass(frozen=True)
class BenchBars:
    """The same bars twice: ``frame`` (Open..Volume, UTC DatetimeIndex) and ``rates`` (MT5 dtype)."""

    frame: pd.DataFrame
    rates: Rates

    def __len__(self) -> int:
        return len(self.rates)


def load_eurusd() -> pd.DataFrame:
    """backtesting.py's EURUSD H1 sample with its times read as UTC."""
    from backtesting.test import EURUSD

    frame = EURUSD.loc[:, list(FRAME_COLUMNS)].copy()
    frame.index = pd.DatetimeIndex(frame.index).tz_localize("UTC")
    frame.index.name = "time"
    return frame


def tile_bars(block: pd.DataFrame, n_bars: int) -> pd.DataFrame:
    """``n_bars`` bars made of copies of ``block``, continuous in price and hourly at the seams."""
    if isinstance(n_bars, bool) or not isinstance(n_bars, int) or n_bars < 1:
        raise ValueError(f"n_bars must be a whole number of bars >= 1, not {n_bars!r}")
    missing = [column for column in FRAME_COLUMNS if column not in block.columns]
    if missing:
        raise ValueError(f"the block lacks the columns {missing}; it needs {list(FRAME_COLUMNS)}")
    if len(block) < 2:
        raise ValueError(f"the block needs at least 2 bars to be tiled, it has {len(block)}")
    index = pd.DatetimeIndex(block.index)
    if index.tz is None:
        raise ValueError("the block's times must be timezone aware (UTC)")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError("the block's times must be strictly increasing")

    copies = -(-n_bars // len(block))
    copy_number = np.repeat(np.arange(copies), len(block))[:n_bars]
    position = np.tile(np.arange(len(block)), copies)[:n_bars]

    price_step = float(block["Close"].iloc[-1]) - float(block["Open"].iloc[0])
    shift = copy_number * price_step
    columns: dict[str, object] = {
        name: np.round(block[name].to_numpy(dtype=np.float64)[position] + shift, _PRICE_DIGITS)
        for name in PRICE_COLUMNS
    }
    columns["Volume"] = block["Volume"].to_numpy()[position]

    copy_seconds = (index[-1] - index[0] + _ONE_HOUR) // pd.Timedelta(seconds=1)
    times = index[position] + pd.to_timedelta(copy_number * copy_seconds, unit="s")
    return pd.DataFrame(columns, index=pd.DatetimeIndex(times, name="time"))


def to_mt5_rates(frame: pd.DataFrame, spread_points: int = SPREAD_POINTS) -> Rates:
    """The bars of ``frame`` as ``copy_rates_*`` returns them: epoch seconds, tick volume, spread."""
    if spread_points < 0:
        raise ValueError(f"spread_points must be >= 0, not {spread_points}")
    index = pd.DatetimeIndex(frame.index)
    if index.tz is None:
        raise ValueError("the frame's times must be timezone aware (UTC)")
    rates = np.zeros(len(frame), dtype=RATES_DTYPE)
    rates["time"] = (index - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    for name in PRICE_COLUMNS:
        rates[name.lower()] = frame[name].to_numpy(dtype=np.float64)
    rates["tick_volume"] = frame["Volume"].to_numpy(dtype=np.uint64)
    rates["spread"] = spread_points
    return rates


def bench_bars(n_bars: int = DEFAULT_BARS, spread_points: int = SPREAD_POINTS) -> BenchBars:
    """The benchmark's data set: the EURUSD sample tiled to ``n_bars`` bars, in both shapes."""
    frame = tile_bars(load_eurusd(), n_bars)
    return BenchBars(frame=frame, rates=to_mt5_rates(frame, spread_points))


def write_replay_csv(
    frame: pd.DataFrame, path: str | os.PathLike[str], spread_points: int = SPREAD_POINTS
) -> None:
    """Write the bars as ``mt5console replay --data`` reads them: time (epoch s, UTC),ohlc,volume,spread."""
    rates = to_mt5_rates(frame, spread_points)
    table = pd.DataFrame(
        {
            "time": rates["time"],
            "open": rates["open"],
            "high": rates["high"],
            "low": rates["low"],
            "close": rates["close"],
            "volume": rates["tick_volume"],
            "spread": rates["spread"],
        },
        columns=list(CSV_COLUMNS),
    )
    # pandas writes floats in their shortest exact form: the replay reads back the very prices the
    # peers were given.
    table.to_csv(path, index=False)
