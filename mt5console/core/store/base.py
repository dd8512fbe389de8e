"""What every part of the Store shares: the engine, short transactions, and input checks.

Each public Store method runs in its own transaction that is committed before the method returns
(synchronous=FULL: on disk), so a caller may act on or acknowledge what it has just stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.exc import StatementError
from sqlmodel import Session

from mt5console.core.store.column_types import require_aware
from mt5console.core.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    create_sqlite_engine,
    prepare_schema,
    writer,
)
from mt5console.core.store.errors import InvalidRecordError, StoreError

E = TypeVar("E", bound=StrEnum)


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """Opens (creating or migrating) the database file; subclasses add the methods per table."""

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, durable: bool = True
    ) -> None:
        self._path = Path(path)
        self._engine = create_sqlite_engine(self._path, busy_timeout_ms=busy_timeout_ms, durable=durable)
        try:
            prepare_schema(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._writer = writer(self._engine)

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with _store_errors(), Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A transaction that holds the write lock from its start and commits when the block ends."""
        with _store_errors(), Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session


@contextmanager
def _store_errors() -> Iterator[None]:
    # A column type's own check (naive datetime) surfaces wrapped in StatementError: unwrap it.
    try:
        yield
    except StatementError as error:
        if isinstance(error.orig, StoreError):
            raise error.orig from None
        raise


# --- input checks: each names the argument and the value, and runs before anything is written ---


def aware(name: str, value: datetime | None) -> datetime:
    """``value`` in UTC, or now when it is None."""
    if value is None:
        return utcnow()
    if not isinstance(value, datetime):
        raise InvalidRecordError(f"{name}: {value!r} is not a datetime")
    return require_aware(name, value)


def text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecordError(f"{name}: {value!r} is not a non-empty string")
    return value


def whole(name: str, value: object, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecordError(f"{name}: {value!r} is not an integer")
    if minimum is not None and value < minimum:
        raise InvalidRecordError(f"{name}: {value} is less than {minimum}")
    return value


def number(name: str, value: object, *, positive: bool = False, non_negative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRecordError(f"{name}: {value!r} is not a finite number")
    if positive and value <= 0:
        raise InvalidRecordError(f"{name}: {value} is not positive")
    if non_negative and value < 0:
        raise InvalidRecordError(f"{name}: {value} is negative")
    return float(value)


def member(name: str, enum_type: type[E], value: object) -> E:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return enum_type(value)
    except ValueError:
        accepted = ", ".join(m.value for m in enum_type)
        raise InvalidRecordError(f"{name}: {value!r} is not one of {accepted}") from None


def json_object(name: str, value: object) -> dict[str, Any]:
    """A JSON copy of ``value`` (a dict): what is stored is exactly what will be read back, and a
    value JSON cannot hold (a set, NaN, an object) is refused here rather than half-written."""
    if not isinstance(value, dict):
        raise InvalidRecordError(f"{name}: expected a JSON object (dict), got {type(value).__name__}")
    try:
        copy: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidRecordError(f"{name}: not JSON serialisable: {error}") from None
    return copy
