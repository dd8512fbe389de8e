"""``mt5console --no-ui``: the runtime with one line per event on stdout; Ctrl-C stops cleanly."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from mt5console.core.events import Event
from mt5console.core.logsink import FrontEndLines, format_line
from mt5console.core.runtime import Runtime, StartupError
from mt5console.core.settings import Settings
from mt5console.stop_signals import HEADLESS_SIGNALS, on_stop_signals

STOP_TIMEOUT = 1.5  # seconds; INTERFACE.md promises a stop within 2 s of Ctrl-C


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

    def stop_on(name: str) -> None:
        if not stop.is_set():
            runtime.events.info("runtime", f"received {name}")
        stop.set()

    restore = on_stop_signals(asyncio.get_running_loop(), HEADLESS_SIGNALS, stop_on)
    try:
        return await _run_until_stopped(runtime, stop, stream)
    finally:
        restore()


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
    return asyncio.run(run(settings))
