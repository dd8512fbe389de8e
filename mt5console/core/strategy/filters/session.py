"""The session filter: entries only while one of the allowed trading sessions is open.

Sessions are fixed UTC hours (STRATEGY_FORMAT.md), start inclusive, end exclusive; Sydney wraps
midnight. Daylight saving is not modelled: the format defines the hours in UTC, so they stay put.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Final

from mt5console.core.strategy.filters.context import FilterContext, FilterVerdict, format_utc
from mt5console.core.strategy.model_types import SessionFilter, TradingSession

NAME: Final = "sessionFilter"

# (start inclusive, end exclusive) in UTC; an end before the start wraps past midnight.
SESSION_HOURS: Final[dict[TradingSession, tuple[time, time]]] = {
    TradingSession.SYDNEY: (time(21), time(6)),
    TradingSession.TOKYO: (time(0), time(9)),
    TradingSession.LONDON: (time(7), time(16)),
    TradingSession.NEW_YORK: (time(12), time(21)),
}


def in_session(session: TradingSession, moment: datetime) -> bool:
    """Whether ``session`` is open at the timezone-aware ``moment``."""
    start, end = SESSION_HOURS[session]
    clock = moment.astimezone(UTC).time()
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end  # wraps midnight


def open_sessions(moment: datetime) -> tuple[TradingSession, ...]:
    """Every session open at ``moment``, in the format's order."""
    return tuple(session for session in SESSION_HOURS if in_session(session, moment))


def check_session(rule: SessionFilter, ctx: FilterContext) -> FilterVerdict:
    """Passes when ``ctx.now`` lies in ANY of the allowed sessions."""
    now = format_utc(ctx.now)
    if not rule.sessions:
        return FilterVerdict(False, NAME, f"no session is allowed (now {now})")
    inside = [session for session in rule.sessions if in_session(session, ctx.now)]
    if inside:
        return FilterVerdict(True, NAME, f"in session {', '.join(inside)} (now {now})")
    return FilterVerdict(False, NAME, f"outside sessions {', '.join(rule.sessions)} (now {now})")
