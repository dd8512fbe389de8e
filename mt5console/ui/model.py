"""What the screen shows, kept from the core's events: plain data, no widgets.

The panes draw from this model; the model learns only from events and from the read-only parts the
runtime offers front ends (the engine's runners and their status, the store's closed trades). Keeping
it apart from the widgets lets the tests check what the screen will say without a terminal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mt5console.core.broker.models import AccountState, Position
from mt5console.core.events import (
    AccountUpdated,
    AgentStateChanged,
    BarClosed,
    Event,
    PlatformStateChanged,
    PositionClosed,
    PositionOpened,
    PositionsUpdated,
    PusherStateChanged,
    ReconnectAttempt,
    StrategyStateChanged,
    TerminalConnected,
    TerminalLost,
    TradeUpdate,
)
from mt5console.core.store import StrategyRecord
from mt5console.core.strategy.executor import RunnerStatus, StrategyRunner

EQUITY_HISTORY = 240  # account updates kept for the equity chart


class Pane:
    """Names of the parts an event can change (the screen redraws only those)."""

    HEADER = "header"
    ACCOUNT = "account"
    POSITIONS = "positions"
    STRATEGIES = "strategies"
    CHART = "chart"


@dataclass(frozen=True, slots=True)
class Link:
    """A link besides the terminal's (platform, Pusher, agent), as the header shows it."""

    state: str
    detail: str = ""  # e.g. "retry in 4s", "3 waiting"


@dataclass(frozen=True, slots=True)
class StrategyView:
    strategy_id: str
    name: str
    symbol: str
    timeframe: str
    state: str  # running | paused | stopped | error
    reason: str
    open_positions: int
    pnl: float  # closed trades + open positions
    last_signal: str
    last_signal_time: datetime | None
    last_blocked: str
    last_blocked_time: datetime | None
    bars_evaluated: int = 0  # closed bars evaluated since it started: it changes at every bar


@dataclass
class KnownStrategy:
    """A strategy seen this session: its identity and its last state change."""

    name: str
    symbol: str
    timeframe: str
    state: str
    reason: str
    magic: int | None = None  # kept after a stop: its positions stay open and are still its own
    status: RunnerStatus | None = None  # its runner's, kept after a stop: the last signal and refusal


@dataclass
class ConsoleModel:
    runners: Callable[[], Mapping[str, StrategyRunner]]
    realised_profit: Callable[[str], float]  # closed trades' profit of one strategy (from the store)
    terminal: str = "connecting"  # connecting | connected | lost | reconnecting | failed
    terminal_detail: str = ""
    account: AccountState | None = None
    positions: tuple[Position, ...] = ()
    strategies: dict[str, KnownStrategy] = field(default_factory=dict)
    realised: dict[str, float] = field(default_factory=dict)
    equity: deque[float] = field(default_factory=lambda: deque(maxlen=EQUITY_HISTORY))
    last_bar: tuple[str, str] | None = None
    links: dict[str, Link] = field(default_factory=dict)  # by name, in the order they first spoke
    # Each strategy's last signal and refusal before this session (from the stored log): shown
    # until its runner has its own, so that a restart does not blank what a row said.
    earlier: dict[str, RunnerStatus] = field(default_factory=dict)

    def apply(self, event: Event) -> set[str]:
        """Take one event in; return the panes it changed."""
        if isinstance(event, AccountUpdated):
            self.account = event.account
            self.equity.append(event.account.equity)
            return {Pane.ACCOUNT, Pane.CHART, Pane.HEADER}
        if isinstance(event, PositionsUpdated):
            self.positions = event.positions
            return {Pane.POSITIONS, Pane.STRATEGIES, Pane.ACCOUNT}
        if isinstance(event, StrategyStateChanged):
            self._state_changed(event)
            # The chart too: a stopped strategy's bars may no longer be followed, a started one's now are.
            return {Pane.STRATEGIES, Pane.CHART}
        if isinstance(event, PositionClosed):
            if event.strategy_id is not None:
                self.realised.pop(event.strategy_id, None)  # asked again from the store on next draw
            return {Pane.STRATEGIES, Pane.ACCOUNT}
        if isinstance(event, TradeUpdate) and event.event == "partial":
            if event.strategy_id is not None:
                self.realised.pop(event.strategy_id, None)  # the partial's profit is booked now
            return {Pane.STRATEGIES, Pane.ACCOUNT}
        if isinstance(event, PositionOpened):
            return {Pane.STRATEGIES}
        if isinstance(event, BarClosed):
            self.last_bar = (event.symbol, event.timeframe)
            return {Pane.STRATEGIES, Pane.CHART}
        if isinstance(event, TerminalConnected):
            self.terminal, self.terminal_detail = "connected", ""
            self.account = event.account
            return {Pane.HEADER, Pane.ACCOUNT}
        if isinstance(event, TerminalLost):
            self.terminal, self.terminal_detail = "lost", event.reason
            return {Pane.HEADER}
        if isinstance(event, ReconnectAttempt):
            self.terminal = "reconnecting"
            self.terminal_detail = f"attempt {event.attempt}, next in {event.retry_in:g}s"
            return {Pane.HEADER}
        if isinstance(event, PusherStateChanged | PlatformStateChanged | AgentStateChanged):
            return self._link_changed(event)
        return set()

    def _link_changed(self, event: PusherStateChanged | PlatformStateChanged | AgentStateChanged) -> set[str]:
        if isinstance(event, PusherStateChanged):
            retry = f"retry in {event.retry_in:g}s" if event.retry_in else ""
            name, link = "pusher", Link(event.state, retry)
        elif isinstance(event, PlatformStateChanged):
            retry = f"retry in {event.retry_in:g}s" if event.retry_in else ""
            waiting = f"{event.outbox_length} waiting" if event.outbox_length else ""
            name, link = "platform", Link(event.state, ", ".join(d for d in (retry, waiting) if d))
        else:
            jobs = f"jobs {event.jobs_done} done, {event.jobs_failed} failed"
            beat = (
                f"heartbeat {event.last_heartbeat:%H:%M:%S}" if event.last_heartbeat else "no heartbeat yet"
            )
            name, link = "agent", Link(event.state, f"{beat}, {jobs}")
        if link.state in ("off", "stopped"):
            self.links.pop(name, None)  # not configured, or stopped with the console: nothing to show
        else:
            self.links[name] = link
        return {Pane.HEADER}

    def _state_changed(self, event: StrategyStateChanged) -> None:
        known = self.strategies.get(event.strategy_id)
        runner = self.runners().get(event.strategy_id)
        if runner is not None:
            strategy = runner.strategy
            known = KnownStrategy(
                strategy.name, strategy.symbol, strategy.timeframe, event.state, event.reason, runner.magic
            )
        elif known is not None:
            known.state, known.reason = event.state, event.reason
        else:
            known = KnownStrategy(event.name, "", "", event.state, event.reason)
        self.strategies[event.strategy_id] = known

    def remember_runners(self) -> None:
        """Note the strategies that run now (those started before the screen subscribed)."""
        for strategy_id, runner in self.runners().items():
            if strategy_id not in self.strategies:
                strategy = runner.strategy
                state = "paused" if runner.paused else "running"
                self.strategies[strategy_id] = KnownStrategy(
                    strategy.name, strategy.symbol, strategy.timeframe, state, "", runner.magic
                )

    def remember_stored(self, records: Iterable[StrategyRecord]) -> None:
        """Note strategies the store knows that do not run now (stopped, or in error, before this
        session): after a kill switch and a restart the pane says what became of them, instead of
        showing nothing."""
        for record in records:
            if record.id not in self.strategies:
                self.strategies[record.id] = KnownStrategy(
                    record.name,
                    record.symbol,
                    record.timeframe,
                    record.state.value,
                    record.state_reason,
                    record.magic,
                )

    # ----------------------------------------------------------------- views

    def strategy_views(self) -> list[StrategyView]:
        runners = self.runners()
        for strategy_id in runners:
            if strategy_id not in self.strategies:
                self.remember_runners()
                break
        by_magic: dict[int, list[Position]] = {}
        for position in self.positions:
            by_magic.setdefault(position.magic, []).append(position)
        views: list[StrategyView] = []
        for strategy_id, known in self.strategies.items():
            runner = runners.get(strategy_id)
            magic = runner.magic if runner is not None else known.magic
            mine = by_magic.get(magic, []) if magic is not None else []
            if strategy_id not in self.realised:
                self.realised[strategy_id] = self.realised_profit(strategy_id)
            floating = sum(p.profit + p.swap for p in mine)
            if runner is not None:
                known.status = runner.status
            status = known.status
            earlier = self.earlier.get(strategy_id)
            signalled = status if status is not None and status.last_signal else earlier
            blocked = status if status is not None and status.last_blocked else earlier
            state = known.state
            if runner is not None and known.state in ("running", "paused"):
                state = "paused" if runner.paused else "running"
            views.append(
                StrategyView(
                    strategy_id=strategy_id,
                    name=known.name,
                    symbol=known.symbol,
                    timeframe=known.timeframe,
                    state=state,
                    reason=known.reason,
                    open_positions=len(mine),
                    pnl=self.realised[strategy_id] + floating,
                    last_signal=signalled.last_signal if signalled else "",
                    last_signal_time=signalled.last_signal_time if signalled else None,
                    last_blocked=blocked.last_blocked if blocked else "",
                    last_blocked_time=blocked.last_blocked_time if blocked else None,
                    bars_evaluated=status.bars_seen if status else 0,
                )
            )
        return views

    def owners(self) -> dict[int, str]:
        """Strategy ids by magic number, for the positions pane's Strategy column."""
        owners = {k.magic: strategy_id for strategy_id, k in self.strategies.items() if k.magic is not None}
        owners.update({runner.magic: strategy_id for strategy_id, runner in self.runners().items()})
        return owners

    def position(self, ticket: int) -> Position | None:
        return next((p for p in self.positions if p.ticket == ticket), None)

    @property
    def running_count(self) -> int:
        return sum(1 for runner in self.runners().values() if not runner.stopped)
