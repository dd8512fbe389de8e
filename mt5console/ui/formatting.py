"""How numbers, prices and times read on screen: one place, so every pane says them the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError
from textual.widget import Widget

DASH = "—"


@dataclass(frozen=True, slots=True)
class Palette:
    """Rich styles for cells and lines, taken from the active theme's variables."""

    profit: Style
    loss: Style
    warning: Style
    error: Style
    muted: Style
    accent: Style

    @classmethod
    def from_variables(cls, variables: dict[str, str]) -> Palette:
        def parse(name: str, fallback: str) -> Color:
            try:
                return Color.parse(variables.get(name, fallback))
            except ColorParseError:
                return Color.parse(fallback)

        def colour(name: str, fallback: str) -> Style:
            return Style(color=parse(name, fallback).rich_color)

        # Muted text: the foreground 45 % of the way to the background (alpha is lost in Rich styles).
        muted = parse("foreground", "#E0E0E0").blend(parse("background", "#000000"), 0.45)
        return cls(
            profit=colour("profit", "green"),
            loss=colour("loss", "red"),
            warning=colour("warning", "yellow"),
            error=colour("error", "red"),
            muted=Style(color=muted.rich_color),
            accent=colour("accent", "yellow"),
        )


DEFAULT_PALETTE = Palette(
    profit=Style(color="green"),
    loss=Style(color="red"),
    warning=Style(color="yellow"),
    error=Style(color="red"),
    muted=Style(color="grey50"),
    accent=Style(color="yellow"),
)


def money(value: float) -> str:
    return f"{value:,.2f}"


def signed_money(value: float) -> str:
    return f"{value:+,.2f}" if round(value, 2) != 0 else "0.00"


def pnl(value: float, palette: Palette, *, bold: bool = False) -> Text:
    """A profit or loss, right aligned and coloured: green above zero, red below, plain at zero."""
    rounded = round(value, 2)
    style = palette.profit if rounded > 0 else palette.loss if rounded < 0 else Style()
    if bold:
        style = style + Style(bold=True)
    return Text(signed_money(value), style=style, justify="right")


def lots(volume: float) -> str:
    return f"{volume:.2f}"


def price(value: float, digits: int | None = None) -> str:
    """A price with the symbol's digits when known; 0 (no SL/TP, as in MT5) shows as a dash."""
    if value == 0:
        return DASH
    if digits is None:
        digits = 5 if value < 10 else 3 if value < 1000 else 2
    return f"{value:.{digits}f}"


def clock_time(moment: datetime | None) -> str:
    return DASH if moment is None else moment.strftime("%H:%M:%S")


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago, short: '12s', '4m', '3h', '2d'."""
    if moment is None:
        return DASH
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def set_title(widget: Widget, title: str) -> None:
    """Set a border title only when it changed: every assignment repaints the whole widget.

    Given as Text so that what it quotes (a filter the user typed) is never read as markup."""
    if getattr(widget, "_plain_title", None) != title:
        widget._plain_title = title  # type: ignore[attr-defined]
        widget.border_title = Text(title)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
