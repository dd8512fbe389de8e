"""Timeframe names of the strategy format and their MetaTrader5 values and durations."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

# Values as in the MetaTrader5 module: minutes for intraday frames, bit flags above (0x4000 | hours,
# 0x8000 | weeks, 0xC000 | months).
TIMEFRAME_VALUES: Final[dict[str, int]] = {
    "M1": 1,
    "M5": 5,
    "M15": 15,
    "M30": 30,
    "H1": 16385,
    "H4": 16388,
    "D1": 16408,
    "W1": 32769,
    "MN1": 49153,
}

# Seconds per bar; MN1 is nominal (30 days) and only used for ordering and timeouts, never for
# bucketing (calendar months are bucketed by the calendar).
TIMEFRAME_SECONDS: Final[dict[str, int]] = {
    "M1": 60,
    "M5": 300,
    "M15": 900,
    "M30": 1800,
    "H1": 3600,
    "H4": 14400,
    "D1": 86400,
    "W1": 604800,
    "MN1": 2592000,
}

TIMEFRAME_NAMES: Final[tuple[str, ...]] = tuple(TIMEFRAME_VALUES)


def timeframe_value(name: str) -> int:
    """The MetaTrader5 TIMEFRAME_* value of a strategy-format timeframe name."""
    try:
        return TIMEFRAME_VALUES[name]
    except KeyError:
        expected = ", ".join(TIMEFRAME_NAMES)
        raise ValueError(f"unknown timeframe {name!r}; expected one of {expected}") from None


def timeframe_delta(name: str) -> timedelta:
    return timedelta(seconds=TIMEFRAME_SECONDS[name])
