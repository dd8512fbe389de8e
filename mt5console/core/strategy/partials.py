"""Partial exits of one position: a small state machine fed with prices (STRATEGY_FORMAT.md, "Exits").

``PartialPlan.create`` builds the plan when the position opens; ``plan.on_price(bid, ask)`` returns
what to do now (close some volume, move the stop); ``to_dict`` / ``from_dict`` persist the state so a
restarted console resumes it without firing a level twice. Pure: no broker, no I/O.

Rules:

* R is the initial risk: the entry-to-stop distance when the position opened. A level is reached
  when the price closing the position has moved ``atR`` x R in profit: a buy's bid >= entry + atR x R,
  a sell's ask <= entry - atR x R (the trigger price rounded to the symbol's price grid).
* Each level closes ``closePercent`` of the ORIGINAL volume, rounded DOWN to ``volume_step``. It closes
  the whole remainder instead when that rounds to 0, when it would leave less than ``volume_min``
  open (the broker refuses such a close), or when the levels fired so far add up to 100%.
* ``moveStopTo``: 0 = breakeven (the entry), a number of R = entry +/- R x R. The stop only ever moves
  in the position's favour; when several levels fire at once one MoveStop carries the best of them,
  and none is sent once the position is fully closed.
* ``sequential``: a level is armed only when every level before it has fired (levels 1 and 2 both fire,
  in order, on a price that jumped past both). ``parallel``: every level is armed from the start and
  any reached level fires, several at once if the price jumped, nearest (smallest atR) first.
* Each level fires once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

from mt5console.core.broker.models import Side, SymbolSpec
from mt5console.core.broker.volume import floor_to_step, format_volume
from mt5console.core.strategy.exits import format_price, round_price
from mt5console.core.strategy.model_types import PartialExits, PartialLevel, PartialMode
from mt5console.core.strategy.validation import format_number

STATE_VERSION: Final = 1
_Choice = TypeVar("_Choice", bound=StrEnum)
_TOLERANCE: Final = 1e-9


class PartialPlanError(ValueError):
    """A partial-exit plan that cannot be built or resumed; the message says which input is wrong."""


@dataclass(frozen=True, slots=True)
class CloseVolume:
    """Close ``volume`` lots of the position (level_index counts from 0)."""

    volume: float
    level_index: int
    reason: str


@dataclass(frozen=True, slots=True)
class MoveStop:
    """Move the position's stop loss to ``new_stop`` (a price on the symbol's grid)."""

    new_stop: float
    level_index: int


PartialAction = CloseVolume | MoveStop


def _positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PartialPlanError(f"{what} must be a number, not {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise PartialPlanError(f"{what} must be a positive number, not {value!r}")
    return number


def _check_levels(levels: tuple[PartialLevel, ...]) -> None:
    if not levels:
        raise PartialPlanError("partial exits need at least one level")
    for index, level in enumerate(levels, start=1):
        _positive(level.at_r, f"partial exit level {index}: atR")
        percent = _positive(level.close_percent, f"partial exit level {index}: closePercent")
        if percent > 100:
            raise PartialPlanError(f"partial exit level {index}: closePercent {percent} is over 100")
        move = level.move_stop_to_r
        if move is not None and (not math.isfinite(move) or move < 0 or move >= level.at_r):
            raise PartialPlanError(
                f"partial exit level {index}: moveStopTo {move} must be between 0 (breakeven)"
                f" and the level's atR {format_number(level.at_r)}"
            )


class PartialPlan:
    """The partial exits of one position and which of them have fired."""

    def __init__(
        self,
        *,
        spec: SymbolSpec,
        side: Side,
        mode: PartialMode,
        levels: tuple[PartialLevel, ...],
        entry_price: float,
        initial_risk_distance: float,
        original_volume: float,
        closed_volume: float = 0.0,
        stop: float | None = None,
        fired: frozenset[int] = frozenset(),
    ) -> None:
        # Use create() or from_dict(): both check their inputs before calling this.
        self.spec = spec
        self.side = side
        self.mode = mode
        self.levels = levels
        self.entry_price = entry_price
        self.initial_risk_distance = initial_risk_distance
        self.original_volume = original_volume
        self.closed_volume = closed_volume
        self.stop = stop if stop is not None else self._price_at_r(-1.0)
        self._fired = set(fired)

    @classmethod
    def create(
        cls,
        partial: PartialExits,
        side: Side,
        entry_price: float,
        initial_risk_distance: float | None,
        original_volume: float,
        spec: SymbolSpec,
    ) -> PartialPlan:
        """The plan of a position just opened. Raises PartialPlanError on bad input."""
        if not partial.enabled:
            raise PartialPlanError("partial exits are not enabled for this strategy")
        if initial_risk_distance is None:
            raise PartialPlanError(
                "partial exits are measured in R (the initial risk) and this position has no stop loss"
            )
        if not isinstance(side, Side):
            raise PartialPlanError(f"side must be buy or sell, not {side!r}")
        _check_levels(partial.levels)
        return cls(
            spec=spec,
            side=side,
            mode=PartialMode(partial.mode),
            levels=partial.levels,
            entry_price=_positive(entry_price, "the entry price"),
            initial_risk_distance=_positive(initial_risk_distance, "the initial risk distance"),
            original_volume=_positive(original_volume, "the original volume"),
        )

    # --- state -------------------------------------------------------------------------------------

    @property
    def fired(self) -> frozenset[int]:
        """Indexes (from 0) of the levels that have fired."""
        return frozenset(self._fired)

    @property
    def remaining_volume(self) -> float:
        """The volume the plan believes is still open (original minus what it closed)."""
        return floor_to_step(max(0.0, self.original_volume - self.closed_volume), self.spec)

    @property
    def done(self) -> bool:
        """True when every level has fired or the plan closed the whole position."""
        return len(self._fired) == len(self.levels) or self.remaining_volume <= 0

    def _sign(self) -> float:
        return 1.0 if self.side == Side.BUY else -1.0

    def _price_at_r(self, multiple: float) -> float:
        """The price ``multiple`` x R in profit (negative: in loss), on the symbol's price grid."""
        raw = self.entry_price + self._sign() * multiple * self.initial_risk_distance
        return round_price(raw, self.spec)

    # --- prices ------------------------------------------------------------------------------------

    def on_price(self, bid: float, ask: float, *, open_volume: float | None = None) -> list[PartialAction]:
        """The actions a new price calls for, in the order to carry them out (closes, then one MoveStop).

        ``open_volume``, when given, is the position's volume at the terminal: a close never asks
        for more than it (the trader may have closed part of the position by hand).

        The plan counts the actions it returns as done. Save ``to_dict()`` after carrying them out;
        when the broker refuses one, resume from the state saved before this call to try again.
        """
        _positive(bid, "bid")
        _positive(ask, "ask")
        if open_volume is not None and not (math.isfinite(open_volume) and open_volume >= 0):
            raise PartialPlanError(f"the open volume must be zero or a positive number, not {open_volume}")
        price = bid if self.side == Side.BUY else ask
        # What is really open: the plan's own count, or less when the terminal says so.
        available = self.remaining_volume
        if open_volume is not None:
            available = min(available, floor_to_step(open_volume, self.spec))
        actions: list[PartialAction] = []
        best_stop: tuple[float, int] | None = None
        for index in self._armed_in_order():
            if not self._reached(index, price):
                if self.mode == PartialMode.SEQUENTIAL:
                    break  # later levels wait for this one
                continue
            self._fired.add(index)
            close = self._close_for(index, available)
            if close is None:
                continue  # nothing left open: the level is spent without an action
            actions.append(close)
            self.closed_volume = round(self.closed_volume + close.volume, 10)  # no float drift
            available = floor_to_step(max(0.0, available - close.volume), self.spec)
            move = self.levels[index].move_stop_to_r
            if move is not None:
                candidate = self._price_at_r(move)
                if best_stop is None or self._better(candidate, best_stop[0]):
                    best_stop = (candidate, index)
        if best_stop is not None and available > 0 and self._better(best_stop[0], self.stop):
            self.stop = best_stop[0]
            actions.append(MoveStop(best_stop[0], best_stop[1]))
        return actions

    def _armed_in_order(self) -> list[int]:
        pending = [index for index in range(len(self.levels)) if index not in self._fired]
        if self.mode == PartialMode.PARALLEL:
            pending.sort(key=lambda index: (self.levels[index].at_r, index))
        return pending

    def _reached(self, index: int, price: float) -> bool:
        trigger = self._price_at_r(self.levels[index].at_r)
        return price >= trigger if self.side == Side.BUY else price <= trigger

    @property
    def stop_moved(self) -> bool:
        """Whether a level moved the stop from where it was at the opening (1 R from the entry)."""
        return self._better(self.stop, self._price_at_r(-1.0))

    def behind(self, stop: float) -> bool:
        """Whether a position's ``stop`` (0: none) protects less than the plan's."""
        return stop == 0 or self._better(self.stop, stop)

    def _better(self, candidate: float, current: float) -> bool:
        return candidate > current if self.side == Side.BUY else candidate < current

    def _close_for(self, index: int, remaining: float) -> CloseVolume | None:
        spec, level = self.spec, self.levels[index]
        if remaining <= 0:
            return None
        wanted = floor_to_step(self.original_volume * level.close_percent / 100, spec)
        fired_percent = sum(self.levels[i].close_percent for i in self._fired)
        trigger = format_price(self._price_at_r(level.at_r), spec)
        head = f"partial exit {index + 1} at {format_number(level.at_r)} R ({trigger})"
        share = f"{format_number(level.close_percent)}% of {format_volume(self.original_volume, spec)} lots"
        if wanted <= 0:
            why = f"{share} rounds down to {format_volume(0.0, spec)}"
        elif wanted >= remaining - _TOLERANCE:
            why = f"{share} is at least what is left"
        elif remaining - wanted < spec.volume_min - _TOLERANCE:
            why = (
                f"{share} would leave {format_volume(max(0.0, remaining - wanted), spec)},"
                f" below {spec.name}'s minimum {format_volume(spec.volume_min, spec)}"
            )
        elif fired_percent >= 100 - _TOLERANCE:
            why = "the levels add up to 100%"
        else:
            return CloseVolume(wanted, index, f"{head}: close {share} = {format_volume(wanted, spec)}")
        reason = f"{head}: close the remaining {format_volume(remaining, spec)} lots ({why})"
        return CloseVolume(remaining, index, reason)

    # --- persistence -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """The plan's whole state as JSON-ready values (the symbol spec is not included)."""
        return {
            "version": STATE_VERSION,
            "symbol": self.spec.name,
            "side": self.side.value,
            "mode": self.mode.value,
            "entryPrice": self.entry_price,
            "initialRisk": self.initial_risk_distance,
            "originalVolume": self.original_volume,
            "closedVolume": self.closed_volume,
            "stop": self.stop,
            "levels": [
                {"atR": level.at_r, "closePercent": level.close_percent, "moveStopTo": level.move_stop_to_r}
                for level in self.levels
            ],
            "fired": sorted(self._fired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], spec: SymbolSpec) -> PartialPlan:
        """A plan saved by ``to_dict``, resumed with the symbol's current specification."""
        reader = _StateReader(data)
        if data.get("version") != STATE_VERSION:
            raise PartialPlanError(
                f"saved partial-exit state has version {data.get('version')!r}; expected {STATE_VERSION}"
            )
        symbol = data.get("symbol")
        if symbol != spec.name:
            raise PartialPlanError(f"saved partial-exit state is for {symbol!r}, not {spec.name!r}")
        levels = reader.levels()
        _check_levels(levels)
        fired = reader.fired(len(levels))
        return cls(
            spec=spec,
            side=reader.choice("side", Side),
            mode=reader.choice("mode", PartialMode),
            levels=levels,
            entry_price=reader.positive("entryPrice"),
            initial_risk_distance=reader.positive("initialRisk"),
            original_volume=reader.positive("originalVolume"),
            closed_volume=reader.non_negative("closedVolume"),
            stop=reader.positive("stop"),
            fired=fired,
        )


class _StateReader:
    """Typed reads of a saved state, each failure a PartialPlanError naming the key."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self.data = data

    def _get(self, key: str) -> object:
        if key not in self.data:
            raise PartialPlanError(f"saved partial-exit state lacks {key!r}")
        return self.data[key]

    def positive(self, key: str) -> float:
        return _positive(self._get(key), f"saved partial-exit state: {key!r}")

    def non_negative(self, key: str) -> float:
        value = self._get(key)
        if value == 0 and not isinstance(value, bool):
            return 0.0
        return _positive(value, f"saved partial-exit state: {key!r}")

    def choice(self, key: str, kind: type[_Choice]) -> _Choice:
        value = self._get(key)
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return kind(value)
        except ValueError:
            options = ", ".join(member.value for member in kind)
            raise PartialPlanError(
                f"saved partial-exit state: {key!r} is {value!r}, expected one of {options}"
            ) from None

    def levels(self) -> tuple[PartialLevel, ...]:
        raw = self._get("levels")
        if not isinstance(raw, list):
            raise PartialPlanError("saved partial-exit state: 'levels' must be a list")
        levels: list[PartialLevel] = []
        for index, item in enumerate(raw, start=1):
            if not isinstance(item, Mapping):
                raise PartialPlanError(f"saved partial-exit state: level {index} must be an object")
            what = f"saved partial-exit state: level {index}"
            move = item.get("moveStopTo")
            breakeven = isinstance(move, int | float) and not isinstance(move, bool) and move == 0
            levels.append(
                PartialLevel(
                    at_r=_positive(item.get("atR"), f"{what} atR"),
                    close_percent=_positive(item.get("closePercent"), f"{what} closePercent"),
                    move_stop_to_r=(
                        None if move is None else 0.0 if breakeven else _positive(move, f"{what} moveStopTo")
                    ),
                )
            )
        return tuple(levels)

    def fired(self, count: int) -> frozenset[int]:
        raw = self._get("fired")
        if not isinstance(raw, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count for i in raw
        ):
            raise PartialPlanError(
                "saved partial-exit state: 'fired' must list level indexes"
                f" from 0 to {count - 1}, not {raw!r}"
            )
        return frozenset(raw)
