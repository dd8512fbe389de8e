"""The default price feed: a seeded walk, served as bars and ticks up to "now".

Complete bars come from the generated levels (levels.py); the bar that is forming at ``now`` is
assembled from the complete children so far plus the forming child, down to the ticks of the
current minute, so it shows exactly the ticks that have "happened". Every timeframe reaches back to
1995: D1, W1 and MN1 are aggregated from the day level, H1..H12 from hours, M1..M30 from minutes.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from mt5console.core.broker.sim.feed import EARLIEST, Bars, Quote, Span, Ticks
from mt5console.core.broker.sim.frames import DAY, Frame, bucket_end, first_bucket_at_or_after
from mt5console.core.broker.sim.levels import FIRST_DAY, WalkLevels
from mt5console.core.broker.sim.symbols import SymbolSpec

HOUR_MS: Final = 3_600_000
MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000
_LOOKBACK_HOURS: Final = 24 * 9  # how far back a closed market's last tick is looked for


class WalkFeed:
    """A symbol's seeded walk: the same seed gives the same prices at the same times."""

    def __init__(self, spec: SymbolSpec, seed: int) -> None:
        self.spec = spec
        self.levels = WalkLevels(spec, seed)
        # The last quote asked for, by time: the walk is a pure function of time, so the quote at a
        # given millisecond never changes (margins and profits ask for it repeatedly).
        self._quoted: tuple[int, Quote | None] = (-1, None)

    def earliest(self) -> int:
        return EARLIEST

    def max_spread(self) -> float:
        return self.spec.spread_range[1] * self.spec.point

    def is_open(self, now_ms: int) -> bool:
        return now_ms >= EARLIEST * 1000 and self.levels.hour_traded(now_ms // HOUR_MS)

    # ---------------------------------------------------------------- ticks

    def quote(self, now_ms: int) -> Quote | None:
        asked, quote = self._quoted
        if asked != now_ms:
            quote = self._find_quote(now_ms)
            self._quoted = (now_ms, quote)
        return quote

    def _find_quote(self, now_ms: int) -> Quote | None:
        hour = now_ms // HOUR_MS
        for h in range(hour, max(hour - _LOOKBACK_HOURS, FIRST_DAY * 24 - 1), -1):
            if not self.levels.hour_traded(h):
                continue
            ticks, _ = self.levels.ticks(h)
            index = int(np.searchsorted(ticks.time_msc, now_ms, side="right")) - 1
            if index >= 0:
                return Quote(int(ticks.time_msc[index]), float(ticks.bid[index]), float(ticks.ask[index]))
        return None

    def ticks(self, after_ms: int, until_ms: int, limit: int | None = None) -> Ticks:
        parts: list[Ticks] = []
        found = 0
        first_hour = max((after_ms + 1) // HOUR_MS, FIRST_DAY * 24)
        for hour in range(first_hour, until_ms // HOUR_MS + 1):
            if not self.levels.hour_traded(hour):
                continue
            part = self.levels.ticks(hour)[0].between(after_ms, until_ms)
            parts.append(part)
            found += len(part)
            if limit is not None and found >= limit:
                break
        ticks = Ticks.concat(parts)
        return ticks.head(limit) if limit is not None else ticks

    def spans(self, after_ms: int, until_ms: int) -> list[Span]:
        if until_ms <= after_ms:
            return []
        first_day = max((after_ms + 1) // DAY_MS, FIRST_DAY)
        spans: list[Span] = []
        for level in self.levels.hours(first_day, until_ms // DAY_MS):
            bars = level.traded_bars()
            starts = bars.time * 1000
            keep = (starts + HOUR_MS > after_ms + 1) & (starts <= until_ms)
            spans.extend(
                Span(int(start), int(start) + HOUR_MS, float(low), float(high))
                for start, low, high in zip(starts[keep], bars.low[keep], bars.high[keep], strict=True)
            )
        return spans

    # ---------------------------------------------------------------- bars

    def bars(self, frame: Frame, start: int, end: int, now_ms: int) -> Bars:
        first = max(first_bucket_at_or_after(frame, start), EARLIEST)
        stop = min(bucket_end(frame, end), now_ms // 1000 + 1)  # exclusive; nothing opens after now
        if stop <= first:
            return Bars.empty()
        return self._base_bars(frame.base, first, stop, now_ms).to_frame(frame, start, end)

    def _base_bars(self, base: str, first: int, stop: int, now_ms: int) -> Bars:
        """Bars of the base level opening in [first, stop): the complete ones and the forming one."""
        length = {"minute": 60, "hour": 3600, "day": DAY}[base]
        if base == "day":
            days = self.levels.days(stop // DAY)
            complete = days.traded_bars()
        elif base == "hour":
            levels = self.levels.hours(first // DAY, (stop - 1) // DAY)
            complete = Bars.concat([level.traded_bars() for level in levels])
        else:
            days_wanted = range(max(first // DAY, FIRST_DAY), (stop - 1) // DAY + 1)
            complete = Bars.concat([self.levels.minutes(day).traded_bars() for day in days_wanted])
        done = (complete.time >= first) & (complete.time < stop) & ((complete.time + length) * 1000 <= now_ms)
        complete = complete.take(done)
        forming = self.forming(base, now_ms)
        if len(forming) and first <= int(forming.time[0]) < stop:
            return Bars.concat([complete, forming])
        return complete

    def forming(self, base: str, now_ms: int) -> Bars:
        """The base-level bar containing now_ms, built from what has traded so far (maybe empty)."""
        if now_ms < EARLIEST * 1000:
            return Bars.empty()
        minute_start = now_ms // MINUTE_MS * MINUTE_MS
        if base == "minute":
            ticks = self.levels.ticks(now_ms // HOUR_MS)[0].between(minute_start - 1, now_ms)
            spread = round((ticks.ask[0] - ticks.bid[0]) / self.spec.point) if len(ticks) else 0
            return ticks.to_bar(minute_start // 1000, len(ticks), spread)
        if base == "hour":
            hour_start = now_ms // HOUR_MS * HOUR_MS // 1000
            minutes = self.levels.minutes(hour_start // DAY).traded_bars()
            done = minutes.take((minutes.time >= hour_start) & (minutes.time < minute_start // 1000))
            return Bars.concat([done, self.forming("minute", now_ms)]).merged(hour_start)
        day_start = now_ms // DAY_MS * DAY
        (hours,) = self.levels.hours(day_start // DAY, day_start // DAY)
        traded = hours.traded_bars()
        done = traded.take(traded.time < now_ms // HOUR_MS * 3600)
        return Bars.concat([done, self.forming("hour", now_ms)]).merged(day_start)
