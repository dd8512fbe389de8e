"""The job poller: ``GET /agents/{id}/jobs/next`` every ``jobs_interval`` seconds, each job through
the exactly-once executor, its result through the outbox.

At start the jobs a crash left unfinished in the store are resumed first, through the same executor
(a trade cut off after its order reached the terminal is found in the deal history, not sent again).
After a job the next poll comes at once: the platform may have queued several.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mt5console.core.agent.agent_state import SOURCE, AgentStatus, log_unexpected
from mt5console.core.agent.jobs import JobExecutor, JobOutcome
from mt5console.core.agent.platform import PlatformClient
from mt5console.core.agent.reporting import path_part
from mt5console.core.events import EventBus
from mt5console.core.store import Store

NO_JOB = 204


class JobPoller:
    def __init__(
        self,
        client: PlatformClient,
        agent_id: str,
        executor: JobExecutor,
        store: Store,
        events: EventBus,
        status: AgentStatus,
        *,
        delivered: Callable[[], None] = lambda: None,
    ) -> None:
        self._client = client
        self.path = f"/agents/{path_part(agent_id)}/jobs/next"
        self._executor = executor
        self._store = store
        self._events = events
        self._status = status
        self._delivered = delivered  # the outbox's wake(): a result was queued
        self.outcomes: list[JobOutcome] = []  # this run's outcomes, newest last (bounded)

    async def resume_unfinished(self) -> int:
        """Run the jobs a stop or crash cut off (received or running in the store); how many."""
        resumed = 0
        for record in self._store.unfinished_jobs():
            self._events.warning(SOURCE, f"job {record.id} ({record.type}) was not finished at the last stop")
            await self._run(record.id, record.type, record.input)
            resumed += 1
        return resumed

    async def poll_once(self) -> float | None:
        """Ask for the next job and run it; 0 (poll again now) after a job, None when there was none."""
        response = await self._client.request("GET", self.path)
        if response.status == NO_JOB or response.body is None:
            return None
        job = response.body
        if (
            not isinstance(job, dict)
            or not isinstance(job.get("id"), str | int)
            or isinstance(job.get("id"), bool)
        ):
            # Without an id there is no result path to report on: say so, and carry on.
            self._events.error(
                SOURCE, f"GET {self.path}: the platform handed out a job without an id: {str(job)[:200]}"
            )
            return None
        await self._run(str(job["id"]), job.get("type"), job.get("input_data"))
        return 0.0

    async def _run(self, job_id: str, job_type: Any, input_data: Any) -> None:
        try:  # a type that is not a string is the executor's to refuse, with the reason
            outcome = await self._executor.execute(job_id, job_type, input_data)
        except Exception as error:  # the executor reports failures itself; this is a bug, logged loudly
            log_unexpected(self._events, f"job {job_id} could not be run", error)
            return
        finally:
            self._delivered()
        if not outcome.repeated:
            self._status.job_finished(outcome.status == "completed")
        self.outcomes = [*self.outcomes[-99:], outcome]
