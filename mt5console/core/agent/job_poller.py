"""The job poller: ``GET /agents/{id}/jobs/next`` every ``jobs_interval`` seconds, each job through
the exactly-once executor, its result through the outbox.

At start the jobs a crash left unfinished in the store are resumed first, through the same executor
(a trade cut off after its order reached the terminal is found in the deal history, not sent again).
After a job the next poll comes at once: the platform may have queued several.

The EA jobs take long: run and stop wait on the MT5ConsoleController EA in the terminal, up to
``--ea-answer-timeout`` seconds when none is attached (the controller leaves no sign of life to look
at first), and compile waits on MetaEditor. They run in a lane of their own beside the poll loop, one
after another in the order they came (compile, deploy, run and stop of one EA must happen in that
order), so a trade is never held up behind them. Each goes through the same executor: recorded as
received before it waits its turn, run at most once, its result queued when it ends. The lane's jobs
end with the poll loop; one cut off is resumed at the next start like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from mt5console.core.agent.agent_state import SOURCE, AgentStatus, log_unexpected
from mt5console.core.agent.jobs import JobExecutor, JobOutcome
from mt5console.core.agent.platform import PlatformClient
from mt5console.core.agent.reporting import path_part
from mt5console.core.events import EventBus
from mt5console.core.store import Store

NO_JOB = 204
EA_JOB_TYPES: Final = frozenset({"compile", "deploy", "run", "stop"})


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
        self._ea_lane = asyncio.Lock()  # asyncio's lock is first come, first served: the jobs' order
        self.ea_jobs: dict[str, asyncio.Task[None]] = {}  # EA jobs waiting or running, by id
        self._lane_owner: asyncio.Task[Any] | None = None

    async def resume_unfinished(self) -> int:
        """Run the jobs a stop or crash cut off (received or running in the store); how many."""
        resumed = 0
        for record in self._store.unfinished_jobs():
            self._events.warning(SOURCE, f"job {record.id} ({record.type}) was not finished at the last stop")
            await self._dispatch(record.id, record.type, record.input)
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
        if not await self._dispatch(str(job["id"]), job.get("type"), job.get("input_data")):
            return None  # handed out again while it waits in the EA lane: its result comes when it ends
        return 0.0

    async def _dispatch(self, job_id: str, job_type: Any, input_data: Any) -> bool:
        """Run the job here, or start it in the EA lane; False when it is in the lane already."""
        if not isinstance(job_type, str) or job_type not in EA_JOB_TYPES:
            await self._run(job_id, job_type, input_data)
            return True
        if job_id in self.ea_jobs:
            return False
        self._executor.receive(job_id, job_type, input_data)  # a crash before its turn: resumed
        task = asyncio.get_running_loop().create_task(
            self._run_in_lane(job_id, job_type, input_data), name=f"agent-job-{job_id}"
        )
        self.ea_jobs[job_id] = task
        task.add_done_callback(lambda _: self.ea_jobs.pop(job_id, None))
        self._end_with_the_poll_loop()
        return True

    async def _run_in_lane(self, job_id: str, job_type: Any, input_data: Any) -> None:
        async with self._ea_lane:
            await self._run(job_id, job_type, input_data)

    def _end_with_the_poll_loop(self) -> None:
        """Cancel the lane's jobs when the task that polls ends (the console stops): none outlives it."""
        owner = asyncio.current_task()
        if owner is None or owner is self._lane_owner:
            return
        self._lane_owner = owner
        owner.add_done_callback(lambda _: self.cancel_ea_jobs())

    def cancel_ea_jobs(self) -> None:
        for task in list(self.ea_jobs.values()):
            task.cancel()

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
