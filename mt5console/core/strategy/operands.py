"""Operand names of the strategy format (``ema_9``, ``bb_lower_20_2``, ``close``, ``sar``...).

An operand is a bar field or an indicator with its parameters joined by ``_``; parameters left out
take their defaults (``rsi`` is ``rsi_14``). Parsing gives a canonical name with every parameter
written out, so ``rsi`` and ``rsi_14`` share one cached series.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

BAR_FIELDS: Final[dict[str, str]] = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "price": "close",
    "volume": "tick_volume",
}


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    default: float
    integer: bool
    minimum: float  # inclusive lower bound
    maximum: float  # inclusive upper bound


def _period(name: str, default: int, minimum: int = 2) -> ParamSpec:
    return ParamSpec(name, default, True, minimum, 100_000)


# Families in match order: longer prefixes first so that ``macd_signal`` is not read as ``macd``.
INDICATOR_PARAMS: Final[dict[str, tuple[ParamSpec, ...]]] = {
    "macd_signal": (_period("fast", 12), _period("slow", 26), _period("signal", 9, 1)),
    "macd_hist": (_period("fast", 12), _period("slow", 26), _period("signal", 9, 1)),
    "macd": (_period("fast", 12), _period("slow", 26), _period("signal", 9, 1)),
    "bb_upper": (_period("period", 20), ParamSpec("deviations", 2, False, 0.01, 100)),
    "bb_middle": (_period("period", 20), ParamSpec("deviations", 2, False, 0.01, 100)),
    "bb_lower": (_period("period", 20), ParamSpec("deviations", 2, False, 0.01, 100)),
    "plus_di": (_period("period", 14, 1),),
    "minus_di": (_period("period", 14, 1),),
    "stoch_k": (_period("k", 14, 1), _period("d", 3, 1), _period("slowing", 3, 1)),
    "stoch_d": (_period("k", 14, 1), _period("d", 3, 1), _period("slowing", 3, 1)),
    "ema": (_period("period", 20),),
    "sma": (_period("period", 20),),
    "rsi": (_period("period", 14),),
    "atr": (_period("period", 14, 1),),
    "cci": (_period("period", 20),),
    "adx": (_period("period", 14),),
    "sar": (
        ParamSpec("acceleration", 0.02, False, 0.0001, 1),
        ParamSpec("maximum", 0.2, False, 0.0001, 10),
    ),
    "obv": (),
}


# A parameter as the format writes it: plain decimal digits (``9``, ``2.5``, ``0.02``). float() alone
# would also take " 9", "+9", "1e1" or "nan", none of which is a name of the format.
_PARAMETER: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")


class OperandError(ValueError):
    """An operand name that is not in the strategy format; the message says why."""


@dataclass(frozen=True, slots=True)
class Operand:
    """A parsed operand: a bar field (``kind == "bar"``) or an indicator with all its parameters."""

    kind: str  # "bar" or an INDICATOR_PARAMS family
    field: str  # for bars: the rates column; for indicators: the family again
    params: tuple[float, ...]
    name: str  # canonical name, every parameter written out (``rsi_14``, ``sar_0.02_0.2``)


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parse_operand(text: str) -> Operand:
    """Parse an operand name; raise OperandError naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise OperandError("an operand must be a number or a non-empty name")
    if text != text.strip() or text != text.lower():
        raise OperandError(f"unknown indicator {text!r} (names are lower case, without spaces)")
    if text in BAR_FIELDS:
        return Operand("bar", BAR_FIELDS[text], (), text if text != "price" else "close")
    for family, specs in INDICATOR_PARAMS.items():
        if text == family:
            raw: list[str] = []
        elif text.startswith(family + "_"):
            raw = text[len(family) + 1 :].split("_")
        else:
            continue
        if len(raw) > len(specs):
            raise OperandError(
                f"{text!r}: {family} takes at most {len(specs)} parameter(s)"
                + (f" ({', '.join(s.name for s in specs)})" if specs else "")
            )
        values: list[float] = []
        for index, spec in enumerate(specs):
            if index >= len(raw):
                values.append(spec.default)
                continue
            token = raw[index]
            if not _PARAMETER.fullmatch(token):
                raise OperandError(f"{text!r}: {spec.name} must be a number, not {token!r}")
            value = float(token)
            if spec.integer and not value.is_integer():
                raise OperandError(f"{text!r}: {spec.name} must be a whole number, not {token!r}")
            if not spec.minimum <= value <= spec.maximum:
                raise OperandError(
                    f"{text!r}: {spec.name} must be between {_format_number(spec.minimum)}"
                    f" and {_format_number(spec.maximum)}, not {token}"
                )
            values.append(value)
        if family.startswith("macd") and values[0] >= values[1]:
            raise OperandError(f"{text!r}: the fast period must be shorter than the slow period")
        canonical = "_".join([family, *(_format_number(v) for v in values)])
        return Operand(family, family, tuple(values), canonical)
    raise OperandError(f"unknown indicator {text!r}")


def warmup_bars(operand: Operand) -> int:
    """A generous number of bars an operand needs before its values settle (for history requests)."""
    if operand.kind == "bar":
        return 2
    longest = max((int(p) for p in operand.params if float(p).is_integer()), default=0)
    if operand.kind.startswith("macd"):
        longest = int(operand.params[1] + operand.params[2])
    if operand.kind in ("adx", "plus_di", "minus_di", "rsi", "atr"):
        longest *= 3  # Wilder smoothing converges slowly
    return max(longest * 3, 50) + 2
