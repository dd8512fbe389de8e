"""Finding the ticks at which stop losses and take profits trigger.

On ticks (the walk, and replayed bars in real time): a buy's SL triggers when the bid falls to it,
its TP when the bid rises to it, and it closes at that bid; a sell's SL triggers when the ask rises
to it, its TP when the ask falls to it, closing at that ask. Each position is checked on the ticks
after its last change. Spans of time whose bid range cannot reach any level are skipped unread, so a
terminal restarted after days finds the hits of the time it was away quickly.

On a whole replayed bar (``finish_bar``), see ``bar_hits``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim.bookkeeping import Hit
from mt5console.core.broker.sim.feed import Feed, Span
from mt5console.core.broker.sim.replay import ReplayBar
from mt5console.core.broker.sim.state import OpenPosition


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
            after = ticks.between(start[position.ticket], until_msc)
            prices = after.bid if position.is_buy else after.ask
            sl, tp = position.sl, position.tp
            if position.is_buy:
                sl_hit = prices <= sl if sl else np.zeros(prices.size, dtype=bool)
                tp_hit = prices >= tp if tp else np.zeros(prices.size, dtype=bool)
            else:
                sl_hit = prices >= sl if sl else np.zeros(prices.size, dtype=bool)
                tp_hit = prices <= tp if tp else np.zeros(prices.size, dtype=bool)
            triggered = np.flatnonzero(sl_hit | tp_hit)
            if triggered.size:
                i = int(triggered[0])
                reason = c.DEAL_REASON_SL if sl_hit[i] else c.DEAL_REASON_TP
                hits.append((position.ticket, int(after.time_msc[i]), float(prices[i]), reason))
                del waiting[position.ticket]
        if not waiting:
            break
    return hits


def bar_hits(positions: Iterable[OpenPosition], bar: ReplayBar, digits: int) -> list[Hit]:
    """SL/TP hits within one replayed bar, judged on its open, high and low (the replay rule).

    - A level the bar OPENS beyond (a gap) fills at the open (the ask's open for sells).
    - Otherwise a level inside the bar's range fills at the level itself.
    - When both SL and TP lie inside the bar, the STOP is taken: the bar does not say which came
      first, and assuming the worst keeps backtests honest. A TP gapped through at the open comes
      first, though, since the open is the bar's first price.
    A sell is judged on the ask: the bar's bid prices plus its spread.
    """
    hits: list[Hit] = []
    for p in positions:
        shift = 0.0 if p.is_buy else bar.spread
        o, h, low = (round(x + shift, digits) for x in (bar.open, bar.high, bar.low))
        sl, tp = p.sl, p.tp
        if p.is_buy:
            sl_gap, tp_gap = bool(sl and o <= sl), bool(tp and o >= tp)
            sl_in, tp_in = bool(sl and low <= sl), bool(tp and h >= tp)
            sl_ms, tp_ms = bar.low_ms, bar.high_ms
        else:
            sl_gap, tp_gap = bool(sl and o >= sl), bool(tp and o <= tp)
            sl_in, tp_in = bool(sl and h >= sl), bool(tp and low <= tp)
            sl_ms, tp_ms = bar.high_ms, bar.low_ms
        if tp_gap:
            hits.append((p.ticket, bar.open_ms, o, c.DEAL_REASON_TP))
        elif sl_gap:
            hits.append((p.ticket, bar.open_ms, o, c.DEAL_REASON_SL))
        elif sl_in:
            hits.append((p.ticket, sl_ms, sl, c.DEAL_REASON_SL))
        elif tp_in:
            hits.append((p.ticket, tp_ms, tp, c.DEAL_REASON_TP))
    return hits
