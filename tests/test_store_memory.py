"""Store.in_memory(): a store whose database lives in memory (the replay's throwaway store). The ORM
and the direct connection share it, nothing touches the disk, close() frees it, and SQLite's
shared-cache table locks never surface, in one thread or several."""

from __future__ import annotations

import sqlite3
import threading
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from mt5console.core.store import (
    InvalidRecordError,
    RecordNotFoundError,
    SchemaVersionError,
    Store,
    StoreError,
    StrategyRecord,
    TradeRecord,
    TradeStatus,
)
from mt5console.core.store import engine as engine_module
from mt5console.core.store.engine import DEFAULT_BUSY_TIMEOUT_MS, Location, configure_connection
from tests.store_fakes import T0, FakeDeal, run_threads


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.in_memory() as opened:
        save(opened, "s1")
        yield opened


def save(store: Store, strategy_id: str) -> StrategyRecord:
    return store.save_strategy(
        strategy_id, name="EMA", symbol="EURUSD", timeframe="H1", definition={}, when=T0
    )


def open_trade(store: Store, ticket: int, strategy_id: str | None = "s1") -> None:
    store.record_trade_open(
        ticket=ticket,
        position_id=ticket,
        symbol="EURUSD",
        side="buy",
        volume=0.3,
        open_price=1.08512,
        open_time=T0,
        strategy_id=strategy_id,
    )


def raw(store: Store, sql: str) -> list[tuple[object, ...]]:
    """Read the store's database on a connection of our own, opened by the database's name."""
    connection = sqlite3.connect(store._location.target, uri=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def orm_trades(store: Store) -> list[TradeRecord]:
    with store._read() as session:
        return list(session.exec(select(TradeRecord).order_by(col(TradeRecord.ticket))).all())


# --- what it is ---------------------------------------------------------------------------------------


def test_an_in_memory_store_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative file (":memory:", "mt5console-...") would land here
    with Store.in_memory() as store:
        save(store, "s1")
        open_trade(store, 1)
        store.log_event("INFO", "test", "in memory")
        assert store.path == Path(":memory:") and store.is_in_memory
        assert raw(store, "PRAGMA journal_mode") == [("memory",)]
    assert list(tmp_path.iterdir()) == []


def test_a_file_store_is_not_in_memory(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db", durable=False) as store:
        assert store.path == tmp_path / "a.db" and not store.is_in_memory


def test_both_connections_are_configured_alike(store: Store) -> None:
    direct = store._direct._connection
    assert direct is not None and direct.isolation_level is None
    with store._read() as session:
        orm = session.connection().connection.dbapi_connection
    assert isinstance(orm, sqlite3.Connection) and orm.isolation_level is None
    for connection in (direct, orm):
        pragmas = {name: connection.execute(f"PRAGMA {name}").fetchone()[0] for name in
                   ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}  # fmt: skip
        assert pragmas == {
            "journal_mode": "memory",
            "synchronous": 0,
            "foreign_keys": 1,
            "busy_timeout": DEFAULT_BUSY_TIMEOUT_MS,
        }


def test_only_an_in_memory_location_accepts_the_memory_journal(tmp_path: Path) -> None:
    # SQLite answers "memory" to a WAL request on an in-memory database: a file store must refuse it.
    connection = sqlite3.connect(":memory:")
    try:
        with pytest.raises(StoreError, match="refused WAL journal mode"):
            configure_connection(
                connection, Location.of_file(tmp_path / "a.db"), busy_timeout_ms=100, durable=False
            )
        configure_connection(connection, Location.new_memory(), busy_timeout_ms=100, durable=False)
    finally:
        connection.close()


SCHEMA = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"


def test_every_in_memory_store_gets_the_schema_prepare_schema_makes(tmp_path: Path) -> None:
    # The first in-memory store of the process runs prepare_schema, the next ones copy its result.
    with Store(tmp_path / "a.db", durable=False) as on_file, Store.in_memory(), Store.in_memory() as copied:
        connection = sqlite3.connect(tmp_path / "a.db")
        try:
            expected = connection.execute(SCHEMA).fetchall()
            expected_meta = connection.execute("SELECT * FROM meta").fetchall()
        finally:
            connection.close()
        assert len(expected) > 10 and expected_meta
        assert raw(copied, SCHEMA) == expected
        assert raw(copied, "SELECT * FROM meta") == expected_meta
        assert on_file.open_trades() == copied.open_trades() == []


def test_a_copied_schema_is_checked_like_any_database(monkeypatch: pytest.MonkeyPatch) -> None:
    Store.in_memory().close()  # the process's copy exists
    newer = sqlite3.connect(":memory:", check_same_thread=False)
    assert engine_module._schema_copy is not None
    engine_module._schema_copy.backup(newer)
    newer.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    newer.commit()
    monkeypatch.setattr(engine_module, "_schema_copy", newer)
    with pytest.raises(SchemaVersionError, match="schema version 999, newer than"):
        Store.in_memory()
    newer.close()


def test_two_in_memory_stores_are_independent() -> None:
    with Store.in_memory() as first, Store.in_memory() as second:
        assert first._location.name != second._location.name
        save(first, "s1")
        open_trade(first, 1)
        assert second.get_strategy("s1") is None
        assert second.trade_by_ticket(1) is None and second.open_trades() == []
        with pytest.raises(RecordNotFoundError, match="strategy 's1' is not in the store"):
            open_trade(second, 1)  # the foreign key looks in its own database only
        save(second, "s2")
        assert [s.id for s in first.list_strategies()] == ["s1"]
        assert [s.id for s in second.list_strategies()] == ["s2"]


# --- the ORM and the direct connection see one database ---------------------------------------------


def test_what_the_orm_writes_the_direct_path_sees(store: Store) -> None:
    save(store, "s2")
    open_trade(store, 7, strategy_id="s2")  # the foreign key finds the ORM's row
    assert [t.strategy_id for t in store.open_trades("s2")] == ["s2"]
    with pytest.raises(RecordNotFoundError, match="strategy 'nope' is not in the store"):
        open_trade(store, 8, strategy_id="nope")
    assert store.trade_by_ticket(8) is None


def test_what_the_direct_path_writes_the_orm_sees(store: Store) -> None:
    open_trade(store, 7)
    store.record_trade_close(
        7, price=1.09, when=T0, profit=4.0, exit_reason="tp", deals=[FakeDeal(ticket=70, position_id=7)]
    )
    [record] = orm_trades(store)
    assert (record.ticket, record.status, record.profit, record.close_time) == (
        7,
        TradeStatus.CLOSED,
        4.0,
        T0,
    )
    assert store.deals_for_position(7)[0].ticket == 70


def test_bad_input_and_failed_transactions_change_nothing(store: Store) -> None:
    open_trade(store, 1001)
    with pytest.raises(InvalidRecordError, match="side: 'up' is not one of buy, sell"):
        store.record_trade_open(
            ticket=2, position_id=2, symbol="EURUSD", side="up", volume=0.1, open_price=1.1, open_time=T0
        )
    # A failure SQLite raises after the trade's UPDATE ran: only a rollback undoes it.
    connection = sqlite3.connect(store._location.target, uri=True, isolation_level=None)
    connection.execute(
        "CREATE TRIGGER refuse_666 BEFORE INSERT ON deals WHEN NEW.ticket = 666 "
        "BEGIN SELECT RAISE(ABORT, 'deal 666 refused by the test'); END"
    )
    connection.close()
    deals = [FakeDeal(ticket=70, entry=1), FakeDeal(ticket=666, entry=1)]
    with pytest.raises(sqlite3.IntegrityError, match="deal 666 refused"):
        store.record_trade_close(1001, price=1.09, when=T0, profit=4.0, exit_reason="tp", deals=deals)
    assert raw(store, "SELECT ticket, status, profit FROM trades") == [(1001, "open", 0.0)]
    assert raw(store, "SELECT COUNT(*) FROM deals") == [(0,)]
    assert store.record_trade_close(1001, price=1.09, when=T0, profit=4.0, exit_reason="tp").profit == 4.0


# --- closing ------------------------------------------------------------------------------------------


def test_close_frees_the_database(store: Store) -> None:
    open_trade(store, 1)
    assert raw(store, "SELECT ticket FROM trades") == [(1,)]  # reachable by its name while open
    store.close()
    store.close()  # twice is harmless
    # The name now opens a new, empty database: the old one is gone with its last connection.
    assert raw(store, "SELECT name FROM sqlite_master") == []


def test_a_closed_in_memory_store_refuses_every_call(store: Store) -> None:
    store.close()
    for call in (
        lambda: store.trade_by_ticket(1),
        lambda: open_trade(store, 2),
        lambda: store.get_strategy("s1"),
        lambda: store.log_event("INFO", "test", "after close"),
    ):
        with pytest.raises(StoreError, match=r"in-memory database mt5console-\w+: the store is closed"):
            call()


# --- shared-cache table locks: never met ---------------------------------------------------------------


def interleave(store: Store, strategy_id: str, first: int, count: int) -> None:
    """ORM write, direct write, ORM read, direct read, direct write, in turn: a table written by one
    connection is read by the other next, which SQLite's shared cache locks at table level."""
    save(store, strategy_id)
    for ticket in range(first, first + count):
        store.log_event("INFO", "test", f"opening {ticket}")
        open_trade(store, ticket, strategy_id)
        assert store.get_strategy(strategy_id) is not None
        assert ticket in {t.ticket for t in orm_trades(store)}
        assert store.trade_by_ticket(ticket) is not None
        store.set_strategy_state(strategy_id, "running", reason=f"trade {ticket}")
        deals = [FakeDeal(ticket=10 * ticket, position_id=ticket, entry=1, profit=1.0)]
        store.record_trade_close(ticket, price=1.09, when=T0, profit=1.0, exit_reason="tp", deals=deals)
        assert len(store.recent_events(limit=5)) >= 1


def test_orm_and_direct_calls_interleave_in_one_thread(store: Store) -> None:
    interleave(store, "s2", 1, 50)
    assert raw(store, "SELECT status, COUNT(*), SUM(profit) FROM trades GROUP BY status") == [
        ("closed", 50, 50.0)
    ]


def test_orm_and_direct_calls_interleave_in_several_threads(store: Store) -> None:
    run_threads(*(lambda n=n: interleave(store, f"t{n}", 1000 * n, 40) for n in (1, 2, 3)))
    assert raw(store, "SELECT strategy_id, COUNT(*), SUM(profit) FROM trades GROUP BY strategy_id") == [
        ("t1", 40, 40.0),
        ("t2", 40, 40.0),
        ("t3", 40, 40.0),
    ]
    assert raw(store, "SELECT COUNT(*) FROM deals") == [(120,)]


def test_close_waits_for_a_transaction_of_another_thread(store: Store) -> None:
    def closer() -> None:
        store.close()

    with store._write() as session:
        thread = threading.Thread(target=closer)
        thread.start()
        thread.join(timeout=0.2)
        assert thread.is_alive()  # close() waits for the transaction under way
        session.add(StrategyRecord(**{**save_values("s9"), "magic": 100_001}))
    thread.join(timeout=10)
    assert not thread.is_alive()
    with pytest.raises(StoreError, match="the store is closed"):
        store.get_strategy("s9")


def save_values(strategy_id: str) -> dict[str, typing.Any]:
    return {
        "id": strategy_id,
        "name": "EMA",
        "symbol": "EURUSD",
        "timeframe": "H1",
        "definition": {},
        "state": "running",
        "state_reason": "",
        "created_at": T0,
        "updated_at": T0,
    }
