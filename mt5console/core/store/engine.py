"""The SQLite engine: WAL, busy timeout, durable commits, and the schema version check.

pysqlite's own transaction handling is switched off and every transaction is begun explicitly, as
the SQLAlchemy docs advise: readers use BEGIN (deferred), writers BEGIN IMMEDIATE, so that a writer
takes the write lock up front and waits ``busy_timeout`` for it instead of failing with "database is
locked" when it tries to upgrade a read lock that another process's commit made stale.

A database lives in a file (WAL, shared between processes) or, for a throwaway store such as the
replay's, in memory (``Location.new_memory``): a named shared-cache database that the engine's one
pooled connection and the store's direct connection both open, so that both see the same data.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from mt5console.core.store.errors import SchemaVersionError, StoreError
from mt5console.core.store.tables import SCHEMA_VERSION, MetaRecord, PartialPlanRecord

DEFAULT_BUSY_TIMEOUT_MS = 5000
SCHEMA_VERSION_KEY = "schema_version"
_BEGIN_OPTION = "mt5console_begin"
_MEMORY_QUERY = "mode=memory&cache=shared"

Migration = Callable[[Connection], None]


def _add_partial_plans(connection: Connection) -> None:
    """1 -> 2: the partial_plans table (the partial-exit plans of open positions)."""
    SQLModel.metadata.tables[PartialPlanRecord.__tablename__].create(connection)


# MIGRATIONS[n] upgrades a version-n database to version n + 1, inside the opening transaction.
MIGRATIONS: Mapping[int, Migration] = {1: _add_partial_plans}


@dataclass(frozen=True)
class Location:
    """Where a store's database lives: a file (``name`` is its path), or an in-memory database
    (``name`` is its unique name, which every connection of this process opens as a URI)."""

    name: str
    in_memory: bool = False

    @classmethod
    def of_file(cls, path: Path) -> Location:
        return cls(str(path))

    @classmethod
    def new_memory(cls) -> Location:
        """A new, empty in-memory database of its own: the unique name keeps two stores apart, and
        cache=shared lets every connection of this process that opens the name see the same data.
        It lives as long as one connection to it is open."""
        return cls(f"mt5console-{uuid.uuid4().hex}", in_memory=True)

    @property
    def target(self) -> str:
        """What sqlite3.connect opens (a URI, ``uri=True``, for an in-memory database)."""
        return f"file:{self.name}?{_MEMORY_QUERY}" if self.in_memory else self.name

    @property
    def label(self) -> str:
        """The database as messages name it."""
        return f"in-memory database {self.name}" if self.in_memory else self.name

    def url(self) -> URL:
        if self.in_memory:
            query = {"mode": "memory", "cache": "shared", "uri": "true"}  # uri: SQLAlchemy's pysqlite flag
            return URL.create("sqlite", database=f"file:{self.name}", query=query)
        # Built from its parts, not parsed from text: a URL's text decodes "%41" in a folder's name,
        # and the schema would go to another file than the one the store opens.
        return URL.create("sqlite", database=self.name)

    def connect(self, *, busy_timeout_ms: int) -> sqlite3.Connection:
        """A raw connection, pysqlite's own transaction handling off (we BEGIN ourselves)."""
        return sqlite3.connect(
            self.target,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=self.in_memory,
        )


def create_sqlite_engine(
    path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, durable: bool = True
) -> Engine:
    """An engine on ``path`` whose every connection runs in WAL mode with synchronous=FULL (a commit
    is on disk before it returns), foreign keys enforced and the given busy timeout.

    ``durable=False`` (synchronous=OFF: no fsync, a crash may lose the latest commits) is only for
    a throwaway database, such as the replay's, that nothing needs after the process ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return location_engine(Location.of_file(path), busy_timeout_ms=busy_timeout_ms, durable=durable)


def location_engine(
    location: Location, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, durable: bool = True
) -> Engine:
    """The engine of a file (``create_sqlite_engine``) or of an in-memory database. The latter keeps
    exactly one connection (StaticPool): the store lets one transaction at a time into an in-memory
    database anyway (base.py says why), and that connection keeps the database alive."""
    connect_args = {"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
    if location.in_memory:
        engine = create_engine(location.url(), connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(location.url(), connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        configure_connection(dbapi_connection, location, busy_timeout_ms=busy_timeout_ms, durable=durable)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def configure_connection(
    connection: sqlite3.Connection, location: Location, *, busy_timeout_ms: int, durable: bool
) -> None:
    """What every connection to the database runs with, the engine's and the store's direct one
    alike: WAL, the busy timeout, synchronous FULL (OFF when not ``durable``), foreign keys enforced,
    and pysqlite's own transaction handling off (we BEGIN ourselves, see the module docstring).

    A file that refuses WAL is refused. An in-memory database cannot have WAL (nor any journal but
    its own "memory"), and needs none: no other process can open it."""
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # synchronous first: a new file's switch to WAL then costs no fsync when not durable.
        cursor.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
        mode = str(cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if location.in_memory:
            if mode != "memory":
                raise StoreError(f"{location.label}: expected the 'memory' journal mode, got {mode!r}")
        elif mode != "wal":
            raise StoreError(
                f"{location.label}: SQLite refused WAL journal mode (got {mode!r}); is it on a network drive?"
            )
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) but its transactions begin IMMEDIATE: for anything that writes."""
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


def prepare_schema(
    engine: Engine,
    *,
    schema_version: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> int:
    """Create the tables of a new database, migrate an older one, refuse a newer one.

    Opening a current database only reads. Creating or migrating runs in one IMMEDIATE transaction
    that checks the version again, so two processes opening a fresh file at once cannot both
    create it. Returns the version the database was at before (0 for a new file).
    """
    with engine.begin() as connection:
        found = _checked_version(connection, schema_version)
    if found == schema_version:
        return found
    with writer(engine).begin() as connection:
        found = _checked_version(connection, schema_version)
        for version in range(found, schema_version) if found else ():
            step = migrations.get(version)
            if step is None:
                raise SchemaVersionError(
                    f"{engine.url.database}: no migration from schema version {version} to {version + 1}"
                )
            step(connection)
        SQLModel.metadata.create_all(connection)
        if found != schema_version:
            _write_version(connection, schema_version)
        return found


def prepare_memory_schema(engine: Engine) -> int:
    """``prepare_schema`` for a new in-memory database (``location_engine`` of ``Location.new_memory``)
    in a fraction of its time. The first such database of the process gets its tables from
    prepare_schema and is then kept as a private copy (about 100 kB); each next one starts as a page
    copy of it (sqlite3's backup: some 50 µs, where compiling and running the DDL takes some 7 ms),
    which prepare_schema then checks as it checks any database. Returns what prepare_schema does."""
    global _schema_copy
    with _schema_copy_lock:
        if _schema_copy is None:
            found = prepare_schema(engine)
            copy = sqlite3.connect(":memory:", check_same_thread=False)
            _backup(engine, into=copy)
            _schema_copy = copy
            return found
        _backup(engine, source=_schema_copy)
        return prepare_schema(engine)


# The fresh schema prepare_memory_schema copies, made once a process; the lock guards its making and use.
_schema_copy: sqlite3.Connection | None = None
_schema_copy_lock = threading.Lock()


def _backup(
    engine: Engine, *, source: sqlite3.Connection | None = None, into: sqlite3.Connection | None = None
) -> None:
    """Copy ``source`` into the engine's database, or the engine's database ``into`` another."""
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        if not isinstance(connection, sqlite3.Connection):
            raise StoreError(f"{engine.url.database}: not a sqlite3 connection: {type(connection).__name__}")
        if source is not None:
            source.backup(connection)
        if into is not None:
            connection.backup(into)
    finally:
        pooled.close()


def _checked_version(connection: Connection, schema_version: int) -> int:
    found = _stored_version(connection)
    if found > schema_version:
        raise SchemaVersionError(
            f"{connection.engine.url.database}: the database has schema version {found}, newer than the "
            f"{schema_version} this mt5console understands; upgrade mt5console "
            "(the file was left unchanged)"
        )
    return found


def _stored_version(connection: Connection) -> int:
    names = set(inspect(connection).get_table_names())
    if MetaRecord.__tablename__ not in names:
        if names:
            raise SchemaVersionError(
                f"{connection.engine.url.database}: has tables {sorted(names)} but no schema version; "
                "not an mt5console database"
            )
        return 0
    table = SQLModel.metadata.tables[MetaRecord.__tablename__]
    raw = connection.execute(select(table.c.value).where(table.c.key == SCHEMA_VERSION_KEY)).scalar()
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        raise SchemaVersionError(
            f"{connection.engine.url.database}: schema version {raw!r} is not a number"
        ) from None


def _write_version(connection: Connection, version: int) -> None:
    table = SQLModel.metadata.tables[MetaRecord.__tablename__]
    statement = insert(table).values(key=SCHEMA_VERSION_KEY, value=str(version))
    connection.execute(
        statement.on_conflict_do_update(index_elements=[table.c.key], set_={"value": str(version)})
    )
