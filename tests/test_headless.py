"""``mt5console --no-ui`` as a user runs it: a real process, real signals, real files."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mt5console.core.broker.sim import SimTerminal
from tests.helpers import always_buy

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MT5C_", "WE_V2_"))}


class Console:
    """A real ``mt5console`` process whose output is read on a thread, so a silent process fails
    the test with what it printed instead of blocking it."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None, launcher: str = "") -> None:
        """``launcher``: Python code run instead of ``-m mt5console.cli``, which then calls the cli."""
        start = ["-c", launcher, *args] if launcher else ["-m", "mt5console.cli", *args]
        self.process = subprocess.Popen(
            [sys.executable, *start],
            cwd=cwd,
            env=ENV | (env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, needle: str, timeout: float = 30) -> list[str]:
        """Lines read until one contains ``needle``."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if needle in line:
                return self.seen[start:]
        self.kill()
        raise AssertionError(f"never saw {needle!r}; output:\n" + "\n".join(self.seen))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 5) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"]
)
def test_starts_prints_the_account_and_stops_on_a_signal(tmp_path: Path, signum: int) -> None:
    process = Console("--no-ui", "--broker", "sim", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    try:
        text = "\n".join(process.wait_for("ready:"))
        assert "SIMULATED" in text
        assert "balance 10,000.00 USD" in text
        process.signal(signum)
        started = time.monotonic()
        code = process.wait()
        assert time.monotonic() - started < 2.0
        assert code == 0
    finally:
        process.kill()
    assert (tmp_path / "data" / "mt5console.db").exists()
    log = (tmp_path / "data" / "logs" / "mt5console.log").read_text()
    assert "balance" in log and "stopped" in log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker", "foo"], "--broker: 'foo' is not one of auto, sim, mt5, mt5linux"),
        (["--max-lot", "abc"], "--max-lot"),
        (["--sim-seed", "x"], "--sim-seed"),
        (["--no-such-option"], "--no-such-option"),
    ],
)
def test_bad_options_exit_2_with_a_message_naming_them(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mt5console.cli", "--no-ui", *args],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr + result.stdout


def test_version_and_help(tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "mt5console.cli", "--version"], capture_output=True, text=True, env=ENV
    )
    assert version.returncode == 0 and version.stdout.startswith("mt5console ")
    help_ = subprocess.run(
        [sys.executable, "-m", "mt5console.cli", "--help"], capture_output=True, text=True, env=ENV
    )
    assert help_.returncode == 0
    for option in ("--no-ui", "--broker", "--sim-state", "--max-lot", "--strategies"):
        assert option in help_.stdout


def test_positions_survive_a_kill_9_of_the_console(tmp_path: Path) -> None:
    state = tmp_path / "sim_state.db"
    terminal = SimTerminal(seed=5, state_path=state)
    assert terminal.initialize()
    result = terminal.order_send(
        {
            "action": terminal.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.05,
            "type": terminal.ORDER_TYPE_BUY,
            "price": terminal.symbol_info_tick("EURUSD").ask,
            "deviation": 20,
            "magic": 0,
            "comment": "opened by hand",
        }
    )
    assert result.retcode == terminal.TRADE_RETCODE_DONE
    ticket = result.order
    terminal.shutdown()
    data = str(tmp_path / "data")
    args = ("--no-ui", "--broker", "sim", "--data-dir", data, "--sim-state", str(state))
    first = Console(*args, cwd=tmp_path)
    first.wait_for(f"found open position #{ticket}")
    first.signal(signal.SIGKILL)
    first.wait()
    second = Console(*args, cwd=tmp_path)
    try:
        lines = second.wait_for("ready:")
        assert "1 position(s) open" in lines[-1]
        second.signal(signal.SIGINT)
        assert second.wait() == 0
    finally:
        second.kill()
    again = SimTerminal(seed=5, state_path=state)
    assert again.initialize()
    assert [p.ticket for p in again.positions_get()] == [ticket]
    assert "found open position" not in "\n".join(lines)  # the database remembered it: no re-adoption
    again.shutdown()


def test_a_second_console_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    # Two consoles on one data dir would run (and trade) the same strategies twice.
    args = ("--no-ui", "--broker", "sim", "--data-dir", str(tmp_path / "data"))
    first = Console(*args, cwd=tmp_path)
    try:
        first.wait_for("ready:")
        second = subprocess.run(
            [sys.executable, "-m", "mt5console.cli", *args],
            cwd=tmp_path,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert f"is in use by another mt5console (pid {first.process.pid}, started" in second.stderr
        assert "give this one another --data-dir" in second.stderr
        assert first.process.poll() is None  # the first runs on, untouched
        first.signal(signal.SIGINT)
        assert first.wait() == 0
    finally:
        first.kill()
    third = Console(*args, cwd=tmp_path)  # freed when the first stopped
    try:
        third.wait_for("ready:")
        third.signal(signal.SIGINT)
        assert third.wait() == 0
    finally:
        third.kill()


def test_strategies_from_files_start_at_launch(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(always_buy("from_file")))
    (folder / "b.json").write_text("{not json")
    process = Console(
        "--no-ui",
        "--broker",
        "sim",
        "--data-dir",
        str(tmp_path / "d"),
        "--strategies",
        str(folder),
        cwd=tmp_path,
    )
    try:
        lines = process.wait_for("ready:")
        process.signal(signal.SIGINT)
        assert process.wait() == 0
    finally:
        process.kill()
    assert any("invalid JSON at line 1" in line and "b.json" in line for line in lines)
    assert any("started from file a.json" in line for line in lines)


# The console as it starts on Windows, where the asyncio loop has no signal handlers of its own.
WINDOWS_LIKE_LOOP = """
import asyncio.unix_events, sys
def no_loop_signals(*args, **kwargs):
    raise NotImplementedError
asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = no_loop_signals
from mt5console.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stops_cleanly_on_a_signal_where_the_loop_has_no_signal_handlers(tmp_path: Path, signum: int) -> None:
    process = Console(
        "--no-ui",
        "--broker",
        "sim",
        "--data-dir",
        str(tmp_path / "data"),
        cwd=tmp_path,
        launcher=WINDOWS_LIKE_LOOP,
    )
    try:
        process.wait_for("ready:")
        process.signal(signum)
        assert process.wait() == 0
        assert "stopped" in "\n".join(process.wait_for("stopped"))
    finally:
        process.kill()


def test_a_name_outside_the_output_encoding_keeps_its_log_line(tmp_path: Path) -> None:
    """Under a service manager stdout is a file in the locale's code page; a Cyrillic strategy name must
    not cost the trader the line that says it started."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    strategy = always_buy("cyrillic") | {"strategyName": "Импульс"}
    (folder / "s.json").write_text(json.dumps(strategy, ensure_ascii=False), encoding="utf-8")
    process = Console(
        "--no-ui",
        "--broker",
        "sim",
        "--data-dir",
        str(tmp_path / "data"),
        "--strategies",
        str(folder),
        cwd=tmp_path,
        env={"PYTHONIOENCODING": "cp1252"},
    )
    try:
        lines = process.wait_for("ready:")
        process.signal(signal.SIGINT)
        assert process.wait() == 0
    finally:
        process.kill()
    started = [line for line in lines if "started from file s.json" in line]
    assert started and "\\u0418\\u043c\\u043f" in started[0], lines
    assert not any("failed on LogLine" in line for line in lines), lines


NOHUP = """
import signal, sys
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts it
from mt5console.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_hangup_ignored_by_whoever_started_it_stays_ignored(tmp_path: Path) -> None:
    process = Console(
        "--no-ui", "--broker", "sim", "--data-dir", str(tmp_path / "data"), cwd=tmp_path, launcher=NOHUP
    )
    try:
        process.wait_for("ready:")
        process.signal(signal.SIGHUP)
        time.sleep(1.0)
        assert process.process.poll() is None, "the console stopped on a hangup nohup asked it to ignore"
        process.signal(signal.SIGINT)
        assert process.wait() == 0
        assert "received SIGINT" in "\n".join(process.wait_for("stopped"))
    finally:
        process.kill()
