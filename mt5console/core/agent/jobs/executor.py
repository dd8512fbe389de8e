"""JobExecutor: runs each platform job at most once and puts its result into the outbox.

The bookkeeping, in the order that makes a crash at any point safe (everything is committed to
SQLite before the next step):

1. ``store.job_received``: the job's id is recorded before anything is done. A job id seen before is
   not run again: a finished job's stored result is put into the outbox again (the platform handed
   it out again because it never got it); a job that was cut off mid-run is resumed, which for a
   trade or a close means searching the deal history for the job's comment before sending anything.
2. ``store.job_started``, then the handler.
3. ``store.job_finished`` with the output or the reason, then ``store.outbox_put`` of
   ``POST /agents/{agent_id}/jobs/{job_id}/result``; the outbox delivers it.

``execute`` never raises for a job's sake: an unknown type, malformed input_data, a refused order
or an unexpected error all end as a ``failed`` outcome with the reason, so the job loop carries on.
The same id handed out twice while its first run is still going waits for that run's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from mt5console.core.agent.chart_template import InvalidInputs
from mt5console.core.agent.ea_control import EAControlError
from mt5console.core.agent.jobs.handlers import JobFailure, JobHandlers
from mt5console.core.agent.jobs.model import JobInputError, parse_job
from mt5console.core.agent.metaeditor import CompileError
from mt5console.core.agent.terminal_files import InvalidEaName
from mt5console.core.broker.errors import BrokerError
from mt5console.core.events import EventBus
from mt5console.core.store import InvalidRecordError, JobRecord, JobState, Store, StoreError

log = logging.getLogger(__name__)
SOURCE = "jobs"
OUTBOX_KIND = "job_result"
UNKNOWN_TYPE = "(none)"
# Failures whose message is already the reason a person acts on.
_EXPECTED_FAILURES = (
    JobInputError,
    JobFailure,
    BrokerError,
    CompileError,
    EAControlError,
    InvalidEaName,
    InvalidInputs,
)

Status = Literal["completed", "failed"]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    job_id: str
    status: Status
    output_data: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    repeated: bool = False  # the job ran before; this is its stored result

    def body(self) -> dict[str, Any]:
        """The body of POST /agents/{id}/jobs/{job_id}/result."""
        return {"status": self.status, "output_data": self.output_data, "error_message": self.error_message}


def result_path(agent_id: str, job_id: str) -> str:
    """The platform path of a job's result; the id is quoted, so no id can reach another path."""
    return f"/agents/{agent_id}/jobs/{quote(job_id, safe='')}/result"


def _stored_outcome(record: JobRecord) -> JobOutcome:
    if record.state is JobState.COMPLETED:
        return JobOutcome(record.id, "completed", dict(record.result or {}), None, repeated=True)
    return JobOutcome(record.id, "failed", {}, record.error or "failed", repeated=True)


class JobExecutor:
    def __init__(
        self, store: Store, handlers: JobHandlers, agent_id: str, *, events: EventBus | None = None
    ) -> None:
        self._store = store
        self._handlers = handlers
        self.agent_id = agent_id
        self._events = events or EventBus()
        self._running: dict[str, asyncio.Future[JobOutcome]] = {}
        self.jobs_processed = 0  # jobs run to an outcome by this console since it started (heartbeat)

    async def execute(self, job_id: str, job_type: str, input_data: Any) -> JobOutcome:
        """Run the job once (see the module docstring); its outcome, also queued for the platform."""
        if not isinstance(job_id, str) or not job_id.strip():
            message = f"a job needs a non-empty string id, not {job_id!r}; it was not run"
            self._events.error(SOURCE, message)
            return JobOutcome(str(job_id), "failed", {}, message)
        running = self._running.get(job_id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[JobOutcome] = asyncio.get_running_loop().create_future()
        self._running[job_id] = future
        try:
            outcome = await self._execute(job_id, job_type, input_data)
        except BaseException:  # cancelled: the job stays "running" in the store and is resumed later
            future.cancel()
            raise
        else:
            future.set_result(outcome)
            return outcome
        finally:
            del self._running[job_id]

    def receive(self, job_id: str, job_type: Any, input_data: Any) -> None:
        """Record a job that is to run a little later (the EA lane, job_poller.py) as received, so
        that a stop or crash before it runs leaves it in the store to be resumed at the next start;
        ``execute`` then runs it as any other. A store that cannot record it is left to ``execute``,
        which fails the job with the reason."""
        if not isinstance(job_id, str) or not job_id.strip():
            return
        with contextlib.suppress(StoreError):
            self._record(job_id, job_type, input_data)

    async def _execute(self, job_id: str, job_type: str, input_data: Any) -> JobOutcome:
        try:
            existing = self._record(job_id, job_type, input_data)
            if existing is not None and existing.state in (JobState.COMPLETED, JobState.FAILED):
                self._events.info(
                    SOURCE, f"job {job_id} ({existing.type}) was done before: its stored result is sent again"
                )
                return self._report(_stored_outcome(existing))
            if existing is None or existing.state is JobState.RECEIVED:
                self._store.job_started(job_id)
        except StoreError as error:
            message = f"job {job_id} was not run: it could not be recorded first ({error})"
            self._events.error(SOURCE, message)
            return JobOutcome(job_id, "failed", {}, message)
        resumed = existing is not None and existing.state is JobState.RUNNING
        received_at = existing.received_at if existing is not None else datetime.now(UTC)
        if resumed:
            self._events.warning(SOURCE, f"job {job_id} ({job_type}) was cut off by a stop; resuming it")
        outcome = await self._run(job_id, job_type, input_data, received_at, resumed)
        return self._finish(outcome)

    def _record(self, job_id: str, job_type: str, input_data: Any) -> JobRecord | None:
        """Record the job before running it; input the store cannot hold is recorded as {} (the job
        then fails on it with the reason, and being recorded, is never run later)."""
        kind = job_type if isinstance(job_type, str) and job_type.strip() else UNKNOWN_TYPE
        recordable = input_data if isinstance(input_data, Mapping) else {}
        try:
            return self._store.job_received(job_id, kind, recordable)
        except InvalidRecordError:
            return self._store.job_received(job_id, kind, {})

    async def _run(
        self, job_id: str, job_type: str, input_data: Any, received_at: datetime, resumed: bool
    ) -> JobOutcome:
        try:
            job = parse_job(job_type, input_data)
            output = await self._handlers.handle(job_id, job, received_at=received_at, resumed=resumed)
        except _EXPECTED_FAILURES as error:
            return JobOutcome(job_id, "failed", {}, str(error) or type(error).__name__)
        except Exception as error:  # a bug must fail the job, not the loop; the traceback goes to the log
            log.exception("job %s (%s) failed unexpectedly", job_id, job_type)
            return JobOutcome(job_id, "failed", {}, f"internal error: {type(error).__name__}: {error}")
        return JobOutcome(job_id, "completed", output)

    def _finish(self, outcome: JobOutcome) -> JobOutcome:
        """Store the outcome, then queue it for the platform."""
        try:
            if outcome.status == "completed":
                self._store.job_finished(outcome.job_id, result=outcome.output_data)
            else:
                self._store.job_finished(outcome.job_id, error=outcome.error_message or "failed")
        except StoreError as error:
            self._events.error(
                SOURCE, f"job {outcome.job_id} ran but its result could not be stored: {error}"
            )
            return outcome
        self.jobs_processed += 1
        if outcome.status == "completed":
            self._events.info(SOURCE, f"job {outcome.job_id} completed{_what_came_out(outcome.output_data)}")
        else:
            self._events.warning(SOURCE, f"job {outcome.job_id} failed: {outcome.error_message}")
        return self._report(outcome)

    def _report(self, outcome: JobOutcome) -> JobOutcome:
        try:
            self._store.outbox_put(
                kind=OUTBOX_KIND,
                method="POST",
                path=result_path(self.agent_id, outcome.job_id),
                body=outcome.body(),
            )
        except StoreError as error:
            self._events.error(SOURCE, f"job {outcome.job_id}: its result could not be queued: {error}")
        return outcome


def _what_came_out(output: Mapping[str, Any]) -> str:
    """A job's result in a few words for its log line: its plain values, and how many of a list."""
    parts: list[str] = []
    for key, value in output.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float | str) and len(str(value)) <= 40:
            parts.append(f"{key} {value}")
        elif isinstance(value, list):
            parts.append(f"{key}: {len(value)}")
    return f" ({', '.join(parts[:6])})" if parts else ""
