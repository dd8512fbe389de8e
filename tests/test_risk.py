"""Volume rounding and position sizing, with hand-computed numbers on EURUSD, USDJPY and XAUUSD."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mt5console.core.broker.models import SymbolSpec
from mt5console.core.broker.volume import VolumeError, fit_volume, floor_to_step, round_volume
from mt5console.core.strategy.model_types import DynamicRisk, RiskManagement, RiskMethod
from mt5console.core.strategy.risk import (
    KELLY_MIN_TRADES,
    SizingError,
    pips_to_price,
    price_to_pips,
    size_position,
)
from tests.market_data import EURUSD, USDJPY, make_spec

# XAUUSD: 1 lot = 100 oz, one tick (0.01) is worth 1.00 USD; 2 digits so pip = point = 0.01.
XAUUSD = make_spec("XAUUSD", 2, 0.01, 0.01, contract_size=100.0, volume_max=50.0)


def risk(method: RiskMethod, percent: float = 1.0, lot: float = 0.1, enabled: bool = True) -> RiskManagement:
    return RiskManagement(lot_size=lot, max_positions=1, dynamic=DynamicRisk(enabled, method, percent))


# --- pips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "pips", "distance"),
    [(EURUSD, 25, 0.0025), (USDJPY, 25, 0.25), (XAUUSD, 25, 0.25), (XAUUSD, 350, 3.50)],
)
def test_pips_and_price_distances(spec: SymbolSpec, pips: float, distance: float) -> None:
    assert pips_to_price(pips, spec) == pytest.approx(distance)
    assert price_to_pips(distance, spec) == pytest.approx(pips)


# --- volumes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(0.3, 0.30), (1.0 - 0.7, 0.30), (0.1 * 3, 0.30), (0.57, 0.57), (0.579, 0.57), (0.019, 0.01), (2.0, 2.0)],
)
def test_round_volume_rounds_down_to_the_step_without_float_error(requested: float, expected: float) -> None:
    assert round_volume(requested, EURUSD) == expected


def test_round_volume_on_a_coarse_step() -> None:
    spec = make_spec("US500", 2, 0.01, 0.01, volume_min=0.1, volume_step=0.1)
    assert round_volume(0.35, spec) == 0.3
    assert round_volume(0.7, spec) == 0.7  # 0.7 / 0.1 = 6.999999999999999
    lots = make_spec("GER40", 2, 0.01, 0.01, volume_min=1.0, volume_step=1.0)
    assert round_volume(3.99, lots) == 3.0


def test_a_volume_below_the_minimum_is_an_error_never_a_minimum_lot() -> None:
    with pytest.raises(VolumeError) as raised:
        round_volume(0.004, EURUSD)
    assert str(raised.value) == "0.004 lots rounds down to 0.00, below EURUSD's minimum 0.01"
    coarse = make_spec("EURUSD", 5, 0.00001, 0.0001, volume_min=0.1, volume_step=0.01)
    with pytest.raises(
        VolumeError, match=re.escape("0.099 lots rounds down to 0.09, below EURUSD's minimum 0.10")
    ):
        round_volume(0.099, coarse)
    assert round_volume(0.1, coarse) == 0.1


@pytest.mark.parametrize("bad", [0.0, -0.1, math.nan, math.inf])
def test_a_volume_that_is_not_a_positive_number_is_an_error(bad: float) -> None:
    with pytest.raises(VolumeError, match="positive number of lots"):
        round_volume(bad, EURUSD)


def test_volume_above_the_maximum_is_clamped_and_flagged() -> None:
    fitted = fit_volume(75.456, XAUUSD)
    assert (fitted.volume, fitted.requested, fitted.clamped_to_max) == (50.0, 75.456, True)
    assert round_volume(75.456, XAUUSD) == 50.0
    inside = fit_volume(12.345, XAUUSD)
    assert (inside.volume, inside.clamped_to_max) == (12.34, False)


def test_floor_to_step_has_no_minimum() -> None:
    assert floor_to_step(0.004, EURUSD) == 0.0
    assert floor_to_step(0.025, EURUSD) == 0.02


@given(steps=st.integers(min_value=1, max_value=1_000_000))
def test_whole_steps_round_to_themselves(steps: int) -> None:
    volume = steps * 0.01
    assert round_volume(volume, make_spec("EURUSD", 5, 0.00001, 0.0001, volume_max=1e9)) == round(volume, 2)


@given(volume=st.floats(min_value=0.01, max_value=99.99, allow_nan=False))
def test_rounding_never_goes_up_nor_loses_a_whole_step(volume: float) -> None:
    rounded = round_volume(volume, EURUSD)
    assert rounded <= volume + 1e-9
    assert volume - rounded < 0.01 + 1e-9
    assert math.isclose(rounded * 100, round(rounded * 100), abs_tol=1e-6)


# --- sizing ---------------------------------------------------------------------------------------


def test_without_dynamic_risk_the_lot_size_is_used_rounded_down() -> None:
    sizing = size_position(
        risk(RiskMethod.ATR, enabled=False, lot=0.129),
        balance=10_000, spec=EURUSD, entry_price=1.084, stop_distance=0.0025, atr=0.002,
    )  # fmt: skip
    assert sizing.volume == 0.12
    assert sizing.explanation == "fixed lot size 0.129 -> 0.12 lots"
    fixed = size_position(
        risk(RiskMethod.FIXED, lot=0.05), balance=10_000, spec=EURUSD, entry_price=1.084,
        stop_distance=None, atr=None,
    )  # fmt: skip
    assert fixed.volume == 0.05


def test_a_fixed_lot_needs_no_balance_but_dynamic_risk_does() -> None:
    # The runner reads the account only for dynamic risk: a fixed lot is sized without it.
    fixed = size_position(
        risk(RiskMethod.FIXED, lot=0.05), balance=None, spec=EURUSD, entry_price=1.084,
        stop_distance=None, atr=None,
    )  # fmt: skip
    assert fixed.volume == 0.05
    with pytest.raises(SizingError, match="'atr' needs the account balance"):
        size_position(
            risk(RiskMethod.ATR), balance=None, spec=EURUSD, entry_price=1.084,
            stop_distance=0.0025, atr=0.002,
        )  # fmt: skip


def test_atr_method_risks_the_percent_over_the_stop_on_eurusd() -> None:
    # 1% of 10,000 = 100; 25 pips = 0.0025 x (1.00 / 0.00001) = 250 per lot; 100 / 250 = 0.40 lots.
    sizing = size_position(
        risk(RiskMethod.ATR), balance=10_000, spec=EURUSD, entry_price=1.08400,
        stop_distance=0.0025, atr=0.0040,
    )  # fmt: skip
    assert sizing.volume == 0.40
    assert sizing.explanation == (
        "atr: risk 1% of 10,000.00 = 100.00 over the 25.0-pip stop (250.00 per lot) -> 0.40 lots"
    )


def test_atr_method_falls_back_to_the_atr_without_a_stop() -> None:
    # 100 / (0.0020 x 100,000) = 0.50 lots.
    sizing = size_position(
        risk(RiskMethod.ATR), balance=10_000, spec=EURUSD, entry_price=1.084, stop_distance=None, atr=0.0020
    )
    assert sizing.volume == 0.50
    assert "one ATR (20.0 pips)" in sizing.explanation


def test_atr_method_on_usdjpy_and_xauusd() -> None:
    # USDJPY: 25 pips = 0.25 x (0.67 / 0.001) = 167.50 per lot; 100 / 167.5 = 0.597 -> 0.59.
    jpy = size_position(
        risk(RiskMethod.ATR), balance=10_000, spec=USDJPY, entry_price=149.250, stop_distance=0.25, atr=None
    )
    assert jpy.volume == 0.59
    assert "(167.50 per lot)" in jpy.explanation
    # XAUUSD: a 5.00 stop (500 pips) x (1.00 / 0.01) = 500 per lot; 2% of 10,000 = 200 -> 0.40 lots.
    gold = size_position(
        risk(RiskMethod.ATR, percent=2.0), balance=10_000, spec=XAUUSD, entry_price=2350.50,
        stop_distance=5.0, atr=None,
    )  # fmt: skip
    assert gold.volume == 0.40
    assert "500.0-pip stop" in gold.explanation


def test_volatility_method_uses_the_atr_even_with_a_stop() -> None:
    # A one-ATR move (40 pips = 400 per lot) costs 1% = 100: 0.25 lots, whatever the 25-pip stop.
    sizing = size_position(
        risk(RiskMethod.VOLATILITY), balance=10_000, spec=EURUSD, entry_price=1.084,
        stop_distance=0.0025, atr=0.0040,
    )  # fmt: skip
    assert sizing.volume == 0.25
    assert sizing.explanation.startswith("volatility: risk 1% of 10,000.00 = 100.00 over one ATR (40.0 pips)")
    with pytest.raises(SizingError, match="'volatility' needs an ATR value"):
        size_position(
            risk(RiskMethod.VOLATILITY), balance=10_000, spec=EURUSD, entry_price=1.084,
            stop_distance=0.0025, atr=None,
        )  # fmt: skip


def test_kelly_with_too_few_trades_falls_back_to_the_lot_size_and_says_so() -> None:
    history = [50.0] * 12 + [-25.0] * 7 + [0.0] * 5  # 19 decided trades; breakevens do not count
    sizing = size_position(
        risk(RiskMethod.KELLY, lot=0.07), balance=10_000, spec=EURUSD, entry_price=1.084,
        stop_distance=0.0025, atr=None, trade_history=history,
    )  # fmt: skip
    assert sizing.volume == 0.07
    assert sizing.explanation == (
        f"kelly: only 19 closed trade(s) with a profit or loss, {KELLY_MIN_TRADES} needed;"
        " fixed lot size 0.07 -> 0.07 lots"
    )


def test_kelly_fraction_below_the_cap() -> None:
    # W = 12/20 = 0.6, R = 50/25 = 2: f = 0.6 - 0.4/2 = 0.4; under a 50% cap 40% of 10,000 = 4,000
    # is risked over a 25-pip stop (250 per lot): 16 lots.
    history = [50.0] * 12 + [-25.0] * 8
    sizing = size_position(
        risk(RiskMethod.KELLY, percent=50.0), balance=10_000, spec=EURUSD, entry_price=1.084,
        stop_distance=0.0025, atr=None, trade_history=history,
    )  # fmt: skip
    assert sizing.volume == 16.0
    assert "Kelly 0.400 over 20 trades)" in sizing.explanation


def test_kelly_fraction_is_capped_by_risk_percent() -> None:
    history = [50.0] * 12 + [-25.0] * 8
    sizing = size_position(
        risk(RiskMethod.KELLY, percent=1.0), balance=10_000, spec=EURUSD, entry_price=1.084,
        stop_distance=0.0025, atr=None, trade_history=history,
    )  # fmt: skip
    assert sizing.volume == 0.40  # 1% of 10,000 over 250 per lot
    assert "capped by riskPercent" in sizing.explanation


def test_kelly_without_an_edge_opens_nothing() -> None:
    # W = 0.25, R = 1: f = 0.25 - 0.75 = -0.5.
    history = [10.0] * 5 + [-10.0] * 15
    with pytest.raises(SizingError, match=r"no edge \(Kelly fraction -0.500\)"):
        size_position(
            risk(RiskMethod.KELLY), balance=10_000, spec=EURUSD, entry_price=1.084,
            stop_distance=0.0025, atr=None, trade_history=history,
        )  # fmt: skip


def test_sizing_above_the_maximum_is_clamped_and_explained() -> None:
    sizing = size_position(
        risk(RiskMethod.ATR), balance=1_000_000, spec=XAUUSD, entry_price=2350.5, stop_distance=1.0, atr=None
    )  # 10,000 / 100 per lot = 100 lots, XAUUSD's maximum is 50
    assert sizing.volume == 50.0
    assert sizing.clamped_to_max
    assert sizing.explanation.endswith("(cut from 100 to XAUUSD's maximum 50.00)")


def test_sizing_below_the_minimum_is_an_error() -> None:
    # 1% of 100 = 1.00 over 250 per lot = 0.004 lots.
    with pytest.raises(
        VolumeError, match=re.escape("0.004 lots rounds down to 0.00, below EURUSD's minimum 0.01")
    ):
        size_position(
            risk(RiskMethod.ATR), balance=100, spec=EURUSD, entry_price=1.084, stop_distance=0.0025, atr=None
        )


@pytest.mark.parametrize(
    ("tick_value", "balance", "entry", "stop", "message"),
    [
        (0.0, 10_000.0, 1.084, 0.0025, "EURUSD reports tick value 0.0"),
        (1.0, 0.0, 1.084, 0.0025, "needs a positive balance"),
        (1.0, math.nan, 1.084, 0.0025, "the balance must be a number"),
        (1.0, 10_000.0, 1.084, None, "'atr' needs a stop loss or an ATR value"),
        (1.0, 10_000.0, 1.084, -0.001, "the stop distance must be a positive price distance"),
        (1.0, 10_000.0, 0.0, 0.0025, "the entry price must be a positive number"),
    ],
)
def test_bad_sizing_inputs_name_what_is_wrong(
    tick_value: float, balance: float, entry: float, stop: float | None, message: str
) -> None:
    spec = make_spec("EURUSD", 5, 0.00001, 0.0001, tick_value=tick_value)
    with pytest.raises(SizingError, match=message):
        size_position(
            risk(RiskMethod.ATR), balance=balance, spec=spec, entry_price=entry, stop_distance=stop, atr=None
        )
