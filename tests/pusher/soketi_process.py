"""soketi, a real Pusher-protocol server (npm ``@soketi/soketi``), run on a free loopback port.

It is installed into tests/soketi/node_modules by the test setup (``npm ci --prefix tests/soketi``).
The tests must run in CI, not skip: a missing install fails them with the command that fixes it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pusher
import pytest

SOKETI_DIR = Path(__file__).resolve().parents[1] / "soketi"
SOKETI_BIN = SOKETI_DIR / "node_modules" / ".bin" / "soketi"
INSTALL = "npm ci --prefix tests/soketi --no-audit --no-fund"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Soketi:
    def __init__(
        self, workdir: Path, *, app_id: str = "4242", key: str = "test-key", secret: str = ""
    ) -> None:
        if not SOKETI_BIN.exists():
            pytest.fail(f"soketi is not installed at {SOKETI_BIN}: run `{INSTALL}` (make test does)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir  # soketi reads a .env in its working folder: give it an empty one
        self.app_id = app_id
        self.key = key
        self.secret = secret or "soketi-secret-" + os.urandom(6).hex()
        self.port = free_port()
        self.metrics_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "soketi.log"

    def start(self, timeout: float = 60.0) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "SOKETI_HOST": "127.0.0.1",
            "SOKETI_PORT": str(self.port),
            "SOKETI_METRICS_HOST": "127.0.0.1",
            "SOKETI_METRICS_SERVER_PORT": str(self.metrics_port),
            "SOKETI_DEFAULT_APP_ID": self.app_id,
            "SOKETI_DEFAULT_APP_KEY": self.key,
            "SOKETI_DEFAULT_APP_SECRET": self.secret,
            "SOKETI_SHUTDOWN_GRACE_PERIOD": "100",
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(SOKETI_BIN), "start"],
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"soketi exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"soketi did not answer /ready within {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Stop it abruptly, as a crash would (every connection drops at once)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def trigger(self, channel: str, event: str, data: Any) -> None:
        """Send an event as the platform does, with the official pusher library (blocking)."""
        client = pusher.Pusher(
            app_id=self.app_id, key=self.key, secret=self.secret, ssl=False, host="127.0.0.1", port=self.port
        )
        client.trigger(channel, event, data)
