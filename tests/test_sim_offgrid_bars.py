"""Replayed bars off their timeframe's boundaries (H1 bars stamped at :30, as some brokers' and
tools' exports are) are served as a real terminal serves its history: the bars as stored, with
their own open times, and ``count`` of them back from ``start_pos`` as long as there are any.

Each answer is checked against what the bars themselves say and against the same bars moved onto
the boundaries (30 minutes earlier), whose answers must be the same but for the times.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim.feed import EARLIEST
from tests.helpers import WEDNESDAY, Clock, stepped_eurusd_h1, walked_h1_bars

HOUR = 3600
HALF_HOUR = 1800
DAY = 86_400
FIRST_OFF_GRID = int(datetime(2024, 1, 2, 9, 30, tzinfo=UTC).timestamp())  # a Tuesday, 09:30
BARS = 30


def hourly_bars(first: int = FIRST_OFF_GRID, count: int = BARS, *, seed: int = 5) -> np.ndarray:
    """EURUSD H1 rates opening at ``first`` and every hour after it (five decimals, as served)."""
    return walked_h1_bars(
        count, seed=seed, first=first, level=1.1, step=0.001, wick=0.001, volumes=(1, 60), spreads=(5, 15),
        digits=5,
    )  # fmt: skip


def answer(found: Any, mt5: SimTerminal) -> np.ndarray:
    assert found is not None, mt5.last_error()
    assert isinstance(found, np.ndarray) and found.dtype == RATES_DTYPE
    return found


def shifted(rates: np.ndarray, seconds: int) -> np.ndarray:
    moved = rates.copy()
    moved["time"] += seconds
    return moved


def opening_row(rates: np.ndarray, bar: int) -> np.ndarray:
    """Bar ``bar`` as it looks at its open: O = H = L = C = open, a quarter of its ticks."""
    row = rates[bar : bar + 1].copy()
    row["high"] = row["low"] = row["close"] = row["open"]
    row["tick_volume"] = math.ceil(int(row["tick_volume"][0]) / 4)
    return row


def by_hand(hourly: np.ndarray, bucket: int) -> list[tuple[Any, ...]]:
    """The bars of ``bucket`` seconds made of the hourly bars whose open time falls in each."""
    starts = hourly["time"] // bucket * bucket
    rows = []
    for start in np.unique(starts):
        inside = hourly[starts == start]
        rows.append(
            (
                int(start),
                float(inside["open"][0]),
                float(inside["high"].max()),
                float(inside["low"].min()),
                float(inside["close"][-1]),
                int(inside["tick_volume"].sum()),
                int(inside["spread"][0]),
            )
        )
    return rows


def as_tuples(rates: np.ndarray) -> list[tuple[Any, ...]]:
    fields = ("time", "open", "high", "low", "close", "tick_volume", "spread")
    return [tuple(row[name].item() for name in fields) for row in rates]


def assert_rows(found: np.ndarray, expected: np.ndarray) -> None:
    """The same rows, readably compared first, then bit for bit (dtype and every byte)."""
    assert as_tuples(found) == as_tuples(expected)
    assert found.dtype == expected.dtype and found.tobytes() == expected.tobytes()


# ------------------------------------------------------------------------- copy_rates_from_pos


def test_every_off_grid_bar_is_served_as_stored_back_to_the_first() -> None:
    rates = hourly_bars()
    mt5 = stepped_eurusd_h1(rates)
    mt5.advance_to(BARS)  # every bar played: the whole data is history
    for count in (BARS, BARS + 7, 5000):  # as many as exist, and more than exist
        everything = answer(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, count), mt5)
        assert_rows(everything, rates)
    # ``count`` back from ``start_pos`` while they exist: the oldest bar is the first stored one.
    for start_pos in (1, 4, BARS - 1):
        older = answer(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, start_pos, BARS), mt5)
        assert_rows(older, rates[: BARS - start_pos])
    three = answer(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 2, 3), mt5)
    assert_rows(three, rates[BARS - 5 : BARS - 2])
    assert len(answer(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, BARS, 5), mt5)) == 0


@pytest.mark.parametrize("bar", [0, 1, 2, 17, BARS - 1])
def test_while_stepping_the_forming_bar_keeps_its_own_open_time(bar: int) -> None:
    rates = hourly_bars()
    mt5 = stepped_eurusd_h1(rates)
    mt5.advance_to(bar)  # bar ``bar`` has just opened
    served = answer(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, BARS + 1), mt5)
    expected = np.concatenate([rates[:bar], opening_row(rates, bar)])
    assert_rows(served, expected)
    mt5.finish_bar()
    served = answer(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, bar + 1), mt5)
    assert_rows(served, rates[: bar + 1])


def test_off_grid_bars_answer_as_the_same_bars_on_the_grid_but_for_their_times() -> None:
    off, on = stepped_eurusd_h1(hourly_bars()), stepped_eurusd_h1(hourly_bars(FIRST_OFF_GRID - HALF_HOUR))
    for bar in (0, 3, 11, BARS - 1):
        for mt5 in (off, on):
            mt5.advance_to(bar)
        for start_pos, count in ((0, 1), (0, 5), (0, bar + 1), (0, BARS), (2, bar + 1), (1, BARS)):
            off_answer = answer(off.copy_rates_from_pos("EURUSD", c.TIMEFRAME_H1, start_pos, count), off)
            on_answer = answer(on.copy_rates_from_pos("EURUSD", c.TIMEFRAME_H1, start_pos, count), on)
            assert_rows(off_answer, shifted(on_answer, HALF_HOUR))


# ------------------------------------------------------------- copy_rates_from and copy_rates_range


def replayed_to_the_end(rates: np.ndarray) -> tuple[SimTerminal, SimTerminal]:
    """``rates`` (off the grid) and the same bars moved onto it, each replayed to its last bar."""
    off, on = stepped_eurusd_h1(rates), stepped_eurusd_h1(shifted(rates, -HALF_HOUR))
    off.advance_to(BARS)
    on.advance_to(BARS)
    return off, on


def test_copy_rates_from_counts_back_from_a_date_to_the_first_stored_bar() -> None:
    rates = hourly_bars()
    off, on = replayed_to_the_end(rates)
    times = rates["time"]
    for bar in (0, 1, 6, BARS - 1):
        for date_from in (int(times[bar]), int(times[bar]) + 59 * 60):
            for count in (1, 3, bar + 1, BARS):
                found = answer(off.copy_rates_from("EURUSD", c.TIMEFRAME_H1, date_from, count), off)
                assert_rows(found, rates[max(bar + 1 - count, 0) : bar + 1])
                twin = on.copy_rates_from("EURUSD", c.TIMEFRAME_H1, date_from - HALF_HOUR, count)
                assert_rows(found, shifted(answer(twin, on), HALF_HOUR))
    as_datetime = datetime.fromtimestamp(int(times[4]), UTC)
    found = answer(off.copy_rates_from("EURUSD", c.TIMEFRAME_H1, as_datetime, 100), off)
    assert_rows(found, rates[:5])
    before_the_first = answer(off.copy_rates_from("EURUSD", c.TIMEFRAME_H1, int(times[0]) - 1, 10), off)
    assert len(before_the_first) == 0


def test_copy_rates_range_keeps_the_bars_opening_inside_it() -> None:
    rates = hourly_bars()
    off, on = replayed_to_the_end(rates)
    times = rates["time"]
    everything = answer(off.copy_rates_range("EURUSD", c.TIMEFRAME_H1, int(times[0]), int(times[-1])), off)
    assert_rows(everything, rates)
    wide = off.copy_rates_range("EURUSD", c.TIMEFRAME_H1, datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC))
    assert_rows(answer(wide, off), rates)
    # From the hour's boundary before a bar: the bar is in (it opens inside the range).
    for first, last in ((0, 5), (3, 3), (7, 20), (BARS - 2, BARS - 1)):
        for start, end in (
            (int(times[first]), int(times[last])),
            (int(times[first]) - HALF_HOUR, int(times[last]) + HALF_HOUR - 1),
        ):
            found = answer(off.copy_rates_range("EURUSD", c.TIMEFRAME_H1, start, end), off)
            assert_rows(found, rates[first : last + 1])
    # A range starting one second after a bar's open leaves that bar out.
    found = answer(off.copy_rates_range("EURUSD", c.TIMEFRAME_H1, int(times[2]) + 1, int(times[5])), off)
    assert_rows(found, rates[3:6])
    for start_bar, end_bar in ((0, BARS - 1), (4, 9)):
        start, end = int(times[start_bar]), int(times[end_bar])
        off_answer = answer(off.copy_rates_range("EURUSD", c.TIMEFRAME_H1, start, end), off)
        twin = on.copy_rates_range("EURUSD", c.TIMEFRAME_H1, start - HALF_HOUR, end - HALF_HOUR)
        assert_rows(off_answer, shifted(answer(twin, on), HALF_HOUR))


# ------------------------------------------------------------------------------- longer timeframes


@pytest.mark.parametrize(
    ("first", "timeframe", "seconds"),
    [
        (FIRST_OFF_GRID, c.TIMEFRAME_H4, 4 * HOUR),  # off every boundary
        (FIRST_OFF_GRID, c.TIMEFRAME_H2, 2 * HOUR),
        (FIRST_OFF_GRID, c.TIMEFRAME_D1, 24 * HOUR),
        (FIRST_OFF_GRID - HALF_HOUR, c.TIMEFRAME_H4, 4 * HOUR),  # on H1's grid, inside an H4 bar
    ],
    ids=["H4 of H1 at :30", "H2 of H1 at :30", "D1 of H1 at :30", "H4 of H1 from 09:00"],
)
def test_longer_bars_are_built_from_every_bar_the_first_included(
    first: int, timeframe: int, seconds: int
) -> None:
    rates = hourly_bars(first)
    mt5 = stepped_eurusd_h1(rates)
    mt5.advance_to(BARS)
    expected = by_hand(rates, seconds)
    assert expected[0][0] < int(rates["time"][0])  # the first longer bar opens before the data
    served = answer(mt5.copy_rates_from_pos("EURUSD", timeframe, 0, 1000), mt5)
    assert as_tuples(served) == expected
    oldest = answer(mt5.copy_rates_from_pos("EURUSD", timeframe, len(expected) - 1, 5), mt5)
    assert as_tuples(oldest) == expected[:1]
    last_open = expected[-1][0]
    assert as_tuples(answer(mt5.copy_rates_from("EURUSD", timeframe, last_open, 1000), mt5)) == expected
    whole = mt5.copy_rates_range("EURUSD", timeframe, int(rates["time"][0]) - seconds, last_open)
    assert as_tuples(answer(whole, mt5)) == expected


# --------------------------------------------------------------------------------- other clocks


def test_the_real_time_replay_serves_off_grid_bars_as_stored() -> None:
    rates = hourly_bars()
    times = rates["time"]
    clock = Clock(datetime.fromtimestamp(int(times[9]) + 20 * 60, UTC))  # bar 9's low is in
    mt5 = SimTerminal(seed=1, data=rates, symbol="EURUSD", timeframe="H1", clock=clock)
    assert mt5.initialize()
    served = answer(mt5.copy_rates_from_pos("EURUSD", c.TIMEFRAME_H1, 0, 50), mt5)
    assert_rows(served[:-1], rates[:9])
    assert served["time"][-1] == times[9] and len(served) == 10
    clock.now = datetime.fromtimestamp(int(times[-1]) + HOUR, UTC)  # after the data
    served = answer(mt5.copy_rates_from_pos("EURUSD", c.TIMEFRAME_H1, 0, 50), mt5)
    assert_rows(served, rates)


def test_the_walk_reaches_back_to_its_first_bar_on_every_timeframe_it_buckets() -> None:
    """Generated history is made on the boundaries and starts on a Sunday 00:00, the first of a
    month: every timeframe's oldest bar is the walk's first, nothing is dropped."""
    mt5 = SimTerminal(seed=1, clock=Clock(WEDNESDAY))
    assert mt5.initialize()
    for timeframe in (c.TIMEFRAME_MN1, c.TIMEFRAME_W1):
        everything = answer(mt5.copy_rates_from_pos("EURUSD", timeframe, 0, 100_000), mt5)
        assert everything["time"][0] == EARLIEST
        oldest = answer(mt5.copy_rates_from_pos("EURUSD", timeframe, len(everything) - 1, 10), mt5)
        assert_rows(oldest, everything[:1])
        since = answer(mt5.copy_rates_range("EURUSD", timeframe, EARLIEST, WEDNESDAY), mt5)
        assert_rows(since, everything)
        early = answer(mt5.copy_rates_from("EURUSD", timeframe, EARLIEST + DAY, 10), mt5)
        assert_rows(early, everything[:1])
