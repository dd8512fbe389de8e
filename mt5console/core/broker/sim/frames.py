"""The 21 MetaTrader 5 timeframes: their values, and how bar times are bucketed (UTC).

Minute frames bucket on multiples of their length from the hour, hour frames on multiples of their
length from midnight, D1 on the day, W1 on weeks that start on Sunday 00:00 as in MT5, MN1 on the
calendar month. ``base`` says which level of the simulated feed a frame is aggregated from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from mt5console.core.broker.sim import constants as c

I64 = npt.NDArray[np.int64]

DAY: Final = 86_400
# 1970-01-01 was a Thursday: the first Sunday 00:00 is three days later.
_FIRST_SUNDAY: Final = 3 * DAY
_WEEK: Final = 7 * DAY


@dataclass(frozen=True, slots=True)
class Frame:
    value: int  # TIMEFRAME_* value
    name: str  # "M1", "H4", ...
    seconds: int  # bar length; MN1 nominal (30 days), never used to bucket months
    base: Literal["minute", "hour", "day"]  # the feed level it is aggregated from


def _frames() -> dict[int, Frame]:
    frames: dict[int, Frame] = {}
    for name, value in c.CONSTANTS.items():
        if not name.startswith("TIMEFRAME_"):
            continue
        short = name.removeprefix("TIMEFRAME_")
        unit, count = short[0], int(short[1:] if short[:2] != "MN" else 1)
        if unit == "M" and not short.startswith("MN"):
            frames[value] = Frame(value, short, count * 60, "minute")
        elif unit == "H":
            frames[value] = Frame(value, short, count * 3600, "hour")
        elif unit == "D":
            frames[value] = Frame(value, short, DAY, "day")
        elif unit == "W":
            frames[value] = Frame(value, short, _WEEK, "day")
        else:
            frames[value] = Frame(value, short, 30 * DAY, "day")
    return frames


FRAMES: Final[dict[int, Frame]] = _frames()
FRAMES_BY_NAME: Final[dict[str, Frame]] = {frame.name: frame for frame in FRAMES.values()}


def frame_of(value: object) -> Frame | None:
    """The frame of a TIMEFRAME_* value, or None when it is not one (bools are not timeframes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return FRAMES.get(value)


def parse_frame(value: str | int) -> Frame:
    """A frame from a name ("H1") or a TIMEFRAME_* value; ValueError naming the bad value."""
    frame = FRAMES_BY_NAME.get(value.upper()) if isinstance(value, str) else frame_of(value)
    if frame is None:
        known = ", ".join(FRAMES_BY_NAME)
        raise ValueError(f"unknown timeframe {value!r}; expected one of {known} or its TIMEFRAME_* value")
    return frame


def bucket_starts(frame: Frame, times: I64) -> I64:
    """The start of the bar of ``frame`` that contains each epoch second in ``times``."""
    if frame.name == "MN1":
        months = times.astype("datetime64[s]").astype("datetime64[M]")
        return months.astype("datetime64[s]").astype(np.int64)
    if frame.name == "W1":
        return (times - _FIRST_SUNDAY) // _WEEK * _WEEK + _FIRST_SUNDAY
    return times // frame.seconds * frame.seconds


def bucket_start(frame: Frame, time: int) -> int:
    return int(bucket_starts(frame, np.array([time], dtype=np.int64))[0])


def bucket_end(frame: Frame, time: int) -> int:
    """The first second after the bar of ``frame`` containing ``time``."""
    start = bucket_start(frame, time)
    if frame.name == "MN1":
        month = np.datetime64(start, "s").astype("datetime64[M]") + 1
        return int(month.astype("datetime64[s]").astype(np.int64))
    return start + (_WEEK if frame.name == "W1" else frame.seconds)


def first_bucket_at_or_after(frame: Frame, time: int) -> int:
    start = bucket_start(frame, time)
    return start if start == time else bucket_end(frame, time)
