"""Condition groups evaluated on closed bars: crosses, comparators, numbers, nesting, warm-up, gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
from backtesting.test import EURUSD

from mt5console.core.strategy.condition_tree import Comparator, Comparison, ConditionGroup, Logic, Side
from mt5console.core.strategy.conditions import EntryGate, evaluate, explain
from mt5console.core.strategy.indicators import FullHistory, IndicatorCache, compute
from mt5console.core.strategy.operands import Operand, parse_operand

Floats = npt.NDArray[np.float64]
POINT = 0.00001
NAN = float("nan")


def side(value: str | float) -> Side:
    return parse_operand(value) if isinstance(value, str) else float(value)


def cmp(left: str | float, comparator: str, right: str | float) -> Comparison:
    return Comparison(side(left), Comparator(comparator), side(right), "rules.entry.conditions[0]")


def group(logic: str, *children: Comparison | ConditionGroup) -> ConditionGroup:
    return ConditionGroup(Logic(logic), children, "rules.entry")


def series(*values: float) -> Floats:
    return np.array(values, dtype=np.float64)


def holds(comparison: Comparison | ConditionGroup, values: dict[str, Floats], index: int = -1) -> bool:
    tree = comparison if isinstance(comparison, ConditionGroup) else group("AND", comparison)
    return evaluate(tree, values, index, point=POINT)


# --- crosses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fast", "slow", "expected"),
    [
        (series(1.0, 1.0830, 1.0841), series(1.0, 1.0830, 1.0840), True),  # equal on bar 1, then above
        (series(1.0, 1.0820, 1.0841), series(1.0, 1.0830, 1.0840), True),  # below, then above
        (series(1.0, 1.0835, 1.0841), series(1.0, 1.0830, 1.0840), False),  # above on both bars
        (series(1.0, 1.0820, 1.0840), series(1.0, 1.0830, 1.0840), False),  # below, then only equal
        (series(1.0, 1.0820, 1.0825), series(1.0, 1.0830, 1.0840), False),  # below on both
    ],
)
def test_crosses_above(fast: Floats, slow: Floats, expected: bool) -> None:
    values = {"ema_9": fast, "ema_21": slow}
    assert holds(cmp("ema_9", "crosses_above", "ema_21"), values) is expected


@pytest.mark.parametrize(
    ("fast", "slow", "expected"),
    [
        (series(1.0830, 1.0839), series(1.0830, 1.0840), True),  # equal on bar 1, then below
        (series(1.0835, 1.0839), series(1.0830, 1.0840), True),  # above, then below
        (series(1.0825, 1.0839), series(1.0830, 1.0840), False),  # below on both bars
        (series(1.0835, 1.0840), series(1.0830, 1.0840), False),  # above, then only equal
    ],
)
def test_crosses_below(fast: Floats, slow: Floats, expected: bool) -> None:
    values = {"ema_9": fast, "ema_21": slow}
    assert holds(cmp("ema_9", "crosses_below", "ema_21"), values) is expected


def test_crosses_read_bar_1_as_the_bar_before_bar_0_at_an_index() -> None:
    fast = series(1.0, 3.0, 5.0, 5.0)
    slow = series(2.0, 2.0, 2.0, 9.0)
    values = {"ema_9": fast, "ema_21": slow}
    condition = cmp("ema_9", "crosses_above", "ema_21")
    assert [holds(condition, values, i) for i in range(4)] == [False, True, False, False]


# --- comparators ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "a", "b", "expected"),
    [
        ("greater_than", 2.0, 1.0, True),
        ("greater_than", 1.0, 1.0, False),
        ("greater_than", 0.5, 1.0, False),
        ("less_than", 0.5, 1.0, True),
        ("less_than", 1.0, 1.0, False),
        ("less_than", 2.0, 1.0, False),
        ("greater_or_equal", 1.0, 1.0, True),
        ("greater_or_equal", 2.0, 1.0, True),
        ("greater_or_equal", 0.5, 1.0, False),
        ("less_or_equal", 1.0, 1.0, True),
        ("less_or_equal", 0.5, 1.0, True),
        ("less_or_equal", 2.0, 1.0, False),
        ("equals", 1.08412, 1.08412, True),
        ("equals", 1.08412, 1.084124, True),  # 0.4 point apart
        ("equals", 1.08412, 1.084116, True),
        ("equals", 1.08412, 1.084126, False),  # 0.6 point apart
        ("equals", 1.08412, 1.08413, False),  # one point apart
    ],
)
def test_each_comparator_on_bar_0(comparator: str, a: float, b: float, expected: bool) -> None:
    # Bar 1 holds the opposite ordering, to show only bar 0 matters for these comparators.
    values = {"close": series(b, a), "sma_20": series(a, b)}
    assert holds(cmp("close", comparator, "sma_20"), values) is expected


def test_equals_uses_the_point_given() -> None:
    tree = group("AND", cmp("close", "equals", 151.234))
    values = {"close": series(151.2344)}
    assert evaluate(tree, values, point=0.001)
    assert not evaluate(tree, values, point=0.0001)


def test_numbers_on_either_side_are_constant_series() -> None:
    values = {"rsi_14": series(35.0, 28.0), "close": series(1.0990, 1.1010)}
    assert holds(cmp("rsi_14", "less_than", 30), values)
    assert holds(cmp(30, "greater_than", "rsi_14"), values)
    assert not holds(cmp(30, "less_than", "rsi_14"), values)
    assert holds(cmp("rsi_14", "crosses_below", 30), values)
    assert holds(cmp(30, "crosses_above", "rsi_14"), values)
    assert holds(cmp("close", "crosses_above", 1.1), values)
    assert not holds(cmp("close", "crosses_below", 1.1), values)
    assert holds(cmp(1.1, "less_or_equal", "close"), values)
    assert holds(cmp(2, "greater_than", 1), {})


# --- groups --------------------------------------------------------------------------------------


def test_groups_nested_four_deep() -> None:
    values = {"rsi_14": series(25.0), "close": series(1.1), "adx_14": series(30.0), "ema_9": series(1.2)}
    rsi_low = cmp("rsi_14", "less_than", 30)  # true
    adx_weak = cmp("adx_14", "less_than", 20)  # false
    above_ema = cmp("close", "greater_than", "ema_9")  # false
    trending = cmp("adx_14", "greater_than", 25)  # true
    depth4_true = group("OR", adx_weak, group("AND", rsi_low, group("OR", above_ema, group("AND", trending))))
    depth4_false = group(
        "OR", adx_weak, group("AND", rsi_low, group("OR", above_ema, group("AND", adx_weak)))
    )
    assert holds(depth4_true, values)
    assert not holds(depth4_false, values)
    assert not holds(group("AND", depth4_true, depth4_false), values)
    assert holds(group("OR", depth4_false, depth4_true), values)


def test_groups_short_circuit() -> None:
    asked: list[str] = []
    values = {"rsi_14": series(25.0), "adx_14": series(10.0)}

    def source(operand: Operand) -> Floats:
        asked.append(operand.name)
        return values[operand.name]

    rsi_low = cmp("rsi_14", "less_than", 30)  # true
    adx_strong = cmp("adx_14", "greater_than", 25)  # false
    assert evaluate(group("OR", rsi_low, adx_strong), source, point=POINT)
    assert asked == ["rsi_14"]
    asked.clear()
    assert not evaluate(group("AND", adx_strong, rsi_low), source, point=POINT)
    assert asked == ["adx_14"]


# --- warm-up and bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("comparator", [c.value for c in Comparator])
def test_no_value_yet_is_false_never_an_error(comparator: str) -> None:
    warming = {"ema_21": series(NAN, NAN), "ema_9": series(1.1, 1.2)}
    assert not holds(cmp("ema_9", comparator, "ema_21"), warming)
    assert not holds(cmp("ema_21", comparator, "ema_9"), warming)
    assert not holds(cmp("ema_9", comparator, "ema_21"), {"ema_9": series(), "ema_21": series()})


def test_crosses_need_bar_1() -> None:
    condition = cmp("ema_9", "crosses_above", "ema_21")
    assert not holds(condition, {"ema_9": series(2.0), "ema_21": series(1.0)})
    assert not holds(condition, {"ema_9": series(NAN, 2.0), "ema_21": series(1.0, 1.0)})
    assert holds(condition, {"ema_9": series(0.5, 2.0), "ema_21": series(1.0, 1.0)})
    assert not holds(condition, {"ema_9": series(0.5, 2.0), "ema_21": series(1.0, 1.0)}, index=0)


def test_a_missing_series_or_an_index_past_the_end_is_a_bug_that_raises() -> None:
    with pytest.raises(KeyError, match=r"rules\.entry\.conditions\[0\]: no series for operand 'ema_21'"):
        holds(cmp("ema_9", "greater_than", "ema_21"), {"ema_9": series(1.0)})
    with pytest.raises(IndexError, match="index 5 is past the 2 values of ema_9"):
        holds(cmp("ema_9", "greater_than", 1), {"ema_9": series(1.0, 2.0)}, index=5)


@pytest.mark.parametrize("point", [0, -0.00001, float("nan"), float("inf"), "0.1", True])
def test_a_bad_point_is_rejected(point: object) -> None:
    tree = group("AND", cmp("close", "equals", 1.1))
    with pytest.raises(ValueError, match="point must be a positive number"):
        evaluate(tree, {"close": series(1.1)}, point=point)  # type: ignore[arg-type]


# --- on real bars ---------------------------------------------------------------------------------


def rates() -> np.ndarray:
    dtype = [("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
             ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8")]  # fmt: skip
    bars = np.zeros(len(EURUSD), dtype=dtype)
    bars["time"] = EURUSD.index.to_numpy(dtype="datetime64[s]").astype(np.int64)
    for column in ("open", "high", "low", "close"):
        bars[column] = EURUSD[column.capitalize()].to_numpy(dtype=np.float64)
    bars["tick_volume"] = EURUSD["Volume"].to_numpy(dtype=np.uint64)
    return bars


def test_replay_index_path_matches_the_live_path_on_real_bars() -> None:
    """Evaluating the full-history series at index i equals evaluating bars[:i+1] at their end."""
    bars = rates()[:1500]
    tree = group(
        "OR",
        cmp("ema_9", "crosses_above", "ema_21"),
        group("AND", cmp("rsi_14", "less_than", 35), cmp("close", "greater_than", "bb_lower_20_2")),
    )
    history = FullHistory(bars)
    cache = IndicatorCache()
    fired = 0
    for i in range(1, len(bars), 7):
        window = bars[: i + 1]

        def live_values(operand: Operand, window: np.ndarray = window) -> Floats:
            return cache.series("EURUSD", "H1", operand, window)

        live = evaluate(tree, live_values, point=POINT)
        replay = evaluate(tree, history.series, i, point=POINT)
        assert live is replay, f"bar {i}"
        fired += live
    assert 10 < fired < 150  # the strategy does fire, and not on every bar


def test_cross_found_on_real_bars_is_a_real_cross() -> None:
    bars = rates()
    fast, slow = compute(parse_operand("ema_9"), bars), compute(parse_operand("ema_21"), bars)
    condition = group("AND", cmp("ema_9", "crosses_above", "ema_21"))
    values = {"ema_9": fast, "ema_21": slow}
    hits = [i for i in range(len(bars)) if evaluate(condition, values, i, point=POINT)]
    expected = [i for i in range(21, len(bars)) if fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]]
    assert hits == expected
    assert len(hits) > 50


# --- explain -------------------------------------------------------------------------------------


def test_explain_a_cross() -> None:
    values = {"ema_9": series(1.08390, 1.08412), "ema_21": series(1.08401, 1.08399)}
    tree = group("AND", cmp("ema_9", "crosses_above", "ema_21"))
    assert explain(tree, values, point=POINT) == (
        "AND[ema_9 crosses_above ema_21: 1.08412 > 1.08399 (was 1.08390 <= 1.08401) -> true] -> true"
    )
    values["ema_9"] = series(1.08405, 1.08412)
    assert explain(tree, values, point=POINT) == (
        "AND[ema_9 crosses_above ema_21: 1.08412 > 1.08399 (was 1.08405 > 1.08401) -> false] -> false"
    )


def test_explain_a_nested_group_with_warm_up() -> None:
    values = {"rsi_14": series(31.5), "close": series(1.1), "adx_14": series(NAN)}
    tree = group(
        "OR",
        cmp("rsi_14", "less_than", 30),
        group("AND", cmp("close", "equals", 1.100004), cmp("adx_14", "greater_than", 25)),
    )
    assert explain(tree, values, point=POINT) == (
        "OR[rsi_14 less_than 30: 31.50000 >= 30.00000 -> false; "
        "AND[close equals 1.100004: 1.10000 == 1.10000 (within half a point) -> true; "
        "adx_14 greater_than 25: adx_14 has no value yet -> false] -> false] -> false"
    )
    assert evaluate(tree, values, point=POINT) is False


def test_explain_uses_the_symbols_digits() -> None:
    tree = group("AND", cmp("close", "greater_than", 150))
    assert explain(tree, {"close": series(151.2346)}, point=0.001) == (
        "AND[close greater_than 150: 151.235 > 150.000 -> true] -> true"
    )


# --- one entry per closed bar --------------------------------------------------------------------


def test_entry_gate_fires_once_per_closed_bar() -> None:
    gate = EntryGate()
    bar = 1_700_000_000
    assert gate.try_fire(bar)
    assert not gate.try_fire(bar)
    assert not gate.can_fire(bar)
    assert not gate.try_fire(bar - 3600)  # an older bar never fires again
    assert gate.last_fired == bar
    assert gate.try_fire(bar + 3600)
    assert gate.last_fired == bar + 3600


def test_entry_gate_takes_aware_datetimes_and_a_restored_bar() -> None:
    opened = datetime(2024, 5, 1, 12, tzinfo=UTC)
    gate = EntryGate(last_fired=opened)
    assert not gate.try_fire(int(opened.timestamp()))
    assert gate.try_fire(opened + timedelta(hours=1))
    with pytest.raises(ValueError, match="no time zone"):
        gate.try_fire(datetime(2024, 5, 1, 14))
    assert gate.last_fired == int((opened + timedelta(hours=1)).timestamp())
