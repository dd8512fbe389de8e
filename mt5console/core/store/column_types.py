"""Column types: UTC datetimes that cannot lose their timezone, and JSON documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from mt5console.core.store.errors import NaiveDatetimeError


def require_aware(name: str, value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is refused because its zone would be a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{name}: naive datetime {value.isoformat()} has no timezone; give it in UTC"
        )
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without the offset (so that text comparisons in SQL order correctly) and hands
    back timezone-aware UTC datetimes; writing a naive datetime raises NaiveDatetimeError."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return require_aware("datetime column", value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    """A fresh Column of UTCDateTime (SQLModel needs one Column object per table field)."""
    return Column(UTCDateTime(), nullable=nullable, index=index)


def json_column(*, nullable: bool = False) -> Any:
    return Column(JSON(none_as_null=True), nullable=nullable)
