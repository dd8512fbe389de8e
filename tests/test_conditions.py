"""Condition groups evaluated on closed bars: crosses, comparators, numbers, nesting, warm-up, gate."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5console.core.strategy.condition_tree import Comparator, Comparison, ConditionGroup, Logic, Side
from mt5console.core.strategy.conditions import EntryGate, evaluate, evaluate_all, explain, judge
from mt5console.core.strategy.indicators import FullHistory, IndicatorCache, compute
from mt5console.core.strategy.operands import Operand, parse_operand
from tests.market_data import eurusd_rates

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


def test_replay_index_path_matches_the_live_path_on_real_bars() -> None:
    """Evaluating the full-history series at index i equals evaluating bars[:i+1] at their end."""
    bars = eurusd_rates()[:1500]
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
    bars = eurusd_rates()
    fast, slow = compute(parse_operand("ema_9"), bars), compute(parse_operand("ema_21"), bars)
    condition = group("AND", cmp("ema_9", "crosses_above", "ema_21"))
    values = {"ema_9": fast, "ema_21": slow}
    hits = [i for i in range(len(bars)) if evaluate(condition, values, i, point=POINT)]
    expected = [i for i in range(21, len(bars)) if fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]]
    assert hits == expected
    assert len(hits) > 50


# --- every index at once --------------------------------------------------------------------------


def scalar_at_every_index(
    tree: ConditionGroup, values: dict[str, Floats], point: float = POINT
) -> list[bool]:
    length = len(next(iter(values.values())))
    return [evaluate(tree, values, i, point=point) for i in range(length)]


def agrees(tree: ConditionGroup, values: dict[str, Floats], point: float = POINT) -> npt.NDArray[np.bool_]:
    """evaluate_all's result, after checking it equals evaluate at every index."""
    every = evaluate_all(tree, values, point=point)
    assert every.dtype == np.bool_
    assert every.tolist() == scalar_at_every_index(tree, values, point)
    return every


REAL_OPERANDS = ("close", "open", "ema_9", "ema_21", "sma_20", "rsi_14", "bb_lower_20_2", "bb_upper_20_2",
                 "macd_12_26_9", "macd_signal_12_26_9", "adx_14")  # fmt: skip


@pytest.fixture(scope="module")
def real_values() -> dict[str, Floats]:
    bars = eurusd_rates()
    return {name: compute(parse_operand(name), bars) for name in REAL_OPERANDS}


# Pairs that cross and touch on the EURUSD H1 bars; numbers on either side; warm-up NaNs in most.
REAL_PAIRS: list[tuple[str | float, str | float]] = [
    ("ema_9", "ema_21"),
    ("close", "bb_lower_20_2"),
    ("macd_12_26_9", "macd_signal_12_26_9"),
    ("rsi_14", 30.0),
    (70.0, "rsi_14"),
    ("close", "open"),
    ("adx_14", 25.0),
    ("close", "sma_20"),
]


@pytest.mark.parametrize("comparator", [c.value for c in Comparator])
@pytest.mark.parametrize(("left", "right"), REAL_PAIRS)
def test_evaluate_all_agrees_with_evaluate_on_real_bars(
    real_values: dict[str, Floats], comparator: str, left: str | float, right: str | float
) -> None:
    every = agrees(group("AND", cmp(left, comparator, right)), real_values)
    if comparator != "equals":  # touches within half a point are rare; the pairs below prove them
        assert every.any() and not every.all()
    warming = [name for name in (left, right) if isinstance(name, str) and np.isnan(real_values[name][0])]
    if warming:  # the warm-up bars are there, and false
        assert not every[0]


def test_evaluate_all_finds_touches_on_real_bars(real_values: dict[str, Floats]) -> None:
    touches = agrees(group("AND", cmp("close", "equals", "open")), real_values)
    assert 10 < touches.sum() < len(touches) / 2
    # Half a point is inclusive: a wider point finds every touch of the narrower one, and more.
    wider = agrees(group("AND", cmp("ema_9", "equals", "ema_21")), real_values, point=0.0001)
    narrower = agrees(group("AND", cmp("ema_9", "equals", "ema_21")), real_values, point=0.00002)
    assert narrower.sum() > 0 and wider.sum() > narrower.sum() and not (narrower & ~wider).any()


def test_evaluate_all_agrees_on_nested_groups_on_real_bars(real_values: dict[str, Floats]) -> None:
    entry = group(
        "OR",
        cmp("ema_9", "crosses_above", "ema_21"),
        group(
            "AND",
            cmp("rsi_14", "less_than", 35),
            cmp("close", "greater_than", "bb_lower_20_2"),
            group(
                "OR",
                cmp("macd_12_26_9", "crosses_below", "macd_signal_12_26_9"),
                cmp("adx_14", "greater_or_equal", 30),
            ),
        ),
    )
    every = agrees(entry, real_values)
    assert 20 < every.sum() < len(every) / 4
    both = agrees(
        group("AND", entry, group("OR", cmp("close", "equals", "open"), cmp(75, "less_than", "rsi_14"))),
        real_values,
    )
    assert both.sum() < every.sum()


def test_evaluate_all_reads_a_full_history_without_writing_into_it() -> None:
    history = FullHistory(eurusd_rates()[:2000])
    tree = group("AND", cmp("ema_9", "crosses_above", "ema_21"), cmp("rsi_14", "greater_than", 50))
    every = evaluate_all(tree, history.series, point=POINT)  # the read-only shared series
    assert every.tolist() == [evaluate(tree, history.series, i, point=POINT) for i in range(2000)]
    assert every.flags.writeable and every.any()


def hits(comparison: Comparison, values: dict[str, Floats]) -> list[int]:
    return np.flatnonzero(agrees(group("AND", comparison), values)).tolist()


def test_evaluate_all_on_equal_values_at_the_crossing_and_nan_gaps() -> None:
    #                0    1    2    3    4    5    6    7    8    9   10   11   12   13   14
    fast = series(1.0, 2.0, 3.0, 2.0, NAN, 3.0, 1.0, 2.0, 2.0, 3.0, 2.0, NAN, NAN, 1.0, 3.0)
    slow = series(2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0)
    values = {"ema_9": fast, "ema_21": slow}
    # Equal on bar 1 then above is a cross (2, 9), below then above too (14); NaN then above (5) is not.
    assert hits(cmp("ema_9", "crosses_above", "ema_21"), values) == [2, 9, 14]
    # Above then below (6); above then only equal (3, 10) is not, nor NaN then below (13).
    assert hits(cmp("ema_9", "crosses_below", "ema_21"), values) == [6]
    assert hits(cmp("ema_9", "equals", "ema_21"), values) == [1, 3, 7, 8, 10]
    assert hits(cmp("ema_9", "greater_or_equal", "ema_21"), values) == [1, 2, 3, 5, 7, 8, 9, 10, 14]
    # A NaN on the slow side too: bar 1 of index 2 is now missing.
    values["ema_21"] = series(2.0, NAN, 2.0, 2.0, 2.0, 2.0, 2.0, NAN, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0)
    assert hits(cmp("ema_9", "crosses_above", "ema_21"), values) == [9, 14]
    assert hits(cmp("ema_9", "less_than", "ema_21"), values) == [0, 6, 13]
    # A number against a series with gaps: a constant series, whose bar 1 always exists.
    assert hits(cmp("ema_9", "crosses_above", 2.5), values) == [2, 9, 14]
    assert hits(cmp(2.5, "crosses_above", "ema_9"), values) == [3, 6, 10]


def test_evaluate_all_equals_is_inclusive_at_half_a_point() -> None:
    point = 0.25  # binary fractions: the distances below are exact, so the bound is really hit
    values = {"close": series(1.0, 1.125, 1.25, 0.875, 0.75, NAN)}
    every = agrees(group("AND", cmp("close", "equals", 1.0)), values, point=point)
    assert every.tolist() == [True, True, False, True, False, False]


def test_evaluate_all_reads_float32_series_as_evaluate_does() -> None:
    # In float32 this distance is more than half a point; in float64 (how evaluate reads it) it is not.
    value, target = np.float32(1.7827605), 1.7827555262594614
    values = {"close": np.array([value, value], dtype=np.float32)}
    tree = group("AND", cmp("close", "equals", target))
    assert evaluate(tree, values, 0, point=POINT)  # type: ignore[arg-type]
    assert evaluate_all(tree, values, point=POINT).tolist() == [True, True]  # type: ignore[arg-type]


GRID = st.sampled_from([0.0, 1.0, 1.000004, 1.000005, 1.000006, 2.0, NAN])  # ties and half-point edges


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(GRID, GRID, GRID), min_size=0, max_size=12),
    comparators=st.lists(st.sampled_from(list(Comparator)), min_size=3, max_size=3),
    number=GRID.filter(lambda x: x == x),
    logic=st.sampled_from(list(Logic)),
)
def test_evaluate_all_agrees_with_evaluate_on_any_series(
    pairs: list[tuple[float, float, float]], comparators: list[Comparator], number: float, logic: Logic
) -> None:
    values = {
        name: np.array([p[k] for p in pairs], dtype=np.float64)
        for k, name in enumerate(("close", "ema_9", "sma_20"))
    }
    first, second, third = comparators
    tree = ConditionGroup(
        logic,
        (
            Comparison(parse_operand("close"), first, parse_operand("ema_9"), "a"),
            ConditionGroup(
                Logic.OR if logic is Logic.AND else Logic.AND,
                (
                    Comparison(number, second, parse_operand("sma_20"), "b"),
                    Comparison(parse_operand("ema_9"), third, number, "c"),
                ),
                "g",
            ),
        ),
        "rules.entry",
    )
    for child in (*tree.children, tree):
        agrees(child if isinstance(child, ConditionGroup) else group("AND", child), values)


def test_evaluate_all_with_numbers_only_and_bad_input() -> None:
    assert (
        evaluate_all(group("AND", cmp(2, "greater_than", 1)), {}, point=POINT, length=3).tolist()
        == [True] * 3
    )
    assert evaluate_all(group("AND", cmp(2, "equals", 1)), {}, point=POINT, length=2).tolist() == [False] * 2
    with pytest.raises(ValueError, match=r"rules\.entry: the group compares only numbers.*pass length="):
        evaluate_all(group("AND", cmp(2, "greater_than", 1)), {}, point=POINT)
    with pytest.raises(ValueError, match="two numbers cannot cross"):
        evaluate_all(group("AND", cmp(2, "crosses_above", 1)), {}, point=POINT, length=3)
    # Numbers next to series take the series' length.
    values = {"close": series(1.0, 2.0, 3.0)}
    mixed = group("AND", cmp(2, "greater_than", 1), cmp("close", "greater_than", 1.5))
    assert evaluate_all(mixed, values, point=POINT).tolist() == [False, True, True]
    assert evaluate_all(mixed, values, point=POINT, length=3).tolist() == [False, True, True]
    with pytest.raises(ValueError, match="close has 3 values but length has 4"):
        evaluate_all(mixed, values, point=POINT, length=4)
    with pytest.raises(ValueError, match=r"conditions\[0\]: ema_9 has 2 values but close has 3"):
        evaluate_all(
            group("AND", cmp("close", "greater_than", "ema_9")),
            {**values, "ema_9": series(1.0, 2.0)},
            point=POINT,
        )
    with pytest.raises(KeyError, match="no series for operand 'ema_21'"):
        evaluate_all(group("AND", cmp("close", "greater_than", "ema_21")), values, point=POINT)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="length must be a whole number of bars"):
            evaluate_all(mixed, values, point=POINT, length=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="point must be a positive number"):
        evaluate_all(mixed, values, point=0)
    assert (
        evaluate_all(group("AND", cmp("close", "crosses_above", 1)), {"close": series()}, point=POINT).size
        == 0
    )


def test_evaluate_all_speed_on_100k_bars() -> None:
    close = 1.1 + np.cumsum(np.random.default_rng(7).normal(0.0, 0.0002, 100_000))
    fast, slow = talib.EMA(close, timeperiod=9), talib.EMA(close, timeperiod=21)
    values = {"ema_9": fast, "ema_21": slow}
    tree = group("AND", cmp("ema_9", "crosses_above", "ema_21"))
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        every = evaluate_all(tree, values, point=POINT)
        timings.append(time.perf_counter() - started)
    print(f"\nevaluate_all, ema_9 crosses_above ema_21 on 100k bars: best {min(timings) * 1e3:.3f} ms, "
          f"median {sorted(timings)[10] * 1e3:.3f} ms")  # fmt: skip
    expected = np.zeros(len(close), dtype=np.bool_)
    expected[1:] = (fast[:-1] <= slow[:-1]) & (fast[1:] > slow[1:])
    assert np.array_equal(every, expected) and every.sum() > 1000


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


def test_explain_shows_more_digits_when_two_values_would_look_equal() -> None:
    # "close less_than ema_5: 1.26467 < 1.26467 -> true" read as a mistake in the log.
    tree = group("AND", cmp("close", "less_than", "ema_5"))
    assert explain(tree, {"close": series(1.264668), "ema_5": series(1.2646743)}, point=POINT) == (
        "AND[close less_than ema_5: 1.264668 < 1.264674 -> true] -> true"
    )
    cross = group("AND", cmp("close", "crosses_above", "ema_5"))
    values = {"close": series(1.2646611, 1.2646694), "ema_5": series(1.2646650, 1.2646690)}
    assert explain(cross, values, point=POINT) == (
        "AND[close crosses_above ema_5: 1.2646694 > 1.2646690 (was 1.264661 <= 1.264665) -> true] -> true"
    )
    same = {"close": series(1.26467), "ema_5": series(1.26467)}
    assert (
        explain(tree, same, point=POINT) == "AND[close less_than ema_5: 1.26467 >= 1.26467 -> false] -> false"
    )


def test_judge_is_evaluate_and_explain_from_one_reading(real_values: dict[str, Floats]) -> None:
    tree = group(
        "OR",
        group("AND", cmp("ema_9", "crosses_above", "ema_21"), cmp("rsi_14", "less_than", 70.0)),
        cmp("close", "equals", "open"),
        group("AND", cmp("adx_14", "greater_than", 25.0), cmp("close", "crosses_below", "sma_20")),
    )
    truths = []
    for index in range(0, len(real_values["close"]), 5):  # the warm-up bars (NaN) included
        holds_now, trace = judge(tree, real_values, index, point=POINT)
        assert holds_now is evaluate(tree, real_values, index, point=POINT)
        assert trace == explain(tree, real_values, index, point=POINT)
        truths.append(holds_now)
    assert any(truths) and not all(truths)
    with pytest.raises(ValueError, match="point must be a positive number"):
        judge(tree, real_values, point=0.0)


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
