"""The Textual messages the console's parts exchange.

The core publishes its typed events on its EventBus; the app subscribes once and turns each into a
``CoreEvent`` message on its own queue, so the panes are updated in Textual's message order and the
core never knows a UI exists.
"""

from __future__ import annotations

from textual.message import Message

from mt5console.core.events import Event


class CoreEvent(Message):
    """One event of the core, delivered on the app's message queue."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class RuntimeReady(Message):
    """The runtime started: the engine, command bus and store exist from now on."""


class RuntimeStopped(Message):
    """The runtime stopped (the console is quitting)."""
