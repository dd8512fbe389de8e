"""The replayed bars as MetaTrader5 rates rows, served the way copy_rates_from_pos serves them.

What a moment reveals of the replay is one number: the index of its last tick (bar b's ticks are
``TICKS_PER_BAR * b`` onwards, in time order). The bars before that tick's bar are complete; its
own bar is complete once its close tick (its last) is seen, else it is forming and shows its ticks
so far. So a copy_rates_from_pos needs no search: the rows are a slice, copied as raw memory.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.broker.sim.bar_prices import TICKS_PER_BAR
from mt5console.core.broker.sim.feed import Bars

Rates = npt.NDArray[np.void]
# A rates row as one opaque item: copying rows this way is a plain memory copy, several times
# faster than numpy's field-by-field copy of the (packed) structured rates dtype.
RATES_ROW: Final = np.dtype((np.void, RATES_DTYPE.itemsize))


class ReplayRates:
    """Rates rows of the replayed bars, complete and as they look at their open, built once (the
    bars never change, so neither do they)."""

    def __init__(self, bars: Bars) -> None:
        self._bars = bars
        self._complete = bars.to_rates().view(RATES_ROW)
        # Each bar as it looks once its open tick alone is seen: where a stepped replay always
        # finds the forming bar. The same numbers as forming(bar, 1) (volume * 1 / 4, rounded up).
        opens, share = bars.open, np.ceil(bars.volume / TICKS_PER_BAR).astype(np.int64)
        opening = Bars(bars.time, opens, opens, opens, opens, share, bars.spread)
        self._opening = opening.to_rates().view(RATES_ROW)

    def __len__(self) -> int:
        return len(self._complete)

    def copy(self, start: int, stop: int) -> Rates:
        """Complete rows [start, stop), in a new array of their own."""
        rates = np.empty(stop - start, dtype=RATES_DTYPE)
        rates.view(RATES_ROW)[:] = self._complete[start:stop]
        return rates

    def from_pos(self, last_tick: int, start_pos: int, count: int) -> Rates:
        """The ``count`` rows before the ``start_pos`` newest of those revealed once tick
        ``last_tick`` is (-1: none), the forming bar's row holding its ticks so far; a new array."""
        bar, position = divmod(last_tick, TICKS_PER_BAR)
        seen, revealed = position + 1, bar + 1
        stop = max(revealed - start_pos, 0)
        rates = self.copy(max(stop - count, 0), stop)
        if seen == TICKS_PER_BAR or stop != revealed or not len(rates):
            return rates  # the newest row served is a complete bar
        if seen == 1:
            rates.view(RATES_ROW)[-1] = self._opening[bar]
        else:
            _, high, low, close, volume = self.forming(bar, seen)
            # The row as a tuple in RATES_DTYPE's field order, written back at once (several
            # times faster than setting its fields one by one).
            time, open_, _, _, _, _, spread, real_volume = rates.item(-1)
            rates[-1] = (time, open_, high, low, close, volume, spread, real_volume)
        return rates

    def forming(self, bar: int, seen: int) -> tuple[float, float, float, float, int]:
        """Open, high, low, close and tick volume of bar ``bar`` made of its first ``seen`` ticks
        (1 to TICKS_PER_BAR - 1: it is forming); its tick volume is shared out evenly over its ticks."""
        bars = self._bars
        open_, high, low = bars.open.item(bar), bars.high.item(bar), bars.low.item(bar)
        # The bar's ticks before its close (bar_prices.py): the open, then the low and the high,
        # the high first on a bearish bar.
        path = (open_, low, high) if bars.close.item(bar) >= open_ else (open_, high, low)
        bids = path[:seen]
        volume = math.ceil(bars.volume.item(bar) * seen / TICKS_PER_BAR)
        return bids[0], max(bids), min(bids), bids[-1], volume
