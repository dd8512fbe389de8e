"""What every part of the Store shares: the engine, short transactions, and input checks.

Each public Store method runs in its own transaction that is committed before the method returns
(synchronous=FULL: on disk), so a caller may act on or acknowledge what it has just stored. A store
opened ``in_memory()`` (a throwaway one, the replay's) keeps all of that but the disk.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import StatementError
from sqlmodel import Session

from mt5console.core.store.column_types import require_aware
from mt5console.core.store.direct import DirectConnection
from mt5console.core.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    Location,
    create_sqlite_engine,
    location_engine,
    prepare_memory_schema,
    prepare_schema,
    writer,
)
from mt5console.core.store.errors import InvalidRecordError, StoreError

E = TypeVar("E", bound=StrEnum)

# SQLite's own name for an in-memory database: the ``path`` of a Store.in_memory().
MEMORY_PATH = ":memory:"


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """Opens (creating or migrating) the database file; subclasses add the methods per table.

    ``in_memory()`` opens instead a new database in memory, for a throwaway store (the replay's):
    SQLite's shared cache lets the engine's and the direct connection see the same data, but it
    locks tables between connections of the process and fails at once ("database table is locked",
    the busy timeout does not apply) where a file in WAL mode lets readers and a writer go on together.
    So an in-memory store lets one transaction in at a time, ORM or direct, under one lock: they
    never overlap and cannot meet a table lock. (Reentrant: a read nested in a transaction of the same
    thread is no deadlock.)"""

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, durable: bool = True
    ) -> None:
        self._path = Path(path)
        self._open(
            create_sqlite_engine(self._path, busy_timeout_ms=busy_timeout_ms, durable=durable),
            prepare_schema,
            Location.of_file(self._path),
            busy_timeout_ms=busy_timeout_ms,
            durable=durable,
            serial=None,
        )

    @classmethod
    def in_memory(cls) -> Self:
        """A new, empty store whose database lives in memory for as long as the store is open
        (close() frees it): nothing is written to disk and no other store, process or connection
        sees it. Same schema, checks and transactions as a file store. Its ``path`` is
        Path(":memory:"), SQLite's name for such a database."""
        store = cls.__new__(cls)
        store._path = Path(MEMORY_PATH)
        location = Location.new_memory()
        store._open(
            location_engine(location, durable=False),
            prepare_memory_schema,
            location,
            busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS,
            durable=False,
            serial=threading.RLock(),
        )
        return store

    def _open(
        self,
        engine: Engine,
        prepare: Callable[[Engine], int],
        location: Location,
        *,
        busy_timeout_ms: int,
        durable: bool,
        serial: threading.RLock | None,
    ) -> None:
        self._location = location
        self._engine = engine
        try:
            prepare(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._writer = writer(self._engine)
        # What every transaction takes first: nothing for a file, the store's one lock in memory.
        self._serial: AbstractContextManager[object] = nullcontext() if serial is None else serial
        self._closed = False
        try:
            # Trades and deals go through their own connection (direct.py says why).
            self._direct = DirectConnection(
                location, busy_timeout_ms=busy_timeout_ms, durable=durable, lock=serial
            )
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def path(self) -> Path:
        """The database file; Path(":memory:") for an in-memory store (see ``in_memory``)."""
        return self._path

    @property
    def is_in_memory(self) -> bool:
        return self._location.in_memory

    def close(self) -> None:
        """Closes every connection (which frees an in-memory database); the Store refuses
        (StoreError) any use afterwards."""
        with self._serial:  # in memory: after the transaction under way, if any
            self._closed = True
            self._direct.close()
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._location.label}: the store is closed")

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._serial:
            self._check_open()
            with _store_errors(), Session(self._engine, expire_on_commit=False) as session, session.begin():
                yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A transaction that holds the write lock from its start and commits when the block ends."""
        with self._serial:
            self._check_open()
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
    if type(value) is datetime and value.tzinfo is UTC:
        return value  # already what require_aware returns, without its work
    if not isinstance(value, datetime):
        raise InvalidRecordError(f"{name}: {value!r} is not a datetime")
    return require_aware(name, value)


def text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecordError(f"{name}: {value!r} is not a non-empty string")
    return value


def string(name: str, value: object) -> str:
    """Any string, the empty one included (a comment, the symbol of a balance deal)."""
    if not isinstance(value, str):
        raise InvalidRecordError(f"{name}: {value!r} is not a string")
    return value


def whole(name: str, value: object, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecordError(f"{name}: {value!r} is not an integer")
    if minimum is not None and value < minimum:
        raise InvalidRecordError(f"{name}: {value} is less than {minimum}")
    return value


def number(name: str, value: object, *, positive: bool = False, non_negative: bool = False) -> float:
    if isinstance(value, float):  # the usual case first, with one check fewer
        if not math.isfinite(value):
            raise InvalidRecordError(f"{name}: {value!r} is not a finite number")
    elif isinstance(value, bool) or not isinstance(value, int) or not math.isfinite(value):
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
