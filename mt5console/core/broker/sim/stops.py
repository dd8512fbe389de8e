"""Finding the ticks at which stop losses and take profits trigger.

On ticks (the walk): a buy's SL triggers when the bid falls to it,
its TP when the bid rises to it, and it closes at that bid; a sell's SL triggers when the ask rises
to it, its TP when the ask falls to it, closing at that ask. Each position is checked on the ticks
after its last change. Spans of time whose bid range cannot reach any level are skipped unread, so a
terminal restarted after days finds the hits of the time it was away quickly.

On replayed bars, stepped (``finish_bar``, ``advance_to``) or in real time, see ``first_bar_hit``
and ``replay_hits``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim.bar_prices import BarPrices
from mt5console.core.broker.sim.bookkeeping import Hit
from mt5console.core.broker.sim.feed import Feed, Span, Ticks
from mt5console.core.broker.sim.replay import ReplayFeed
from mt5console.core.broker.sim.state import OpenPosition

# Below every price: a level compared against it is never reached.
_NEVER = -math.inf


def _may_trigger(position: OpenPosition, span: Span, max_spread: float) -> bool:
    sl, tp = position.sl, position.tp
    if position.is_buy:
        return bool((sl and span.low <= sl) or (tp and span.high >= tp))
    return bool((sl and span.high + max_spread >= sl) or (tp and span.low <= tp))


def tick_hits(positions: Iterable[OpenPosition], feed: Feed, since_msc: int, until_msc: int) -> list[Hit]:
    """The first SL/TP hit of each position on the feed's ticks in (start, until_msc].

    A position's ``start`` is the later of since_msc and its last change (opening, SL/TP change).
    """
    waiting = {p.ticket: p for p in positions if (p.sl or p.tp)}
    if not waiting or until_msc <= since_msc:
        return []
    start = {t: max(since_msc, p.time_update_msc) for t, p in waiting.items()}
    hits: list[Hit] = []
    max_spread = feed.max_spread()
    for span in feed.spans(min(start.values()), until_msc):
        candidates = [
            p for t, p in waiting.items() if start[t] < span.end_ms - 1 and _may_trigger(p, span, max_spread)
        ]
        if not candidates:
            continue
        first = min(start[p.ticket] for p in candidates)
        ticks = feed.ticks(max(span.start_ms - 1, first), min(span.end_ms - 1, until_msc))
        for position in candidates:
            hit = _tick_hit(position, ticks.between(start[position.ticket], until_msc))
            if hit is not None:
                hits.append(hit)
                del waiting[position.ticket]
        if not waiting:
            break
    return hits


def _bar_decision(position: OpenPosition, prices: BarPrices, bar: int, stop_reached: bool) -> Hit:
    """The bar rule on a bar reaching the position's stop (``stop_reached``) or else its target.

    In the rule's order: a target gapped through at the open, a stop gapped through at the open, a
    stop inside the bar, a target inside the bar (a gap is also inside: an open beyond a level is
    beyond it for the bar's high or low). ``.item()`` reads a Python number straight from its
    column, no numpy scalar on the way.
    """
    ticket, sl, tp = position.ticket, position.sl, position.tp
    if position.type == c.POSITION_TYPE_BUY:  # judged on the bid
        o = prices.bid_open.item(bar)
        if tp and o >= tp:
            return (ticket, prices.open_ms.item(bar), o, c.DEAL_REASON_TP)
        if sl and o <= sl:
            return (ticket, prices.open_ms.item(bar), o, c.DEAL_REASON_SL)
        if stop_reached:
            return (ticket, prices.low_ms.item(bar), sl, c.DEAL_REASON_SL)
        return (ticket, prices.high_ms.item(bar), tp, c.DEAL_REASON_TP)
    o = prices.ask_open.item(bar)  # a sell, judged on the ask
    if tp and o <= tp:
        return (ticket, prices.open_ms.item(bar), o, c.DEAL_REASON_TP)
    if sl and o >= sl:
        return (ticket, prices.open_ms.item(bar), o, c.DEAL_REASON_SL)
    if stop_reached:
        return (ticket, prices.high_ms.item(bar), sl, c.DEAL_REASON_SL)
    return (ticket, prices.low_ms.item(bar), tp, c.DEAL_REASON_TP)


def first_bar_hit(position: OpenPosition, prices: BarPrices, start: int, stop: int) -> tuple[int, Hit] | None:
    """The first bar in [start, stop) whose open, high or low reaches the position's SL or TP, and the
    hit the bar rule makes of it (the replay rule, for ``finish_bar`` and ``advance_to`` alike):

    - A level the bar OPENS beyond (a gap) fills at the open (the ask's open for sells).
    - Otherwise a level inside the bar's range fills at the level itself.
    - When both SL and TP lie inside the bar, the STOP is taken: the bar does not say which came
      first, and assuming the worst keeps backtests honest. A TP gapped through at the open comes
      first, though, since the open is the bar's first price.
    A sell is judged on the ask: the bar's bid prices plus its spread (as its ticks' asks).
    The bars are searched with one numpy comparison for both levels, which also tells whether the
    bar found reaches the stop; the scalar rule above then decides it, so a range and a bar at a
    time cannot disagree.
    """
    sl, tp = position.sl, position.tp
    if not (sl or tp) or stop <= start:
        return None
    # An open beyond a level is also beyond it for the bar's high or low: those two suffice to find
    # the bar. A buy's stop is reached by a low at or below it, its target by a high at or above it
    # (see BarPrices.buy_reach); a level not set is never reached.
    limits = prices.limits
    if position.type == c.POSITION_TYPE_BUY:
        reach = prices.buy_reach
        limits[0], limits[1] = sl if sl else _NEVER, -tp if tp else _NEVER
    else:
        reach = prices.sell_reach
        limits[0], limits[1] = -sl if sl else _NEVER, tp if tp else _NEVER
    reached = reach[start:stop] <= limits  # per bar: [stop reached, target reached]
    first = int(reached.argmax())  # the first True, row by row, or 0 when there is none
    if not reached.item(first):
        return None
    offset, column = divmod(first, 2)  # the first True of its row: column 0 when the stop is reached
    bar = start + offset
    return bar, _bar_decision(position, prices, bar, stop_reached=column == 0)


def bar_hits(positions: Iterable[OpenPosition], prices: BarPrices, bar: int) -> list[Hit]:
    """SL/TP hits within one replayed bar (``finish_bar``): the bar rule of ``first_bar_hit``."""
    hits: list[Hit] = []
    for position in positions:
        found = first_bar_hit(position, prices, bar, bar + 1)
        if found is not None:
            hits.append(found[1])
    return hits


def _tick_hit(position: OpenPosition, ticks: Ticks) -> Hit | None:
    """The first of ``ticks`` reaching the position's SL or TP, filled at that tick's price."""
    prices = ticks.bid if position.is_buy else ticks.ask
    sl, tp = position.sl, position.tp
    none = np.zeros(prices.size, dtype=np.bool_)
    if position.is_buy:
        sl_hit = prices <= sl if sl else none
        tp_hit = prices >= tp if tp else none
    else:
        sl_hit = prices >= sl if sl else none
        tp_hit = prices <= tp if tp else none
    triggered = np.flatnonzero(sl_hit | tp_hit)
    if not triggered.size:
        return None
    i = int(triggered[0])
    reason = c.DEAL_REASON_SL if sl_hit[i] else c.DEAL_REASON_TP
    return (position.ticket, int(ticks.time_msc[i]), float(prices[i]), reason)


def replay_hits(
    positions: Iterable[OpenPosition], feed: ReplayFeed, since_msc: int, until_msc: int
) -> list[Hit]:
    """SL/TP hits on replayed bars released in real time, in (since_msc, until_msc].

    The same bar rule as the stepped replay, so that the live engine on replayed bars trades as
    ``mt5console replay`` does: a bar is judged as a whole (stop first) for every position that was
    open, with its levels unchanged, before the bar's first extreme tick; its hit is executed once the
    clock has passed the hit's time, and a gap once the clock has passed that first extreme (the
    stepped replay lets the engine act on a bar's open before it judges the bar). A position opened
    or changed later inside a bar meets that bar's remaining ticks one by one, filled at each
    tick's price, as on any tick feed; from the next bar on, the bar rule applies to it.
    """
    prices = feed.prices
    hits: list[Hit] = []
    last_bar = feed.index_at(until_msc)
    if last_bar < 0 or until_msc <= since_msc:
        return hits
    for position in positions:
        if not (position.sl or position.tp):
            continue
        start = max(since_msc, position.time_update_msc)
        if until_msc <= start:
            continue
        bar = max(feed.index_at(start), 0)
        hit: Hit | None = None
        if position.time_update_msc >= int(prices.first_extreme_ms[bar]):
            # Changed inside this bar, after its first extreme: the rest of its ticks, one by one.
            rest = feed.ticks(start, min(until_msc, int(prices.close_ms[bar])))
            hit = _tick_hit(position, rest)
            bar += 1
        if hit is None and bar <= last_bar:
            found = first_bar_hit(position, prices, bar, last_bar + 1)
            if found is not None:
                found_bar, candidate = found
                due = max(candidate[1], int(prices.first_extreme_ms[found_bar]))
                hit = candidate if due <= until_msc else None
        if hit is not None:
            hits.append(hit)
    return hits
