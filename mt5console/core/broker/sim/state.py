"""The simulated account: balance, open positions, history orders and deals, ticket counters.

With a state file (SQLite, WAL, synchronous=FULL) every change is committed before the call that made
it returns, and the next SimTerminal on the same file carries on from it, the way a real account's
positions outlive the console. One SimTerminal per state file at a time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim.records import TradeDeal, TradeOrder

SCHEMA_VERSION: Final = 1
FIRST_ORDER_TICKET: Final = 10_000_001
FIRST_DEAL_TICKET: Final = 20_000_001  # distinct from orders so that mixing them up shows at once
# A magic number is an MQL5 ulong (0 .. 2**64 - 1), SQLite's integers are signed 64-bit: magic numbers
# from 2**63 on are stored as their two's complement (negative) and read back as they were.
_ULONG: Final = 1 << 64
_SIGNED_LIMIT: Final = 1 << 63


# OpenPosition and Change are named tuples: built several times per order, and immutable like a
# frozen dataclass, whose __init__ costs several times as much.
class OpenPosition(NamedTuple):
    """An open position as the server keeps it (price_current and profit are computed when asked)."""

    ticket: int  # == identifier == the ticket of the order that opened it
    symbol: str
    type: int  # POSITION_TYPE_*
    volume: float
    price_open: float
    sl: float
    tp: float
    magic: int
    comment: str
    reason: int  # POSITION_REASON_*
    time_msc: int
    time_update_msc: int

    @property
    def is_buy(self) -> bool:
        return self.type == c.POSITION_TYPE_BUY


class Change(NamedTuple):
    """Everything one request (or one SL/TP sweep) changes, applied atomically."""

    balance: float | None = None
    next_order: int | None = None
    next_deal: int | None = None
    processed_msc: int | None = None
    upsert: tuple[OpenPosition, ...] = ()
    remove: tuple[int, ...] = ()
    orders: tuple[TradeOrder, ...] = ()
    deals: tuple[TradeDeal, ...] = ()

    def positions_after(self, positions: dict[int, OpenPosition]) -> dict[int, OpenPosition]:
        """The open positions once this change is applied (``positions`` is left as it is)."""
        after = {ticket: p for ticket, p in positions.items() if ticket not in self.remove}
        after.update((p.ticket, p) for p in self.upsert)
        return after


@dataclass(slots=True)
class Ledger:
    login: int
    balance: float
    created_msc: int
    processed_msc: int  # SL/TP checked on every tick up to here
    next_order: int = FIRST_ORDER_TICKET
    next_deal: int = FIRST_DEAL_TICKET
    positions: dict[int, OpenPosition] = field(default_factory=dict)
    orders: list[TradeOrder] = field(default_factory=list)
    deals: list[TradeDeal] = field(default_factory=list)
    # Bumped by every apply(): records derived from the ledger (positions, account) are stale once
    # it moves. apply() is the one writer of balance, positions and history after loading.
    revision: int = 0

    def apply(self, change: Change) -> None:
        self.revision += 1
        if change.balance is not None:
            self.balance = change.balance
        if change.next_order is not None:
            self.next_order = change.next_order
        if change.next_deal is not None:
            self.next_deal = change.next_deal
        if change.processed_msc is not None:
            self.processed_msc = max(self.processed_msc, change.processed_msc)
        # In place, to the same result as positions_after(): the removed go, a changed position
        # keeps its place, a new one comes last.
        positions = self.positions
        for ticket in change.remove:
            positions.pop(ticket, None)
        for position in change.upsert:
            positions[position.ticket] = position
        self.orders.extend(change.orders)
        self.deals.extend(change.deals)


Row = TypeVar("Row", OpenPosition, TradeOrder, TradeDeal)


def _stored(rows: tuple[Row, ...]) -> tuple[Row, ...]:
    """``rows`` as SQLite takes them: a magic number beyond a signed 64-bit int as its two's complement."""
    if all(row.magic < _SIGNED_LIMIT for row in rows):
        return rows
    return tuple(
        row._replace(magic=row.magic - _ULONG) if row.magic >= _SIGNED_LIMIT else row for row in rows
    )


def _loaded(row: Row) -> Row:
    """A row as it was before ``_stored``."""
    return row._replace(magic=row.magic + _ULONG) if row.magic < 0 else row


def _columns(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{name}"' for name in names)


_POSITION_FIELDS: Final = OpenPosition._fields
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions ({_columns(_POSITION_FIELDS)}, PRIMARY KEY ("ticket"));
CREATE TABLE IF NOT EXISTS orders ({_columns(TradeOrder._fields)}, PRIMARY KEY ("ticket"));
CREATE TABLE IF NOT EXISTS deals ({_columns(TradeDeal._fields)}, PRIMARY KEY ("ticket"));
"""


class StateStore:
    """The ledger's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise ValueError(f"cannot open the simulator's state file {self.path}: {error}") from None

    def close(self) -> None:
        self._db.close()

    def load(self) -> Ledger | None:
        """The saved ledger, or None when the file is new."""
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            return None
        if int(meta.get("schema", 0)) != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: state schema {meta.get('schema')} is not {SCHEMA_VERSION}")
        ledger = Ledger(
            login=int(meta["login"]),
            balance=float(meta["balance"]),
            created_msc=int(meta["created_msc"]),
            processed_msc=int(meta["processed_msc"]),
            next_order=int(meta["next_order"]),
            next_deal=int(meta["next_deal"]),
        )
        query = f"SELECT {_columns(_POSITION_FIELDS)} FROM positions ORDER BY ticket"
        for row in self._db.execute(query):
            position = _loaded(OpenPosition(*row))
            ledger.positions[position.ticket] = position
        query = f"SELECT {_columns(TradeOrder._fields)} FROM orders ORDER BY time_done_msc, ticket"
        ledger.orders.extend(_loaded(TradeOrder(*row)) for row in self._db.execute(query))
        query = f"SELECT {_columns(TradeDeal._fields)} FROM deals ORDER BY time_msc, ticket"
        ledger.deals.extend(_loaded(TradeDeal(*row)) for row in self._db.execute(query))
        return ledger

    def saved_feed(self) -> str | None:
        """What fed the prices when the file was last opened (None: a new file, or one from before
        the feed was kept)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'feed'").fetchone()
        return str(row[0]) if row is not None else None

    def save_feed(self, feed: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('feed', ?)", (feed,))

    def create(self, ledger: Ledger) -> None:
        """Write a new ledger (its deals, e.g. the initial deposit, included)."""
        self.save(
            ledger,
            Change(
                balance=ledger.balance,
                next_order=ledger.next_order,
                next_deal=ledger.next_deal,
                processed_msc=ledger.processed_msc,
                deals=tuple(ledger.deals),
                orders=tuple(ledger.orders),
            ),
            new=True,
        )

    def save(self, ledger: Ledger, change: Change, *, new: bool = False) -> None:
        """Commit ``change`` (one transaction); raises sqlite3.Error and leaves the file as it was."""
        meta: dict[str, Any] = {}
        if new:
            meta.update(schema=SCHEMA_VERSION, login=ledger.login, created_msc=ledger.created_msc)
        for name in ("balance", "next_order", "next_deal", "processed_msc"):
            value = getattr(change, name)
            if value is not None:
                meta[name] = (
                    repr(max(value, ledger.processed_msc)) if name == "processed_msc" else repr(value)
                )
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()]
            )
            db.executemany("DELETE FROM positions WHERE ticket = ?", [(t,) for t in change.remove])
            marks = ", ".join("?" * len(_POSITION_FIELDS))
            db.executemany(f"INSERT OR REPLACE INTO positions VALUES ({marks})", _stored(change.upsert))
            marks = ", ".join("?" * len(TradeOrder._fields))
            db.executemany(f"INSERT INTO orders VALUES ({marks})", _stored(change.orders))
            marks = ", ".join("?" * len(TradeDeal._fields))
            db.executemany(f"INSERT INTO deals VALUES ({marks})", _stored(change.deals))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
