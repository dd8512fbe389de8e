"""The durable outbox of requests for the platform, and the console's event log on disk."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from mt5console.core.store.base import StoreBase, aware, json_object, text, whole
from mt5console.core.store.errors import InvalidRecordError, RecordNotFoundError, RecordStateError, StoreError
from mt5console.core.store.tables import EventRecord, OutboxRecord

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class OutboxStore(StoreBase):
    def outbox_put(
        self,
        kind: str,
        method: str,
        path: str,
        body: Mapping[str, Any],
        when: datetime | None = None,
    ) -> int:
        """Queue a request; returns its id, which is also its place in the delivery order."""
        verb = text("method", method).upper()
        if verb not in HTTP_METHODS:
            raise InvalidRecordError(f"method: {method!r} is not one of {', '.join(HTTP_METHODS)}")
        now = aware("when", when)
        record = OutboxRecord(
            kind=text("kind", kind),
            method=verb,
            path=text("path", path),
            body=json_object("body", dict(body)),
            created_at=now,
            next_attempt_at=now,
        )
        with self._write() as session:
            session.add(record)
            session.flush()
            if record.id is None:
                raise StoreError("outbox_put: SQLite assigned no id")
            return record.id

    def outbox_due(self, now: datetime, limit: int = 100) -> list[OutboxRecord]:
        """The requests to send now, in id order. The list stops before the first one still waiting
        for its retry time, so a later request never overtakes an earlier one (a trade's 'closed'
        never reaches the platform before its 'opened'); a request the platform will never take
        must be given up with ``outbox_abandoned`` or it holds back the rest."""
        moment = aware("now", now)
        statement = (
            select(OutboxRecord)
            .where(col(OutboxRecord.delivered_at).is_(None), col(OutboxRecord.abandoned_at).is_(None))
            .order_by(col(OutboxRecord.id))
            .limit(whole("limit", limit, minimum=1))
        )
        with self._read() as session:
            due: list[OutboxRecord] = []
            for record in session.exec(statement):
                if record.next_attempt_at > moment:
                    break
                due.append(record)
            return due

    def outbox_delivered(self, outbox_id: int, when: datetime | None = None) -> None:
        """The platform took the request. Repeating the call changes nothing."""
        now = aware("when", when)
        with self._write() as session:
            record = _entry(session, outbox_id)
            if record.delivered_at is None:
                record.delivered_at = now

    def outbox_failed(self, outbox_id: int, error: str, next_attempt: datetime) -> OutboxRecord:
        """A delivery attempt failed: count it, keep the error, and wait until ``next_attempt``."""
        retry_at = aware("next_attempt", next_attempt)
        with self._write() as session:
            record = _pending(session, outbox_id)
            record.attempts += 1
            record.last_error = error
            record.next_attempt_at = retry_at
            return record

    def outbox_abandoned(self, outbox_id: int, error: str, when: datetime | None = None) -> OutboxRecord:
        """Give up on a request the platform refuses for good (kept, with the reason, for the record)."""
        now = aware("when", when)
        with self._write() as session:
            record = _pending(session, outbox_id)
            record.attempts += 1
            record.last_error = error
            record.abandoned_at = now
            return record

    def outbox_pending_count(self) -> int:
        statement = (
            select(func.count())
            .select_from(OutboxRecord)
            .where(col(OutboxRecord.delivered_at).is_(None), col(OutboxRecord.abandoned_at).is_(None))
        )
        with self._read() as session:
            return session.exec(statement).one()

    def get_outbox(self, outbox_id: int) -> OutboxRecord | None:
        with self._read() as session:
            return session.get(OutboxRecord, outbox_id)

    def log_event(self, level: str, source: str, message: str, when: datetime | None = None) -> None:
        record = EventRecord(
            time=aware("when", when),
            level=text("level", level),
            source=text("source", source),
            message=message,
        )
        with self._write() as session:
            session.add(record)

    def recent_events(self, limit: int = 200) -> list[EventRecord]:
        """The last ``limit`` events, oldest first (the order a log is read in)."""
        statement = (
            select(EventRecord).order_by(col(EventRecord.id).desc()).limit(whole("limit", limit, minimum=1))
        )
        with self._read() as session:
            return list(reversed(session.exec(statement).all()))


def _entry(session: Session, outbox_id: int) -> OutboxRecord:
    record = session.get(OutboxRecord, outbox_id)
    if record is None:
        raise RecordNotFoundError(f"outbox_id: entry {outbox_id} is not in the outbox")
    return record


def _pending(session: Session, outbox_id: int) -> OutboxRecord:
    record = _entry(session, outbox_id)
    if record.delivered_at is not None or record.abandoned_at is not None:
        raise RecordStateError(f"outbox_id: entry {outbox_id} is no longer pending")
    return record
