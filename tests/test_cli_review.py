"""Review fixes of the command line: --help keeps its layout, short secrets are not masked (they
garbled every line) but warned about, and an unreachable mt5linux bridge is named."""

from __future__ import annotations

import socket
import sys
import types
from collections import deque
from pathlib import Path

import pytest

from mt5console.cli import USAGE, main
from mt5console.core.broker.connect import module_factory
from mt5console.core.events import EventBus, LogLine, mask_secrets
from mt5console.core.settings import Settings


def test_help_keeps_the_lines_of_its_epilog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out.splitlines()
    for line in USAGE.splitlines():
        assert line in printed  # each form of the command on its own line, as written
    assert printed[0] == "usage: mt5console [runtime options]   (every form of the command: at the end)"
    assert "  --max-lot MAX_LOT     largest volume of one order [MT5C_MAX_LOT]" in printed


def lines_of(events: EventBus) -> list[str]:
    lines: list[str] = []
    events.subscribe(lambda e: lines.append(e.message) if isinstance(e, LogLine) else None)
    return lines


def test_a_secret_too_short_to_mask_is_warned_about_once_and_never_garbles_lines() -> None:
    events = EventBus()
    lines = lines_of(events)
    events.set_secrets(("S", "pairing-key-1234"))
    events.set_secrets(("S", "pairing-key-1234", "issued-key-5678"))  # again after pairing: no repeat
    events.info("runtime", "starting: broker sim (SIMULATED), EURUSD; key pairing-key-1234 issued-key-5678")
    assert len(lines) == 2
    assert lines[0] == (
        "a secret (MT5 password, pairing key or Pusher secret) is shorter than 4 characters: too short to "
        "be masked without garbling every log line, it may show in the logs; use a longer one"
    )
    assert lines[1] == "starting: broker sim (SIMULATED), EURUSD; key *** ***"
    assert events.secrets == ("pairing-key-1234", "issued-key-5678")
    # Set before anyone listens (the runtime does so before a front end subscribes): said to the first.
    early = EventBus()
    early.set_secrets(("S",))
    assert early.log_history == deque()
    said = lines_of(early)
    early.set_secrets(("S",))
    assert said == [lines[0]] and [line.message for line in early.log_history] == said


def test_a_secret_that_holds_another_is_masked_whole() -> None:
    assert mask_secrets("a abcd-efgh-ijkl b", ["abcd", "abcd-efgh-ijkl", None, "xy"]) == "a *** b"
    assert mask_secrets("xy and abc", ["xy", "abc"]) == "xy and abc"


def test_an_unreachable_mt5linux_bridge_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A port nobody listens on (bound, never listening), and a bridge module that connects as
    # rpyc does, when its MetaTrader5 object is made.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]

    class Bridge:
        def __init__(self, host: str, port: int) -> None:
            socket.create_connection((host, port), timeout=5).close()

    monkeypatch.setitem(sys.modules, "mt5linux", types.SimpleNamespace(MetaTrader5=Bridge))
    settings = Settings(broker="mt5linux", mt5_host="127.0.0.1", mt5_port=port, data_dir=tmp_path)
    try:
        with pytest.raises(ConnectionError) as caught:
            module_factory(settings)()
    finally:
        blocker.close()
    assert str(caught.value).startswith(f"mt5linux bridge at 127.0.0.1:{port} (--mt5-host, --mt5-port): ")
    assert "refused" in str(caught.value).lower()
