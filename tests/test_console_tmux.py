"""The real ``mt5console`` in a real terminal (tmux): wait for the panes, stop a running strategy with
``s``, read the screen, quit with ``q``; then check the database says who stopped it.

tmux must be installed (the Makefile's test setup installs it with apt-get). Without it the test is
skipped with the reason, except in CI (CI=true), where a missing tmux is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mt5console.core.data_lock import HOLDER_FILE
from mt5console.core.store import Store, StrategyState
from tests.helpers import always_buy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

WIDTH, HEIGHT = 120, 36


def tmux_or_skip() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("tmux is not installed, and CI must run the terminal test (apt-get install tmux)")
        pytest.skip("tmux is not installed (apt-get install tmux); the terminal test needs it")
    return tmux


class Tmux:
    """One tmux server of our own (its own socket), so no other session is ever touched."""

    def __init__(self, tmux: str, root: Path) -> None:
        self.tmux = tmux
        self.socket = f"mt5c-test-{os.getpid()}-{time.monotonic_ns()}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MT5C_", "WE_V2_", "TMUX"))}
        self.env.update(
            XDG_CONFIG_HOME=str(root / "xdg-config"),  # no config file of the user's is read
            XDG_DATA_HOME=str(root / "xdg-data"),
            TERM="xterm-256color",
        )

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [self.tmux, "-L", self.socket, *args], env=self.env, capture_output=True, text=True, timeout=20
        )
        if result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self, command: str, cwd: Path) -> None:
        self.run(
            "new-session", "-d", "-s", "console", "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(cwd), command
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "console")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "console", *keys)

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"never saw {what}; the screen was:\n{screen}")

    def kill(self) -> None:
        subprocess.run(
            [self.tmux, "-L", self.socket, "kill-server"], env=self.env, capture_output=True, timeout=20
        )


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(tmux_or_skip(), tmp_path)
    try:
        yield server
    finally:
        server.kill()


def row_of(screen: str, strategy_id: str) -> str:
    return next((line for line in screen.splitlines() if line.strip().startswith(strategy_id)), "")


def start_with_a_watcher(tmux: Tmux, tmp_path: Path) -> Path:
    """The console on the simulator with one strategy that never enters ("watcher"); returns the file
    its exit status goes to (tmux is sometimes slow to notice that a pane's process ended)."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    watcher = always_buy("watcher", strategyName="Waits forever")
    watcher["rules"]["entry"]["conditions"] = [{"indicator": "close", "condition": "less_than", "value": 0}]
    (folder / "watcher.json").write_text(json.dumps(watcher))
    status_file = tmp_path / "exit-status"
    command = (
        f"{sys.executable} -m mt5console.cli --broker sim --sim-seed 3 --data-dir data "
        f"--strategies strategies --poll-interval 0.5; echo $? > {status_file}"
    )
    tmux.start(command, tmp_path)
    return status_file


def test_s_stops_a_running_strategy_in_the_real_console(tmux: Tmux, tmp_path: Path) -> None:
    status_file = start_with_a_watcher(tmux, tmp_path)
    screen = tmux.wait_for(
        lambda s: "Strategies" in s and "running" in row_of(s, "watcher") and "connected" in s,
        "the panes with the running strategy",
    )
    assert "SIMULATED" in screen and "Positions" in screen and "Log" in screen
    tmux.keys("s")
    screen = tmux.wait_for(lambda s: "stopped" in row_of(s, "watcher"), "the strategy stopped on screen")
    assert "stopped by keyboard" in screen  # the log pane says who stopped it
    tmux.keys("q")
    deadline = time.monotonic() + 20
    while not status_file.exists():
        if "Quit the console?" in tmux.screen():  # only asked while something runs or is open
            tmux.keys("y")
        assert time.monotonic() < deadline, "the console did not quit:\n" + tmux.screen()
        time.sleep(0.2)
    time.sleep(0.1)  # the shell finishes writing the status
    assert status_file.read_text().strip() == "0"
    store = Store(tmp_path / "data" / "mt5console.db")
    try:
        record = store.get_strategy("watcher")
        assert record is not None
        assert (record.state, record.state_reason) == (StrategyState.STOPPED, "stopped by keyboard")
    finally:
        store.close()


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGTERM], [signal.SIGHUP], [signal.SIGTERM, signal.SIGHUP]],
    ids=["SIGTERM", "SIGHUP", "SIGTERM then SIGHUP"],  # a service stop as the SSH session drops
)
def test_a_stop_signal_stops_the_real_console_cleanly(tmux: Tmux, tmp_path: Path, signals: list[int]) -> None:
    """A service manager's stop (SIGTERM) or the SSH session gone (SIGHUP): the runtime stops as on `q`,
    without a question nobody may be there to answer; the strategy runs again at the next start."""
    status_file = start_with_a_watcher(tmux, tmp_path)
    tmux.wait_for(lambda s: "running" in row_of(s, "watcher") and "connected" in s, "the running strategy")
    holder = (tmp_path / "data" / HOLDER_FILE).read_text()  # "pid N, started ..."
    for signum in signals:
        os.kill(int(holder.split(",")[0].split()[1]), signum)
        time.sleep(0.01)
    deadline = time.monotonic() + 20
    while not status_file.exists():
        assert time.monotonic() < deadline, "the console did not stop:\n" + tmux.screen()
        time.sleep(0.2)
    time.sleep(0.1)  # the shell finishes writing the status
    assert status_file.read_text().strip() == "0"
    log = (tmp_path / "data" / "logs" / "mt5console.log").read_text()
    assert f"received {signal.Signals(signals[0]).name}" in log and "runtime   stopped" in log
    store = Store(tmp_path / "data" / "mt5console.db")
    try:
        record = store.get_strategy("watcher")
        assert record is not None and record.state == StrategyState.RUNNING
    finally:
        store.close()


def test_the_console_leaves_when_its_terminal_goes_away(tmux: Tmux, tmp_path: Path) -> None:
    """The SSH session drops: the terminal is gone and the console gets SIGHUP. It stopped its runtime,
    then Textual's shutdown blocked for ever writing to the gone terminal, holding the data dir: the
    trader could not start the console again."""
    start_with_a_watcher(tmux, tmp_path)
    tmux.wait_for(lambda s: "running" in row_of(s, "watcher") and "connected" in s, "the running strategy")
    holder = (tmp_path / "data" / HOLDER_FILE).read_text()
    pid = int(holder.split(",")[0].split()[1])
    tmux.kill()  # the terminal and its session go away, as when the SSH connection drops
    deadline = time.monotonic() + 20
    try:
        while running(pid):
            assert time.monotonic() < deadline, "the console is still running after its terminal went away"
            time.sleep(0.2)
    finally:
        if running(pid):  # a hung console must not outlive the test
            os.kill(pid, signal.SIGKILL)
    log = (tmp_path / "data" / "logs" / "mt5console.log").read_text()
    assert "received SIGHUP" in log and "runtime   stopped" in log
    assert not (tmp_path / "data" / HOLDER_FILE).exists()  # the data dir is free for the next start


def running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
