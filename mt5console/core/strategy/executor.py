"""One running strategy: reacts to each closed bar of its symbol and timeframe.

Per closed bar, in this order: exit conditions close positions; partial exits take profit and move
stops; then, unless paused, each entry block is evaluated and, when it holds, goes through the
one-entry-per-bar gate, ``maxPositions``, the local hard limits, the filters, the stop/target maths and
the sizing before one market order is sent with the strategy's magic number and a comment naming it.
Every refusal is logged with what refused it.

The same runner serves the live console and the replay: only the clock that closes bars differs.
Decisions are timed at the close of the bar that triggered them (its open time + one timeframe), so
a session filter answers the same in both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np

from mt5console.core.broker.errors import BrokerError, TerminalUnavailable
from mt5console.core.broker.models import Position, Side, SymbolSpec, Tick
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.volume import floor_to_step
from mt5console.core.events import EventBus, Level
from mt5console.core.limits import LimitGuard
from mt5console.core.strategy.conditions import EntryGate, evaluate, explain, judge
from mt5console.core.strategy.exits import bars_needed, initial_levels
from mt5console.core.strategy.filters import (
    FILTER_ORDER,
    FilterContext,
    OpenExposure,
    check_filters,
    history_bars,
    required_data,
)
from mt5console.core.strategy.indicators import IndicatorCache
from mt5console.core.strategy.model import RiskMethod, Strategy
from mt5console.core.strategy.operands import Operand, parse_operand, warmup_bars
from mt5console.core.strategy.partial_book import PartialBook, PlanStore
from mt5console.core.strategy.partials import CloseVolume, MoveStop, PartialPlan, PartialPlanError
from mt5console.core.strategy.risk import size_position
from mt5console.core.strategy.tracker import CLOSING_ENTRIES, TradeTracker, close_comment
from mt5console.core.timeframes import TIMEFRAME_SECONDS

log = logging.getLogger(__name__)


ATR_14 = parse_operand("atr_14")


def strategy_tag(strategy_id: str) -> str:
    """The comment prefix that marks the console's orders for one strategy (MT5 keeps 31 chars)."""
    return f"mt5c:{strategy_id[:20]}"


# How a refused entry's log line begins (the replay counts refusals by it).
ENTRY_BLOCKED: Final = "entry blocked: "


@dataclass(slots=True)
class RunnerStatus:
    """What the strategies pane shows: the last signal and the last refusal, with times."""

    last_signal: str = ""
    last_signal_time: datetime | None = None
    last_blocked: str = ""
    last_blocked_time: datetime | None = None
    bars_seen: int = 0  # closed bars evaluated since the strategy started (the pane's "Bars")


def _kelly(strategy: Strategy) -> bool:
    """Whether sizing reads the trade history: only Kelly does, and reading it is a store query."""
    dynamic = strategy.risk.dynamic
    return dynamic.enabled and dynamic.method is RiskMethod.KELLY


class StrategyRunner:
    def __init__(
        self,
        strategy: Strategy,
        *,
        magic: int,
        spec: SymbolSpec,
        broker: Broker,
        cache: IndicatorCache,
        tracker: TradeTracker,
        events: EventBus,
        guard: LimitGuard,
        trade_history: Callable[[], Sequence[float]] | None = None,
        plan_store: PlanStore | None = None,
    ) -> None:
        self.strategy = strategy
        self.magic = magic
        self.spec = spec
        self.paused = False
        self.stopped = False  # set by the engine the moment a stop is asked: no order after that
        self.status = RunnerStatus()
        self._broker = broker
        self._cache = cache
        self._tracker = tracker
        self._events = events
        self._guard = guard
        self._trade_history = trade_history
        # One gate for the strategy, not one per entry block: "at most one entry per closed bar per
        # strategy", so a bar on which a buy block and a sell block both hold opens one position.
        self._gate = EntryGate()
        self._plans = PartialBook(strategy.strategy_id, spec, plan_store, events)
        self._looked_at: set[int] = set()  # positions found without a plan, looked at once
        self._to_reconcile: set[int] = set()  # positions whose plans were taken back from the store
        self.tag = strategy_tag(strategy.strategy_id)
        # Without an enabled filter there is nothing to check, so no context (and no data) to gather.
        self._filtered = any(
            getattr(strategy.filters, field).enabled for _name, field, _check in FILTER_ORDER
        )

    # ----------------------------------------------------------------- helpers

    @property
    def history_needed(self) -> int:
        operands: list[Operand] = list(self.strategy.operands())
        longest = max((warmup_bars(o) for o in operands), default=50)
        # The stop and target read the same bars at entry (an ATR of their own period, a swing).
        return max(longest, history_bars(self.strategy.filters), bars_needed(self.strategy.exits)) + 100

    def resume_partial_plans(self) -> None:
        """After a restart or a replace: the saved partial-exit plans of this strategy's positions,
        each checked against its position when it is next seen (``_reconcile``)."""
        self._plans.resume()
        self._to_reconcile = set(self._plans.tickets())

    def _say(self, message: str) -> None:
        self._events.info(self.strategy.strategy_id, message)

    def _blocked(self, when: datetime, message: str) -> None:
        self.status.last_blocked = message
        self.status.last_blocked_time = when
        self._say(f"{ENTRY_BLOCKED}{message}")

    def _values(self, bars: np.ndarray) -> Callable[[Operand], np.ndarray]:
        """The series of each operand over ``bars``, asked of the shared cache once per bar: the
        evaluation, its explanation and the exit group read the same operands several times."""
        symbol, timeframe = self.strategy.symbol, self.strategy.timeframe
        read: dict[str, np.ndarray] = {}

        def values(operand: Operand) -> np.ndarray:
            found = read.get(operand.name)
            if found is None:
                found = read[operand.name] = self._cache.series(symbol, timeframe, operand, bars)
            return found

        return values

    def _mine(self, positions: Sequence[Position]) -> list[Position]:
        """This strategy's positions: its magic number (derived from its id) on its symbol. The comment
        is not required: some brokers' gateways rewrite or drop it, and a strategy that stopped
        recognising its own positions would open past maxPositions."""
        symbol, magic = self.strategy.symbol, self.magic
        return [p for p in positions if p.magic == magic and p.symbol == symbol]

    # ----------------------------------------------------------------- the bar

    async def on_bars(self, symbol: str, timeframe: str, bars: np.ndarray) -> None:
        if len(bars) < 2 or self.stopped:
            return
        self.status.bars_seen += 1
        bar_open = int(bars["time"][-1])
        decided_at = datetime.fromtimestamp(bar_open + TIMEFRAME_SECONDS[timeframe], UTC)
        values = self._values(bars)
        point = self.spec.point
        # Every open position, once: this strategy's own are picked from it, and an entry's global
        # limits count it (read after the strategies before this one in the poll have acted).
        everyone = list(await self._broker.positions())
        positions = self._mine(everyone)
        if self._plans:
            self._plans.forget_all_but({p.ticket for p in positions})
        exit_group = self.strategy.exits.conditions
        if positions and exit_group is not None and evaluate(exit_group, values, point=point):
            self._say(f"exit condition holds: {explain(exit_group, values, point=point)}")
            for position in positions:
                await self._close(position, None, "exit")
            positions = []
        if positions and self.strategy.exits.partial.enabled:
            positions = await self._manage_partials(positions, bars)
        if self.paused:
            return
        if everyone and (positions != self._mine(everyone)):
            everyone = list(await self._broker.positions())  # exits or partials changed what is open
        signalled = False
        taken: str | None = None  # the side of the entry block that took this bar's one entry
        # Each entry's trace is logged whatever its truth (the signal line, or the DEBUG line of a
        # bar without an entry), so the truth comes with the trace from one reading of the values.
        traces: list[str] = []
        for index, entry in enumerate(self.strategy.entries):
            holds, reason = judge(entry.conditions, values, point=point)
            traces.append(f"{entry.side.value}: {reason}")
            if not holds:
                continue
            signalled = True
            if taken is not None:  # the first block listed whose conditions hold takes the bar
                self._say(
                    f"{entry.side.value} signal on {symbol} {timeframe} not taken: the {taken} signal "
                    f"had this bar's one entry ({reason})"
                )
                continue
            if not self._gate.try_fire(bar_open):
                continue  # this bar was entered on already (a repeated poll)
            taken = entry.side.value
            self.status.last_signal = f"{entry.side.value} {reason}"
            self.status.last_signal_time = decided_at
            self._say(f"{entry.side.value} signal on {symbol} {timeframe}: {reason}")
            opened = await self._enter(entry.side, index, bars, positions, everyone, decided_at)
            if opened is not None:
                positions.append(opened)
                everyone.append(opened)
        if not signalled:
            self._no_entry(bar_open, traces)

    def _no_entry(self, bar_open: int, traces: Sequence[str]) -> None:
        """A DEBUG line (shown with --verbose) for a bar that gave no entry, and why (each entry's
        trace): each closed bar is evaluated, and a trader watching a quiet strategy can see that it
        is and what it is waiting for."""
        why = "; ".join(traces)
        strategy = self.strategy
        opened = f"{datetime.fromtimestamp(bar_open, UTC):%Y-%m-%d %H:%M}"
        message = f"{strategy.symbol} {strategy.timeframe} bar {opened} closed: no entry ({why})"
        self._events.log(Level.DEBUG, strategy.strategy_id, message)

    async def _enter(
        self,
        side: Side,
        index: int,
        bars: np.ndarray,
        positions: list[Position],
        everyone: list[Position],
        when: datetime,
    ) -> Position | None:
        """``positions``: this strategy's open positions; ``everyone``: all of the account's."""
        strategy = self.strategy
        if len(positions) >= strategy.risk.max_positions:
            self._blocked(when, f"maxPositions {strategy.risk.max_positions} reached ({len(positions)} open)")
            return None
        tick = await self._broker.tick(strategy.symbol)
        if self._filtered:
            exposure = tuple(OpenExposure(p.symbol, p.side) for p in everyone)
            context = FilterContext(
                now=when,
                spec=self.spec,
                timeframe=strategy.timeframe,
                side=side,
                bars=bars,
                tick=tick,
                other_bars=await self._other_bars(exposure),
                open_exposure=exposure,
            )
            for verdict in check_filters(strategy.filters, context):
                if not verdict.passed:
                    self._blocked(when, f"{verdict.name} filter: {verdict.reason}")
                    return None
        price = tick.ask if side is Side.BUY else tick.bid
        if not price > 0:  # a symbol just selected into Market Watch can answer with an empty tick
            self._blocked(when, f"no {strategy.symbol} price yet (the terminal's tick has no bid/ask)")
            return None
        try:
            levels = initial_levels(strategy.exits, side, price, self.spec, bars)
        except ValueError as error:
            self._blocked(when, f"stop/target: {error}")
            return None
        # A fixed lot size needs neither the balance nor the ATR: neither is read for it.
        dynamic = strategy.risk.dynamic.enabled
        balance = (await self._broker.account()).balance if dynamic else None
        try:
            sizing = size_position(
                strategy.risk,
                balance=balance,
                spec=self.spec,
                entry_price=price,
                stop_distance=levels.risk_distance,
                atr=self._atr(bars) if dynamic else None,
                trade_history=self._trade_history() if self._trade_history and _kelly(strategy) else (),
            )
        except ValueError as error:
            self._blocked(when, f"sizing: {error}")
            return None
        volume = sizing.volume
        refusal = await self._guard.refusal(volume, everyone, when)
        if refusal is not None:
            self._blocked(when, refusal)
            return None
        comment = f"{self.tag}:e{index}"[:31]
        if self.stopped or self.paused:  # a stop or pause arrived while this entry was being decided
            self._blocked(when, "the strategy was stopped or paused before the order was sent")
            return None
        try:
            result = await self._broker.open_market(
                strategy.symbol,
                side,
                volume,
                sl=levels.stop_loss or 0.0,
                tp=levels.take_profit or 0.0,
                magic=self.magic,
                comment=comment,
            )
        except TerminalUnavailable:
            raise
        except BrokerError as error:
            self._blocked(when, f"the terminal refused the order: {error}")
            return None
        position = self._tracker.record_open(
            strategy_id=strategy.strategy_id,
            symbol=strategy.symbol,
            side=side,
            result=result,
            sl=levels.stop_loss or 0.0,
            tp=levels.take_profit or 0.0,
            magic=self.magic,
            comment=comment,
            when=when,
        )
        self._say(
            f"opened #{result.position} {side.value} {result.volume:g} {strategy.symbol} at {result.price} "
            f"({sizing.explanation}; {levels.description})"
        )
        if strategy.exits.partial.enabled and levels.risk_distance:
            self._plans.keep(
                result.position,
                PartialPlan.create(
                    strategy.exits.partial, side, result.price, levels.risk_distance, result.volume, self.spec
                ),
            )
        return position

    def _atr(self, bars: np.ndarray) -> float | None:
        series = self._cache.series(self.strategy.symbol, self.strategy.timeframe, ATR_14, bars)
        value = float(series[-1]) if len(series) else float("nan")
        return None if np.isnan(value) else value

    async def _other_bars(self, exposure: tuple[OpenExposure, ...]) -> dict[tuple[str, str], np.ndarray]:
        """Closed bars of the other series the filters need (higher timeframes, correlated symbols),
        fetched only when an entry is being decided: rare, so not worth a standing feed."""
        strategy = self.strategy
        wanted = required_data(strategy.filters, strategy.symbol, strategy.timeframe, exposure)
        count = history_bars(strategy.filters)
        found: dict[tuple[str, str], np.ndarray] = {}
        for symbol, timeframe in sorted(wanted):
            try:
                found[(symbol, timeframe)] = await self._broker.rates(symbol, timeframe, count, start_pos=1)
            except TerminalUnavailable:
                raise
            except BrokerError as error:
                self._events.warning(strategy.strategy_id, f"no {timeframe} bars of {symbol}: {error}")
        return found

    async def on_tick(self, tick: Tick, positions: Sequence[Position]) -> None:
        """Partial exits on every tick the console reads (each poll of the live console): a level is
        taken within a poll of the price reaching it, near the level, not at the close of its bar. The
        closed bar's high and low (``on_bars``) still catch a level reached between two reads. The
        replay's clock stands at bar opens only: there a level is taken on a bar's open tick, or, reached
        inside a bar, when the bar has closed (at the next open, at market)."""
        if self.stopped or not self._plans or tick.bid <= 0 or tick.ask <= 0:
            return
        for position in self._mine(positions):
            plan = self._plans.get(position.ticket)
            if plan is not None and await self._reconcile(position, plan):
                await self._take_partials(position, plan, tick.bid, tick.ask)

    async def _manage_partials(self, positions: list[Position], bars: np.ndarray) -> list[Position]:
        """Partial exits checked on the closed bar (its high/low reached the level), done at market:
        the replay's way, and the live console's for a level reached between two of its reads."""
        high, low = float(bars["high"][-1]), float(bars["low"][-1])
        spread = self.spec.spread * self.spec.point  # bars are bid prices; a sell is closed at the ask
        still_open = []
        for position in positions:
            plan = self._plans.get(position.ticket) or await self._plan_for_found(position)
            if plan is None:
                still_open.append(position)
                continue
            if not await self._reconcile(position, plan):
                continue  # closed whole by the close a crash had left undone
            # The best price the bar offered the position: its high for a buy, its low (+ spread) for a sell.
            bid, ask = (high, high + spread) if position.side is Side.BUY else (low, low + spread)
            if not await self._take_partials(position, plan, bid, ask):
                still_open.append(position)
        return still_open

    async def _reconcile(self, position: Position, plan: PartialPlan) -> bool:
        """A plan taken back from the store, against its position, once. A plan is saved before its
        steps are done (so that none is done twice): a crash between the two left a partial close
        saved but not done (the position is bigger than the plan leaves it), or a stop move (the
        position's stop is behind the plan's). Each is done now, and said. False when the position
        closed whole."""
        if position.ticket not in self._to_reconcile:
            return True
        self._to_reconcile.discard(position.ticket)
        ticket, strategy_id = position.ticket, self.strategy.strategy_id
        missing = floor_to_step(position.volume - plan.remaining_volume, self.spec)
        if plan.fired and missing >= self.spec.volume_min - 1e-9:
            self._events.warning(
                strategy_id,
                f"#{ticket}: a partial close of {missing:g} lots was saved, but the console stopped before "
                "it was done: done now",
            )
            if await self._close(position, missing, "partial"):
                return False
        if plan.stop_moved and plan.behind(position.sl):
            tick = await self._broker.tick(position.symbol)
            buy = position.side is Side.BUY
            price = tick.bid if buy else tick.ask
            if price > 0 and (price <= plan.stop if buy else price >= plan.stop):  # past that stop already
                self._events.warning(
                    strategy_id,
                    f"#{ticket}: its stop was to move to {plan.stop}, but the console stopped before it was "
                    f"done, and the price ({price}) is past it now: closed",
                )
                return not await self._close(position, None, "stop moved by a partial exit")
            self._events.warning(
                strategy_id,
                f"#{ticket}: its stop was to move to {plan.stop}, but the console stopped before it was "
                "done: moved now",
            )
            try:
                await self._broker.modify(ticket, sl=plan.stop, tp=position.tp)
            except BrokerError as error:
                self._events.warning(strategy_id, f"could not move the stop: {error}")
        return True

    async def _take_partials(self, position: Position, plan: PartialPlan, bid: float, ask: float) -> bool:
        """The levels ``plan`` reaches at these prices, done; True when the position closed whole."""
        closed_all = False
        actions = plan.on_price(bid, ask, open_volume=position.volume)
        if actions:
            self._plans.keep(position.ticket, plan)  # on disk before it is done: never twice
        for action in actions:
            if isinstance(action, CloseVolume):
                closed_all = await self._close(position, action.volume, "partial") or closed_all
            elif isinstance(action, MoveStop):
                try:
                    await self._broker.modify(position.ticket, sl=action.new_stop, tp=position.tp)
                    self._say(f"moved the stop of #{position.ticket} to {action.new_stop}")
                except BrokerError as error:
                    self._events.warning(self.strategy.strategy_id, f"could not move the stop: {error}")
        return closed_all

    async def _plan_for_found(self, position: Position) -> PartialPlan | None:
        """A plan for a position of this strategy found without one, made as at its opening when it is
        still whole: its order was filled but the answer never came (the terminal went away during
        order_send), or the console died between the fill and the plan. Looked at once per position."""
        ticket = position.ticket
        if ticket in self._looked_at:
            return None
        self._looked_at.add(ticket)
        strategy_id = self.strategy.strategy_id
        if not position.sl:
            return None  # levels are in R, measured from the stop: nothing to measure from
        deals = await self._broker.position_deals(ticket)
        if any(deal.entry in CLOSING_ENTRIES for deal in deals):
            self._events.warning(
                strategy_id,
                f"#{ticket} was found without its partial-exit plan and partly closed already: its "
                "partial exits are not taken (its stop and target stay)",
            )
            return None
        risk = abs(position.price_open - position.sl)
        try:
            plan = PartialPlan.create(
                self.strategy.exits.partial,
                position.side,
                position.price_open,
                risk,
                position.volume,
                self.spec,
            )
        except PartialPlanError as error:
            self._events.warning(strategy_id, f"the partial exits of #{ticket} cannot be taken up: {error}")
            return None
        self._plans.keep(ticket, plan)
        self._say(
            f"took up the partial exits of #{ticket}, found without a plan: measured from its entry "
            f"{position.price_open} and stop {position.sl}"
        )
        return plan

    async def _close(self, position: Position, volume: float | None, reason: str) -> bool:
        """Close a position (or ``volume`` of it); True when nothing of it is left open."""
        try:
            await self._broker.close_position(
                position.ticket, volume=volume, comment=close_comment(self.tag, reason)
            )
        except TerminalUnavailable:
            raise
        except BrokerError as error:
            self._events.error(self.strategy.strategy_id, f"could not close #{position.ticket}: {error}")
            return False
        whole = volume is None or volume >= position.volume - 1e-9
        self._say(f"closed {'' if whole else f'{volume:g} lots of '}#{position.ticket} ({reason})")
        if whole:
            self._plans.forget([position.ticket])
        return whole

    async def close_all(self, reason: str) -> int:
        """Closes every position of the strategy's magic number, on any symbol: a stop that closes, or
        the kill switch, leaves nothing of it open (one it was moved away from, before that was refused,
        included)."""
        count = 0
        magic = self.magic
        for position in [p for p in await self._broker.positions() if p.magic == magic]:
            if await self._close(position, None, reason):
                count += 1
        return count
