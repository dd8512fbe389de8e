"""Finding a job's deals in the terminal's history by the comment its order carried.

Every order a job sends carries a comment made from the job's id (``order_comment``). When the
console dies after ``order_send`` reached the terminal but before the result was stored, the job is
handed out again; the history is then searched for that comment before anything is sent, and a deal
found there is the job's result: no second order.

The comment is ``job:<the id>``, or, when the job brings its own comment, ``<its comment> job:<the
id>``, within MT5's 31 characters. An id too long for the room left (24 characters, 12 after a
comment) is cut and ends in ``~`` and ten hex digits of its hash, so two ids alike in their first
characters (``platform-job-2026-11-22-0001`` and ``-0002``) never share a comment: one job must never
take another's deal for its own. It is a pure function of the job's id and input, so the console
that resumes the job computes the same comment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from mt5console.core.broker.models import Deal
from mt5console.core.broker.mt5 import Broker
from mt5console.core.limits import deal_result

JOB_TAG: Final = "job:"
COMMENT_LENGTH: Final = 31
ID_CHARACTERS: Final = 24
ID_CHARACTERS_WITH_COMMENT: Final = 12
# Deal times are the trade server's clock, which runs hours off UTC on most servers: search widely.
SEARCH_MARGIN: Final = timedelta(days=2)


HASH_CHARACTERS: Final = 10  # hex digits of the id's hash: 40 bits, for ids cut to fit


def job_tag(job_id: str, width: int) -> str:
    """``job_id`` itself when it fits in ``width`` characters, else its start, ``~`` and its hash."""
    if len(job_id) <= width:
        return job_id
    digest = hashlib.blake2b(job_id.encode("utf-8"), digest_size=HASH_CHARACTERS // 2).hexdigest()
    return f"{job_id[: width - HASH_CHARACTERS - 1]}~{digest}"


def order_comment(job_id: str, comment: str | None = None) -> str:
    """The comment a job's order carries (see the module docstring)."""
    if not comment:
        return f"{JOB_TAG}{job_tag(job_id, ID_CHARACTERS)}"
    tag = f"{JOB_TAG}{job_tag(job_id, ID_CHARACTERS_WITH_COMMENT)}"
    room = COMMENT_LENGTH - len(tag) - 1
    return f"{comment[:room].rstrip()} {tag}"


async def deals_with_comment(
    broker: Broker, comment: str, since: datetime, now: datetime, *, position: int | None = None
) -> tuple[Deal, ...]:
    """The deals whose comment is ``comment``, made between ``since`` and ``now`` (widened by
    SEARCH_MARGIN), or of ``position`` when given; oldest first."""
    if position is not None:
        found = await broker.deals(since - SEARCH_MARGIN, now + SEARCH_MARGIN, position=position)
    else:
        found = await broker.deals(since - SEARCH_MARGIN, now + SEARCH_MARGIN)
    return tuple(sorted((d for d in found if d.comment == comment), key=lambda d: (d.time, d.ticket)))


def _average_price(deals: Sequence[Deal]) -> float:
    volume = sum(d.volume for d in deals)
    if volume <= 0:
        return deals[-1].price
    return sum(d.price * d.volume for d in deals) / volume


def fill_output(fill_price: float, order_id: int, ticket: int) -> dict[str, Any]:
    """A trade job's output_data (INTERFACE.md): however the fill was found, the same shape."""
    return {"fill_price": fill_price, "order_id": order_id, "ticket": ticket}


def trade_output(deals: Sequence[Deal]) -> dict[str, Any]:
    """A trade job's output_data from the deal(s) its order made (several when filled in parts)."""
    if not deals:
        raise ValueError("trade_output needs at least one deal")
    first = deals[0]
    return fill_output(_average_price(deals), first.order, first.position_id)


def close_output(deals: Sequence[Deal]) -> dict[str, Any]:
    """A close_position job's output_data: the closing price and the result net of costs."""
    if not deals:
        raise ValueError("close_output needs at least one deal")
    return {"closed_price": _average_price(deals), "pnl": round(sum(deal_result(d) for d in deals), 2)}
