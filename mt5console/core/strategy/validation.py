"""Path-aware reading of a strategy's JSON: typed field access that collects every error in one pass.

Each problem becomes a ``FieldError`` naming the field path (``rules.entry.conditions[1].indicator``)
and what is wrong with it. Readers return ``None`` for a value that is missing or invalid after
recording why, so a caller can keep reading the other fields and report all faults at once; a
strategy is only built when no error was recorded.

Conventions (documented here because the format leaves them open):
- ``null`` is the same as leaving a field out.
- Booleans are never numbers, numbers are never strings (``"25"`` is an error), NaN and infinity
  are rejected.
- Keyword values are matched exactly (``buy``, ``pips``, ``London``, ``M15``), except ``logic``
  which accepts any case (``AND``, ``and``); a near miss gets a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from mt5console.core.strategy.condition_tree import (
    COMPARATOR_ALIASES,
    Comparator,
    Comparison,
    ConditionGroup,
    Logic,
)
from mt5console.core.strategy.operands import Operand, OperandError, parse_operand

# Options are plain strings or StrEnum members (which compare equal to their values).
E = TypeVar("E", bound=str)

# Groups may nest "to any depth"; this bound only stops a hostile payload from exhausting the stack.
MAX_GROUP_DEPTH: Final = 64
GROUP_FIELDS: Final = ("logic", "conditions")
COMPARISON_FIELDS: Final = ("indicator", "condition", "value")
_CROSSES: Final = (Comparator.CROSSES_ABOVE, Comparator.CROSSES_BELOW)


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str  # "" for the strategy as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class StrategyError(ValueError):
    """A strategy that cannot run; ``errors`` lists every fault found, ``str()`` one per line."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def format_number(value: float) -> str:
    """30 -> '30', 2.5 -> '2.5' (no trailing '.0' noise in messages)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def describe(value: object) -> str:
    """How a JSON value is named in messages: 'the string '25'', 'true', 'a list'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {format_number(value)}" if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _fold(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def suggestion(word: str, known: Iterable[str]) -> str | None:
    """The known name a near miss was meant to be: 'new york' -> 'NewYork', 'stopLos' -> 'stopLoss'."""
    candidates = list(known)
    for candidate in candidates:
        if _fold(candidate) == _fold(word):
            return candidate
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    match = suggestion(word, known)
    return f" (did you mean {match!r}?)" if match else ""


class Reader:
    """Collects the errors of one strategy while its parts are read."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def section(self, value: object, path: str, allowed: Collection[str]) -> Section | None:
        """An object whose keys are all in ``allowed``; unknown keys are errors, never ignored."""
        if not isinstance(value, dict):
            self.error(path, f"must be an object, not {describe(value)}")
            return None
        self.check_keys(value, path, allowed)
        return Section(self, value, path)

    def check_keys(self, value: dict[str, object], path: str, allowed: Collection[str]) -> None:
        for key in value:
            if not isinstance(key, str):
                self.error(path, f"has a key that is not a string: {key!r}")
            elif key not in allowed:
                hint = _did_you_mean(key, allowed) or f" (expected: {', '.join(allowed)})"
                self.error(join_path(path, key), f"unknown field {key!r}{hint}")

    def number(
        self,
        value: object,
        path: str,
        *,
        whole: bool = False,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        below: float | None = None,
    ) -> float | None:
        """A finite JSON number within the given bounds (``minimum``/``maximum`` inclusive)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(path, f"must be a number, not {describe(value)}")
            return None
        if not math.isfinite(value):
            self.error(path, f"must be a finite number, not {value!r}")
            return None
        number = float(value)
        shown = format_number(number)
        if whole and not number.is_integer():
            self.error(path, f"must be a whole number, not {shown}")
        elif above is not None and not number > above:
            self.error(path, f"must be greater than {format_number(above)}, not {shown}")
        elif minimum is not None and number < minimum:
            self.error(path, f"must be at least {format_number(minimum)}, not {shown}")
        elif below is not None and not number < below:
            self.error(path, f"must be less than {format_number(below)}, not {shown}")
        elif maximum is not None and number > maximum:
            self.error(path, f"must be at most {format_number(maximum)}, not {shown}")
        else:
            return number
        return None

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"must be a string, not {describe(value)}")
            return None
        return value

    def choice(
        self, value: object, path: str, options: Sequence[E], noun: str, *, any_case: bool = False
    ) -> E | None:
        """One of ``options`` by its value; the message lists them and suggests a near miss."""
        text = self.string(value, path)
        if text is None:
            return None
        for option in options:
            if option == text or (any_case and option.lower() == text.lower()):
                return option
        names = [str(option) for option in options]
        self.error(
            path, f"unknown {noun} {text!r}{_did_you_mean(text, names)}; expected one of {', '.join(names)}"
        )
        return None

    def choices(self, value: object, path: str, options: Sequence[E], noun: str) -> tuple[E, ...] | None:
        """A list of distinct options (sessions, regimes, impact levels...)."""
        if not isinstance(value, list):
            self.error(path, f"must be a list of {noun}s, not {describe(value)}")
            return None
        picked: list[E] = []
        valid = True
        for index, item in enumerate(value):
            option = self.choice(item, join_path(path, index), options, noun)
            if option is None:
                valid = False
            elif option in picked:
                self.error(join_path(path, index), f"{str(option)!r} is listed twice")
                valid = False
            else:
                picked.append(option)
        return tuple(picked) if valid else None


class Section:
    """One JSON object of the strategy, read field by field with its path."""

    def __init__(self, reader: Reader, data: dict[str, object], path: str) -> None:
        self.reader = reader
        self.data = data
        self.path = path

    def path_of(self, key: str) -> str:
        return join_path(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def require(self, key: str) -> object:
        """The value, or None after reporting that it is required."""
        value = self.data.get(key)
        if value is None:
            self.reader.error(self.path_of(key), "is required")
        return value

    def number(
        self,
        key: str,
        *,
        required: bool = False,
        default: float | None = None,
        whole: bool = False,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
        below: float | None = None,
    ) -> float | None:
        if not self.has(key):
            if required:
                self.reader.error(self.path_of(key), "is required")
            return default
        return self.reader.number(
            self.data[key],
            self.path_of(key),
            whole=whole,
            minimum=minimum,
            above=above,
            maximum=maximum,
            below=below,
        )

    def integer(
        self, key: str, *, required: bool = False, default: int | None = None, minimum: int | None = None
    ) -> int | None:
        number = self.number(key, required=required, whole=True, minimum=minimum)
        if number is None:
            return default if not self.has(key) else None
        return int(number)

    def string(self, key: str, *, required: bool = False) -> str | None:
        if not self.has(key):
            if required:
                self.reader.error(self.path_of(key), "is required")
            return None
        return self.reader.string(self.data[key], self.path_of(key))

    def boolean(self, key: str, *, default: bool) -> bool | None:
        if not self.has(key):
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            self.reader.error(self.path_of(key), f"must be true or false, not {describe(value)}")
            return None
        return value

    def choice(
        self,
        key: str,
        options: Sequence[E],
        noun: str,
        *,
        default: E | None = None,
        required: bool = False,
        any_case: bool = False,
    ) -> E | None:
        if not self.has(key):
            if required:
                self.reader.error(self.path_of(key), "is required")
            return default
        return self.reader.choice(self.data[key], self.path_of(key), options, noun, any_case=any_case)

    def choices(self, key: str, options: Sequence[E], noun: str, *, required: bool) -> tuple[E, ...] | None:
        """A list of distinct options; when ``required`` it must be present and non-empty."""
        if not self.has(key):
            if required:
                self.reader.error(self.path_of(key), f"is required: list at least one {noun}")
                return None
            return ()
        picked = self.reader.choices(self.data[key], self.path_of(key), options, noun)
        if picked == () and required:
            self.reader.error(self.path_of(key), f"must list at least one {noun}")
            return None
        return picked

    def sub(self, key: str, allowed: Collection[str], *, required: bool = False) -> Section | None:
        """The nested object at ``key`` (None when absent or invalid)."""
        if not self.has(key):
            if required:
                self.reader.error(self.path_of(key), "is required")
            return None
        return self.reader.section(self.data[key], self.path_of(key), allowed)

    def items(self, key: str, *, required: bool = False) -> list[object] | None:
        if not self.has(key):
            if required:
                self.reader.error(self.path_of(key), "is required")
            return None
        value = self.data[key]
        if not isinstance(value, list):
            self.reader.error(self.path_of(key), f"must be a list, not {describe(value)}")
            return None
        return value


# --- condition trees ---------------------------------------------------------------------------


def read_group(section: Section, depth: int = 0) -> ConditionGroup | None:
    """The ``logic`` and ``conditions`` of ``section`` as a group (an entry block is one too)."""
    logic = section.choice("logic", list(Logic), "logic", default=Logic.AND, any_case=True)
    items = section.items("conditions", required=True)
    if items is not None and not items:
        section.reader.error(
            section.path_of("conditions"), "an empty group is invalid: list at least one condition"
        )
    children = [
        read_condition(section.reader, item, join_path(section.path_of("conditions"), index), depth + 1)
        for index, item in enumerate(items or [])
    ]
    if logic is None or not items:
        return None
    valid = [child for child in children if child is not None]
    if len(valid) != len(children):
        return None
    return ConditionGroup(logic, tuple(valid), section.path)


def read_condition(
    reader: Reader, value: object, path: str, depth: int
) -> Comparison | ConditionGroup | None:
    """A comparison (indicator, condition, value) or a nested group (logic, conditions)."""
    if not isinstance(value, dict):
        reader.error(
            path,
            f"must be a condition object (indicator, condition, value) or a group, not {describe(value)}",
        )
        return None
    # A group has "conditions"; "logic" alone marks one too unless the object reads as a comparison
    # (then "logic" is reported as a field that does not belong there).
    if "conditions" in value or ("logic" in value and not any(key in value for key in COMPARISON_FIELDS)):
        if depth > MAX_GROUP_DEPTH:
            reader.error(path, f"groups are nested more than {MAX_GROUP_DEPTH} levels deep")
            return None
        group = reader.section(value, path, GROUP_FIELDS)
        return read_group(group, depth) if group is not None else None
    section = reader.section(value, path, COMPARISON_FIELDS)
    if section is None:
        return None
    left = read_operand(section, "indicator")
    comparator = read_comparator(section)
    right = read_operand(section, "value")
    if comparator in _CROSSES and isinstance(left, float) and isinstance(right, float):
        reader.error(
            section.path_of("condition"),
            f"two numbers cannot cross: {comparator.value} needs an indicator or price on at least one side",
        )
        return None
    if left is None or comparator is None or right is None:
        return None
    return Comparison(left, comparator, right, path)


def read_operand(section: Section, key: str) -> Operand | float | None:
    value = section.require(key)
    path = section.path_of(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            pass
        else:
            section.reader.error(path, f"{value!r} is a string; write the number without quotes")
            return None
        try:
            return parse_operand(value)
        except OperandError as exc:
            section.reader.error(path, str(exc))
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        section.reader.error(path, f"must be a number or an indicator name, not {describe(value)}")
        return None
    return section.reader.number(value, path)


def read_comparator(section: Section) -> Comparator | None:
    value = section.require("condition")
    if value is None:
        return None
    text = section.reader.string(value, section.path_of("condition"))
    if text is None:
        return None
    if text in COMPARATOR_ALIASES:
        return COMPARATOR_ALIASES[text]
    names = [comparator.value for comparator in Comparator]
    if text in names:
        return Comparator(text)
    section.reader.error(
        section.path_of("condition"),
        f"unknown condition {text!r}{_did_you_mean(text, names)}; expected one of {', '.join(names)}"
        f" or {' '.join(COMPARATOR_ALIASES)}",
    )
    return None


# --- strategy files ----------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


class _ObjectWithDuplicates(dict[str, object]):
    """An object read with a key given twice; ``duplicates`` names those keys, in order."""

    duplicates: list[str]


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads keeps the last of two equal keys; a strategy with "stopLoss" twice is ambiguous.
    # The hook does not know where the object sits, so it marks it; _duplicate_paths finds the path.
    result: dict[str, object] = {}
    duplicates: list[str] = []
    for key, value in pairs:
        if key in result:
            duplicates.append(key)
        result[key] = value
    if not duplicates:
        return result
    marked = _ObjectWithDuplicates(result)
    marked.duplicates = duplicates
    return marked


def _duplicate_paths(value: object, path: str = "") -> list[tuple[str, str]]:
    """Every key given twice and its field path, in document order."""
    found: list[tuple[str, str]] = []
    if isinstance(value, _ObjectWithDuplicates):
        found.extend((key, join_path(path, key)) for key in dict.fromkeys(value.duplicates))
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_duplicate_paths(item, join_path(path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_duplicate_paths(item, join_path(path, index)))
    return found


def _reject_constant(name: str) -> object:
    raise _DuplicateKey(f"{name} is not a JSON number")


def read_json_object(path: str | os.PathLike[str]) -> dict[str, object]:
    """The JSON object in ``path``; StrategyError with a message naming the file when it cannot be."""
    file = Path(path)

    def fail(message: str) -> StrategyError:
        return StrategyError([FieldError("", f"{file}: {message}")])

    try:
        # utf-8-sig: editors on Windows like to start files with a byte-order mark.
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a folder, not a strategy file") from None
    except UnicodeDecodeError:
        raise fail("is not UTF-8 text") from None
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise fail(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _DuplicateKey as exc:
        raise fail(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise fail("invalid JSON: nested too deeply") from None
    try:
        duplicated = _duplicate_paths(data)
    except RecursionError:
        raise fail("invalid JSON: nested too deeply") from None
    if duplicated:
        raise StrategyError(
            [
                FieldError("", f"{file}: invalid JSON: the key {key!r} appears twice in one object ({where})")
                for key, where in duplicated
            ]
        )
    if not isinstance(data, dict):
        raise fail(f"the top level must be a JSON object (one strategy), not {describe(data)}")
    return data
