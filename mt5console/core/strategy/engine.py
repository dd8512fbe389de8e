"""The strategy engine: starts, stops, pauses, resumes and replaces strategies, and restores them.

Every change of state is written to the store before it takes effect, so a restart finds the
strategies as they were: running ones run again, their open positions recognised by magic number
(the terminal is asked, not the memory of the previous run), and no entry is repeated because a
restarted feed only signals on the NEXT closed bar.

A strategy is validated whole before anything of it starts: a bad one changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from mt5console.core.broker.errors import BrokerError, TerminalUnavailable
from mt5console.core.broker.models import Position, SymbolSpec
from mt5console.core.broker.mt5 import Broker
from mt5console.core.events import EventBus, StrategyStateChanged
from mt5console.core.limits import LimitGuard
from mt5console.core.market import MarketData
from mt5console.core.settings import Limits
from mt5console.core.store import Store, StrategyState
from mt5console.core.strategy.executor import StrategyRunner, strategy_tag
from mt5console.core.strategy.filters import unsupported_enabled_filters
from mt5console.core.strategy.indicators import IndicatorCache
from mt5console.core.strategy.model import FieldError, Strategy, StrategyError, parse_strategy
from mt5console.core.strategy.summary import summarize
from mt5console.core.strategy.tracker import TradeTracker, close_comment

log = logging.getLogger(__name__)


# The engine opens a position per entry and tells a strategy's positions by their magic number; a
# netting account keeps one position per symbol, merging (or reversing) every strategy's orders into it.
NETTING_REFUSED = (
    "this account nets positions (one position per symbol): strategies would merge into and close each "
    "other's positions there; strategies run on hedging accounts only (the account line at start says which)"
)


class EngineError(Exception):
    """A lifecycle request that cannot be carried out (unknown id, terminal down...)."""


class StrategyEngine:
    def __init__(
        self,
        broker: Broker,
        market: MarketData,
        store: Store,
        events: EventBus,
        *,
        limits: Limits | None = None,
        cache: IndicatorCache | None = None,
    ) -> None:
        self._broker = broker
        self._market = market
        self._store = store
        self._events = events
        self.guard = LimitGuard(broker, limits or Limits())
        self.cache = cache if cache is not None else IndicatorCache()  # an empty cache is falsy
        self.runners: dict[str, StrategyRunner] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self.tracker = TradeTracker(broker, store, events, store.strategy_id_of_magic)
        market.on_positions(self.tracker.sync)

    def _state_changed(self, strategy: Strategy, state: StrategyState, reason: str) -> None:
        self._events.publish(
            StrategyStateChanged(
                strategy_id=strategy.strategy_id, name=strategy.name, state=state.value, reason=reason
            )
        )

    # ----------------------------------------------------------------- validation

    async def validate(self, data: Mapping[str, Any] | object) -> tuple[Strategy, SymbolSpec]:
        """Parse a strategy against the terminal's symbol; raise StrategyError naming every fault."""
        strategy = parse_strategy(data)
        account = self._market.account
        if account is not None and not account.hedging:
            raise StrategyError([FieldError("", NETTING_REFUSED)])
        try:
            spec = await self._broker.symbol(strategy.symbol)
        except TerminalUnavailable as error:
            raise StrategyError(
                [FieldError("symbol", f"cannot check {strategy.symbol!r}: {error}")]
            ) from None
        except BrokerError:
            raise StrategyError(
                [FieldError("symbol", f"the terminal does not know the symbol {strategy.symbol!r}")]
            ) from None
        strategy = parse_strategy(data, symbol_spec=lambda name: spec if name == strategy.symbol else None)
        unsupported = unsupported_enabled_filters(strategy.filters)
        if unsupported:
            # "newsFilter: why" -> the field rules.newsFilter, and why (not the filter's name twice).
            raise StrategyError(
                [
                    FieldError(f"rules.{name}", why)
                    for name, _, why in (t.partition(": ") for t in unsupported)
                ]
            )
        return strategy, spec

    # ----------------------------------------------------------------- lifecycle

    async def start(self, data: Mapping[str, Any] | object, *, source: str, paused: bool = False) -> Strategy:
        """Validate, persist, then run. Starting an id that runs replaces it (its positions stay)."""
        strategy, spec = await self.validate(data)
        strategy_id = strategy.strategy_id
        await self._check_no_positions_left_behind(strategy, restoring=source == "restart")
        replacing = strategy_id in self.runners
        if replacing:
            self._detach(strategy_id)
        state = StrategyState.PAUSED if paused else StrategyState.RUNNING
        record = self._store.save_strategy(
            strategy_id,
            name=strategy.name,
            symbol=strategy.symbol,
            timeframe=strategy.timeframe,
            definition=strategy.raw,
            state=state,
            reason=f"started from {source}",
        )
        runner = StrategyRunner(
            strategy,
            magic=record.magic,
            spec=spec,
            broker=self._broker,
            cache=self.cache,
            tracker=self.tracker,
            events=self._events,
            guard=self.guard,
            trade_history=lambda: [t.profit for t in self._store.closed_trades(strategy_id, limit=200)],
            plan_store=self._store,
        )
        runner.paused = paused
        self.runners[strategy_id] = runner
        unsubscribe_bars = self._market.subscribe_bars(
            strategy.symbol, strategy.timeframe, runner.on_bars, history=runner.history_needed
        )
        if strategy.exits.partial.enabled:  # levels watched on every tick read (StrategyRunner.on_tick)
            unsubscribe_ticks = self._market.subscribe_ticks(strategy.symbol, runner.on_tick)

            def unsubscribe_both() -> None:
                unsubscribe_bars()
                unsubscribe_ticks()

            self._unsubscribe[strategy_id] = unsubscribe_both
        else:
            self._unsubscribe[strategy_id] = unsubscribe_bars
        verb = "replaced" if replacing else ("restored" if source == "restart" else "started")
        self._events.info(
            strategy_id,
            f"{verb} from {source} (magic {record.magic}{', paused' if paused else ''}): "
            + summarize(strategy),
        )
        runner.resume_partial_plans()
        self._state_changed(strategy, state, f"{verb} from {source}")
        return strategy

    async def _check_no_positions_left_behind(self, strategy: Strategy, *, restoring: bool) -> None:
        """A strategy manages the positions of its magic number on its own symbol only. Started on
        another symbol (a replace, or a start after a stop that left positions open), its positions
        on the old one would be left without their exit conditions and partial exits, and uncounted by
        its maxPositions: refused until they are closed. A restore goes on (the strategy is as it was
        stored) and says which positions it does not manage."""
        record = self._store.get_strategy(strategy.strategy_id)
        if record is None:
            return
        elsewhere = [
            p
            for p in await self._broker.positions()
            if p.magic == record.magic and p.symbol != strategy.symbol
        ]
        if not elsewhere:
            return
        which = ", ".join(f"#{p.ticket} {p.symbol}" for p in elsewhere)
        if restoring:
            self._events.warning(
                strategy.strategy_id,
                f"has open positions on another symbol than its {strategy.symbol} ({which}): it does not "
                "manage them; STOP_STRATEGY with closePositions (or the kill switch) closes them",
            )
            return
        raise StrategyError(
            [
                FieldError(
                    "symbol",
                    f"{strategy.strategy_id} has open positions on another symbol ({which}); started on "
                    f"{strategy.symbol} it would leave them without its exits and outside its maxPositions: "
                    "close them first (STOP_STRATEGY with closePositions, or CLOSE_POSITION)",
                )
            ]
        )

    def _detach(self, strategy_id: str) -> StrategyRunner:
        runner = self.runners.pop(strategy_id)
        runner.stopped = True
        unsubscribe = self._unsubscribe.pop(strategy_id, None)
        if unsubscribe is not None:
            unsubscribe()
        return runner

    def _runner(self, strategy_id: str) -> StrategyRunner:
        runner = self.runners.get(strategy_id)
        if runner is None:
            known = ", ".join(sorted(self.runners)) or "none"
            raise EngineError(f"no running strategy {strategy_id!r} (running: {known})")
        return runner

    async def stop(self, strategy_id: str, *, close_positions: bool = False, by: str) -> int:
        """Stop a strategy; returns how many of its positions were closed."""
        runner = self._detach(strategy_id) if strategy_id in self.runners else self._runner(strategy_id)
        reason = f"stopped by {by}"
        self._store.set_strategy_state(strategy_id, StrategyState.STOPPED, reason)
        closed = await runner.close_all("stop") if close_positions else 0
        self._events.info(
            strategy_id,
            reason + (f"; closed {closed} position(s)" if close_positions else "; its positions stay open"),
        )
        self._state_changed(runner.strategy, StrategyState.STOPPED, reason)
        return closed

    async def stop_all(self, *, close_positions: bool = False, by: str) -> int:
        """The kill switch: every strategy stops at once (no entry after this returns)."""
        ids = list(self.runners)
        for strategy_id in ids:  # first mark all stopped, so none opens while others close
            self.runners[strategy_id].stopped = True
        closed = 0
        for strategy_id in ids:
            closed += await self.stop(strategy_id, close_positions=close_positions, by=by)
        self._events.warning(
            "engine",
            f"STOP ALL by {by}: {len(ids)} strateg{'y' if len(ids) == 1 else 'ies'} stopped"
            + (f", {closed} position(s) closed" if close_positions else ""),
        )
        return closed

    def pause(self, strategy_id: str, *, by: str) -> None:
        runner = self._runner(strategy_id)
        runner.paused = True
        reason = f"paused by {by}"
        self._store.set_strategy_state(strategy_id, StrategyState.PAUSED, reason)
        self._events.info(strategy_id, reason + " (manages open positions, opens none)")
        self._state_changed(runner.strategy, StrategyState.PAUSED, reason)

    def resume(self, strategy_id: str, *, by: str) -> None:
        runner = self._runner(strategy_id)
        runner.paused = False
        reason = f"resumed by {by}"
        self._store.set_strategy_state(strategy_id, StrategyState.RUNNING, reason)
        self._events.info(strategy_id, reason)
        self._state_changed(runner.strategy, StrategyState.RUNNING, reason)

    async def restore(self, *, missed_since: datetime | None = None) -> None:
        """At start: recognise open positions, and record the strategies' positions that opened and
        closed since ``missed_since`` (the last session's start) without a record; then run again
        what was running or paused."""
        positions = await self._broker.positions()
        await self.tracker.sync(positions)
        if missed_since is not None:
            await self.tracker.record_missed(missed_since, positions)
        for record in self._store.list_strategies():
            if record.state not in (StrategyState.RUNNING, StrategyState.PAUSED):
                continue
            try:
                await self.start(
                    record.definition, source="restart", paused=record.state == StrategyState.PAUSED
                )
            except StrategyError as error:
                self._store.set_strategy_state(record.id, StrategyState.ERROR, f"could not restore: {error}")
                self._events.error(record.id, f"could not restore after restart: {error}")

    async def close_positions_of(self, strategy_id: str, *, by: str) -> int:
        """Close the open positions of a strategy that does not run (its magic number's, on any symbol,
        as a running one's stop does): what a stop with closePositions left undone when a crash cut it
        off."""
        record = self._store.get_strategy(strategy_id)
        if record is None:
            raise EngineError(f"no strategy {strategy_id!r} in the store")
        theirs = [p for p in await self._broker.positions() if p.magic == record.magic]
        closed = await self._close_each(theirs, close_comment(strategy_tag(strategy_id), "stop"), strategy_id)
        self._events.info(strategy_id, f"closed {closed} position(s) of the stopped strategy ({by})")
        return closed

    async def close_position(self, ticket: int, *, volume: float | None = None, by: str) -> None:
        positions = await self._broker.positions(ticket=ticket)
        if not positions:
            raise EngineError(f"position #{ticket} is not open")
        await self._broker.close_position(ticket, volume=volume, comment=close_comment(f"mt5c:{by}", "close"))
        self._events.info(
            "engine", f"closed {'' if volume is None else f'{volume:g} lots of '}#{ticket} ({by})"
        )

    async def close_all(self, *, symbol: str | None = None, by: str) -> int:
        positions = await self._broker.positions(symbol=symbol)
        closed = await self._close_each(positions, close_comment(f"mt5c:{by}", "close"), "engine")
        self._events.warning(
            "engine", f"CLOSE ALL{' ' + symbol if symbol else ''} by {by}: {closed} position(s) closed"
        )
        return closed

    async def _close_each(self, positions: Sequence[Position], comment: str, source: str) -> int:
        """Close every one of ``positions``; one the terminal refuses is logged and the rest go on.
        Returns how many were closed."""
        closed = 0
        for position in positions:
            try:
                await self._broker.close_position(position.ticket, comment=comment)
                closed += 1
            except BrokerError as error:
                self._events.error(source, f"could not close #{position.ticket}: {error}")
        return closed
