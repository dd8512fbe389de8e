"""The core wired as the runtime wires it for the platform: the simulator rig (tests/helpers.py),
the Pusher source on a real soketi, the reporter, and the outbox delivery to the loopback platform."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt5console.core.agent.outbox import OutboxDelivery
from mt5console.core.agent.platform import Backoff, PlatformClient
from mt5console.core.agent.reporting import PlatformReporter
from mt5console.core.commands.pusher import PusherConfig, PusherSource
from mt5console.core.events import PusherStateChanged
from tests.helpers import Rig, eventually, make_rig
from tests.platform_server import PlatformServer
from tests.pusher.soketi_process import Soketi

PAIRING_KEY = "pairing-key-7f3a9c1e5b"


def fast(first: float = 0.05, cap: float = 0.4) -> Backoff:
    """The contract's backoff shape on a test's time scale."""
    return Backoff(first, cap)


@dataclass
class Remote:
    rig: Rig
    config: PusherConfig
    source: PusherSource
    client: PlatformClient
    delivery: OutboxDelivery
    reporter: PlatformReporter
    agent_id: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def channel(self) -> str:
        return self.config.channel

    def states(self) -> list[str]:
        return [e.state for e in self.rig.seen if isinstance(e, PusherStateChanged)]

    async def subscribed(self, count: int = 1) -> None:
        await eventually(lambda: self.states().count("subscribed") >= count, f"subscription #{count}")

    async def send(self, soketi: Soketi, data: Any) -> None:
        await asyncio.to_thread(soketi.trigger, self.channel, "command-received", data)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.aclose()
        await self.rig.close()


async def start_remote(
    tmp_path: Path,
    soketi: Soketi,
    platform: PlatformServer,
    *,
    signing: str = "endpoint",
    secret: str | None = None,
    delivery_backoff: Backoff | None = None,
    auth_timeout: float = 2.0,
) -> Remote:
    """``signing``: "endpoint" (the platform's auth endpoint) or "secret" (``secret``, else soketi's)."""
    rig = await make_rig(tmp_path)
    agent_id = "agent-" + uuid.uuid4().hex[:8]
    config = PusherConfig(
        key=soketi.key,
        channel=f"private-executor-{agent_id}",
        host="127.0.0.1",
        port=soketi.port,
        secure=False,
        auth_endpoint=platform.auth_url if signing == "endpoint" else None,
        auth_bearer=PAIRING_KEY,
        secret=(secret or soketi.secret) if signing == "secret" else None,
    )
    client = PlatformClient(platform.url, PAIRING_KEY, timeout=2.0)
    delivery = OutboxDelivery(rig.store, client, rig.events, backoff=delivery_backoff or fast())
    reporter = PlatformReporter(rig.store, rig.events, agent_id, wake=delivery.wake)
    reporter.attach()
    source = PusherSource(
        config,
        rig.bus,
        rig.events,
        acknowledge=reporter.acknowledge,
        reconnect=fast(0.1, 0.5),
        resubscribe=fast(0.1, 0.5),
        auth_timeout=auth_timeout,
    )
    remote = Remote(rig, config, source, client, delivery, reporter, agent_id)
    loop = asyncio.get_running_loop()
    remote.tasks.append(loop.create_task(delivery.run(), name="outbox"))
    remote.tasks.append(loop.create_task(source.run(), name="pusher"))
    return remote
