"""pysher 1.0.8, mended: its connection thread with a reconnect loop that backs off, reconnects after
any close (its own ends for good after a clean close or a 40xx ``pusher:error``, without a word) and
stops when told (its own reconnects anyway when told to stop during its fixed 10 s wait).

Every callback runs on pysher's thread; the caller hands them to its event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import pysher
import websocket
from pysher.connection import Connection

from mt5console.core.agent.platform import Backoff
from mt5console.core.commands.pusher.config import PusherConfig


class MendedConnection(Connection):  # type: ignore[misc]  # pysher has no type hints
    """pysher's connection thread with its reconnect loop replaced (see the module's docstring)."""

    ping_interval: float  # pysher's attributes this class reads and sets
    socket_id: str

    def __init__(
        self,
        event_handler: Callable[[str, Any, str], None],
        url: str,
        *,
        on_lost: Callable[[str, float], None],
        backoff: Backoff,
        socket_kwargs: dict[str, Any],
    ) -> None:
        super().__init__(
            event_handler,
            url,
            log_level=logging.WARNING,
            daemon=True,
            reconnect_interval=backoff.first,
            socket_kwargs=socket_kwargs,
        )
        self.name = "pysher-commands"
        self._on_lost = on_lost
        self._backoff = backoff
        self._stopping = threading.Event()
        self._problem = ""

    def _connect(self) -> None:
        self.state = "connecting"
        self.socket = websocket.WebSocketApp(
            self.url,
            on_open=self._on_open,
            on_message=self._on_message,
            on_error=self._on_error,
            on_close=self._on_close,
        )
        while not self.disconnect_called:
            self._problem = ""
            try:
                self.socket.run_forever(**self.socket_kwargs)
            except Exception as error:  # the thread must outlive any one connection's failure
                self._problem = f"{type(error).__name__}: {error}"
            if self.disconnect_called:
                break
            delay = self._backoff.next_delay()
            self.state = "unavailable"
            self._on_lost(self._problem or "the server closed the connection", delay)
            if self._stopping.wait(delay):
                break

    def _on_error(self, *args: Any) -> None:
        super()._on_error(*args)
        error = args[-1]
        # The server's own reason (a pusher:error just before it closed) says more than the close.
        self._problem = self._problem or (
            f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        )

    def _pusher_error_handler(self, data: Any) -> None:
        code = None
        if isinstance(data, dict):
            self._problem = f"pusher:error {data.get('code')}: {data.get('message', '')}"
            with contextlib.suppress(TypeError, ValueError, KeyError):
                code = int(data["code"])
        if code is not None and 4000 <= code <= 4099:
            # pysher would disconnect for good, silently, from inside its own thread (an app key or
            # quota problem): the server closes the socket, and the loop above retries with backoff
            # while the log says why.
            return
        super()._pusher_error_handler(data)

    def _connect_handler(self, data: Any) -> None:
        super()._connect_handler(data)
        self._backoff.reset()
        # Ping after the server's activity timeout, as the protocol asks (pysher waits 120 s).
        with contextlib.suppress(ValueError, TypeError, KeyError):
            timeout = float(json.loads(data)["activity_timeout"])
            if 0 < timeout < self.ping_interval:
                self.ping_interval = timeout

    def disconnect(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self.disconnect_called = True
        self.needs_reconnect = False
        if self.socket:
            self.socket.close()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


class PysherClient(pysher.Pusher):  # type: ignore[misc]  # pysher has no type hints
    """pysher.Pusher with the mended connection; every channel event goes to ``on_event``."""

    connection: Any  # pysher's, then the mended MendedConnection

    def __init__(
        self,
        config: PusherConfig,
        *,
        on_event: Callable[[str, Any, str], None],
        on_established: Callable[[Any], None],
        on_lost: Callable[[str, float], None],
        backoff: Backoff,
    ) -> None:
        super().__init__(
            config.key,
            cluster=config.cluster or "",
            secure=config.secure,
            port=config.url_port,
            custom_host=config.host or "",
            log_level=logging.WARNING,
            auto_sub=False,
        )
        self._on_event = on_event
        plain = self.connection  # pysher's own, never started: replaced by the mended one
        self.connection = MendedConnection(
            self._connection_handler,
            self.url,
            on_lost=on_lost,
            backoff=backoff,
            socket_kwargs=plain.socket_kwargs,
        )
        self.connection.bind("pusher:connection_established", on_established)

    def _connection_handler(self, event_name: str, data: Any, channel_name: str) -> None:
        self._on_event(event_name, data, channel_name)

    def send_subscribe(self, channel: str, auth: str | None) -> None:
        data = {"channel": channel} if auth is None else {"channel": channel, "auth": auth}
        self.connection.send_event("pusher:subscribe", data)
