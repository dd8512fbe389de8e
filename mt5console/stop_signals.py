"""Stopping cleanly on the signals a console or a service gets, for both front ends.

- SIGTERM: a service manager's stop, ``kill``;
- SIGHUP: the SSH or RDP session that held the console went away;
- SIGINT: Ctrl-C (the headless console; the Textual console reads Ctrl-C as a key);
- SIGBREAK: Ctrl-Break on Windows, which service wrappers send.

A signal the console was started with ignored (``nohup`` ignores SIGHUP) stays ignored: whoever started it
asked for that. The loop's own handlers are POSIX only: on Windows, the MetaTrader5 package's platform,
``add_signal_handler`` raises NotImplementedError, and there a plain signal handler hands the signal to the
loop (it runs between bytecodes, so it only schedules the stop).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

HEADLESS_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
CONSOLE_SIGNALS = ("SIGTERM", "SIGHUP", "SIGBREAK")

_Handler = Callable[[int, FrameType | None], Any] | int | None


def on_stop_signals(
    loop: asyncio.AbstractEventLoop, names: Sequence[str], stop: Callable[[str], None]
) -> Callable[[], None]:
    """Calls ``stop(signal name)`` on the loop when one of ``names`` (those this platform has) arrives;
    returns what puts the earlier handlers back."""
    on_loop: list[int] = []
    replaced: dict[int, _Handler] = {}
    for name in names:
        signum = getattr(signal, name, None)
        if signum is None or signal.getsignal(signum) == signal.SIG_IGN:
            continue
        try:
            loop.add_signal_handler(signum, stop, name)
            on_loop.append(signum)
        except NotImplementedError:
            replaced[signum] = signal.signal(signum, _handing_to(loop, stop, name))

    def restore() -> None:
        for signum in on_loop:
            loop.remove_signal_handler(signum)
        for signum, handler in replaced.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    return restore


def _handing_to(
    loop: asyncio.AbstractEventLoop, stop: Callable[[str], None], name: str
) -> Callable[[int, FrameType | None], None]:
    def hand_to_loop(_signum: int, _frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop, name)

    return hand_to_loop
