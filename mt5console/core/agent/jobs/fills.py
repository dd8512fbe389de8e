"""What the trade jobs did to positions, published for the trade tracker (core/strategy/tracker.py).

The agent sits below the strategy layer (DESIGN.md: imports point down), so the job handlers cannot
call the tracker; they publish these events on the bus instead and the tracker, which subscribes to
the bus when it is made, writes them down. The bus is synchronous: when ``publish`` returns, the
job's fill is in the trades table and its "opened" trade event is in the outbox, before the job's
result is stored. A position a job opened and closed between two market-data polls was otherwise
never seen by the tracker, which learns of positions only when the terminal's list of them changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from mt5console.core.agent.jobs.model import TradeJob
from mt5console.core.agent.jobs.trade_recovery import trade_output
from mt5console.core.broker.models import Deal, OrderResult, Position
from mt5console.core.events import Event, EventBus

log = logging.getLogger(__name__)
FollowUp = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFilled(Event):
    """A trade job's order filled: ``position`` as the fill made it (the fill's volume and price,
    the job's magic number and order comment). Published again when a job cut off by a crash is
    resumed and finds its deal; the tracker records a ticket once."""

    job_id: str
    position: Position


@dataclass(frozen=True, slots=True, kw_only=True)
class JobChangedPositions(Event):
    """A job changed position ``ticket`` in a way the market-data poll may never see: a close_position
    job's close, or a resumed trade job's fill whose position may have closed while the console was
    off. The tracker reads the terminal's positions now. That takes the terminal's time, which a
    synchronous subscriber cannot wait for: it adds the work to ``follow_ups``, which
    ``publish_and_follow`` awaits before the job's result is stored."""

    job_id: str
    ticket: int
    follow_ups: list[FollowUp] = field(default_factory=list, compare=False)


async def publish_and_follow(events: EventBus, event: JobChangedPositions) -> None:
    """Publish ``event``, then await what its subscribers added to it. The job's change has happened
    whatever they meet: their failure is logged (the job still succeeds), not raised."""
    events.publish(event)
    for follow_up in event.follow_ups:
        try:
            await follow_up()
        except Exception as error:
            log.exception("following up job %s's close of #%s failed", event.job_id, event.ticket)
            events.warning(
                "trades",
                f"job {event.job_id} changed #{event.ticket}, but reading the positions failed "
                f"({error}); the change is recorded at the next change of positions",
            )


def opened_by(deals: tuple[Deal, ...], job: TradeJob, comment: str) -> Position:
    """The position a trade job's deals opened, as the fill made it (several deals: filled in parts)."""
    output = trade_output(deals)
    return _job_position(
        job, comment, output["ticket"], sum(d.volume for d in deals), output["fill_price"], deals[0].time
    )


def filled_by(result: OrderResult, job: TradeJob, comment: str, when: datetime) -> Position:
    """The position a trade job's order opened, from the order's result (its deal not in the history yet)."""
    return _job_position(job, comment, result.position, result.volume, result.price, when)


def _job_position(
    job: TradeJob, comment: str, ticket: int, volume: float, price: float, when: datetime
) -> Position:
    return Position(
        ticket=ticket,
        symbol=job.symbol,
        side=job.side,
        volume=round(volume, 8),
        price_open=price,
        price_current=price,
        sl=job.sl,
        tp=job.tp,
        profit=0.0,
        swap=0.0,
        magic=job.magic,
        comment=comment,
        time=when,
        identifier=ticket,
    )
