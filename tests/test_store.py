"""The SQLite store on real files in tmp_path: durability, idempotency, ordering, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError, StatementError
from sqlmodel import Session

from mt5console.core.store import (
    MAGIC_MAX,
    MAGIC_MIN,
    SCHEMA_VERSION,
    CommandStatus,
    EventRecord,
    InvalidRecordError,
    JobState,
    NaiveDatetimeError,
    RecordNotFoundError,
    RecordStateError,
    SchemaVersionError,
    Store,
    StrategyState,
    TradeStatus,
    create_sqlite_engine,
    prepare_schema,
)
from tests.store_fakes import T0, FakeDeal


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mt5console.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as opened:
        yield opened


def raw(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the file with the plain sqlite3 module, bypassing the store entirely."""
    connection = sqlite3.connect(db_path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def save(store: Store, strategy_id: str = "strategy_123") -> int:
    record = store.save_strategy(
        strategy_id,
        name="EMA Scalping Pro",
        symbol="EURUSD",
        timeframe="M15",
        definition={"strategyId": strategy_id, "rules": {"entry": {"side": "buy", "conditions": []}}},
        when=T0,
    )
    return record.magic


def open_trade(store: Store, ticket: int = 1001, strategy_id: str | None = "strategy_123") -> None:
    store.record_trade_open(
        ticket=ticket,
        position_id=ticket,
        symbol="EURUSD",
        side="buy",
        volume=0.3,
        open_price=1.08512,
        open_time=T0,
        strategy_id=strategy_id,
        sl=1.08262,
        tp=1.08912,
        magic=0,
        comment="strategy_123:entry",
    )


# --- engine and schema ---------------------------------------------------------------------------


def test_file_is_in_wal_mode_with_full_sync_and_foreign_keys(store: Store, db_path: Path) -> None:
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]  # persistent: seen by any connection
    with store._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    assert raw(db_path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


def test_data_survives_closing_and_reopening(db_path: Path) -> None:
    first = Store(db_path)
    magic = save(first)
    open_trade(first)
    first.record_command("cmd-1", "STOP_ALL", {"closePositions": True})
    job_known = first.job_received("job-1", "get_account", {})
    entry = first.outbox_put("ack", "POST", "/agents/a/commands/cmd-1/ack", {"status": "ok"}, when=T0)
    first.log_event("INFO", "runtime", "started", when=T0)
    first.close()

    second = Store(db_path)
    try:
        strategy = second.get_strategy("strategy_123")
        assert job_known is None
        assert strategy is not None and strategy.magic == magic
        assert strategy.definition["rules"]["entry"]["side"] == "buy"
        assert [t.ticket for t in second.open_trades()] == [1001]
        assert second.record_command("cmd-1", "STOP_ALL", {}) is False
        assert second.get_job("job-1") is not None
        assert [e.id for e in second.outbox_due(T0)] == [entry]
        assert [(e.source, e.message, e.time) for e in second.recent_events()] == [("runtime", "started", T0)]
        assert second.allocate_magic("strategy_123") == magic
    finally:
        second.close()


def test_a_folder_name_that_looks_url_encoded_is_the_folder_used(tmp_path: Path) -> None:
    """A data dir named like "d%41x": a URL's text decodes it, and the schema went to d Ax/ while the
    store opened d%41x/ ("unable to open database file", or "no such table")."""
    folder = tmp_path / "d%41x"
    folder.mkdir()
    (tmp_path / "dAx").mkdir()  # the folder the decoded name points at: nothing must land there
    store = Store(folder / "mt5console.db")
    try:
        save(store)
        open_trade(store)
        assert [t.ticket for t in store.open_trades()] == [1001]
    finally:
        store.close()
    assert not (tmp_path / "dAx" / "mt5console.db").exists()


def test_database_of_a_newer_schema_is_refused_and_left_unchanged(db_path: Path) -> None:
    Store(db_path).close()
    connection = sqlite3.connect(db_path)
    newer = SCHEMA_VERSION + 1
    connection.execute(f"UPDATE meta SET value = '{newer}' WHERE key = 'schema_version'")
    connection.execute("DROP TABLE events")
    connection.commit()
    connection.close()

    with pytest.raises(SchemaVersionError, match=f"schema version {newer}, newer than the {SCHEMA_VERSION}"):
        Store(db_path)
    assert raw(db_path, "SELECT name FROM sqlite_master WHERE name = 'events'") == []  # not recreated
    assert raw(db_path, "SELECT value FROM meta") == [(str(newer),)]


def test_older_schema_is_migrated_step_by_step(db_path: Path) -> None:
    Store(db_path).close()
    ran: list[int] = []
    current, next_version = SCHEMA_VERSION, SCHEMA_VERSION + 1

    def add_column(connection: Connection) -> None:
        ran.append(current)
        connection.execute(text("ALTER TABLE events ADD COLUMN origin VARCHAR"))

    engine = create_sqlite_engine(db_path)
    try:
        with pytest.raises(
            SchemaVersionError, match=f"no migration from schema version {current} to {next_version}"
        ):
            prepare_schema(engine, schema_version=next_version, migrations={})
        assert raw(db_path, "SELECT value FROM meta") == [(str(current),)]
        assert (
            prepare_schema(engine, schema_version=next_version, migrations={current: add_column}) == current
        )
    finally:
        engine.dispose()
    assert ran == [current]
    assert raw(db_path, "SELECT value FROM meta") == [(str(next_version),)]
    assert "origin" in [row[1] for row in raw(db_path, "PRAGMA table_info(events)")]


def test_a_foreign_sqlite_file_is_not_taken_over(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    connection = sqlite3.connect(db_path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(SchemaVersionError, match="not an mt5console database"):
        Store(db_path)


# --- datetimes and JSON ----------------------------------------------------------------------------


def test_datetimes_round_trip_as_aware_utc(store: Store, db_path: Path) -> None:
    paris = timezone(timedelta(hours=2))
    local = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=paris)
    store.log_event("INFO", "test", "zoned", when=local)
    (event,) = store.recent_events(1)
    assert event.time == local
    assert event.time.tzinfo is UTC and event.time.hour == 10
    assert raw(db_path, "SELECT time FROM events") == [("2025-06-01 10:00:00.123456",)]


def test_naive_datetime_is_refused_and_nothing_is_written(store: Store, db_path: Path) -> None:
    with pytest.raises(NaiveDatetimeError, match="open_time: naive datetime"):
        store.record_trade_open(
            ticket=7,
            position_id=7,
            symbol="EURUSD",
            side="sell",
            volume=0.1,
            open_price=1.1,
            open_time=datetime(2025, 1, 1, 12, 0),
        )
    assert store.trade_by_ticket(7) is None
    with pytest.raises(NaiveDatetimeError):
        store.outbox_due(datetime(2025, 1, 1))


def test_the_column_type_itself_refuses_naive_datetimes(store: Store, db_path: Path) -> None:
    # Code that bypasses the Store's checks still cannot write a naive datetime.
    with Session(store._engine) as session:
        session.add(EventRecord(time=datetime(2025, 1, 1), level="INFO", source="x", message="y"))
        with pytest.raises(StatementError) as caught:
            session.commit()
    assert isinstance(caught.value.orig, NaiveDatetimeError)
    assert raw(db_path, "SELECT COUNT(*) FROM events") == [(0,)]


def test_json_columns_round_trip_and_unserialisable_values_are_refused(store: Store) -> None:
    payload = {"symbol": "XAUUSD", "levels": [{"atR": 1.0, "closePercent": 50}], "enabled": True, "x": None}
    store.job_received("job-json", "trade", payload)
    job = store.get_job("job-json")
    assert job is not None and job.input == payload
    with pytest.raises(InvalidRecordError, match="input_data: not JSON serialisable"):
        store.job_received("job-bad", "trade", {"when": T0})
    with pytest.raises(InvalidRecordError, match="input_data"):
        store.job_received("job-nan", "trade", {"price": float("nan")})
    assert store.get_job("job-bad") is None and store.get_job("job-nan") is None


# --- strategies and magic numbers -------------------------------------------------------------------


def test_magic_is_stable_unique_and_in_range(db_path: Path) -> None:
    with Store(db_path) as first:
        magics = {sid: save(first, sid) for sid in ("a", "b", "strategy_123")}
        assert first.allocate_magic("not-saved-yet") not in magics.values()
    assert len(set(magics.values())) == 3
    assert all(MAGIC_MIN <= m <= MAGIC_MAX for m in magics.values())
    with Store(db_path) as again:
        # Re-saving (a START of a running id) keeps the number; so does a restart.
        again.save_strategy("b", name="B2", symbol="GBPUSD", timeframe="H1", definition={"v": 2})
        assert {sid: again.allocate_magic(sid) for sid in magics} == magics
        strategy = again.strategy_by_magic(magics["b"])
        assert strategy is not None and strategy.id == "b" and strategy.symbol == "GBPUSD"
    # A new database gives the same id the same number: its open positions still map back to it.
    with Store(db_path.parent / "other.db") as fresh:
        assert save(fresh, "strategy_123") == magics["strategy_123"]


def test_magic_collisions_are_resolved(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mt5console.core.store.strategies.preferred_magic", lambda _id: MAGIC_MAX)
    assert save(store, "one") == MAGIC_MAX
    assert save(store, "two") == MAGIC_MIN  # wrapped around past the top of the range
    assert save(store, "three") == MAGIC_MIN + 1


def test_strategy_state_changes_and_filtering(store: Store) -> None:
    save(store, "a")
    save(store, "b")
    store.set_strategy_state("b", "paused", "paused by user", when=T0 + timedelta(minutes=1))
    assert [s.id for s in store.list_strategies(StrategyState.RUNNING)] == ["a"]
    (paused,) = store.list_strategies("paused")
    assert (paused.state, paused.state_reason, paused.updated_at) == (
        StrategyState.PAUSED,
        "paused by user",
        T0 + timedelta(minutes=1),
    )
    with pytest.raises(InvalidRecordError, match="state: 'sleeping' is not one of running, paused"):
        store.set_strategy_state("a", "sleeping")
    with pytest.raises(RecordNotFoundError, match="'zzz'"):
        store.set_strategy_state("zzz", "stopped")
    a = store.get_strategy("a")
    assert a is not None and a.state is StrategyState.RUNNING


# --- trades and deals --------------------------------------------------------------------------------


def test_trade_lifecycle_partial_then_close(store: Store) -> None:
    save(store)
    open_trade(store)
    store.update_trade_stops(1001, sl=1.0851, tp=1.0891)
    partial = store.record_trade_partial(1001, volume=0.1, price=1.0875, profit=23.8, when=T0)
    assert partial.remaining_volume == pytest.approx(0.2) and partial.status is TradeStatus.OPEN
    with pytest.raises(InvalidRecordError, match="record a close instead"):
        store.record_trade_partial(1001, volume=0.2, price=1.0875, profit=1.0)
    closed = store.record_trade_close(
        1001, price=1.0891, when=T0 + timedelta(hours=1), profit=15.8, exit_reason="tp"
    )
    assert closed.profit == pytest.approx(39.6)
    assert (closed.status, closed.exit_reason, closed.sl, closed.remaining_volume) == (
        TradeStatus.CLOSED,
        "tp",
        1.0851,
        0.0,
    )
    assert store.open_trades() == []
    assert [t.ticket for t in store.closed_trades("strategy_123")] == [1001]
    with pytest.raises(RecordStateError, match="already closed"):
        store.record_trade_close(1001, price=1.0, when=T0, profit=0.0, exit_reason="sl")


def test_trades_filtered_by_strategy_and_checked(store: Store) -> None:
    save(store)
    open_trade(store, 1)
    open_trade(store, 2, strategy_id=None)  # a manual or job trade
    open_trade(store, 1)  # reconciliation meeting it again: no second row, no error
    assert [t.ticket for t in store.open_trades("strategy_123")] == [1]
    assert [t.ticket for t in store.open_trades()] == [1, 2]
    with pytest.raises(RecordNotFoundError, match="strategy 'ghost'"):
        open_trade(store, 3, strategy_id="ghost")
    with pytest.raises(InvalidRecordError, match="side: 'long'"):
        store.record_trade_open(
            ticket=4, position_id=4, symbol="EURUSD", side="long", volume=1, open_price=1, open_time=T0
        )
    assert store.trade_by_ticket(3) is None and store.trade_by_ticket(4) is None


def test_deals_are_recorded_once(store: Store, db_path: Path) -> None:
    assert store.last_deal_time() is None
    assert store.record_deal(FakeDeal(ticket=50)) is True
    assert store.record_deal(FakeDeal(ticket=50)) is False
    assert store.record_deal(FakeDeal(ticket=51, entry=1, time=T0 + timedelta(minutes=5))) is True
    assert raw(db_path, "SELECT COUNT(*) FROM deals") == [(2,)]
    assert [d.ticket for d in store.deals_for_position(1001)] == [50, 51]
    assert store.last_deal_time() == T0 + timedelta(minutes=5)


# --- commands and jobs ----------------------------------------------------------------------------------


def test_duplicate_command_id_is_detected(store: Store, db_path: Path) -> None:
    assert store.record_command("cmd-42", "STOP_STRATEGY", {"strategyId": "s"}) is True
    assert store.record_command("cmd-42", "CLOSE_ALL", {}) is False
    record = store.set_command_status("cmd-42", CommandStatus.REJECTED, "unknown strategy 's'")
    assert (record.name, record.status, record.error) == (
        "STOP_STRATEGY",
        CommandStatus.REJECTED,
        "unknown strategy 's'",
    )
    assert raw(db_path, "SELECT id, name, status FROM commands") == [("cmd-42", "STOP_STRATEGY", "rejected")]


def test_job_runs_at_most_once_and_its_result_is_kept(store: Store, db_path: Path) -> None:
    assert store.job_received("job-7", "trade", {"symbol": "EURUSD", "side": "buy", "volume": 0.1}) is None
    store.job_started("job-7")
    with pytest.raises(RecordStateError, match="already running"):
        store.job_started("job-7")
    store.job_finished("job-7", result={"fill_price": 1.1, "order_id": 5, "ticket": 6})

    again = store.job_received("job-7", "trade", {"symbol": "other"})  # the platform hands it out again
    assert again is not None
    assert (again.state, again.result, again.input["symbol"]) == (
        JobState.COMPLETED,
        {"fill_price": 1.1, "order_id": 5, "ticket": 6},
        "EURUSD",
    )
    assert raw(db_path, "SELECT COUNT(*) FROM jobs") == [(1,)]
    with pytest.raises(RecordStateError, match="already completed"):
        store.job_finished("job-7", error="late")


def test_failed_and_interrupted_jobs(store: Store) -> None:
    store.job_received("a", "compile", {"ea_name": "X"})
    store.job_received("b", "get_account", {})
    store.job_started("b")
    assert [j.id for j in store.unfinished_jobs()] == ["a", "b"]
    with pytest.raises(InvalidRecordError, match="either result or error"):
        store.job_finished("a", result={"compiled": False}, error="both")
    failed = store.job_finished("a", error="MetaEditor not found at C:/MT5/metaeditor64.exe")
    assert failed.state is JobState.FAILED and failed.result is None
    assert [j.id for j in store.unfinished_jobs()] == ["b"]


# --- outbox and event log ----------------------------------------------------------------------------


def test_outbox_keeps_order_and_retry_bookkeeping(store: Store) -> None:
    first = store.outbox_put("trade_event", "post", "/agents/a/trades", {"event": "opened"}, when=T0)
    second = store.outbox_put("trade_event", "POST", "/agents/a/trades", {"event": "closed"}, when=T0)
    third = store.outbox_put("job_result", "POST", "/agents/a/jobs/j/result", {"status": "ok"}, when=T0)
    assert [e.id for e in store.outbox_due(T0)] == [first, second, third]
    assert [e.id for e in store.outbox_due(T0, limit=2)] == [first, second]
    assert store.outbox_due(T0 - timedelta(seconds=1)) == []  # not created yet at that time

    retry_at = T0 + timedelta(seconds=2)
    failed = store.outbox_failed(first, "ConnectError: platform unreachable", retry_at)
    store.outbox_failed(first, "HTTP 503", retry_at)
    assert (failed.attempts, failed.method) == (1, "POST")
    # The first waits for its retry time, and nothing overtakes it meanwhile.
    assert store.outbox_due(T0 + timedelta(seconds=1)) == []
    due = store.outbox_due(retry_at)
    assert [e.id for e in due] == [first, second, third]
    assert (due[0].attempts, due[0].last_error) == (2, "HTTP 503")

    store.outbox_delivered(first, when=retry_at)
    store.outbox_delivered(first, when=retry_at + timedelta(seconds=9))  # repeated: no change
    store.outbox_abandoned(second, "HTTP 422: unknown strategy")
    assert store.outbox_pending_count() == 1
    assert [e.id for e in store.outbox_due(retry_at)] == [third]
    delivered = store.get_outbox(first)
    assert delivered is not None and delivered.delivered_at == retry_at
    with pytest.raises(RecordStateError, match="no longer pending"):
        store.outbox_failed(first, "late", retry_at)
    with pytest.raises(InvalidRecordError, match="method: 'FETCH'"):
        store.outbox_put("ack", "FETCH", "/x", {})
    assert store.outbox_pending_count() == 1


def test_recent_events_are_the_newest_in_log_order(store: Store) -> None:
    for n in range(5):
        store.log_event("INFO", "runtime", f"line {n}", when=T0 + timedelta(seconds=n))
    assert [e.message for e in store.recent_events(3)] == ["line 2", "line 3", "line 4"]


# --- other processes -------------------------------------------------------------------------------------


def run_python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def test_writes_of_another_process_are_visible(store: Store, db_path: Path) -> None:
    save(store)
    finish(
        run_python(
            f"""
            from pathlib import Path
            from mt5console.core.store import Store
            with Store(Path({str(db_path)!r})) as other:
                other.set_strategy_state("strategy_123", "stopped", "STOP_STRATEGY from the other process")
                other.outbox_put("ack", "POST", "/ack", {{"status": "ok"}})
            """
        )
    )
    strategy = store.get_strategy("strategy_123")
    assert strategy is not None and strategy.state is StrategyState.STOPPED
    assert store.outbox_pending_count() == 1


WRITER = """
import sys
from pathlib import Path
from mt5console.core.store import Store
name, count = sys.argv[1], int(sys.argv[2])
with Store(Path({path!r})) as store:
    for n in range(count):
        store.record_command(f"{{name}}-{{n}}", "STOP_ALL", {{"n": n}})
        store.job_received(f"job-{{n % 10}}", "get_account", {{}})  # read-then-write on shared rows
        store.outbox_put("ack", "POST", f"/ack/{{name}}/{{n}}", {{"n": n}})
print("done")
"""


def test_concurrent_writers_in_two_processes_do_not_hit_database_is_locked(db_path: Path) -> None:
    Store(db_path).close()
    code = WRITER.format(path=str(db_path))
    count = 120
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", code, name, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("left", "right")
    ]
    for process in writers:
        assert finish(process).strip() == "done"
    assert raw(db_path, "SELECT COUNT(*) FROM commands") == [(2 * count,)]
    assert raw(db_path, "SELECT COUNT(*) FROM jobs") == [(10,)]
    assert raw(db_path, "SELECT COUNT(*) FROM outbox") == [(2 * count,)]


def test_busy_timeout_waits_for_a_lock_held_by_another_process(db_path: Path) -> None:
    Store(db_path).close()
    holder = run_python(
        f"""
        import sqlite3, sys, time
        connection = sqlite3.connect({str(db_path)!r}, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO events (time, level, source, message) "
                           "VALUES ('2025-01-01 00:00:00.000000', 'INFO', 'holder', 'x')")
        print("locked", flush=True)
        time.sleep(1.0)
        connection.execute("COMMIT")
        """
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    impatient = Store(db_path, busy_timeout_ms=50)
    patient = Store(db_path)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            impatient.log_event("INFO", "impatient", "gives up")
        started = time.monotonic()
        patient.log_event("INFO", "patient", "waits")  # waits for the holder's commit, then writes
        assert time.monotonic() - started > 0.2
    finally:
        impatient.close()
        patient.close()
    finish(holder)
    assert [e.source for e in Store(db_path).recent_events()] == ["holder", "patient"]
