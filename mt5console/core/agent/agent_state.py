"""What the agent loop shows (AgentStateChanged for the header) and how each of its loops repeats.

Every loop (heartbeat, prices, jobs) is ``repeat(step)``: the step runs, then the loop waits its
interval. When the platform cannot be reached the wait becomes 1, 2, 4 ... 60 s (the contract's
backoff, per loop) until a call goes through again. The first call of a loop that goes through after
an outage wakes the other loops still waiting out a backoff: they try again within ``RETRY_SPREAD``
seconds (each at a random moment in it, so they do not all call at once), rather than up to a minute
later. No exception ends a loop: an unexpected one is logged with its traceback and the loop carries
on at its interval.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from mt5console.core.agent.outbox import MAX_RETRY_AFTER
from mt5console.core.agent.platform import Backoff, PlatformRefused, PlatformUnavailable, why_unavailable
from mt5console.core.events import AgentStateChanged, EventBus, Level

log = logging.getLogger(__name__)
SOURCE = "agent"
RETRY_SPREAD: Final = 1.0  # seconds over which the loops woken by another's success try again

PAIRING, ONLINE, UNREACHABLE, TERMINAL_LOST, OFF = (
    "pairing",
    "online",
    "platform-unreachable",
    "terminal-lost",
    "off",
)


class AgentStatus:
    """The agent's state, last heartbeat and job counts; publishes AgentStateChanged on change."""

    def __init__(self, events: EventBus, *, state: str = PAIRING) -> None:
        self._events = events
        self.base_state = state  # pairing | online | off: what the agent is doing
        self.terminal_connected = True
        self.last_heartbeat: datetime | None = None
        self.jobs_done = 0
        self.jobs_failed = 0
        self._failing: dict[str, str] = {}  # loop name -> the platform error it last met
        self._retry: dict[str, asyncio.Event] = {}  # loop name -> "the platform is back: try again"
        self._shown: AgentStateChanged | None = None

    @property
    def state(self) -> str:
        if self.base_state == ONLINE and self._failing:
            return UNREACHABLE
        if self.base_state == ONLINE and not self.terminal_connected:
            return TERMINAL_LOST
        return self.base_state

    @property
    def detail(self) -> str:
        if self.state == UNREACHABLE:
            return next(iter(self._failing.values()))
        if self.state == TERMINAL_LOST:
            return "the terminal is not connected; jobs that need it fail until it is back"
        return ""

    def set_state(self, state: str) -> None:
        self.base_state = state
        self.publish()

    def terminal(self, connected: bool) -> None:
        self.terminal_connected = connected
        self.publish()

    def heartbeat_taken(self, when: datetime) -> None:
        self.last_heartbeat = when
        self.publish()

    def job_finished(self, ok: bool) -> None:
        if ok:
            self.jobs_done += 1
        else:
            self.jobs_failed += 1
        self.publish()

    def unreachable(self, loop: str, error: str) -> bool:
        """Note a loop's failed call; True when the platform was reachable before (news to log)."""
        first = not self._failing
        self._failing[loop] = error
        self.publish()
        return first

    def reachable(self, loop: str) -> bool:
        """Note a loop's call that went through; True when that ends an outage. A loop that was
        failing and now is not wakes the loops still failing (``retry_signal``), once per recovery."""
        if self._failing.pop(loop, None) is None:
            return False
        for other in self._failing:
            self.retry_signal(other).set()
        self.publish()
        return not self._failing

    def retry_signal(self, loop: str) -> asyncio.Event:
        """Set when another loop's call went through again while ``loop`` was failing."""
        return self._retry.setdefault(loop, asyncio.Event())

    def publish(self) -> None:
        event = AgentStateChanged(
            state=self.state,
            last_heartbeat=self.last_heartbeat,
            jobs_done=self.jobs_done,
            jobs_failed=self.jobs_failed,
            detail=self.detail,
        )
        shown = self._shown
        if shown is not None and (
            shown.state,
            shown.last_heartbeat,
            shown.jobs_done,
            shown.jobs_failed,
            shown.detail,
        ) == (event.state, event.last_heartbeat, event.jobs_done, event.jobs_failed, event.detail):
            return
        self._shown = event
        self._events.publish(event)


def log_unexpected(events: EventBus, what: str, error: BaseException) -> None:
    """An exception nobody expected: to the Python log and to the console's log, with its traceback."""
    log.error("%s", what, exc_info=error)
    trace = "".join(traceback.format_exception(error)).rstrip()
    events.error(SOURCE, f"{what}: {type(error).__name__}: {error}\n{trace}")


async def wait_or_wake(
    seconds: float, wake: asyncio.Event | None, retry: asyncio.Event | None = None
) -> bool:
    """Sleep ``seconds``, or less when ``wake`` is set (it is then cleared) or ``retry`` is (it is left
    set for the caller); True when ``retry`` ended the wait."""
    signals = [event for event in (wake, retry) if event is not None]
    if not signals:
        await asyncio.sleep(seconds)
        return False
    # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
    waits = [asyncio.ensure_future(event.wait()) for event in signals]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    if wake is not None:
        wake.clear()
    return retry is not None and retry.is_set()


async def repeat(
    name: str,
    step: Callable[[], Awaitable[float | None]],
    interval: float,
    *,
    status: AgentStatus,
    events: EventBus,
    backoff: Backoff,
    wake: asyncio.Event | None = None,
    retry_spread: float = RETRY_SPREAD,
) -> None:
    """Run ``step`` every ``interval`` seconds until cancelled (see the module docstring).
    ``step`` may return a shorter wait for the next run (the job poller: another job may be waiting)."""
    retry = status.retry_signal(name)
    while True:
        delay = interval
        failed = False
        try:
            sooner = await step()
        except PlatformUnavailable as error:
            failed = True
            delay = backoff.next_delay()
            if error.retry_after is not None:
                delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER))
            news = status.unreachable(name, str(error))
            events.log(
                Level.WARNING if news else Level.DEBUG,
                SOURCE,
                f"{name}: {why_unavailable(error)} ({error}); retrying in {delay:.1f} s",
            )
        except PlatformRefused as error:
            backoff.reset()
            status.reachable(name)
            events.error(SOURCE, f"{name}: the platform refused the call: {error}")
        except Exception as error:  # one bad round must not end the loop
            log_unexpected(events, f"{name} failed unexpectedly", error)
        else:
            backoff.reset()
            retry.clear()  # a wake meant for a failed call: this one went through
            if status.reachable(name):
                events.info(SOURCE, f"{name}: the platform is reachable again")
            if sooner is not None:
                delay = sooner
        if await wait_or_wake(delay, wake, retry if failed else None):
            retry.clear()
            # Another loop got through: try again soon, each loop at its own moment.
            await asyncio.sleep(random.uniform(0.0, retry_spread))
