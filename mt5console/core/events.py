"""Typed events the core publishes, and the bus that carries them to whichever front end listens.

The core never knows who listens: the Textual app turns events into messages, the headless runner
prints them as log lines, tests collect them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from mt5console.core.broker.models import AccountState, Position, TerminalState, Tick

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Level(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    time: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine(Event):
    """A line for the log pane / stdout: what the console is doing and why."""

    level: Level
    source: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalConnected(Event):
    terminal: TerminalState
    account: AccountState


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalLost(Event):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectAttempt(Event):
    attempt: int
    error: str
    retry_in: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerClockLearned(Event):
    """A fresh tick showed the trade server's clock offset (seconds ahead of UTC): worth remembering."""

    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUpdated(Event):
    account: AccountState


@dataclass(frozen=True, slots=True, kw_only=True)
class TickUpdated(Event):
    tick: Tick


@dataclass(frozen=True, slots=True, kw_only=True)
class BarClosed(Event):
    symbol: str
    timeframe: str
    bar_time: datetime  # open time of the bar that just closed


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionsUpdated(Event):
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened(Event):
    position: Position
    strategy_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(Event):
    ticket: int
    symbol: str
    profit: float
    reason: str
    strategy_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyStateChanged(Event):
    strategy_id: str
    name: str
    state: str  # running | paused | stopped | error
    reason: str


# A secret shorter than this is not masked: "S" replaced in every line garbled them all ("***IMULATED",
# "EURU***D") and so gave the secret away. The start warns about such a secret instead.
MIN_MASKED_SECRET = 4
MASK = "***"


def maskable_secrets(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """The secrets long enough to be masked, longest first (a secret that holds another is masked
    whole, not left with the longer one's tail showing), without repeats."""
    kept = {secret for secret in secrets if secret and len(secret) >= MIN_MASKED_SECRET}
    return tuple(sorted(kept, key=lambda secret: (-len(secret), secret)))


def too_short_secrets(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """The secrets too short to be masked (they may show in the logs); never print them."""
    return tuple(dict.fromkeys(s for s in secrets if s and len(s) < MIN_MASKED_SECRET))


def mask_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every maskable secret replaced by ``***``."""
    for secret in maskable_secrets(secrets):
        text = text.replace(secret, MASK)
    return text


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out on the event loop's thread.

    Subscribers must be quick and must not raise; a subscriber that raises is logged and kept, so
    one faulty front end never silences the others. A short history of log lines is kept so that a
    front end attached late can show what happened before it arrived.
    """

    def __init__(self, history: int = 500) -> None:
        self._subscribers: list[Subscriber] = []
        self.log_history: deque[LogLine] = deque(maxlen=history)
        self._secrets: tuple[str, ...] = ()
        self._warned_short: set[str] = set()  # short secrets already warned about
        self._short_unsaid: set[str] = set()  # ... and those to warn about once someone listens

    def set_secrets(self, secrets: tuple[str, ...]) -> None:
        """Values masked in every log line, whoever wrote it (pairing key, passwords, Pusher secret).

        A secret shorter than MIN_MASKED_SECRET is not masked (see there); the first time one is
        given, a warning says so, without the secret, once someone listens (the runtime sets its
        secrets before a front end subscribes)."""
        self._secrets = maskable_secrets(secrets)
        self._short_unsaid.update(s for s in too_short_secrets(secrets) if s not in self._warned_short)
        self._say_short_secrets()

    def _say_short_secrets(self) -> None:
        if not self._short_unsaid or not self._subscribers:
            return
        self._warned_short |= self._short_unsaid
        self._short_unsaid.clear()
        self.warning(
            "runtime",
            f"a secret (MT5 password, pairing key or Pusher secret) is shorter than {MIN_MASKED_SECRET} "
            "characters: too short to be masked without garbling every log line, it may show in the "
            "logs; use a longer one",
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets masked in log lines (for other places that must mask them, e.g. stored errors)."""
        return self._secrets

    def redact(self, text: str) -> str:
        return mask_secrets(text, self._secrets)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        self._say_short_secrets()

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: Event) -> None:
        if isinstance(event, LogLine):
            if self._secrets:
                event = replace(event, message=self.redact(event.message))
            self.log_history.append(event)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, type(event).__name__)

    def log(self, level: Level, source: str, message: str) -> None:
        self.publish(LogLine(level=level, source=source, message=message))

    def info(self, source: str, message: str) -> None:
        self.log(Level.INFO, source, message)

    def warning(self, source: str, message: str) -> None:
        self.log(Level.WARNING, source, message)

    def error(self, source: str, message: str) -> None:
        self.log(Level.ERROR, source, message)


# --- the platform link (issue 5): what the header shows, and what is reported to the platform ---


@dataclass(frozen=True, slots=True, kw_only=True)
class PusherStateChanged(Event):
    """The Pusher command channel: ``state`` is connecting | connected | subscribed | reconnecting |
    stopped; ``retry_in`` (seconds) while reconnecting; ``detail`` says why (an error, a refusal)."""

    state: str
    channel: str
    retry_in: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformStateChanged(Event):
    """The platform link: ``state`` is ok | retrying; ``retry_in`` (seconds) while retrying;
    ``outbox_length`` requests wait to be delivered; ``detail`` is the last error."""

    state: str
    retry_in: float | None
    outbox_length: int
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeUpdate(Event):
    """A trade event as the platform is told it: ``event`` is opened | partial | modified | closed.

    ``volume`` is the lots this event is about (opened: the position's, partial: the lots closed,
    closed: the lots that were still open); ``price`` its price (open, partial or final close
    price; modified: the open price); ``profit`` what this event realised (closed: the trade's total,
    partials included); ``happened_at`` when the terminal did it.
    """

    event: str
    strategy_id: str | None
    ticket: int
    symbol: str
    side: str
    volume: float
    price: float
    sl: float
    tp: float
    profit: float
    happened_at: datetime


# --- the agent loop (issue 6): pairing, heartbeat, prices, jobs ---------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged(Event):
    """The platform agent for the header: ``state`` is pairing | online | platform-unreachable |
    terminal-lost | off; ``last_heartbeat`` when the platform last took one; ``jobs_done`` and
    ``jobs_failed`` count the jobs this console ran since it started; ``detail`` says why."""

    state: str
    last_heartbeat: datetime | None
    jobs_done: int
    jobs_failed: int
    detail: str = ""
