"""The agent loop as the runtime runs it: pairing (when needed), then the heartbeat, the price feed
and the job poller, each a named task over the platform link's one client.

Recovery: the platform unreachable -> each loop backs off 1, 2, 4 ... 60 s and results wait in the
outbox; the terminal lost -> the broker re-initializes every ``reconnect_interval`` seconds, the
heartbeat says ``mt5_connected: false`` at once, prices pause, and jobs that need the terminal fail
with the broker's reason until it is back.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from mt5console.core.agent.agent_state import (
    OFF,
    ONLINE,
    PAIRING,
    SOURCE,
    AgentStatus,
    log_unexpected,
    repeat,
    wait_or_wake,
)
from mt5console.core.agent.artifacts import ArtifactFetcher
from mt5console.core.agent.heartbeat import Heartbeat, Metrics
from mt5console.core.agent.job_poller import JobPoller
from mt5console.core.agent.jobs import JobExecutor, build_handlers
from mt5console.core.agent.link import PlatformLink
from mt5console.core.agent.pairing import (
    AgentFileError,
    AgentIdentity,
    PairingError,
    agent_file,
    load_identity,
    pair,
    save_identity,
    saved_for_elsewhere,
    with_identity,
)
from mt5console.core.agent.platform import (
    Backoff,
    PlatformClient,
    PlatformRefused,
    PlatformUnavailable,
    why_unavailable,
)
from mt5console.core.agent.prices import PriceFeed
from mt5console.core.broker.models import AccountState
from mt5console.core.broker.mt5 import Broker
from mt5console.core.events import EventBus
from mt5console.core.market import MarketData
from mt5console.core.settings import Settings
from mt5console.core.store import Store

BackoffFactory = Callable[[], Backoff]


async def pair_until_done(
    settings: Settings,
    account: AccountState | None,
    events: EventBus,
    status: AgentStatus,
    *,
    backoff: Backoff | None = None,
) -> Settings | None:
    """Pair with the platform, retrying with backoff while it cannot be reached; save the answer to
    agent.json and return the settings with it. None when the platform refuses (the agent stays off)."""
    assert settings.api_url and settings.pairing_key
    backoff = backoff or Backoff()
    client = PlatformClient(settings.api_url, settings.pairing_key, secrets=events.secrets)
    status.set_state(PAIRING)
    events.info(SOURCE, f"pairing with {settings.api_url} ({_why_pairing(settings)})")
    try:
        while True:
            try:
                identity = await pair(client, settings.pairing_key, account)
                break
            except PlatformUnavailable as error:
                delay = backoff.next_delay()
                # A refused key (401/403) is said as such: waiting does not mend it, the key does.
                events.warning(
                    SOURCE, f"pairing: {why_unavailable(error)} ({error}); retrying in {delay:.1f} s"
                )
                await wait_or_wake(delay, None)
            except (PlatformRefused, PairingError) as error:
                events.error(SOURCE, f"pairing failed, the agent loop is off: {error}")
                status.set_state(OFF)
                return None
    finally:
        await client.aclose()
    events.set_secrets((*settings.secrets(), identity.pairing_key))
    _save(settings, identity, events)
    events.info(SOURCE, f"paired: agent id {identity.agent_id}")
    return with_identity(settings, identity)


def _why_pairing(settings: Settings) -> str:
    """Why this start pairs, for the log: nothing saved, or a pairing saved with another platform."""
    try:
        saved = load_identity(agent_file(settings))
    except AgentFileError:
        saved = None  # the start has read it already; a file gone bad since then changes nothing here
    if saved is not None and saved_for_elsewhere(settings, saved):
        return (
            f"{agent_file(settings)} holds the pairing with {saved.api_url}, whose key is not sent to "
            "another platform: pairing afresh with the given key, the answer replaces it"
        )
    return "no agent id given or saved"


def _save(settings: Settings, identity: AgentIdentity, events: EventBus) -> None:
    path = agent_file(settings)
    try:
        save_identity(path, identity)
    except OSError as error:
        # This run can go on with the answer; the next start would have to pair again.
        events.error(SOURCE, f"could not save the pairing to {path}: {error}; the next start pairs again")
    else:
        events.info(SOURCE, f"pairing saved to {path} (mode 0600)")


class AgentLoop:
    def __init__(
        self,
        settings: Settings,
        link: PlatformLink,
        broker: Broker,
        market: MarketData,
        store: Store,
        events: EventBus,
        *,
        status: AgentStatus,
        strategies_running: Callable[[], int],
        backoff: BackoffFactory = Backoff,
    ) -> None:
        assert settings.agent_id is not None, "the agent loop needs an agent id (pair first)"
        self.settings = settings
        self._broker = broker
        self._market = market
        self._events = events
        self._backoff = backoff
        self._strategies_running = strategies_running
        self.status = status
        handlers = build_handlers(
            settings,
            broker,
            events=events,
            fetch_artifact=ArtifactFetcher(link.client, settings.artifact_max_bytes),
            strategy_of_magic=store.strategy_id_of_magic,
        )
        self.executor = JobExecutor(store, handlers, settings.agent_id, events=events)
        self.heartbeat = Heartbeat(link.client, settings.agent_id, self.metrics, status)
        self.prices = PriceFeed(link.client, settings.agent_id, market, broker)
        self.jobs = JobPoller(
            link.client,
            settings.agent_id,
            self.executor,
            store,
            events,
            status,
            delivered=link.delivery.wake,
        )

    def metrics(self) -> Metrics:
        return Metrics(
            mt5_connected=self._broker.connected,
            symbols_tracked=len(self._market.symbols),
            jobs_processed=self.executor.jobs_processed,
            strategies_running=self._strategies_running(),
        )

    def attach(self) -> Callable[[], None]:
        """Follow the terminal's state (heartbeat at once on a change); returns the unsubscribe."""
        return self._events.subscribe(self.heartbeat.on_event)

    def services(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        return [
            ("agent-heartbeat", self.run_heartbeat()),
            ("agent-prices", self.run_prices()),
            ("agent-jobs", self.run_jobs()),
        ]

    async def run_heartbeat(self) -> None:
        if not self._broker.connected:
            await self._broker.wait_connected()  # the first heartbeat: as soon as it is connected
        self.status.terminal_connected = self._broker.connected
        self.status.set_state(ONLINE)
        self._events.info(
            SOURCE,
            f"agent {self.settings.agent_id} online: heartbeat every {self.settings.heartbeat_interval:g} s, "
            f"prices every {self.settings.prices_interval:g} s, jobs polled every "
            f"{self.settings.jobs_interval:g} s",
        )
        await self._repeat("heartbeat", self.heartbeat.send_once, self.settings.heartbeat_interval)

    async def run_prices(self) -> None:
        await self._repeat("prices", self.prices.send_once, self.settings.prices_interval)

    async def run_jobs(self) -> None:
        try:
            resumed = await self.jobs.resume_unfinished()
        except Exception as error:  # the store could not be read: the poll loop still runs
            log_unexpected(self._events, "resuming the unfinished jobs failed", error)
        else:
            if resumed:
                self._events.info(SOURCE, f"{resumed} unfinished job(s) resumed")
        await self._repeat("jobs", self.jobs.poll_once, self.settings.jobs_interval)

    async def _repeat(self, name: str, step: Callable[[], Any], interval: float) -> None:
        wake = self.heartbeat.wake if name == "heartbeat" else None
        await repeat(
            name, step, interval, status=self.status, events=self._events, backoff=self._backoff(), wake=wake
        )
