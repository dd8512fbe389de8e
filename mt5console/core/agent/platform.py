"""The platform's HTTP API as the console calls it: bearer key, timeouts, TLS verification on.

Every answer is sorted into one of three outcomes the callers act on:
- 2xx: taken (``PlatformResponse``);
- the platform could not take it now (unreachable, timeout, 5xx, 408/425/429, 401/403 while a key
  is being fixed, a redirect while a URL is being fixed): ``PlatformUnavailable``, worth retrying
  with ``Backoff``;
- the platform refuses this request for good (any other 4xx): ``PlatformRefused``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from mt5console.core.events import mask_secrets, utcnow

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Statuses after which the same request may succeed later: the platform is busy, starting, or its
# key check is being repaired (a wrong key must hold requests back, not throw trade events away).
RETRYABLE_STATUSES = frozenset({401, 403, 408, 425, 429})
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_ERROR_TEXT = 300


class PlatformError(Exception):
    """A platform call that did not succeed; the message names the call and what went wrong."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, when the platform said when to come back


class PlatformUnavailable(PlatformError):
    """The platform could not take the request now (unreachable, timed out, 5xx...): retry later."""


def why_unavailable(error: PlatformUnavailable) -> str:
    """What a failed call means for the trader, before the technical detail: a refused key is no
    outage, and waiting does not mend it."""
    if error.status in (401, 403):
        return (
            f"the platform does not accept the pairing key (HTTP {error.status}): check --key / "
            "MT5C_PAIRING_KEY, or pair again"
        )
    if error.status is not None and error.status >= 500:
        return f"the platform is failing (HTTP {error.status})"
    if error.status is not None:
        return f"the platform cannot take it now (HTTP {error.status})"
    return "the platform cannot be reached"


class PlatformRefused(PlatformError):
    """The platform refused the request itself (a 4xx other than the retryable ones)."""


@dataclass(frozen=True, slots=True)
class PlatformResponse:
    status: int
    body: Any  # the decoded JSON answer, or None when there was none


class Backoff:
    """Delays of 1, 2, 4, 8 ... ``cap`` seconds, each shortened by a random part of up to ``jitter``
    of itself, so that many consoles retrying after one outage do not all come back at once."""

    def __init__(
        self,
        first: float = 1.0,
        cap: float = 60.0,
        *,
        jitter: float = 0.25,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"backoff: first delay {first!r} must be positive and at most cap {cap!r}")
        if not 0 <= jitter < 1:
            raise ValueError(f"backoff: jitter {jitter!r} must be in [0, 1)")
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self._rand = rand
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next attempt, after one more failure."""
        nominal = min(self.cap, self.first * 2.0 ** min(self.failures, 62))
        self.failures += 1
        return nominal * (1.0 - self.jitter * self._rand())

    def reset(self) -> None:
        self.failures = 0


def _retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (a number of seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def answer_text(response: httpx.Response, secrets: Iterable[str | None]) -> str:
    """The start of an error answer for a message, secrets masked BEFORE it is cut: a debug page or a
    422 that echoes the Authorization header, cut inside the key, would leave a piece of the key that
    no later masking recognises (in the log, the events table and the outbox's last_error)."""
    text = mask_secrets(response.text.strip().replace("\n", " "), secrets)
    return text[:MAX_ERROR_TEXT] + ("..." if len(text) > MAX_ERROR_TEXT else "")


class PlatformClient:
    """An async httpx client bound to the platform's base URL and the agent's bearer key."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        secrets: Iterable[str | None] = (),
    ) -> None:
        """``secrets``: besides the key, what must never be quoted from an answer (the EventBus's)."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"api_url: {base_url!r} is not an http:// or https:// URL")
        headers = {"Accept": "application/json", "User-Agent": "mt5console"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.base_url = base_url.rstrip("/")
        self._secrets = (key, *secrets)
        # verify=True is httpx's default; it is spelled out because real money rides on it.
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=timeout,
            verify=True,
            transport=transport,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> PlatformResponse:
        """Send one request; raises PlatformUnavailable or PlatformRefused unless the answer is 2xx.

        ``idempotency_key`` goes in an ``Idempotency-Key`` header, the same on every retry of one
        record: a request that timed out here may still have been taken there, and the platform can
        then take the retry as the same record, not a second one."""
        call = f"{method.upper()} {path}"
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        try:
            response = await self._http.request(
                method.upper(), path.lstrip("/"), json=None if body is None else dict(body), headers=headers
            )
        except httpx.TimeoutException as error:
            raise PlatformUnavailable(f"{call}: timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise PlatformUnavailable(f"{call}: platform unreachable ({reason})") from None
        status = response.status_code
        if 200 <= status < 300:
            return PlatformResponse(status=status, body=_json_or_none(response))
        message = f"{call}: HTTP {status}" + (
            f": {answer_text(response, self._secrets)}" if response.content else ""
        )
        # A redirect is held back too: following it would resend the bearer key to another place.
        if status >= 500 or status < 400 or status in RETRYABLE_STATUSES:
            raise PlatformUnavailable(message, status=status, retry_after=_retry_after(response))
        raise PlatformRefused(message, status=status)

    async def aclose(self) -> None:
        await self._http.aclose()


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
