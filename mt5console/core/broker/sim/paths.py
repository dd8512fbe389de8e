"""Price paths inside a bar that honour the bar: the building block of the walk's levels.

The walk is generated top-down: days, then the hours of a day, the minutes of an hour and the ticks
of a minute. Each level is built INSIDE its parent bar: the children open at the parent's open, close
at its close, never leave its high/low and touch both, so every bar equals the aggregate of its
children exactly (an H1 bar is the aggregate of its M1 bars, which are the aggregate of their ticks).
The path between the fixed points is a Brownian bridge, reflected into the parent's range and rounded
to the symbol's digits. All randomness is drawn by the caller from a generator keyed by (seed,
symbol, level, block), so a given seed yields the same prices however they are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

MIN_TICKS_PER_MINUTE = 8  # a minute needs room for its open, high, low and close ticks
WICK = 0.6  # child wick and "near the extreme" offsets, in child standard deviations
# The bridge's noise per child, as a fraction of (parent range / sqrt(children)): small enough that
# the path wanders inside the parent's range rather than being flattened against its high and low.
BRIDGE_SCALE = 0.5


@dataclass(frozen=True, slots=True)
class Parents:
    """R parent bars, one per row."""

    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    spread: I64


@dataclass(frozen=True, slots=True)
class Children:
    """The children of R parents: arrays of shape (R, m); untraded children hold no meaning."""

    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    spread: I64


@dataclass(frozen=True, slots=True)
class ChildNoise:
    """The random draws for the children of some parents (rows), drawn from one keyed generator."""

    steps: F64  # (R, m + 1) standard normals; column 0 is unused
    pick_high: F64  # (R, m) uniforms choosing the child that touches the parent's high
    pick_low: F64
    pin_high: F64  # (R,) normals: how near the high the path passes
    pin_low: F64
    wick_high: F64  # (R, m) normals: child wicks
    wick_low: F64
    volume: I64  # (R, m) tick volumes (0 for untraded children)
    spread: I64  # (R, m) spreads in points


def draw_child_noise(
    rng: np.random.Generator,
    traded: Mask,
    parent_volume: I64,
    parent_spread: I64,
    spread_range: tuple[int, int],
    min_volume: int,
) -> ChildNoise:
    """Draw everything the children of ``len(traded)`` parents need, in a fixed order."""
    rows, m = traded.shape
    steps = rng.standard_normal((rows, m + 1))
    pick_high = rng.random((rows, m))
    pick_low = rng.random((rows, m))
    pin_high = rng.standard_normal((rows,))
    pin_low = rng.standard_normal((rows,))
    wick_high = rng.standard_normal((rows, m))
    wick_low = rng.standard_normal((rows, m))
    spread = rng.integers(spread_range[0], spread_range[1] + 1, size=(rows, m)).astype(np.int64)
    counts = traded.sum(axis=1)
    extra = np.where(counts > 0, parent_volume - counts * min_volume, 0)
    probabilities = np.where(counts[:, None] > 0, traded / np.maximum(counts, 1)[:, None], 1.0 / m)
    shares = rng.multinomial(np.maximum(extra, 0), probabilities).astype(np.int64)
    volume = np.where(traded, min_volume + shares, 0).astype(np.int64)
    first = np.argmax(traded, axis=1)
    has_any = counts > 0
    spread[np.arange(rows)[has_any], first[has_any]] = parent_spread[has_any]
    return ChildNoise(steps, pick_high, pick_low, pin_high, pin_low, wick_high, wick_low, volume, spread)


def concat_noise(parts: list[ChildNoise]) -> ChildNoise:
    return ChildNoise(*(np.concatenate([getattr(p, name) for p in parts]) for name in ChildNoise.__slots__))


def bridge(walk: F64, knots: I64, values: F64) -> F64:
    """Paths through fixed points: for each row a Brownian bridge between consecutive knots.

    ``walk`` (R, P) is the row's Brownian motion (partial sums, column 0 = 0); ``knots`` (R, 4) are
    ascending point indices (duplicates allowed, with equal values) and ``values`` their prices.
    Points before the first knot take its value, points after the last take the last knot's.
    """
    points = walk.shape[1]
    t = np.arange(points)[None, :]
    passed = (knots[:, None, :] <= t[:, :, None]).sum(axis=2)
    segment = np.clip(passed - 1, 0, knots.shape[1] - 2)
    a = np.take_along_axis(knots, segment, axis=1)
    b = np.take_along_axis(knots, segment + 1, axis=1)
    va = np.take_along_axis(values, segment, axis=1)
    vb = np.take_along_axis(values, segment + 1, axis=1)
    tc = np.clip(t, knots[:, :1], knots[:, -1:])
    span = b - a
    frac = np.where(span > 0, (tc - a) / np.maximum(span, 1), 0.0)
    wa = np.take_along_axis(walk, a, axis=1)
    wb = np.take_along_axis(walk, b, axis=1)
    wt = np.take_along_axis(walk, tc, axis=1)
    result: F64 = va + frac * (vb - va) + (wt - wa - frac * (wb - wa))
    return result


def fold(path: F64, low: F64, high: F64) -> F64:
    """Reflect a path into [low, high] (rows): unlike clipping, it leaves no flat runs at the edges.

    Points already inside, the fixed points among them, keep their values.
    """
    width = np.maximum(high - low, 0.0)
    period = np.where(width > 0, 2 * width, 1.0)
    inside = np.mod(path - low, period)
    folded: F64 = low + np.where(width > 0, width - np.abs(inside - width), 0.0)
    return np.clip(folded, low, high)


def _sorted_knots(knots: I64, values: F64) -> tuple[I64, F64]:
    order = np.argsort(knots, axis=1, kind="stable")
    return np.take_along_axis(knots, order, axis=1), np.take_along_axis(values, order, axis=1)


def children(parents: Parents, traded: Mask, noise: ChildNoise, digits: int) -> Children:
    """The children of each parent bar (see the module docstring for what they honour).

    Each parent must have at least one traded child; the first traded child opens at the parent's
    open and the last closes at its close.
    """
    rows, m = traded.shape
    r = np.arange(rows)
    step = BRIDGE_SCALE * (parents.high - parents.low) / np.sqrt(np.maximum(traded.sum(axis=1), 1))
    first = np.argmax(traded, axis=1)
    last = m - 1 - np.argmax(traded[:, ::-1], axis=1)
    jh = np.argmax(np.where(traded, noise.pick_high, -1.0), axis=1)
    jl = np.argmax(np.where(traded, noise.pick_low, -1.0), axis=1)
    wick = step * WICK
    lo, hi = parents.low, parents.high
    start, end = first, last + 1
    # Pass near the high (low) at the close of the child that touches it, unless that close is the
    # parent's close; the touching child's wick then reaches the extreme itself.
    high_ok = jh + 1 < end
    low_ok = (jl + 1 < end) & (jl != jh)
    high_at = np.where(high_ok, jh + 1, start)
    low_at = np.where(low_ok, jl + 1, start)
    high_value = np.where(high_ok, np.maximum(hi - np.abs(noise.pin_high) * wick, lo), parents.open)
    low_value = np.where(low_ok, np.minimum(lo + np.abs(noise.pin_low) * wick, hi), parents.open)
    knots, values = _sorted_knots(
        np.stack([start, high_at, low_at, end], axis=1).astype(np.int64),
        np.stack([parents.open, high_value, low_value, parents.close], axis=1),
    )
    walk = np.cumsum(noise.steps, axis=1) * step[:, None]
    walk -= walk[:, :1]
    path = np.round(fold(bridge(walk, knots, values), lo[:, None], hi[:, None]), digits)
    opens, closes = path[:, :-1], path[:, 1:]
    highs = np.minimum(
        np.round(np.maximum(opens, closes) + np.abs(noise.wick_high) * wick[:, None], digits), hi[:, None]
    )
    lows = np.maximum(
        np.round(np.minimum(opens, closes) - np.abs(noise.wick_low) * wick[:, None], digits), lo[:, None]
    )
    highs[r, jh] = hi
    lows[r, jl] = lo
    return Children(opens, highs, lows, closes, noise.volume, noise.spread)


@dataclass(frozen=True, slots=True)
class TickNoise:
    """The random draws for the ticks of some minutes (rows), padded to the longest minute."""

    steps: F64  # (R, P) normals
    pick_high: F64  # (R,) uniforms: which tick is the minute's high
    pick_low: F64
    times: F64  # (R, P) uniforms: when the ticks arrive
    spread: I64  # (R, P) spreads in points


def draw_tick_noise(
    rng: np.random.Generator, counts: I64, minute_spread: I64, spread_range: tuple[int, int]
) -> TickNoise:
    rows, points = counts.size, int(counts.max(initial=MIN_TICKS_PER_MINUTE))
    steps = rng.standard_normal((rows, points))
    pick_high = rng.random(rows)
    pick_low = rng.random(rows)
    times = rng.random((rows, points))
    spread = rng.integers(spread_range[0], spread_range[1] + 1, size=(rows, points)).astype(np.int64)
    spread[:, 0] = minute_spread
    return TickNoise(steps, pick_high, pick_low, times, spread)


def tick_paths(
    minutes: Parents, counts: I64, noise: TickNoise, digits: int, minute_ms: I64
) -> tuple[I64, F64, I64]:
    """The ticks of each minute, flattened in time order: (time_msc, bid, spread points).

    Minute r has ``counts[r]`` >= 8 ticks: the first at the minute's start with its open, the last
    with its close, one at its high and one at its low, all inside [low, high].
    """
    rows, points = noise.steps.shape
    n = counts[:, None]
    step = BRIDGE_SCALE * (minutes.high - minutes.low) / np.sqrt(counts)
    usable = n - 2  # interior ticks 1 .. n-2
    high_at = 1 + np.floor(noise.pick_high * usable[:, 0]).astype(np.int64)
    low_at = 1 + np.floor(noise.pick_low * (usable[:, 0] - 1)).astype(np.int64)
    low_at = np.where(low_at >= high_at, low_at + 1, low_at)
    knots, values = _sorted_knots(
        np.stack([np.zeros(rows, dtype=np.int64), high_at, low_at, counts - 1], axis=1),
        np.stack([minutes.open, minutes.high, minutes.low, minutes.close], axis=1),
    )
    walk = np.cumsum(noise.steps, axis=1) * step[:, None]
    walk -= walk[:, :1]
    bids = np.round(fold(bridge(walk, knots, values), minutes.low[:, None], minutes.high[:, None]), digits)
    valid = np.arange(points)[None, :] < n
    # Arrival times: sorted uniforms spread over the minute, the first at its very start, strictly
    # increasing by construction (offset i is at least i milliseconds).
    when = np.where(valid, noise.times, 2.0)
    when[:, 0] = 0.0
    when = np.sort(when, axis=1)
    offsets = np.floor(when * (60_000 - n)).astype(np.int64) + np.arange(points)[None, :]
    times = minute_ms[:, None] + offsets
    return times[valid], bids[valid], noise.spread[valid]
