"""``Store``: the one object the runtime uses to keep what must survive a crash."""

from __future__ import annotations

from mt5console.core.store.jobs import JobStore
from mt5console.core.store.meta import MetaStore
from mt5console.core.store.outbox import OutboxStore
from mt5console.core.store.partial_plans import PartialPlanStore
from mt5console.core.store.strategies import StrategyStore
from mt5console.core.store.trades import TradeStore


class Store(StrategyStore, TradeStore, JobStore, OutboxStore, PartialPlanStore, MetaStore):
    """mt5console.db: ``Store(settings.database_path)``. A synchronous API; every method is one short
    transaction committed (to disk: WAL, synchronous=FULL) before it returns, so that callers write
    first and act or acknowledge after. Safe to share between threads and processes (each call
    takes its own pooled connection; writers wait up to the busy timeout for the lock).

    Opening creates a new file, migrates an older schema, and refuses (SchemaVersionError) a file
    written by a newer mt5console. Bad input raises InvalidRecordError naming the argument, and
    writes nothing.

    ``Store.in_memory()`` is a throwaway store (the replay's): the same API and checks on a database
    that lives in memory until close(), shared between threads but not processes.
    """
