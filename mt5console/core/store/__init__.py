"""The SQLite store (sqlmodel, WAL): strategies, trades, deals, jobs, commands, outbox, event log.

Trades and deals are handed out as immutable snapshots (Trade, StoredDeal) read on a direct sqlite3
connection (direct.py says why); TradeRecord and DealRecord remain their tables' definitions.
"""

from mt5console.core.store.deals import DealLike
from mt5console.core.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    MIGRATIONS,
    create_sqlite_engine,
    prepare_schema,
)
from mt5console.core.store.errors import (
    InvalidRecordError,
    NaiveDatetimeError,
    RecordNotFoundError,
    RecordStateError,
    SchemaVersionError,
    StoreError,
)
from mt5console.core.store.snapshots import StoredDeal, Trade
from mt5console.core.store.store import Store
from mt5console.core.store.strategies import MAGIC_MAX, MAGIC_MIN, preferred_magic
from mt5console.core.store.tables import (
    SCHEMA_VERSION,
    CommandRecord,
    CommandStatus,
    DealRecord,
    EventRecord,
    JobRecord,
    JobState,
    OutboxRecord,
    PartialPlanRecord,
    StrategyRecord,
    StrategyState,
    TradeRecord,
    TradeStatus,
)

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "MAGIC_MAX",
    "MAGIC_MIN",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "CommandRecord",
    "CommandStatus",
    "DealLike",
    "DealRecord",
    "EventRecord",
    "InvalidRecordError",
    "JobRecord",
    "JobState",
    "NaiveDatetimeError",
    "OutboxRecord",
    "PartialPlanRecord",
    "RecordNotFoundError",
    "RecordStateError",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoredDeal",
    "StrategyRecord",
    "StrategyState",
    "Trade",
    "TradeRecord",
    "TradeStatus",
    "create_sqlite_engine",
    "preferred_magic",
    "prepare_schema",
]
