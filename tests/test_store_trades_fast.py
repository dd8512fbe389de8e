"""The store's direct (non-ORM) path for trades and deals, on real SQLite files in tmp_path: the rows it
writes are the ORM's rows and the reverse, each call is one transaction (a close and its deals commit
together or not at all), and it is safe across threads and connections."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import typing
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlmodel import Session

from mt5console.core.store import (
    DealRecord,
    InvalidRecordError,
    NaiveDatetimeError,
    RecordNotFoundError,
    RecordStateError,
    Store,
    StoredDeal,
    StoreError,
    Trade,
    TradeRecord,
    TradeStatus,
)
from mt5console.core.store.column_types import UTCDateTime
from mt5console.core.store.direct import from_db_time, to_db_time
from tests.store_fakes import T0, FakeDeal, run_threads

PARIS = timezone(timedelta(hours=2))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mt5console.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path, durable=False) as opened:
        opened.save_strategy("s1", name="EMA", symbol="EURUSD", timeframe="H1", definition={}, when=T0)
        yield opened


def raw(db_path: Path, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file with a plain sqlite3 connection of its own, bypassing the store entirely."""
    connection = sqlite3.connect(db_path)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def open_trade(store: Store, ticket: int = 1001, **changes: typing.Any) -> Trade:
    values: dict[str, typing.Any] = {
        "ticket": ticket,
        "position_id": ticket,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": 0.3,
        "open_price": 1.08512,
        "open_time": T0,
        "strategy_id": "s1",
        "sl": 1.08262,
        "tp": 1.08912,
        "magic": 123456,
        "comment": "s1:entry",
    }
    values.update(changes)
    return store.record_trade_open(**values)


def as_dict(snapshot: Trade | StoredDeal) -> dict[str, typing.Any]:
    return {field.name: getattr(snapshot, field.name) for field in dataclasses.fields(snapshot)}


# --- the snapshots ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("snapshot", "table"), [(Trade, TradeRecord), (StoredDeal, DealRecord)])
def test_snapshots_have_exactly_the_tables_fields(snapshot: type, table: type[TradeRecord]) -> None:
    table_fields = {name: info.annotation for name, info in table.model_fields.items()}
    assert typing.get_type_hints(snapshot) == table_fields
    assert [field.name for field in dataclasses.fields(snapshot)] == list(table_fields)
    column_order = [column.name for column in table.__table__.columns]  # type: ignore[attr-defined]
    assert [field.name for field in dataclasses.fields(snapshot)] == column_order


def test_a_returned_trade_is_an_immutable_value(store: Store) -> None:
    trade = open_trade(store)
    assert isinstance(trade, Trade) and trade.status is TradeStatus.OPEN
    with pytest.raises(dataclasses.FrozenInstanceError):
        trade.sl = 0.0  # type: ignore[misc]
    assert store.trade_by_ticket(1001) == trade  # compares by value


# --- the same rows for the ORM and the direct path -------------------------------------------------------

DIALECT = sqlite_dialect.dialect()
ORM_BIND = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
ORM_RESULT = UTCDateTime().dialect_impl(DIALECT).result_processor(DIALECT, None)
ZONES = [UTC, PARIS, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14))]


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2199, 12, 30), timezones=st.sampled_from(ZONES)
    )
)
def test_datetimes_are_written_and_read_as_the_orm_column_type_does(moment: datetime) -> None:
    assert ORM_BIND is not None and ORM_RESULT is not None
    stored = to_db_time(moment)
    assert stored == ORM_BIND(moment)
    assert to_db_time(moment.astimezone(UTC)) == stored  # the cache gives an equal instant the same text
    assert from_db_time(stored) == ORM_RESULT(stored) == moment
    assert from_db_time(stored).tzinfo is UTC
    with pytest.raises(NaiveDatetimeError):
        to_db_time(moment.replace(tzinfo=None))


def test_a_trade_written_directly_reads_the_same_through_the_orm_and_raw_sqlite(
    store: Store, db_path: Path
) -> None:
    opened_at = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=PARIS)
    open_trade(store, 7, open_time=opened_at, comment="")
    store.record_trade_partial(7, volume=0.1, price=1.0875, profit=23.8, when=T0)
    closed = store.record_trade_close(
        7, price=1.0891, when=datetime(2025, 6, 1, 11, 0, 5, tzinfo=UTC), profit=15.8, exit_reason="tp"
    )
    with Session(store._engine) as session:
        record = session.get(TradeRecord, 7)
    assert record is not None
    assert record.model_dump() == as_dict(closed)
    assert record.open_time == opened_at and record.open_time.tzinfo is UTC
    assert record.status is TradeStatus.CLOSED
    assert raw(db_path, "SELECT open_time, close_time, status, remaining_volume, profit FROM trades") == [
        ("2025-06-01 10:00:00.123456", "2025-06-01 11:00:05.000000", "closed", 0.0, 23.8 + 15.8)
    ]


def test_a_trade_written_by_the_orm_reads_the_same_directly(store: Store) -> None:
    record = TradeRecord(
        ticket=9,
        position_id=90,
        strategy_id="s1",
        symbol="GBPUSD",
        side="sell",
        volume=1.0,
        remaining_volume=0.5,
        open_price=1.25,
        open_time=datetime(2025, 6, 1, 12, 0, 0, 654321, tzinfo=PARIS),
        sl=1.26,
        tp=1.2,
        close_price=None,
        close_time=None,
        profit=-3.5,
        exit_reason=None,
        comment="manual",
        magic=7,
        status=TradeStatus.OPEN,
    )
    expected = record.model_dump() | {"open_time": datetime(2025, 6, 1, 10, 0, 0, 654321, tzinfo=UTC)}
    with Session(store._writer) as session:
        session.add(record)
        session.commit()
    for trade in (store.trade_by_ticket(9), store.trade_by_position(90), *store.open_trades("s1")):
        assert trade is not None and as_dict(trade) == expected
        assert trade.open_time.tzinfo is UTC and trade.status is TradeStatus.OPEN
    closed = store.record_trade_close(9, price=1.2, when=T0, profit=10.0, exit_reason="tp")
    assert (closed.profit, closed.volume, closed.close_time) == (6.5, 1.0, T0)


def test_deals_read_the_same_whichever_path_wrote_them(store: Store, db_path: Path) -> None:
    zoned = datetime(2025, 6, 1, 12, 0, 0, 5, tzinfo=PARIS)
    assert store.record_deal(FakeDeal(ticket=50, time=zoned, symbol="", comment="")) is True
    with Session(store._engine) as session:
        record = session.get(DealRecord, 50)
    assert record is not None
    (direct,) = store.deals_for_position(1001)
    assert record.model_dump() == as_dict(direct)
    assert direct.time == zoned and direct.time.tzinfo is UTC
    assert raw(db_path, "SELECT time FROM deals") == [("2025-06-01 10:00:00.000005",)]

    orm_deal = DealRecord(**(as_dict(direct) | {"ticket": 51, "time": T0, "entry": 1}))
    with Session(store._writer, expire_on_commit=False) as session:
        session.add(orm_deal)
        session.commit()
    assert [d.ticket for d in store.deals_for_position(1001)] == [51, 50]  # time order: T0 first
    assert as_dict(store.deals_for_position(1001)[0]) == orm_deal.model_dump()
    assert store.last_deal_time() == zoned


def test_orders_and_filters(store: Store) -> None:
    store.save_strategy("s2", name="Other", symbol="EURUSD", timeframe="H1", definition={}, when=T0)
    open_trade(store, 3, open_time=T0 + timedelta(hours=2))
    open_trade(store, 2, open_time=(T0 + timedelta(hours=1)).astimezone(PARIS), strategy_id="s2")
    open_trade(store, 1, open_time=T0)
    assert [t.ticket for t in store.open_trades()] == [1, 2, 3]
    assert [t.ticket for t in store.open_trades("s1")] == [1, 3]
    for ticket, minutes in ((1, 30), (3, 10), (2, 20)):
        store.record_trade_close(
            ticket, price=1.09, when=T0 + timedelta(hours=3, minutes=minutes), profit=1.0, exit_reason="tp"
        )
    assert [t.ticket for t in store.closed_trades()] == [1, 2, 3]  # newest close first
    assert [t.ticket for t in store.closed_trades("s1", limit=1)] == [1]
    assert store.open_trades() == [] and store.closed_trades("nobody") == []
    with pytest.raises(InvalidRecordError, match="limit: 0 is less than 1"):
        store.closed_trades(limit=0)


# --- validation and state ---------------------------------------------------------------------------------


def test_known_ticket_is_returned_unchanged_and_an_unknown_strategy_is_refused(
    store: Store, db_path: Path
) -> None:
    first = open_trade(store, 5)
    again = open_trade(store, 5, volume=9.0, open_price=2.0, strategy_id="ghost", comment="other")
    assert again == first
    with pytest.raises(RecordNotFoundError, match="strategy_id: strategy 'ghost' is not in the store"):
        open_trade(store, 6, strategy_id="ghost")
    assert raw(db_path, "SELECT ticket FROM trades") == [(5,)]
    assert open_trade(store, 6).ticket == 6  # the connection is usable after the refusal


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ticket": "5"}, "ticket: '5' is not an integer"),
        ({"comment": None}, "comment: None is not a string"),
        ({"volume": float("nan")}, "volume: nan is not a finite number"),
        ({"sl": -1.0}, "sl: -1.0 is negative"),
        ({"magic": True}, "magic: True is not an integer"),
    ],
)
def test_bad_trade_input_is_named_and_writes_nothing(
    store: Store, db_path: Path, changes: dict[str, typing.Any], message: str
) -> None:
    with pytest.raises(InvalidRecordError, match=message):
        open_trade(store, **changes)
    assert raw(db_path, "SELECT COUNT(*) FROM trades") == [(0,)]


def test_changes_to_missing_or_closed_trades_are_refused(store: Store) -> None:
    with pytest.raises(RecordNotFoundError, match="ticket: trade 404 is not in the store"):
        store.update_trade_stops(404, sl=1.0, tp=2.0)
    open_trade(store)
    stops = store.update_trade_stops(1001, sl=1.0851, tp=1.0891)
    assert (stops.sl, stops.tp) == (1.0851, 1.0891)
    store.record_trade_close(1001, price=1.0891, when=T0, profit=1.0, exit_reason="tp")
    changes: list[typing.Callable[[], object]] = [
        lambda: store.update_trade_stops(1001, sl=1.0, tp=2.0),
        lambda: store.record_trade_partial(1001, volume=0.1, price=1.0, profit=1.0),
        lambda: store.record_trade_close(1001, price=1.0, when=T0, profit=1.0, exit_reason="sl"),
    ]
    for change in changes:
        with pytest.raises(RecordStateError, match="trade 1001 is already closed"):
            change()
    trade = store.trade_by_ticket(1001)
    assert trade is not None and (trade.profit, trade.sl, trade.exit_reason) == (1.0, 1.0851, "tp")
    with pytest.raises(InvalidRecordError, match=r"ticket: 1\.5 is not an integer"):
        store.trade_by_ticket(1.5)  # type: ignore[arg-type]


# --- one transaction per call: a close and its deals together or not at all ------------------------------


def test_close_records_its_deals_in_the_same_transaction(store: Store, db_path: Path) -> None:
    open_trade(store)
    entry = FakeDeal(ticket=50)
    exit_deal = FakeDeal(ticket=51, entry=1, reason=5, profit=12.5, time=T0 + timedelta(hours=1))
    assert store.record_deal(entry) is True  # already stored: recorded again without a second row
    closed = store.record_trade_close(
        1001, price=1.0891, when=exit_deal.time, profit=12.5, exit_reason="tp", deals=[entry, exit_deal]
    )
    assert closed.status is TradeStatus.CLOSED and closed.profit == 12.5
    assert [d.ticket for d in store.deals_for_position(1001)] == [50, 51]
    assert raw(db_path, "SELECT COUNT(*) FROM deals") == [(2,)]


def test_a_bad_deal_stops_the_close_before_anything_is_written(store: Store, db_path: Path) -> None:
    open_trade(store)
    good = FakeDeal(ticket=60)
    bad_deals: list[tuple[typing.Any, str]] = [
        (FakeDeal(ticket=61, volume=-0.1), r"deals\[1\]: deal.volume: -0.1 is negative"),
        (FakeDeal(ticket=61, time=datetime(2025, 1, 1)), r"deals\[1\]: deal.time: naive datetime"),
        (object(), r"deals\[1\]: deal: object is not a deal"),
    ]
    for bad, message in bad_deals:
        with pytest.raises(InvalidRecordError, match=message):
            store.record_trade_close(
                1001, price=1.09, when=T0, profit=1.0, exit_reason="tp", deals=[good, bad]
            )
    with pytest.raises(NaiveDatetimeError):
        store.record_trade_partial(
            1001, volume=0.1, price=1.09, profit=1.0, deals=[FakeDeal(ticket=61, time=datetime(2025, 1, 1))]
        )
    assert raw(db_path, "SELECT status, profit, remaining_volume FROM trades") == [("open", 0.0, 0.3)]
    assert raw(db_path, "SELECT COUNT(*) FROM deals") == [(0,)]


def test_a_failure_inside_the_transaction_rolls_back_the_close_too(store: Store, db_path: Path) -> None:
    open_trade(store)
    # A failure SQLite itself raises after the trade's UPDATE has run: only a rollback undoes it.
    connection = sqlite3.connect(db_path)
    connection.execute(
        "CREATE TRIGGER refuse_666 BEFORE INSERT ON deals WHEN NEW.ticket = 666 "
        "BEGIN SELECT RAISE(ABORT, 'deal 666 refused by the test'); END"
    )
    connection.commit()
    connection.close()
    deals = [FakeDeal(ticket=70, entry=1), FakeDeal(ticket=666, entry=1)]
    with pytest.raises(sqlite3.IntegrityError, match="deal 666 refused"):
        store.record_trade_close(1001, price=1.09, when=T0, profit=4.0, exit_reason="tp", deals=deals)
    with pytest.raises(sqlite3.IntegrityError, match="deal 666 refused"):
        store.record_trade_partial(1001, volume=0.1, price=1.09, profit=4.0, deals=deals)
    assert raw(db_path, "SELECT status, profit, remaining_volume FROM trades") == [("open", 0.0, 0.3)]
    assert raw(db_path, "SELECT COUNT(*) FROM deals") == [(0,)]
    # Nothing is left half-open: the next call commits normally.
    assert store.record_trade_close(1001, price=1.09, when=T0, profit=4.0, exit_reason="tp").profit == 4.0


def test_partial_refused_as_a_full_close_writes_none_of_its_deals(store: Store, db_path: Path) -> None:
    open_trade(store)
    with pytest.raises(InvalidRecordError, match="record a close instead"):
        store.record_trade_partial(1001, volume=0.3, price=1.09, profit=1.0, deals=[FakeDeal(ticket=80)])
    partial = store.record_trade_partial(
        1001, volume=0.1, price=1.09, profit=2.0, deals=[FakeDeal(ticket=81, entry=1)]
    )
    assert (partial.remaining_volume, partial.profit, partial.status) == (0.2, 2.0, TradeStatus.OPEN)
    assert raw(db_path, "SELECT ticket FROM deals") == [(81,)]


def test_record_deals_checks_all_first_and_counts_the_new_ones(store: Store, db_path: Path) -> None:
    store.record_deal(FakeDeal(ticket=1))
    with pytest.raises(InvalidRecordError, match=r"deals\[2\]: deal.ticket: 0 is less than 1"):
        store.record_deals([FakeDeal(ticket=2), FakeDeal(ticket=3), FakeDeal(ticket=0)])
    assert raw(db_path, "SELECT ticket FROM deals") == [(1,)]
    assert store.record_deals([FakeDeal(ticket=1), FakeDeal(ticket=2), FakeDeal(ticket=2)]) == 1
    assert store.record_deals([]) == 0
    with pytest.raises(InvalidRecordError, match="deals: expected a sequence of deals"):
        store.record_deals(FakeDeal(ticket=4))  # type: ignore[arg-type]
    assert raw(db_path, "SELECT ticket FROM deals ORDER BY ticket") == [(1,), (2,)]


# --- connections, threads, processes ---------------------------------------------------------------------


@pytest.mark.parametrize(("durable", "synchronous"), [(True, 2), (False, 0)])
def test_the_direct_connection_is_configured_like_the_engines(
    db_path: Path, durable: bool, synchronous: int
) -> None:
    with Store(db_path, durable=durable, busy_timeout_ms=1234) as store:
        connection = store._direct._connection
        assert connection is not None and connection.isolation_level is None
        pragmas = {name: connection.execute(f"PRAGMA {name}").fetchone()[0] for name in
                   ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}  # fmt: skip
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": synchronous,
        "foreign_keys": 1,
        "busy_timeout": 1234,
    }


def test_a_closed_store_refuses_every_call(db_path: Path) -> None:
    store = Store(db_path)
    store.close()
    store.close()  # twice is harmless
    for call in (
        lambda: store.trade_by_ticket(1),
        lambda: store.open_trades(),
        lambda: store.record_deal(FakeDeal(ticket=1)),
        lambda: store.record_trade_close(1, price=1.0, when=T0, profit=0.0, exit_reason="tp"),
        lambda: store.get_strategy("s1"),
        lambda: store.log_event("INFO", "test", "after close"),
    ):
        with pytest.raises(StoreError, match="the store is closed"):
            call()


def trade_cycles(store: Store, first: int, count: int) -> None:
    """Open then close ``count`` trades with their deals, reading back as the tracker does."""
    for ticket in range(first, first + count):
        open_trade(store, ticket)
        assert store.trade_by_ticket(ticket) is not None
        store.log_event("INFO", "test", f"opened {ticket}")  # the ORM connection, interleaved
        deals = [
            FakeDeal(ticket=10 * ticket, position_id=ticket),
            FakeDeal(ticket=10 * ticket + 1, position_id=ticket, entry=1, profit=1.0),
        ]
        store.record_trade_close(ticket, price=1.09, when=T0, profit=1.0, exit_reason="tp", deals=deals)


def test_threads_share_one_store(store: Store, db_path: Path) -> None:
    run_threads(*(lambda first=first: trade_cycles(store, first, 40) for first in (100, 200, 300, 400)))
    assert raw(db_path, "SELECT status, COUNT(*), SUM(profit) FROM trades GROUP BY status") == [
        ("closed", 160, 160.0)
    ]
    assert raw(db_path, "SELECT COUNT(*), SUM(profit) FROM deals") == [(320, 160.0)]


def test_two_stores_on_one_file_write_at_once(store: Store, db_path: Path) -> None:
    with Store(db_path, durable=False) as other:
        run_threads(lambda: trade_cycles(store, 100, 60), lambda: trade_cycles(other, 500, 60))
        # Each sees the other's writes (no stale cache in front of the file).
        assert len(store.closed_trades(limit=1000)) == len(other.closed_trades(limit=1000)) == 120
    assert raw(db_path, "SELECT COUNT(*) FROM deals") == [(240,)]


def test_another_process_writes_trades_at_the_same_time(store: Store, db_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        from datetime import UTC, datetime
        from pathlib import Path
        from mt5console.core.store import Store
        T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
        with Store(Path({str(db_path)!r}), durable=False) as store:
            for ticket in range(900, 960):
                store.record_trade_open(ticket=ticket, position_id=ticket, symbol="EURUSD", side="sell",
                                        volume=0.1, open_price=1.1, open_time=T0, strategy_id="s1")
                store.record_trade_close(ticket, price=1.0, when=T0, profit=2.0, exit_reason="sl")
        print("done")
        """
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    trade_cycles(store, 100, 60)
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert out.strip() == "done"
    assert raw(db_path, "SELECT side, COUNT(*), SUM(profit) FROM trades GROUP BY side") == [
        ("buy", 60, 60.0),
        ("sell", 60, 120.0),
    ]


def test_a_write_waits_for_another_connections_lock_up_to_the_busy_timeout(db_path: Path) -> None:
    Store(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    impatient = Store(db_path, busy_timeout_ms=50)
    patient = Store(db_path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            impatient.record_deal(FakeDeal(ticket=1))
        releaser = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
        releaser.start()
        started = time.monotonic()
        assert patient.record_deal(FakeDeal(ticket=2)) is True  # waits for the holder's commit
        assert time.monotonic() - started > 0.3
        releaser.join()
        # The impatient store's failed BEGIN left nothing behind: it works once the lock is free.
        assert impatient.record_deal(replace(FakeDeal(ticket=3), position_id=7)) is True
    finally:
        impatient.close()
        patient.close()
        holder.close()
    assert raw(db_path, "SELECT ticket FROM deals ORDER BY ticket") == [(2,), (3,)]
