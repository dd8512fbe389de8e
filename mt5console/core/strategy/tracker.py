"""Keeps the trades table true to the terminal: opens, partial closes and closes, whoever made them.

The terminal is the truth. Each time its open positions change (and once at start) the tracker
compares them with the open trades on disk: a trade whose position is gone is closed from the deal
history (price, time, profit, and why: stop, target, signal, manual...); a position the store does not
know is adopted, attributed to a strategy by its magic number. Deals are recorded idempotently, so a
restart never counts a profit twice.

The console's own fills are written down as they happen, not left to adoption: a strategy's by its
executor (``record_open``), a platform trade job's through the bus (``JobFilled``, agent/jobs/fills.py),
because the market-data poll calls ``sync`` only when the terminal's positions differ from the last
poll's, and a position opened and closed between two polls would otherwise never be seen. For the
same reason a close_position job and a resumed trade job ask for a ``sync`` at once
(``JobChangedPositions``), as do the CLOSE_POSITION and CLOSE_ALL commands (commands/bus.py).
Adoption stays for what the console did not open: manual trades and other EAs' in the terminal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mt5console.core.agent.jobs.fills import JobChangedPositions, JobFilled
from mt5console.core.broker.errors import BrokerError
from mt5console.core.broker.models import Deal, OrderResult, Position, Side
from mt5console.core.broker.mt5 import Broker
from mt5console.core.events import Event, EventBus, PositionClosed, PositionOpened, TradeUpdate
from mt5console.core.store import Store, Trade, TradeStatus

log = logging.getLogger(__name__)

DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_TYPE_BUY = 0
DEAL_ENTRY_OUT_BY = 3
CLOSING_ENTRIES = (DEAL_ENTRY_OUT, DEAL_ENTRY_OUT_BY)  # the deals that close (part of) a position
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
DEAL_REASON_SO = 6

# Suffixes of the comments the console puts on its own closing orders: they say why it closed.
CLOSE_REASONS = {"exit": "signal", "partial": "partial", "end": "end", "stop": "stopped", "close": "manual"}


REASON_WORDS = {
    "sl": "stop loss hit",
    "tp": "take profit hit",
    "stop_out": "stop out by the broker",
    "signal": "exit signal",
    "partial": "partial exit",
    "end": "end of data",
    "stopped": "strategy stopped",
    "manual": "closed outside the strategy",
}


COMMENT_LENGTH = 31  # MT5 keeps 31 characters of an order's comment


def close_comment(tag: str, reason: str) -> str:
    """The comment of a closing order: ``tag:reason``, the tag shortened so that the reason, which
    ``exit_reason`` reads back from the deal, always survives MT5's limit."""
    return f"{tag[: COMMENT_LENGTH - len(reason) - 1]}:{reason}"


def _moved(now: float, before: float) -> bool:
    """A stop or target that changed (prices are compared with room for float noise)."""
    return abs(now - before) > 1e-9 * max(1.0, abs(now), abs(before))


def exit_reason(deal: Deal) -> str:
    if deal.reason == DEAL_REASON_SL:
        return "sl"
    if deal.reason == DEAL_REASON_TP:
        return "tp"
    if deal.reason == DEAL_REASON_SO:
        return "stop_out"
    suffix = deal.comment.rsplit(":", 1)[-1] if ":" in deal.comment else ""
    return CLOSE_REASONS.get(suffix, "manual")


@dataclass(frozen=True, slots=True)
class _Closing:
    """What the terminal's closing deals of a position say, beside its trade as the store has it."""

    trade: Trade
    deals: tuple[Deal, ...]  # every deal of the position, oldest first: recorded with the close
    last: Deal  # the latest closing deal: its price and time are the close's
    total: float  # the position's result so far, net: closes' profit, every deal's commission and swap

    @property
    def unbooked(self) -> float:
        """The closing deals' profit not yet in the store: nothing counted twice or missed."""
        return self.total - self.trade.profit


class TradeTracker:
    def __init__(
        self,
        broker: Broker,
        store: Store,
        events: EventBus,
        strategy_of_magic: Callable[[int], str | None],
    ) -> None:
        self._broker = broker
        self._store = store
        self._events = events
        self._strategy_of_magic = strategy_of_magic
        # The open trades as they are on disk, read once and then written through: the tracker is
        # the only writer of trades, so it need not read them back at every change of positions.
        self._open: dict[int, Trade] | None = None
        # One sync at a time: the market-data poll's and a close job's would both book one close.
        self._syncing = asyncio.Lock()
        # The trade jobs' fills and closes come over the bus (the agent layer cannot call up here).
        self.unsubscribe = events.subscribe(self._on_event)

    @property
    def broker(self) -> Broker:
        """The terminal whose positions the tracker follows."""
        return self._broker

    def _on_event(self, event: Event) -> None:
        if isinstance(event, JobFilled):
            try:
                self.record_job_fill(event.position)
            except Exception as error:  # the bus would only log it where the trader does not look
                log.exception("recording job %s's fill failed", event.job_id)
                self._events.error(
                    "trades",
                    f"job {event.job_id}'s fill #{event.position.ticket} could not be recorded ({error}); "
                    "it is recorded when the console next sees the position open",
                )
        elif isinstance(event, JobChangedPositions):
            event.follow_ups.append(self.sync_now)

    def _open_trades(self) -> dict[int, Trade]:
        if self._open is None:
            self._open = {trade.ticket: trade for trade in self._store.open_trades()}
        return self._open

    def _remember(self, trade: Trade) -> None:
        """Keep the cache equal to what the store just returned for ``trade``."""
        open_trades = self._open_trades()
        if trade.status is TradeStatus.OPEN:
            open_trades[trade.ticket] = trade
        else:
            open_trades.pop(trade.ticket, None)

    def record_open(
        self,
        *,
        strategy_id: str | None,
        symbol: str,
        side: Side,
        result: OrderResult,
        sl: float,
        tp: float,
        magic: int,
        comment: str,
        when: datetime,
    ) -> Position:
        """Write an order the console itself just filled, then tell the front ends; returns the new
        position as the fill made it (the one published), for the caller to count without a new read."""
        position = Position(
            ticket=result.position,
            symbol=symbol,
            side=side,
            volume=result.volume,
            price_open=result.price,
            price_current=result.price,
            sl=sl,
            tp=tp,
            profit=0.0,
            swap=0.0,
            magic=magic,
            comment=comment,
            time=when,
            identifier=result.position,
        )
        self._opened(position, strategy_id)
        return position

    def record_job_fill(self, position: Position) -> bool:
        """Write a platform trade job's fill (``position`` as the fill made it; no strategy owns it),
        then tell the front ends and the platform. A ticket the store has already (adopted by a poll
        meanwhile, or written before a crash cut the job off and it was resumed) is left as it is:
        False, nothing is reported twice."""
        if position.ticket in self._open_trades() or self._store.trade_by_ticket(position.ticket) is not None:
            return False
        self._opened(position, None)
        return True

    async def sync_now(self) -> None:
        """Read the terminal's positions and ``sync`` with them (after the console closed one itself);
        a terminal that cannot answer is logged: the next change of positions brings the close."""
        async with self._syncing:  # read inside: a list read before another sync is stale after it
            try:
                positions = await self._broker.positions()
            except BrokerError as error:
                self._events.warning("trades", f"could not read the open positions: {error}")
                return
            await self._sync(positions)

    def _opened(self, position: Position, strategy_id: str | None) -> None:
        # The market poll may have adopted the new position already: it is reported once, not twice.
        known = position.ticket in self._open_trades()
        trade = self._record_position(position, strategy_id)
        self._events.publish(PositionOpened(position=position, strategy_id=strategy_id))
        if not known:
            self._report("opened", trade, volume=trade.volume, price=trade.open_price, when=trade.open_time)

    async def record_missed(self, since: datetime, open_now: tuple[Position, ...]) -> int:
        """The positions of the console's strategies that opened and closed since ``since`` without a
        trade on disk: the console died between a fill and its record, and the position's stop or
        target closed it before the restart. A position still open is the sync's (it adopts it);
        these are found only in the deal history. Recorded and reported as opened and closed; their
        stop and target are not in the history, so their trades have none. Returns how many."""
        try:
            # Up to a day ahead: a terminal's clock may run ahead of this computer's.
            deals = await self._broker.deals(since, datetime.now(UTC) + timedelta(days=1))
        except BrokerError as error:
            self._events.warning("trades", f"could not read the deals since the last session: {error}")
            return 0
        still_open = {p.ticket for p in open_now}
        found = 0
        for deal in deals:
            strategy_id = self._strategy_of_magic(deal.magic) if deal.entry == DEAL_ENTRY_IN else None
            ticket = deal.position_id
            if strategy_id is None or ticket in still_open or self._store.trade_by_ticket(ticket) is not None:
                continue
            position = Position(
                ticket=ticket,
                symbol=deal.symbol,
                side=Side.BUY if deal.type == DEAL_TYPE_BUY else Side.SELL,
                volume=deal.volume,
                price_open=deal.price,
                price_current=deal.price,
                sl=0.0,
                tp=0.0,
                profit=0.0,
                swap=0.0,
                magic=deal.magic,
                comment=deal.comment,
                time=deal.time,
                identifier=ticket,
            )
            self._events.warning(
                "trades",
                f"#{ticket} of {strategy_id} opened and closed while the console was not recording it: "
                "recorded now from the terminal's deals",
            )
            self._opened(position, strategy_id)
            await self._closed(self._open_trades()[ticket])
            found += 1
        return found

    async def sync(self, positions: tuple[Position, ...]) -> None:
        """Bring the store in line with the terminal's open positions."""
        async with self._syncing:
            await self._sync(positions)

    async def _sync(self, positions: tuple[Position, ...]) -> None:
        by_ticket = {p.ticket: p for p in positions}
        for trade in list(self._open_trades().values()):  # a copy: record_open may add while we await
            position = by_ticket.get(trade.ticket)
            if position is None:
                await self._closed(trade)
            elif position.volume < trade.remaining_volume - 1e-9:
                await self._partially_closed(trade, trade.remaining_volume - position.volume)
            elif _moved(position.sl, trade.sl) or _moved(position.tp, trade.tp):
                self._stops_modified(position)
        for position in positions:
            # A position without an open trade is new to the store (its trade may also have been
            # written by record_open while this sync awaited the terminal: then it is not adopted).
            if (
                position.ticket not in self._open_trades()
                and self._store.trade_by_ticket(position.ticket) is None
            ):
                self._adopt(position)

    def _record_position(self, position: Position, strategy_id: str | None) -> Trade:
        """The open trade of ``position`` written to the store (idempotent by ticket)."""
        trade = self._store.record_trade_open(
            ticket=position.ticket,
            position_id=position.identifier or position.ticket,
            strategy_id=strategy_id,
            symbol=position.symbol,
            side=position.side.value,
            volume=position.volume,
            open_price=position.price_open,
            open_time=position.time,
            sl=position.sl,
            tp=position.tp,
            magic=position.magic,
            comment=position.comment,
        )
        self._remember(trade)
        return trade

    def _adopt(self, position: Position) -> None:
        strategy_id = self._strategy_of_magic(position.magic) if position.magic else None
        trade = self._record_position(position, strategy_id)
        owner = f"strategy {strategy_id}" if strategy_id else _foreign_owner(position.comment)
        self._events.info(
            "trades",
            f"found open position #{position.ticket} {position.side.value} {position.volume:g} "
            f"{position.symbol} at {position.price_open}: {owner}",
        )
        self._report("opened", trade, volume=trade.volume, price=trade.open_price, when=trade.open_time)

    def _stops_modified(self, position: Position) -> None:
        trade = self._store.update_trade_stops(position.ticket, sl=position.sl, tp=position.tp)
        self._remember(trade)
        self._report("modified", trade, volume=trade.remaining_volume, price=trade.open_price, when=None)

    def _report(
        self,
        event: str,
        trade: Trade,
        *,
        volume: float,
        price: float,
        when: datetime | None,
        profit: float = 0.0,
    ) -> None:
        """Publish a trade event for the platform, after the store has it (the reporter queues it)."""
        self._events.publish(
            TradeUpdate(
                event=event,
                strategy_id=trade.strategy_id,
                ticket=trade.ticket,
                symbol=trade.symbol,
                side=trade.side,
                volume=volume,
                price=price,
                sl=trade.sl,
                tp=trade.tp,
                profit=profit,
                happened_at=when or datetime.now(UTC),
            )
        )

    async def _closing(self, trade: Trade) -> _Closing | None:
        """The closing deals of ``trade``'s position as the terminal has them; None when it has none
        yet (or cannot say)."""
        ticket = trade.ticket
        try:
            deals = await self._broker.position_deals(ticket)
        except BrokerError as error:
            self._events.warning("trades", f"could not read the deals of position #{ticket}: {error}")
            return None
        ordered = sorted(deals, key=lambda d: (d.time, d.ticket))
        outs = [d for d in ordered if d.entry in CLOSING_ENTRIES]
        if not outs:
            return None
        # Net of costs: the commission (and fee) of the opening deal and of every close, and the swap,
        # as the account's balance moved; a gross figure overstated every result (and Kelly sizing).
        total = sum(deal.profit + deal.commission + deal.swap for deal in ordered)
        return _Closing(trade=trade, deals=tuple(ordered), last=outs[-1], total=total)

    async def _partially_closed(self, trade: Trade, volume: float) -> None:
        closing = await self._closing(trade)
        if closing is None:
            return
        ticket, last, realised = trade.ticket, closing.last, closing.unbooked
        # The deals and the partial close in one transaction: never one on disk without the other.
        trade = self._store.record_trade_partial(
            ticket,
            volume=round(volume, 8),
            price=last.price,
            profit=realised,
            when=last.time,
            deals=closing.deals,
        )
        self._remember(trade)
        self._report(
            "partial", trade, volume=round(volume, 8), price=last.price, when=last.time, profit=realised
        )
        self._events.info(
            "trades", f"partial close of #{ticket}: {volume:g} lots at {last.price}, profit {realised:.2f}"
        )

    async def _open_now(self, ticket: int) -> bool:
        """Whether ``ticket`` is open in the terminal now: a list read before a job's or a strategy's
        fill was written (another task wrote it while the sync waited) does not show it yet."""
        try:
            return bool(await self._broker.positions(ticket=ticket))
        except BrokerError:
            return False

    async def _closed(self, trade: Trade) -> None:
        ticket, strategy_id, symbol = trade.ticket, trade.strategy_id, trade.symbol
        closing = await self._closing(trade)
        if closing is None:
            if not await self._open_now(ticket):  # else the list was read before this trade was written
                self._events.warning(
                    "trades",
                    f"position #{ticket} is no longer open but the terminal has no closing deal for it yet",
                )
            return
        last, total = closing.last, closing.total
        reason = exit_reason(last)
        still_open = trade.remaining_volume
        trade = self._store.record_trade_close(
            ticket,
            price=last.price,
            when=last.time,
            profit=closing.unbooked,
            exit_reason=reason,
            deals=closing.deals,
        )
        self._remember(trade)
        self._report("closed", trade, volume=still_open, price=last.price, when=last.time, profit=total)
        self._events.info(
            strategy_id or "trades",
            f"#{ticket} {symbol} closed ({REASON_WORDS.get(reason, reason)}) at {last.price}, "
            f"profit {total:.2f}",
        )
        self._events.publish(
            PositionClosed(ticket=ticket, symbol=symbol, profit=total, reason=reason, strategy_id=strategy_id)
        )


def _foreign_owner(comment: str) -> str:
    """Whose a position the console's strategies did not open is, as far as its comment tells."""
    if comment.startswith("job:") or " job:" in comment:  # trade_recovery.order_comment's tag
        return "a platform job's trade"
    return "no strategy of this console (manual or other EA)"
