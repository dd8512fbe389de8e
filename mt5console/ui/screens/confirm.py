"""Dialogs that stand between a key and an action that moves money or ends the session."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

DIALOG_CSS = """
{name} {
    align: center middle;
    background: $background 60%;
}
{name} > Vertical {
    width: auto;
    max-width: 76;
    min-width: 40;
    height: auto;
    border: thick $primary;
    background: $surface;
    padding: 1 2;
}
{name} .title {
    text-style: bold;
    width: 1fr;
    margin-bottom: 1;
}
{name} .body {
    width: 1fr;
    margin-bottom: 1;
}
{name} Horizontal {
    height: auto;
    width: auto;
}
{name} Button {
    margin-right: 1;
}
"""


def key_label(text: str, key: str) -> Content:
    """A button's label naming its key, as plain text: a ``str`` label is read as markup, where
    ``[y]`` is a style tag and vanishes, leaving the user to guess which key answers."""
    return Content(f"{text} [{key}]")


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no. ``y`` or Enter on Yes confirms; ``n`` or Escape declines."""

    DEFAULT_CSS = DIALOG_CSS.replace("{name}", "ConfirmScreen")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self._question = title
        self._detail = body
        self._yes = yes
        self._no = no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._question, classes="title")
            yield Static(self._detail, classes="body")
            with Horizontal():
                yield Button(key_label(self._yes, "y"), variant="error", id="yes")
                yield Button(key_label(self._no, "n"), variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class KillSwitchScreen(ModalScreen[bool | None]):
    """Stop ALL strategies: keep their positions (``k``), close them too (``c``), or cancel (Escape).

    Dismissed with False (keep), True (close) or None (cancel).
    """

    DEFAULT_CSS = DIALOG_CSS.replace("{name}", "KillSwitchScreen")
    BINDINGS = [
        Binding("k", "answer('keep')", "Stop, keep positions"),
        Binding("c", "answer('close')", "Stop and close positions"),
        Binding("escape", "answer('cancel')", "Cancel"),
    ]

    def __init__(self, running: int, positions: int, *, theirs: int) -> None:
        """``theirs``: how many of the open ``positions`` the running strategies own (what "close"
        closes)."""
        super().__init__()
        self._strategy_count = running
        self._position_count = positions
        self._their_count = theirs

    def compose(self) -> ComposeResult:
        strategies = f"{self._strategy_count} strateg{'y' if self._strategy_count == 1 else 'ies'}"
        with Vertical():
            yield Label("KILL SWITCH: stop all strategies", classes="title")
            yield Static(
                f"{strategies} will stop at once and open no new position.\n"
                f"Close their open positions too? ({self._their_count} of the {self._position_count} "
                "position(s) open in the terminal are theirs; the others stay open either way.)",
                classes="body",
            )
            with Horizontal():
                yield Button(key_label("Stop, keep positions", "k"), variant="warning", id="keep")
                yield Button(key_label("Stop and close", "c"), variant="error", id="close")
                yield Button(key_label("Cancel", "esc"), variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id or "cancel")

    def action_answer(self, answer: str) -> None:
        self.dismiss({"keep": False, "close": True}.get(answer))
