"""The store's fast paths for plain values give exactly what its field-by-field checks and a read back
give: the stored time text (arithmetic instead of formatting), a deal's row (one expression instead of
a check per field), record_trade_open/close (inline checks, the snapshot built from what was written
instead of read back). Real in-memory and file stores, and hypothesis for the values."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import threading
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlmodel import Session

from mt5console.core.broker.models import Deal
from mt5console.core.store import (
    InvalidRecordError,
    NaiveDatetimeError,
    RecordNotFoundError,
    Store,
    StoredDeal,
    Trade,
    TradeRecord,
    TradeStatus,
)
from mt5console.core.store.column_types import UTCDateTime
from mt5console.core.store.deals import checked_deal_row, deal_row
from mt5console.core.store.direct import from_db_time, to_db_time
from mt5console.core.store.snapshots import make_trade, trade_from_row

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))
ZONES = [UTC, PARIS, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14))]
DIALECT = sqlite_dialect.dialect()
ORM_BIND = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
TRADE_COLUMNS = ", ".join(field.name for field in dataclasses.fields(Trade))


class Stamp(datetime):
    """A datetime subclass (as pandas' Timestamp is one): stored by its fields, read back a datetime."""


class Side(StrEnum):
    BUY = "buy"


class Number(IntEnum):
    SEVEN = 7


class Lots(float):
    """A float subclass: the store's checks take it and store a plain float."""


@dataclass(frozen=True)
class FakeDeal:
    ticket: typing.Any = 1
    order: typing.Any = 9
    position_id: typing.Any = 1001
    symbol: typing.Any = "EURUSD"
    type: typing.Any = 0
    entry: typing.Any = 0
    reason: typing.Any = 3
    volume: typing.Any = 0.3
    price: typing.Any = 1.08512
    profit: typing.Any = 0.0
    commission: typing.Any = -0.7
    swap: typing.Any = 0.0
    magic: typing.Any = 123456
    comment: typing.Any = "s1:entry"
    time: typing.Any = T0


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.in_memory() as opened:
        opened.save_strategy("s1", name="EMA", symbol="EURUSD", timeframe="H1", definition={}, when=T0)
        yield opened


def as_dict(snapshot: Trade | StoredDeal) -> dict[str, typing.Any]:
    return {field.name: getattr(snapshot, field.name) for field in dataclasses.fields(snapshot)}


def typed(snapshot: Trade | StoredDeal) -> list[tuple[str, typing.Any, type]]:
    """Each field with its value and exact type: equal snapshots may still differ in these."""
    return [(name, value, type(value)) for name, value in as_dict(snapshot).items()]


def rows(store: Store) -> list[tuple[typing.Any, ...]]:
    connection = sqlite3.connect(store._location.target, uri=True)
    try:
        return connection.execute(f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY ticket").fetchall()
    finally:
        connection.close()


# --- the stored time text ---------------------------------------------------------------------------


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from(ZONES)
    )
)
def test_the_stored_text_of_any_time_is_the_orms(moment: datetime) -> None:
    assert ORM_BIND is not None
    for value in (moment, moment.replace(microsecond=0), moment.astimezone(UTC)):
        stored = to_db_time(value)
        assert stored == ORM_BIND(value)
        assert from_db_time(stored) == value


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # the day before the epoch
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        Stamp(2025, 6, 1, 12, 0, 0, 5, tzinfo=PARIS),
    ],
)
def test_the_stored_text_at_the_edges_and_of_a_datetime_subclass(moment: datetime) -> None:
    assert ORM_BIND is not None
    assert to_db_time(moment) == ORM_BIND(moment)
    with pytest.raises(NaiveDatetimeError):
        to_db_time(moment.replace(tzinfo=None))


# --- a deal's row -----------------------------------------------------------------------------------

WHOLE = st.one_of(
    st.integers(min_value=-3, max_value=2**40),
    st.booleans(),
    st.sampled_from([Number.SEVEN, 1.0, "5", None]),
)
REAL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-5, max_value=5),
    st.sampled_from([True, Lots(0.5), -0.0, "1.0", None]),
)
TEXT = st.one_of(st.text(max_size=5), st.sampled_from([Side.BUY, None, 3]))
TIME = st.one_of(
    st.datetimes(
        min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.sampled_from(ZONES)
    ),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),  # naive: refused
    st.sampled_from([Stamp(2025, 1, 1, tzinfo=UTC), "2025-01-01", None]),
)


def outcome(make_row: typing.Callable[[typing.Any], tuple[typing.Any, ...]], deal: object) -> object:
    """The row with each value's exact type, or the error's type and message."""
    try:
        return [(value, type(value)) for value in make_row(deal)]
    except InvalidRecordError as error:
        return type(error), str(error)


@settings(max_examples=400)
@given(
    st.builds(
        FakeDeal,
        ticket=WHOLE,
        order=WHOLE,
        position_id=WHOLE,
        symbol=TEXT,
        type=WHOLE,
        entry=WHOLE,
        reason=WHOLE,
        volume=REAL,
        price=REAL,
        profit=REAL,
        commission=REAL,
        swap=REAL,
        magic=WHOLE,
        comment=TEXT,
        time=TIME,
    )
)
def test_a_deals_row_is_the_one_the_field_by_field_checks_make(deal: FakeDeal) -> None:
    # A deal without a time is stamped "now": one now for both paths, or they differ by microseconds.
    with mock.patch("mt5console.core.store.base.utcnow", return_value=T0):
        assert outcome(deal_row, deal) == outcome(checked_deal_row, deal)


def test_the_terminals_deals_take_the_fast_path_to_the_same_row() -> None:
    deal = Deal(
        7, 8, 9, "EURUSD", 1, 1, 4, 0.1, 1.1, -2.5, -0.5, 0.0, 77, "tp", T0 + timedelta(microseconds=3)
    )
    assert outcome(deal_row, deal) == outcome(checked_deal_row, deal)
    assert deal_row(deal)[-1] == "2025-03-14 09:00:00.000003"

    class Partial:  # not a deal: both name the first attribute missing
        ticket = 1

    assert outcome(deal_row, Partial()) == outcome(checked_deal_row, Partial())
    assert "is not a deal" in str(outcome(deal_row, Partial()))


# --- record_trade_open / record_trade_close ------------------------------------------------------------


def open_args(**changes: typing.Any) -> dict[str, typing.Any]:
    values: dict[str, typing.Any] = {
        "ticket": 5,
        "position_id": 50,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": 0.3,
        "open_price": 1.08512,
        "open_time": T0,
        "strategy_id": "s1",
        "sl": 1.08262,
        "tp": 1.08912,
        "magic": 7,
        "comment": "s1:entry",
    }
    return values | changes


# The same values in forms only the field-by-field checks take (plain form, other form): the store
# must keep the same trade.
SAME_VALUES: list[tuple[dict[str, typing.Any], dict[str, typing.Any]]] = [
    ({}, {"volume": Lots(0.3), "open_price": Lots(1.08512)}),
    ({"sl": 0.0, "tp": 0.0}, {"sl": 0, "tp": 0}),
    ({}, {"open_time": T0.astimezone(PARIS)}),
    ({}, {"open_time": Stamp(2025, 3, 14, 9, 0, tzinfo=UTC)}),
    ({}, {"open_time": T0.replace(fold=1)}),
    ({}, {"side": Side.BUY, "magic": Number.SEVEN}),
]
CLOSES: tuple[dict[str, typing.Any], dict[str, typing.Any]] = (
    {"price": 1.09, "when": T0 + timedelta(hours=1), "profit": 12.0, "exit_reason": "tp"},
    {
        "price": Lots(1.09),
        "when": (T0 + timedelta(hours=1)).astimezone(PARIS),
        "profit": 12,
        "exit_reason": "tp",
    },
)


@pytest.mark.parametrize(("plain", "other"), SAME_VALUES)
def test_plain_and_other_forms_of_the_same_values_record_the_same_trade(
    plain: dict[str, typing.Any], other: dict[str, typing.Any]
) -> None:
    outcomes = []
    for changes, close in zip((plain, other), CLOSES, strict=True):
        with Store.in_memory() as store:
            store.save_strategy("s1", name="EMA", symbol="EURUSD", timeframe="H1", definition={}, when=T0)
            opened = store.record_trade_open(**open_args(**changes))
            closed = store.record_trade_close(5, **close)
            outcomes.append((as_dict(opened), as_dict(closed), rows(store)))
            if changes is plain:  # built from what was written: what a read gives, type for type
                assert typed(closed) == typed(trade_from_row(rows(store)[0]))
    assert outcomes[0] == outcomes[1]


def test_a_trade_built_from_an_unusual_time_is_the_read_one(store: Store) -> None:
    for ticket, moment in ((1, T0.replace(fold=1)), (2, Stamp(2025, 3, 14, 9, 0, 0, 7, tzinfo=UTC))):
        opened = store.record_trade_open(**open_args(ticket=ticket, open_time=moment))
        assert typed(opened) == typed(typing.cast(Trade, store.trade_by_ticket(ticket)))
        assert type(opened.open_time) is datetime and opened.open_time.fold == 0


def test_a_returned_trade_is_what_the_orm_and_a_read_give_field_for_field(tmp_path: Path) -> None:
    with Store(tmp_path / "mt5console.db", durable=False) as store:
        store.save_strategy("s1", name="EMA", symbol="EURUSD", timeframe="H1", definition={}, when=T0)
        opened = store.record_trade_open(**open_args(open_time=T0 + timedelta(microseconds=123)))
        assert typed(opened) == typed(typing.cast(Trade, store.trade_by_ticket(5)))
        assert opened.status is TradeStatus.OPEN and opened.open_time.tzinfo is UTC
        closed = store.record_trade_close(
            5, price=1.0891, when=T0 + timedelta(hours=2), profit=15.8, exit_reason="tp",
            deals=[FakeDeal(ticket=60, position_id=50), FakeDeal(ticket=61, position_id=50, entry=1)],
        )  # fmt: skip
        assert typed(closed) == typed(typing.cast(Trade, store.trade_by_ticket(5)))
        with Session(store._engine) as session:
            record = session.get(TradeRecord, 5)
        assert record is not None and record.model_dump() == as_dict(closed)
        assert closed.status is TradeStatus.CLOSED and closed.close_time == T0 + timedelta(hours=2)
        assert [deal.ticket for deal in store.deals_for_position(50)] == [60, 61]


def typed_row(store: Store, ticket: int) -> list[tuple[typing.Any, str]]:
    """Every column but the ticket with SQLite's own type of its value (what a reader meets)."""
    names = [name for name in TRADE_COLUMNS.split(", ") if name != "ticket"]
    columns = ", ".join(f"{name}, typeof({name})" for name in names)
    connection = sqlite3.connect(store._location.target, uri=True)
    try:
        (row,) = connection.execute(f"SELECT {columns} FROM trades WHERE ticket = ?", (ticket,)).fetchall()
    finally:
        connection.close()
    return list(zip(row[::2], row[1::2], strict=True))


def test_the_direct_rows_are_the_orms_value_for_value_and_type_for_type(store: Store) -> None:
    def orm_write(trade: Trade, ticket: int) -> None:
        with Session(store._writer) as session:
            session.add(TradeRecord(**(as_dict(trade) | {"ticket": ticket})))
            session.commit()

    opened = store.record_trade_open(**open_args(ticket=2, open_time=T0 + timedelta(microseconds=5)))
    orm_write(opened, 1)
    assert typed_row(store, 2) == typed_row(store, 1)  # open: NULL close fields, profit 0.0, 'open'
    assert [value for value, kind in typed_row(store, 2) if kind == "null"] == [None, None, None]
    closed = store.record_trade_close(
        2, price=1.09, when=T0 + timedelta(hours=1), profit=3.5, exit_reason="tp"
    )
    orm_write(closed, 3)
    assert typed_row(store, 2) == typed_row(store, 3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ticket": 0}, "ticket: 0 is less than 1"),
        ({"strategy_id": " "}, "strategy_id: ' ' is not a non-empty string"),
        ({"side": "long"}, "side: 'long' is not one of buy, sell"),
        ({"volume": math.inf}, "volume: inf is not a finite number"),
        ({"open_price": 0.0}, "open_price: 0.0 is not positive"),
        ({"open_time": datetime(2025, 1, 1)}, "open_time: naive datetime"),
        ({"tp": -0.1}, "tp: -0.1 is negative"),
        ({"magic": -1}, "magic: -1 is less than 0"),
        ({"ticket": 0, "volume": -1.0}, "ticket: 0 is less than 1"),  # the first one wrong, as listed
    ],
)
def test_a_bad_open_is_named_and_writes_nothing(
    store: Store, changes: dict[str, typing.Any], message: str
) -> None:
    with pytest.raises(InvalidRecordError, match=message):
        store.record_trade_open(**open_args(**changes))
    assert rows(store) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": math.nan}, "price: nan is not a finite number"),
        ({"price": -1.0}, "price: -1.0 is not positive"),
        ({"when": datetime(2025, 1, 1)}, "when: naive datetime"),
        ({"profit": "12"}, "profit: '12' is not a finite number"),
        ({"exit_reason": ""}, "exit_reason: '' is not a non-empty string"),
        ({"ticket": True}, "ticket: True is not an integer"),
    ],
)
def test_a_bad_close_is_named_and_changes_nothing(
    store: Store, changes: dict[str, typing.Any], message: str
) -> None:
    store.record_trade_open(**open_args())
    before = rows(store)
    arguments: dict[str, typing.Any] = {"price": 1.09, "when": T0, "profit": 1.0, "exit_reason": "tp"}
    with pytest.raises(InvalidRecordError, match=message):
        store.record_trade_close(changes.pop("ticket", 5), **(arguments | changes))
    assert rows(store) == before


# --- snapshots built without their dataclass __init__ ----------------------------------------------------


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=18, max_size=18))
def test_a_built_snapshot_is_the_dataclass_one(values: list[int]) -> None:
    made = make_trade(values)
    assert made == Trade(*values) and typed(made) == typed(Trade(*values))  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.ticket = 1  # type: ignore[misc]


# --- a one-statement write (record_trade_open, record_deal) is a transaction of its own ------------------


def test_a_one_statement_write_waits_for_the_write_lock_like_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "mt5console.db"
    with Store(path) as first:
        first.save_strategy("s1", name="EMA", symbol="EURUSD", timeframe="H1", definition={}, when=T0)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    impatient, patient = Store(path, busy_timeout_ms=50), Store(path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            impatient.record_trade_open(**open_args(ticket=1))
        releaser = threading.Timer(0.4, lambda: holder.execute("COMMIT"))
        releaser.start()
        started = time.monotonic()
        assert patient.record_trade_open(**open_args(ticket=2)).ticket == 2  # after the holder's commit
        assert time.monotonic() - started > 0.3
        releaser.join()
        assert impatient.record_trade_open(**open_args(ticket=3)).ticket == 3  # nothing left behind
        assert [trade.ticket for trade in patient.open_trades()] == [2, 3]
    finally:
        impatient.close()
        patient.close()
        holder.close()


def test_a_refused_one_statement_write_leaves_nothing(store: Store) -> None:
    store.record_trade_open(**open_args(ticket=1))
    with pytest.raises(RecordNotFoundError, match="strategy 'ghost' is not in the store"):
        store.record_trade_open(**open_args(ticket=2, strategy_id="ghost"))
    assert [row[0] for row in rows(store)] == [1]
    connection = store._direct._connection
    assert connection is not None and not connection.in_transaction
    assert store.record_trade_open(**open_args(ticket=3)).ticket == 3
