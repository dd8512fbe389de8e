"""The Pusher command source: the platform's commands over a Pusher channel, through the command bus.

Channel ``private-executor-{agent id}`` (or ``--pusher-channel``), event ``command-received``, on
Pusher (key + cluster) or on a self-hosted Pusher-protocol server (``--pusher-host/--pusher-port/
--pusher-insecure``). Each command goes through the same bus, validation and lifecycle as a local
file's, one at a time in arrival order, and is acknowledged to the platform (``ok`` or ``rejected``
with the reason) through the durable outbox.

pysher 1.0.8 does the protocol; its known faults are designed around here:
- a subscribe sent before ``pusher:connection_established`` is silently lost, and after a reconnect
  a private channel is not authenticated again (it goes silent): this source subscribes itself, with
  fresh auth for the new socket id, in every ``connection_established``;
- its reconnect waits a fixed 10 s, a clean close by the server (or a 40xx ``pusher:error`` such as
  an unknown app key) ends its thread for good without a word, and a stop during that wait
  reconnects anyway: ``MendedConnection`` (connection.py) backs off (1, 2, 4 ... 30 s, with
  jitter), reconnects after any close with the server's reason in the log, and stops when told;
- its auth-endpoint call has no timeout: the endpoint is called with httpx and a timeout (or the
  subscription is signed locally with the secret, as the Pusher protocol defines): config.py;
- its callbacks run on its own thread with the data as a JSON string: they are handed to the event
  loop with ``call_soon_threadsafe`` and parsed there; nothing else touches the core from that thread.
Secrets never reach pysher; its logger, which would log every frame it sends, is kept at WARNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mt5console.core.agent.platform import Backoff
from mt5console.core.commands.bus import CommandBus, CommandResult
from mt5console.core.commands.pusher.config import (
    AUTH_TIMEOUT,
    ChannelAuthError,
    PusherConfig,
    PusherConfigError,
    endpoint_auth,
    pusher_wanted,
    sign_subscription,
)
from mt5console.core.commands.pusher.connection import PysherClient
from mt5console.core.events import EventBus, Level, PusherStateChanged
from mt5console.core.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "pusher"
COMMAND_EVENT = "command-received"
SUBSCRIBED = "pusher_internal:subscription_succeeded"
SUBSCRIPTION_ERROR = "pusher:subscription_error"
SHOWN_DATA = 200  # characters of a malformed payload quoted in the log


class Acknowledge(Protocol):
    """Where the outcome of a command with an id goes (the platform reporter's ``acknowledge``)."""

    def __call__(self, command_id: str, *, ok: bool, error: str) -> object: ...


class PusherSource:
    def __init__(
        self,
        config: PusherConfig,
        bus: CommandBus,
        events: EventBus,
        *,
        acknowledge: Acknowledge | None = None,
        reconnect: Backoff | None = None,
        resubscribe: Backoff | None = None,
        auth_timeout: float = AUTH_TIMEOUT,
    ) -> None:
        self.config = config
        self._bus = bus
        self._events = events
        self._acknowledge = acknowledge
        self._reconnect = reconnect or Backoff(1.0, 30.0)
        self._resubscribe = resubscribe or Backoff(1.0, 60.0)
        self._auth_timeout = auth_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: PysherClient | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._generation = 0  # one per connection: a late auth for an old socket is dropped
        self._subscribing: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self.state = "stopped"
        self.detail = ""
        self.handled = 0  # commands taken off the channel (malformed ones included)

    # ----------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Connect, subscribe and carry out commands until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._http = httpx.AsyncClient(verify=True, timeout=self._auth_timeout)
        self._client = PysherClient(
            self.config,
            on_event=lambda *args: self._to_loop(self._channel_event, *args),
            on_established=lambda data: self._to_loop(self._established, data),
            on_lost=lambda reason, delay: self._to_loop(self._lost, reason, delay),
            backoff=self._reconnect,
        )
        self._set_state("connecting")
        self._events.info(SOURCE, f"connecting to {self.config.where} for channel {self.config.channel}")
        try:
            self._client.connect()
            while True:
                await self._handle(await self._queue.get())
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self._subscribing is not None:
            self._subscribing.cancel()
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.connection.disconnect, 5.0)
        if self._http is not None:
            await self._http.aclose()
        self._set_state("stopped")

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """From pysher's thread: run ``callback`` on the event loop's thread, never here."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while pysher was still talking
            loop.call_soon_threadsafe(callback, *args)

    def _set_state(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        if (state, detail) == (self.state, self.detail) and retry_in is None:
            return
        self.state, self.detail = state, detail
        self._events.publish(
            PusherStateChanged(state=state, channel=self.config.channel, retry_in=retry_in, detail=detail)
        )

    # ----------------------------------------------------------------- connection (loop thread)

    def _established(self, data: Any) -> None:
        try:
            socket_id = (
                str(json.loads(data)["socket_id"]) if isinstance(data, str) else str(data["socket_id"])
            )
        except (ValueError, KeyError, TypeError):
            self._events.error(SOURCE, "the server's connection_established has no socket id")
            return
        recovered = self.state == "reconnecting"
        self._generation += 1
        self._set_state("connected")
        self._events.info(SOURCE, "connected again" if recovered else f"connected to {self.config.where}")
        self._subscribe_soon(self._generation, socket_id, delay=0.0)

    def _lost(self, reason: str, retry_in: float) -> None:
        if self._client is None:
            return  # stopping
        was = self.state
        self._set_state("reconnecting", reason, retry_in)
        if was in ("connected", "subscribed"):
            self._events.warning(SOURCE, f"connection lost ({reason}); reconnecting in {retry_in:.1f} s")
            return
        message = f"cannot connect to {self.config.where} ({reason}); retrying in {retry_in:.1f} s"
        # The first failed attempt is a warning; the same outage again is detail.
        self._events.log(Level.WARNING if was == "connecting" else Level.DEBUG, SOURCE, message)

    def _subscribe_soon(self, generation: int, socket_id: str, delay: float) -> None:
        if self._subscribing is not None:
            self._subscribing.cancel()
        self._subscribing = asyncio.get_running_loop().create_task(
            self._subscribe(generation, socket_id, delay), name="pusher-subscribe"
        )

    async def _subscribe(self, generation: int, socket_id: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        try:
            auth = await self._auth(socket_id)
        except ChannelAuthError as error:
            self._subscription_failed(generation, socket_id, str(error))
            return
        client = self._client
        if client is None or generation != self._generation:
            return  # reconnected meanwhile: that connection subscribes with its own socket id
        await asyncio.to_thread(client.send_subscribe, self.config.channel, auth)

    async def _auth(self, socket_id: str) -> str | None:
        if not self.config.private:
            return None
        if self.config.secret:
            return sign_subscription(self.config.secret, self.config.key, socket_id, self.config.channel)
        assert self._http is not None
        return await endpoint_auth(self.config, socket_id, self._http, self._auth_timeout)

    def _subscription_failed(self, generation: int, socket_id: str, reason: str) -> None:
        if generation != self._generation or self._client is None:
            return
        delay = self._resubscribe.next_delay()
        self._set_state("connected", f"not subscribed: {reason}", delay)
        self._events.error(
            SOURCE, f"cannot subscribe to {self.config.channel}: {reason}; trying again in {delay:.1f} s"
        )
        self._subscribe_soon(generation, socket_id, delay)

    def _socket_id(self) -> str:
        client = self._client
        return "" if client is None else str(client.connection.socket_id)

    def _channel_event(self, event: str, data: Any, channel: str) -> None:
        if channel != self.config.channel:
            return
        if event == COMMAND_EVENT:
            self._queue.put_nowait(data)
        elif event == SUBSCRIBED:
            self._resubscribe.reset()
            self._set_state("subscribed")
            self._events.info(SOURCE, f"subscribed to {channel}: waiting for commands")
        elif event == SUBSCRIPTION_ERROR:
            detail = data if isinstance(data, dict) else _decoded(data)
            reason = str(detail.get("error") or detail) if isinstance(detail, dict) else str(detail)
            self._subscription_failed(self._generation, self._socket_id(), f"refused by the server: {reason}")

    # ----------------------------------------------------------------- commands (loop thread)

    async def _handle(self, data: Any) -> CommandResult:
        """Carry out one command and queue its ack; every outcome is in the log."""
        self.handled += 1
        payload = _decoded(data)
        if isinstance(payload, _Undecodable):
            result = CommandResult(ok=False, error=f"the command's data is not JSON: {payload.reason}")
            self._events.warning(
                SOURCE, f"rejected a malformed command: {result.error} (data: {_shown(data)})"
            )
            return result
        name = payload.get("command") if isinstance(payload, dict) else None
        claimed = _claimed_id(payload)
        self._events.info(
            SOURCE,
            f"received {name if isinstance(name, str) and name else 'a command'}"
            + (f" [{claimed}]" if claimed else ""),
        )
        try:
            command, result = await self._bus.submit_payload(payload, SOURCE)
        except Exception as error:  # a fault below must not stop the channel: reject and go on
            log.exception("command from Pusher failed")
            command, result = None, CommandResult(ok=False, error=f"internal error: {error}")
            self._events.error(SOURCE, f"command{f' [{claimed}]' if claimed else ''} failed: {error}")
        command_id = command.command_id if command is not None else claimed
        if command_id and self._acknowledge is not None:
            self._acknowledge(command_id, ok=result.ok, error=result.error)
        return result


@dataclass(frozen=True, slots=True)
class _Undecodable:
    reason: str


def _decoded(data: Any) -> Any:
    """pysher hands channel data as the JSON string it came in."""
    if not isinstance(data, str | bytes):
        return data
    try:
        return json.loads(data)
    except ValueError as error:
        return _Undecodable(str(error))


def _claimed_id(payload: Any) -> str | None:
    """The commandId of a payload, even a malformed one, so that its rejection can be acknowledged."""
    if not isinstance(payload, dict):
        return None
    value = payload.get("commandId")
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return str(value)


def _shown(data: Any) -> str:
    text = data if isinstance(data, str) else repr(data)
    return text if len(text) <= SHOWN_DATA else text[:SHOWN_DATA] + "..."


def pusher_source(
    settings: Settings, bus: CommandBus, events: EventBus, *, acknowledge: Acknowledge | None = None
) -> PusherSource | None:
    """The source the runtime runs, or None (and why, in the log) when the settings do not allow it."""
    if not pusher_wanted(settings):
        return None  # commands come from local files only
    try:
        config = PusherConfig.from_settings(settings)
    except PusherConfigError as error:
        events.warning(SOURCE, f"the Pusher command source is off: {error}")
        return None
    if acknowledge is None:
        events.warning(
            SOURCE,
            "commands are not acknowledged: the platform link is off (it needs --api-url and an agent id)",
        )
    return PusherSource(config, bus, events, acknowledge=acknowledge)
