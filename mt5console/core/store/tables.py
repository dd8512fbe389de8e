"""The tables of mt5console.db (sqlmodel, one class per table).

Rows handed out by ``Store`` are detached snapshots: changing one changes nothing on disk; every
change goes through a ``Store`` method, which validates it and commits before it returns.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Enum
from sqlmodel import Field, SQLModel

from mt5console.core.store.column_types import json_column, utc_column

SCHEMA_VERSION = 2  # bump together with a migration step in engine.MIGRATIONS


class StrategyState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


class TradeStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class JobState(StrEnum):
    RECEIVED = "received"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CommandStatus(StrEnum):
    RECEIVED = "received"  # written before the command is acted on; ok/rejected once it has been
    OK = "ok"
    REJECTED = "rejected"


def enum_column(enum_type: type[StrEnum], *, index: bool = False) -> Any:
    """Stores the enum's value ("running"), not its name, so the file reads plainly in sqlite3."""
    return Column(
        Enum(
            enum_type,
            values_callable=lambda members: [member.value for member in members],
            native_enum=False,
            create_constraint=True,
            validate_strings=True,
            length=16,
        ),
        nullable=False,
        index=index,
    )


class StrategyRecord(SQLModel, table=True):
    __tablename__ = "strategies"

    id: str = Field(primary_key=True)  # the strategyId
    name: str
    symbol: str
    timeframe: str
    definition: dict[str, Any] = Field(sa_column=json_column())  # the full strategy JSON
    magic: int = Field(unique=True)
    state: StrategyState = Field(sa_column=enum_column(StrategyState, index=True))
    state_reason: str = ""
    created_at: datetime = Field(sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column())


class TradeRecord(SQLModel, table=True):
    """A position the console opened or adopted; ``profit`` adds up every partial and the final close."""

    __tablename__ = "trades"

    ticket: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    position_id: int = Field(index=True)
    strategy_id: str | None = Field(default=None, foreign_key="strategies.id", index=True)
    symbol: str
    side: str  # "buy" | "sell"
    volume: float  # as opened
    remaining_volume: float  # still open (volume less partial closes)
    open_price: float
    open_time: datetime = Field(sa_column=utc_column())
    sl: float = 0.0  # 0.0 = none, as in MT5
    tp: float = 0.0
    close_price: float | None = None
    close_time: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    profit: float = 0.0
    exit_reason: str | None = None
    comment: str = ""
    magic: int = 0
    status: TradeStatus = Field(sa_column=enum_column(TradeStatus, index=True))


class DealRecord(SQLModel, table=True):
    __tablename__ = "deals"

    ticket: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    order: int
    position_id: int = Field(index=True)
    symbol: str
    type: int  # DEAL_TYPE_*
    entry: int  # DEAL_ENTRY_*
    reason: int  # DEAL_REASON_*
    volume: float
    price: float
    profit: float
    commission: float
    swap: float
    magic: int
    comment: str
    time: datetime = Field(sa_column=utc_column(index=True))


class JobRecord(SQLModel, table=True):
    __tablename__ = "jobs"

    id: str = Field(primary_key=True)  # the platform's job id
    type: str
    input: dict[str, Any] = Field(sa_column=json_column())
    state: JobState = Field(sa_column=enum_column(JobState, index=True))
    result: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    error: str | None = None
    received_at: datetime = Field(sa_column=utc_column())
    started_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class CommandRecord(SQLModel, table=True):
    __tablename__ = "commands"

    id: str = Field(primary_key=True)  # the commandId
    name: str
    payload: dict[str, Any] = Field(sa_column=json_column())
    status: CommandStatus = Field(sa_column=enum_column(CommandStatus))
    error: str | None = None
    time: datetime = Field(sa_column=utc_column())


class OutboxRecord(SQLModel, table=True):
    """A request for the platform that waits here until the platform has taken it."""

    __tablename__ = "outbox"
    # AUTOINCREMENT: ids never come back even after old rows are purged, so id order stays delivery order
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    kind: str  # trade_event | job_result | ack
    method: str
    path: str
    body: dict[str, Any] = Field(sa_column=json_column())
    created_at: datetime = Field(sa_column=utc_column())
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column())
    last_error: str | None = None
    delivered_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    abandoned_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class PartialPlanRecord(SQLModel, table=True):
    """The partial-exit plan of one open position (``PartialPlan.to_dict``): the levels it opened with,
    which have fired, its original volume and initial risk. Kept so that a strategy restarted or
    replaced goes on with the plan and never fires a level twice. Added in schema version 2."""

    __tablename__ = "partial_plans"

    ticket: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # the position's
    strategy_id: str = Field(foreign_key="strategies.id", index=True)
    state: dict[str, Any] = Field(sa_column=json_column())
    updated_at: datetime = Field(sa_column=utc_column())


class EventRecord(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(sa_column=utc_column(index=True))
    level: str
    source: str
    message: str


class MetaRecord(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str
