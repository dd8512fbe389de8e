"""The seeded walk's four levels for one symbol: days, hours, minutes and ticks, each keyed by time.

Days come from a mean-reverting random walk of the log price (an Ornstein-Uhlenbeck process with a
90-day half-life around the symbol's usual level, so prices stay realistic over 30 years), run from
1995-01-01. Hours, minutes and ticks are generated lazily inside their parent (paths.py), each block
from its own generator keyed by (seed, symbol, level, block): a price depends only on the seed and
the time, never on when or in which order it was asked for.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from mt5console.core.broker.sim.feed import EARLIEST, Bars, Ticks
from mt5console.core.broker.sim.frames import DAY
from mt5console.core.broker.sim.paths import (
    MIN_TICKS_PER_MINUTE,
    Parents,
    children,
    concat_noise,
    draw_child_noise,
    draw_tick_noise,
    tick_paths,
)
from mt5console.core.broker.sim.symbols import SymbolSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

HALF_LIFE_DAYS: Final = 90.0
DAY_BLOCK: Final = 512  # days per generator of the day level
LEVEL_DAY, LEVEL_HOUR, LEVEL_MINUTE, LEVEL_TICK = 0, 1, 2, 3
FIRST_DAY: Final = EARLIEST // DAY
AHEAD_DAYS: Final = 400  # the day level is computed this far past today, then extended when needed
TICKS_PER_MINUTE: Final = (55, 105)  # average ticks per minute of a day, drawn per day

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Level:
    """Bars of one level for a stretch of time (one day of hours, one day of minutes, ...)."""

    bars: Bars  # every slot, traded or not
    traded: Mask

    def traded_bars(self) -> Bars:
        return self.bars.take(self.traded)


def weekday(day: int) -> int:
    """Monday = 0 ... Sunday = 6 for a day number since 1970-01-01 (a Thursday)."""
    return (day + 3) % 7


class WalkLevels:
    """Lazily generated and cached levels of one symbol's walk."""

    def __init__(self, spec: SymbolSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self._vol = spec.daily_vol
        self._days: Level | None = None
        self._day_end = 0  # first day number not in self._days
        self._hours: _Lru[int, Level] = _Lru(4096)
        self._minutes: _Lru[int, Level] = _Lru(160)
        self._ticks: _Lru[int, tuple[Ticks, I64]] = _Lru(64)
        self._sessions = np.array(spec.sessions, dtype=bool)  # (7, 24)

    def _rng(self, level: int, block: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.spec.key, level, block])

    def traded_hours(self, day: int) -> Mask:
        return np.asarray(self._sessions[weekday(day)], dtype=bool)

    def hour_traded(self, hour: int) -> bool:
        return bool(self._sessions[weekday(hour // 24), hour % 24])

    # ---------------------------------------------------------------- days

    def days(self, through_day: int) -> Level:
        """The day level from 1995-01-01 through at least ``through_day``."""
        if self._days is None or through_day >= self._day_end:
            self._day_end = max(through_day + 1, self._day_end) + AHEAD_DAYS
            self._days = self._make_days(self._day_end)
        return self._days

    def _make_days(self, end_day: int) -> Level:
        spec, vol = self.spec, self._vol
        numbers = np.arange(FIRST_DAY, end_day, dtype=np.int64)
        sessions = self._sessions[(numbers + 3) % 7]  # (n, 24)
        hours = sessions.sum(axis=1)
        traded = hours > 0
        first_hour = np.argmax(sessions, axis=1)
        last_hour = 23 - np.argmax(sessions[:, ::-1], axis=1)
        normals, uniforms, spreads = self._day_draws(end_day)
        kappa = math.log(2) / HALF_LIFE_DAYS
        mean = math.log(spec.level)
        log_open = np.zeros(numbers.size)
        log_close = np.zeros(numbers.size)
        x, last_end = mean, None
        eps_close, eps_gap = normals[0].tolist(), normals[1].tolist()
        for i in np.flatnonzero(traded).tolist():
            start = int(numbers[i]) * 24 + int(first_hour[i])
            gap = 0 if last_end is None else start - last_end
            # A market closed for a while reopens with a gap: the price moved while nobody traded.
            o = x + (vol * math.sqrt(gap / 24) * 0.6 * eps_gap[i] if gap > 0 else 0.0)
            dt = int(hours[i]) / 24
            x = o + kappa * (mean - o) * dt + vol * math.sqrt(dt) * eps_close[i]
            log_open[i], log_close[i] = o, x
            last_end = int(numbers[i]) * 24 + int(last_hour[i]) + 1
        digits = spec.digits
        opens = np.round(np.exp(log_open), digits).astype(np.float64)
        closes = np.round(np.exp(log_close), digits).astype(np.float64)
        # High and low of a Brownian bridge from open to close (exact draws of its maximum/minimum).
        scale = opens * vol * np.sqrt(hours / 24)
        move = (closes - opens) ** 2
        highs = (opens + closes + np.sqrt(move - 2 * scale**2 * np.log(1.0 - uniforms[0]))) / 2
        lows = (opens + closes - np.sqrt(move - 2 * scale**2 * np.log(1.0 - uniforms[1]))) / 2
        highs = np.maximum(np.round(highs, digits), np.maximum(opens, closes))
        lows = np.minimum(np.round(lows, digits), np.minimum(opens, closes))
        per_minute = TICKS_PER_MINUTE[0] + (TICKS_PER_MINUTE[1] - TICKS_PER_MINUTE[0]) * uniforms[2]
        volumes = np.where(traded, (hours * 60 * per_minute).astype(np.int64), 0)
        bars = Bars(numbers * DAY, opens, highs, lows, closes, volumes, spreads)
        return Level(bars, traded)

    def _day_draws(self, end_day: int) -> tuple[F64, F64, I64]:
        """Normals (2, n), uniforms (3, n) and spreads (n,) for days FIRST_DAY .. end_day - 1."""
        normals, uniforms, spreads = [], [], []
        for block in range(FIRST_DAY // DAY_BLOCK, (end_day - 1) // DAY_BLOCK + 1):
            rng = self._rng(LEVEL_DAY, block)
            normals.append(rng.standard_normal((2, DAY_BLOCK)))
            uniforms.append(rng.random((3, DAY_BLOCK)))
            spreads.append(rng.integers(*self.spec.spread_range, size=DAY_BLOCK, endpoint=True))
        part = slice(FIRST_DAY % DAY_BLOCK, FIRST_DAY % DAY_BLOCK + end_day - FIRST_DAY)
        return (
            np.concatenate(normals, axis=1)[:, part],
            np.concatenate(uniforms, axis=1)[:, part],
            np.concatenate(spreads)[part].astype(np.int64),
        )

    # ---------------------------------------------------------------- hours

    def hours(self, first_day: int, last_day: int) -> list[Level]:
        """The hour levels of days first_day..last_day (24 slots each), generated in one batch."""
        wanted = range(max(first_day, FIRST_DAY), last_day + 1)
        found: dict[int, Level] = {}
        for day in wanted:
            cached = self._hours.get(day)
            if cached is not None:
                found[day] = cached
        missing = [day for day in wanted if day not in found]
        if missing:
            days = self.days(missing[-1])
            offsets = np.array(missing, dtype=np.int64) - FIRST_DAY
            parents = Parents(
                days.bars.open[offsets],
                days.bars.high[offsets],
                days.bars.low[offsets],
                days.bars.close[offsets],
                days.bars.volume[offsets],
                days.bars.spread[offsets],
            )
            traded = self._sessions[(np.array(missing) + 3) % 7]
            noise = concat_noise(
                [
                    draw_child_noise(
                        self._rng(LEVEL_HOUR, day),
                        traded[i : i + 1],
                        parents.volume[i : i + 1],
                        parents.spread[i : i + 1],
                        self.spec.spread_range,
                        MIN_TICKS_PER_MINUTE * 60,
                    )
                    for i, day in enumerate(missing)
                ]
            )
            # Days without trading have no bar; give them a harmless parent and mask them out.
            is_traded = days.traded[offsets]
            safe = _safe_parents(parents, is_traded, self.spec.level)
            kids = children(safe, traded & is_traded[:, None], noise, self.spec.digits)
            for i, day in enumerate(missing):
                times = day * DAY + np.arange(24, dtype=np.int64) * 3600
                bars = Bars(
                    times,
                    kids.open[i],
                    kids.high[i],
                    kids.low[i],
                    kids.close[i],
                    kids.volume[i],
                    kids.spread[i],
                )
                found[day] = Level(bars, traded[i] & bool(is_traded[i]))
                self._hours.put(day, found[day])
        return [found[day] for day in wanted]

    # ---------------------------------------------------------------- minutes

    def minutes(self, day: int) -> Level:
        """The 1440 minutes of a day."""
        cached = self._minutes.get(day)
        if cached is not None:
            return cached
        (hours,) = self.hours(day, day)
        traded = np.repeat(hours.traded[:, None], 60, axis=1)
        parents = Parents(
            hours.bars.open,
            hours.bars.high,
            hours.bars.low,
            hours.bars.close,
            hours.bars.volume,
            hours.bars.spread,
        )
        noise = draw_child_noise(
            self._rng(LEVEL_MINUTE, day),
            traded,
            parents.volume,
            parents.spread,
            self.spec.spread_range,
            MIN_TICKS_PER_MINUTE,
        )
        safe = _safe_parents(parents, hours.traded, self.spec.level)
        kids = children(safe, traded, noise, self.spec.digits)
        times = day * DAY + np.arange(1440, dtype=np.int64) * 60
        bars = Bars(
            times,
            kids.open.ravel(),
            kids.high.ravel(),
            kids.low.ravel(),
            kids.close.ravel(),
            kids.volume.ravel(),
            kids.spread.ravel(),
        )
        level = Level(bars, traded.ravel())
        self._minutes.put(day, level)
        return level

    # ---------------------------------------------------------------- ticks

    def ticks(self, hour: int) -> tuple[Ticks, I64]:
        """The ticks of one traded hour (hour number since 1970) and their spreads in points."""
        cached = self._ticks.get(hour)
        if cached is not None:
            return cached
        if not self.hour_traded(hour) or hour < FIRST_DAY * 24:
            empty = (Ticks.empty(), np.zeros(0, dtype=np.int64))
            self._ticks.put(hour, empty)
            return empty
        minutes = self.minutes(hour // 24)
        part = slice((hour % 24) * 60, (hour % 24) * 60 + 60)
        bars = minutes.bars.take(part)
        parents = Parents(bars.open, bars.high, bars.low, bars.close, bars.volume, bars.spread)
        noise = draw_tick_noise(self._rng(LEVEL_TICK, hour), bars.volume, bars.spread, self.spec.spread_range)
        times, bids, spreads = tick_paths(parents, bars.volume, noise, self.spec.digits, bars.time * 1000)
        asks = np.round(bids + spreads * self.spec.point, self.spec.digits).astype(np.float64)
        result = (Ticks(times, bids, asks), spreads)
        self._ticks.put(hour, result)
        return result


def _safe_parents(parents: Parents, traded: Mask, level: float) -> Parents:
    """Untraded parents get a flat bar at ``level`` so the vectorised maths has no NaN to trip on."""
    keep = traded.astype(bool)
    flat = np.full(keep.size, level)
    return Parents(
        np.where(keep, parents.open, flat),
        np.where(keep, parents.high, flat),
        np.where(keep, parents.low, flat),
        np.where(keep, parents.close, flat),
        np.where(keep, parents.volume, 0),
        parents.spread,
    )
