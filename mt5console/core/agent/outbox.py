"""The outbox delivery loop: sends what waits in the durable outbox to the platform, in order.

One request at a time, oldest first. A request the platform cannot take now (unreachable, 5xx...)
is retried after 1, 2, 4 ... 60 s (with jitter) and holds back every later one, so the platform
never hears of a trade's close before its open. A request it took (2xx) is marked delivered at once
and never sent again; one it refuses for good (a 4xx such as 422) is given up, kept in the table
with the reason, and reported as an error.

Delivery is at least once: if the console dies between the platform's 2xx and the mark on disk, that
one request is sent again at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from mt5console.core.agent.platform import (
    Backoff,
    PlatformClient,
    PlatformRefused,
    PlatformUnavailable,
    why_unavailable,
)
from mt5console.core.agent.reporting import UNPAIRED_AGENT, path_part
from mt5console.core.events import EventBus, Level, PlatformStateChanged, utcnow
from mt5console.core.store import OutboxRecord, Store

log = logging.getLogger(__name__)

SOURCE = "platform"
BATCH = 50
MAX_RETRY_AFTER = 600.0  # the most a Retry-After header may hold deliveries back (seconds)
# outbox_due(now + FAR) returns the head of the queue whatever its retry time: when to look again.
FAR = timedelta(days=36500)
# Other writers (the job executor) may queue without calling wake(): an idle loop looks this often.
IDLE_CHECK = 2.0
# While deliveries keep failing, a WARNING says so again this often: after the first warning the
# retries are DEBUG lines, which headless output does not show, and a long outage went unsaid.
REMIND_EVERY = timedelta(minutes=10)


class OutboxDelivery:
    def __init__(
        self,
        store: Store,
        client: PlatformClient,
        events: EventBus,
        *,
        backoff: Backoff | None = None,
        idle_check: float = IDLE_CHECK,
        agent_id: str | None = None,
    ) -> None:
        self._store = store
        # Fills UNPAIRED_AGENT in the paths of what was queued before the console was paired.
        self._agent = None if agent_id is None else path_part(agent_id)
        self._idle_check = idle_check
        self._client = client
        self._events = events
        self._backoff = backoff or Backoff()
        self._wake = asyncio.Event()
        self.state = "ok"
        self.retry_at: datetime | None = None
        self.last_error = ""
        self._shown: tuple[str, int, str] | None = None
        self._failing_since: datetime | None = None
        self._said_at: datetime | None = None  # the last WARNING about the failing deliveries

    def wake(self) -> None:
        """Something was queued: deliver it now (unless the platform is being waited for)."""
        self._wake.set()
        self._announce()

    @property
    def outbox_length(self) -> int:
        return self._store.outbox_pending_count()

    async def run(self) -> None:
        """Deliver until cancelled."""
        self._announce()
        while True:
            self._wake.clear()
            await self.deliver_due()
            await self._sleep()

    async def deliver_due(self) -> int:
        """Send every request that is due, in order; stops at the first the platform cannot take.
        Returns how many were delivered."""
        delivered = 0
        while due := self._store.outbox_due(utcnow(), limit=BATCH):
            for entry in due:
                if not await self._send(entry):
                    return delivered
                delivered += 1
        if delivered and self.state != "ok":
            self._recovered()
        self._announce()
        return delivered

    async def _send(self, entry: OutboxRecord) -> bool:
        """True when the entry is settled (delivered or given up), False when it waits for a retry."""
        assert entry.id is not None  # rows read from the table always have their id
        try:
            path = entry.path
            if UNPAIRED_AGENT in path and self._agent is not None:
                path = path.replace(UNPAIRED_AGENT, self._agent)
            await self._client.request(entry.method, path, entry.body, idempotency_key=idempotency_key(entry))
        except PlatformUnavailable as error:
            self._failed(entry, error)
            return False
        except PlatformRefused as error:
            reason = self._events.redact(str(error))  # masked before it is stored in SQLite
            self._store.outbox_abandoned(entry.id, reason)
            self._events.error(
                SOURCE,
                f"the platform refused {entry.kind} #{entry.id}, given up (kept in the outbox table): "
                f"{reason}",
            )
            return True
        self._store.outbox_delivered(entry.id)
        self._backoff.reset()
        return True

    def _failed(self, entry: OutboxRecord, error: PlatformUnavailable) -> None:
        assert entry.id is not None
        delay = self._backoff.next_delay()
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER))
        self.retry_at = utcnow() + timedelta(seconds=delay)
        # Masked before it is stored (last_error in SQLite) or shown (the header's detail is no LogLine,
        # which the EventBus would mask): the error may quote the platform's answer.
        message = self._events.redact(str(error))
        self._store.outbox_failed(entry.id, message, self.retry_at)
        now = utcnow()
        first = self.state != "retrying" or message != self.last_error
        if self.state != "retrying":
            self._failing_since = now
        self.state = "retrying"
        self.last_error = message
        waiting = self.outbox_length
        # The first failure (or a new kind of failure) is a warning, and again every REMIND_EVERY;
        # the same one in between is detail.
        remind = self._said_at is None or now - self._said_at >= REMIND_EVERY
        since = ""
        if self._failing_since is not None and now - self._failing_since >= timedelta(minutes=1):
            since = f" for {int((now - self._failing_since).total_seconds() // 60)} min"
        if first or remind:
            self._said_at = now
        self._events.log(
            Level.WARNING if first or remind else Level.DEBUG,
            SOURCE,
            f"cannot deliver to the platform{since}: {why_unavailable(error)} ({message}); {waiting} "
            f"request(s) wait in the outbox, retrying in {delay:.1f} s",
        )
        self._announce(force=True)

    def _recovered(self) -> None:
        self._failing_since = self._said_at = None
        self.state = "ok"
        self.retry_at = None
        self.last_error = ""
        self._events.info(SOURCE, f"the platform is reachable again; {self.outbox_length} request(s) wait")

    async def _sleep(self) -> None:
        """Until the head of the queue is due again, or something new is queued."""
        timeout = self._idle_check
        head = self._store.outbox_due(utcnow() + FAR, limit=1)
        if head:
            timeout = max(0.0, (head[0].next_attempt_at - utcnow()).total_seconds())
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
        # meets a wake-up, and the loop would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    def _announce(self, *, force: bool = False) -> None:
        """Tell the front ends (the header) when the state, the outbox length or the retry changed."""
        length = self.outbox_length
        # retry_in shrinks as time passes: alone that is no news; a new retry (force) is.
        shown = (self.state, length, self.last_error)
        if shown == self._shown and not force:
            return
        self._shown = shown
        retry_in = None
        if self.state == "retrying" and self.retry_at is not None:
            retry_in = round(max(0.0, (self.retry_at - utcnow()).total_seconds()), 1)
        self._events.publish(
            PlatformStateChanged(
                state=self.state, retry_in=retry_in, outbox_length=length, detail=self.last_error
            )
        )


def idempotency_key(entry: OutboxRecord) -> str:
    """The same for every try of one outbox record, and told apart from every other record of this
    agent (its id) and of another data dir (when it was queued, to the microsecond)."""
    queued = entry.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"mt5console-{entry.kind}-{entry.id}-{queued}"
