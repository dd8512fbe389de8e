"""The platform link as the runtime holds it: the client, the outbox delivery and the reporter.

Built from the settings when ``--api-url`` is given; trade events and command acks need the agent
id for their paths, so without one (not paired yet) the link does not start and says why.
"""

from __future__ import annotations

from collections.abc import Callable

from mt5console.core.agent.outbox import OutboxDelivery
from mt5console.core.agent.platform import Backoff, PlatformClient
from mt5console.core.agent.reporting import SOURCE, PlatformReporter
from mt5console.core.events import EventBus
from mt5console.core.settings import Settings
from mt5console.core.store import Store


class PlatformLink:
    def __init__(
        self,
        api_url: str,
        pairing_key: str | None,
        agent_id: str,
        store: Store,
        events: EventBus,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = PlatformClient(api_url, pairing_key)
        self.delivery = OutboxDelivery(store, self.client, events, backoff=backoff, agent_id=agent_id)
        self.reporter = PlatformReporter(store, events, agent_id, wake=self.delivery.wake)
        self.acknowledge = self.reporter.acknowledge

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, events: EventBus) -> PlatformLink | None:
        if not settings.api_url:
            return None
        if not settings.agent_id:
            events.warning(
                SOURCE,
                "trade events and command acks are not reported: no agent id "
                "(give --agent-id, or pair the console with --key)",
            )
            return None
        events.info(SOURCE, f"reporting trades and command acks to {settings.api_url}")
        return cls(settings.api_url, settings.pairing_key, settings.agent_id, store, events)

    def attach(self) -> Callable[[], None]:
        """Start queueing trade events (before the engine restores, so adoptions are reported)."""
        return self.reporter.attach()

    async def run(self) -> None:
        """Deliver the outbox until cancelled; the HTTP client is closed when it ends."""
        try:
            await self.delivery.run()
        finally:
            await self.client.aclose()
