"""Symbols and bars for the strategy's pure tests: hand-made specs and the real EURUSD H1 sample."""

from __future__ import annotations

import dataclasses

import numpy as np
from backtesting.test import EURUSD as EURUSD_SAMPLE

from mt5console.core.broker.models import SymbolSpec
from mt5console.core.broker.rates import RATES_DTYPE


def make_spec(name: str, digits: int, point: float, pip: float, **changes: object) -> SymbolSpec:
    """A symbol of a USD account whose tick is worth 1.00 unless ``changes`` say otherwise."""
    spec = SymbolSpec(
        name=name, description=name, digits=digits, point=point, pip=pip, contract_size=100_000.0,
        tick_size=point, tick_value=1.0, volume_min=0.01, volume_max=100.0, volume_step=0.01,
        stops_level=0, spread=12, currency_base=name[:3], currency_profit=name[3:], currency_margin=name[:3],
        trade_mode=4, filling_mode=1,
    )  # fmt: skip
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


# A USD account: EURUSD 1 lot = 100,000 EUR, one tick (0.00001) is worth 1.00 USD.
EURUSD = make_spec("EURUSD", 5, 0.00001, 0.0001)
# USDJPY at 149.25: one tick (0.001) on 100,000 USD is 100 JPY = 0.67 USD.
USDJPY = make_spec("USDJPY", 3, 0.001, 0.01, tick_value=0.67)


def eurusd_rates(count: int | None = None) -> np.ndarray:
    """The EURUSD H1 bars shipped with backtesting.py (the first ``count``), as MetaTrader5 rates."""
    frame = EURUSD_SAMPLE if count is None else EURUSD_SAMPLE.iloc[:count]
    bars = np.zeros(len(frame), dtype=RATES_DTYPE)
    bars["time"] = frame.index.to_numpy(dtype="datetime64[s]").astype(np.int64)
    for column in ("open", "high", "low", "close"):
        bars[column] = frame[column.capitalize()].to_numpy(dtype=np.float64)
    bars["tick_volume"] = frame["Volume"].to_numpy(dtype=np.uint64)
    return bars
