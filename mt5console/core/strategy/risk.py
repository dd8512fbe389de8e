"""Position sizing and pips (STRATEGY_FORMAT.md, "Pips and volume"): pure functions.

Volumes are rounded by ``mt5console.core.broker.volume`` (down to the symbol's ``volume_step``, clamped
to ``volume_max``, ``VolumeError`` below ``volume_min``, never raised to the minimum lot).

Money per lot: a move of one price unit on one lot is worth ``tick_value / tick_size`` in the account
currency (the terminal's tick value already converts the profit currency). Every risk-based method
turns "money at risk" into lots with it:

    lots = money at risk / (distance in price x tick_value / tick_size)

Methods (``riskManagement.dynamicRisk.method``, used only when ``dynamicRisk.enabled``):

* ``fixed``: ``lotSize``.
* ``atr``: risk ``riskPercent``% of the balance over the strategy's stop distance when it has a stop,
  else over one ATR.
* ``volatility``: size so that a move of one ATR against the position costs ``riskPercent``% of the
  balance, whatever the stop: the position shrinks as volatility grows.
* ``kelly``: the Kelly fraction ``f = W - (1 - W) / R`` of the strategy's past closed trades (W the
  share of winners, R the average win over the average loss) is the share of the balance to risk on
  the stop (or one ATR), capped at ``riskPercent``%. With fewer than ``KELLY_MIN_TRADES`` decided trades
  (breakeven trades say nothing about the edge and are left out) it falls back to ``lotSize`` and says so.
  With no edge (f <= 0) Kelly's answer is "do not trade": ``SizingError``.

Without ``dynamicRisk.enabled`` the volume is ``lotSize``. Every volume goes through ``fit_volume``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mt5console.core.broker.models import SymbolSpec
from mt5console.core.broker.volume import fit_volume, format_volume, plain_volume
from mt5console.core.strategy.model_types import RiskManagement, RiskMethod

KELLY_MIN_TRADES: Final = 20


class SizingError(ValueError):
    """A position that cannot be sized from the inputs given; the message says which and why."""


# --- pips -----------------------------------------------------------------------------------------


def pips_to_price(pips: float, spec: SymbolSpec) -> float:
    """A distance in pips as a distance in price (25 pips on EURUSD -> 0.0025)."""
    return pips * spec.pip


def price_to_pips(distance: float, spec: SymbolSpec) -> float:
    """A distance in price as pips (0.0025 on EURUSD -> 25.0, up to float rounding)."""
    if spec.pip <= 0:
        raise ValueError(f"{spec.name}'s pip size is {spec.pip}: it must be positive")
    return distance / spec.pip


# --- sizing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sizing:
    """A sized position: the volume to send and one line saying how it was reached."""

    volume: float
    explanation: str
    clamped_to_max: bool


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _money_per_price_unit(spec: SymbolSpec) -> float:
    """What a move of 1.0 in price is worth on one lot, in the account currency."""
    if not (spec.tick_size > 0 and spec.tick_value > 0):
        raise SizingError(
            f"{spec.name} reports tick value {spec.tick_value} and tick size {spec.tick_size}:"
            " cannot turn a risk in money into lots (is the symbol selected and its market open?)"
        )
    return spec.tick_value / spec.tick_size


def _risk_distance(
    spec: SymbolSpec, stop_distance: float | None, atr: float | None, *, method: str, prefer_stop: bool
) -> tuple[float, str]:
    """The price distance the money at risk is spread over, and how to name it in the explanation."""
    for value, name in ((stop_distance, "stop"), (atr, "ATR")):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise SizingError(f"the {name} distance must be a positive price distance, not {value}")
    if prefer_stop and stop_distance is not None:
        return stop_distance, f"the {price_to_pips(stop_distance, spec):.1f}-pip stop"
    if atr is not None:
        return atr, f"one ATR ({price_to_pips(atr, spec):.1f} pips)"
    needs = "a stop loss or an ATR value" if prefer_stop else "an ATR value"
    raise SizingError(f"dynamic risk '{method}' needs {needs} to size the position; none was given")


def _risk_sizing(
    method: str,
    fraction: float,
    *,
    balance: float,
    spec: SymbolSpec,
    distance: float,
    distance_text: str,
    note: str = "",
) -> tuple[float, str]:
    money_at_risk = balance * fraction
    per_lot = distance * _money_per_price_unit(spec)
    volume = money_at_risk / per_lot
    text = (
        f"{method}: risk {fraction * 100:g}% of {_money(balance)}{note} = {_money(money_at_risk)}"
        f" over {distance_text} ({_money(per_lot)} per lot)"
    )
    return volume, text


def _kelly_fraction(trade_history: Sequence[float]) -> tuple[float, int] | None:
    """Kelly's f and the number of decided trades, or None with too few of them."""
    wins = [p for p in trade_history if p > 0]
    losses = [-p for p in trade_history if p < 0]
    decided = len(wins) + len(losses)
    if decided < KELLY_MIN_TRADES:
        return None
    if not wins:
        return -1.0, decided
    if not losses:
        return 1.0, decided  # never lost: f = W = 1, then capped by riskPercent
    win_rate = len(wins) / decided
    payoff = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
    return win_rate - (1 - win_rate) / payoff, decided


def size_position(
    risk: RiskManagement,
    *,
    balance: float | None,
    spec: SymbolSpec,
    entry_price: float,
    stop_distance: float | None,
    atr: float | None,
    trade_history: Sequence[float] = (),
) -> Sizing:
    """The volume for a new position under ``risk`` (see the module's docstring for each method).

    ``stop_distance`` is the entry-to-stop distance in price (``Levels.risk_distance``), ``atr`` the
    ATR in price at entry, ``trade_history`` the profits of the strategy's past closed trades (all of
    those given are used: the caller picks the window). ``balance`` None means it was not read: only
    the fixed lot size needs none. Raises SizingError or VolumeError with a
    message a trader can act on; nothing is clamped up to the minimum lot.
    """
    if not (math.isfinite(entry_price) and entry_price > 0):
        raise SizingError(f"the entry price must be a positive number, not {entry_price}")
    if balance is not None and not math.isfinite(balance):
        raise SizingError(f"the balance must be a number, not {balance}")
    dynamic = risk.dynamic
    method = dynamic.method if dynamic.enabled else RiskMethod.FIXED
    fixed_text = f"fixed lot size {plain_volume(risk.lot_size)}"
    if method == RiskMethod.FIXED:
        volume, text = risk.lot_size, fixed_text
    else:
        if balance is None:
            raise SizingError(f"dynamic risk '{method}' needs the account balance, which was not given")
        if balance <= 0:
            raise SizingError(f"dynamic risk '{method}' needs a positive balance, not {_money(balance)}")
        if not (math.isfinite(dynamic.risk_percent) and dynamic.risk_percent > 0):
            raise SizingError(f"riskPercent must be a positive number, not {dynamic.risk_percent}")
        cap = dynamic.risk_percent / 100
        if method == RiskMethod.ATR:
            distance, where = _risk_distance(spec, stop_distance, atr, method=method, prefer_stop=True)
            volume, text = _risk_sizing(
                "atr", cap, balance=balance, spec=spec, distance=distance, distance_text=where
            )
        elif method == RiskMethod.VOLATILITY:
            distance, where = _risk_distance(spec, None, atr, method=method, prefer_stop=False)
            volume, text = _risk_sizing(
                "volatility", cap, balance=balance, spec=spec, distance=distance, distance_text=where
            )
        else:
            volume, text = _kelly_volume(
                risk, cap, balance=balance, spec=spec, stop_distance=stop_distance, atr=atr,
                trade_history=trade_history, fixed_text=fixed_text,
            )  # fmt: skip
    fitted = fit_volume(volume, spec)
    text += f" -> {format_volume(fitted.volume, spec)} lots"
    if fitted.clamped_to_max:
        maximum = format_volume(spec.volume_max, spec)
        text += f" (cut from {plain_volume(volume)} to {spec.name}'s maximum {maximum})"
    return Sizing(fitted.volume, text, fitted.clamped_to_max)


def _kelly_volume(
    risk: RiskManagement,
    cap: float,
    *,
    balance: float,
    spec: SymbolSpec,
    stop_distance: float | None,
    atr: float | None,
    trade_history: Sequence[float],
    fixed_text: str,
) -> tuple[float, str]:
    kelly = _kelly_fraction(trade_history)
    if kelly is None:
        decided = sum(1 for p in trade_history if p != 0)
        return risk.lot_size, (
            f"kelly: only {decided} closed trade(s) with a profit or loss, {KELLY_MIN_TRADES} needed;"
            f" {fixed_text}"
        )
    f, decided = kelly
    if f <= 0:
        raise SizingError(
            f"kelly: the strategy's last {decided} trades show no edge (Kelly fraction {f:.3f});"
            " Kelly sizing opens no position"
        )
    distance, where = _risk_distance(spec, stop_distance, atr, method="kelly", prefer_stop=True)
    fraction = min(f, cap)
    note = f" (Kelly {f:.3f} over {decided} trades" + (", capped by riskPercent)" if f > cap else ")")
    return _risk_sizing(
        "kelly", fraction, balance=balance, spec=spec, distance=distance, distance_text=where, note=note
    )
