"""Commands (to refuse a commandId seen before) and platform jobs (to run each at most once)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from mt5console.core.store.base import StoreBase, aware, json_object, member, text
from mt5console.core.store.errors import InvalidRecordError, RecordNotFoundError, RecordStateError
from mt5console.core.store.meta import swap_meta
from mt5console.core.store.tables import CommandRecord, CommandStatus, JobRecord, JobState

SESSION_STARTED_KEY = "session_started"  # in the meta table: when the last console session started


class JobStore(StoreBase):
    def record_command(
        self,
        command_id: str,
        name: str,
        payload: Mapping[str, Any],
        status: CommandStatus | str = CommandStatus.RECEIVED,
        error: str | None = None,
        when: datetime | None = None,
    ) -> bool:
        """Remember a command before acting on it; False (and nothing written) when ``command_id``
        was seen before, which the caller rejects as a duplicate."""
        record = CommandRecord(
            id=text("command_id", command_id),
            name=text("name", name),
            payload=json_object("payload", dict(payload)),
            status=member("status", CommandStatus, status),
            error=error,
            time=aware("when", when),
        )
        with self._write() as session:
            if session.get(CommandRecord, record.id) is not None:
                return False
            session.add(record)
            return True

    def set_command_status(
        self, command_id: str, status: CommandStatus | str, error: str | None = None
    ) -> CommandRecord:
        """The outcome of a recorded command: ok, or rejected with the reason."""
        new_status = member("status", CommandStatus, status)
        with self._write() as session:
            record = session.get(CommandRecord, command_id)
            if record is None:
                raise RecordNotFoundError(f"command_id: command {command_id!r} is not in the store")
            record.status = new_status
            record.error = error
            return record

    def get_command(self, command_id: str) -> CommandRecord | None:
        with self._read() as session:
            return session.get(CommandRecord, command_id)

    def session_started(self, when: datetime | None = None) -> datetime | None:
        """Note that a console session starts now; returns when the one before started (None: no
        session noted yet). A command received before that earlier start was cut off a session ago:
        one ran since without finishing it, so it is out of date (``CommandBus.resume_unfinished``)."""
        now = aware("when", when)
        with self._write() as session:
            previous = swap_meta(session, SESSION_STARTED_KEY, now.isoformat())
        return datetime.fromisoformat(previous) if previous is not None else None

    def unfinished_commands(self) -> list[CommandRecord]:
        """Commands received but never settled (ok or rejected): at start, those a crash cut off."""
        statement = (
            select(CommandRecord)
            .where(CommandRecord.status == CommandStatus.RECEIVED)
            .order_by(col(CommandRecord.time), col(CommandRecord.id))
        )
        with self._read() as session:
            return list(session.exec(statement))

    def job_received(
        self, job_id: str, job_type: str, input_data: Mapping[str, Any], when: datetime | None = None
    ) -> JobRecord | None:
        """Remember a job handed out by the platform before running it. None: a new job, run it.
        A record: the job was seen before; it must not run again (send its stored result, or, if
        it never finished because the console died, report it failed)."""
        record = JobRecord(
            id=text("job_id", job_id),
            type=text("job_type", job_type),
            input=json_object("input_data", dict(input_data)),
            state=JobState.RECEIVED,
            received_at=aware("when", when),
        )
        with self._write() as session:
            existing = session.get(JobRecord, record.id)
            if existing is not None:
                return existing
            session.add(record)
            return None

    def job_started(self, job_id: str, when: datetime | None = None) -> JobRecord:
        """Mark a received job as running; refuses a job that was started before (at most once)."""
        now = aware("when", when)
        with self._write() as session:
            record = _job(session, job_id)
            if record.state is not JobState.RECEIVED:
                raise RecordStateError(f"job_id: job {job_id!r} is already {record.state.value}")
            record.state = JobState.RUNNING
            record.started_at = now
            return record

    def job_finished(
        self,
        job_id: str,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        when: datetime | None = None,
    ) -> JobRecord:
        """Store the outcome: ``result`` (completed) or ``error`` (failed), exactly one of them."""
        if (result is None) == (error is None):
            raise InvalidRecordError("job_finished: give either result or error, not both or neither")
        output = None if result is None else json_object("result", dict(result))
        message = None if error is None else text("error", error)
        now = aware("when", when)
        with self._write() as session:
            record = _job(session, job_id)
            if record.state in (JobState.COMPLETED, JobState.FAILED):
                raise RecordStateError(f"job_id: job {job_id!r} has already {record.state.value}")
            record.state = JobState.COMPLETED if output is not None else JobState.FAILED
            record.result = output
            record.error = message
            record.finished_at = now
            return record

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._read() as session:
            return session.get(JobRecord, job_id)

    def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs received or running but never finished: at start, those the last run was cut off in."""
        statement = (
            select(JobRecord)
            .where(col(JobRecord.state).in_([JobState.RECEIVED, JobState.RUNNING]))
            .order_by(col(JobRecord.received_at), col(JobRecord.id))
        )
        with self._read() as session:
            return list(session.exec(statement))


def _job(session: Session, job_id: str) -> JobRecord:
    record = session.get(JobRecord, job_id)
    if record is None:
        raise RecordNotFoundError(f"job_id: job {job_id!r} is not in the store")
    return record
