"""Evaluation of condition groups on closed bars, its human trace, and the one-entry-per-bar gate.

Bar 0 is the last closed bar, bar 1 the one before. Series are read at ``index`` (bar 0) and
``index - 1`` (bar 1): ``-1`` for the live engine, whose series end at the last closed bar, or an
absolute position for the replay loop, which reads full-history series without slicing them.
A comparison whose operand has no value yet (NaN during warm-up, or no bar 1) is false, never an
error; a series that is missing altogether, or an index past its end, is a bug and raises.

``evaluate_all`` gives the truth at every index at once (numpy), for the replay to find the bars
where a group can hold. Both paths decide through the same ``_truth`` (fed Python floats by
``evaluate``, whole arrays by ``evaluate_all``), so they agree bit for bit at every index.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, overload

import numpy as np
import numpy.typing as npt

from mt5console.core.strategy.condition_tree import Comparator, Comparison, ConditionGroup, Logic, Side
from mt5console.core.strategy.operands import Operand

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
# One side of a comparison at bar 0 or bar 1: a float at one index, or an array over all indices
# (a number stays a float there too: numpy broadcasts it as the constant series it stands for).
Reading = float | FloatArray

# Where the series come from: e.g. a bound ``IndicatorCache.series`` / ``FullHistory.series``, or a
# mapping of canonical operand names (``ema_9``, ``rsi_14``) to series.
ValueSource = Callable[[Operand], FloatArray] | Mapping[str, FloatArray]

_SYMBOLS: Final[dict[Comparator, tuple[str, str]]] = {
    # (the relation when it holds, the relation when it does not), for the trace
    Comparator.GREATER_THAN: (">", "<="),
    Comparator.LESS_THAN: ("<", ">="),
    Comparator.GREATER_OR_EQUAL: (">=", "<"),
    Comparator.LESS_OR_EQUAL: ("<=", ">"),
    Comparator.EQUALS: ("==", "!="),
}


def _check_point(point: float) -> float:
    if type(point) is float and 0.0 < point < math.inf:
        return point  # the usual case, decided without the slower checks below (NaN fails both)
    # numbers.Real takes numpy floats too; a bool or a string is a caller's mistake, not a price step.
    real = isinstance(point, numbers.Real) and not isinstance(point, bool)
    if not (real and math.isfinite(point) and point > 0):
        raise ValueError(f"point must be a positive number (the symbol's price step), not {point!r}")
    return float(point)


def _series(side: Operand, values: ValueSource, path: str) -> FloatArray:
    if callable(values):
        return values(side)
    try:
        return values[side.name]
    except KeyError:
        raise KeyError(f"{path}: no series for operand {side.name!r}") from None


def _read(side: Side, values: ValueSource, index: int, path: str, crossing: bool) -> tuple[float, float]:
    """The side's values at bar 0 and, for a crossing, bar 1 (NaN where there is none)."""
    if not isinstance(side, Operand):
        number = float(side)
        return number, number  # a number is a constant series
    series = values(side) if callable(values) else _series(side, values, path)  # a call less per read
    length = len(series)
    if index >= 0:
        if index >= length:
            raise IndexError(f"{path}: index {index} is past the {length} values of {side.name}")
        position = index
    else:
        position = length + index  # negative when the series has no such bar yet
    if position < 0:
        return math.nan, math.nan
    now = float(series[position])
    return now, (float(series[position - 1]) if crossing and position >= 1 else math.nan)


@overload
def _truth(comparator: Comparator, a0: float, b0: float, a1: float, b1: float, point: float) -> bool: ...


@overload
def _truth(
    comparator: Comparator, a0: Reading, b0: Reading, a1: Reading, b1: Reading, point: float
) -> bool | BoolArray: ...


def _truth(
    comparator: Comparator, a0: Reading, b0: Reading, a1: Reading, b1: Reading, point: float
) -> bool | BoolArray:
    """Whether the comparison holds, given A and B at bar 0 (``a0``, ``b0``) and bar 1.

    The one definition of every comparator, for scalars and arrays alike: ``&`` rather than
    ``and`` because ``and`` is not element-wise (on bools the two give the same result).
    A value that is needed and NaN (warm-up, or no bar 1) makes it false: ``x == x`` is false
    exactly for NaN, for a float as for each element of an array, and costs no function call.
    """
    known = (a0 == a0) & (b0 == b0)
    if comparator is Comparator.CROSSES_ABOVE:
        return known & (a1 == a1) & (b1 == b1) & (a1 <= b1) & (a0 > b0)
    if comparator is Comparator.CROSSES_BELOW:
        return known & (a1 == a1) & (b1 == b1) & (a1 >= b1) & (a0 < b0)
    if comparator is Comparator.GREATER_THAN:
        return known & (a0 > b0)
    if comparator is Comparator.LESS_THAN:
        return known & (a0 < b0)
    if comparator is Comparator.GREATER_OR_EQUAL:
        return known & (a0 >= b0)
    if comparator is Comparator.LESS_OR_EQUAL:
        return known & (a0 <= b0)
    # EQUALS: at most half a point apart either way; |a - b| <= h written as its two halves (exactly
    # the same test, as b - a is -(a - b) in floating point) because mypy cannot type abs() of a union.
    half = point / 2
    return known & (a0 - b0 <= half) & (b0 - a0 <= half)


_CROSSINGS: Final = (Comparator.CROSSES_ABOVE, Comparator.CROSSES_BELOW)


def _readings(
    comparison: Comparison, values: ValueSource, index: int
) -> tuple[float, float, float, float, bool]:
    crossing = comparison.comparator in _CROSSINGS
    a0, a1 = _read(comparison.left, values, index, comparison.path, crossing)
    b0, b1 = _read(comparison.right, values, index, comparison.path, crossing)
    return a0, b0, a1, b1, crossing


def _evaluate(node: Comparison | ConditionGroup, values: ValueSource, index: int, point: float) -> bool:
    if isinstance(node, Comparison):  # _readings, inlined: this runs once per comparison per bar
        crossing = node.comparator in _CROSSINGS
        a0, a1 = _read(node.left, values, index, node.path, crossing)
        b0, b1 = _read(node.right, values, index, node.path, crossing)
        return _truth(node.comparator, a0, b0, a1, b1, point)
    # Both short-circuit: a child after the deciding one is not read. Loops rather than all() or
    # any() over a generator, which would build a generator object per group per bar.
    if node.logic is Logic.AND:
        for child in node.children:  # noqa: SIM110
            if not _evaluate(child, values, index, point):
                return False
        return True
    for child in node.children:  # noqa: SIM110
        if _evaluate(child, values, index, point):
            return True
    return False


def evaluate(group: ConditionGroup, values: ValueSource, index: int = -1, *, point: float) -> bool:
    """Whether ``group`` holds with bar 0 at ``index`` of every series.

    ``point`` is the symbol's price step: ``equals`` holds within half of it.
    """
    return _evaluate(group, values, index, _check_point(point))


class _AllBars:
    """Reads whole series for ``evaluate_all`` and holds them to one length (the bars')."""

    def __init__(self, values: ValueSource, length: int | None) -> None:
        self.values = values
        self.length = length
        self.length_from = "length"  # what set the length, for the message when another differs

    def read(self, side: Side, path: str) -> Reading:
        if not isinstance(side, Operand):
            return float(side)  # broadcast by numpy as the constant series it stands for
        # float64 as the scalar path reads it: a float32 series would compare in float32 here.
        series = np.asarray(_series(side, self.values, path), dtype=np.float64)
        if series.ndim != 1:
            raise ValueError(f"{path}: the series of {side.name} must be one-dimensional")
        if self.length is None:
            self.length, self.length_from = len(series), side.name
        elif len(series) != self.length:
            raise ValueError(
                f"{path}: {side.name} has {len(series)} values but {self.length_from} has {self.length};"
                " every series must cover the same bars"
            )
        return series


def _now(reading: Reading) -> Reading:
    return reading[1:] if isinstance(reading, np.ndarray) else reading


def _before(reading: Reading) -> Reading:
    return reading[:-1] if isinstance(reading, np.ndarray) else reading


def _compare_all(comparison: Comparison, bars: _AllBars, point: float) -> bool | BoolArray:
    a = bars.read(comparison.left, comparison.path)
    b = bars.read(comparison.right, comparison.path)
    if comparison.comparator not in _CROSSINGS:
        return _truth(comparison.comparator, a, b, a, b, point)  # bar 1 is not read
    series = a if isinstance(a, np.ndarray) else b
    if not isinstance(series, np.ndarray):
        raise ValueError(
            f"{comparison.path}: two numbers cannot cross: {comparison.comparator.value}"
            " needs an indicator or price on at least one side"
        )
    # Bar 1 of index i is index i - 1: the series against themselves one bar later. Index 0 has no
    # bar 1, so it is false, as in ``evaluate``.
    crossed = np.zeros(len(series), dtype=np.bool_)
    crossed[1:] = _truth(comparison.comparator, _now(a), _now(b), _before(a), _before(b), point)
    return crossed


def _evaluate_all(node: Comparison | ConditionGroup, bars: _AllBars, point: float) -> bool | BoolArray:
    if isinstance(node, Comparison):
        return _compare_all(node, bars, point)
    # Every child is evaluated (no short-circuit across whole arrays); fresh arrays, inputs untouched.
    combined = _evaluate_all(node.children[0], bars, point)
    for child in node.children[1:]:
        truth = _evaluate_all(child, bars, point)
        combined = (combined & truth) if node.logic is Logic.AND else (combined | truth)
    return combined


def evaluate_all(
    group: ConditionGroup, values: ValueSource, *, point: float, length: int | None = None
) -> BoolArray:
    """Whether ``group`` holds at every index of the series, all at once.

    ``evaluate_all(group, values, point=p)[i] == evaluate(group, values, i, point=p)`` for every
    ``i >= 0``. Every series read must have the same length (the bars'), which is the result's.
    ``length`` is needed only when the group reads no series at all (numbers compared with
    numbers); when given with series, they must match it. Two numbers that "cross" are an error,
    as validation says.
    """
    point = _check_point(point)
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
        raise ValueError(f"length must be a whole number of bars, at least 0, not {length!r}")
    bars = _AllBars(values, length)
    truth = _evaluate_all(group, bars, point)
    if isinstance(truth, np.ndarray):
        return truth
    if bars.length is None:
        raise ValueError(
            f"{group.path}: the group compares only numbers, so the number of bars is unknown; pass length="
        )
    return np.full(bars.length, truth, dtype=np.bool_)


def _digits(point: float) -> int:
    return max(2, min(10, round(-math.log10(point))))


@functools.lru_cache(maxsize=64)
def _number_format(point: float) -> str:
    """How the trace writes a value of a symbol with price step ``point``: a symbol has one point,
    and the logarithm behind the digits costs more than the lookup."""
    return f".{_digits(point)}f"


def _label(side: Side) -> str:
    if isinstance(side, Operand):
        return side.name
    number = float(side)
    return str(int(number)) if number.is_integer() else repr(number)


def _missing(comparison: Comparison, a: tuple[float, float], b: tuple[float, float], crossing: bool) -> str:
    for side, now, before in ((comparison.left, *a), (comparison.right, *b)):
        if math.isnan(now):
            return f"{_label(side)} has no value yet"
        if crossing and math.isnan(before):
            return f"{_label(side)} has no value on the bar before"
    return ""


MAX_SHOWN_DIGITS: Final = 10


def _pair(a: float, b: float, number_format: str) -> tuple[str, str]:
    """Two values at the symbol's digits, or with as many more as it takes to tell them apart: "1.26467 <
    1.26467 -> true" reads as a mistake, "1.264668 < 1.264674 -> true" does not."""
    x, y = format(a, number_format), format(b, number_format)
    if x != y or a == b:
        return x, y
    digits = int(number_format[1:-1])
    while x == y and digits < MAX_SHOWN_DIGITS:
        digits += 1
        x, y = f"{a:.{digits}f}", f"{b:.{digits}f}"
    return x, y


def _explain_comparison(
    comparison: Comparison, values: ValueSource, index: int, point: float, number_format: str
) -> tuple[str, bool]:
    """The comparison's trace and its truth, from one reading of its values."""
    a0, b0, a1, b1, crossing = _readings(comparison, values, index)
    head = f"{_label(comparison.left)} {comparison.comparator} {_label(comparison.right)}"
    # x != x only for NaN: the message is looked for only when a value needed is missing.
    if a0 != a0 or b0 != b0 or (crossing and (a1 != a1 or b1 != b1)):
        missing = _missing(comparison, (a0, a1), (b0, b1), crossing)
        return f"{head}: {missing} -> false", False  # a value needed is NaN: _truth is false too

    result = _truth(comparison.comparator, a0, b0, a1, b1, point)
    if crossing:
        above = comparison.comparator is Comparator.CROSSES_ABOVE
        now_relation = (">" if a0 > b0 else "<=") if above else ("<" if a0 < b0 else ">=")
        was_relation = ("<=" if a1 <= b1 else ">") if above else (">=" if a1 >= b1 else "<")
        x0, y0 = _pair(a0, b0, number_format)
        x1, y1 = _pair(a1, b1, number_format)
        detail = f"{x0} {now_relation} {y0} (was {x1} {was_relation} {y1})"
    else:
        holds_symbol, fails_symbol = _SYMBOLS[comparison.comparator]
        if comparison.comparator is Comparator.EQUALS:  # "(within half a point)" says why they look equal
            x0, y0 = format(a0, number_format), format(b0, number_format)
        else:
            x0, y0 = _pair(a0, b0, number_format)
        detail = f"{x0} {holds_symbol if result else fails_symbol} {y0}"
        if comparison.comparator is Comparator.EQUALS:
            detail += " (within half a point)" if result else " (more than half a point apart)"
    return f"{head}: {detail} -> {'true' if result else 'false'}", result


def _explain(
    node: Comparison | ConditionGroup, values: ValueSource, index: int, point: float, number_format: str
) -> tuple[str, bool]:
    if isinstance(node, Comparison):
        return _explain_comparison(node, values, index, point, number_format)
    # The trace shows every child, also those the evaluation short-circuits past; every child is
    # read here anyway, so the group's truth comes from theirs (what ``_evaluate`` would find, as
    # reading has no side effect) instead of a second reading of every value.
    parts: list[str] = []
    truths: list[bool] = []
    for child in node.children:
        text, truth = _explain(child, values, index, point, number_format)
        parts.append(text)
        truths.append(truth)
    result = all(truths) if node.logic is Logic.AND else any(truths)
    return f"{node.logic}[{'; '.join(parts)}] -> {'true' if result else 'false'}", result


def explain(group: ConditionGroup, values: ValueSource, index: int = -1, *, point: float) -> str:
    """A one-line trace of why ``group`` is true or false, for the log.

    ``ema_9 crosses_above ema_21: 1.08412 > 1.08399 (was 1.08390 <= 1.08401) -> true``
    """
    return judge(group, values, index, point=point)[1]


def judge(group: ConditionGroup, values: ValueSource, index: int = -1, *, point: float) -> tuple[bool, str]:
    """``evaluate`` and ``explain`` from one reading of the values: for a caller that logs the
    trace whatever the truth (the executor explains every entry of a bar, held or not)."""
    point = _check_point(point)
    text, holds = _explain(group, values, index, point, _number_format(point))
    return holds, text


def _epoch_seconds(bar_time: int | datetime) -> int:
    if isinstance(bar_time, datetime):
        if bar_time.tzinfo is None or bar_time.utcoffset() is None:
            raise ValueError(f"bar time {bar_time.isoformat()} has no time zone; use UTC")
        return int(bar_time.timestamp())
    return int(bar_time)


class EntryGate:
    """Lets a strategy's entry fire at most once per closed bar.

    It remembers the open time (epoch seconds) of the bar it last fired on and refuses that bar and
    any older one, so a re-evaluation of the same bar (a repeated poll, a restart that restores
    ``last_fired``) can never open a second position.
    """

    def __init__(self, last_fired: int | datetime | None = None) -> None:
        self._last_fired = None if last_fired is None else _epoch_seconds(last_fired)

    @property
    def last_fired(self) -> int | None:
        return self._last_fired

    def can_fire(self, bar_time: int | datetime) -> bool:
        return self._last_fired is None or _epoch_seconds(bar_time) > self._last_fired

    def try_fire(self, bar_time: int | datetime) -> bool:
        """Record a firing on ``bar_time`` and return True, or return False if it already fired."""
        if not self.can_fire(bar_time):
            return False
        self._last_fired = _epoch_seconds(bar_time)
        return True
