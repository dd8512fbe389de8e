"""The store's direct sqlite3 connection: the fast path of trades and deals.

Why this bypasses the ORM: the replay (mt5console replay, issue 3's benchmark) writes every trade
and deal through the store, and an ORM Session per call (identity map, unit of work, a SQLModel
object per row) costs 300-500 µs a call, about 18 statements and 7 commits per trade; plain
parameterised SQL on one connection (sqlite3 caches the prepared statements) costs little more than
SQLite's own work (its file locks and page writes), and returns light frozen snapshots. The
guarantees stay those of the rest of the store, which keeps using sqlmodel: the connection is
configured exactly like the engine's (engine.configure_connection: WAL, busy timeout, synchronous,
foreign keys), every write is one transaction (BEGIN IMMEDIATE ... COMMIT, or a single statement in
SQLite's autocommit, which takes the write lock as it starts), and a lock makes it safe to share
between threads. The sqlmodel tables stay the schema; this module only reads and writes their rows,
in the very representation the ORM's column types use (see ``to_db_time``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from mt5console.core.store.column_types import require_aware
from mt5console.core.store.engine import Location, configure_connection
from mt5console.core.store.errors import StoreError

Row = tuple[Any, ...]


# SQLAlchemy's own storage format for DATETIME on SQLite (sqlalchemy.dialects.sqlite.DATETIME).
_DB_TIME_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
_UTC_SUFFIX = "+00:00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = _EPOCH.date()
# The text of a day ("YYYY-MM-DD ") by days since the epoch, and of a whole second of the day
# ("HH:MM:SS.000000") by seconds since midnight, each made once: see to_db_time.
_DAY_TEXTS: dict[int, str] = {}
_SECOND_TEXTS: dict[int, str] = {}
_MOST_DAY_TEXTS = 50_000  # some 140 years of days (5 MB at most); past that the table starts again


def to_db_time(value: datetime) -> str:
    """An aware datetime as column_types.UTCDateTime stores it, made the way it makes it (UTC, then
    SQLAlchemy's SQLite DATETIME text without an offset, so that text order is time order):
    ``YYYY-MM-DD HH:MM:SS.ffffff``. A naive datetime raises NaiveDatetimeError, as there."""
    if type(value) is not datetime or value.tzinfo is not UTC:
        utc = require_aware("datetime column", value)
        if type(utc) is not datetime:  # a subclass (pandas' Timestamp...): its fields, as SQLAlchemy does
            return _DB_TIME_FORMAT % (
                utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond
            )  # fmt: skip
        value = utc
    # The same text as _DB_TIME_FORMAT (the tests compare them) for a fraction of its cost, which is
    # formatting seven numbers on every call (one per trade, one per deal in a replay): the timedelta
    # since the epoch splits into days, seconds and microseconds in C, a day's and a second's text
    # are looked up, and only microseconds other than zero (not a bar's time) are formatted.
    since = value - _EPOCH
    days, seconds, microseconds = since.days, since.seconds, since.microseconds
    day = _DAY_TEXTS.get(days) or _day_text(days)
    second = _SECOND_TEXTS.get(seconds) or _second_text(seconds)
    if microseconds:
        return f"{day}{second[:9]}{microseconds:06d}"
    return day + second


def _day_text(days: int) -> str:
    if len(_DAY_TEXTS) >= _MOST_DAY_TEXTS:
        _DAY_TEXTS.clear()
    text = _DAY_TEXTS[days] = f"{(_EPOCH_DATE + timedelta(days=days)).isoformat()} "
    return text


def _second_text(seconds: int) -> str:  # at most 86,400 of them
    hours, rest = divmod(seconds, 3600)
    minutes, second = divmod(rest, 60)
    text = _SECOND_TEXTS[seconds] = f"{hours:02d}:{minutes:02d}:{second:02d}.000000"
    return text


def from_db_time(value: str) -> datetime:
    """The stored text back as an aware UTC datetime, parsed as SQLAlchemy does (fromisoformat)."""
    try:
        # Parsing the zone with the text is several times cheaper than .replace(tzinfo=UTC) after.
        return datetime.fromisoformat(value + _UTC_SUFFIX)
    except ValueError:
        # Not our own format: exactly what UTCDateTime does (and its error when it is not a time).
        return datetime.fromisoformat(value).replace(tzinfo=UTC)


def as_read(utc: datetime, stored: str) -> datetime:
    """What reading ``stored`` (the text of the aware UTC datetime ``utc``) back gives, without
    parsing it when ``utc`` is already that: a plain datetime (a subclass such as pandas' Timestamp
    reads back as a datetime) with fold 0 (the text has none). Snapshots of what was just written
    are built from the written values with this."""
    if type(utc) is datetime and utc.tzinfo is UTC and not utc.fold:
        return utc
    return from_db_time(stored)


class DirectConnection:
    """One sqlite3 connection guarded by a lock: ``transaction`` is a BEGIN IMMEDIATE transaction,
    ``write_one()`` one writing statement and ``read()`` one SELECT, each a transaction of its own.

    ``lock`` is the lock to take around each statement or transaction: by default one of its own;
    an in-memory store passes the one its ORM sessions take too (base.py says why)."""

    def __init__(
        self,
        location: Location,
        *,
        busy_timeout_ms: int,
        durable: bool,
        lock: threading.Lock | threading.RLock | None = None,
    ) -> None:
        self._label = location.label
        self._lock = threading.Lock() if lock is None else lock
        # The busy timeout makes BEGIN IMMEDIATE wait for another connection's (process's) write lock.
        connection = location.connect(busy_timeout_ms=busy_timeout_ms)
        try:
            configure_connection(connection, location, busy_timeout_ms=busy_timeout_ms, durable=durable)
        except BaseException:
            connection.close()
            raise
        self._connection: sqlite3.Connection | None = connection
        # One cursor, reused under the lock: every result is fetched in full before the next statement.
        self._cursor: sqlite3.Cursor | None = connection.cursor()
        # ``with direct.transaction as cursor:`` holds the lock and the database's write lock; commits
        # when the block ends, rolls back (and re-raises) when it raises. (One reusable object: no
        # call to make one per transaction.)
        self.transaction = _WriteTransaction(self)

    def write_one(self, sql: str, parameters: Sequence[Any]) -> int:
        """One writing statement as a transaction of its own, SQLite's autocommit: it takes the write
        lock as it starts (waiting up to the busy timeout, as BEGIN IMMEDIATE does), commits as it
        ends, and leaves nothing behind when it fails. Returns how many rows it changed. For a write
        that is one statement: two statements (BEGIN, COMMIT) fewer than ``transaction``."""
        with self._lock:
            rowcount: int = self._open_cursor().execute(sql, parameters).rowcount
            return rowcount

    def read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Row]:
        with self._lock:
            rows: list[Row] = self._open_cursor().execute(sql, parameters).fetchall()
            return rows

    def close(self) -> None:
        """Waits for a transaction under way; closing twice is harmless."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
            self._connection = self._cursor = None

    def _open_cursor(self) -> sqlite3.Cursor:
        if self._cursor is None:
            raise StoreError(f"{self._label}: the store is closed")
        return self._cursor


class _WriteTransaction:
    """The context manager of ``DirectConnection.transaction`` (a class: cheaper than a generator; it reads
    the connection's fields itself, as each call here is paid on every trade of a replay)."""

    __slots__ = ("_direct",)

    def __init__(self, direct: DirectConnection) -> None:
        self._direct = direct

    def __enter__(self) -> sqlite3.Cursor:
        direct = self._direct
        direct._lock.acquire()
        try:
            cursor = direct._cursor
            if cursor is None:
                raise StoreError(f"{direct._label}: the store is closed")
            cursor.execute("BEGIN IMMEDIATE")
        except BaseException:
            direct._lock.release()
            raise
        return cursor

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        direct = self._direct
        try:
            cursor = direct._cursor
            if cursor is None:  # closed inside the block by the thread that holds the (reentrant) lock
                raise StoreError(f"{direct._label}: the store is closed")
            if exc_type is None:
                try:
                    cursor.execute("COMMIT")
                    return
                except BaseException:
                    _roll_back(cursor)
                    raise
            _roll_back(cursor)
        finally:
            direct._lock.release()


def _roll_back(cursor: sqlite3.Cursor) -> None:
    # SQLite may have ended the transaction itself (some errors roll back on their own).
    if cursor.connection.in_transaction:
        cursor.execute("ROLLBACK")
