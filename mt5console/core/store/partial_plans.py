"""The partial-exit plans of open positions (partials.PartialPlan's state), one row per position."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import col, delete, select

from mt5console.core.store.base import StoreBase, aware, json_object, text
from mt5console.core.store.errors import InvalidRecordError
from mt5console.core.store.tables import PartialPlanRecord


class PartialPlanStore(StoreBase):
    def save_partial_plan(
        self, ticket: int, strategy_id: str, state: Mapping[str, Any], when: datetime | None = None
    ) -> None:
        """Insert or replace the plan of position ``ticket``; committed before it returns."""
        if isinstance(ticket, bool) or not isinstance(ticket, int) or ticket <= 0:
            raise InvalidRecordError(f"ticket: {ticket!r} is not a position ticket")
        checked = PartialPlanRecord(
            ticket=ticket,
            strategy_id=text("strategy_id", strategy_id),
            state=json_object("state", dict(state)),
            updated_at=aware("when", when),
        )
        with self._write() as session:
            session.merge(checked)

    def partial_plans(self, strategy_id: str) -> dict[int, dict[str, Any]]:
        """The saved plans of a strategy's positions, by position ticket."""
        statement = (
            select(PartialPlanRecord)
            .where(PartialPlanRecord.strategy_id == strategy_id)
            .order_by(col(PartialPlanRecord.ticket))
        )
        with self._read() as session:
            return {record.ticket: dict(record.state) for record in session.exec(statement).all()}

    def drop_partial_plans(self, tickets: list[int] | tuple[int, ...] | set[int]) -> None:
        """Forget the plans of these positions (closed, or with nothing left to do)."""
        if not tickets:
            return
        with self._write() as session:
            session.exec(delete(PartialPlanRecord).where(col(PartialPlanRecord.ticket).in_(sorted(tickets))))
