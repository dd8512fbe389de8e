"""The news filter, and the one place that knows the console has no economic calendar.

The format asks for "no entries from ``minutesBefore`` before to ``minutesAfter`` after news of
the given impact", which needs a calendar of scheduled events. The project has no calendar
source, and a news filter that always passed would be a lie about protection the user asked for.
So an ENABLED news filter is refused: ``unsupported_enabled_filters`` returns the message that the
executor (and ``mt5console check``) show, and the executor refuses to start the strategy. Should
``check_news`` be reached anyway it blocks every entry with the same message.

A future calendar source replaces ``NEWS_UNSUPPORTED`` and ``check_news`` here, and nothing else.
"""

from __future__ import annotations

from typing import Final

from mt5console.core.strategy.filters.context import FilterContext, FilterVerdict
from mt5console.core.strategy.model_types import NewsFilter

NAME: Final = "newsFilter"
NEWS_UNSUPPORTED: Final = (
    f"{NAME}: no economic calendar source is configured; the console cannot filter entries by news"
)


def news_support_problem(rule: NewsFilter) -> str | None:
    """Why an enabled news filter cannot run, or None when it is disabled."""
    return NEWS_UNSUPPORTED if rule.enabled else None


def check_news(rule: NewsFilter, ctx: FilterContext) -> FilterVerdict:
    """Blocks: without a calendar no entry can be cleared of news (see the module's notes)."""
    return FilterVerdict(False, NAME, NEWS_UNSUPPORTED.removeprefix(f"{NAME}: "))
