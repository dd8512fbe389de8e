"""Platform jobs: each type's input_data read into a typed, checked job (INTERFACE.md, "Jobs").

A job whose type is unknown or whose input_data is malformed raises ``JobInputError`` with a reason
naming the field and what it accepts; nothing is half-read. Unknown fields are refused too: a
misspelt ``stoploss`` must not open a position without its stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mt5console.core.agent.chart_template import InputValue, InvalidInputs, input_text
from mt5console.core.agent.terminal_files import InvalidEaName, check_ea_name
from mt5console.core.broker.models import Side
from mt5console.core.timeframes import TIMEFRAME_NAMES

MAX_CANDLES: Final = 10_000
MAX_DEVIATION_POINTS: Final = 100_000
MAX_MAGIC: Final = 2**63 - 1  # MT5's magic is a ulong; SQLite and JSON peers hold int64 safely
COMMENT_LENGTH: Final = 31  # MT5 keeps the first 31 characters of an order comment


class JobInputError(ValueError):
    """A job the console cannot run as given; the message is the job's error_message."""


@dataclass(frozen=True, slots=True)
class TradeJob:
    symbol: str
    side: Side
    volume: float
    sl: float = 0.0  # 0.0 = none, as in MT5
    tp: float = 0.0
    comment: str | None = None
    magic: int = 0
    deviation: int = 20


@dataclass(frozen=True, slots=True)
class ClosePositionJob:
    ticket: int
    volume: float | None = None  # None: the whole position


@dataclass(frozen=True, slots=True)
class GetPositionsJob:
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class GetAccountJob:
    pass


@dataclass(frozen=True, slots=True)
class GetCandlesJob:
    symbol: str
    timeframe: str
    count: int


@dataclass(frozen=True, slots=True)
class CompileJob:
    ea_name: str
    source: str | None = None
    storage_path: str | None = None
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeployJob:
    ea_name: str
    ex5_path: str | None = None


@dataclass(frozen=True, slots=True)
class RunJob:
    ea_name: str
    symbol: str
    timeframe: str
    inputs: dict[str, InputValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StopJob:
    ea_name: str
    symbol: str | None = None


Job = (
    TradeJob
    | ClosePositionJob
    | GetPositionsJob
    | GetAccountJob
    | GetCandlesJob
    | CompileJob
    | DeployJob
    | RunJob
    | StopJob
)


class _Fields:
    """Reads one job's input_data; every failure names the job type and the field."""

    def __init__(self, job_type: str, data: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
        self.job_type = job_type
        self.data = data
        unknown = sorted(str(key) for key in data if key not in accepted)
        if unknown:
            known = ", ".join(accepted) if accepted else "none"
            raise self.error(f"unknown field(s) {', '.join(unknown)}; accepted: {known}")

    def error(self, message: str) -> JobInputError:
        return JobInputError(f"{self.job_type}: {message}")

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if value is None:
            raise self.error(f"{name} is required")
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{name} must be a non-empty string, not {value!r}")
        if any(ord(ch) < 32 for ch in value):
            raise self.error(f"{name} must be one line without control characters")
        return value.strip()

    def identifier(self, name: str) -> str | None:
        """An optional id the platform may write as a string or a number."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return self.text(name)

    def optional_text(self, name: str) -> str | None:
        return self.text(name) if self.has(name) else None

    def number(self, name: str, *, default: float | None = None, positive: bool = False) -> float:
        value = self.data.get(name)
        if value is None:
            if default is None:
                raise self.error(f"{name} is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(f"{name} must be a number, not {value!r}")
        if positive and value <= 0:
            raise self.error(f"{name} must be more than 0, not {value!r}")
        if value < 0:
            raise self.error(f"{name} must not be negative, not {value!r}")
        return float(value)

    def whole(self, name: str, *, minimum: int, maximum: int, default: int | None = None) -> int:
        value = self.data.get(name)
        if value is None:
            if default is None:
                raise self.error(f"{name} is required")
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON peers may write 5 as 5.0
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{name} must be a whole number, not {value!r}")
        if not minimum <= value <= maximum:
            raise self.error(f"{name} must be from {minimum} to {maximum}, not {value}")
        return value

    def side(self, name: str) -> Side:
        value = self.text(name).lower()
        try:
            return Side(value)
        except ValueError:
            raise self.error(f"{name} must be buy or sell, not {self.data[name]!r}") from None

    def timeframe(self, name: str) -> str:
        value = self.text(name).upper()
        if value not in TIMEFRAME_NAMES:
            raise self.error(f"{name} must be one of {', '.join(TIMEFRAME_NAMES)}, not {self.data[name]!r}")
        return value

    def ea_name(self, name: str = "ea_name") -> str:
        if not self.has(name):
            raise self.error(f"{name} is required")
        try:
            return check_ea_name(self.data[name])
        except InvalidEaName as invalid:
            raise self.error(str(invalid)) from None

    def comment(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.error(f"{name} must be a string, not {value!r}")
        if len(value) > COMMENT_LENGTH or any(ord(ch) < 32 for ch in value):
            raise self.error(f"{name} must be one line of at most {COMMENT_LENGTH} characters")
        return value

    def inputs(self, name: str) -> dict[str, InputValue]:
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{name} must be an object of input names and values, not {value!r}")
        try:
            for key, item in value.items():
                input_text(key, item)
        except InvalidInputs as invalid:
            raise self.error(str(invalid)) from None
        return dict(value)


def _trade(f: _Fields) -> TradeJob:
    return TradeJob(
        symbol=f.text("symbol"),
        side=f.side("side"),
        volume=f.number("volume", positive=True),
        sl=f.number("sl", default=0.0),
        tp=f.number("tp", default=0.0),
        comment=f.comment("comment"),
        magic=f.whole("magic", minimum=0, maximum=MAX_MAGIC, default=0),
        deviation=f.whole("deviation", minimum=0, maximum=MAX_DEVIATION_POINTS, default=20),
    )


def _close_position(f: _Fields) -> ClosePositionJob:
    volume = f.number("volume", positive=True) if f.has("volume") else None
    return ClosePositionJob(ticket=f.whole("ticket", minimum=1, maximum=MAX_MAGIC), volume=volume)


def _compile(f: _Fields) -> CompileJob:
    source = f.data.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise f.error("source must be the EA's MQL5 text")
    job = CompileJob(
        ea_name=f.ea_name(),
        source=source,
        storage_path=f.optional_text("storage_path"),
        version_id=f.identifier("version_id"),
    )
    if job.source is None and job.version_id is None:
        if job.storage_path is not None:
            raise f.error(
                "storage_path needs version_id: the source is fetched through GET /ea/versions/{id}/artifacts"
            )
        raise f.error("give the EA's source inline, or its storage_path and version_id")
    return job


_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "trade": ("symbol", "side", "volume", "sl", "tp", "comment", "magic", "deviation"),
    "close_position": ("ticket", "volume"),
    "get_positions": ("symbol",),
    "get_account": (),
    "get_candles": ("symbol", "timeframe", "count"),
    "compile": ("ea_name", "storage_path", "source", "version_id"),
    "deploy": ("ea_name", "ex5_path"),
    "run": ("ea_name", "symbol", "timeframe", "inputs"),
    "stop": ("ea_name", "symbol"),
}
JOB_TYPES: Final[tuple[str, ...]] = tuple(_FIELDS)


def parse_job(job_type: object, input_data: object) -> Job:
    """The typed job for ``job_type`` and ``input_data``; JobInputError with the reason otherwise."""
    if not isinstance(job_type, str) or job_type not in _FIELDS:
        raise JobInputError(f"unknown job type {job_type!r}; this console runs {', '.join(JOB_TYPES)}")
    data: object = {} if input_data is None else input_data
    if not isinstance(data, Mapping):
        raise JobInputError(f"{job_type}: input_data must be a JSON object, not {type(data).__name__}")
    f = _Fields(job_type, data, _FIELDS[job_type])
    match job_type:
        case "trade":
            return _trade(f)
        case "close_position":
            return _close_position(f)
        case "get_positions":
            return GetPositionsJob(symbol=f.optional_text("symbol"))
        case "get_account":
            return GetAccountJob()
        case "get_candles":
            return GetCandlesJob(
                symbol=f.text("symbol"),
                timeframe=f.timeframe("timeframe"),
                count=f.whole("count", minimum=1, maximum=MAX_CANDLES),
            )
        case "compile":
            return _compile(f)
        case "deploy":
            return DeployJob(ea_name=f.ea_name(), ex5_path=f.optional_text("ex5_path"))
        case "run":
            return RunJob(
                ea_name=f.ea_name(),
                symbol=f.text("symbol"),
                timeframe=f.timeframe("timeframe"),
                inputs=f.inputs("inputs"),
            )
        case _:
            return StopJob(ea_name=f.ea_name(), symbol=f.optional_text("symbol"))
