"""The parsed shape of a condition group: what validation builds and the evaluator walks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mt5console.core.strategy.operands import Operand


class Comparator(StrEnum):
    CROSSES_ABOVE = "crosses_above"
    CROSSES_BELOW = "crosses_below"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"
    GREATER_OR_EQUAL = "greater_or_equal"
    LESS_OR_EQUAL = "less_or_equal"
    EQUALS = "equals"


# The symbolic spellings the format accepts as synonyms.
COMPARATOR_ALIASES: dict[str, Comparator] = {
    ">": Comparator.GREATER_THAN,
    "<": Comparator.LESS_THAN,
    ">=": Comparator.GREATER_OR_EQUAL,
    "<=": Comparator.LESS_OR_EQUAL,
    "==": Comparator.EQUALS,
}


class Logic(StrEnum):
    AND = "AND"
    OR = "OR"


# A side of a comparison: a parsed operand or a plain number.
Side = Operand | float


@dataclass(frozen=True, slots=True)
class Comparison:
    left: Side
    comparator: Comparator
    right: Side
    path: str  # where it sits in the strategy JSON, for messages: rules.entry.conditions[1]


@dataclass(frozen=True, slots=True)
class ConditionGroup:
    logic: Logic
    children: tuple[Comparison | ConditionGroup, ...]  # never empty (validation rejects empty groups)
    path: str

    def operands(self) -> set[Operand]:
        """Every operand the group reads, at any depth (what the indicator cache must compute)."""
        found: set[Operand] = set()
        for child in self.children:
            if isinstance(child, ConditionGroup):
                found |= child.operands()
            else:
                found.update(s for s in (child.left, child.right) if isinstance(s, Operand))
        return found
