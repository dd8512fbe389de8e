"""The SQLite engine: WAL, busy timeout, durable commits, and the schema version check.

pysqlite's own transaction handling is switched off and every transaction is begun explicitly, as
the SQLAlchemy docs advise: readers use BEGIN (deferred), writers BEGIN IMMEDIATE, so that a writer
takes the write lock up front and waits ``busy_timeout`` for it instead of failing with "database is
locked" when it tries to upgrade a read lock that another process's commit made stale.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import SQLModel

from mt5console.core.store.errors import SchemaVersionError, StoreError
from mt5console.core.store.tables import SCHEMA_VERSION, MetaRecord

DEFAULT_BUSY_TIMEOUT_MS = 5000
SCHEMA_VERSION_KEY = "schema_version"
_BEGIN_OPTION = "mt5console_begin"

Migration = Callable[[Connection], None]
# MIGRATIONS[n] upgrades a version-n database to version n + 1, inside the opening transaction.
# Version 1 is the first schema, so there is nothing to upgrade yet.
MIGRATIONS: Mapping[int, Migration] = {}


def create_sqlite_engine(
    path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, durable: bool = True
) -> Engine:
    """An engine on ``path`` whose every connection runs in WAL mode with synchronous=FULL (a commit
    is on disk before it returns), foreign keys enforced and the given busy timeout.

    ``durable=False`` (synchronous=OFF: no fsync, a crash may lose the latest commits) is only for
    a throwaway database, such as the replay's, that nothing needs after the process ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we BEGIN ourselves (see module docstring)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{path}: SQLite refused WAL journal mode (got {mode!r}); is it on a network drive?"
                )
            cursor.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


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
