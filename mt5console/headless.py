"""``mt5console --no-ui``: the runtime with one line per event on stdout; Ctrl-C stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TextIO

from mt5console.core.events import Event
from mt5console.core.logsink import FrontEndLines, format_line
from mt5console.core.runtime import Runtime, StartupError
from mt5console.core.settings import Settings

STOP_TIMEOUT = 1.5  # seconds; INTERFACE.md promises a stop within 2 s of Ctrl-C
# Ctrl-C, a service manager's stop and, on Windows, Ctrl-Break (a console's or a service wrapper's stop)
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name)
)


class LinePrinter:
    """Prints the core's log lines (the core logs every open, close and refusal); with verbose, DEBUG
    lines and a prices line a minute (``FrontEndLines``, as the console's log pane)."""

    def __init__(self, stream: TextIO, *, verbose: bool) -> None:
        self._stream = stream
        self._lines = FrontEndLines(verbose=verbose)

    def __call__(self, event: Event) -> None:
        line = self._lines.line(event)
        if line is None:
            return
        self._stream.write(format_line(line) + "\n")
        self._stream.flush()


async def run(settings: Settings, stream: TextIO = sys.stdout) -> int:
    runtime = Runtime(settings)
    runtime.subscribe(LinePrinter(stream, verbose=settings.verbose))
    stop = asyncio.Event()
    with stop_on_signals(asyncio.get_running_loop(), stop):
        return await _run_until_stopped(runtime, stop, stream)


@contextlib.contextmanager
def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Iterator[None]:
    """Sets ``stop`` on each of STOP_SIGNALS while inside, and puts the earlier handlers back after.

    The loop's own handlers are POSIX only: on Windows, the MetaTrader5 package's platform, a service
    runs there and ``add_signal_handler`` raises NotImplementedError. There a plain signal handler
    hands the signal to the loop (it runs between bytecodes, so it must not touch the Event itself)."""
    on_loop: list[int] = []
    replaced: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def hand_to_loop(_signum: int, _frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, stop.set)
            on_loop.append(signum)
        except NotImplementedError:
            replaced[signum] = signal.signal(signum, hand_to_loop)
    try:
        yield
    finally:
        for signum in on_loop:
            loop.remove_signal_handler(signum)
        for signum, handler in replaced.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


async def _run_until_stopped(runtime: Runtime, stop: asyncio.Event, stream: TextIO) -> int:
    starting = asyncio.ensure_future(runtime.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # Ctrl-C while still connecting
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await runtime.stop()
        return 0
    stopping.cancel()
    try:
        starting.result()
    except StartupError as error:
        print(f"mt5console: {error}", file=sys.stderr)
        return error.exit_code
    failed = asyncio.ensure_future(runtime.failed.wait())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
    failed.cancel()
    stopped.cancel()
    try:
        await asyncio.wait_for(runtime.stop(), timeout=STOP_TIMEOUT)
    except TimeoutError:
        stream.write("mt5console: stop took too long; exiting anyway\n")
    return 1 if runtime.failed.is_set() else 0


def main(settings: Settings) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Redirected to a file, as under a service manager, stdout has the locale's encoding (a
        # Windows code page): a strategy or symbol name outside it would lose its whole log line.
        sys.stdout.reconfigure(errors="backslashreplace")
    return asyncio.run(run(settings))
