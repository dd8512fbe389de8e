"""Volume rounding to a symbol's lot grid (STRATEGY_FORMAT.md, "Pips and volume"): pure functions.

Volumes are rounded DOWN to the symbol's ``volume_step`` and clamped to ``volume_max``; a volume that
rounds to less than ``volume_min`` raises ``VolumeError`` and is never silently raised to the minimum
lot, because a minimum lot can be many times the risk the strategy asked for.

It sits in the broker layer because it is a rule of the symbol the broker describes, and both the
strategies (sizing, partial exits) and the agent's remote trade jobs check volumes with it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from mt5console.core.broker.models import SymbolSpec

# Relative tolerance under which volume / step is taken as a whole number of steps (0.3 / 0.01 is
# 29.999999999999996 in binary floating point and must give 30 steps, not 29).
_STEP_TOLERANCE: Final = 1e-9


class VolumeError(ValueError):
    """A volume the symbol cannot trade (below its minimum after rounding, or not a positive number)."""


@functools.lru_cache(maxsize=256, typed=True)
def _step_decimals(step: float) -> int:
    # 0.01 -> 2, 0.25 -> 2, 1.0 -> 0: the decimals a volume on this step grid is written with.
    # Cached: a symbol has one step, asked for on every volume, and the Decimal round trip costs
    # ten times the lookup. typed: 1 and 1.0 (or True) are separate entries, as their reprs differ.
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 8


def format_volume(volume: float, spec: SymbolSpec) -> str:
    """A volume written with the decimals of the symbol's volume step: 0.3 -> '0.30' for step 0.01."""
    return f"{volume:.{_step_decimals(spec.volume_step)}f}"


def plain_volume(value: float) -> str:
    """A requested volume as the trader wrote or computed it: 0.004 -> '0.004', 2.0 -> '2'."""
    return f"{value:.8f}".rstrip("0").rstrip(".")


def _checked_step(spec: SymbolSpec) -> float:
    step = spec.volume_step
    if not (math.isfinite(step) and step > 0):
        raise VolumeError(f"{spec.name}'s volume step is {step}: it must be positive")
    return step


def _floored(volume: float, step: float) -> float:
    """A finite, non-negative ``volume`` rounded down to whole steps of a valid ``step``."""
    steps = volume / step
    nearest = round(steps)
    whole = nearest if math.isclose(steps, nearest, rel_tol=_STEP_TOLERANCE) else math.floor(steps)
    # Rounded to the step's decimals so that 3 x 0.1 is stored as 0.3, not 0.30000000000000004.
    return round(whole * step, _step_decimals(step))


def floor_to_step(volume: float, spec: SymbolSpec) -> float:
    """``volume`` rounded DOWN to a whole number of ``volume_step`` (0.0 when below one step).

    No minimum or maximum is applied: partial exits use this to split a position. Robust to binary
    float error: 0.3 with step 0.01 gives 0.30, not 0.29.
    """
    step = _checked_step(spec)
    if not math.isfinite(volume) or volume < 0:
        raise VolumeError(f"a volume must be a positive number of lots, not {volume}")
    return _floored(volume, step)


@dataclass(frozen=True, slots=True)
class RoundedVolume:
    """The tradeable volume for a requested one, and whether the symbol's maximum cut it."""

    volume: float
    requested: float
    clamped_to_max: bool  # the caller logs it: the position is smaller than the method asked for


def fit_volume(volume: float, spec: SymbolSpec) -> RoundedVolume:
    """Round ``volume`` down to the step and clamp it to ``volume_max``; VolumeError below the minimum."""
    if not math.isfinite(volume) or volume <= 0:
        raise VolumeError(f"a volume must be a positive number of lots, not {volume}")
    # floor_to_step without its volume check, which the one above implies (finite and > 0).
    rounded = _floored(volume, _checked_step(spec))
    if rounded < spec.volume_min and not math.isclose(rounded, spec.volume_min, rel_tol=_STEP_TOLERANCE):
        raise VolumeError(
            f"{plain_volume(volume)} lots rounds down to {format_volume(rounded, spec)},"
            f" below {spec.name}'s minimum {format_volume(spec.volume_min, spec)}"
        )
    if spec.volume_max > 0 and rounded > spec.volume_max:
        return RoundedVolume(floor_to_step(spec.volume_max, spec), volume, clamped_to_max=True)
    return RoundedVolume(rounded, volume, False)  # positional: keywords cost more here


def round_volume(volume: float, spec: SymbolSpec) -> float:
    """The volume to send: rounded down to ``volume_step``, at most ``volume_max``.

    Raises VolumeError ("0.004 lots rounds down to 0.00, below EURUSD's minimum 0.01") when the
    rounded volume is below ``volume_min``. Use ``fit_volume`` to learn whether the maximum cut it.
    """
    return fit_volume(volume, spec).volume
